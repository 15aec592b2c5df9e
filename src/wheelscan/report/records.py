"""Batch reports over a scan store: totals, tag matrices, reasons, offenders, exports.

Everything here reads the SQLite store written by ``wheelscan scan`` (``docs/store-schema.md``)
and never a wheel. Rows are streamed once through :class:`Summary`; the memory it keeps grows
with the number of distinct tags, reasons and projects, not with the number of wheels. The
mirror-wide findings (one soname vendored with different contents, duplicate binaries) come
from one ``json_each`` walk over the stored facts into an on-disk temporary table that SQLite
groups, and the per-project sections and the violations table are bounded top-N queries.

Exports (``csv``, ``jsonl``, ``jsonl.zst``) carry one record per wheel: the ``check --format
json`` object plus where the wheel is and what the index said about it
(``data/report-schema.json``, :data:`REPORT_SCHEMA_VERSION`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sqlite3
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from ..mirror.refs import WheelRef
from ..mirror.sources import Filters, parse_since
from ..mirror.store import STORE_SCHEMA_VERSION, StoreError
from ..rules.tags import claim_key, policy_order
from ..rules.verdict import STATUSES
from ..safe_text import SafeText, csv_cell
from .demangle import short

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "ALL",
    "FORMATS",
    "REPORT_SCHEMA_VERSION",
    "Reason",
    "ReportFilters",
    "Summary",
    "causes_of",
    "iter_lines",
    "iter_records",
    "open_store",
    "reason_line",
    "reasons_of",
    "summarise",
    "summarise_all",
    "write_csv",
    "write_jsonl",
    "write_text",
]

#: 2: records carry the verdict's ``abi3`` object (verdict schema 2)
REPORT_SCHEMA_VERSION = 2
FORMATS = ("text", "csv", "jsonl", "jsonl.zst", "html")

_YEAR = re.compile(r"^(\d{4})-")

_COLUMNS = "id, location, filename, project, upload_time, yanked, status, error, verdict, mtime"


@dataclass(frozen=True)
class ReportFilters:
    """Which stored wheels a report covers (the scan's filters plus the status)."""

    projects: frozenset[str] = frozenset()
    platforms: tuple[str, ...] = ()
    statuses: frozenset[str] = frozenset()
    since: float | None = None

    @classmethod
    def parse(
        cls,
        projects: Iterable[str] = (),
        platforms: Iterable[str] = (),
        statuses: Iterable[str] = (),
        since: str | None = None,
    ) -> ReportFilters:
        bad = sorted(set(statuses) - set(STATUSES))
        if bad:
            msg = f"--status {', '.join(bad)}: expected one of {', '.join(STATUSES)}"
            raise ValueError(msg)
        return cls(
            frozenset(str(canonicalize_name(p)) for p in projects),
            tuple(platforms),
            frozenset(statuses),
            None if since is None else parse_since(since),
        )

    @property
    def active(self) -> bool:
        return bool(self.projects or self.platforms or self.statuses or self.since is not None)

    def where(self) -> tuple[str, list[object]]:
        """A SQL condition on ``wheels`` (alias ``w``) and its parameters."""
        conds = ["1"]
        params: list[object] = []
        if self.projects:
            conds.append(f"w.project IN ({','.join('?' * len(self.projects))})")
            params += sorted(self.projects)
        if self.statuses:
            conds.append(f"w.status IN ({','.join('?' * len(self.statuses))})")
            params += sorted(self.statuses)
        if self.platforms or self.since is not None:
            conds.append("ws_keep(w.filename, w.upload_time, w.mtime)")
        return " AND ".join(conds), params

    def install(self, con: sqlite3.Connection) -> None:
        """Register ``ws_keep`` (platform globs and --since, as ``wheelscan scan`` applies them)."""
        f = Filters(platforms=self.platforms, since=self.since)

        def keep(filename: str, upload: str | None, mtime: float | None) -> int:
            ref = WheelRef(location="", filename=filename, upload_time=upload, mtime=mtime)
            return int(f.accepts(ref))

        con.create_function("ws_keep", 3, keep, deterministic=True)


#: the default: every stored wheel
ALL = ReportFilters()


def open_store(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to a scan store; StoreError if it is not one we understand."""
    p = Path(path)
    if not p.is_file():
        msg = f"{p}: no such scan store (run `wheelscan scan --db {p} SOURCE` first)"
        raise StoreError(msg)
    try:
        con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as e:
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
    con.execute("PRAGMA temp_store=FILE")
    return con


# ---------------------------------------------------------------------------------------------
# Per-wheel records (the export format).


@dataclass
class Row:
    id: int
    location: str
    filename: str
    project: str | None
    upload_time: str | None
    yanked: bool | None
    status: str
    error: str | None
    verdict: dict[str, Any] | None
    mtime: float | None = None  # the file's, as the source listed it

    def record(self) -> dict[str, Any]:
        """The export record: the verdict object plus location, upload time and yanked."""
        v = self.verdict
        if v is None:  # the worker died, timed out, or no policy ran: same keys, empty
            v = {
                "schema_version": 1, "wheel": self.filename, "path": self.location,
                "status": self.status, "error": self.error, "claims": [], "per_claim": [],
                "minimal_tag": None, "minimal_tags": {}, "required_glibc": None,
                "findings": [], "policy": {}, "exclude": [], "strict": False, "engine": None,
            }  # fmt: skip
        rec = dict(v)
        # the store's status/error win: a wheel the worker could not finish has no verdict
        rec["status"] = self.status
        rec["error"] = self.error if self.error is not None else v.get("error")
        rec["report_schema"] = REPORT_SCHEMA_VERSION
        rec["project"] = self.project
        rec["location"] = self.location
        rec["upload_time"] = self.upload_time
        rec["yanked"] = self.yanked
        return rec


def iter_rows(
    con: sqlite3.Connection,
    filters: ReportFilters = ALL,
    extra: str = "",
    extra_params: tuple[object, ...] = (),
) -> Iterator[Row]:
    """Stored wheels in id order, verdicts decoded one at a time; ``extra`` is more SQL
    condition (``AND ...``) with ``extra_params`` for its placeholders."""
    filters.install(con)
    cond, params = filters.where()
    sql = f"SELECT {_COLUMNS} FROM wheels w WHERE {cond} {extra} ORDER BY w.id"
    for i, loc, fn, proj, up, yk, st, err, vj, mt in con.execute(sql, [*params, *extra_params]):
        yanked = None if yk is None else bool(yk)
        yield Row(i, loc, fn, proj, up, yanked, st, err, _stored_verdict(vj),
                  mt if isinstance(mt, (int, float)) else None)  # fmt: skip


def _stored_verdict(text: str | None) -> dict[str, Any] | None:
    """A stored verdict's JSON object, or None when absent or not a JSON object."""
    if not text:
        return None
    try:
        verdict = json.loads(text)
    except ValueError:
        return None
    return verdict if isinstance(verdict, dict) else None


def iter_records(con: sqlite3.Connection, filters: ReportFilters = ALL) -> Iterator[dict[str, Any]]:
    for row in iter_rows(con, filters):
        yield row.record()


def iter_lines(con: sqlite3.Connection, filters: ReportFilters = ALL) -> Iterator[str]:
    """The export records as JSON Lines text, in id order.

    The stored verdict JSON is the record minus the report's keys, so those are appended to its
    text instead of decoding and re-encoding it; a row whose stored status or error
    the verdict does not carry (the worker died, no policy ran) goes through :meth:`Row.record`.
    """
    filters.install(con)
    cond, params = filters.where()
    sql = (
        "SELECT w.id, w.location, w.filename, w.project, w.upload_time, w.yanked, w.status,"
        f" w.error, w.verdict FROM wheels w WHERE {cond} ORDER BY w.id"
    )
    dumps = json.dumps
    for i, loc, fn, proj, up, yk, st, err, vj in con.execute(sql, params):
        yanked = None if yk is None else bool(yk)
        if (
            vj
            and err is None
            and vj.endswith("}")
            and "\n" not in vj
            and (f'"status": "{st}"' in vj or f'"status":"{st}"' in vj)
        ):
            tail = dumps(
                {"report_schema": REPORT_SCHEMA_VERSION, "project": proj, "location": loc,
                 "upload_time": up, "yanked": yanked},
                separators=(",", ":"),
            )  # fmt: skip
            yield f"{vj[:-1]},{tail[1:]}\n"
            continue
        row = Row(i, loc, fn, proj, up, yanked, st, err, _stored_verdict(vj))
        yield dumps(row.record(), separators=(",", ":")) + "\n"


def write_jsonl(lines: Iterable[str], out: IO[str]) -> int:
    n = 0
    for line in lines:
        out.write(line)
        n += 1
    return n


def write_jsonl_zst(lines: Iterable[str], path: Path, level: int = 3) -> int:
    import zstandard

    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True)
    n = 0
    with open(path, "wb") as raw, cctx.stream_writer(raw) as zw:
        buf: list[str] = []
        for line in lines:
            buf.append(line)
            n += 1
            if len(buf) >= 1000:
                zw.write("".join(buf).encode())
                buf.clear()
        zw.write("".join(buf).encode())
    return n


#: CSV columns of the wheels file, in order (``findings`` holds the number of findings; they
#: are in the findings file, one row each).
CSV_COLUMNS = (
    "report_schema", "schema_version", "wheel", "project", "location", "path", "status",
    "error", "claims", "per_claim", "minimal_tag", "minimal_tags", "required_glibc",
    "findings", "violations", "policy", "exclude", "strict", "engine", "upload_time", "yanked",
)  # fmt: skip
FINDINGS_COLUMNS = ("wheel", "location", "severity", "kind", "member", "detail", "evidence")


def findings_path(out: Path) -> Path:
    """Where the findings file of the CSV ``out`` goes: ``x.csv`` -> ``x.findings.csv``."""
    stem = out.name[: -len(".csv")] if out.name.endswith(".csv") else out.name
    return out.with_name(stem + ".findings.csv")


_ENCODE = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_JSON_COLUMNS = frozenset({"claims", "per_claim", "minimal_tags", "policy", "exclude"})


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return _ENCODE(value)
    return value


def write_csv(records: Iterable[dict[str, Any]], out: Path) -> tuple[int, int]:
    """The wheels CSV at ``out`` and its findings CSV beside it; (wheels, findings) written.

    Lists and objects are JSON in their cell; booleans ``true``/``false``; null is empty; a
    text cell a spreadsheet would run as a formula starts with ``'`` (``safe_text.csv_cell``).
    """
    n = nf = 0
    policy_cache: dict[str, str] = {}
    plain = [c for c in CSV_COLUMNS if c not in _JSON_COLUMNS]
    with (
        open(out, "w", newline="", encoding="utf-8") as f1,
        open(findings_path(out), "w", newline="", encoding="utf-8") as f2,
    ):
        w1 = csv.writer(f1)
        w2 = csv.writer(f2)
        w1.writerow(CSV_COLUMNS)
        w2.writerow(FINDINGS_COLUMNS)
        for rec in records:
            findings = rec.get("findings") or []
            cells = {c: _cell(rec.get(c)) for c in plain}
            cells["findings"] = len(findings)
            cells["violations"] = sum(1 for x in findings if x.get("severity") == "violation")
            for c in ("claims", "per_claim", "minimal_tags", "exclude"):
                cells[c] = _ENCODE(rec.get(c) or ([] if c != "minimal_tags" else {}))
            pol = rec.get("policy") or {}
            # the same policy on nearly every row: encode it once
            files = pol.get("files")
            pkey = f"{pol.get('source')}\0{pol.get('file')}\0" + "\0".join(
                map(str, files.values()) if isinstance(files, dict) else ()
            )
            if pkey not in policy_cache:
                policy_cache[pkey] = _ENCODE(pol)
            cells["policy"] = policy_cache[pkey]
            w1.writerow([csv_cell(cells[c]) for c in CSV_COLUMNS])
            wheel, loc = rec["wheel"], rec["location"]
            w2.writerows(
                [csv_cell(c) for c in (wheel, loc, x.get("severity"), x.get("kind"),
                                       x.get("member") or "", x.get("detail"),
                                       _ENCODE(x.get("evidence") or {}))]
                for x in findings
            )  # fmt: skip
            nf += len(findings)
            n += 1
    return n, nf


# ---------------------------------------------------------------------------------------------
# Aggregation.


#: how the reports name the project of a wheel whose filename gave none (the store's NULL)
UNPARSEABLE = "(unparseable name)"


def causes_of(verdict: dict[str, Any]) -> dict[str, list[str]]:
    """The causes of a verdict's violations, each with the raw symbol names behind it.

    A cause is what a maintainer fixes: one version node of one library (``GLIBCXX_3.4.21
    from libstdc++.so.6``), one external library, one library's blacklisted symbols, one
    architecture or libc mismatch. Every symbol that needs the same version node is evidence
    of one cause, not a cause of its own."""
    out: dict[str, list[str]] = {}
    for f in verdict.get("findings") or ():
        if not isinstance(f, dict) or f.get("severity") != "violation":
            continue
        kind = f.get("kind")
        raw = f.get("evidence")
        ev: dict[str, Any] = raw if isinstance(raw, dict) else {}
        lib = ev.get("library")
        syms = [s for s in ev.get("symbols") or () if isinstance(s, str)]
        if kind == "symbol-version":
            by_version: dict[str, list[str]] = {str(v): [] for v in ev.get("versions") or ()}
            for sym in syms:
                name, _, ver = sym.rpartition("@")
                by_version.setdefault(ver, []).append(name)
            for ver, names in by_version.items():
                out.setdefault(f"{ver} from {lib}", []).extend(names)
        elif kind == "external-library":
            out.setdefault(f"external library {lib}", [])
        elif kind == "blacklisted-symbol":
            out.setdefault(f"blacklisted symbols from {lib}", []).extend(syms)
        elif kind == "arch-mismatch":
            out.setdefault(f"{ev.get('arch') or 'unknown-arch'} binary under another arch's "
                           "claim", [])  # fmt: skip
        elif kind == "libc-mismatch":
            out.setdefault(f"{ev.get('libc')} binary under the other libc's claim", [])
        elif kind == "isa-level":
            out.setdefault(f"needs x86-64-v{ev.get('level')}", [])
        elif kind == "musl-version":
            out.setdefault("symbols only musl >= 1.2 provides", []).extend(syms)
        elif kind == "abi3-symbol":
            out.setdefault("abi3: C-API symbols outside the Stable ABI", []).extend(syms)
        elif kind == "abi3-version":
            raw_added = ev.get("added")
            added: dict[str, Any] = raw_added if isinstance(raw_added, dict) else {}
            for sym in syms:
                found = added.get(sym)
                ver = found if isinstance(found, str) else "?"
                out.setdefault(f"abi3: Stable ABI symbols of Python {ver}, older python tag",
                               []).append(sym)
        else:
            out.setdefault(str(kind), [])
    return out


def reasons_of(verdict: dict[str, Any]) -> list[str]:
    """A verdict's causes (:func:`causes_of`), sorted."""
    return sorted(causes_of(verdict))


@dataclass(frozen=True)
class Reason:
    """One cause over the mirror: how many wheels and projects it hits, how many distinct
    symbols stand behind it, and the most common of them (raw names)."""

    cause: str
    wheels: int
    projects: int
    symbols: int
    examples: tuple[str, ...]
    #: more distinct symbols than the report keeps per cause (``symbols`` is then a floor)
    capped: bool = False


#: distinct symbol names kept per cause (examples are the most common of them)
SYMBOLS_PER_CAUSE = 4096


def _n(count: int, what: str, floor: bool = False) -> str:
    return f"{count}{'+' if floor else ''} {what}{'s' * (count != 1)}"


def reason_line(r: Reason) -> str:
    """``GLIBCXX_3.4.21 from libstdc++.so.6: 14 symbols, e.g. std::string::find_last_of —
    3 wheels in 2 projects`` (symbol names demangled)."""
    text = r.cause
    if r.symbols:
        text += f": {_n(r.symbols, 'symbol', r.capped)}"
        if r.examples:
            text += f", e.g. {', '.join(short(e) for e in r.examples)}"
    return f"{text} — {_n(r.wheels, 'wheel')} in {_n(r.projects, 'project')}"


def _year_of(mtime: float) -> str | None:
    try:
        return str(time.gmtime(mtime).tm_year)
    except (OverflowError, OSError, ValueError):  # a source's mtime is not to be trusted
        return None


_DIGITS = re.compile(r"\d+")


def error_reason(error: str | None, filename: str, location: str) -> str:
    """An error message with the wheel's own name and numbers taken out, so alike errors
    group: ``x.whl: bad CD offset 1234`` -> ``bad CD offset N``."""
    text = (error or "unknown error").replace(location, "").replace(filename, "")
    stem = filename.removesuffix(".whl")
    if stem:
        text = text.replace(f"'{stem}'", "").replace(stem, "")
    text = text.strip(" :;,-")
    text = _DIGITS.sub("N", text)
    return (text[:117] + "...") if len(text) > 120 else (text or "unknown error")


@dataclass
class Summary:
    """Everything the text and HTML reports show, accumulated row by row."""

    total: int = 0
    status: Counter[str] = field(default_factory=Counter)
    matrix: Counter[tuple[str, str]] = field(default_factory=Counter)  # (claimed, minimal)
    arch_libc: dict[tuple[str, str], Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    reason_wheels: Counter[str] = field(default_factory=Counter)
    reason_projects: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    reason_symbols: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    reason_capped: set[str] = field(default_factory=set)
    projects: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter[str] = field(default_factory=Counter)
    years: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    #: the same by the file's modification year, for judged wheels with no upload time
    mtime_years: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    glibc: Counter[str] = field(default_factory=Counter)
    yanked_mislabelled: int = 0
    kinds: Counter[str] = field(default_factory=Counter)  # violation kind -> wheels
    #: judged abi3 wheels by (claimed python tag, oldest honest one or "none")
    abi3: Counter[tuple[str, str]] = field(default_factory=Counter)
    abi3_broken: int = 0  # of them, those whose abi3 claim does not hold

    def add(self, row: Row) -> None:
        self.total += 1
        st = row.status
        self.status[st] += 1
        proj = row.project or UNPARSEABLE
        self.projects[proj][st] += 1
        v = row.verdict
        if st == "error":
            err = row.error or (v.get("error") if v else None)
            self.errors[error_reason(err, row.filename, row.location)] += 1
        if row.yanked and st == "mislabelled":
            self.yanked_mislabelled += 1
        if st in ("ok", "mislabelled"):
            m = _YEAR.match(row.upload_time or "")
            if m:
                self.years[m.group(1)][st] += 1
            elif row.mtime is not None and (year := _year_of(row.mtime)):
                self.mtime_years[year][st] += 1
        if v is None:
            return
        rg = v.get("required_glibc")
        if isinstance(rg, str) and st in ("ok", "mislabelled"):
            self.glibc[rg] += 1
        if st not in ("ok", "mislabelled"):
            return
        a3 = v.get("abi3")
        if isinstance(a3, dict) and isinstance(a3.get("claim"), str):
            self.abi3[(a3["claim"], str(a3.get("minimal_tag") or "none"))] += 1
            self.abi3_broken += a3.get("holds") is False
        raw = v.get("minimal_tags")
        minimal: dict[str, Any] = raw if isinstance(raw, dict) else {}
        seen: set[tuple[str, str]] = set()
        for tag in v.get("claims") or ():
            ck = claim_key(str(tag))
            if ck is None:
                continue
            family, pol, arch = ck
            libc = {"manylinux": "glibc", "musllinux": "musl"}.get(family, "unspecified")
            if (arch, libc) not in seen:
                seen.add((arch, libc))
                self.arch_libc[(arch, libc)][st] += 1
            mt = minimal.get(family) if family != "linux" else None
            mk = claim_key(mt) if isinstance(mt, str) else None
            cell = (pol, mk[1] if mk else "none")
            if cell not in seen:
                seen.add(cell)
                self.matrix[cell] += 1
        if st == "mislabelled":
            for r, names in causes_of(v).items():
                self.reason_wheels[r] += 1
                self.reason_projects[r].add(proj)
                counts = self.reason_symbols[r]
                for name in set(names):
                    if name in counts or len(counts) < SYMBOLS_PER_CAUSE:
                        counts[name] += 1
                    else:
                        self.reason_capped.add(r)
            for k in {
                f.get("kind")
                for f in v.get("findings") or ()
                if isinstance(f, dict) and f.get("severity") == "violation"
            }:
                self.kinds[str(k)] += 1

    # -- views ------------------------------------------------------------------------------

    def matrix_axes(self) -> tuple[list[str], list[str]]:
        rows = sorted({c for c, _ in self.matrix}, key=policy_order)
        cols = sorted({m for _, m in self.matrix}, key=policy_order)
        return rows, cols

    def top_reasons(self, n: int = 20, examples: int = 3) -> list[Reason]:
        """The causes hitting the most wheels, with their most common symbols."""
        items = sorted(self.reason_wheels.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        out = []
        for r, w in items:
            syms = self.reason_symbols.get(r) or Counter()
            common = sorted(syms.items(), key=lambda kv: (-kv[1], kv[0]))[:examples]
            names = tuple(name for name, _ in common)
            out.append(Reason(r, w, len(self.reason_projects[r]), len(syms), names,
                              r in self.reason_capped))  # fmt: skip
        return out

    def top_projects(self, n: int = 20) -> list[tuple[str, int, int]]:
        """(project, mislabelled wheels, wheels), most mislabelled first."""
        items = [
            (p, c["mislabelled"], sum(c.values()))
            for p, c in self.projects.items()
            if c["mislabelled"]
        ]
        items.sort(key=lambda t: (-t[1], t[0]))
        return items[:n]


def summarise(con: sqlite3.Connection, filters: ReportFilters = ALL) -> Summary:
    s = Summary()
    for row in iter_rows(con, filters):
        s.add(row)
    return s


# ---------------------------------------------------------------------------------------------
# Mirror-wide findings: grouped inside SQLite over the stored facts.


@dataclass
class VendoredConflict:
    soname: str
    variants: int  # distinct contents
    projects: int
    wheels: int
    examples: list[tuple[str, str, int]]  # (project, wheel, size) one per variant, capped


@dataclass
class DuplicateBinary:
    basename: str
    size: int
    wheels: int
    projects: int
    examples: list[str]  # project names, capped


_MEMBER_KEY = re.compile(r'^\{"member":"((?:[^"\\]|\\.)*)",?')
_SONAME = re.compile(r'"soname":"((?:[^"\\]|\\.)*)"')


def _elf_identity(elf_text: str, size: object, crc: object) -> str:
    """What the report treats as a binary's content identity: the central directory's CRC-32
    and size when the facts carry a CRC, else the size and every stored ELF fact (minus the
    member path): equal sizes and equal parsed dynamic sections, a near-certain proxy.
    ``elf_text`` is SQLite's minified JSON of one ElfFacts (keys in dataclass order)."""
    if crc is not None:
        return f"crc:{size}:{crc}"
    body = _MEMBER_KEY.sub("{", elf_text, count=1)
    return f"facts:{size}:" + hashlib.blake2b(body.encode(), digest_size=12).hexdigest()


def _json_rows(
    con: sqlite3.Connection, path: str, filters: ReportFilters, what: str = "e.value"
) -> Iterator[tuple[Any, ...]]:
    """(wheel id, project, filename, *what) of each element ``e`` of facts' ``path`` array,
    by wheel id. Facts the store holds are the scanner's own JSON; should one be malformed the
    walk restarts from where it stopped, skipping rows that are not valid JSON."""
    cond, params = filters.where()
    done = -1  # wheels with id <= done were walked completely
    guard = ""
    while True:
        sql = (
            f"SELECT w.id, w.project, w.filename, {what} FROM wheels w, "
            f"json_each(w.facts, '{path}') e WHERE w.facts IS NOT NULL AND w.id > ? {guard} "
            f"AND {cond} ORDER BY w.id"
        )
        try:
            # json_each parses a wheel's whole facts before its first row: a malformed one
            # fails before yielding anything, and every wheel seen before it is complete
            for row in con.execute(sql, [done, *params]):
                yield row
                done = row[0]
            return
        except sqlite3.OperationalError:
            if guard:
                raise
            guard = "AND json_valid(w.facts)"


def _elf_table(con: sqlite3.Connection, filters: ReportFilters) -> str:
    """A temp table (on disk: ``temp_store=FILE``) of every stored ELF member with its identity,
    filled from one streaming walk; the grouping queries run over it."""
    filters.install(con)
    con.execute("DROP TABLE IF EXISTS temp.ws_elfs")
    con.execute(
        "CREATE TEMP TABLE ws_elfs (id INTEGER, project TEXT, filename TEXT, member TEXT,"
        " soname TEXT, size INTEGER, ident TEXT)"
    )
    loads = json.loads
    members = _json_rows(
        con, "$.members", filters,
        "json_extract(e.value, '$.member'), json_extract(e.value, '$.size'),"
        " json_extract(e.value, '$.crc32')",
    )  # fmt: skip
    pending: dict[str, tuple[object, object]] = {}
    cur_id = -1
    nxt = next(members, None)
    batch: list[tuple[object, ...]] = []
    for wid, project, filename, elf_text in _json_rows(con, "$.elfs", filters):
        if wid != cur_id:
            cur_id = wid
            pending = {}
            while nxt is not None and nxt[0] <= wid:
                if nxt[0] == wid:
                    pending[str(nxt[3])] = (nxt[4], nxt[5])
                nxt = next(members, None)
        mm = _MEMBER_KEY.match(elf_text)
        if mm is None:
            continue  # not an ElfFacts object
        member = mm.group(1)
        sm = _SONAME.search(elf_text)
        soname = sm.group(1) if sm else None
        try:
            if "\\" in member:
                member = loads(f'"{member}"')
            if soname and "\\" in soname:
                soname = loads(f'"{soname}"')
        except ValueError:
            continue
        size, crc = pending.get(member, (None, None))
        ident = _elf_identity(elf_text, size, crc)
        batch.append((wid, project, filename, member, soname, size, ident))
        if len(batch) >= 5000:
            con.executemany("INSERT INTO ws_elfs VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
            batch.clear()
    if batch:
        con.executemany("INSERT INTO ws_elfs VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
    con.execute("CREATE INDEX temp.ws_elfs_soname ON ws_elfs (soname)")
    con.execute("CREATE INDEX temp.ws_elfs_ident ON ws_elfs (ident)")
    return "temp.ws_elfs"


def vendored_conflicts(
    con: sqlite3.Connection,
    filters: ReportFilters = ALL,
    top: int = 50,
    table: str | None = None,
) -> tuple[int, list[VendoredConflict]]:
    """Sonames of bundled libraries (ELF with a DT_SONAME that is not a Python extension)
    shipped by two or more projects with two or more distinct contents; (how many, top-N)."""
    t = table or _elf_table(con, filters)
    base = f"""
      SELECT soname, count(DISTINCT ident) AS variants, count(DISTINCT project) AS projects,
             count(DISTINCT id) AS wheels
        FROM {t}
       WHERE soname IS NOT NULL AND member NOT LIKE '%.cpython-%' AND member NOT LIKE '%.abi3.so'
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
        out.append(
            VendoredConflict(
                soname,
                variants,
                projects,
                wheels,
                [(UNPARSEABLE if p is None else str(p), str(f), int(z or 0)) for p, f, z in ex],
            )
        )
    return total, out


def duplicate_binaries(
    con: sqlite3.Connection,
    filters: ReportFilters = ALL,
    top: int = 50,
    table: str | None = None,
) -> tuple[int, list[DuplicateBinary]]:
    """Binaries with the same identity in wheels of two or more projects; (how many, top-N)."""
    t = table or _elf_table(con, filters)
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
        # str(None) listed a project named "None" for wheels whose name gave no project
        ex = [UNPARSEABLE if r[0] is None else str(r[0]) for r in con.execute(
            f"SELECT DISTINCT project FROM {t} WHERE ident = ? ORDER BY project LIMIT 8", (ident,)
        )]  # fmt: skip
        base_name = str(member).rsplit("/", 1)[-1]
        out.append(DuplicateBinary(base_name, int(size or 0), int(wheels), int(projects), ex))
    return total, out


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


def mirror_findings(
    con: sqlite3.Connection, filters: ReportFilters = ALL, top: int = 50
) -> MirrorFindings:
    t = _elf_table(con, filters)
    ct, c = vendored_conflicts(con, filters, top, t)
    dt, d = duplicate_binaries(con, filters, top, t)
    has_crc = con.execute(f"SELECT 1 FROM {t} WHERE ident LIKE 'crc:%' LIMIT 1").fetchone()
    rep = con.execute(
        "SELECT count(*), coalesce(sum(n - 1), 0), coalesce(sum((n - 1) * coalesce(sz, 0)), 0)"
        f" FROM (SELECT count(DISTINCT id) AS n, max(size) AS sz FROM {t} GROUP BY ident)"
        " WHERE n > 1"
    ).fetchone()
    return MirrorFindings(
        ct, c, dt, d, "crc32" if has_crc else "facts", (int(rep[0]), int(rep[1]), int(rep[2]))
    )


def _mirror_findings_of(db: str, filters: ReportFilters, top: int) -> MirrorFindings:
    con = open_store(db)
    try:
        return mirror_findings(con, filters, top)
    finally:
        con.close()


def summarise_all(
    db: str, filters: ReportFilters = ALL, top: int = 50
) -> tuple[Summary, MirrorFindings]:
    """The summary and the mirror-wide findings of the store at ``db``. They read different
    columns in independent passes, so with two or more cores the mirror-wide pass runs in a
    second process (its own read-only connection) while this one summarises."""
    if (os.cpu_count() or 1) < 2:
        con = open_store(db)
        try:
            return summarise(con, filters), mirror_findings(con, filters, top)
        finally:
            con.close()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    con = open_store(db)
    ctx = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            fut = pool.submit(_mirror_findings_of, db, filters, top)
            summary = summarise(con, filters)
            return summary, fut.result()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Text.


def _table(rows: list[list[str]], out: SafeText, indent: str = "  ") -> None:
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        out.write(indent + "  ".join(cells).rstrip() + "\n")


def write_text(
    s: Summary, mf: MirrorFindings | None, out: IO[str], *, top: int = 20, source: str = ""
) -> None:
    """The text report; every name in it passes the output boundary (:mod:`.safe_text`)."""
    sw = SafeText(out)
    sw.write(f"wheelscan report{f' of {source}' if source else ''}: {s.total} wheels\n\n")
    sw.write("Totals by status\n")
    _table(
        [[st, str(s.status[st])] for st in STATUSES if s.status[st]]
        + [[st, str(n)] for st, n in sorted(s.status.items()) if st not in STATUSES],
        sw,
    )
    if s.yanked_mislabelled:
        sw.write(f"  (yanked among the mislabelled: {s.yanked_mislabelled})\n")
    rows, cols = s.matrix_axes()
    sw.write("\nClaimed tag (rows) vs minimal honest tag (columns), judged wheels\n")
    if rows:
        _table(
            [["claimed \\ minimal", *cols]]
            + [[r, *(str(s.matrix[(r, c)] or ".") for c in cols)] for r in rows],
            sw,
        )
    else:
        sw.write("  (no judged Linux wheels)\n")
    sw.write("\nWheels by architecture and libc (judged)\n")
    _table(
        [["arch", "libc", "wheels", "mislabelled"]]
        + [
            [a, lc, str(sum(c.values())), str(c["mislabelled"])]
            for (a, lc), c in sorted(s.arch_libc.items())
        ],
        sw,
    )
    sw.write("\nabi3 claims (judged wheels): claimed python tag vs oldest honest one\n")
    if s.abi3:
        n = sum(s.abi3.values())
        sw.write(f"  {n} abi3 wheel{'s' * (n != 1)}, {s.abi3_broken} whose abi3 claim breaks\n")
        _table([["claimed", "honest", "wheels"]]
               + [[c, m, str(k)] for (c, m), k in sorted(s.abi3.items())], sw)  # fmt: skip
    else:
        sw.write("  (no judged abi3 wheels)\n")
    sw.write("\nMost common reasons (mislabelled wheels)\n")
    tr = s.top_reasons(top)
    if tr:
        for r in tr:
            sw.write(f"  {reason_line(r)}\n")
    else:
        sw.write("  (none)\n")
    sw.write("\nProjects with the most mislabelled wheels\n")
    tp = s.top_projects(top)
    _table([["project", "mislabelled", "wheels"]] + [[p, str(m), str(n)] for p, m, n in tp], sw)
    if not tp:
        sw.write("  (none)\n")
    sw.write("\nErrors by reason\n")
    if s.errors:
        for why, n in sorted(s.errors.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            sw.write(f"  {n}  {why}\n")
    else:
        sw.write("  (none)\n")
    if mf is not None:
        how = (
            "CRC-32 and size"
            if mf.identity == "crc32"
            else "size and parsed ELF facts (the store keeps no content digest)"
        )
        sw.write(f"\nSame soname vendored with different contents (identity: {how})\n")
        sw.write(f"  {mf.conflicts_total} soname{'s' * (mf.conflicts_total != 1)}\n")
        for c in mf.conflicts[:top]:
            sw.write(
                f"  {c.soname}: {c.variants} variants in {c.projects} projects, {c.wheels} wheels\n"
            )
        nb, copies, extra = mf.repeated
        sw.write("\nIdentical binaries in several wheels\n")
        sw.write(
            f"  {nb} binar{'ies' if nb != 1 else 'y'} in two or more wheels: {copies} extra "
            f"cop{'ies' if copies != 1 else 'y'}, {extra} bytes\n"
        )
        sw.write("\nIdentical binaries shipped by several projects\n")
        sw.write(f"  {mf.duplicates_total} binar{'ies' if mf.duplicates_total != 1 else 'y'}\n")
        for d in mf.duplicates[:top]:
            sw.write(
                f"  {d.basename} ({d.size} bytes): {d.wheels} wheels in {d.projects} "
                f"projects ({', '.join(d.examples)})\n"
            )
