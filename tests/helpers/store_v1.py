"""A store as wheelscan wrote it before store schema 2: the schema-1 tables, filled with raw
SQL from the outcomes a scan produces, so that migrating and reading an old store can be
tested on a real SQLite file."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from wheelscan.facts import FACTS_SCHEMA_VERSION

if TYPE_CHECKING:
    from pathlib import Path

    from wheelscan.mirror.refs import WheelRef
    from wheelscan.mirror.store import Outcome

#: the tables of store schema 1, as docs/store-schema.md described them
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE wheels (
    id INTEGER PRIMARY KEY, location TEXT NOT NULL UNIQUE, filename TEXT NOT NULL,
    project TEXT, size INTEGER, mtime REAL, content_hash TEXT, upload_time TEXT,
    yanked INTEGER, status TEXT NOT NULL, error TEXT, facts_schema INTEGER, facts TEXT,
    verdict TEXT, policy_version TEXT, engine TEXT, scanned_at REAL NOT NULL,
    judged_at REAL, scan_seconds REAL, inflated INTEGER
);
CREATE INDEX wheels_status ON wheels (status);
CREATE INDEX wheels_project ON wheels (project);
CREATE TABLE members (
    key TEXT PRIMARY KEY, facts_schema INTEGER NOT NULL, facts TEXT NOT NULL,
    created_at REAL NOT NULL
);
INSERT INTO meta (key, value) VALUES ('schema_version', '1');
"""


def write_v1(db: Path, rows: list[tuple[WheelRef, Outcome]]) -> None:
    """A schema-1 store at ``db`` holding ``rows`` (and their member-cache entries)."""
    con = sqlite3.connect(db)
    con.executescript(SCHEMA_V1)
    now = 1_700_000_000.0
    for ref, out in rows:
        con.execute(
            "INSERT INTO wheels (location, filename, project, size, mtime, content_hash,"
            " upload_time, yanked, status, error, facts_schema, facts, verdict, policy_version,"
            " engine, scanned_at, judged_at, scan_seconds, inflated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ref.location, ref.filename, ref.project, ref.size, ref.mtime, ref.content_hash,
             ref.upload_time, None if ref.yanked is None else int(ref.yanked), out.status,
             out.error, FACTS_SCHEMA_VERSION, out.facts_json, out.verdict_json,
             out.policy_version, out.engine, now, now if out.verdict_json else None,
             out.scan_seconds, out.inflated),
        )  # fmt: skip
        con.executemany(
            "INSERT OR IGNORE INTO members (key, facts_schema, facts, created_at)"
            " VALUES (?, ?, ?, ?)",
            [(k, FACTS_SCHEMA_VERSION, j, time.time()) for k, j in out.new_members],
        )
    con.commit()
    con.close()
