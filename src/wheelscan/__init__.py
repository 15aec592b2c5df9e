"""wheelscan: check that Linux wheels' platform tags tell the truth, at index scale."""

from __future__ import annotations

from .engine import ENGINES, scan_wheel
from .facts import ElfFacts, WheelFacts
from .verdict import judge

__all__ = ["ENGINES", "ElfFacts", "WheelFacts", "__version__", "judge", "scan_wheel"]

__version__ = "0.1.0"
