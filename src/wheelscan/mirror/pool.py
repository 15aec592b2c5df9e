"""Fan a stream of wheels out over worker processes (or a Dask cluster) into the store.

The local pool is hand-rolled rather than ``multiprocessing.Pool`` / ``ProcessPoolExecutor``
because those lose or hang every pending task when one worker dies; here a worker that dies
(segfault, OOM kill) or overruns the per-wheel time cap loses only the wheel it was on:

- work goes out in *batches* sized by bytes (tiny wheels share one message, big ones go alone;
  once discovery is over, batches shrink so no worker idles at the end);
- each worker has at most two batches in flight (no idle gap between batches) and answers one
  message per wheel, in order, so the main process always knows which wheel a worker is on
  and since when, without an extra "started" message;
- discovery is pulled lazily into a bounded look-ahead, so memory is flat in the mirror size
  and the first results arrive while the mirror is still being listed.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing as mp
import os
import selectors
import signal
import socket
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Protocol

from ..environment import hang_if_asked
from ..limits import DEFAULT_LIMITS, Limits
from .refs import is_url
from .store import MIN_CACHED, Outcome, SharedMemberCache

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from ..facts import WheelFacts
    from ..rules.verdict import Judge
    from .refs import WheelRef

__all__ = [
    "DaskPool",
    "LocalPool",
    "MakeWorker",
    "ScanConfig",
    "WheelWorker",
    "Worker",
    "scan_batch",
    "scan_one",
]


@dataclass(frozen=True)
class ScanConfig:
    """How each wheel is read and judged: everything a worker needs; picklable, sent once per
    worker (or per Dask batch). ``wheelscan scan`` sets ``db_path`` and ``threads`` itself."""

    engine: str | None = None
    limits: Limits = DEFAULT_LIMITS
    db_path: str | None = None  # member cache backing store (read-only from workers)
    member_cache: bool = True
    cache_capacity: int = 4096
    cache_min_size: int = MIN_CACHED  # compressed bytes; smaller members are re-inflated
    judge: bool = True
    policy: str | None = None
    stable_abi: str | None = None  # abi3 manifest file (None: the shipped one)
    exclude: tuple[str, ...] = ()
    strict: bool = False
    allow_hosts: tuple[str, ...] = ()  # remote wheels: hosts besides the wheel URL's origin
    wheel_timeout: float | None = 120.0  # remote wheels: seconds for all their requests
    verify_record: bool = False  # hash every member against RECORD (facts.record)
    #: remote wheels scanned at once by each worker (threads; each holds one connection at a
    #: time): a network scan is bound by round trips, so many wheels must be in flight
    threads: int = 1


# -- the per-wheel work ---------------------------------------------------------------------


class WheelWorker(Protocol):
    """A worker process's per-wheel state: answers one :class:`Outcome` per wheel (an error
    outcome for a bad wheel: it never raises), possibly from several threads at once."""

    def scan(self, location: str, filename: str) -> Outcome: ...


#: builds a worker process's :class:`WheelWorker` from the config; a class or function that
#: spawned processes can import by its name (it is pickled by reference)
MakeWorker = Callable[[ScanConfig], WheelWorker]


class Worker:
    """The per-process (or per-Dask-worker) state: engine, judge, member cache.

    :meth:`scan` may be called from several threads: remote wheels run side by side (they
    wait on the network; the native reader inflates with the GIL released), local ones one
    at a time under a lock (they are CPU-bound, and the member cache's SQLite handle is not
    shared between threads)."""

    def __init__(self, cfg: ScanConfig) -> None:
        self.cfg = cfg
        self.cache = (
            SharedMemberCache(cfg.db_path, cfg.cache_capacity, cfg.cache_min_size)
            if cfg.member_cache
            else None
        )
        self._local = threading.Lock()
        self._judge_lock = threading.Lock()
        self._judge: Judge | None = None
        self.judge: Judge | None = self._lazy_judge if cfg.judge else None
        if cfg.threads > 1:
            from .httpfile import AHEAD, pool_manager

            # a kept-alive connection for every thread and its read-aheads
            pool_manager(cfg.threads * (1 + AHEAD))
        else:
            self.warm_up()  # local wheels: everything is ready before the time cap starts

    def _built_judge(self) -> Judge:
        """The judge, built on first use: a remote worker's first requests go out while the
        verdict code and the policy are still being loaded (see :meth:`warm_up`)."""
        with self._judge_lock:
            if self._judge is None:
                from ..rules.verdict import make_judge

                cfg = self.cfg
                self._judge = make_judge(cfg.policy, cfg.exclude, strict=cfg.strict,
                                         stable_abi=cfg.stable_abi)  # fmt: skip
            return self._judge

    def _lazy_judge(self, facts: WheelFacts, location: str | None) -> tuple[str, str, str | None]:
        return self._built_judge()(facts, location)

    def warm_up(self) -> None:
        """Import the engine and build the judge now; a wheel's thread that needs either
        first waits for it (imports and the judge's lock), none builds it twice."""
        from ..read import engine  # noqa: F401

        if self.cfg.judge:
            self._built_judge()

    def scan(self, location: str, filename: str) -> Outcome:
        if is_url(location):  # remote reads never use the member cache (see remote.py)
            return scan_one(location, filename, self.cfg, self.judge, None)
        with self._local:
            return scan_one(location, filename, self.cfg, self.judge, self.cache)


def scan_one(
    location: str,
    filename: str,
    cfg: ScanConfig,
    judge: Judge | None = None,
    cache: SharedMemberCache | None = None,
) -> Outcome:
    """Scan and judge one wheel; never raises for a bad wheel."""
    hang_if_asked(filename)
    t0 = time.perf_counter()
    kw: dict[str, Any] = {"member_cache": cache} if cache is not None else {}
    try:
        if is_url(location):  # a remote source: wheelscan.mirror.remote
            from .remote import scan_remote

            facts = scan_remote(location, filename, cfg.engine, cfg.limits,
                                allow_hosts=cfg.allow_hosts, wheel_timeout=cfg.wheel_timeout,
                                verify_record=cfg.verify_record)  # fmt: skip
        elif not os.path.isabs(location):
            # sources hand out absolute paths and http(s) URLs only: anything else ("file:",
            # "foo:/x.whl", a relative path) is refused rather than opened on this host
            return Outcome(
                location, filename, "error",
                error=f"{filename}: {location}: refused: neither an http(s) URL nor an "
                      "absolute local path",
                scan_seconds=time.perf_counter() - t0,
            )  # fmt: skip
        else:
            from ..read.engine import scan_wheel

            facts = scan_wheel(location, cfg.engine, filename=filename, limits=cfg.limits,
                               verify_record=cfg.verify_record, **kw)  # fmt: skip
    except Exception as e:  # engines promise not to raise; if one does, record it and go on
        return Outcome(
            location, filename, "error",
            error=f"{filename}: scanner raised {type(e).__name__}: {e}",
            scan_seconds=time.perf_counter() - t0,
            new_members=cache.drain() if cache else [],
        )  # fmt: skip
    facts_json = facts.to_json()
    status = "error" if facts.error else "unjudged"
    verdict_json = policy_version = None
    error = facts.error
    if error and filename not in error:
        error = f"{filename}: {error}"  # a store row's error names its wheel on its own
    if judge is not None:
        try:
            status, verdict_json, policy_version = judge(facts, location)
        except Exception as e:  # a verdict bug must not stop a mirror scan
            status, error = "error", f"{filename}: judging failed: {type(e).__name__}: {e}"
    return Outcome(
        location, filename, status,
        error=error,
        facts_json=facts_json,
        verdict_json=verdict_json,
        policy_version=policy_version,
        engine=facts.engine,
        scan_seconds=time.perf_counter() - t0,
        inflated=sum(m.inflated for m in facts.members),
        size=facts.size,
        transferred=facts.transferred,
        new_members=cache.drain() if cache else [],
    )  # fmt: skip


_DASK_WORKERS: dict[ScanConfig, Worker] = {}
_DASK_LOCK = threading.Lock()


def scan_batch(tasks: list[tuple[str, str]], cfg: ScanConfig) -> list[Outcome]:
    """A batch on a Dask worker: one :class:`Worker` per config per process, shared by threads."""
    with _DASK_LOCK:
        w = _DASK_WORKERS.get(cfg)
        if w is None:
            w = _DASK_WORKERS[cfg] = Worker(cfg)
    return [w.scan(loc, fn) for loc, fn in tasks]


# -- local process pool ---------------------------------------------------------------------


def _die_with_parent(parent: int | None) -> None:
    # If the main process is kill -9'ed, a worker stuck in a wheel must not outlive it.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    # the signal only covers a parent that dies from now on: one already gone (between the
    # fork and the prctl) left this worker an orphan, with no one to answer
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def _worker_main(
    conn: Connection,
    cfg: ScanConfig,
    make_worker: MakeWorker,
    parent: int | None = None,
    inherited: tuple[int, ...] = (),
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides what Ctrl-C means
    _die_with_parent(parent)
    # forked: the main process's ends of its pipes to the other workers (and to this one),
    # their sentinels and its epoll set came along; a copy held here would keep a pipe open
    # that the main process closes, or an fd registered in its epoll set after it let go
    for fd in inherited:
        with contextlib.suppress(OSError):
            os.close(fd)
    _serve(conn, cfg, make_worker)
    # told to stop (or orphaned): every answer went down the pipe, the worker writes nothing
    # else (the member cache is opened read-only), so the interpreter's teardown -- a tenth
    # of a second for each worker at the end of every scan -- is skipped
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _serve(conn: Connection, cfg: ScanConfig, make_worker: MakeWorker) -> None:
    worker = make_worker(cfg)
    try:
        conn.send(_READY)  # the time cap starts now, not while the engine is being imported
    except OSError:
        return
    if cfg.threads > 1:
        _threaded_loop(conn, worker, cfg.threads)
        return
    try:
        while (batch := _next_batch(conn)) is not None:
            for location, filename in batch:
                conn.send(worker.scan(location, filename))
    except OSError:  # the main process is gone
        return


def _next_batch(conn: Connection) -> list[tuple[str, str]] | None:
    """The next batch from the main process; None when it says stop or is gone."""
    try:
        batch: list[tuple[str, str]] | None = conn.recv()
    except (EOFError, OSError):
        return None
    return batch


def _threaded_loop(conn: Connection, worker: WheelWorker, threads: int) -> None:
    """Wheels scanned by ``threads`` threads, answered in the order they came: one thread
    receives batches and hands their wheels out, this one sends each result in turn (so the
    main process's account of what a worker is on stays as it is for one thread)."""
    from concurrent.futures import Future, ThreadPoolExecutor
    from queue import SimpleQueue

    order: SimpleQueue[Future[Outcome] | None] = SimpleQueue()
    ex = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wheelscan-scan")

    def receive() -> None:
        try:
            while (batch := _next_batch(conn)) is not None:
                for location, filename in batch:
                    order.put(ex.submit(worker.scan, location, filename))
        finally:
            order.put(None)

    threading.Thread(target=receive, name="wheelscan-recv", daemon=True).start()
    # the engine and the judge load while the first wheels' requests are on the wire
    warm_up = getattr(worker, "warm_up", None)  # optional: a WheelWorker needs only scan()
    if warm_up is not None:
        threading.Thread(target=warm_up, name="wheelscan-warm-up", daemon=True).start()
    try:
        while (fut := order.get()) is not None:
            conn.send(fut.result())
    except OSError:  # the main process is gone
        return
    finally:
        ex.shutdown(wait=False, cancel_futures=True)


_READY = "ready"


#: socket buffers asked for each end of a worker's connection (the kernel caps them at
#: net.core.wmem_max / rmem_max). A result is several KB of facts; with the default 208 KiB
#: a worker blocked on send whenever the main process was inside a store commit: the
#: scheduler + store overhead at --jobs 1 on 5,001 small wheels was 46 %, 29-33 % with these.
PIPE_BUFFER = 4 << 20


def _roomy(conn: Connection) -> None:
    """Ask for PIPE_BUFFER bytes of send and receive buffer on ``conn`` (a socketpair end)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sock = socket.socket(fileno=conn.fileno())
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PIPE_BUFFER)
        finally:
            sock.detach()  # the connection keeps its descriptor


def _single_threaded() -> bool:
    """Whether a fork of this process now copies all of it: on Linux only (PR_SET_PDEATHSIG
    ties a worker to it), with one Python thread and one thread of the OS (a C library's own
    thread counts too: it is what Python 3.12+ counts before warning that a fork is unsafe)."""
    if sys.platform != "linux" or threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


@contextlib.contextmanager
def _main_unless_needed(make_worker: MakeWorker) -> Iterator[None]:
    """While a worker is spawned: hide the main module from multiprocessing when nothing the
    worker is sent lives in it. A spawned child runs the parent's main script again (as
    ``__mp_main__``) so that functions pickled by reference from it resolve; a worker needs
    only wheelscan's modules (and those of ``make_worker``), and running the script again cost
    each worker its imports -- the CLI's argument parsing, a benchmark's HTTP server --
    before it could take a wheel."""
    main = sys.modules.get("__main__")
    if main is None or getattr(make_worker, "__module__", "__main__") == "__main__":
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@dataclass
class _Slot:
    proc: BaseProcess
    conn: Connection
    inflight: deque[WheelRef] = field(default_factory=deque)
    batches: deque[int] = field(default_factory=deque)  # wheels per in-flight batch
    since: float = 0.0  # when the wheel at inflight[0] started (as far as we can tell)
    ready: bool = False  # the worker has imported its engine
    dead: bool = False
    alone: bool = False  # it runs one suspect and nothing else (see LocalPool.run)
    suspects: bool = False  # it died with several wheels in flight: none is blamed yet


OnResult = Callable[["WheelRef", Outcome], None]


class LocalPool:
    """``jobs`` worker processes fed in batches; survives worker deaths and hung wheels.

    Each process does a wheel's work with the :class:`WheelWorker` that ``worker`` builds
    from ``cfg`` (default :class:`Worker`: scan, judge, encode for the store)."""

    def __init__(
        self,
        cfg: ScanConfig,
        jobs: int | None = None,
        *,
        batch_bytes: int = 8 << 20,
        batch_wheels: int = 128,
        timeout: float | None = 600.0,
        lookahead: int = 4096,
        worker: MakeWorker = Worker,
        start: str = "spawn",
    ) -> None:
        if start not in ("spawn", "fork"):
            raise ValueError(f"start must be 'spawn' or 'fork', not {start!r}")
        self.cfg = cfg
        self.make_worker = worker
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.batch_bytes = batch_bytes
        self.batch_wheels = batch_wheels
        self.timeout = timeout
        self.lookahead = lookahead
        # spawn, not fork (no copy of the main process's threads, SQLite handle or memory) and
        # not forkserver (its workers are the server's children, so PR_SET_PDEATHSIG would not
        # tie them to the main process and a hung worker could outlive a kill -9 of it).
        self.ctx = mp.get_context("spawn")
        # fork (``start="fork"``): a worker that is a copy of the main process starts in a few
        # milliseconds instead of importing Python, wheelscan and its engine again (a fifth of
        # a second of CPU each, what kept ``check --jobs 2`` from its speed-up). Only for a
        # main process that holds nothing a copy must not share (``check``: no store, no
        # threads, nothing buffered), and only while it is single-threaded: a fork copies the
        # thread that forks and no other, so a lock another thread held stays held in the
        # child forever (Python 3.12+ warns of exactly that). Each worker is checked at its
        # start; with a thread about, or off Linux (no PR_SET_PDEATHSIG), it is spawned.
        self.start = start
        self._fork = mp.get_context("fork") if start == "fork" else None
        self.deaths = 0
        self.timeouts = 0
        # one epoll set for the whole run: multiprocessing.connection.wait() builds a selector
        # per call, and Connection.poll() is such a call, twice per wheel in the main process
        self._sel: selectors.BaseSelector | None = None

    def _spawn(self) -> _Slot:
        parent, child = self.ctx.Pipe(duplex=True)
        for end in (parent, child):
            _roomy(end)
        args: tuple[Any, ...] = (child, self.cfg, self.make_worker, os.getpid())
        if self._fork is not None and _single_threaded():
            inherited = [parent.fileno()]
            if self._sel is not None:
                with contextlib.suppress(AttributeError):  # epoll's, on Linux
                    inherited.append(self._sel.fileno())  # type: ignore[attr-defined]
                inherited.extend(key.fd for key in self._sel.get_map().values())
            proc: BaseProcess = self._fork.Process(
                target=_worker_main, args=(*args, tuple(inherited)), daemon=True
            )
            proc.start()
        else:
            proc = self.ctx.Process(target=_worker_main, args=args, daemon=True)
            with _main_unless_needed(self.make_worker):
                proc.start()
        child.close()
        s = _Slot(proc, parent)
        if self._sel is not None:
            self._sel.register(parent, selectors.EVENT_READ, (s, False))
            self._sel.register(proc.sentinel, selectors.EVENT_READ, (s, True))
        return s

    def _unwatch(self, s: _Slot) -> None:
        if self._sel is not None:
            for obj in (s.conn, s.proc.sentinel):
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(obj)

    def run(self, refs: Iterable[WheelRef], on_result: OnResult) -> None:
        """Scan every ref, calling ``on_result`` in the main process as each wheel finishes."""
        source: Iterator[WheelRef] | None = iter(refs)
        pending: deque[WheelRef] = deque()
        pending_bytes = 0
        # wheels that were in flight in a worker that died running several at once (threads):
        # any of them may be the cause, so each runs again alone in a worker, where a death
        # names it
        suspects: deque[WheelRef] = deque()
        slots: list[_Slot] = []  # spawned on first need: a re-run with nothing to do is instant
        self._sel = selectors.DefaultSelector()
        if self.cfg.threads > 1:
            # a remote source: listing it takes round trips anyway, so the workers start
            # (and import their engine) meanwhile rather than after the first wheel is listed
            slots.extend(self._spawn() for _ in range(self.jobs))
        low = max(0, self.lookahead - self.batch_wheels)
        try:
            while True:
                # list a little, dispatch, collect, repeat: results flow while listing goes on
                # refill only once a whole batch has room: topping up one wheel at a time
                # cost a zero-timeout wait() (a selector set-up) per wheel in the main process
                refill = source is not None and len(pending) <= low
                pulled = 0
                while refill and source is not None and len(pending) < self.lookahead:
                    ref = next(source, None)
                    if ref is None:
                        source = None
                        break
                    pending.append(ref)
                    pending_bytes += ref.size or 0
                    pulled += 1
                    if pulled >= self.batch_wheels:
                        break
                while pending and len(slots) < self.jobs:
                    slots.append(self._spawn())
                while suspects and len(slots) < self.jobs:
                    slots.append(self._spawn())
                for s in slots:
                    if suspects and not s.inflight and not s.dead:
                        s.alone = True
                        self._dispatch(s, deque([suspects.popleft()]), 0, True)
                # every worker gets a first batch before any gets its second: a handful of
                # wheels would otherwise all go to the first worker while the others idle
                for depth in (1, 2):
                    for s in slots:
                        while (
                            (len(s.batches) < depth or len(s.inflight) < depth * self.cfg.threads)
                            and pending
                            and not s.dead
                            and not s.alone
                        ):
                            last = source is None
                            # threads: a batch fills this worker's free threads at most, so
                            # no wheel waits in one worker while another has a thread idle
                            room = depth * self.cfg.threads - len(s.inflight)
                            most = room if self.cfg.threads > 1 and room > 0 else None
                            pending_bytes -= self._dispatch(s, pending, pending_bytes, last, most)
                busy = [s for s in slots if s.inflight]
                if not busy:
                    if source is None and not pending and not suspects:
                        return
                    continue
                listing = source is not None and len(pending) <= low
                self._wait(busy, on_result, 0.0 if listing else None)
                for i, s in enumerate(slots):
                    if s.dead:
                        if s.suspects:
                            suspects.extend(s.inflight)
                        else:
                            pending_bytes += sum(r.size or 0 for r in s.inflight)
                            pending.extendleft(reversed(s.inflight))
                        slots[i] = self._spawn()
        finally:
            self._shutdown(slots)

    def _dispatch(
        self,
        s: _Slot,
        pending: deque[WheelRef],
        pending_bytes: int,
        last: bool,
        most: int | None = None,
    ) -> int:
        target = self.batch_bytes
        if last:  # guided self-scheduling: share what is left so all workers finish together
            target = max(1, min(target, pending_bytes // (2 * self.jobs)))
        wheels = self.batch_wheels if most is None else max(1, min(most, self.batch_wheels))
        batch, nbytes, _ = take_batch(
            lambda: pending.popleft() if pending else None, wheels, target
        )
        if not s.inflight and s.ready:
            s.since = time.monotonic()
        s.inflight.extend(batch)
        s.batches.append(len(batch))
        try:
            s.conn.send([(r.location, r.filename) for r in batch])
        except OSError:  # it died idle: no wheel to blame, everything it holds is re-queued
            self._kill(s)
            self.deaths += 1
        return nbytes

    def _wait(self, busy: list[_Slot], on_result: OnResult, timeout: float | None) -> None:
        assert self._sel is not None
        if self.timeout is not None:
            now = time.monotonic()
            started = [s.since for s in busy if s.ready]
            if started:
                due = max(0.0, min(started) + self.timeout - now)
                timeout = due if timeout is None else min(timeout, due)
        for key, _ in self._sel.select(timeout):
            s, is_sentinel = key.data
            if s.dead:
                continue
            if is_sentinel:
                self._reap(s, on_result)
            else:
                self._recv_one(s, on_result)
        if self.timeout is not None:
            now = time.monotonic()
            for s in busy:
                if not s.dead and s.ready and s.inflight and now - s.since > self.timeout:
                    self._kill(s)
                    self.timeouts += 1
                    ref = s.inflight.popleft()
                    on_result(ref, _failed(ref, f"timed out after {self.timeout:g} s"))

    def _recv_one(self, s: _Slot, on_result: OnResult) -> None:
        """One message (the selector is level-triggered: more waiting means another event)."""
        try:
            out = s.conn.recv()
        except (EOFError, OSError):
            self._reap(s, on_result)
            return
        self._handle(s, out, on_result)

    def _handle(self, s: _Slot, out: Any, on_result: OnResult) -> None:
        if out == _READY:
            s.ready = True
            s.since = time.monotonic()
            return
        ref = s.inflight.popleft()
        s.batches[0] -= 1
        if s.batches[0] == 0:
            s.batches.popleft()
        s.since = time.monotonic()
        s.alone = s.alone and bool(s.inflight)
        on_result(ref, out)

    def _reap(self, s: _Slot, on_result: OnResult) -> None:
        """The worker exited: keep what it finished, blame the wheel it was on (or, if it ran
        several at once, none yet: they become suspects, run again one at a time)."""
        try:
            while s.conn.poll():
                self._handle(s, s.conn.recv(), on_result)
        except (EOFError, OSError):
            pass
        s.proc.join(timeout=5)
        if s.proc.is_alive():  # its pipe broke but it lives on: it is of no use any more
            with contextlib.suppress(ProcessLookupError):
                s.proc.kill()
            s.proc.join()
        self._unwatch(s)
        s.dead = True
        self.deaths += 1
        if len(s.inflight) > 1 and self.cfg.threads > 1:
            s.suspects = True
        elif s.inflight:
            ref = s.inflight.popleft()
            on_result(ref, _failed(ref, _death_reason(s.proc.exitcode)))

    def _kill(self, s: _Slot) -> None:
        with contextlib.suppress(ProcessLookupError):
            s.proc.kill()
        s.proc.join()
        self._unwatch(s)
        s.dead = True

    def _shutdown(self, slots: list[_Slot]) -> None:
        for s in slots:
            if s.dead:
                continue
            if s.inflight:  # interrupted mid-batch: nothing it does now will be recorded
                with contextlib.suppress(ProcessLookupError):
                    s.proc.kill()
            else:
                with contextlib.suppress(OSError):
                    s.conn.send(None)
        for s in slots:
            s.proc.join(timeout=5)
            if s.proc.is_alive():
                s.proc.kill()
                s.proc.join()
            s.conn.close()
        if self._sel is not None:
            self._sel.close()
            self._sel = None


def take_batch(
    next_ref: Callable[[], WheelRef | None], max_wheels: int, max_bytes: int
) -> tuple[list[WheelRef], int, bool]:
    """Refs from ``next_ref`` (None: no more) until ``max_wheels`` or ``max_bytes`` is reached;
    a wheel bigger than ``max_bytes`` goes alone. Returns (batch, its bytes, source ended)."""
    batch: list[WheelRef] = []
    nbytes = 0
    while len(batch) < max_wheels and (not batch or nbytes < max_bytes):
        ref = next_ref()
        if ref is None:
            return batch, nbytes, True
        batch.append(ref)
        nbytes += ref.size or 0
    return batch, nbytes, False


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (killed: out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"worker process died with {name}{hint} while scanning this wheel"
    return f"worker process exited with status {exitcode} while scanning this wheel"


def _failed(ref: WheelRef, reason: str) -> Outcome:
    return Outcome(ref.location, ref.filename, "error", error=f"{ref.filename}: {reason}")


# -- Dask -----------------------------------------------------------------------------------


class DaskPool:
    """The same batches, sent to a dask.distributed cluster; results stream into the store.

    A batch whose worker dies is retried by Dask; if Dask gives up on it (``KilledWorker``)
    the batch is split and its wheels retried one by one, so again only the culprit is lost.
    The per-wheel time cap is not enforced here (a Dask task cannot be killed).
    """

    def __init__(
        self,
        cfg: ScanConfig,
        address: str | Any,
        *,
        batch_bytes: int = 8 << 20,
        batch_wheels: int = 128,
    ) -> None:
        self.cfg = cfg
        self.address = address
        self.batch_bytes = batch_bytes
        self.batch_wheels = batch_wheels
        self.deaths = 0
        self.timeouts = 0

    def run(self, refs: Iterable[WheelRef], on_result: OnResult) -> None:
        distributed: Any = importlib.import_module("distributed")
        as_completed = distributed.as_completed
        client = self.address
        if not isinstance(client, distributed.Client):
            client = distributed.Client(self.address)
        own = client is not self.address
        try:
            nthreads = max(1, sum(client.nthreads().values()))
            inflight_max = 2 * nthreads
            futures: dict[Any, list[WheelRef]] = {}
            ac = as_completed()
            source = iter(refs)
            exhausted = False

            def submit(batch: list[WheelRef]) -> None:
                tasks = [(r.location, r.filename) for r in batch]
                fut = client.submit(scan_batch, tasks, self.cfg, pure=False)
                futures[fut] = batch
                ac.add(fut)

            def top_up() -> None:
                nonlocal exhausted
                while not exhausted and len(futures) < inflight_max:
                    batch, _, exhausted = take_batch(
                        lambda: next(source, None), self.batch_wheels, self.batch_bytes
                    )
                    if batch:
                        submit(batch)

            top_up()
            while futures:
                fut = next(ac)
                batch = futures.pop(fut)
                try:
                    outs = fut.result()
                except Exception as e:  # KilledWorker and friends: split, retry one by one
                    self.deaths += 1
                    if len(batch) == 1:
                        on_result(batch[0], _failed(batch[0], f"Dask task failed: {e}"))
                    else:
                        for r in batch:
                            submit([r])
                else:
                    for r, out in zip(batch, outs, strict=True):
                        on_result(r, out)
                fut.release()
                top_up()
        finally:
            if own:
                client.close()
