"""A seekable, read-only file object over HTTP range requests (urllib3, pooled connections).

:class:`HTTPFile` fetches the tail of a wheel (EOCD + central directory) with one suffix range
request, then serves reads from a cache of fetched ranges and from one open *stream*. Once the
central directory is known (parsed from the cached bytes with stdlib :mod:`zipfile`, for hints
only), a miss in a member the scan will read opens a planned window over it, and over the
members read after it (see :meth:`HTTPFile._window` and docs/scanning.md, "Round trips"); a
long window is read as its body arrives. Any other miss fetches a small range that grows with
the run of bytes already consumed sequentially (never more than ``growth`` of it beyond what
was asked) and never crosses into the next ZIP member. So a scan downloads the central
directory, the local headers and about the prefixes the inflater asks for, in a few requests,
not the members it skips.

A server that ignores ``Range`` (200 instead of 206) gets the whole file streamed once, into a
spooled temporary file; whenever the whole file went through us, the index's hash is verified.
Retries with exponential backoff cover 5xx answers, resets, dropped connections and timeouts;
a server that keeps failing raises :class:`RemoteError` naming the URL and what went wrong.

What a hostile server cannot do (each refusal is a :class:`RemoteError` naming the URL and the
rule): send us to anything but an ``http(s)`` URL on an origin the :class:`URLPolicy` allows
(redirects are followed here, not by urllib3, at most ``MAX_REDIRECTS`` per file, each target
checked); hold a file past its :class:`Deadline` (every request and every body read of the file
shares it, and the socket timeout shrinks to what is left, so a byte-a-second trickle cannot
restart it, and a watchdog thread ends a response whose header lines trickle in); or make us inflate
a content-coded body (wheel bytes are asked for and accepted as ``identity`` only; index
pages may come gzip/deflate-coded, decoded up to the page cap). A URL whose host urllib3
and :func:`urllib.parse.urlsplit` would read differently has no origin and is refused.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import heapq
import http.client
import io
import itertools
import os
import random
import re
import tempfile
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
import urllib3.connection
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import (
    IncompleteRead,
    LocationParseError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import parse_url

from ..errors import RemoteError
from ..read.members import may_be_binary

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Mapping

    #: a range answer: status, headers, body (a bytearray the range cache may keep as is)
    _Answer = tuple[int, Mapping[str, str], bytes | bytearray]

__all__ = [
    "MAX_REDIRECTS",
    "Deadline",
    "HTTPFile",
    "RemoteError",
    "TransferStats",
    "URLPolicy",
    "hash_from_url",
    "pool_manager",
]

#: The first request asks for this many bytes at the end of the file. The native reader reads
#: the last 42 bytes (end record and ZIP64 locator) and then the central directory, which for
#: most wheels fits here: one request, and at most this much of the last member's data beyond
#: need (usually RECORD, which the scan reads anyway). A bigger directory costs one more
#: request for exactly the missing part; an archive comment makes the reader widen its
#: search to the 64 KiB + 42 bytes the format allows. (64 KiB would spare that request for 13
#: of the 33 benchmark wheels, for 0.6 % more bytes there, but a wheel whose verdict needs a
#: few KiB would fetch ten times its minimum.)
TAIL = 8192
#: Planned windows (see :meth:`HTTPFile._window`). Once the central directory is known, the
#: first read of a member the scan will read opens one window for it: a deflated member whose
#: name says shared object or executable is fetched whole (on the benchmark corpus the dynamic
#: tables need 88 % of such a member's compressed bytes, 40 % of members need all of it, so a
#: guess short of the whole costs a second round trip for most), and so is a small candidate;
#: a bigger one of any other name gets its local header and first input step. The members
#: after it that are read whole join the same window (a wheel's libraries usually lie side by
#: side), with small members between that the scan does not read, up to ``RUN_MAX`` bytes.
PEEK_WINDOW = 8192
SMALL_MEMBER = 64 << 10
#: A member bigger than this (about a bandwidth-delay product: 100 MB/s x 20 ms) is not
#: fetched whole at once: its first window is its head (``HEAD_WINDOW``: the ELF and program
#: headers), after which the reader says how far its tables likely reach (:meth:`planning_hint`)
#: and the second window ends there; one that falls short grows by half of what was read.
BIG_MEMBER = 256 << 10
HEAD_WINDOW = 64 << 10
RUN_MAX = 16 << 20
GAP_MAX = 64 << 10
#: a window longer than this is streamed: reads are served as its body arrives, and the
#: window ends early (the rest drained if at most ``DRAIN_MAX`` bytes, else the connection
#: closed) when the scan reads elsewhere
STREAM_MIN = 128 << 10
DRAIN_MAX = 256 << 10
#: bytes of a stream kept behind the read position (a reader that steps back that far is
#: served again; memory per file stays bounded however long the window)
STREAM_KEEP = 1 << 20
#: Read-ahead: while the reader works on one member, the first windows of the next members
#: it will read (directory order) that are at most ``AHEAD_MAX`` bytes (a big library's head,
#: a small candidate, a run of small libraries) are fetched at once on connections of their
#: own, ``AHEAD`` at a time per file. A wheel of many small candidates and libraries (numpy:
#: two dozen) otherwise pays a round trip for each, one after another. What a read-ahead
#: brings is used only for a read that falls in its range and only where nothing is cached;
#: any answer that is not exactly the range asked for is dropped and the read asks again.
AHEAD = 2
AHEAD_MAX = 128 << 10
#: members after the reader's a read-ahead looks at (a bound on the planning per miss)
AHEAD_SCAN = 64
#: a forward jump inside a stream past what arrived by more than this ends the stream (a
#: stored member's sparse reads): pulling everything between would cost more than a request
STREAM_JUMP = 1 << 20
#: slack over ``max_fetch`` before a range answer counts as too long
_ANSWER_SLACK = 22 + 0xFFFF + 20
#: hashes we can verify (hashlib names as they appear in PEP 503 fragments / PEP 691 'hashes')
_HASHES = ("sha256", "sha384", "sha512", "blake2b_256", "md5", "sha1")
_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_T = TypeVar("_T")
#: transport failures worth another attempt: resets, dropped bodies, timeouts, refused connects
_RETRY_ERRORS = (ProtocolError, IncompleteRead, Urllib3Timeout, NewConnectionError, MaxRetryError)


_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
#: redirects followed per file (or index page), over all its requests
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an http(s) URL, None for anything else.

    The policy is only as good as its agreement with the code that connects: urllib3 parses
    the URL again (it ends the authority at a backslash, where :func:`urlsplit` does not), so
    a URL whose authority holds a backslash, whitespace or a control character, or on whose
    origin the two parsers disagree, has no origin and is refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
        theirs = parse_url(url)
    except (ValueError, LocationParseError):
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if any(c == "\\" or c <= " " or c == "\x7f" for c in parts.netloc):
        return None
    ours = (scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme])
    if (
        (theirs.scheme or "").lower() != scheme
        or (theirs.host or "").lower().strip("[]") != ours[1]
        or (theirs.port or _DEFAULT_PORTS[scheme]) != ours[2]
    ):
        return None
    return ours


def _show_origin(o: tuple[str, str, int]) -> str:
    return f"{o[0]}://{o[1]}:{o[2]}"


@dataclass(frozen=True)
class URLPolicy:
    """Where requests may go: ``http(s)`` URLs on one of ``origins`` (scheme, host, port) or on
    any port of one of ``hosts`` (the ``--allow-host`` names)."""

    origins: frozenset[tuple[str, str, int]] = frozenset()
    hosts: frozenset[str] = frozenset()
    max_redirects: int = MAX_REDIRECTS

    @classmethod
    def for_url(cls, url: str, allow_hosts: tuple[str, ...] | frozenset[str] = ()) -> URLPolicy:
        """The origin of ``url`` (an index, a wheel) plus the hosts the user allows."""
        o = _origin(url)
        return cls(
            origins=frozenset({o}) if o else frozenset(),
            hosts=frozenset(h.strip().lower().rstrip(".") for h in allow_hosts if h.strip()),
        )

    def violation(self, url: str) -> str | None:
        """Why ``url`` may not be fetched (the rule it breaks), or None when it may."""
        o = _origin(url)
        if o is None:
            scheme = url.split(":", 1)[0] if ":" in url else ""
            if scheme.lower() in _DEFAULT_PORTS:
                return ("an http(s) URL whose host cannot be read one way only (a backslash, "
                        "space or control character in it, or parsers that disagree)")
            return f"not an http(s) URL (scheme {scheme!r}); only http and https are fetched"
        if o in self.origins or o[1] in self.hosts:
            return None
        where = ", ".join(sorted(_show_origin(x) for x in self.origins)) or "none"
        return (
            f"origin {_show_origin(o)} is neither the index's ({where}) nor an allowed host "
            "(--allow-host)"
        )

    def check(self, url: str, *, via: str | None = None) -> None:
        rule = self.violation(url)
        if rule is not None:
            came = f" (redirected from {via})" if via else ""
            raise RemoteError(f"{url}{came}: refused: {rule}")


@dataclass(frozen=True)
class Deadline:
    """A monotonic-clock end time shared by every request of one wheel (or page)."""

    seconds: float
    end: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self, url: str) -> None:
        if self.remaining() <= 0:
            raise RemoteError(
                f"{url}: refused: took longer than the per-wheel deadline of {self.seconds:g} s "
                "(--wheel-timeout)"
            )

    def timeout(self, base: urllib3.Timeout) -> urllib3.Timeout:
        """``base`` with both parts cut to the time left."""
        left = max(0.001, self.remaining())
        connect = base.connect_timeout
        read = base.read_timeout
        return urllib3.Timeout(
            connect=min(connect, left) if isinstance(connect, (int, float)) else left,
            read=min(read, left) if isinstance(read, (int, float)) else left,
        )


#: the deadline of the request this thread is making (read by the connections' watchdog)
_ACTIVE_DEADLINE = threading.local()


def _cut(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(2)  # SHUT_RDWR: the blocked read returns at once


class Watchdog:
    """One thread that shuts sockets down when their deadlines pass.

    Every request and every body read is watched (see :func:`_watchdog`): a thread of its
    own for each (``threading.Timer``) cost two thread starts per request, and under a busy
    GIL each start waits for the new thread to be scheduled. Here a request adds an entry to
    a heap and the one thread sleeps until the earliest deadline; cancelled entries are
    dropped when they come up, or all at once when they outnumber the live ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []  # (monotonic end, token)
        self._live: dict[int, Any] = {}  # token -> socket, while watched
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self.cuts = 0  # sockets shut down (for tests and accounting)

    def watch(self, sock: Any, end: float) -> int:
        """Shut ``sock`` down at monotonic time ``end`` unless :meth:`cancel` comes first."""
        with self._cond:
            token = next(self._tokens)
            self._live[token] = sock
            heapq.heappush(self._heap, (end, token))
            if len(self._heap) > 2 * len(self._live) + 64:
                self._heap = [e for e in self._heap if e[1] in self._live]
                heapq.heapify(self._heap)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="wheelscan-watchdog",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            elif self._heap[0][1] == token:
                self._cond.notify()  # the new deadline is the earliest: wake up sooner
        return token

    def cancel(self, token: int) -> None:
        with self._cond:
            self._live.pop(token, None)

    def watching(self) -> int:
        with self._cond:
            return len(self._live)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][1] not in self._live:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    end, token = self._heap[0]
                    wait = end - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._heap)
                        sock = self._live.pop(token)
                        self.cuts += 1
                        break
                    self._cond.wait(wait)
            _cut(sock)

    def _after_fork(self) -> None:
        # a forked child has no watchdog thread, and none of the parent's requests
        self._cond = threading.Condition(threading.Lock())
        self._heap, self._live, self._thread = [], {}, None


_WATCHDOG = Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG._after_fork)


@contextlib.contextmanager
def _watchdog(sock: Any, deadline: Deadline | None) -> Iterator[None]:
    """While inside: the socket is shut down when ``deadline`` passes (no-op without one)."""
    if deadline is None or sock is None:
        yield
        return
    token = _WATCHDOG.watch(sock, deadline.end)
    try:
        yield
    finally:
        _WATCHDOG.cancel(token)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    """Reading a response's status line and headers is bounded by the request's deadline as a
    whole: the socket timeout restarts with every byte, so a server trickling header lines
    would otherwise hold the request for as long as it likes. The watchdog shuts the socket down
    when the deadline passes; the read fails and the caller reports the deadline."""

    def getresponse(self) -> Any:
        with _watchdog(self.sock, getattr(_ACTIVE_DEADLINE, "value", None)):
            return super().getresponse()


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    getresponse = _WatchedHTTPConnection.getresponse


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _open(
    pool: urllib3.PoolManager,
    url: str,
    headers: Mapping[str, str],
    timeout: urllib3.Timeout,
    policy: URLPolicy,
    deadline: Deadline | None,
    redirects_left: int,
) -> tuple[urllib3.BaseHTTPResponse, str, int]:
    """GET ``url`` (body not read, not decoded), following redirects inside ``policy``:
    ``(response, final URL, redirects followed)``."""
    used = 0
    via: str | None = None
    while True:
        policy.check(url, via=via)
        if deadline is not None:
            deadline.check(url)
        _ACTIVE_DEADLINE.value = deadline
        try:
            r = pool.request(
                "GET", url, headers=dict(headers), preload_content=False, decode_content=False,
                timeout=deadline.timeout(timeout) if deadline is not None else timeout,
                redirect=False, retries=urllib3.Retry(
                    total=None, connect=0, read=0, status=0, redirect=0, other=0),
            )  # fmt: skip
        finally:
            _ACTIVE_DEADLINE.value = None
        if r.status not in _REDIRECT_STATUS:
            return r, url, used
        location = r.headers.get("Location")
        r.close()  # a redirect's body is not read: close rather than drain what a server sends
        r.release_conn()
        if not location:
            raise RemoteError(f"{url}: HTTP {r.status} without a Location header")
        try:
            target = urljoin(url, location).split("#", 1)[0]
            urlsplit(target)
        except ValueError:
            raise RemoteError(f"{url}: HTTP {r.status} to {location!r}, not a URL") from None
        if used >= redirects_left:
            raise RemoteError(
                f"{url}: refused: more than {policy.max_redirects} redirects (next: {target})"
            )
        used += 1
        via, url = url, target


def _body(
    r: urllib3.BaseHTTPResponse, url: str, deadline: Deadline | None, amt: int
) -> Generator[bytes, None, None]:
    """The raw body in pieces of at most ``amt``, one socket read each, with the deadline
    checked between reads and the socket timeout cut to what is left of it.

    A read can also take longer than the socket timeout: the chunk-size lines of a chunked
    body are read a line at a time and the timeout restarts with every byte. The watchdog shuts the
    socket down when the deadline passes, so no read outlives it."""
    sock = getattr(getattr(r, "connection", None), "sock", None)
    with _watchdog(sock, deadline):
        while True:
            if deadline is not None:
                deadline.check(url)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        cur = sock.gettimeout()
                        left = max(0.001, deadline.remaining())
                        sock.settimeout(min(cur, left) if cur is not None else left)
            try:
                chunk = r.read1(amt, decode_content=False)
            except (Urllib3Error, OSError, http.client.HTTPException):
                if deadline is not None:
                    deadline.check(url)  # the watchdog cut the socket: say so
                raise
            if not chunk:
                if deadline is not None:
                    deadline.check(url)  # a cut socket also reads as a short body
                return
            yield chunk


def _content_coding(r: urllib3.BaseHTTPResponse) -> str:
    return ",".join(
        c.strip().lower() for c in r.headers.get("Content-Encoding", "").split(",")
        if c.strip() and c.strip().lower() != "identity"
    )  # fmt: skip


def _retryable(e: Urllib3Error) -> bool:
    return isinstance(e, _RETRY_ERRORS) and not isinstance(e, SSLError)


_POOL: urllib3.PoolManager | None = None
_POOL_LOCK = threading.Lock()


def pool_manager(maxsize: int = 8) -> urllib3.PoolManager:
    """The process-wide connection pool (keep-alive connections reused across wheels)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = urllib3.PoolManager(
                num_pools=16,
                maxsize=maxsize,
                block=False,
                retries=False,  # our own loop: it also covers errors while reading a body
                headers={"User-Agent": "wheelscan (range reader)"},
            )
            _POOL.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
        return _POOL


def hash_from_url(url: str) -> tuple[str, str] | None:
    """``(algo, hex)`` from a PEP 503 ``#sha256=<hex>`` fragment, if it names one we know."""
    frag = urlsplit(url).fragment
    if "=" not in frag:
        return None
    algo, _, value = frag.partition("=")
    algo = algo.strip().lower()
    value = value.strip().lower()
    if algo in _HASHES and value and all(c in "0123456789abcdef" for c in value):
        return algo, value
    return None


def _hasher(algo: str) -> Any:
    if algo == "blake2b_256":
        return hashlib.blake2b(digest_size=32)
    return hashlib.new(algo)


@dataclass
class TransferStats:
    """What crossed the network for one file."""

    requests: int = 0
    body_bytes: int = 0  # response-body bytes received (incl. bodies of retried responses)
    retries: int = 0
    whole_file: bool = False  # the server ignored Range: the whole file was streamed
    redirects: int = 0  # redirects followed (at most the policy's max_redirects per file)
    verified: str | None = None  # "<algo>:<hex>" checked against the index, if it was
    windows: int = 0  # streamed windows opened
    abandoned: int = 0  # of them, ended early by closing the connection
    windows_broken: int = 0  # of them, cut by the server (finished with plain ranges)
    read_aheads: int = 0  # read-aheads made (see AHEAD), counted once waited for or closed
    read_aheads_used: int = 0  # of them, answered exactly and cached


class _Retryable(Exception):
    pass


class HTTPFile(io.RawIOBase):
    """Read-only, seekable view of the file at ``url`` (``seek``/``tell``/``read``).

    ``expected_hash`` (``(algo, hex)``; default: from the URL fragment) is verified whenever
    the whole file was received. ``policy`` (default: ``url``'s own origin) bounds where it and
    its redirects may lead; ``deadline`` bounds the time of all its requests together.
    Thread-compatible, not thread-safe: one reader per object.
    """

    def __init__(
        self,
        url: str,
        *,
        expected_hash: tuple[str, str] | None = None,
        pool: urllib3.PoolManager | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.25,
        min_fetch: int = 4096,
        run_fetch: int = 16384,
        growth: float = 0.08,
        max_fetch: int = 8 << 20,
        tail: int = TAIL,
        max_size: int = 16 << 30,
        spool_memory: int = 64 << 20,
        headers: Mapping[str, str] | None = None,
        policy: URLPolicy | None = None,
        deadline: Deadline | None = None,
        plan: bool = True,
    ) -> None:
        super().__init__()
        self.url = url.split("#", 1)[0]
        self.policy = policy or URLPolicy.for_url(self.url)
        self.deadline = deadline
        self.name = unquote(urlsplit(self.url).path.rsplit("/", 1)[-1]) or "<remote>.whl"
        self.expected_hash = expected_hash or hash_from_url(url)
        self.pool = pool or pool_manager()
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=timeout)
        self.retries = max(0, retries)
        self.backoff = backoff
        self.min_fetch = max(1, min_fetch)
        self.run_fetch = max(0, run_fetch)
        self.growth = growth
        self.max_fetch = max(self.min_fetch, max_fetch)
        self.max_size = max_size
        self.spool_memory = spool_memory
        self.headers = dict(headers or {})
        self.stats = TransferStats()
        self.size = 0
        self._pos = 0
        self._starts: list[int] = []  # sorted starts of cached, non-adjacent segments
        self._segs: list[bytearray] = []
        self._whole: IO[bytes] | None = None
        self._bounds: list[int] | None = None  # sorted member starts + CD start (hints)
        self._bounds_final = False
        self._heads: dict[int, int] = {}  # local header offset -> predicted header length
        self.plan = plan
        self._kinds: dict[int, str] = {}  # local header offset -> window kind (_KINDS)
        self._windowed: set[int] = set()  # members a window was opened for
        self._after: dict[int, int] = {}  # a read member -> the next one (directory order)
        self._order: list[int] = []  # members the scan will read, directory order
        self._cursor = 0  # in _order: members before it have had their first window
        self._ahead: list[_Ahead] = []  # read-aheads in flight or not yet used
        self._expected: dict[int, int] = {}  # member start -> where its input likely ends
        self._stream: _Stream | None = None
        self._offline = False
        self.policy.check(self.url)
        self._open_tail(tail)

    # -- io.RawIOBase -------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self.size + offset
        else:
            msg = f"invalid whence {whence}"
            raise ValueError(msg)
        if pos < 0:
            msg = f"negative seek position {pos}"
            raise ValueError(msg)
        self._pos = pos
        return pos

    def read(self, n: int | None = -1) -> bytes:
        if self.closed:
            msg = "I/O operation on closed file"
            raise ValueError(msg)
        start = self._pos
        if n is None or n < 0:
            n = self.size - start
        end = min(start + n, self.size)
        if end <= start:
            return b""
        if self._ahead:
            self._settle()
        if self._whole is None:
            data = self._from_stream(start, end)
            if data is not None:
                self._pos = end
                return data
            opened = self._ensure(start, end)
            if opened is not None and self._whole is None:
                # a window opened there: what comes before it is cached
                data = self._from_stream(opened, end)
                if data is not None:
                    self._pos = end
                    return self._copy(start, opened) + data if opened > start else data
                # the window broke: what came is cached, the rest is read as plain ranges
                # (with their own retries); after as many broken windows as retries, the
                # file is read without windows
                if self.stats.windows_broken > self.retries:
                    self.plan = False
                self._ensure(start, end, plan=False)
        if self._whole is not None:  # the server ignored Range at some point
            self._whole.seek(start)
            data = self._whole.read(end - start)
        else:
            data = self._copy(start, end)
        self._pos = start + len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._end_stream(drain=False)
        for a in self._ahead:  # unused: what came still crossed the network (counted, not
            if a.done.is_set():  # cached: a hash check has no place in close)
                self._count_ahead(a)
        self._ahead.clear()
        if self._whole is not None:
            self._whole.close()
            self._whole = None
        self._segs.clear()
        self._starts.clear()
        super().close()

    # -- what was fetched -----------------------------------------------------------------------

    @property
    def cached_bytes(self) -> int:
        """Bytes in the range cache (read-aheads in flight are waited for)."""
        self._settle(wait=True)
        return self.size if self._whole is not None else sum(len(s) for s in self._segs)

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in memory: the range cache and an open stream's buffer."""
        held = len(self._stream.buf) if self._stream is not None else 0
        return held + (0 if self._whole is not None else sum(len(s) for s in self._segs))

    def ranges(self) -> list[tuple[int, int]]:
        """The cached ``[start, end)`` ranges (coalesced), for tests and accounting
        (read-aheads in flight are waited for: they count as fetched)."""
        self._settle(wait=True)
        if self._whole is not None:
            return [(0, self.size)]
        return [(s, s + len(b)) for s, b in zip(self._starts, self._segs, strict=False)]

    def planning_hint(self, data_start: int, data_stop: int) -> None:
        """A hint from the reader: the compressed bytes of the member whose data begins at
        ``data_start`` will likely be read up to ``data_stop`` (see BIG_MEMBER). Hints only
        size windows; what is read is always what the reader asks for."""
        member_start, bound = self._member_span(data_start)
        if bound is not None and member_start < data_stop <= bound:
            self._expected[member_start] = data_stop

    # -- fetching -------------------------------------------------------------------------------

    def _open_tail(self, tail: int) -> None:
        status, headers, body = self._request(f"bytes=-{max(1, tail)}", allow_whole=True)
        if status == 416:
            self.size = _total_from(headers.get("Content-Range", "")) or 0
            if not self.size:
                return  # an empty file
            # a server that knows ranges but not suffix ranges: ask for the same bytes by offset
            first = max(0, self.size - max(1, tail))
            status, headers, body = self._request(f"bytes={first}-{self.size - 1}",
                                                  allow_whole=True)  # fmt: skip
            if status == 416:
                raise RemoteError(f"{self.url}: 416 for bytes {first}-{self.size - 1} of a "
                                  f"{self.size}-byte file")  # fmt: skip
        if status == 200:
            return  # _request streamed the whole file into self._whole
        start, end, total = _parse_content_range(self.url, headers, len(body))
        if end != total:
            raise RemoteError(
                f"{self.url}: suffix range answered with bytes {start}-{end - 1}"
                f" of {total}, not the end of the file"
            )
        self.size = total
        self._insert(start, body, own=True)
        self._verify_if_complete()

    def _ensure(self, start: int, end: int, *, plan: bool = True) -> int | None:
        """Fetch the gaps of ``[start, end)``, each extended by the read-ahead policy. When
        instead a streamed window was opened for the last gap (see :meth:`_window`), the
        position it starts at: the bytes before it are cached, the rest come from it."""
        pos = start
        while pos < end:
            i, cached, nxt = self._cached_to(pos)
            if cached > pos:
                pos = cached
                continue
            if self._ahead and not self._offline and self._use_ahead(pos):
                continue
            for a in self._ahead:  # a window stops where a read-ahead's bytes begin
                if pos < a.start < nxt:
                    nxt = a.start
            planned = self._window(pos, end, nxt) if plan and self.plan else None
            if planned is not None:
                stop, stream, taken = planned
                self._look_ahead(pos, stop)  # before this window's own round trip
                if stream and stop >= end:
                    opened = self._open_stream(pos, stop, taken)
                    return pos if opened else None  # else the whole file came instead
                stop = min(stop, pos + self.max_fetch)
                self._fetch(pos, stop)
                if self._whole is not None:
                    return None
                pos = stop
                continue
            seg_start = self._starts[i] if i >= 0 else pos
            touching = i >= 0 and seg_start + len(self._segs[i]) == pos
            member_start, bound = self._member_span(pos)
            # the sequential run that justifies read-ahead: cached bytes just before pos,
            # within this member (a big neighbour must not make us read ahead in a small one)
            run = pos - max(seg_start, member_start) if touching else 0
            want = max(end - pos, self.min_fetch, int(run * self.growth))
            if (
                run > 0
                and self.run_fetch
                and bound is not None
                and (bound - member_start >= 8 * self.run_fetch)
            ):
                # the reader came back for more of a big member (an ELF being parsed, most
                # likely): a bigger first step saves round trips for a bounded cost; small
                # members keep to the reader's own steps
                want = max(want, self.run_fetch)
            if pos == member_start and pos in self._heads:
                # a member's local header: take its name, extra and first input step at once
                want = max(want, self._heads[pos] + self.min_fetch)
            want = min(want, self.max_fetch)  # a bigger read takes several requests
            stop = min(pos + want, nxt, self.size)
            if bound is not None and bound >= end:
                stop = min(stop, bound)
            self._fetch(pos, stop)
            if self._whole is not None:
                return None
            pos = stop
        return None

    def _member_span(self, pos: int) -> tuple[int, int | None]:
        """(start of the member holding ``pos`` or 0, start of the next one or None)."""
        if self._offline:
            return 0, None
        if self._bounds is None and not self._bounds_final:
            self._load_bounds()
        if not self._bounds:
            return 0, None
        j = bisect.bisect_right(self._bounds, pos)
        return (self._bounds[j - 1] if j else 0), (
            self._bounds[j] if j < len(self._bounds) else None
        )

    def _load_bounds(self) -> None:
        """Member boundaries from the central directory, using only bytes already cached."""
        saved = self._pos
        self._offline = True
        try:
            with zipfile.ZipFile(self) as zf:
                infos = zf.infolist()
                cd_start = zf.start_dir
            bounds = {i.header_offset for i in infos if 0 <= i.header_offset < self.size}
            # local header length as the central directory predicts it, plus slack for a
            # local extra field that differs (zip64, alignment padding)
            self._heads = {
                i.header_offset: 30 + len(i.orig_filename.encode("utf-8")) + len(i.extra) + 64
                for i in infos
            }
            self._kinds = {
                i.header_offset: kind for i in infos if (kind := _window_kind(i))
            }
            order = [i.header_offset for i in infos if i.header_offset in self._kinds]
            self._after = dict(itertools.pairwise(order))
            self._order = order
            if 0 <= cd_start <= self.size:
                bounds.add(cd_start)
            self._bounds = sorted(bounds)
            self._bounds_final = True
        except _Offline:
            pass  # the central directory is not cached yet: try again on the next miss
        except Exception:
            self._bounds_final = True
        finally:
            self._offline = False
            self._pos = saved

    # -- planned windows and streams -------------------------------------------------------

    def _window(self, pos: int, end: int, nxt: int) -> tuple[int, bool, list[int]] | None:
        """The planned window for a miss at ``pos`` (reading to ``end``; the next cached byte
        is at ``nxt``): ``(stop, streamed, members it takes in after the first)``, or None
        for the plain read-ahead policy (the central directory is not known, or the scan is
        not expected to read this member)."""
        member_start, bound = self._member_span(pos)
        kind = self._kinds.get(member_start, "")
        if bound is None or not kind:
            return None
        first = member_start not in self._windowed
        self._windowed.add(member_start)
        taken: list[int] = []
        if not first:
            if kind == "sparse":
                return None  # a stored member: the ranges its parser asks for, as asked
            stop = bound  # the rest of the member
            if bound - member_start > BIG_MEMBER:
                expected = self._expected.get(member_start, 0)
                grown = pos + max(HEAD_WINDOW, (pos - member_start) // 2)
                stop = min(bound, expected if expected > pos else grown)
        else:
            stop, taken = self._first_stop(pos, member_start, bound, kind)
            self._windowed.update(taken)
        stop = min(max(stop, end), nxt, self.size)
        if stop <= pos:
            return None
        return stop, stop - pos > STREAM_MIN, taken

    def _first_stop(
        self, pos: int, member_start: int, bound: int, kind: str
    ) -> tuple[int, list[int]]:
        """Where a member's first window ends, and the members after it that it takes in."""
        head = self._heads.get(member_start, 0)
        if kind == "sparse" or (kind == "peek" and bound - member_start > SMALL_MEMBER):
            return min(bound, member_start + head + PEEK_WINDOW), []
        if bound - member_start > BIG_MEMBER:
            return min(bound, member_start + head + HEAD_WINDOW), []
        if kind == "meta":
            return bound, []  # WHEEL is read first, out of the order of the rest: alone
        return self._run(pos, member_start, bound)

    def _look_ahead(self, busy_start: int, busy_stop: int) -> None:
        """Start read-aheads (see ``AHEAD``) of the first windows of the next members the scan
        will read, none overlapping ``[busy_start, busy_stop)`` (the window being opened),
        the open stream, another read-ahead or a cached byte."""
        order, bounds = self._order, self._bounds
        while self._cursor < len(order) and order[self._cursor] in self._windowed:
            self._cursor += 1
        if len(self._ahead) >= AHEAD or bounds is None or self._whole is not None:
            return
        busy = [(a.start, a.stop) for a in self._ahead] + [(busy_start, busy_stop)]
        if self._stream is not None:
            busy.append((self._stream.start, self._stream.stop))
        for ms in order[self._cursor : self._cursor + AHEAD_SCAN]:
            if len(self._ahead) >= AHEAD:
                break
            j = bisect.bisect_right(bounds, ms)
            if ms in self._windowed or j >= len(bounds) or bounds[j - 1] != ms:
                continue
            _, cached, nxt = self._cached_to(ms)
            if cached > ms:
                continue  # its first bytes are here already
            stop, taken = self._first_stop(ms, ms, bounds[j], self._kinds.get(ms, ""))
            stop = min(stop, nxt)
            if stop > ms + AHEAD_MAX:
                break  # a long window is left to the reader, who streams it; it may take in
                # the members after this one (see _run), so the look ahead stops here
            if stop <= ms or any(s < stop and ms < e for s, e in busy):
                continue
            self._windowed.add(ms)
            self._windowed.update(taken)
            a = _Ahead(ms, stop)
            self._ahead.append(a)
            busy.append((ms, stop))
            threading.Thread(
                target=_fetch_ahead, name="wheelscan-ahead", daemon=True,
                args=(a, self.pool, self.url, self.headers, self.timeout, self.policy,
                      self.deadline, self.size),
            ).start()  # fmt: skip

    def _use_ahead(self, pos: int) -> bool:
        """A miss at ``pos`` inside a read-ahead: wait for it; True if its bytes are now
        cached, False (it is dropped) if it failed and ``pos`` must be fetched as usual."""
        a = next((a for a in self._ahead if a.start <= pos < a.stop), None)
        if a is None:
            return False
        self._ahead.remove(a)
        a.done.wait()
        return self._take_ahead(a)

    def _settle(self, *, wait: bool = False) -> None:
        """Take in the read-aheads that are done (with ``wait``: all of them, once done)."""
        for a in list(self._ahead):
            if wait:
                a.done.wait()
            if a.done.is_set():
                self._ahead.remove(a)
                self._take_ahead(a)

    def _take_ahead(self, a: _Ahead) -> bool:
        """Count a finished read-ahead and cache what of it is not cached; True if it came."""
        self._count_ahead(a)
        if a.data is None or self._whole is not None:
            return False
        self._insert_gaps(a.start, a.data)
        self._verify_if_complete()
        return True

    def _count_ahead(self, a: _Ahead) -> None:
        self.stats.requests += a.requests
        self.stats.body_bytes += a.body_bytes
        self.stats.read_aheads += 1
        self.stats.read_aheads_used += a.data is not None

    def _run(self, pos: int, member_start: int, stop: int) -> tuple[int, list[int]]:
        """``stop`` (the end of a member read whole) moved over the members the scan reads
        next (central directory order) while they lie just after it in the file and are read
        whole too, the window staying within RUN_MAX; members between that it will not read
        are taken along when small (GAP_MAX each, at most 1/16 of the window in all). Returns
        the new stop and the members it took in."""
        assert self._bounds is not None
        taken: list[int] = []
        gap = 0
        cur = member_start
        while (
            (nstart := self._after.get(cur)) is not None
            and nstart >= stop
            and nstart not in self._windowed  # a read-ahead has it
        ):
            j = bisect.bisect_right(self._bounds, nstart)
            if j >= len(self._bounds):
                break
            nbound = self._bounds[j]
            kind = self._kinds.get(nstart, "")
            whole = kind in ("elf", "meta") or (kind == "peek" and nbound - nstart <= SMALL_MEMBER)
            between = nstart - stop
            if (
                not whole
                or nbound - pos > RUN_MAX
                or between > GAP_MAX
                or (gap + between) * 16 > max(stop - pos, 16 * GAP_MAX)
            ):
                break
            gap += between
            stop = nbound
            taken.append(nstart)
            cur = nstart
        return stop, taken

    def _open_stream(self, start: int, stop: int, members: list[int]) -> bool:
        """Ask for ``[start, stop)`` and keep the answer open, to be read as it arrives; False
        if the server answered with the whole file instead (now in ``_whole``)."""
        self._end_stream(drain=True)
        rng = f"bytes={start}-{stop - 1}"

        def attempt() -> urllib3.BaseHTTPResponse | None:
            if self.deadline is not None:
                self.deadline.check(self.url)
            r = self._send_range(rng)
            try:
                if r.status == 200:
                    self._stream_whole(r)
                    r.release_conn()
                    return None
                if r.status != 206:
                    raise RemoteError(f"{self.url}: HTTP {r.status} for Range {rng}")
                length = r.headers.get("Content-Length", str(stop - start))
                declared = int(length) if length.isdigit() else -1
                got_start, got_end, total = _parse_content_range(self.url, r.headers, declared)
                if total != self.size:
                    raise RemoteError(f"{self.url}: size changed from {self.size} to {total} "
                                      "bytes while reading")  # fmt: skip
                if got_start != start or got_end != stop:
                    raise RemoteError(f"{self.url}: asked for bytes {start}-{stop - 1}, got "
                                      f"{got_start}-{got_end - 1}")  # fmt: skip
            except BaseException:
                r.close()
                r.release_conn()
                raise
            return r

        try:
            r = _retrying(attempt, self.retries, self.backoff, self.deadline,
                          lambda: setattr(self.stats, "retries", self.stats.retries + 1))
        except _GaveUp as e:
            raise RemoteError(f"{self.url}: failed ({self.stats.retries} retries): {e}") from None
        if r is None:
            return False
        self.stats.windows += 1
        self._stream = _Stream(r, _body(r, self.url, self.deadline, 256 << 10), start, stop,
                               members)  # fmt: skip
        return True

    def _from_stream(self, start: int, end: int) -> bytes | None:
        """``[start, end)`` from the open stream, reading on as far as needed; None (and the
        stream ended) when it does not hold those bytes or failed on the way."""
        st = self._stream
        if st is None or self._offline:
            return None
        if not (st.buf_start <= start and end <= st.stop and start <= st.got + STREAM_JUMP):
            self._end_stream(drain=True)
            return None
        try:
            while st.got < end:
                chunk = next(st.body, b"")
                if not chunk:
                    raise _StreamBroke(f"the answer ended after {st.got - st.start} bytes")
                chunk = chunk[: st.stop - st.got]
                st.buf += chunk
                st.got += len(chunk)
                self.stats.body_bytes += len(chunk)
        except RemoteError:
            self._end_stream(drain=False)
            raise  # the deadline: nothing more is asked for
        except (_StreamBroke, Urllib3Error, OSError, http.client.HTTPException):
            # a dropped or cut answer: keep what came, read the rest as plain ranges (their
            # own retries apply); the failure counts as a retry of this file
            self.stats.retries += 1
            self.stats.windows_broken += 1
            self._end_stream(drain=False)
            return None
        with memoryview(st.buf) as view:  # one copy (a bytearray slice would be a second)
            data = view[start - st.buf_start : end - st.buf_start].tobytes()
        drop = start - st.buf_start - STREAM_KEEP
        if drop > STREAM_KEEP:  # trim in big steps: a bytearray's front delete is a memmove
            del st.buf[:drop]
            st.buf_start += drop
        return data

    def _end_stream(self, *, drain: bool) -> None:
        """Close the open stream: what arrived goes to the range cache; the rest is read to
        the end when it is short (the connection goes back to the pool), else, or if anything
        about the answer is not clean, the connection is closed."""
        st, self._stream = self._stream, None
        if st is None:
            return
        clean = False
        try:
            if drain and st.stop - st.got <= DRAIN_MAX:
                with contextlib.suppress(Urllib3Error, OSError, http.client.HTTPException):
                    for chunk in st.body:
                        chunk = chunk[: st.stop - st.got]
                        st.buf += chunk
                        st.got += len(chunk)
                        self.stats.body_bytes += len(chunk)
                        if st.got >= st.stop:
                            break
            if st.got < st.stop:
                self.stats.abandoned += 1
            clean = st.got >= st.stop and getattr(st.response, "length_remaining", None) == 0
        finally:
            if not clean:
                st.response.close()  # unread or unknown body: the connection is not reused
            st.body.close()
            st.response.release_conn()
            del st.buf[st.got - st.buf_start :]
            if st.buf and not self.closed:
                self._insert(st.buf_start, st.buf, own=True)  # the cache takes the buffer

    def _fetch(self, start: int, stop: int) -> None:
        if self._offline:
            raise _Offline
        status, headers, body = self._request(f"bytes={start}-{stop - 1}", allow_whole=True)
        if status == 200:
            return  # whole file now in self._whole
        got_start, got_end, total = _parse_content_range(self.url, headers, len(body))
        if total != self.size:
            raise RemoteError(
                f"{self.url}: size changed from {self.size} to {total} bytes while reading"
            )
        if got_start != start or got_end != stop:
            raise RemoteError(
                f"{self.url}: asked for bytes {start}-{stop - 1}, got {got_start}-{got_end - 1}"
            )
        self._insert(start, body, own=True)
        self._verify_if_complete()

    def _request(self, rng: str, *, allow_whole: bool) -> _Answer:
        """GET with ``Range: rng``; retried. 200 streams the whole file into ``_whole``."""

        def counted() -> None:
            self.stats.retries += 1

        def attempt() -> _Answer:
            if self.deadline is not None:
                self.deadline.check(self.url)
            return self._attempt(rng, allow_whole)

        try:
            return _retrying(attempt, self.retries, self.backoff, self.deadline, counted)
        except _GaveUp as e:
            msg = f"{self.url}: failed ({self.stats.retries} retries): {e}"
            raise RemoteError(msg) from None

    def _send_range(self, rng: str) -> urllib3.BaseHTTPResponse:
        """One GET with ``Range: rng``, redirects followed within the policy: the answer,
        its body unread. A retry status (its body drained) raises :class:`_Retryable`; an
        answer with a content coding is refused."""
        self.stats.requests += 1
        headers = {**self.headers, "Range": rng, "Accept-Encoding": "identity"}
        left = self.policy.max_redirects - self.stats.redirects
        r, final, used = _open(self.pool, self.url, headers, self.timeout, self.policy,
                               self.deadline, left)  # fmt: skip
        self.stats.redirects += used
        self.url = final  # later ranges go straight to where the file is
        try:
            if r.status in _RETRY_STATUS:
                for chunk in _body(r, self.url, self.deadline, 64 << 10):
                    self.stats.body_bytes += len(chunk)
                raise _Retryable(f"HTTP {r.status}")
            coding = _content_coding(r)
            if coding and r.status in (200, 206):
                raise RemoteError(
                    f"{self.url}: refused: answered with Content-Encoding {coding!r}; wheel "
                    "bytes are asked for and accepted as identity only"
                )
        except BaseException:
            r.close()
            r.release_conn()
            raise
        return r

    def _attempt(self, rng: str, allow_whole: bool) -> _Answer:
        r = self._send_range(rng)
        try:
            if r.status == 200 and allow_whole:
                self._stream_whole(r)
                return 200, r.headers, b""
            if r.status not in (206, 416):
                raise RemoteError(f"{self.url}: HTTP {r.status} for Range {rng}")
            length = r.headers.get("Content-Length")
            cap = self.max_fetch + _ANSWER_SLACK
            if length is not None and length.isdigit() and int(length) > cap:
                raise RemoteError(f"{self.url}: a range answer of {length} bytes (asked {rng})")
            body = bytearray()
            for chunk in _body(r, self.url, self.deadline, 64 << 10):
                body += chunk
                self.stats.body_bytes += len(chunk)
                if len(body) > cap:
                    raise RemoteError(f"{self.url}: range answer longer than {cap} bytes")
            return r.status, r.headers, body  # a bytearray: the range cache takes it as is
        except BaseException:
            r.close()  # a body left half read must not go back to the pool
            raise
        finally:
            r.release_conn()

    def _stream_whole(self, r: urllib3.BaseHTTPResponse) -> None:
        """The server ignored Range: keep the whole file (spooled), verify its hash."""
        self.stats.whole_file = True
        h = _hasher(self.expected_hash[0]) if self.expected_hash else None
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=self.spool_memory)  # noqa: SIM115
        n = 0
        try:
            for chunk in _body(r, self.url, self.deadline, 256 << 10):
                n += len(chunk)
                self.stats.body_bytes += len(chunk)
                if n > self.max_size:
                    raise RemoteError(
                        f"{self.url}: whole-file answer exceeds {self.max_size} bytes"
                    )
                spool.write(chunk)
                if h is not None:
                    h.update(chunk)
            if self.size and n != self.size:
                raise RemoteError(f"{self.url}: the whole file is {n} bytes, earlier answers "
                                  f"said {self.size} (changed while reading?)")  # fmt: skip
            if h is not None and self.expected_hash is not None:
                self._check_digest(h.hexdigest())
        except BaseException:
            spool.close()
            raise
        if self._whole is not None:
            self._whole.close()
        self._whole = spool
        self.size = n
        self._starts.clear()
        self._segs.clear()

    def _check_digest(self, hexdigest: str) -> None:
        assert self.expected_hash is not None
        algo, want = self.expected_hash
        if hexdigest != want:
            raise RemoteError(
                f"{self.url}: {algo} of the downloaded file is {hexdigest}, the index says {want}"
            )
        self.stats.verified = f"{algo}:{want}"

    def _verify_if_complete(self) -> None:
        if (
            self.expected_hash
            and self.stats.verified is None
            and len(self._segs) == 1
            and self._starts[0] == 0
            and len(self._segs[0]) == self.size
        ):
            h = _hasher(self.expected_hash[0])
            h.update(self._segs[0])
            self._check_digest(h.hexdigest())

    # -- the range cache ------------------------------------------------------------------------

    def _insert(self, start: int, data: bytes | bytearray, *, own: bool = False) -> None:
        """Add ``[start, start+len)`` (a gap) and coalesce with touching neighbours. With
        ``own`` the cache keeps ``data`` itself (a bytearray no one else writes) rather than a
        copy."""
        if not data:
            return
        i = bisect.bisect_left(self._starts, start)
        if i > 0 and self._starts[i - 1] + len(self._segs[i - 1]) >= start:
            i -= 1
            prev_start = self._starts[i]
            seg = self._segs[i]
            del seg[start - prev_start :]
            seg += data
        else:
            self._starts.insert(i, start)
            self._segs.insert(i, data if own and isinstance(data, bytearray) else bytearray(data))
            seg = self._segs[i]
        # absorb following segments that the new data reaches
        seg_start = self._starts[i]
        while i + 1 < len(self._starts) and self._starts[i + 1] <= seg_start + len(seg):
            nstart = self._starts.pop(i + 1)
            nseg = self._segs.pop(i + 1)
            seg_end = seg_start + len(seg)
            if nstart + len(nseg) > seg_end:
                seg += nseg[seg_end - nstart :]

    def _cached_to(self, pos: int) -> tuple[int, int, int]:
        """``(i, end, next)``: ``i`` the last cached segment starting at or before ``pos``
        (-1 for none), ``end`` where the cached bytes from ``pos`` on end (``pos`` itself when
        it is not cached), ``next`` where the next segment after ``pos`` starts (the file's
        size when none does)."""
        i = bisect.bisect_right(self._starts, pos) - 1
        nxt = self._starts[i + 1] if i + 1 < len(self._starts) else self.size
        if i >= 0 and pos < self._starts[i] + len(self._segs[i]):
            return i, self._starts[i] + len(self._segs[i]), nxt
        return i, pos, nxt

    def _insert_gaps(self, start: int, data: bytearray) -> None:
        """Cache the parts of ``[start, start+len(data))`` that are not cached: bytes the
        reader may already have been served are never replaced."""
        end = start + len(data)
        pos = start
        while pos < end:
            _, cached, nxt = self._cached_to(pos)
            if cached > pos:
                pos = cached
                continue
            stop = min(nxt, end)
            whole = pos == start and stop == end
            self._insert(pos, data if whole else data[pos - start : stop - start], own=True)
            pos = stop

    def _copy(self, start: int, end: int) -> bytes:
        i, cached, _ = self._cached_to(start)
        if cached < end:  # an invariant, checked
            raise RemoteError(f"{self.url}: internal error: bytes {start}-{end - 1} were to be "
                              "cached and are not")  # fmt: skip
        s = self._starts[i]
        return bytes(self._segs[i][start - s : end - s])


class _Offline(Exception):
    """A read needed the network while parsing hints from cached bytes only."""


class _StreamBroke(Exception):
    """A streamed answer ended before its window did."""


@dataclass
class _Ahead:
    """A read-ahead of ``[start, stop)``: its thread sets ``data`` (only for an exact answer)
    and the counts, then ``done``."""

    start: int
    stop: int
    done: threading.Event = field(default_factory=threading.Event)
    data: bytearray | None = None
    requests: int = 0
    body_bytes: int = 0


def _fetch_ahead(
    a: _Ahead,
    pool: urllib3.PoolManager,
    url: str,
    headers: Mapping[str, str],
    timeout: urllib3.Timeout,
    policy: URLPolicy,
    deadline: Deadline | None,
    size: int,
) -> None:
    """One GET of a read-ahead's range, in its own thread: no retries and no redirects (the
    reader's own request has both, should this one fail), the file's deadline and policy."""
    try:
        rng = f"bytes={a.start}-{a.stop - 1}"
        a.requests = 1
        r, _, _ = _open(pool, url, {**headers, "Range": rng, "Accept-Encoding": "identity"},
                        timeout, policy, deadline, 0)  # fmt: skip
        try:
            if r.status != 206 or _content_coding(r):
                r.close()
                return
            want = a.stop - a.start
            body = bytearray()
            for chunk in _body(r, url, deadline, 64 << 10):
                body += chunk
                a.body_bytes += len(chunk)
                if len(body) > want:
                    r.close()
                    return
            if _parse_content_range(url, r.headers, len(body)) == (a.start, a.stop, size):
                a.data = body
        except BaseException:
            r.close()  # a body left half read must not go back to the pool
            raise
        finally:
            r.release_conn()
    except Exception:
        pass  # dropped: the reader asks again, with its retries and its errors
    finally:
        a.done.set()


@dataclass
class _Stream:
    """An open range answer, read as the scan asks: bytes ``[buf_start, got)`` are in
    ``buf``; the window is ``[start, stop)``."""

    response: urllib3.BaseHTTPResponse
    body: Generator[bytes, None, None]
    start: int
    stop: int
    members: list[int] = field(default_factory=list)  # members the window took in after it
    buf: bytearray = field(default_factory=bytearray)
    buf_start: int = -1
    got: int = -1

    def __post_init__(self) -> None:
        self.buf_start = self.got = self.start


#: window kinds: "elf" (fetched whole), "peek" (header and first input step, then the rest
#: whole), "sparse" (a stored candidate: header and first step, then the ranges the parser
#: asks for), "meta" (WHEEL)
_KINDS = ("elf", "peek", "sparse", "meta")
_ELF_NAME = re.compile(r"\.so(?:\.[0-9]+)*$|(?:^|/)[^/.]+$")


def _window_kind(info: zipfile.ZipInfo) -> str:
    """How a member the scan will read is windowed ("" when the scan will not read it)."""
    name = info.filename
    top, _, rest = name.partition("/")
    if top.endswith(".dist-info") and rest == "WHEEL":
        return "meta"
    if not may_be_binary(name, info.file_size):
        return ""
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return "sparse"
    return "elf" if _ELF_NAME.search(name) else "peek"


def _total_from(content_range: str) -> int | None:
    m = re.fullmatch(r"bytes \*/(\d+)", content_range.strip())
    return int(m.group(1)) if m else None


def _parse_content_range(
    url: str, headers: Mapping[str, str], body_len: int
) -> tuple[int, int, int]:
    cr = headers.get("Content-Range")
    m = _RANGE_RE.fullmatch(cr.strip()) if cr else None
    if m is None or m.group(3) == "*":
        raise RemoteError(f"{url}: 206 answer without a usable Content-Range ({cr!r})")
    start, last, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if last < start or last >= total or last - start + 1 != body_len:
        raise RemoteError(f"{url}: Content-Range {cr!r} does not match a {body_len}-byte body")
    return start, last + 1, total


def get(
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    pool: urllib3.PoolManager | None = None,
    timeout: float = 30.0,
    retries: int = 4,
    backoff: float = 0.25,
    max_bytes: int = 64 << 20,
    policy: URLPolicy | None = None,
    deadline: Deadline | None = None,
) -> tuple[int, str, str, bytes]:
    """GET a small document (an index page): ``(status, final URL, Content-Type, body)``.

    Retried like range requests (5xx, resets, dropped bodies, timeouts); 4xx is returned.
    ``policy`` (default: ``url``'s origin) bounds where it and its redirects go, ``deadline``
    its time; the body, decoded if it came gzip/deflate-coded, is at most ``max_bytes``.
    """
    pool = pool or pool_manager()
    policy = policy or URLPolicy.for_url(url)
    base_timeout = urllib3.Timeout(connect=min(timeout, 10.0), read=timeout)
    hdrs = {"Accept-Encoding": "gzip, deflate", **(headers or {})}
    redirects = 0

    def attempt() -> tuple[int, str, str, bytes]:
        nonlocal redirects
        r, final, used = _open(pool, url, hdrs, base_timeout, policy, deadline,
                               policy.max_redirects - redirects)  # fmt: skip
        redirects += used
        try:
            body = _page_body(r, final, deadline, max_bytes)
        except BaseException:
            r.close()
            raise
        finally:
            r.release_conn()
        if r.status in _RETRY_STATUS:
            raise _Retryable(f"HTTP {r.status}")
        return r.status, final, r.headers.get("Content-Type", ""), body

    try:
        return _retrying(attempt, retries, backoff, deadline)
    except _GaveUp as e:
        raise RemoteError(f"{url}: failed: {e}") from None


class _GaveUp(Exception):
    """The last failure of a request that ran out of attempts (or failed for good)."""


def _retrying(
    attempt: Callable[[], _T],
    retries: int,
    backoff: float,
    deadline: Deadline | None,
    on_retry: Callable[[], None] | None = None,
) -> _T:
    """``attempt()`` until it returns, at most ``retries`` more times after the first, with
    jittered exponential backoff (never sleeping past ``deadline``). A :class:`_Retryable`
    (a retry status) or a transport failure worth another attempt is retried; another
    urllib3 error gives up at once; other exceptions pass through."""
    last = "no attempt"
    for n in range(retries + 1):
        if n:
            if on_retry is not None:
                on_retry()
            delay = backoff * (2 ** (n - 1)) * (0.5 + random.random())
            if deadline is not None:
                delay = min(delay, max(0.0, deadline.remaining()))
            time.sleep(delay)
        try:
            return attempt()
        except _Retryable as e:
            last = str(e)
        except Urllib3Error as e:
            last = f"{type(e).__name__}: {e}"
            if not _retryable(e):
                break
    raise _GaveUp(last)


def _zlib_header(b: bytes) -> bool:
    """Whether ``b`` starts with a zlib header (RFC 1950: method 8, check bits); one byte is
    too few to tell, and counts as one."""
    if len(b) < 2:
        return True
    return b[0] & 0x0F == 8 and (b[0] << 8 | b[1]) % 31 == 0


def _page_body(
    r: urllib3.BaseHTTPResponse, url: str, deadline: Deadline | None, max_bytes: int
) -> bytes:
    """A page's body, decoded (gzip, deflate) with the decoded size capped as it grows."""
    coding = _content_coding(r)
    if coding not in ("", "gzip", "x-gzip", "deflate"):
        raise RemoteError(f"{url}: refused: unsupported Content-Encoding {coding!r}")
    # wbits 47: a gzip or zlib header, detected. "deflate" means zlib-wrapped (RFC 9110), but
    # some servers send raw deflate: a first chunk that is no zlib header is decoded as that.
    dec = zlib.decompressobj(47) if coding else None
    body = bytearray()
    raw = 0
    for chunk in _body(r, url, deadline, 64 << 10):
        if raw == 0 and coding == "deflate" and chunk and not _zlib_header(chunk):
            dec = zlib.decompressobj(-15)
        raw += len(chunk)
        if raw > max_bytes:
            raise RemoteError(f"{url}: refused: page larger than {max_bytes} bytes")
        if dec is None:
            body += chunk
            continue
        data = chunk
        while data:
            try:
                body += dec.decompress(data, max_bytes + 1 - len(body))
            except zlib.error as e:
                raise RemoteError(f"{url}: {coding}-coded body does not decode ({e})") from None
            if len(body) > max_bytes:
                raise RemoteError(
                    f"{url}: refused: page decodes to more than {max_bytes} bytes "
                    f"({coding}, {raw} bytes received so far)"
                )
            data = dec.unconsumed_tail
    if len(body) > max_bytes:
        raise RemoteError(f"{url}: refused: page larger than {max_bytes} bytes")
    return bytes(body)
