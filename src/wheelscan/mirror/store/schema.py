"""What a scan store is: its schema, its version, and the error for a file that is not one.

Both sides of the store read this module: the writer creates and checks the schema, the
reader checks the version before it reads. ``docs/store-schema.md`` documents the tables.
"""

from __future__ import annotations

__all__ = ["SCHEMA", "STORE_SCHEMA_VERSION", "StoreError"]

STORE_SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
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
    facts          TEXT,
    verdict        TEXT,
    policy_version TEXT,
    engine         TEXT,
    scanned_at     REAL NOT NULL,
    judged_at      REAL,
    scan_seconds   REAL,
    inflated       INTEGER
);
CREATE INDEX IF NOT EXISTS wheels_status ON wheels (status);
CREATE INDEX IF NOT EXISTS wheels_project ON wheels (project);
CREATE TABLE IF NOT EXISTS members (
    key          TEXT PRIMARY KEY,
    facts_schema INTEGER NOT NULL,
    facts        TEXT NOT NULL,
    created_at   REAL NOT NULL
);
"""

class StoreError(RuntimeError):
    """The database cannot be used (newer schema, not a wheelscan store)."""
