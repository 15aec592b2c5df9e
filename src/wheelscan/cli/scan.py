"""``wheelscan scan SOURCE...``: scan a tree, a bandersnatch mirror or a list into SQLite."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from ..environment import environment
from ..limits import DEFAULT_LIMITS
from ..mirror.refs import is_url
from ..safe_text import eprint

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..mirror.pool import ScanConfig
    from ..mirror.refs import Discovery, WheelRef
    from ..mirror.sources import Filters
    from ..mirror.store import Outcome

__all__ = [
    "Feedback",
    "ScanSummary",
    "ScanTarget",
    "Scheduling",
    "configure_parser",
    "execute",
    "exit_status",
    "run_scan",
]


#: remote wheels in flight at once, over all workers (``--connections``): enough to cover the
#: bandwidth-delay product of a far index (100 MB/s x 20 ms is 2 MB in flight; a wheel's
#: binaries come a window at a time)
DEFAULT_CONNECTIONS = 32


@dataclass
class ScanSummary:
    counts: Counter[str] = field(default_factory=Counter)  # status -> wheels (incl. unchanged)
    scanned: int = 0
    unchanged: int = 0
    bytes: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    deaths: int = 0
    timeouts: int = 0
    discovery: Discovery | None = None
    remote: int = 0  # wheels read over HTTP (wheelscan.mirror.remote)
    remote_size: int = 0  # their full sizes
    transferred: int = 0  # response-body bytes fetched for them

    def note_remote(self, out: Outcome) -> None:
        """Add a remote wheel's transfer figures to the totals."""
        self.remote += 1
        self.remote_size += out.size
        self.transferred += out.transferred or 0

    def line(self) -> str:
        total = self.scanned + self.unchanged
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "nothing"
        secs = max(self.seconds, 1e-9)
        parts = [
            f"wheelscan scan: {total} wheels ({self.scanned} scanned, "
            f"{self.unchanged} unchanged): {statuses}",
        ]
        d = self.discovery
        if d is not None:
            skipped = [
                f"{n} {what}"
                for n, what in (
                    (d.non_wheels, "non-wheel files skipped"),
                    (d.filtered, "filtered out"),
                    (d.missing, "missing"),
                    (d.refused, "index links refused"),
                    (d.undecodable, "paths not UTF-8 skipped"),
                )
                if n
            ]
            if skipped:
                parts.append(", ".join(skipped))
        parts.append(
            f"{self.seconds:.1f} s, {_rate(self.scanned / secs)} wheels/s, "
            f"{self.bytes / secs / 1e6:.1f} MB/s"
        )
        if self.remote:
            share = self.transferred / self.remote_size if self.remote_size else 0.0
            parts.append(
                f"{self.remote} remote wheels: {self.transferred / 1e6:.2f} MB fetched of "
                f"{self.remote_size / 1e6:.2f} MB ({share:.1%})"
            )
        if self.deaths or self.timeouts:
            parts.append(f"{self.deaths} worker deaths, {self.timeouts} timeouts")
        if self.interrupted:
            parts.append("INTERRUPTED (finished wheels are saved; re-run to resume)")
        return "; ".join(parts)


def _rate(per_second: float) -> str:
    """A rate with the digits that matter: 0.4, 7.5, 1,441 (never '0' for a slow scan)."""
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.1f}"


def exit_status(counts: Counter[str] | dict[str, int], interrupted: bool = False) -> int:
    """As for ``check``: 2 if any wheel is an error, else 1 if any is mislabelled, else 0."""
    if interrupted:
        return 130
    if counts.get("error"):
        return 2
    if counts.get("mislabelled"):
        return 1
    return 0


class _Progress:
    """A tqdm bar on a terminal; nothing otherwise. Postfix refreshed at most twice a second."""

    def __init__(self, enabled: bool, disc: Discovery) -> None:
        self.disc = disc
        self.bar: Any = None
        self.t0 = time.monotonic()
        self.last = 0.0
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(unit="whl", dynamic_ncols=True, smoothing=0.1, file=sys.stderr)

    def update(self, summary: ScanSummary) -> None:
        bar = self.bar
        if bar is None:
            return
        if self.disc.done and bar.total is None:
            bar.total = self.disc.wheels - self.disc.filtered
        bar.update(1)
        now = time.monotonic()
        if now - self.last >= 0.5:
            self.last = now
            mbps = summary.bytes / max(now - self.t0, 1e-9) / 1e6
            bar.set_postfix(
                MBps=f"{mbps:.1f}",
                mislabelled=summary.counts.get("mislabelled", 0),
                errors=summary.counts.get("error", 0),
                refresh=False,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass(frozen=True)
class ScanTarget:
    """What to scan and where to put it."""

    #: SOURCE arguments: directory trees, bandersnatch mirrors, list files, ``-``, http(s) URLs
    sources: Sequence[str]
    db: str  # the SQLite store
    rescan: bool = False  # scan again wheels the store already has, unchanged
    filters: Filters | None = None  # which of the listed wheels count (None: all)
    stdin: TextIO | None = None  # the list a ``-`` source reads (None: sys.stdin)


@dataclass(frozen=True)
class Scheduling:
    """How the work is spread: over local worker processes or a Dask cluster."""

    jobs: int | None = None  # local worker processes (None: one per core)
    dask: Any = None  # a dask.distributed scheduler address or Client, instead of local workers
    #: remote sources: wheels in flight at once over all workers (local workers only)
    connections: int = DEFAULT_CONNECTIONS
    timeout: float | None = 600.0  # per-wheel time cap, local workers only (None: none)
    batch_bytes: int = 8 << 20  # wheel bytes per message to a worker (a big wheel goes alone)


@dataclass(frozen=True)
class Feedback:
    """What the caller is told while the scan runs (the summary comes back at the end)."""

    progress: bool = False  # a tqdm bar on stderr
    #: called in the main process for each wheel scanned, once the store has its row
    on_outcome: Callable[[WheelRef, Outcome], None] | None = None


def run_scan(
    target: ScanTarget,
    *,
    config: ScanConfig | None = None,
    scheduling: Scheduling = Scheduling(),
    feedback: Feedback = Feedback(),
) -> ScanSummary:
    """Scan every wheel of ``target`` into its store; Ctrl-C commits what is done.

    ``config`` says how each wheel is read and judged (default: :class:`ScanConfig`'s own
    defaults); its ``db_path`` (the member cache's store) and ``threads`` (from
    ``scheduling.connections``) are set here, whatever they were."""
    import dataclasses

    from ..mirror.pool import DaskPool, LocalPool, ScanConfig
    from ..mirror.sources import Discovery, iter_sources
    from ..mirror.store import Store

    disc = Discovery()
    summary = ScanSummary(discovery=disc)
    specs = list(target.sources)
    cfg = dataclasses.replace(
        config or ScanConfig(),
        db_path=os.path.abspath(target.db),
        threads=_threads_per_worker(specs, scheduling),
    )
    store = Store(target.db)
    store.needs_record = cfg.verify_record  # facts stored without RECORD verified are re-read
    bar = _Progress(feedback.progress, disc)
    on_outcome = feedback.on_outcome
    t0 = time.perf_counter()

    def todo() -> Any:
        # the resume lookup is one query per chunk; chunks grow from 1 so that a slow source
        # (a list trickling in on stdin) still gets its first wheels scanned at once
        refs = iter_sources(specs, disc, target.filters, target.stdin, cfg.allow_hosts)
        size = 1
        while chunk := list(itertools.islice(refs, size)):
            size = min(size * 2, 256)
            statuses = [None] * len(chunk) if target.rescan else store.current_statuses(chunk)
            for ref, status in zip(chunk, statuses, strict=True):
                if status is None:
                    yield ref
                else:
                    summary.unchanged += 1
                    summary.counts[status] += 1
                    bar.update(summary)

    def on_result(ref: WheelRef, out: Outcome) -> None:
        store.record(ref, out)
        summary.scanned += 1
        summary.bytes += ref.size or 0
        summary.counts[out.status] += 1
        if is_url(ref.location):
            summary.note_remote(out)
        bar.update(summary)
        if on_outcome is not None:
            on_outcome(ref, out)

    pool: LocalPool | DaskPool
    if scheduling.dask is not None:
        pool = DaskPool(cfg, scheduling.dask, batch_bytes=scheduling.batch_bytes)
    else:
        pool = LocalPool(cfg, scheduling.jobs, batch_bytes=scheduling.batch_bytes,
                         timeout=scheduling.timeout)  # fmt: skip
    try:
        pool.run(todo(), on_result)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        summary.seconds = time.perf_counter() - t0
        summary.deaths, summary.timeouts = pool.deaths, pool.timeouts
        bar.close()
        store.close()
    return summary


def _threads_per_worker(specs: list[str], scheduling: Scheduling) -> int:
    """Remote wheels each worker scans at once: ``connections`` shared out over the workers
    when a source is remote (local scans keep one wheel per worker: they are CPU-bound)."""
    if scheduling.dask is not None or not any(is_url(s) for s in specs):
        return 1
    workers = max(1, scheduling.jobs or os.cpu_count() or 1)
    return max(1, -(-max(1, scheduling.connections) // workers))


def configure_parser(sub: Any) -> None:
    from .options import (
        add_db_argument,
        add_engine_argument,
        add_filter_arguments,
        add_judge_arguments,
        add_record_argument,
    )

    p = sub.add_parser(
        "scan",
        help="scan trees, bandersnatch mirrors or path lists into a resumable SQLite store",
        description=(
            "Scan every wheel of each SOURCE (a directory tree, a bandersnatch mirror root, a "
            "file listing paths one per line, - for that list on stdin, or an http(s) URL of a "
            "PEP 691/503 simple index, a project page or a wheel) into --db. A re-run "
            "skips wheels already scanned and unchanged. Exit status: 2 if any wheel is an "
            "error, 1 if any is mislabelled, 0 otherwise."
        ),
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="a directory, a bandersnatch mirror, a list file, - or an http(s) URL")
    add_db_argument(p)
    p.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: cores)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--rescan", action="store_true", help="scan again even if unchanged")
    add_filter_arguments(p)
    add_judge_arguments(p)
    add_engine_argument(p)
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="per-wheel time cap (default: %(default)s)")  # fmt: skip
    p.add_argument("--max-inflate", type=int, default=DEFAULT_LIMITS.max_wheel_inflate,
                   metavar="BYTES", help="per-wheel cap on bytes inflated")  # fmt: skip
    p.add_argument("--no-member-cache", action="store_true",
                   help="do not reuse ELF facts of identical members")  # fmt: skip
    p.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                   help="remote sources: also follow links and redirects to HOST (repeatable; "
                        "PyPI needs files.pythonhosted.org)")  # fmt: skip
    p.add_argument("--wheel-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="remote sources: time for all requests of one wheel "
                        "(default: %(default)s; 0: none)")  # fmt: skip
    p.add_argument("--connections", type=int, default=DEFAULT_CONNECTIONS, metavar="N",
                   help="remote sources: wheels in flight at once, over all workers, one "
                        "kept-alive connection each (default: %(default)s)")  # fmt: skip
    add_record_argument(p)
    p.add_argument("--dask", metavar="ADDRESS",
                   help="send batches to a dask.distributed scheduler (extra: dask)")  # fmt: skip


def execute(args: argparse.Namespace) -> int:
    import dataclasses

    from packaging.utils import canonicalize_name

    from ..errors import RemoteError
    from ..mirror.pool import ScanConfig
    from ..mirror.sources import Filters, parse_since
    from ..mirror.store import StoreError

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as e:
        eprint(f"wheelscan scan: {e}")
        return 2
    filters = Filters(
        projects=frozenset(str(canonicalize_name(p)) for p in args.project),
        platforms=tuple(args.platform),
        since=since,
    )
    target = ScanTarget(args.sources, args.db, rescan=args.rescan, filters=filters)
    config = ScanConfig(
        engine=args.engine,
        limits=dataclasses.replace(DEFAULT_LIMITS, max_wheel_inflate=args.max_inflate),
        member_cache=not args.no_member_cache,
        policy=args.policy,
        stable_abi=getattr(args, "stable_abi", None),
        exclude=tuple(args.exclude),
        strict=args.strict,
        allow_hosts=tuple(args.allow_host),
        wheel_timeout=args.wheel_timeout if args.wheel_timeout > 0 else None,
        verify_record=args.verify_record,
    )
    scheduling = Scheduling(
        jobs=args.jobs,
        dask=args.dask,
        connections=args.connections,
        timeout=args.timeout if args.timeout > 0 else None,
    )
    feedback = Feedback(progress=not args.quiet and sys.stderr.isatty() and not environment().ci)
    try:
        summary = run_scan(target, config=config, scheduling=scheduling, feedback=feedback)
    except (FileNotFoundError, ValueError, StoreError, RemoteError) as e:
        eprint(f"wheelscan scan: {e}")
        return 2
    eprint(summary.line())
    d = summary.discovery
    if d is not None:
        for problem in d.problems[:10]:
            eprint(f"wheelscan scan: warning: {problem}")
    return exit_status(summary.counts, summary.interrupted)
