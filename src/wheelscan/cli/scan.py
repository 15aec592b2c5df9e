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
from ..limits import DEFAULT_LIMITS, Limits
from ..mirror.refs import is_url
from ..safe_text import eprint

if TYPE_CHECKING:
    from ..mirror.refs import Discovery, WheelRef
    from ..mirror.sources import Filters
    from ..mirror.store import Outcome

__all__ = ["ScanSummary", "configure_parser", "execute", "exit_status", "run_scan"]


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


def run_scan(
    specs: list[str],
    db: str,
    *,
    jobs: int | None = None,
    rescan: bool = False,
    filters: Filters | None = None,
    engine: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    timeout: float | None = 600.0,
    policy: str | None = None,
    stable_abi: str | None = None,
    exclude: tuple[str, ...] = (),
    strict: bool = False,
    member_cache: bool = True,
    dask: Any = None,
    progress: bool = False,
    stdin: TextIO | None = None,
    batch_bytes: int = 8 << 20,
    on_outcome: Any = None,
    allow_hosts: tuple[str, ...] = (),
    wheel_timeout: float | None = 120.0,
    verify_record: bool = False,
    connections: int = DEFAULT_CONNECTIONS,
) -> ScanSummary:
    """Scan every wheel of ``specs`` into the store at ``db``; Ctrl-C commits what is done."""
    from ..mirror.pool import DaskPool, LocalPool, ScanConfig
    from ..mirror.sources import Discovery, iter_sources
    from ..mirror.store import Store

    disc = Discovery()
    summary = ScanSummary(discovery=disc)
    cfg = ScanConfig(
        engine=engine,
        limits=limits,
        db_path=os.path.abspath(db),
        member_cache=member_cache,
        policy=policy,
        stable_abi=stable_abi,
        exclude=tuple(exclude),
        strict=strict,
        allow_hosts=tuple(allow_hosts),
        wheel_timeout=wheel_timeout,
        verify_record=verify_record,
        threads=_threads_per_worker(specs, connections, jobs, dask),
    )
    store = Store(db)
    store.needs_record = verify_record  # facts stored without RECORD verified are re-read
    bar = _Progress(progress, disc)
    t0 = time.perf_counter()

    def todo() -> Any:
        # the resume lookup is one query per chunk; chunks grow from 1 so that a slow source
        # (a list trickling in on stdin) still gets its first wheels scanned at once
        refs = iter_sources(specs, disc, filters, stdin, tuple(allow_hosts))
        size = 1
        while chunk := list(itertools.islice(refs, size)):
            size = min(size * 2, 256)
            statuses = [None] * len(chunk) if rescan else store.current_statuses(chunk)
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
    if dask is not None:
        pool = DaskPool(cfg, dask, batch_bytes=batch_bytes)
    else:
        pool = LocalPool(cfg, jobs, batch_bytes=batch_bytes, timeout=timeout)
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


def _threads_per_worker(specs: list[str], connections: int, jobs: int | None, dask: Any) -> int:
    """Remote wheels each worker scans at once: ``connections`` shared out over the workers
    when a source is remote (local scans keep one wheel per worker: they are CPU-bound)."""
    if dask is not None or not any(is_url(s) for s in specs):
        return 1
    workers = max(1, jobs or os.cpu_count() or 1)
    return max(1, -(-max(1, connections) // workers))


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
    progress = not args.quiet and sys.stderr.isatty() and not environment().ci
    try:
        summary = run_scan(
            args.sources,
            args.db,
            jobs=args.jobs,
            rescan=args.rescan,
            filters=filters,
            engine=args.engine,
            limits=dataclasses.replace(DEFAULT_LIMITS, max_wheel_inflate=args.max_inflate),
            timeout=args.timeout if args.timeout > 0 else None,
            policy=getattr(args, "policy", None),
            stable_abi=getattr(args, "stable_abi", None),
            exclude=tuple(getattr(args, "exclude", None) or ()),
            strict=bool(getattr(args, "strict", False)),
            member_cache=not args.no_member_cache,
            dask=args.dask,
            progress=progress,
            allow_hosts=tuple(args.allow_host),
            wheel_timeout=args.wheel_timeout if args.wheel_timeout > 0 else None,
            verify_record=args.verify_record,
            connections=args.connections,
        )
    except (FileNotFoundError, ValueError, StoreError, RemoteError) as e:
        eprint(f"wheelscan scan: {e}")
        return 2
    eprint(summary.line())
    d = summary.discovery
    if d is not None:
        for problem in d.problems[:10]:
            eprint(f"wheelscan scan: warning: {problem}")
    return exit_status(summary.counts, summary.interrupted)
