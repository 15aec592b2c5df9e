"""What a scan store is: its schema, its version, and the error for a file that is not one.

Both sides of the store read this module: the writer creates and checks the schema (and
migrates older stores, ``migrate``), the reader checks the version before it reads.
``docs/store-schema.md`` documents the tables.
"""

from __future__ import annotations

__all__ = ["MIGRATING", "SCHEMA", "STORE_SCHEMA_VERSION", "StoreError"]

#: 1: facts and verdicts as JSON text in each ``wheels`` row. 2: split, content-addressed and
#: zstd-compressed (``codec``); a schema-1 store is migrated when a writer opens it.
STORE_SCHEMA_VERSION = 2

#: the ``meta`` key present while a migration from schema 1 is under way (its value: the last
#: schema-1 wheel row id migrated)
MIGRATING = "migrating_from_1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS zdicts (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    dict       BLOB NOT NULL,
    samples    INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS wheels (
    id             INTEGER PRIMARY KEY,
    location       TEXT NOT NULL UNIQUE,
    filename       TEXT NOT NULL,
    project        TEXT,
    size           INTEGER,
    mtime          REAL,
    content_hash   TEXT,
    upload_time    TEXT,
    yanked         INTEGER,
    status         TEXT NOT NULL,
    error          TEXT,
    facts_schema   INTEGER,
    record_checked INTEGER,
    facts          BLOB,
    facts_dict     INTEGER,
    verdict        BLOB,
    verdict_dict   INTEGER,
    verdict_strip  INTEGER,
    policy_version TEXT,
    engine         TEXT,
    scanned_at     REAL NOT NULL,
    judged_at      REAL,
    scan_seconds   REAL,
    inflated       INTEGER
);
CREATE INDEX IF NOT EXISTS wheels_status ON wheels (status);
CREATE INDEX IF NOT EXISTS wheels_project ON wheels (project);
CREATE TABLE IF NOT EXISTS elf_packs (
    id      INTEGER PRIMARY KEY,
    dict_id INTEGER NOT NULL,
    size    INTEGER NOT NULL,
    body    BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS elf_facts (
    id      INTEGER PRIMARY KEY,
    digest  BLOB NOT NULL UNIQUE,
    soname  TEXT,
    pack_id INTEGER NOT NULL,
    offset  INTEGER NOT NULL,
    length  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS wheel_elfs (
    wheel_id INTEGER NOT NULL,
    ordinal  INTEGER NOT NULL,
    elf_id   INTEGER NOT NULL,
    member   INTEGER,
    path     TEXT,
    PRIMARY KEY (wheel_id, ordinal)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
    digest       BLOB NOT NULL,
    size         INTEGER NOT NULL,
    csize        INTEGER NOT NULL,
    method       INTEGER NOT NULL,
    facts_schema INTEGER NOT NULL,
    elf_id       INTEGER NOT NULL,
    created_at   REAL NOT NULL,
    PRIMARY KEY (digest, size, csize, method)
) WITHOUT ROWID;
"""


class StoreError(RuntimeError):
    """The database cannot be used (newer schema, not a wheelscan store)."""
