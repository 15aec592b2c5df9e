"""Engine selection: one place decides which scanner turns a wheel into facts.

``native`` (the Cython scanner, the fast path) is the default; ``lief`` (stdlib zipfile +
lief) is the reference used as test oracle and cross-check. ``WHEELSCAN_ENGINE`` overrides
the default. On CPython a missing native extension is an error, never a silent fallback.
"""

from __future__ import annotations

import os
import posixpath
from typing import TYPE_CHECKING, BinaryIO, Protocol

from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from collections.abc import Callable

    from .facts import ElfFacts, WheelFacts

__all__ = ["ENGINES", "default_engine", "scan_wheel"]

ENGINES = ("native", "lief")
_POSIX_PATHS = os.path is posixpath


class MemberCacheLike(Protocol):
    def get(self, key: tuple[int, int, int, str]) -> ElfFacts | None: ...
    def put(self, key: tuple[int, int, int, str], facts: ElfFacts) -> None: ...


def default_engine() -> str:
    engine = os.environ.get("WHEELSCAN_ENGINE", "native")
    if engine not in ENGINES:
        msg = f"WHEELSCAN_ENGINE={engine!r}: expected one of {', '.join(ENGINES)}"
        raise ImportError(msg)
    return engine


def scan_wheel(
    src: str | os.PathLike[str] | BinaryIO,
    engine: str | None = None,
    *,
    filename: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    member_cache: MemberCacheLike | None = None,
) -> WheelFacts:
    """Read one wheel (a path, or a binary file object with seek/read) into :class:`WheelFacts`.

    Never raises for bad input: an unreadable archive sets ``error``, an unreadable member
    adds to ``errors``. ``filename`` overrides the name taken from the path or ``src.name``.
    ``member_cache`` (``get(key)``/``put(key, ElfFacts)``, key = (method, compressed_size,
    size, blake2b-16 hex of the compressed bytes)) lets an engine reuse an ELF member's facts.
    """
    engine = engine or default_engine()
    scan = _SCANNERS.get(engine) or _load_scanner(engine)
    if member_cache is None:
        return scan(src, filename=filename, limits=limits)
    return scan(src, filename=filename, limits=limits, member_cache=member_cache)


_SCANNERS: dict[str, Callable[..., WheelFacts]] = {}


def _load_scanner(engine: str) -> Callable[..., WheelFacts]:
    """The engine's scan function, imported on first use (lief only when asked for)."""
    scan: Callable[..., WheelFacts]
    if engine == "native":
        from ._native_engine import scan_wheel_native

        scan = scan_wheel_native
    elif engine == "lief":
        from ._lief_engine import scan_wheel_lief

        scan = scan_wheel_lief
    else:
        msg = f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}"
        raise ValueError(msg)
    _SCANNERS[engine] = scan
    return scan


def wheel_display_name(src: str | os.PathLike[str] | BinaryIO, filename: str | None) -> str:
    """The wheel's file name: explicit, else from the path, else from ``src.name``."""
    if filename:
        return filename
    if type(src) is str and _POSIX_PATHS:
        return src.rpartition("/")[2]  # posixpath.basename, without its calls
    if isinstance(src, (str, os.PathLike)):
        return os.path.basename(os.fspath(src))
    name = getattr(src, "name", None)
    return os.path.basename(name) if isinstance(name, str) else "<stream>.whl"
