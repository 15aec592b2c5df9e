"""The native engine: the Cython ZIP reader and ELF parser turn one wheel into facts.

Everything per byte happens in ``wheelscan._native`` (ext/zipread.pyx, ext/elf.pyx); this
module only walks the member list, applies the name rule and records results, so the Python
cost per wheel stays at a few microseconds plus a few per candidate member.
"""

from __future__ import annotations

import dataclasses
import os
from typing import BinaryIO

from .._native import zipread
from ..errors import WheelscanError
from ..facts import MemberCache, MemberError, MemberStats, WheelFacts
from ..limits import DEFAULT_LIMITS, Limits
from .wheelinfo import as_source, fill_filename_facts, fill_wheel_file_facts, wheel_display_name

__all__ = ["scan_wheel_native"]


def scan_wheel_native(
    src: str | os.PathLike[str] | BinaryIO,
    *,
    filename: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    member_cache: MemberCache | None = None,
    inflater: str | None = None,
) -> WheelFacts:
    """Scan one wheel natively. Never raises for bad input (see :func:`engine.scan_wheel`).

    ``inflater`` picks the deflate implementation (one of ``_native.inflate.INFLATERS``;
    default ``_native.inflate.inflater``). ``member_cache`` is consulted for path sources only.
    """
    src = as_source(src)
    facts = WheelFacts(filename=wheel_display_name(src, filename), engine="native")
    fill_filename_facts(facts)
    try:
        arc = zipread.Archive(
            src,
            max_wheel_inflate=limits.max_wheel_inflate,
            max_members=limits.max_members,
            max_central_directory=limits.max_central_directory,
            chunk_size=limits.chunk_size,
            read_whole_max=limits.read_whole_max,
            inflater=inflater,
        )
    except (WheelscanError, OSError) as e:
        facts.error = f"{type(e).__name__}: {e}"
        return facts
    facts.size = arc.size
    try:
        _scan(arc, facts, limits, member_cache if arc.local else None)
    except (WheelscanError, OSError, MemoryError) as e:
        facts.error = f"{type(e).__name__}: {e}"
    finally:
        arc.close()  # notes in arc.anomalies whether the file changed while it was read
        facts.anomalies = arc.anomalies
    return facts


def _scan(
    arc: zipread.Archive, facts: WheelFacts, limits: Limits, cache: MemberCache | None
) -> None:
    facts.member_count = arc.read_directory()
    facts.has_record = arc.has_record  # the directory walk applied the name rules in C
    if arc.wheel_index >= 0:
        try:
            fill_wheel_file_facts(facts, arc.read_member(arc.wheel_index, limits.max_metadata))
        except WheelscanError as e:
            facts.errors.append(MemberError(arc.name(arc.wheel_index), str(e)))
    # opening a member of a file object's archive may add the copy its local header
    # describes (a reader walking local headers installs that one): the loop reaches it too
    for index in arc.candidates:
        name, method, _flags, csize, size, _off, crc = arc.entry(index)
        stats = MemberStats(name, method, size, csize, crc32=crc)
        facts.members.append(stats)
        key = None
        try:
            if cache is not None:
                key = (method, csize, size, arc.digest(index))
                hit = cache.get(key)
                if hit is not None:
                    stats.read = csize
                    facts.elfs.append(dataclasses.replace(hit, member=name))
                    continue
            elf = arc.scan_elf(index, name)
        except WheelscanError as e:
            facts.errors.append(MemberError(name, str(e)))
            elf = None
        stats.inflated = arc.last_inflated
        stats.read = arc.last_read
        if elf is not None:
            facts.elfs.append(elf)
            if key is not None and cache is not None:
                cache.put(key, elf)
