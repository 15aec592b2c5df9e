"""Garbage collection of ELF facts: the ``elf_facts`` rows no wheel links to any more, and the
pack bytes only they used.

A wheel row replaced by a re-scan (the file at its location changed, or a newer facts schema)
drops its ELF links; a body no other wheel links to stays in its pack, and its member-cache
entries with it. :func:`collect_garbage` deletes those rows and entries, and rewrites each
pack that holds one of their bodies: its other bodies move, in their order, to new packs (new
ids, never an old one's: a reader may have cached a pack's bytes by its id), and the old pack
goes. Referenced rows keep their ids and their bytes; only where the bytes lie changes.

It runs inside the caller's transaction (the writer's lock held), so a kill leaves the store
as it was before it began. The highest ``elf_facts`` id is kept even when unreferenced: a new
row then never gets the id of a deleted one (SQLite gives max + 1), which a reader may have
cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...environment import hang_if_collecting
from .codec import LEVEL, PACK_BYTES, PACK_WINDOW_LOG

if TYPE_CHECKING:
    import sqlite3

    from .encode import Encoder

__all__ = ["Collected", "collect_garbage"]


@dataclass
class Collected:
    """What one collection removed."""

    elf_rows: int = 0  # unreferenced ``elf_facts`` rows deleted
    elf_bytes: int = 0  # the bytes of their bodies
    members: int = 0  # member-cache entries that pointed at them, deleted
    packs_rewritten: int = 0  # packs that held one of their bodies (deleted)
    packs_written: int = 0  # new packs holding those packs' other bodies
    pack_bytes_before: int = 0  # stored (compressed) bytes of the rewritten packs
    pack_bytes_after: int = 0  # stored bytes of the new packs


def collect_garbage(con: sqlite3.Connection, enc: Encoder) -> Collected:
    """Delete unreferenced ELF facts and rewrite the packs that held them, inside the caller's
    transaction; the caller calls ``enc.forget()`` after it commits or rolls back."""
    out = Collected()
    con.execute("DROP TABLE IF EXISTS temp.gc_live")
    con.execute("CREATE TEMP TABLE gc_live (id INTEGER PRIMARY KEY)")
    con.execute("INSERT OR IGNORE INTO temp.gc_live SELECT elf_id FROM wheel_elfs")
    con.execute("INSERT OR IGNORE INTO temp.gc_live SELECT max(id) FROM elf_facts"
                " WHERE EXISTS (SELECT 1 FROM elf_facts)")  # fmt: skip
    dead = "SELECT id FROM elf_facts WHERE id NOT IN (SELECT id FROM temp.gc_live)"
    row = con.execute(f"SELECT count(*), sum(length) FROM elf_facts WHERE id IN ({dead})")
    out.elf_rows, out.elf_bytes = (int(v or 0) for v in row.fetchone())
    if not out.elf_rows:
        con.execute("DROP TABLE temp.gc_live")
        return out
    sql = f"SELECT DISTINCT pack_id FROM elf_facts WHERE id IN ({dead}) ORDER BY pack_id"
    packs = [int(r[0]) for r in con.execute(sql)]
    out.members = con.execute(f"DELETE FROM members WHERE elf_id IN ({dead})").rowcount
    con.execute(f"DELETE FROM elf_facts WHERE id IN ({dead})")
    codec = enc.codec
    dict_id = codec.latest("elf")
    moved: list[tuple[int, int]] = []  # (elf id, offset) of the bodies in ``data``
    data = bytearray()
    updates: list[tuple[int, int, int]] = []  # (pack id, offset, elf id)

    def write() -> None:
        blob = codec.compress(bytes(data), dict_id, level=LEVEL, window_log=PACK_WINDOW_LOG)
        pack_id = int(con.execute(
            "INSERT INTO elf_packs (dict_id, size, body) VALUES (?, ?, ?)",
            (dict_id, len(data), blob),
        ).lastrowid or 0)  # fmt: skip
        updates.extend((pack_id, off, elf_id) for elf_id, off in moved)
        out.packs_written += 1
        out.pack_bytes_after += len(blob)
        moved.clear()
        data.clear()

    for pack_id in packs:
        (stored,) = con.execute("SELECT length(body) FROM elf_packs WHERE id = ?",
                                (pack_id,)).fetchone()  # fmt: skip
        out.pack_bytes_before += int(stored or 0)
        raw = codec.pack(pack_id)
        for elf_id, off, n in con.execute(
            "SELECT id, offset, length FROM elf_facts WHERE pack_id = ? ORDER BY offset, id",
            (pack_id,),
        ).fetchall():
            if data and len(data) + n > PACK_BYTES:
                write()
            moved.append((int(elf_id), len(data)))
            data += raw[off : off + n]
        out.packs_rewritten += 1
    if data:
        write()
    con.executemany("UPDATE elf_facts SET pack_id = ?, offset = ? WHERE id = ?", updates)
    con.executemany("DELETE FROM elf_packs WHERE id = ?", [(p,) for p in packs])
    con.execute("DROP TABLE temp.gc_live")
    hang_if_collecting()
    return out
