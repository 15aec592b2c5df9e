"""Batch reports over a scan store: totals, tag matrices, reasons, offenders, exports.

Everything here formats what the store's reader (:class:`~wheelscan.mirror.store.StoreReader`)
hands out, and never opens a wheel. Rows are streamed once through :class:`Summary`; the memory
it keeps grows with the number of distinct tags, reasons and projects, not with the number of
wheels. The mirror-wide findings (one soname vendored with different contents, duplicate
binaries) are the reader's, grouped inside the store.

Exports (``csv``, ``jsonl``, ``jsonl.zst``) carry one record per wheel: the ``check --format
json`` object plus where the wheel is and what the index said about it
(``data/report-schema.json``, :data:`REPORT_SCHEMA_VERSION`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from ..mirror.sources import parse_since
from ..mirror.store import MirrorFindings, StoreReader, WheelFilter
from ..rules.tags import claim_key, policy_order
from ..rules.verdict import STATUSES
from ..safe_text import SafeText, csv_cell
from .demangle import short

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ..mirror.store import WheelRow

__all__ = [
    "ALL",
    "FORMATS",
    "REPORT_SCHEMA_VERSION",
    "Reason",
    "Summary",
    "causes_of",
    "iter_lines",
    "iter_records",
    "parse_filters",
    "project_name",
    "reason_line",
    "reasons_of",
    "record_of",
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


def parse_filters(
    projects: Iterable[str] = (),
    platforms: Iterable[str] = (),
    statuses: Iterable[str] = (),
    since: str | None = None,
) -> WheelFilter:
    """Which stored wheels a report covers, from ``--project``, ``--platform``, ``--status``
    and ``--since``; ValueError naming the flag when one is wrong."""
    bad = sorted(set(statuses) - set(STATUSES))
    if bad:
        msg = f"--status {', '.join(bad)}: expected one of {', '.join(STATUSES)}"
        raise ValueError(msg)
    return WheelFilter(
        frozenset(str(canonicalize_name(p)) for p in projects),
        tuple(platforms),
        frozenset(statuses),
        None if since is None else parse_since(since),
    )


#: the default: every stored wheel
ALL = WheelFilter()


# ---------------------------------------------------------------------------------------------
# Per-wheel records (the export format).


def record_of(row: WheelRow) -> dict[str, Any]:
    """The export record: the verdict object plus location, upload time and yanked."""
    v = row.verdict
    if v is None:  # the worker died, timed out, or no policy ran: same keys, empty
        v = {
            "schema_version": 1, "wheel": row.filename, "path": row.location,
            "status": row.status, "error": row.error, "claims": [], "per_claim": [],
            "minimal_tag": None, "minimal_tags": {}, "required_glibc": None,
            "findings": [], "policy": {}, "exclude": [], "strict": False, "engine": None,
        }  # fmt: skip
    rec = dict(v)
    # the store's status/error win: a wheel the worker could not finish has no verdict
    rec["status"] = row.status
    rec["error"] = row.error if row.error is not None else v.get("error")
    rec["report_schema"] = REPORT_SCHEMA_VERSION
    rec["project"] = row.project
    rec["location"] = row.location
    rec["upload_time"] = row.upload_time
    rec["yanked"] = row.yanked
    return rec


def iter_records(store: StoreReader, filters: WheelFilter = ALL) -> Iterator[dict[str, Any]]:
    for row in store.wheels(filters):
        yield record_of(row)


def iter_lines(store: StoreReader, filters: WheelFilter = ALL) -> Iterator[str]:
    """The export records as JSON Lines text, in store order.

    The stored verdict JSON is the record minus the report's keys, so those are appended to its
    text instead of decoding and re-encoding it; a row whose stored status or error the verdict
    does not carry (the worker died, no policy ran) goes through :func:`record_of`.
    """
    dumps = json.dumps
    for w in store.wheels_json(filters):
        vj, st = w.verdict_json, w.status
        if (
            vj
            and w.error is None
            and vj.endswith("}")
            and "\n" not in vj
            and (f'"status": "{st}"' in vj or f'"status":"{st}"' in vj)
        ):
            tail = dumps(
                {"report_schema": REPORT_SCHEMA_VERSION, "project": w.project,
                 "location": w.location, "upload_time": w.upload_time, "yanked": w.yanked},
                separators=(",", ":"),
            )  # fmt: skip
            yield f"{vj[:-1]},{tail[1:]}\n"
            continue
        yield dumps(record_of(w.decoded()), separators=(",", ":")) + "\n"


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


_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def _compact_encoder() -> Callable[[object], str]:
    """``_ENCODER.encode``, without its two Python-level calls per value: the C encoder it
    builds on each call, built once (half a million cells per 100,000 wheels in a csv report).
    Where the C accelerator is missing or takes other arguments, the plain method."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode
    try:
        c = make(None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",",
                 False, False, True)  # fmt: skip
        sample = {"a": [1, 2.5, None, True, "\u00e9\ud800"], "b": {}}
        if "".join(c(sample, 0)) != _ENCODER.encode(sample):
            return _ENCODER.encode
    except TypeError:
        return _ENCODER.encode

    def encode(value: object) -> str:
        return "".join(c(value, 0))

    return encode


_ENCODE = _compact_encoder()


#: how write_csv makes each column's cell (0, the rest: a plain cell)
_CSV_KIND = {
    "report_schema": 1, "schema_version": 1, "status": 1, "minimal_tag": 1,
    "required_glibc": 1, "strict": 1, "engine": 1, "yanked": 1,
    "claims": 2, "per_claim": 2, "minimal_tags": 2, "exclude": 2,
    "findings": 3, "violations": 4, "policy": 5,
}  # fmt: skip
_SCALAR = frozenset({str, int, bool, float, type(None)})


def _few_cell(memo: dict[tuple[str, type, object], object], column: str, value: object) -> object:
    """``csv_cell(_cell(value))`` of a column that takes a few values over a whole mirror,
    made once per value (keyed with the type: True and 1 are equal keys, not equal cells)."""
    if value.__class__ not in _SCALAR:
        return csv_cell(_cell(value))
    key = (column, value.__class__, value)
    cell = memo.get(key, memo)
    if cell is memo:
        cell = memo[key] = csv_cell(_cell(value))
        if len(memo) > 4096:  # not so few: a store someone edited
            memo.clear()
    return cell


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return _ENCODE(value)
    return value


def _json_cell(text: object) -> object:
    """A cell of JSON text: ASCII (the encoder escapes the rest), so csv_cell has nothing to
    do unless it begins with something other than a bracket or a quote (a number, from a
    store someone edited)."""
    return text if isinstance(text, str) and text[:1] in ('[', '{', '"') else csv_cell(text)


def write_csv(records: Iterable[dict[str, Any]], out: Path) -> tuple[int, int]:
    """The wheels CSV at ``out`` and its findings CSV beside it; (wheels, findings) written.

    Lists and objects are JSON in their cell; booleans ``true``/``false``; null is empty; a
    text cell a spreadsheet would run as a formula starts with ``'`` (``safe_text.csv_cell``).
    """
    n = nf = 0
    # the policy cell is the same 2 KB of JSON on nearly every row, most of the file: each
    # distinct policy is encoded and CSV-quoted once, and rows carry a placeholder for it,
    # replaced a batch at a time. No real cell can hold a placeholder: csv_cell escapes
    # every lone surrogate.
    policies: dict[str, tuple[str, str]] = {}  # key -> (placeholder, quoted cell)
    with (
        open(out, "w", newline="", encoding="utf-8") as f1,
        open(findings_path(out), "w", newline="", encoding="utf-8") as f2,
    ):
        buf = io.StringIO()
        w1 = csv.writer(buf)
        w2 = csv.writer(f2)
        w1.writerow(CSV_COLUMNS)
        w2.writerow(FINDINGS_COLUMNS)

        def flush() -> None:
            text = buf.getvalue()
            for ph, cell in policies.values():
                if ph in text:
                    text = text.replace(ph, cell)
            f1.write(text)
            buf.seek(0)
            buf.truncate()

        memo: dict[tuple[str, type, object], object] = {}
        kinds = [(c, _CSV_KIND.get(c, 0)) for c in CSV_COLUMNS]
        for rec in records:
            get = rec.get
            findings = get("findings") or []
            pol = get("policy") or {}
            files = pol.get("files")
            pkey = f"{pol.get('source')}\0{pol.get('file')}\0" + "\0".join(
                map(str, files.values()) if isinstance(files, dict) else ()
            )
            if pkey not in policies:
                one = io.StringIO()
                csv.writer(one).writerow([csv_cell(_ENCODE(pol))])
                policies[pkey] = (f"\ud800{len(policies)}\ud800", one.getvalue()[:-2])
            row: list[object] = []
            for c, kind in kinds:
                if kind == 0:  # text or a scalar: made safe
                    row.append(csv_cell(_cell(get(c))))
                elif kind == 1:  # the same, from a few values
                    row.append(_few_cell(memo, c, get(c)))
                elif kind == 2:  # a list or object: its JSON
                    row.append(_json_cell(_ENCODE(get(c) or ({} if c == "minimal_tags" else []))))
                elif kind == 3:
                    row.append(len(findings))
                elif kind == 4:
                    row.append(sum(1 for x in findings if x.get("severity") == "violation"))
                else:  # the policy: its placeholder
                    row.append(policies[pkey][0])
            w1.writerow(row)
            wheel, loc = rec["wheel"], rec["location"]
            if findings:
                wheel, loc = csv_cell(wheel), csv_cell(loc)
                w2.writerows(
                    [wheel, loc, _few_cell(memo, "severity", x.get("severity")),
                     _few_cell(memo, "kind", x.get("kind")),
                     csv_cell(x.get("member") or ""), csv_cell(x.get("detail")),
                     _json_cell(_ENCODE(x.get("evidence") or {}))]
                    for x in findings
                )  # fmt: skip
            nf += len(findings)
            n += 1
            if n % 512 == 0:
                flush()
        flush()
    return n, nf


# ---------------------------------------------------------------------------------------------
# Aggregation.


#: how the reports name the project of a wheel whose filename gave none
UNPARSEABLE = "(unparseable name)"


def project_name(project: str | None) -> str:
    """A project as the reports name it (:data:`UNPARSEABLE` for a wheel whose name gave none)."""
    return UNPARSEABLE if project is None else project


def basename(member: str) -> str:
    """A member path's last component, as the reports name a binary."""
    return member.rsplit("/", 1)[-1]


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


#: projects a summary keeps at least (the most mislabelled; ``--top`` asks for more)
TOP_PROJECTS = 1000


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
    #: the projects with the most mislabelled wheels, up to TOP_PROJECTS: (project,
    #: mislabelled, wheels), counted by the store, not row by row (one count per project of
    #: a mirror is memory that grows with the mirror)
    projects: list[tuple[str, int, int]] = field(default_factory=list)
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

    def add(self, row: WheelRow) -> None:
        self.total += 1
        st = row.status
        self.status[st] += 1
        proj = row.project or UNPARSEABLE
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
        return self.projects[:n]


def summarise(
    store: StoreReader, filters: WheelFilter = ALL, projects: int = TOP_PROJECTS
) -> Summary:
    """The summary of ``filters``' wheels, keeping the ``projects`` most mislabelled."""
    s = Summary()
    for row in store.wheels(filters):
        s.add(row)
    s.projects = store.project_counts(filters, UNPARSEABLE, projects)
    return s


def _mirror_findings_of(db: str, filters: WheelFilter, top: int) -> MirrorFindings:
    with StoreReader(db) as store:
        return store.mirror_findings(filters, top)


def summarise_all(
    db: str, filters: WheelFilter = ALL, top: int = 50
) -> tuple[Summary, MirrorFindings]:
    """The summary and the mirror-wide findings of the store at ``db``. They read different
    parts of the store in independent passes, so with two or more cores the mirror-wide pass
    runs in a second process (its own reader) while this one summarises."""
    with StoreReader(db) as store:
        if (os.cpu_count() or 1) < 2:
            return (summarise(store, filters, max(top, TOP_PROJECTS)),
                    store.mirror_findings(filters, top))
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            fut = pool.submit(_mirror_findings_of, db, filters, top)
            summary = summarise(store, filters, max(top, TOP_PROJECTS))
            return summary, fut.result()


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
                f"  {basename(d.member)} ({d.size} bytes): {d.wheels} wheels in {d.projects} "
                f"projects ({', '.join(project_name(p) for p in d.examples)})\n"
            )
