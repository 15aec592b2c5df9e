"""Engine selection: one place decides which scanner turns a wheel into facts.

``native`` (the Cython scanner, the fast path) is the default; ``lief`` (stdlib zipfile +
lief) is the reference used as test oracle and cross-check. ``WHEELSCAN_ENGINE`` overrides
the default (read once per process: see :func:`default_engine`). On CPython a missing native
extension is an error, never a silent fallback.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, BinaryIO

from ..environment import environment
from ..limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..facts import MemberCache, WheelFacts

__all__ = ["ENGINES", "default_engine", "scan_wheel"]

ENGINES = ("native", "lief")


def default_engine() -> str:
    """The engine of a scan that names none: ``WHEELSCAN_ENGINE``, else ``native``
    (:mod:`wheelscan.environment`); a value that names no engine is an ImportError."""
    engine = environment().engine or "native"
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
    member_cache: MemberCache | None = None,
    verify_record: bool = False,
    ranged: bool = False,
) -> WheelFacts:
    """Read one wheel (a path, or a binary file object with seek/read) into :class:`WheelFacts`.

    Never raises for bad input: an unreadable archive sets ``error``, an unreadable member
    adds to ``errors``. A path no file can have (one with a NUL) raises ValueError, as
    ``open()`` does. ``filename`` overrides the name taken from the path or ``src.name``.
    ``member_cache`` (``get(key)``/``put(key, ElfFacts)``, key = (method, compressed_size,
    size, blake2b-16 hex of the compressed bytes)) lets an engine reuse an ELF member's facts.
    ``verify_record`` also hashes every member against RECORD (``facts.record``; it inflates
    everything, see :mod:`wheelscan.read.record`). ``ranged`` says that ``src`` is a remote
    file (an HTTP range reader that plans its own windows): it is read like any file object,
    whose compressed input the native reader asks for in steps that start at 4 KiB and double
    (so a peek costs a peek), and is never looked up in ``member_cache``.
    """
    engine = engine or default_engine()
    scan = _SCANNERS.get(engine) or _load_scanner(engine)
    kw: dict[str, Any] = {}
    if member_cache is not None and not ranged:
        kw["member_cache"] = member_cache
    facts = scan(src, filename=filename, limits=limits, **kw)
    if verify_record:
        add_record_check(facts, src)
    return facts


def add_record_check(facts: WheelFacts, src: str | os.PathLike[str] | BinaryIO) -> None:
    """``facts.record`` for a wheel whose archive could be read."""
    if facts.error is None:
        from .record import verify_record

        if not isinstance(src, (str, os.PathLike)):
            src.seek(0)
        facts.record = verify_record(src)


_SCANNERS: dict[str, Callable[..., WheelFacts]] = {}


def _load_scanner(engine: str) -> Callable[..., WheelFacts]:
    """The engine's scan function, imported on first use (lief only when asked for)."""
    scan: Callable[..., WheelFacts]
    if engine == "native":
        from .native import scan_wheel_native

        scan = scan_wheel_native
    elif engine == "lief":
        from .lief import scan_wheel_lief

        scan = scan_wheel_lief
    else:
        msg = f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}"
        raise ValueError(msg)
    _SCANNERS[engine] = scan
    return scan
