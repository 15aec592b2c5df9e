"""Store schema 1 to 2, in batches that survive a kill.

The first transaction renames the schema-1 tables (``wheels_v1``, ``members_v1``), creates
schema 2's, trains its dictionaries on the first schema-1 rows, and records the progress in
``meta`` (key :data:`~.schema.MIGRATING`). Each later transaction moves one batch of rows,
keeping their ids, and advances the progress with them; the last drops the schema-1 tables
and the key. A migration killed at any point resumes where its last commit left it, the next
time a writer opens the store, to the very same bytes (the dictionaries and delta bases are
chosen from the rows alone). Readers refuse a store while the key is present.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ...environment import hang_if_migrated
from .codec import TRAIN_BYTES, split_facts, strip_verdict
from .encode import TRAINED, WHEEL_COLUMNS, Encoder
from .schema import MIGRATING, SCHEMA, STORE_SCHEMA_VERSION

if TYPE_CHECKING:
    import sqlite3

__all__ = ["migrate_from_1"]

_V1_COLUMNS = ("id", *WHEEL_COLUMNS[:11], "facts", "verdict", *WHEEL_COLUMNS[11:])
#: schema-1 rows read to train the dictionaries (each kind stops at TRAIN_BYTES of samples)
_TRAIN_ROWS = 4000


def _start(con: sqlite3.Connection) -> None:
    """Rename schema 1's tables, create schema 2's and its dictionaries (one transaction)."""
    con.execute("DROP INDEX IF EXISTS wheels_status")
    con.execute("DROP INDEX IF EXISTS wheels_project")
    con.execute("ALTER TABLE wheels RENAME TO wheels_v1")
    con.execute("ALTER TABLE members RENAME TO members_v1")
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            con.execute(stmt)
    samples: dict[str, list[bytes]] = {k: [] for k in TRAINED}
    size = dict.fromkeys(TRAINED, 0)

    def add(kind: str, data: bytes) -> None:
        if size[kind] < TRAIN_BYTES:
            samples[kind].append(data)
            size[kind] += len(data)

    rows = con.execute(
        "SELECT filename, location, facts, verdict FROM wheels_v1 ORDER BY id LIMIT ?",
        (_TRAIN_ROWS,),
    )
    for filename, location, facts, verdict in rows:
        if facts is not None:
            add("wheel", split_facts(str(facts)).wheel)
        if verdict is not None:
            add("verdict", strip_verdict(str(verdict), str(filename), str(location))[0].encode())
    enc = Encoder(con)
    for kind in TRAINED:
        enc.add_dictionary(kind, samples[kind])
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                (str(STORE_SCHEMA_VERSION),))  # fmt: skip
    con.execute("INSERT INTO meta (key, value) VALUES (?, 'wheels:0')", (MIGRATING,))


def migrate_from_1(con: sqlite3.Connection, *, batch_rows: int = 500) -> None:
    """Migrate (or go on migrating) the store ``con`` holds to schema 2; the caller holds the
    writer lock. Each batch of ``batch_rows`` rows is one transaction."""
    con.execute("BEGIN IMMEDIATE")
    try:
        if con.execute("SELECT 1 FROM meta WHERE key = ?", (MIGRATING,)).fetchone() is None:
            _start(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    enc = Encoder(con, train_at=1 << 62)  # the dictionaries are the ones _start trained
    done = 0
    while True:
        con.execute("BEGIN IMMEDIATE")
        try:
            (progress,) = con.execute(
                "SELECT value FROM meta WHERE key = ?", (MIGRATING,)
            ).fetchone()
            table, _, last = str(progress).partition(":")
            n = _wheels(con, enc, int(last), batch_rows) if table == "wheels" else 0
            enc.flush()
            if table == "members" or n == 0:
                n = _members(con, enc, int(last) if table == "members" else 0, batch_rows)
                enc.flush()
                if n == 0:
                    enc.seal()
                    con.execute("DROP TABLE wheels_v1")
                    con.execute("DROP TABLE members_v1")
                    con.execute("DELETE FROM meta WHERE key = ?", (MIGRATING,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if n == 0:
            break
        done += n
        hang_if_migrated(done)
    con.execute("VACUUM")  # the schema-1 tables' pages go back to the file system


def _wheels(con: sqlite3.Connection, enc: Encoder, last: int, batch: int) -> int:
    rows = con.execute(
        f"SELECT {', '.join(_V1_COLUMNS)} FROM wheels_v1 WHERE id > ? ORDER BY id LIMIT ?",
        (last, batch),
    ).fetchall()
    for row in rows:
        wheel_id, values, facts, verdict = row[0], (*row[1:12], *row[14:]), row[12], row[13]
        enc.write_wheel(
            values,
            None if facts is None else str(facts),
            None if verdict is None else str(verdict),
            wheel_id=int(wheel_id),
        )
    if rows:
        con.execute("UPDATE meta SET value = ? WHERE key = ?",
                    (f"wheels:{rows[-1][0]}", MIGRATING))  # fmt: skip
    return len(rows)


def _member(enc: Encoder, key: object, schema: object, facts: object, created: object) -> None:
    # a cache entry that is not ELF facts: the cache forgets it
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        enc.member(str(key), int(schema), str(facts), float(created))  # type: ignore[call-overload,arg-type]


def _members(con: sqlite3.Connection, enc: Encoder, last: int, batch: int) -> int:
    rows = con.execute(
        "SELECT rowid, key, facts_schema, facts, created_at FROM members_v1"
        " WHERE rowid > ? ORDER BY rowid LIMIT ?",
        (last, batch),
    ).fetchall()
    for _, key, facts_schema, facts, created in rows:
        _member(enc, key, facts_schema, facts, created)
    if rows:
        con.execute("UPDATE meta SET value = ? WHERE key = ?",
                    (f"members:{rows[-1][0]}", MIGRATING))  # fmt: skip
    return len(rows)

