"""wheelscan: check that Linux wheels' platform tags tell the truth, at index scale.

The public names are imported on first use (PEP 562), so that ``import wheelscan.cli`` and the
scan's main process do not load the verdict engine and its policy data they never call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .facts import ElfFacts, WheelFacts
    from .read.engine import ENGINES, scan_wheel
    from .rules.verdict import judge

__all__ = ["ENGINES", "ElfFacts", "WheelFacts", "__version__", "judge", "scan_wheel"]

__version__ = "0.1.0"

_LAZY = {
    "ENGINES": "read.engine",
    "scan_wheel": "read.engine",
    "ElfFacts": "facts",
    "WheelFacts": "facts",
    "judge": "rules.verdict",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'wheelscan' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
