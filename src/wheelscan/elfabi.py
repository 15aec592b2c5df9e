"""ELF numbers the Python side names (System V gABI and the psABIs), defined once.

Facts keep the raw numbers (``ElfFacts.machine`` is an ``e_machine`` value); the rules and the
lief engine compare against these. The Cython parser (``ext/elf.pyx``) needs the few it uses as
C constants; ``tests/unit/test_elfabi.py`` checks every value here against lief's own tables.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

__all__ = ["SHN_UNDEF", "ArmFlags", "DynFlags", "Machine", "SegmentFlags", "VersionFlags"]


class Machine(IntEnum):
    """``e_machine`` values of the architectures Linux wheels are built for."""

    I386 = 3
    S390 = 22  # s390 and s390x (64-bit: ELFCLASS64)
    PPC64 = 21
    ARM = 40
    X86_64 = 62
    AARCH64 = 183
    RISCV = 243
    LOONGARCH = 258


class VersionFlags(IntFlag):
    """``vna_flags`` / ``vd_flags``."""

    BASE = 0x1
    WEAK = 0x2


class DynFlags(IntFlag):
    """``DT_FLAGS`` bits."""

    ORIGIN = 0x1
    SYMBOLIC = 0x2
    TEXTREL = 0x4
    BIND_NOW = 0x8


class SegmentFlags(IntFlag):
    """``p_flags``."""

    X = 0x1
    W = 0x2
    R = 0x4


class ArmFlags(IntFlag):
    """``e_flags`` of 32-bit ARM (ARM ELF ABI)."""

    ABI_FLOAT_HARD = 0x400
    EABI_VER5 = 0x05000000
    EABIMASK = 0xFF000000


#: the undefined section index (``st_shndx`` of an imported symbol)
SHN_UNDEF = 0
