"""Wheel filename and WHEEL-file metadata, shared by both engines (not binary parsing)."""

from __future__ import annotations

import os
import posixpath
import re
from typing import BinaryIO, cast

from packaging.utils import canonicalize_name, parse_wheel_filename

from ..facts import WheelFacts

try:  # the same answers in C for the common case, or None (see ext/wheelmeta.pyx)
    from .._native.wheelmeta import split_filename as _split_filename
    from .._native.wheelmeta import wheel_fields as _wheel_fields
except ImportError:  # not built: the Python code below answers alone (for the lief engine)
    _split_filename = _wheel_fields = None  # type: ignore[assignment]

__all__ = [
    "as_source", "fill_filename_facts", "fill_wheel_file_facts", "find_wheel_file",
    "wheel_display_name",
]

_POSIX_PATHS = os.path is posixpath


_N = r"(?:0|[1-9][0-9]{0,17})"  # longer numbers go through packaging (int() limits them)
_ID = r"[A-Za-z_][A-Za-z0-9_]*"  # an interpreter tag must be an identifier (packaging >= 26.3)
_W = r"[A-Za-z0-9_]+"  # abi and platform tags: no empty member of a compressed set
# A wheel filename whose name is plain ASCII, whose version is already in packaging's
# normalised form (so ``str(Version(v)) == v``) and whose tags every packaging release accepts
# (releases differ on empty or non-identifier components): most of an index. Such names are
# parsed here with exactly packaging's result, in a tenth of its time; any other goes through
# packaging.
_SIMPLE_WHEEL = re.compile(
    rf"""
    (?P<name>[A-Za-z0-9._]+)
    -(?P<version>(?:[1-9][0-9]{{0,17}}!)?{_N}(?:\.{_N})*(?:(?:a|b|rc){_N})?(?:\.post{_N})?(?:\.dev{_N})?)
    (?:-(?P<build_num>[0-9]{{1,18}})(?![0-9])(?P<build_rest>[^-\n]*))?
    -(?P<py>{_ID}(?:\.{_ID})*)-(?P<abi>{_W}(?:\.{_W})*)-(?P<plat>{_W}(?:\.{_W})*)\.whl
    """,
    re.ASCII | re.VERBOSE,
)


def fill_filename_facts(facts: WheelFacts) -> None:
    """Parse ``facts.filename`` as packaging does; record tags as written, or why it is
    invalid."""
    fn = facts.filename
    native = _split_filename is not None and type(fn) is str  # not a subclass: Cython refuses
    parts = _split_filename(fn) if native else None
    if parts is not None:
        (facts.name, facts.version, facts.build,
         facts.python_tags, facts.abi_tags, facts.platform_tags) = parts  # fmt: skip
        return
    m = _SIMPLE_WHEEL.fullmatch(fn)
    if m is not None and "__" not in m["name"]:
        facts.name = canonicalize_name(m["name"])
        facts.version = m["version"]
        num = m["build_num"]
        facts.build = None if num is None else f"{int(num)}{m['build_rest']}"
        py, abi, plat = m.group("py", "abi", "plat")
    else:
        try:
            name, version, build, _tags = parse_wheel_filename(fn)
        except ValueError as e:  # InvalidWheelFilename, or int() refusing a 5,000-digit number
            facts.filename_error = str(e)
            return
        facts.name = str(name)
        facts.version = str(version)
        facts.build = f"{build[0]}{build[1]}" if build else None
        py, abi, plat = fn[: -len(".whl")].split("-")[-3:]
    # packaging returns a frozenset of Tag objects; keep the compressed tag sets as written.
    facts.python_tags = py.split(".")
    facts.abi_tags = abi.split(".")
    facts.platform_tags = plat.split(".")


def find_wheel_file(names: list[str]) -> tuple[str | None, bool]:
    """The path of the top-level ``*.dist-info/WHEEL`` member and whether a RECORD exists."""
    wheel = None
    has_record = False
    for n in names:
        top, sep, rest = n.partition("/")
        if sep and top.endswith(".dist-info"):
            if rest == "WHEEL" and wheel is None:
                wheel = n
            elif rest == "RECORD":
                has_record = True
    return wheel, has_record


def fill_wheel_file_facts(facts: WheelFacts, content: bytes) -> None:
    """Record the WHEEL file's ``Tag:`` lines and ``Root-Is-Purelib`` (RFC 822 style headers)."""
    facts.has_wheel_file = True
    native = _wheel_fields is not None and type(content) is bytes
    fields = _wheel_fields(content) if native else None
    if fields is not None:
        tags, purelib = fields
        facts.wheel_tags.extend(tags)
        if purelib is not None:
            facts.root_is_purelib = purelib
        return
    text = content.decode("utf-8", "replace")
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        if key == "tag":
            facts.wheel_tags.append(value)
        elif key == "root-is-purelib":
            facts.root_is_purelib = value.lower() == "true"


def as_source(src: str | os.PathLike[str] | BinaryIO) -> str | BinaryIO:
    """``src`` with a path-like object turned into its path, once per scan.

    A type's ``__fspath__`` that is not None is os.PathLike's own test, without the ABC's
    Python-level ``isinstance``, which costs more than it checks on a small wheel.
    """
    if type(src) is str or getattr(type(src), "__fspath__", None) is None:
        return cast("str | BinaryIO", src)  # a str, or a file object
    path: str | bytes = os.fspath(cast("os.PathLike[str]", src))  # or bytes, as a PathLike may
    return path if isinstance(path, str) else os.fsdecode(path)


def wheel_display_name(src: str | BinaryIO, filename: str | None) -> str:
    """The wheel's file name: explicit, else from the path, else from ``src.name``.

    ``src`` is what :func:`as_source` returned: a path is a ``str`` by now."""
    if filename:
        return filename
    if isinstance(src, str):
        if _POSIX_PATHS:
            return src.rpartition("/")[2]  # posixpath.basename, without its calls
        return os.path.basename(src)
    name = getattr(src, "name", None)
    return os.path.basename(name) if isinstance(name, str) else "<stream>.whl"
