"""auditwheel 6.8.2 run hermetically through its Python API (shared by the differential tests).

``auditwheel show`` normally reads the host: ld.so.conf and the interpreter's directories
(lddtree.load_ld_paths / ldd's PT_INTERP paths), the host libc when a wheel's binaries name
none (Libc.detect), and the host's musl version (Libc.get_current_version). Here the
library search is restricted to the wheel's own extraction directory, the libc fallback is
pinned to glibc and the musl version is unknown (as on any non-musl host), so the answer
depends on the wheel only.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@dataclass
class AwResult:
    overall: str | None  # overall policy name, e.g. "manylinux_2_17_x86_64" / "linux_x86_64"
    error: str | None = None  # exception class and message when auditwheel refused
    sym: str | None = None


@contextmanager
def hermetic(tmp_root: Path) -> Iterator[None]:
    from auditwheel import lddtree, libc
    from auditwheel.error import InvalidLibcError

    orig_find_lib = lddtree.find_lib
    orig_detect = libc.Libc.detect
    orig_version = libc.Libc.get_current_version
    orig_tempdir = tempfile.tempdir
    root = str(tmp_root)

    def find_lib(platform: Any, lib: str, ldpaths: list[str], root_: str = "/") -> Any:
        return orig_find_lib(platform, lib, [p for p in ldpaths if p.startswith(root)], root_)

    def no_version(self: Any) -> Any:
        raise InvalidLibcError("hermetic run: the host's musl version is not consulted")

    lddtree.find_lib = find_lib  # type: ignore[assignment]
    libc.Libc.detect = staticmethod(lambda: libc.Libc.GLIBC)  # type: ignore[method-assign]
    libc.Libc.get_current_version = no_version  # type: ignore[method-assign]
    tempfile.tempdir = root
    try:
        yield
    finally:
        lddtree.find_lib = orig_find_lib
        libc.Libc.detect = orig_detect  # type: ignore[method-assign]
        libc.Libc.get_current_version = orig_version  # type: ignore[method-assign]
        tempfile.tempdir = orig_tempdir


def show(
    wheel: Path, tmp_root: Path, exclude: frozenset[str] = frozenset(), libc: str | None = None
) -> AwResult:
    """What ``auditwheel show`` concludes, as main_show.execute computes it, hermetically.

    ``libc`` ("glibc" or "musl") asks about that libc's policies where auditwheel would take
    the libc from the file name, which it cannot for a wheel tagged for both.
    """
    from auditwheel.error import NonPlatformWheelError, WheelToolsError
    from auditwheel.wheel_abi import analyze_wheel_abi, get_wheel_elfdata
    from auditwheel.wheeltools import get_wheel_architecture, get_wheel_libc

    tmp_root.mkdir(parents=True, exist_ok=True)
    get_wheel_elfdata.cache_clear()
    with hermetic(tmp_root):
        try:
            arch = get_wheel_architecture(wheel.name)
        except (WheelToolsError, NonPlatformWheelError):
            arch = None
        try:
            libc_ = get_wheel_libc(wheel.name)
        except WheelToolsError:
            libc_ = None
        if libc is not None:
            from auditwheel.libc import Libc

            libc_ = Libc.MUSL if libc == "musl" else Libc.GLIBC
        try:
            info = analyze_wheel_abi(libc_, arch, wheel, exclude, disable_isa_ext_check=False,
                                     allow_graft=False, args_ldpaths="")
        except (NonPlatformWheelError, RuntimeError, ValueError) as e:
            return AwResult(None, f"{type(e).__name__}: {e}")
    return AwResult(info.overall_policy.name, sym=info.sym_policy.name)


def claim_holds(claim_canonical: str, overall: str | None) -> bool:
    """auditwheel's decision on one claim: its overall tag is not newer than the claim."""
    if overall is None or overall.startswith("linux_"):
        return False
    cf, cmaj, cmin, carch = claim_canonical.split("_", 3)
    of, omaj, omin, oarch = overall.split("_", 3)
    return cf == of and carch == oarch and (int(cmaj), int(cmin)) >= (int(omaj), int(omin))
