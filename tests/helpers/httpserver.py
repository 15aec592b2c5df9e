"""A real HTTP server on 127.0.0.1 serving wheels and a simple index, with injectable faults.

- ``/files/<name>``: the wheels; single ``Range`` requests (``a-b``, ``a-``, ``-n``) answered
  with 206 unless ``ranges=False`` (then always 200 with the whole body, as some servers do).
- ``/simple/`` and ``/simple/<project>/``: PEP 691 JSON when the client asks for it and
  ``flavour="json"``, PEP 503 HTML otherwise (``flavour="html"`` never speaks JSON).
- faults, on the *first* attempt of selected requests only (so a client that retries always
  gets through): ``500`` (answer 500), ``drop`` (send headers and part of the body, then
  close), ``slow`` (sleep ``slow_seconds`` before answering), ``stall`` (sleep past a client
  timeout). ``fault_every=k`` selects about one request key (path + Range) in k, by CRC.
  ``always_fail`` paths answer 500 every time.
- a link model: ``latency`` seconds slept before every answer (a round trip) and, with
  ``bandwidth`` (bytes/s), one capacity shared by every answer in flight: bodies go out in
  ``LINK_CHUNK`` pieces, each sent once the link has carried the pieces booked before it, so
  32 connections share 100 MB/s as they would share a real link (the kernel here has no netem).
- accounting: response-body bytes actually written, per path, and requests per path.

Bounded: :meth:`IndexServer.start` arms a timer that shuts the server down after
``max_seconds`` even if a test forgets to; handler threads are daemons.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import re
import socket
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
FAULTS = ("500", "drop", "slow", "stall")
#: the piece of a body the link model books at a time (0.66 ms at 100 MB/s)
LINK_CHUNK = 64 << 10


class Link:
    """A shared bandwidth cap: :meth:`send` books ``n`` bytes on the link after everything
    booked before, and sleeps until they would have crossed it."""

    def __init__(self, bandwidth: float) -> None:
        self.bandwidth = bandwidth
        self._free_at = 0.0
        self._lock = threading.Lock()

    def send(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._free_at)
            self._free_at = start + n / self.bandwidth
            until = self._free_at
        delay = until - time.monotonic()
        if delay > 0:
            time.sleep(delay)


@dataclass
class ServedFile:
    name: str
    data: bytes
    project: str
    sha256: str = ""

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.data).hexdigest()


@dataclass
class ServerConfig:
    flavour: str = "json"  # "json" (negotiated) or "html" (HTML only)
    ranges: bool = True
    faults: tuple[str, ...] = ()  # kinds injected, cycled over the selected requests
    fault_every: int = 3
    slow_seconds: float = 0.05
    stall_seconds: float = 1.5
    always_fail: frozenset[str] = frozenset()  # paths that always answer 500
    html_hash_fragment: bool = True  # PEP 503 "#sha256=" on file links
    json_relative_urls: bool = True
    latency: float = 0.0  # seconds slept before every answer (a far-away server)
    bandwidth: float = 0.0  # bytes/s shared by all answers (0: as fast as loopback goes)
    no_suffix: bool = False  # answer suffix ranges ("bytes=-n") with 416, as a few servers do
    lie: str = ""  # "shift": 206 for the range one byte later; "to-end": 206 up to the end
    #: fixed answers by path, checked first: (status, extra headers, body) -- hostile pages,
    #: redirects, content-coded bodies
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    trickle: float = 0.0  # /files/ bodies sent one byte per this many seconds (a slow drip)
    chunked: bool = False  # routes' bodies sent with Transfer-Encoding: chunked (7-byte chunks)


@dataclass
class Accounting:
    body_bytes: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    ranges: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header)
    lock: threading.Lock = field(default_factory=threading.Lock)


class IndexServer:
    def __init__(self, wheels: list[Path], config: ServerConfig | None = None,
                 *, max_seconds: float = 120.0) -> None:  # fmt: skip
        self.config = config or ServerConfig()
        self.files: dict[str, ServedFile] = {}
        for p in wheels:
            project = str(parse_wheel_filename(p.name)[0])
            self.files[p.name] = ServedFile(p.name, p.read_bytes(), project)
        self.acct = Accounting()
        self.seen: set[str] = set()
        self.max_seconds = max_seconds
        self.httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self.link = Link(self.config.bandwidth) if self.config.bandwidth > 0 else None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> IndexServer:
        server = self

        class Handler(_Handler):
            srv = server

        httpd = _QuietServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self.httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        httpd, self.httpd = self.httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._timer is not None:
            self._timer.cancel()

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def file_url(self, name: str) -> str:
        return f"{self.base}/files/{name}"

    def reset_accounting(self) -> None:
        self.acct = Accounting()
        self.seen = set()

    def file_bytes(self, name: str) -> int:
        return self.acct.body_bytes[f"/files/{name}"]

    # -- index pages ---------------------------------------------------------------------------

    def projects(self) -> list[str]:
        return sorted({f.project for f in self.files.values()})

    def project_files(self, project: str) -> list[ServedFile]:
        return [f for f in self.files.values() if f.project == project]

    def root_json(self) -> bytes:
        doc = {"meta": {"api-version": "1.1"}, "projects": [{"name": p} for p in self.projects()]}
        return json.dumps(doc).encode()

    def root_html(self) -> bytes:
        links = "".join(f'<a href="{p}/">{html.escape(p)}</a>\n' for p in self.projects())
        return f"<!DOCTYPE html><html><body>\n{links}</body></html>".encode()

    def project_json(self, project: str) -> bytes:
        files = []
        for f in self.project_files(project):
            url = (
                f"../../files/{f.name}" if self.config.json_relative_urls else self.file_url(f.name)
            )
            files.append({"filename": f.name, "url": url, "hashes": {"sha256": f.sha256},
                          "size": len(f.data), "upload-time": "2024-01-02T03:04:05Z"})  # fmt: skip
        files.append({"filename": f"{project}-1.0.tar.gz", "url": "../../files/none.tar.gz",
                      "hashes": {}})  # fmt: skip
        doc = {"meta": {"api-version": "1.1"}, "name": project, "files": files,
               "versions": ["1.0"]}  # fmt: skip
        return json.dumps(doc).encode()

    def project_html(self, project: str) -> bytes:
        links = []
        for f in self.project_files(project):
            frag = f"#sha256={f.sha256}" if self.config.html_hash_fragment else ""
            links.append(
                f'<a href="../../files/{html.escape(f.name)}{frag}">{html.escape(f.name)}</a><br/>'
            )
        links.append(f'<a href="../../files/{project}-1.0.tar.gz">{project}-1.0.tar.gz</a>')
        body = "\n".join(links)
        return (f"<!DOCTYPE html><html><head><meta name=\"pypi:repository-version\" "
                f"content=\"1.0\"></head><body>\n{body}\n</body></html>").encode()  # fmt: skip


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets from injected drops and impatient clients are expected


class _Handler(BaseHTTPRequestHandler):
    srv: IndexServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out as separate writes: without this, Nagle + delayed ACK
        # add ~40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.srv
        cfg = srv.config
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        rng = self.headers.get("Range", "")
        with srv.acct.lock:
            srv.acct.requests[path] += 1
            srv.acct.ranges.append((path, rng))
            key = f"{path}|{rng}"
            first = key not in srv.seen
            srv.seen.add(key)
        if cfg.latency:
            time.sleep(cfg.latency)
        if path in cfg.routes:
            status, extra, body = cfg.routes[path]
            ctype = extra.get("Content-Type", "text/html; charset=utf-8")
            headers = {k: v for k, v in extra.items() if k != "Content-Type"}
            if cfg.chunked:
                self._send_chunked(status, body, ctype, path, headers)
            else:
                self._send(status, body, ctype, path, extra=headers)
            return
        if path in cfg.always_fail:
            self._send(500, b"always failing\n", "text/plain", path)
            return
        if first and cfg.faults and zlib.crc32(key.encode()) % cfg.fault_every == 0:
            kind = cfg.faults[zlib.crc32(key.encode()[::-1]) % len(cfg.faults)]
            with srv.acct.lock:
                srv.acct.faults[kind] += 1
            if kind == "500":
                self._send(500, b"injected failure\n", "text/plain", path)
                return
            if kind == "slow":
                time.sleep(cfg.slow_seconds)
            elif kind == "stall":
                time.sleep(cfg.stall_seconds)
            elif kind == "drop":
                self._serve(path, rng, drop=True)
                return
        self._serve(path, rng, drop=False)

    def _serve(self, path: str, rng: str, *, drop: bool) -> None:
        srv = self.srv
        cfg = srv.config
        if path.startswith("/files/"):
            f = srv.files.get(path[len("/files/") :])
            if f is None:
                self._send(404, b"not found\n", "text/plain", path)
                return
            self._send_file(f.data, rng if cfg.ranges else "", path, drop=drop)
            return
        m = re.fullmatch(r"/simple/(?:([^/]+)/)?", path)
        if m is None:
            self._send(404, b"not found\n", "text/plain", path)
            return
        want_json = cfg.flavour == "json" and _prefers_json(self.headers.get("Accept", ""))
        project = m.group(1)
        if project is not None:
            norm = str(canonicalize_name(project))
            if norm not in srv.projects():
                self._send(404, b"no such project\n", "text/plain", path)
                return
            body = srv.project_json(norm) if want_json else srv.project_html(norm)
        else:
            body = srv.root_json() if want_json else srv.root_html()
        self._send(200, body, JSON_TYPE if want_json else "text/html; charset=utf-8", path,
                   drop=drop)  # fmt: skip

    def _send_file(self, data: bytes, rng: str, path: str, *, drop: bool) -> None:
        size = len(data)
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip()) if rng else None
        if m is None or (not m.group(1) and not m.group(2)):
            self._send(200, data, "application/octet-stream", path, drop=drop)
            return
        a, b = m.group(1), m.group(2)
        if not a and self.srv.config.no_suffix:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not a:
            start, end = max(0, size - int(b)), size
        else:
            start, end = int(a), min(size, int(b) + 1) if b else size
        if cfg_lie := self.srv.config.lie:
            if cfg_lie == "shift" and end < size:
                start, end = start + 1, end + 1
            elif cfg_lie == "to-end":
                end = size
        if start >= size or end <= start:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send(206, data[start:end], "application/octet-stream", path, drop=drop,
                   extra={"Content-Range": f"bytes {start}-{end - 1}/{size}"})  # fmt: skip

    def _send(self, status: int, body: bytes, ctype: str, path: str, *, drop: bool = False,
              extra: dict[str, str] | None = None) -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes" if self.srv.config.ranges else "none")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        payload = body[: len(body) // 2] if drop else body
        link = self.srv.link
        try:
            if link is not None:
                # piece by piece through the shared link, each counted before it is written
                # (the client may act on the last byte before we get back here); a client
                # that hangs up mid-body is charged for what was written, as a CDN would be
                view = memoryview(payload)
                for i in range(0, len(view), LINK_CHUNK):
                    piece = view[i : i + LINK_CHUNK]
                    link.send(len(piece))
                    with self.srv.acct.lock:
                        self.srv.acct.body_bytes[path] += len(piece)
                    self.wfile.write(piece)
                self.wfile.flush()
                self._after_body(drop)
                return
            # counted before writing: the client may act on the last byte before we get back
            with self.srv.acct.lock:
                self.srv.acct.body_bytes[path] += len(payload)
            if self.srv.config.trickle and path.startswith("/files/"):
                for i in range(len(payload)):  # ends when the client hangs up (or the server)
                    if self.srv.httpd is None:
                        return
                    self.wfile.write(payload[i : i + 1])
                    self.wfile.flush()
                    time.sleep(self.srv.config.trickle)
            else:
                self.wfile.write(payload)
                self.wfile.flush()
        except OSError:
            return
        self._after_body(drop)

    def _after_body(self, drop: bool) -> None:
        if drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)


    def _send_chunked(self, status: int, body: bytes, ctype: str, path: str,
                      extra: dict[str, str]) -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        with self.srv.acct.lock:
            self.srv.acct.body_bytes[path] += len(body)
        try:
            for i in range(0, len(body), 7):
                piece = body[i : i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            return


def _prefers_json(accept: str) -> bool:
    """Content negotiation as PEP 691 describes it: the highest q among the types we serve."""
    best_json = best_html = -1.0
    for part in accept.split(","):
        fields = [x.strip() for x in part.split(";")]
        mtype = fields[0].lower()
        q = 1.0
        for p in fields[1:]:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if mtype == JSON_TYPE:
            best_json = max(best_json, q)
        elif mtype in (HTML_TYPE, "text/html", "*/*"):
            best_html = max(best_html, q)
    return best_json > 0 and best_json >= best_html
