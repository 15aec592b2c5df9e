"""The read side of the store, for reports: read-only, typed, streaming.

:class:`StoreReader` opens a store read-only and checks its schema version. It hands out the
stored wheels one at a time, in the order they were first recorded, under a
:class:`WheelFilter`: as :class:`WheelRow` (the verdict decoded) or as :class:`WheelJSON` (the
verdict as the JSON text the store holds, for exports that pass it through); and it computes
the mirror-wide findings over the binaries the wheels ship (:class:`MirrorFindings`). Callers
see neither SQL nor a column: a change to the tables changes this package only.

The mirror-wide findings come from the links of wheels to their ELF members (schema 2; in a
schema-1 store, walks over the stored facts, ``json_each``) that fill on-disk temporary tables
(``temp_store=FILE``) inside SQLite, which then groups them, so memory does not grow with the
number of wheels. The reader reads schema 1 as well (read-only, it cannot migrate a store;
a writer does).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zstandard as zstd

from ..refs import WheelRef
from ..sources import Filters
from .codec import Codec, link_path, wheel_object
from .schema import MIGRATING, STORE_SCHEMA_VERSION, StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "DuplicateBinary",
    "MirrorFindings",
    "StoreReader",
    "VendoredConflict",
    "WheelFilter",
    "WheelJSON",
    "WheelRow",
]


@dataclass(frozen=True)
class WheelFilter:
    """Which stored wheels a read covers; a field left empty does not restrict.

    ``projects`` are canonical (PEP 503) names, as the scan stores them. ``platforms`` (globs
    over the wheel's platform tags) and ``since`` (POSIX seconds: uploaded, else modified,
    since then) select exactly as ``wheelscan scan --platform/--since`` do."""

    projects: frozenset[str] = frozenset()
    platforms: tuple[str, ...] = ()
    statuses: frozenset[str] = frozenset()
    since: float | None = None


@dataclass(slots=True)
class WheelRow:
    """One stored wheel: where it is, what the index said of it, its status and its verdict."""

    location: str
    filename: str
    project: str | None  # None: the filename gave no project
    upload_time: str | None
    yanked: bool | None  # None: the source cannot say
    status: str
    error: str | None
    verdict: dict[str, Any] | None  # the verdict object; None when absent or unreadable
    mtime: float | None = None  # the file's, as the source listed it


@dataclass(slots=True)
class WheelJSON:
    """A stored wheel with its verdict as the JSON text the store holds (the ``check --format
    json`` object, one line), undecoded."""

    location: str
    filename: str
    project: str | None
    upload_time: str | None
    yanked: bool | None
    status: str
    error: str | None
    verdict_json: str | None

    def decoded(self) -> WheelRow:
        """The same wheel as a :class:`WheelRow` (without the mtime)."""
        return WheelRow(self.location, self.filename, self.project, self.upload_time, self.yanked,
                        self.status, self.error, _verdict_object(self.verdict_json))  # fmt: skip


def _verdict_object(text: str | None) -> dict[str, Any] | None:
    """A stored verdict's JSON object, or None when absent or not a JSON object."""
    if not text:
        return None
    try:
        verdict = json.loads(text)
    except ValueError:
        return None
    return verdict if isinstance(verdict, dict) else None


@dataclass
class VendoredConflict:
    """One soname of a bundled library shipped with different contents by several projects."""

    soname: str
    variants: int  # distinct contents
    projects: int
    wheels: int
    #: (project, wheel, size): one per variant, capped; project None where the name gave none
    examples: list[tuple[str | None, str, int]]


@dataclass
class DuplicateBinary:
    """One binary (one identity) shipped in the wheels of several projects."""

    member: str  # the least of the member paths it is shipped under
    size: int
    wheels: int
    projects: int
    examples: list[str | None]  # project names, capped; None where the name gave none


@dataclass
class MirrorFindings:
    conflicts_total: int
    conflicts: list[VendoredConflict]
    duplicates_total: int
    duplicates: list[DuplicateBinary]
    identity: str  # "crc32" or "facts" (what the store let us compare)
    #: binaries found in two or more wheels (any projects), the copies beyond the first of
    #: each, and the bytes those extra copies hold
    repeated: tuple[int, int, int] = (0, 0, 0)


_ROW = "w.location, w.filename, w.project, w.upload_time, w.yanked, w.status, w.error"
#: the verdict's columns, by store schema
_VERDICT = {1: "w.verdict, NULL, NULL", 2: "w.verdict, w.verdict_dict, w.verdict_strip"}


def _elf_identity(facts_text: str | None, size: object, crc: object) -> str:
    """What the report treats as a binary's content identity: the central directory's CRC-32
    and size when the facts carry a CRC, else the size and every stored ELF fact but the
    member path: equal sizes and equal parsed dynamic sections, a near-certain proxy.
    ``facts_text`` is those facts as SQLite writes them (minified, keys in the stored order),
    so equal stored facts give equal text; the walk leaves it out (None) where a CRC is known.
    It runs inside SQLite, as ``ws_identity``."""
    if crc is not None or facts_text is None:
        return f"crc:{size}:{crc}"
    return f"facts:{size}:" + hashlib.blake2b(facts_text.encode(), digest_size=12).hexdigest()


def _scalar(v: object) -> object:
    """A JSON value as SQLite holds it (``json_extract`` gave schema 1's walk these)."""
    return v if v is None or isinstance(v, (int, float, str)) else json.dumps(v)


class StoreReader:
    """A read-only connection to a scan store; :class:`StoreError` if it is not one this
    wheelscan reads. Reads may overlap, under the same filter or different ones."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        self.path = p
        if not p.is_file():
            msg = f"{p}: no such scan store (run `wheelscan scan --db {p} SOURCE` first)"
            raise StoreError(msg)
        con: sqlite3.Connection | None = None
        try:
            con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as e:
            if con is not None:
                con.close()
            msg = f"{p}: not a wheelscan store ({e})"
            raise StoreError(msg) from e
        if "wheels" not in tables or "meta" not in tables:
            con.close()
            msg = f"{p}: not a wheelscan store (no wheels/meta tables)"
            raise StoreError(msg)
        row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or int(row[0]) > STORE_SCHEMA_VERSION:
            con.close()
            msg = f"{p}: store schema {row and row[0]} is not one this wheelscan reads"
            raise StoreError(msg)
        if con.execute("SELECT 1 FROM meta WHERE key = ?", (MIGRATING,)).fetchone():
            con.close()
            msg = (f"{p}: a migration to store schema {STORE_SCHEMA_VERSION} is under way; "
                   "`wheelscan scan` or `rejudge` on this --db finishes it")  # fmt: skip
            raise StoreError(msg)
        self.schema = int(row[0])
        # the mirror-wide walk's temporary tables can outgrow memory: keep them on disk
        con.execute("PRAGMA temp_store=FILE")
        con.create_function("ws_identity", 3, _elf_identity, deterministic=True)
        self._con = con
        self._codec = Codec(con)
        self._keep: dict[WheelFilter, str] = {}

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- filters ----------------------------------------------------------------------------

    def _where(self, flt: WheelFilter) -> tuple[str, list[object]]:
        """A SQL condition on ``wheels`` (alias ``w``) selecting ``flt``'s wheels, and its
        parameters. Platform globs and --since run in Python, as the scan applies them, through
        a function registered once per filter (SQLite refuses to replace a function while a
        statement that may call it is active)."""
        conds = ["1"]
        params: list[object] = []
        if flt.projects:
            conds.append(f"w.project IN ({','.join('?' * len(flt.projects))})")
            params += sorted(flt.projects)
        if flt.statuses:
            conds.append(f"w.status IN ({','.join('?' * len(flt.statuses))})")
            params += sorted(flt.statuses)
        if flt.platforms or flt.since is not None:
            conds.append(f"{self._keep_function(flt)}(w.filename, w.upload_time, w.mtime)")
        return " AND ".join(conds), params

    def _keep_function(self, flt: WheelFilter) -> str:
        name = self._keep.get(flt)
        if name is None:
            name = f"ws_keep{len(self._keep)}"
            accepts = Filters(platforms=flt.platforms, since=flt.since).accepts

            def keep(filename: str, upload: str | None, mtime: float | None) -> int:
                ref = WheelRef(location="", filename=filename, upload_time=upload, mtime=mtime)
                return int(accepts(ref))

            self._con.create_function(name, 3, keep, deterministic=True)
            self._keep[flt] = name
        return name

    # -- wheels -----------------------------------------------------------------------------

    def wheels(
        self, flt: WheelFilter, *, status: str | None = None, project: str | None = None
    ) -> Iterator[WheelRow]:
        """``flt``'s wheels, verdicts decoded one at a time; ``status`` and ``project`` (the
        stored name, exactly) narrow them further."""
        cond, params = self._where(flt)
        if status is not None:
            cond += " AND w.status = ?"
            params.append(status)
        if project is not None:
            cond += " AND w.project = ?"
            params.append(project)
        sql = (f"SELECT {_ROW}, {_VERDICT[self.schema]}, w.mtime FROM wheels w WHERE {cond}"
               " ORDER BY w.id")  # fmt: skip
        for loc, fn, proj, up, yk, st, err, vb, vd, vs, mt in self._con.execute(sql, params):
            yanked = None if yk is None else bool(yk)
            mtime = mt if isinstance(mt, (int, float)) else None
            verdict = self._verdict_dict(vb, vd, vs, fn, loc)
            yield WheelRow(loc, fn, proj, up, yanked, st, err, verdict, mtime)

    def project_counts(self, flt: WheelFilter, unnamed: str, n: int) -> list[tuple[str, int, int]]:
        """The ``n`` projects of ``flt``'s wheels with the most mislabelled ones: ``(project,
        mislabelled, wheels)``, most mislabelled first, then by name; a wheel without a
        project counts for ``unnamed``. SQLite groups them (on disk past its cache: a report
        over a mirror of many projects does not hold a count per project)."""
        cond, params = self._where(flt)
        sql = (
            "SELECT p, SUM(st = 'mislabelled') AS mis, COUNT(*) FROM"
            " (SELECT CASE WHEN w.project IS NULL OR w.project = '' THEN ? ELSE w.project END"
            f" AS p, w.status AS st FROM wheels w WHERE {cond})"
            " GROUP BY p HAVING mis > 0 ORDER BY mis DESC, p LIMIT ?"
        )
        return [(str(p), int(m), int(t))
                for p, m, t in self._con.execute(sql, [unnamed, *params, max(0, n)])]  # fmt: skip

    def wheels_json(self, flt: WheelFilter) -> Iterator[WheelJSON]:
        """``flt``'s wheels with their verdicts as stored JSON text, in the same order."""
        cond, params = self._where(flt)
        sql = f"SELECT {_ROW}, {_VERDICT[self.schema]} FROM wheels w WHERE {cond} ORDER BY w.id"
        for loc, fn, proj, up, yk, st, err, vb, vd, vs in self._con.execute(sql, params):
            vj = self._verdict_text(vb, vd, vs, fn, loc)
            yield WheelJSON(loc, fn, proj, up, None if yk is None else bool(yk), st, err, vj)

    def facts_json(self, flt: WheelFilter) -> Iterator[tuple[str, str | None]]:
        """(location, facts JSON: ``WheelFacts.to_dict()`` as recorded, None when the row has
        none) of ``flt``'s wheels, in the same order."""
        cond, params = self._where(flt)
        if self.schema == 1:
            sql = f"SELECT w.location, w.facts FROM wheels w WHERE {cond} ORDER BY w.id"
            yield from ((str(loc), f) for loc, f in self._con.execute(sql, params))
            return
        last = -1
        while True:  # in chunks: reading a row's ELF links must not interleave with a cursor
            rows = self._con.execute(
                f"SELECT w.id, w.location, w.facts, w.facts_dict FROM wheels w WHERE w.id > ?"
                f" AND {cond} ORDER BY w.id LIMIT 200",
                [last, *params],
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for i, loc, blob, d in rows:
                yield str(loc), self._codec.facts(int(i), blob, d)

    def _verdict_dict(self, blob: object, dict_id: object, bits: object, filename: str,
                      location: str) -> dict[str, Any] | None:  # fmt: skip
        """:meth:`_verdict_text` decoded (None: no verdict, or none that is a JSON object),
        without a schema-2 verdict made into text only to be decoded again."""
        if self.schema == 1 or blob is None:
            return _verdict_object(None if blob is None else str(blob))
        try:
            got = self._codec.verdict_object(blob, dict_id, bits, filename, location)  # type: ignore[arg-type]
        except (ValueError, zstd.ZstdError):
            return None  # a damaged blob: as a verdict that is no JSON object
        return got if isinstance(got, dict) else None

    def _verdict_text(self, blob: object, dict_id: object, bits: object, filename: str,
                      location: str) -> str | None:  # fmt: skip
        if self.schema == 1 or blob is None:
            return None if blob is None else str(blob)
        try:
            return self._codec.verdict(blob, dict_id, bits, filename, location)  # type: ignore[arg-type]
        except (ValueError, zstd.ZstdError):
            return None  # a damaged blob: as a verdict that is no JSON object

    # -- mirror-wide findings ---------------------------------------------------------------

    def mirror_findings(self, flt: WheelFilter, top: int = 50) -> MirrorFindings:
        """Over the binaries of ``flt``'s wheels: the sonames vendored with different contents
        and the binaries shipped by several projects (each: how many, and the ``top`` first),
        and how many binaries are repeated across wheels."""
        t = self._elf_table(flt)
        ct, c = self._vendored_conflicts(t, top)
        dt, d = self._duplicate_binaries(t, top)
        con = self._con
        has_crc = con.execute(f"SELECT 1 FROM {t} WHERE ident LIKE 'crc:%' LIMIT 1").fetchone()
        rep = con.execute(
            "SELECT count(*), coalesce(sum(n - 1), 0),"
            " coalesce(sum((n - 1) * coalesce(sz, 0)), 0)"
            f" FROM (SELECT count(DISTINCT id) AS n, max(size) AS sz FROM {t} GROUP BY ident)"
            " WHERE n > 1"
        ).fetchone()
        return MirrorFindings(
            ct, c, dt, d, "crc32" if has_crc else "facts", (int(rep[0]), int(rep[1]), int(rep[2]))
        )

    def _elf_table(self, flt: WheelFilter) -> str:
        if self.schema == 1:
            return self._elf_table_v1(flt)
        con = self._con
        cond, params = self._where(flt)
        con.execute("DROP TABLE IF EXISTS temp.ws_elfs")
        con.execute(
            "CREATE TEMP TABLE ws_elfs (id INTEGER, project TEXT, filename TEXT, member TEXT,"
            " soname TEXT, size INTEGER, ident TEXT)"
        )
        # an ELF body's row is its facts without the path: equal rows, equal identity
        last = -1
        while True:
            rows = con.execute(
                "SELECT w.id, w.project, w.filename, w.facts, w.facts_dict FROM wheels w"
                f" WHERE w.id > ? AND w.facts IS NOT NULL AND {cond} AND EXISTS"
                " (SELECT 1 FROM wheel_elfs l WHERE l.wheel_id = w.id) ORDER BY w.id LIMIT 200",
                [last, *params],
            ).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            con.executemany(
                "INSERT INTO ws_elfs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [e for row in rows for e in self._elf_rows(*row)],
            )
        con.execute("CREATE INDEX temp.ws_elfs_soname ON ws_elfs (soname)")
        con.execute("CREATE INDEX temp.ws_elfs_ident ON ws_elfs (ident)")
        return "temp.ws_elfs"

    def _elf_rows(
        self, wheel_id: int, project: str | None, filename: str, blob: bytes, dict_id: int
    ) -> list[tuple[object, ...]]:
        """One wheel's rows of the ELF table: each member's path, soname, size and identity
        (its CRC-32 and size when the facts carry a CRC, else its size and facts body)."""
        d = wheel_object(self._codec.text(blob, dict_id)) or {}
        members = d.get("members")
        out: list[tuple[object, ...]] = []
        for member, path, elf_id, soname in self._con.execute(
            "SELECT l.member, l.path, l.elf_id, f.soname FROM wheel_elfs l"
            " JOIN elf_facts f ON f.id = l.elf_id WHERE l.wheel_id = ? ORDER BY l.ordinal",
            (wheel_id,),
        ):
            size = crc = None
            if member is not None and isinstance(members, list):
                m = members[member]
                size, crc = _scalar(m.get("size")), _scalar(m.get("crc32"))
            ident = f"crc:{size}:{crc}" if crc is not None else f"facts:{size}:{elf_id}"
            out.append((wheel_id, project, filename, link_path(d, member, path), soname, size,
                        ident))  # fmt: skip
        return out

    def _elf_table_v1(self, flt: WheelFilter) -> str:
        """A temp table (on disk: ``temp_store=FILE``) of every stored ELF member of ``flt``'s
        wheels with its identity, filled inside SQLite from one walk over the facts: first each
        touched member's size and CRC-32, then each ELF joined to them. The grouping queries
        run over it."""
        con = self._con
        cond, params = self._where(flt)
        for table in ("ws_members", "ws_elfs"):
            con.execute(f"DROP TABLE IF EXISTS temp.{table}")
        # a member stored twice: the last one counts
        con.execute(
            "CREATE TEMP TABLE ws_members (id INTEGER, member TEXT, size INTEGER, crc INTEGER,"
            " PRIMARY KEY (id, member))"
        )
        con.execute(
            "CREATE TEMP TABLE ws_elfs (id INTEGER, project TEXT, filename TEXT, member TEXT,"
            " soname TEXT, size INTEGER, ident TEXT)"
        )

        def objects(path: str, guard: str) -> str:
            # each object of facts' ``path`` array as ``v``; the LIMIT keeps SQLite from
            # folding this into the outer query, where each use of ``v`` renders it anew
            return (
                "SELECT w.id AS id, w.project AS project, w.filename AS filename, e.value AS v"
                f" FROM wheels w, json_each(w.facts, '{path}') e WHERE w.facts IS NOT NULL"
                f" {guard} AND e.type = 'object' AND {cond} ORDER BY w.id LIMIT -1"
            )

        self._fill("ws_members", params, lambda guard: (
            "INSERT OR REPLACE INTO ws_members SELECT id, json_extract(v, '$.member'),"
            " json_extract(v, '$.size'), json_extract(v, '$.crc32')"
            f" FROM ({objects('$.members', guard)})"
        ))  # fmt: skip
        # json_remove's text (the facts but the member path) is hashed only where no CRC-32 is
        self._fill("ws_elfs", params, lambda guard: (
            "INSERT INTO ws_elfs SELECT s.id, s.project, s.filename, s.member,"
            " CASE WHEN typeof(s.soname) = 'text' THEN s.soname END, m.size,"
            " ws_identity(CASE WHEN m.crc IS NULL THEN json_remove(s.v, '$.member') END,"
            " m.size, m.crc)"
            " FROM (SELECT id, project, filename, v, json_extract(v, '$.member') AS member,"
            f" json_extract(v, '$.soname') AS soname FROM ({objects('$.elfs', guard)})) s"
            " LEFT JOIN ws_members m ON m.id = s.id AND m.member = s.member"
            " WHERE typeof(s.member) = 'text'"
        ))  # fmt: skip
        con.execute("DROP TABLE temp.ws_members")
        con.execute("CREATE INDEX temp.ws_elfs_soname ON ws_elfs (soname)")
        con.execute("CREATE INDEX temp.ws_elfs_ident ON ws_elfs (ident)")
        return "temp.ws_elfs"

    def _fill(self, table: str, params: list[object], sql: Callable[[str], str]) -> None:
        """Run ``sql(guard)``, an INSERT into the temp ``table`` from a walk over the facts.
        Facts the store holds are the scanner's own JSON; should one be malformed, the walk
        runs again over the rows that are valid JSON only (``guard``)."""
        try:
            self._con.execute(sql(""), params)
        except sqlite3.OperationalError:
            self._con.execute(f"DELETE FROM temp.{table}")
            self._con.execute(sql("AND json_valid(w.facts)"), params)

    def _vendored_conflicts(self, t: str, top: int) -> tuple[int, list[VendoredConflict]]:
        """Sonames of bundled libraries (ELF with a DT_SONAME that is not a Python extension)
        shipped by two or more projects with two or more distinct contents; (how many, top-N)."""
        con = self._con
        base = f"""
          SELECT soname, count(DISTINCT ident) AS variants, count(DISTINCT project) AS projects,
                 count(DISTINCT id) AS wheels
            FROM {t}
           WHERE soname IS NOT NULL AND member NOT LIKE '%.cpython-%'
             AND member NOT LIKE '%.abi3.so'
           GROUP BY soname
          HAVING variants > 1 AND projects > 1
        """
        total = int(con.execute(f"SELECT count(*) FROM ({base})").fetchone()[0])
        out = []
        for soname, variants, projects, wheels in con.execute(
            f"{base} ORDER BY projects DESC, variants DESC, soname LIMIT ?", (top,)
        ).fetchall():
            ex = con.execute(
                f"SELECT project, min(filename), size FROM {t} WHERE soname = ? "
                "GROUP BY ident ORDER BY project LIMIT 8",
                (soname,),
            ).fetchall()
            examples = [(None if p is None else str(p), str(f), int(z or 0)) for p, f, z in ex]
            out.append(VendoredConflict(soname, variants, projects, wheels, examples))
        return total, out

    def _duplicate_binaries(self, t: str, top: int) -> tuple[int, list[DuplicateBinary]]:
        """Binaries with the same identity in wheels of two or more projects; (how many,
        top-N)."""
        con = self._con
        base = f"""
          SELECT ident, count(DISTINCT id) AS wheels, count(DISTINCT project) AS projects,
                 min(member) AS member, max(size) AS size
            FROM {t} GROUP BY ident HAVING projects > 1
        """
        total = int(con.execute(f"SELECT count(*) FROM ({base})").fetchone()[0])
        out = []
        for ident, wheels, projects, member, size in con.execute(
            f"{base} ORDER BY projects DESC, wheels DESC, member LIMIT ?", (top,)
        ).fetchall():
            ex = [None if r[0] is None else str(r[0]) for r in con.execute(
                f"SELECT DISTINCT project FROM {t} WHERE ident = ? ORDER BY project LIMIT 8",
                (ident,),
            )]  # fmt: skip
            out.append(DuplicateBinary(str(member), int(size or 0), int(wheels), int(projects), ex))
        return total, out
