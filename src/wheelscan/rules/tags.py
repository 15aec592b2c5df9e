"""Claims: the Linux platform tags a wheel's filename carries, with their PEP 600/656 meaning.

A claim is kept as written (``manylinux2014_x86_64`` stays that) and evaluated through its
meaning (glibc 2.17 on x86_64). The filename itself is parsed by ``packaging`` (see
:mod:`wheelscan.read.wheelinfo`); tag sets in WHEEL ``Tag:`` lines are expanded with
``packaging.tags.parse_tag``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.tags import parse_tag

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "PEP600_ALIASES",
    "Claim",
    "claim_key",
    "expand_tags",
    "parse_claim",
    "parse_claims",
    "policy_order",
]

#: the legacy names PEP 600 defines, and the glibc each one means (fixed by the PEP; the
#: verdict takes the same table from the policy data, which may add newer aliases)
PEP600_ALIASES: Mapping[str, tuple[int, int]] = {
    "manylinux1": (2, 5),
    "manylinux2010": (2, 12),
    "manylinux2014": (2, 17),
}

_PEP600 = re.compile(r"^(manylinux|musllinux)_(\d+)_(\d+)_([a-z0-9_]+)$")
_LEGACY = re.compile(r"^(manylinux[0-9]+)_([a-z0-9_]+)$")
_LINUX = re.compile(r"^linux_([a-z0-9_]+)$")


@dataclass(frozen=True)
class Claim:
    """One Linux platform tag of the filename, as written, and what it means."""

    tag: str  # as written, e.g. "manylinux2014_x86_64"
    family: str  # "manylinux", "musllinux" or "linux" (bare linux_ARCH: no libc promise)
    arch: str
    version: tuple[int, int] | None = None  # glibc / musl (major, minor); None for linux_

    @property
    def libc(self) -> str | None:
        return {"manylinux": "glibc", "musllinux": "musl"}.get(self.family)

    @property
    def canonical(self) -> str:
        """PEP 600/656 spelling: ``manylinux_2_17_x86_64``."""
        if self.version is None:
            return f"linux_{self.arch}"
        return f"{self.family}_{self.version[0]}_{self.version[1]}_{self.arch}"


def parse_claim(tag: str, aliases: Mapping[str, tuple[int, int]]) -> Claim | None:
    """The claim a platform tag makes; None for non-Linux tags (``any``, ``macosx_...``).

    ``aliases`` maps legacy names to PEP 600 versions (from the policy data:
    ``manylinux1`` -> (2, 5), ``manylinux2010`` -> (2, 12), ``manylinux2014`` -> (2, 17)).
    An unknown legacy alias (``manylinux3_x86_64``) is not a claim anything can honour and
    is returned with version (0, 0) so that it is judged and fails.
    """
    m = _PEP600.match(tag)
    if m:
        return Claim(tag, m.group(1), m.group(4), (int(m.group(2)), int(m.group(3))))
    m = _LEGACY.match(tag)
    if m:
        return Claim(tag, "manylinux", m.group(2), aliases.get(m.group(1), (0, 0)))
    m = _LINUX.match(tag)
    if m:
        return Claim(tag, "linux", m.group(1))
    return None


def parse_claims(
    platform_tags: Iterable[str], aliases: Mapping[str, tuple[int, int]]
) -> list[Claim]:
    return [c for t in platform_tags if (c := parse_claim(t, aliases)) is not None]


@functools.lru_cache(maxsize=4096)
def claim_key(tag: str) -> tuple[str, str, str] | None:
    """(family, PEP 600 policy name without arch, arch) of a Linux tag, for grouping claims in
    reports; the legacy aliases PEP 600 defines are normalised (``manylinux2014_x86_64`` ->
    ``("manylinux", "manylinux_2_17", "x86_64")``), a bare ``linux_ARCH`` gives ``("linux",
    "linux", arch)``, and an alias PEP 600 does not define gives None, as a non-Linux tag does."""
    legacy = _LEGACY.match(tag)
    if legacy and legacy.group(1) not in PEP600_ALIASES:
        return None
    c = parse_claim(tag, PEP600_ALIASES)
    if c is None:
        return None
    if c.version is None:
        return "linux", "linux", c.arch
    return c.family, f"{c.family}_{c.version[0]}_{c.version[1]}", c.arch


_POLICY_NAME = re.compile(r"^(manylinux|musllinux)_(\d+)_(\d+)$")


def policy_order(name: str) -> tuple[int, int, int, str]:
    """Sort key for policy names without arch: manylinux by glibc, then musllinux by musl,
    then anything else (``linux``, ``none``) by name."""
    m = _POLICY_NAME.match(name)
    if m:
        return (0 if m.group(1) == "manylinux" else 1, int(m.group(2)), int(m.group(3)), name)
    return (2, 0, 0, name)


def expand_tags(tags: Iterable[str]) -> set[str]:
    """Expand compressed tag sets (``cp39.cp310-abi3-manylinux1_x86_64.manylinux_2_5_x86_64``)
    into single ``py-abi-platform`` strings; unparsable entries are kept as written."""
    out: set[str] = set()
    for t in tags:
        try:
            out.update(str(x) for x in parse_tag(t))
        except ValueError:  # noqa: PERF203 - a malformed Tag: line is kept, not fatal
            out.add(t)
    return out
