"""The writer side of the store: one SQLite database (WAL) holding facts and verdicts, resumable.

The schema is documented in ``docs/store-schema.md`` and versioned by :data:`STORE_SCHEMA_VERSION`
(kept in ``meta``); a schema-1 store is migrated when a writer opens it (``migrate``). A
wheel's identity is its ``location``; a re-run skips a wheel whose size, mtime (and content
hash, where known) are unchanged and whose facts schema is current.
Writes are buffered and committed in batches; the only process that writes is the one that owns
the :class:`Store` (workers only read the member cache). One :class:`Store` at a time may own a
database: it holds an exclusive ``flock`` on ``<db>.lock`` (which names its pid) for its whole
life, and a second one is refused with :class:`StoreBusy` naming that process.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...facts import FACTS_SCHEMA_VERSION
from .encode import Encoder
from .gc import Collected, collect_garbage
from .migrate import migrate_from_1
from .schema import MIGRATING, SCHEMA, STORE_SCHEMA_VERSION, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..refs import WheelRef

__all__ = ["Collected", "Outcome", "Store", "StoreBusy", "connect"]

class StoreBusy(StoreError):
    """Another process owns the database for writing (a scan or rejudge still running)."""


def _lock_writer(path: str) -> int:
    """Take the store's writer lock (``<db>.lock``) or raise StoreBusy naming its holder.

    A sidecar file rather than the database itself: SQLite's own locks are POSIX byte-range
    locks on the database, which ``flock`` emulations (NFS) could collide with. The lock dies
    with its process, so a killed scan never leaves a store locked.
    """
    lock = f"{path}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("ascii", "replace").strip()
        os.close(fd)
        who = f"process {holder}" if holder.isdigit() else "another process"
        msg = (
            f"{path}: in use by another wheelscan scan or rejudge ({who}, lock {lock}); "
            "wait for it to finish, or use another --db"
        )
        raise StoreBusy(msg) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


@dataclass
class Outcome:
    """What a worker sends back for one wheel: JSON already encoded, ready to insert."""

    location: str
    filename: str
    status: str
    error: str | None = None
    facts_json: str | None = None
    verdict_json: str | None = None
    policy_version: str | None = None
    engine: str | None = None
    scan_seconds: float = 0.0
    inflated: int = 0
    size: int = 0  # bytes of the wheel file (facts.size)
    transferred: int | None = None  # response-body bytes fetched (remote wheels); None: local
    #: member-cache entries learned while scanning: (key, ElfFacts JSON)
    new_members: list[tuple[str, str]] = field(default_factory=list)


def connect(path: str, *, timeout: float = 60.0) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives a process crash (kill -9), not a power cut.
    con.execute("PRAGMA synchronous=NORMAL")
    return con


class Store:
    """The writer side of the database; buffers rows and commits them in batches."""

    def __init__(
        self,
        path: str,
        *,
        batch_rows: int = 500,
        batch_seconds: float = 2.0,
    ) -> None:
        self.path = path
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self._lock_fd = _lock_writer(path)
        try:
            self.con = connect(path)
            self._check_schema()
            self._enc = Encoder(self.con)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._rows: list[tuple[tuple[object, ...], str | None, str | None]] = []
        self._members: list[tuple[str, int, str, float]] = []
        self._touch: list[tuple[object, ...]] = []
        #: (status, verdict JSON, filename, location, policy version, judged at, row id)
        self._verdicts: list[tuple[str, str | None, str, str, str | None, float, int]] = []
        self._last_commit = time.monotonic()

    def _check_schema(self) -> None:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            if "wheels" in tables and "meta" not in tables:
                msg = f"{self.path}: has a 'wheels' table but is not a wheelscan store"
                raise StoreError(msg)
            row = None
            if "meta" in tables:
                row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is not None and int(row[0]) > STORE_SCHEMA_VERSION:
                msg = (
                    f"{self.path}: store schema {row[0]} is newer than this wheelscan "
                    f"understands ({STORE_SCHEMA_VERSION})"
                )
                raise StoreError(msg)
            old = row is not None and int(row[0]) < STORE_SCHEMA_VERSION
            if not old:
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        con.execute(stmt)
            if row is None:
                con.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(STORE_SCHEMA_VERSION),),
                )
            migrating = old or con.execute(
                "SELECT 1 FROM meta WHERE key = ?", (MIGRATING,)
            ).fetchone() is not None
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if migrating:
            migrate_from_1(con, batch_rows=self.batch_rows)

    # -- reads ------------------------------------------------------------------------------

    _RESUME_COLS = "size, mtime, content_hash, facts_schema, status, upload_time, yanked"
    #: with ``needs_record``: whether the stored facts verified RECORD
    _RECORD_COL = ", record_checked"
    needs_record = False

    def _resume_cols(self) -> str:
        return self._RESUME_COLS + (self._RECORD_COL if self.needs_record else "")

    def current_status(self, ref: WheelRef) -> str | None:
        """The stored status if ``ref`` is already scanned and unchanged, else None."""
        row = self.con.execute(
            f"SELECT {self._resume_cols()} FROM wheels WHERE location = ?", (ref.location,)
        ).fetchone()
        return None if row is None else self._unchanged(ref, row)

    def current_statuses(self, refs: list[WheelRef]) -> list[str | None]:
        """:meth:`current_status` of each ref, with one indexed query per 500 refs."""
        out: list[str | None] = []
        for i in range(0, len(refs), 500):
            chunk = refs[i : i + 500]
            marks = ",".join("?" * len(chunk))
            cols = self._resume_cols()
            rows = {
                str(r[0]): r[1:]
                for r in self.con.execute(
                    f"SELECT location, {cols} FROM wheels WHERE location IN ({marks})",
                    [r.location for r in chunk],
                )
            }
            for ref in chunk:
                row = rows.get(ref.location)
                out.append(None if row is None else self._unchanged(ref, row))
        return out

    def _unchanged(self, ref: WheelRef, row: tuple[object, ...]) -> str | None:
        size, mtime, chash, schema, status, upload, yanked = row[:7]
        if schema != FACTS_SCHEMA_VERSION or size != ref.size or mtime != ref.mtime:
            return None
        if self.needs_record and not row[7]:
            return None  # stored without RECORD verified; this scan verifies it
        if chash and ref.content_hash and chash != ref.content_hash:
            return None
        new_yanked = None if ref.yanked is None else int(ref.yanked)
        if (ref.upload_time, new_yanked) != (upload, yanked) and (
            ref.upload_time is not None or ref.yanked is not None
        ):
            # the index changed (e.g. a yank) while the file did not: keep the scan
            self._touch.append((ref.upload_time, new_yanked, ref.location))
        return str(status)

    def count(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM wheels").fetchone()[0])

    def status_counts(self) -> dict[str, int]:
        return {
            str(s): int(n)
            for s, n in self.con.execute("SELECT status, count(*) FROM wheels GROUP BY status")
        }

    def iter_facts(self, chunk: int = 500) -> Iterator[list[tuple[int, str, str, str]]]:
        """(id, filename, location, facts JSON) of rows with facts, in chunks by id."""
        last = -1
        codec = self._enc.codec
        while True:
            rows = self.con.execute(
                "SELECT id, filename, location, facts, facts_dict FROM wheels "
                "WHERE facts IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(int(i), str(f), str(loc), str(codec.facts(int(i), b, d)))
                   for i, f, loc, b, d in rows]  # fmt: skip

    # -- writes -----------------------------------------------------------------------------

    def record(self, ref: WheelRef, out: Outcome) -> None:
        now = time.time()
        values = (
            ref.location, ref.filename, ref.project, ref.size, ref.mtime, ref.content_hash,
            ref.upload_time, None if ref.yanked is None else int(ref.yanked),
            out.status, out.error, FACTS_SCHEMA_VERSION, out.policy_version, out.engine, now,
            now if out.verdict_json else None, out.scan_seconds, out.inflated,
        )  # fmt: skip
        self._rows.append((values, out.facts_json, out.verdict_json))
        self._members.extend((k, FACTS_SCHEMA_VERSION, j, now) for k, j in out.new_members)
        self.maybe_commit()

    def update_verdict(
        self,
        row_id: int,
        status: str,
        verdict_json: str | None,
        policy_version: str | None,
        *,
        filename: str,
        location: str,
    ) -> None:
        """A new verdict for row ``row_id``, whose filename and location (as
        :meth:`iter_facts` gave them) the stored verdict leaves out."""
        self._verdicts.append(
            (status, verdict_json, filename, location, policy_version, time.time(), row_id)
        )
        if len(self._verdicts) >= self.batch_rows:
            self.commit()

    def maybe_commit(self) -> None:
        pending = len(self._rows) + len(self._touch)
        if pending >= self.batch_rows or (
            pending and time.monotonic() - self._last_commit >= self.batch_seconds
        ):
            self.commit()

    def commit(self, *, final: bool = False) -> None:
        """Write what is buffered in one transaction (``final``: the last one; a dictionary
        the store still lacks is trained on what it holds)."""
        verdicts = self._verdicts
        if self._rows or self._members or self._touch or verdicts or final:
            con = self.con
            enc = self._enc
            con.execute("BEGIN IMMEDIATE")
            try:
                for member in self._members:
                    enc.member(*member)
                for values, facts, verdict in self._rows:
                    enc.write_wheel(values, facts, verdict)
                if self._touch:
                    con.executemany(
                        "UPDATE wheels SET upload_time = ?, yanked = ? WHERE location = ?",
                        self._touch,
                    )
                if verdicts:
                    con.executemany(
                        "UPDATE wheels SET status = ?, verdict = ?, verdict_dict = ?,"
                        " verdict_strip = ?, policy_version = ?, judged_at = ? WHERE id = ?",
                        [(status, *enc.verdict(text, fn, loc), *rest)
                         for status, text, fn, loc, *rest in verdicts],
                    )  # fmt: skip
                enc.flush(final=final)
                enc.maybe_train(final=final)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                enc.forget()
                raise
            self._rows.clear()
            self._members.clear()
            self._touch.clear()
            verdicts.clear()
        self._last_commit = time.monotonic()

    def collect_garbage(self, *, vacuum: bool = True) -> Collected:
        """Delete the ELF facts no wheel links to and the pack bytes only they used, in one
        transaction (``gc``); then, with ``vacuum``, give the freed pages back to the file
        system. Rows still buffered are committed first."""
        self.commit(final=True)
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            got = collect_garbage(con, self._enc)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            self._enc.forget()
            self._enc.codec.forget()
        if vacuum:
            con.execute("VACUUM")
        return got

    def close(self) -> None:
        try:
            self.commit(final=True)
            self.con.close()
        finally:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the writer lock
                self._lock_fd = -1

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
