"""The write side of schema 2's blobs: one wheel row with its facts split, its ELF bodies
interned (content-addressed, appended to the open pack), every blob compressed, and the
dictionaries trained once a store holds enough to train them.

Used by the writer (``scan``, ``rejudge``) and by the migration from schema 1, always inside a
transaction the caller opened, which calls :meth:`Encoder.flush` before it commits and
:meth:`Encoder.forget` after a rollback.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from .codec import (
    KINDS,
    LEVEL,
    OPEN_LEVEL,
    PACK_BYTES,
    PACK_WINDOW_LOG,
    SMALL_LEVEL,
    TRAIN_BYTES,
    Codec,
    digest,
    dumps,
    member_key,
    split_facts,
    strip_verdict,
    train,
)

if TYPE_CHECKING:
    import sqlite3

__all__ = ["TRAINED", "TRAIN_AT", "WHEEL_COLUMNS", "Encoder"]

#: blobs of one kind stored without a dictionary, in one session, after which the writer
#: trains one (a store that never gets there trains at close, if it has enough)
TRAIN_AT = 256

#: the ``wheels`` columns a caller gives :meth:`Encoder.write_wheel`, in this order
WHEEL_COLUMNS = ("location", "filename", "project", "size", "mtime", "content_hash",
                 "upload_time", "yanked", "status", "error", "facts_schema", "policy_version",
                 "engine", "scanned_at", "judged_at", "scan_seconds", "inflated")  # fmt: skip
_BLOB_COLUMNS = ("record_checked", "facts", "facts_dict", "verdict", "verdict_dict",
                 "verdict_strip")  # fmt: skip
_ALL = (*WHEEL_COLUMNS, *_BLOB_COLUMNS)
_UPSERT = (
    f"INSERT INTO wheels ({', '.join(_ALL)}) VALUES ({', '.join('?' * len(_ALL))})"
    " ON CONFLICT (location) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _ALL if c != "location")
    + " RETURNING id"
)
_INSERT_WITH_ID = (
    f"INSERT INTO wheels (id, {', '.join(_ALL)}) VALUES (?, {', '.join('?' * len(_ALL))})"
)

#: per kind: the query of its blobs stored without a dictionary (id, blob), and the update
#: that re-encodes one
_UNTRAINED = {
    "wheel": ("SELECT id, facts FROM wheels WHERE facts_dict = 0 AND facts IS NOT NULL"
              " ORDER BY id",
              "UPDATE wheels SET facts = ?, facts_dict = ? WHERE id = ?"),
    "verdict": ("SELECT id, verdict FROM wheels WHERE verdict_dict = 0 AND verdict IS NOT NULL"
                " ORDER BY id",
                "UPDATE wheels SET verdict = ?, verdict_dict = ? WHERE id = ?"),
}  # fmt: skip
#: the kinds a dictionary is trained for.
#: ELF packs are not given a dictionary: on the benchmark corpus one trained on ELF bodies
#: makes 4 MiB packs 1% smaller, less than the dictionary's own size (an ELF pack's
#: ``dict_id`` is 0; a reader still honours another)
TRAINED = tuple(_UNTRAINED)


class Encoder:
    def __init__(self, con: sqlite3.Connection, *, train_at: int = TRAIN_AT) -> None:
        self.con = con
        self.codec = Codec(con)
        self.train_at = train_at
        self.forget()

    def forget(self) -> None:
        """Drop what this session learned of the tables (after a rollback)."""
        self._dict_ids = {kind: self.codec.latest(kind) for kind in KINDS}
        self._untrained = dict.fromkeys(KINDS, 0)  # blobs stored without a dictionary
        self._tried: set[str] = set()
        self._ids: OrderedDict[bytes, int] = OrderedDict()  # digest -> elf_facts id
        #: the open pack: (id, its bodies), once this session has read or started it
        self._pack: tuple[int, bytearray] | None = None
        self._pack_dirty = False
        #: the open pack was last written at OPEN_LEVEL by this session (the final flush
        #: writes it at LEVEL)
        self._pack_open_level = False

    # -- blobs ------------------------------------------------------------------------------

    def _compress(self, kind: str, data: bytes) -> tuple[bytes, int]:
        dict_id = self._dict_ids[kind]
        if not dict_id:
            self._untrained[kind] += 1
        return self.codec.compress(data, dict_id, level=SMALL_LEVEL), dict_id

    def elf(self, body: bytes, soname: str | None) -> int:
        """The ``elf_facts`` id of ``body``, the row added if new."""
        dg = digest(body)
        got = self._ids.get(dg)
        if got is None:
            row = self.con.execute("SELECT id FROM elf_facts WHERE digest = ?", (dg,)).fetchone()
            got = int(row[0]) if row is not None else self._add_elf(dg, body, soname)
            self._ids[dg] = got
            while len(self._ids) > 100_000:
                self._ids.popitem(last=False)
        return got

    def _add_elf(self, dg: bytes, body: bytes, soname: str | None) -> int:
        pack_id, data = self._open_pack(len(body))
        off = len(data)
        data += body
        self._pack_dirty = True
        if not self._dict_ids["elf"]:
            self._untrained["elf"] += 1
        return int(self.con.execute(
            "INSERT INTO elf_facts (digest, soname, pack_id, offset, length)"
            " VALUES (?, ?, ?, ?, ?)",
            (dg, soname, pack_id, off, len(body)),
        ).lastrowid or 0)  # fmt: skip

    def _open_pack(self, adding: int, *, create: bool = True) -> tuple[int, bytearray]:
        """The pack new bodies go to: the last one, unless it is full (then a new one;
        ``create`` False: none, and the last one may be None)."""
        if self._pack is None:
            row = self.con.execute(
                "SELECT id, dict_id, body FROM elf_packs ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is not None:
                blob = bytes(row[2])
                data = self.codec.decompress(blob, int(row[1])) if blob else b""
                self._pack = (int(row[0]), bytearray(data))
        if self._pack is not None and self._pack[1] and len(self._pack[1]) + adding > PACK_BYTES:
            self.flush(final=True)  # the pack is closed: its last encoding
            self._pack = None
        if self._pack is None and create:
            pack_id = int(self.con.execute(
                "INSERT INTO elf_packs (dict_id, size, body) VALUES (0, 0, x'')"
            ).lastrowid or 0)  # fmt: skip
            self._pack = (pack_id, bytearray())
        return self._pack  # type: ignore[return-value]

    def flush(self, *, final: bool = False) -> None:
        """Write the open pack, if bodies were added to it (before the caller commits): at
        OPEN_LEVEL, or (``final``: the session ends, or the pack is full) at LEVEL, once."""
        if self._pack is None or not (self._pack_dirty or (final and self._pack_open_level)):
            return
        pack_id, data = self._pack
        raw = bytes(data)
        dict_id = self._dict_ids["elf"]
        if final:
            blob = self.codec.compress(raw, dict_id, level=LEVEL, window_log=PACK_WINDOW_LOG)
        else:
            blob = self.codec.compress(raw, dict_id, level=OPEN_LEVEL)
        self.con.execute("UPDATE elf_packs SET dict_id = ?, size = ?, body = ? WHERE id = ?",
                         (dict_id, len(raw), blob, pack_id))  # fmt: skip
        self.codec.remember_pack(pack_id, raw)
        self._pack_dirty = False
        self._pack_open_level = not final

    def seal(self) -> None:
        """Write the last pack at LEVEL, whoever wrote it last (a session killed before its
        final flush leaves it at OPEN_LEVEL): the end of a migration, a compaction."""
        self._open_pack(0, create=False)
        if self._pack is not None:
            self._pack_open_level = True
            self.flush(final=True)

    def member(self, key: str, facts_schema: int, elf_json: str, now: float) -> None:
        """A member-cache entry: the member's key to its ELF body."""
        e = json.loads(elf_json)
        e.pop("member", None)
        soname = e.get("soname")
        elf_id = self.elf(dumps(e).encode(), soname if isinstance(soname, str) else None)
        self.con.execute(
            "INSERT OR IGNORE INTO members (digest, size, csize, method, facts_schema, elf_id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*member_key(key), facts_schema, elf_id, now),
        )

    def write_wheel(
        self,
        values: tuple[object, ...],
        facts: str | None,
        verdict: str | None,
        *,
        wheel_id: int | None = None,
    ) -> int:
        """Insert (``wheel_id`` given: as that row) or replace (by location) one wheel row:
        ``values`` the :data:`WHEEL_COLUMNS`, ``facts`` and ``verdict`` their JSON."""
        location, filename = str(values[0]), str(values[1])
        split = None
        blobs: list[object] = [None, None, None]
        if facts is not None:
            split = split_facts(facts)
            blob, dict_id = self._compress("wheel", split.wheel)
            blobs = [split.record_checked, blob, dict_id]
        blobs += self.verdict(verdict, filename, location)
        row = (*values, *blobs)
        if wheel_id is None:
            wheel_id = int(self.con.execute(_UPSERT, row).fetchone()[0])
            self.con.execute("DELETE FROM wheel_elfs WHERE wheel_id = ?", (wheel_id,))
        else:
            self.con.execute(_INSERT_WITH_ID, (wheel_id, *row))
        if split is not None and split.elfs:
            links = [
                (wheel_id, ordinal, self.elf(body, soname), member,
                 path if member is None else None)
                for ordinal, path, member, body, soname in split.elfs
            ]  # fmt: skip
            self.con.executemany(
                "INSERT INTO wheel_elfs (wheel_id, ordinal, elf_id, member, path)"
                " VALUES (?, ?, ?, ?, ?)",
                links,
            )
        return wheel_id

    def verdict(self, text: str | None, filename: str, location: str) -> tuple[Any, Any, Any]:
        """(blob, dictionary id, strip bits) of a verdict JSON; all None for None."""
        if text is None:
            return None, None, None
        stripped, bits = strip_verdict(text, filename, location)
        blob, dict_id = self._compress("verdict", stripped.encode("utf-8", "surrogatepass"))
        return blob, dict_id, bits

    # -- dictionaries -----------------------------------------------------------------------

    def maybe_train(self, *, final: bool = False) -> None:
        """Train each kind's dictionary the store lacks once this session stored
        :attr:`train_at` blobs of it without one (``final``: with whatever there is), then
        re-encode the blobs stored without it. Tried once per session and kind."""
        for kind in TRAINED:
            if self._dict_ids[kind] or not self._untrained[kind]:
                continue
            if kind in self._tried or (not final and self._untrained[kind] < self.train_at):
                continue
            self._tried.add(kind)
            self.add_dictionary(kind, self._samples(kind))

    def _samples(self, kind: str) -> list[bytes]:
        """Up to TRAIN_BYTES of ``kind``'s blobs stored without a dictionary, decoded."""
        samples: list[bytes] = []
        total = 0
        for _, blob in self.con.execute(_UNTRAINED[kind][0]).fetchall():
            if not blob:
                continue
            data = self.codec.decompress(bytes(blob), 0)
            samples.append(data)
            total += len(data)
            if total >= TRAIN_BYTES:
                break
        return samples

    def add_dictionary(self, kind: str, samples: list[bytes]) -> int:
        """Train a ``kind`` dictionary on ``samples``, store it and re-encode that kind's blobs
        stored without a dictionary; its id (0: not worth one)."""
        d = train(samples)
        if d is None:
            return 0
        dict_id = int(self.con.execute(
            "INSERT INTO zdicts (kind, dict, samples, created_at) VALUES (?, ?, ?, ?)",
            (kind, d, len(samples), time.time()),
        ).lastrowid or 0)  # fmt: skip
        self._dict_ids[kind] = dict_id
        select, update = _UNTRAINED[kind]
        for row_id, blob in self.con.execute(select).fetchall():
            old = bytes(blob)
            if not old:
                continue
            new = self.codec.compress(self.codec.decompress(old, 0), dict_id, level=SMALL_LEVEL)
            if len(new) < len(old):
                self.con.execute(update, (new, dict_id, row_id))
        self._untrained[kind] = 0
        return dict_id
