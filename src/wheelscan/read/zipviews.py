"""Two readers' views of one archive, compared: what zipfile installs against what a reader
walking the local headers installs.

CPython's :mod:`zipfile` (pip) reads the central directory. A streaming reader (uv before its
2025 fix, ``stream-unzip``, many upload scanners) walks the local headers from the start of the
file and stops at the first record that is not one. Where the two install other members, other
copies of a member or other bytes, the archive means two things: a ``confusion`` anomaly (the
``zip-confusion`` violation), and the streaming reader's extra binaries are judged as well.
Disagreements that leave every reader installing the same bytes are plain anomalies
(``zip-anomaly`` warnings), as PyPI's upload validator refuses them too.

Both engines parse the archive themselves (the native one in C, the lief engine with
:mod:`struct`); they hand their two views to :func:`compare`, which holds the rule.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CONFUSION", "Central", "Local", "audit", "compare", "decode_name", "name_problem",
    "walk_local",
]

#: An anomaly with this prefix is a disagreement between readers: a ``zip-confusion`` violation.
CONFUSION = "confusion: "

#: Messages of one kind listed before "and N more".
_SHOWN = 3

_UNPRINTABLE = frozenset(range(0x20)) | {0x7F}


class Central(NamedTuple):
    """One central directory entry as zipfile reads it (``offset``: of its local header)."""

    offset: int
    raw: bytes  # the name's bytes as stored
    flags: int
    method: int
    csize: int
    size: int
    crc: int


class Local(NamedTuple):
    """One local header a streaming reader meets (``csize``: what it skips to the next)."""

    offset: int
    raw: bytes
    flags: int
    method: int
    csize: int
    size: int
    crc: int


def decode_name(raw: bytes, flags: int) -> str:
    """A member name as zipfile decodes it (UTF-8 with general-purpose bit 11, else CP437),
    cut at its first NUL; bytes that are not UTF-8 are replaced, not fatal."""
    cut = raw.split(b"\0", 1)[0]
    return cut.decode("utf-8", "replace") if flags & 0x800 else cut.decode("cp437")


def name_problem(raw: bytes, flags: int) -> str | None:
    """What PyPI's validator refuses in a name: an unprintable byte, or bytes that are not
    UTF-8 (whatever bit 11 says: a reader that assumes UTF-8 sees another name). NUL is not
    reported here: the archive walk reports it as a confusion."""
    for b in raw:
        if b in _UNPRINTABLE and b:
            return f"holds the unprintable byte 0x{b:02x}"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "is not valid UTF-8"
    if not flags & 0x800 and any(b & 0x80 for b in raw):
        return "is UTF-8 without the UTF-8 flag (zipfile reads it as CP437)"
    return None


def _more(msgs: list[str], out: list[str], prefix: str) -> None:
    out.extend(prefix + m for m in msgs[:_SHOWN])
    if len(msgs) > _SHOWN:
        out.append(f"{prefix}and {len(msgs) - _SHOWN} more like it")


def compare(
    central: list[Central], local: list[Local], stop: int, stop_why: str
) -> tuple[list[str], list[int]]:
    """Compare zipfile's members (``central``, in directory order) with a streaming reader's
    (``local``, in file order; it stopped at offset ``stop`` because ``stop_why``).

    Each view installs the last copy of a name. Returns the anomalies (``CONFUSION``-prefixed
    where the views install different things) and the indexes into ``local`` of the copies
    only the streaming reader installs, whose bytes must be judged too.
    """
    zf: dict[str, Central] = {}
    for c in central:
        zf[decode_name(c.raw, c.flags)] = c
    st: dict[str, tuple[int, Local]] = {}
    dup_local: list[str] = []
    for i, h in enumerate(local):
        key = decode_name(h.raw, h.flags)
        if key in st:
            dup_local.append(key)
        st[key] = (i, h)
    by_offset = {c.offset: c for c in central}
    only_local: list[str] = []
    unreached: list[str] = []
    other_copy: list[str] = []
    other_bytes: list[str] = []
    judge: list[int] = []
    for key, (i, h) in st.items():
        z = zf.get(key)
        if z is None:
            only_local.append(
                f"{key!r} is only in a local header (offset {h.offset}): a reader walking "
                f"the local headers installs it, zipfile does not")
        elif z.offset != h.offset:
            other_copy.append(
                f"{key!r}: zipfile installs the copy at offset {z.offset}, a reader walking "
                f"the local headers the one at offset {h.offset}")
        elif z.method != h.method or z.csize != h.csize:
            other_bytes.append(
                f"{key!r}: its local header says method {h.method} and {h.csize} compressed "
                f"bytes, the central directory method {z.method} and {z.csize}: the readers "
                f"extract different bytes")
        else:
            continue
        judge.append(i)
    for key, z in zf.items():
        if key not in st:
            unreached.append(
                f"zipfile installs {key!r} (local header at offset {z.offset}); a reader "
                f"walking the local headers never sees it ({stop_why} at offset {stop})")
    out: list[str] = []
    for msgs in (only_local, other_copy, other_bytes, unreached):
        _more(msgs, out, CONFUSION)
    hidden: list[Local] = []
    sizes: list[str] = []
    for h in local:
        found = by_offset.get(h.offset)
        if found is None:
            key = decode_name(h.raw, h.flags)
            if key in zf and st[key][1] is not h:
                hidden.append(h)
        elif (not h.flags & 8 and found.raw == h.raw and found.method == h.method
              and found.csize == h.csize and (found.size != h.size or found.crc != h.crc)):
            sizes.append(decode_name(h.raw, h.flags))
    if sizes:
        out.append(f"local header of {sizes[0]!r} gives another size or CRC-32 than the "
                   f"central directory" + (f" (and {len(sizes) - 1} more)" if sizes[1:] else ""))
    if hidden:
        out.append(f"{len(hidden)} local header(s) not in the central directory, e.g. "
                   f"{decode_name(hidden[0].raw, hidden[0].flags)!r} at offset "
                   f"{hidden[0].offset} (an earlier copy every reader overwrites)")
    if dup_local:
        out.append(f"duplicate names in the local headers, e.g. {dup_local[0]!r}")
    return out, judge


def _local_extras(extra: bytes, csize: int, size: int, method: int
                  ) -> tuple[int, int, list[str]]:
    """A local header's extra fields: its sizes after any ZIP64 extra, and what PyPI's
    validator refuses in them (a duplicate ZIP64 or Unicode path extra, a ZIP64 extra of an
    odd length, a Unicode path that is unprintable or not UTF-8)."""
    problems: list[str] = []
    seen: set[int] = set()
    q = 0
    while q + 4 <= len(extra):
        hid = int.from_bytes(extra[q:q + 2], "little")
        hsz = int.from_bytes(extra[q + 2:q + 4], "little")
        data = extra[q + 4:q + 4 + hsz]
        if len(data) < hsz:
            problems.append(f"a corrupt extra field 0x{hid:04x}")
            break
        if hid in (0x0001, 0x7075) and hid in seen:
            problems.append(f"two 0x{hid:04x} extra fields")
        seen.add(hid)
        if hid == 0x0001:
            if hsz not in (0, 8, 16, 24, 28):
                problems.append(f"a ZIP64 extra field of {hsz} bytes")
            if size == 0xFFFFFFFF and hsz >= 8:
                size = int.from_bytes(data[:8], "little")
            if csize == 0xFFFFFFFF and hsz >= 16:
                csize = int.from_bytes(data[8:16], "little")
            elif csize == 0xFFFFFFFF and hsz == 8 and method == 0:
                csize = size
        elif hid == 0x7075 and hsz >= 5:
            bad = name_problem(data[5:], 0x800)
            if bad:
                problems.append(f"a Unicode path extra field that {bad}")
        q += 4 + hsz
    return csize, size, problems


def walk_local(
    read: Callable[[int, int], bytes], size: int, start: int, central: dict[int, Central]
) -> tuple[list[Local], int, str, list[str]]:
    """Walk the local headers from ``start`` as a streaming reader does, until a record that
    is not a local header. ``read(offset, n)`` gives at most ``n`` bytes; ``central`` maps a
    local header's offset to the directory entry that points at it (whose compressed size is
    taken when a data descriptor leaves the header's sizes at zero). Headers only: nothing
    is inflated. Returns the local headers, where and why the walk stopped, and anomalies."""
    out: list[Local] = []
    problems: list[str] = []
    pos = start
    why = "the end of the file"
    while pos < size:
        head = read(pos, 30)
        if head[:4] != b"PK\x03\x04":
            why = ("the central directory" if head[:4] == b"PK\x01\x02" else
                   f"an unknown record signature {head[:4].hex()}")
            break
        if len(head) < 30:
            why = "a truncated local header"
            break
        flags, method = struct.unpack_from("<HH", head, 6)
        crc, csize, usize, nlen, elen = struct.unpack_from("<IIIHH", head, 14)
        rest = read(pos + 30, nlen + elen)
        if len(rest) < nlen + elen:
            why = "a truncated local header"
            break
        raw = rest[:nlen]
        bad = name_problem(raw, flags)
        if bad and b"\0" not in raw:
            problems.append(f"local header name {decode_name(raw, flags)!r} {bad}")
        csize, usize, extra_bad = _local_extras(rest[nlen:], csize, usize, method)
        problems.extend(f"local header of {decode_name(raw, flags)!r} has {b}"
                        for b in extra_bad)
        walk = csize
        if flags & 8 and csize == 0:
            c = central.get(pos)
            if c is None:
                out.append(Local(pos, raw, flags, method, csize, usize, crc))
                pos += 30 + nlen + elen
                why = "a data descriptor it cannot follow without inflating"
                break
            walk = c.csize
        out.append(Local(pos, raw, flags, method, walk, usize, crc))
        pos += 30 + nlen + elen + walk
        if flags & 8:
            pos += 4 if read(pos, 4) == b"PK\x07\x08" else 0
            c = central.get(out[-1].offset)
            pos += 20 if (c is not None and max(c.csize, c.size) >= 0xFFFFFFFF) else 12
    return out, min(pos, size), why, problems


def audit(
    read: Callable[[int, int], bytes], size: int, start: int, central: list[Central],
    cd_start: int,
) -> tuple[list[str], list[Local]]:
    """Walk the local headers from ``start`` and compare the two views (:func:`compare`);
    the archive's members must also end where its central directory (at ``cd_start``, after
    any prepended bytes) begins. Returns the anomalies and the local headers whose bytes only
    the streaming reader installs."""
    local, stop, why, problems = walk_local(read, size, start, {c.offset: c for c in central})
    found, judge = compare(central, local, stop, why)
    if stop < cd_start:
        problems.append(f"{cd_start - stop} bytes between the members and the central "
                        f"directory ({why} at offset {stop})")
    elif stop > cd_start and local:
        problems.append(f"the last member's data (to offset {stop}) runs into the central "
                        f"directory at offset {cd_start}")
    return found + problems, [local[i] for i in judge]
