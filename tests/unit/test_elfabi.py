"""The ELF numbers wheelscan names are the gABI's: checked against lief's tables, and the C
constants of the Cython parser against the Python ones (one meaning, two languages)."""

from __future__ import annotations

import re
from pathlib import Path

import lief
import pytest

from wheelscan.elfabi import DynFlags, Machine, SegmentFlags, VersionFlags

PYX = Path(__file__).resolve().parents[2] / "ext" / "elf.pyx"


@pytest.mark.parametrize("m", list(Machine), ids=lambda m: m.name)
def test_machine_numbers_are_liefs(m: Machine) -> None:
    assert int(getattr(lief.ELF.ARCH, m.name)) == m.value


def test_flags_are_liefs() -> None:
    for f in DynFlags:
        assert int(getattr(lief.ELF.DynamicEntryFlags.FLAG, f.name)) == f.value
    for s in SegmentFlags:
        assert int(getattr(lief.ELF.Segment.FLAGS, s.name)) == s.value
    assert VersionFlags.WEAK == 2  # gABI: VER_FLG_WEAK; lief keeps no table of these


def test_cython_constants_agree() -> None:
    consts = dict(re.findall(r"^\s+(EM_\w+|DF_\w+|VER_FLG_\w+) = (\d+)$", PYX.read_text(), re.M))
    assert consts, "no constants found in ext/elf.pyx"
    python = {"EM_386": Machine.I386, "EM_X86_64": Machine.X86_64, "EM_S390": Machine.S390,
              "DF_TEXTREL": DynFlags.TEXTREL, "VER_FLG_WEAK": VersionFlags.WEAK}  # fmt: skip
    assert {k: int(v) for k, v in consts.items()} == {k: int(python[k]) for k in consts}
