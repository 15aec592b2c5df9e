"""Wheel filename and WHEEL-file metadata, shared by both engines (not binary parsing)."""

from __future__ import annotations

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .facts import WheelFacts

__all__ = ["fill_filename_facts", "fill_wheel_file_facts", "find_wheel_file"]


def fill_filename_facts(facts: WheelFacts) -> None:
    """Parse ``facts.filename`` with packaging; record tags as written, or why it is invalid."""
    fn = facts.filename
    try:
        name, version, build, _tags = parse_wheel_filename(fn)
    except InvalidWheelFilename as e:
        facts.filename_error = str(e)
        return
    facts.name = str(name)
    facts.version = str(version)
    facts.build = f"{build[0]}{build[1]}" if build else None
    # packaging returns a frozenset of Tag objects; keep the compressed tag sets as written.
    py, abi, plat = fn[: -len(".whl")].split("-")[-3:]
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
