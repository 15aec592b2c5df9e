"""The Stable ABI (``abi3``) as data: which symbols it holds on Linux, and since when.

The shipped ``data/stable-abi.json`` is written by ``scripts/generate_stable_abi.py`` from
CPython's ``Misc/stable_abi.toml`` (its provenance, the URL and sha256 of that file, is in the
data and in every verdict); it is validated on every load. ``--stable-abi FILE``
(:func:`load_stable_abi`) judges with a newer manifest without a new release.

A name is a stable-ABI *symbol* when the manifest lists it as a ``function`` or ``data`` item;
``abi_only`` items count (macros of the Limited API call them), items under a feature macro
a Linux release build does not define (``MS_WINDOWS``, ``Py_REF_DEBUG``...) do not: no Linux
interpreter of an ordinary build exports them.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .policy import PolicyError

__all__ = [
    "AbiSymbol",
    "StableAbi",
    "StableAbiError",
    "default_stable_abi",
    "load_stable_abi",
    "python_tag_version",
]

_VERSION = re.compile(r"^(\d+)\.(\d+)$")
_CP_TAG = re.compile(r"^cp(\d)(\d+)$")


class StableAbiError(PolicyError):
    """A stable-ABI manifest is missing or malformed (a policy error: the same exits)."""


def python_tag_version(tag: str) -> tuple[int, int] | None:
    """``cp39`` -> (3, 9); None for any other interpreter tag (``py3``, ``pp310``...)."""
    m = _CP_TAG.match(tag)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class AbiSymbol:
    name: str
    kind: str  # "function" or "data"
    added: tuple[int, int]
    abi_only: bool = False
    ifdef: str | None = None


@dataclass(frozen=True)
class StableAbi:
    symbols: dict[str, AbiSymbol]
    #: feature macro -> whether a Linux release build defines it
    linux_macros: dict[str, bool]
    #: names the manifest lists that are no symbol: name -> "struct", "macro", ...
    not_symbols: dict[str, str]
    provenance: dict[str, Any]

    def on_linux(self, name: str) -> AbiSymbol | None:
        """The item ``name`` if an ordinary Linux build of CPython exports it."""
        s = self.symbols.get(name)
        if s is None or (s.ifdef is not None and not self.linux_macros.get(s.ifdef, False)):
            return None
        return s

    def why_not(self, name: str) -> str:
        """Why ``name`` is no stable-ABI symbol on Linux, in words."""
        s = self.symbols.get(name)
        if s is not None and s.ifdef is not None:
            return f"in the Stable ABI only where {s.ifdef} is defined, not on Linux builds"
        kind = self.not_symbols.get(name)
        if kind is not None:
            return f"a {kind} of the Limited API, not an exported symbol"
        return "not in the Stable ABI"


def _version(text: Any, where: str) -> tuple[int, int]:
    m = _VERSION.match(str(text))
    if m is None:
        raise StableAbiError(f"{where}: bad version {text!r}")
    return int(m.group(1)), int(m.group(2))


def _validate(doc: Any, origin: str) -> StableAbi:
    def bad(msg: str) -> StableAbiError:
        return StableAbiError(f"{origin}: {msg}")

    if not isinstance(doc, dict) or not isinstance(doc.get("symbols"), dict):
        raise bad("expected an object with a 'symbols' object")
    if doc.get("format") != 1:
        raise bad(f"unsupported format {doc.get('format')!r} (expected 1)")
    prov = doc.get("provenance")
    if not isinstance(prov, dict) or not isinstance(prov.get("sha256"), str):
        raise bad("missing 'provenance' object with the source's sha256")
    macros = doc.get("feature_macros")
    if not isinstance(macros, dict) or not all(
        isinstance(m, dict) and isinstance(m.get("linux"), bool) for m in macros.values()
    ):
        raise bad("'feature_macros' must map each macro to an object with a boolean 'linux'")
    linux = {str(k): bool(v["linux"]) for k, v in macros.items()}
    symbols = {}
    for name, e in doc["symbols"].items():
        if not isinstance(e, dict) or e.get("kind") not in ("function", "data"):
            raise bad(f"{name}: kind must be 'function' or 'data'")
        ifdef = e.get("ifdef")
        if ifdef is not None and ifdef not in linux:
            raise bad(f"{name}: ifdef {ifdef!r} is not a feature macro of the manifest")
        added = _version(e.get("added"), f"{origin}: {name}")
        if added < (3, 2):
            raise bad(f"{name}: the Stable ABI begins with 3.2, not {added}")
        symbols[str(name)] = AbiSymbol(str(name), str(e["kind"]), added,
                                       bool(e.get("abi_only", False)), ifdef)  # fmt: skip
    others = doc.get("not_symbols", {})
    if not isinstance(others, dict) or set(others) & set(symbols):
        raise bad("'not_symbols' must be an object naming no symbol")
    return StableAbi(symbols, linux, {str(k): str(v) for k, v in others.items()}, dict(prov))


def load_stable_abi(path: str | Path | None = None) -> StableAbi:
    """Load and validate a manifest (the shipped one when ``path`` is None)."""
    if path is None:
        return default_stable_abi()
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StableAbiError(f"{path}: cannot read stable-ABI manifest: {e}") from e
    sa = _validate(doc, str(path))
    return StableAbi(sa.symbols, sa.linux_macros, sa.not_symbols,
                     {**sa.provenance, "file": str(path)})  # fmt: skip


@functools.lru_cache(maxsize=1)
def default_stable_abi() -> StableAbi:
    name = "wheelscan/data/stable-abi.json"
    text = (resources.files("wheelscan") / "data" / "stable-abi.json").read_text(encoding="utf-8")
    sa = _validate(json.loads(text), name)
    return StableAbi(sa.symbols, sa.linux_macros, sa.not_symbols, {**sa.provenance, "file": name})
