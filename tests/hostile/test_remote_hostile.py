"""A hostile index or server, on real loopback servers: it cannot mislead, hold, or reach out.

Each test plays one trick the issue names (a hash claim that would hand one wheel's verdict to
another, links and redirects to local files and other origins, a byte-a-second drip, a gzip
bomb, oversized and over-nested pages) and checks the wheel or page gets a clear error naming
the URL and the rule, while rows already in the store stay as they were.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import random
import shutil
import sqlite3
import time
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers.builders import make_wheel
from helpers.httpserver import IndexServer, ServerConfig
from helpers.verdict_wheels import build_scenarios
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wheelscan import judge, scan_wheel
from wheelscan.mirror import remote
from wheelscan.mirror.httpfile import HTTPFile, RemoteError, URLPolicy
from wheelscan.mirror.pool import ScanConfig, scan_one
from wheelscan.mirror.remote import fetch_page, iter_remote, parse_page, scan_remote
from wheelscan.mirror.sources import Discovery

if TYPE_CHECKING:
    from collections.abc import Iterator

    from helpers.corpus import Corpus
    from helpers.verdict_wheels import Scenario

FAST = {"timeout": 0.5, "backoff": 0.01}


@pytest.fixture(scope="module")
def wheels(corpus: Corpus) -> list[Path]:
    return [w.path for w in corpus.wheels]


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> list[Scenario]:
    sc = build_scenarios(tmp_path_factory.getbasetemp() / "verdict-scenarios")
    if not any(s.arch == "x86_64" for s in sc):
        pytest.skip("no x86_64 compiler to build scenario wheels")
    return sc


def _rows(db: Path) -> dict[str, tuple[str, str | None, float]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT location, status, error, scanned_at FROM wheels").fetchall()
    finally:
        con.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# -- 1. a hash claim is not proof -----------------------------------------------------------------


def test_index_hash_claim_cannot_poison_a_verdict(
    scenarios: list[Scenario], tmp_path: Path
) -> None:
    from wheelscan.cli.scan import ScanTarget, Scheduling, run_scan

    ok = next(s for s in scenarios if s.status == "ok" and s.arch == "x86_64")
    bad = next(s for s in scenarios if s.status == "mislabelled" and s.arch == "x86_64")
    with zipfile.ZipFile(ok.path) as zf:
        elf = zf.read("pkg/ext.abi3.so")
    # a clean wheel big enough to be read by ranges (never whole, so never hashed)
    padding = random.Random(18).randbytes(256 << 10)
    clean = make_wheel(tmp_path / "w", "padded-1.0-cp311-abi3-manylinux_2_17_x86_64.whl",
                       {"pkg/data.bin": padding, "pkg/ext.abi3.so": elf},
                       methods={"pkg/data.bin": "stored"})  # fmt: skip
    db = tmp_path / "s.sqlite"
    # index A serves the clean wheel's bytes while claiming the mislabelled wheel's sha256
    with IndexServer([clean]) as a:
        a.files[clean.name].sha256 = _sha256(bad.path)
        run_scan(ScanTarget([f"{a.base}/simple/"], str(db)), scheduling=Scheduling(jobs=1))
        assert 0 < a.file_bytes(clean.name) < clean.stat().st_size // 2
        a_rows = _rows(db)
    assert [v[0] for v in a_rows.values()] == ["ok"]  # range reads: the claim was not checked
    # index B lists the real mislabelled wheel with its true hash: it is read, not looked up
    with IndexServer([bad.path]) as b:
        summary = run_scan(ScanTarget([f"{b.base}/simple/"], str(db)),
                           scheduling=Scheduling(jobs=1))
        assert b.file_bytes(bad.path.name) > 0
        b_url = b.file_url(bad.path.name)
    assert summary.counts == {"mislabelled": 1}
    rows = _rows(db)
    (status,) = [v[0] for k, v in rows.items() if k.startswith(b_url)]
    assert status == "mislabelled"
    assert {k: v for k, v in rows.items() if k in a_rows} == a_rows  # A's row untouched


def test_whole_file_read_checks_the_claim(scenarios: list[Scenario], tmp_path: Path) -> None:
    from wheelscan.cli.scan import ScanTarget, Scheduling, run_scan

    clean = next(s for s in scenarios if s.status == "ok" and s.arch == "x86_64")
    bad = next(s for s in scenarios if s.status == "mislabelled" and s.arch == "x86_64")
    db = tmp_path / "s.sqlite"
    claimed, actual = _sha256(bad.path), _sha256(clean.path)
    with IndexServer([clean.path], ServerConfig(ranges=False)) as a:  # whole file: hashed
        a.files[clean.path.name].sha256 = claimed
        summary = run_scan(ScanTarget([f"{a.base}/simple/"], str(db)),
                           scheduling=Scheduling(jobs=1))
        url = a.file_url(clean.path.name)
    assert summary.counts == {"error": 1}
    ((status, error, _),) = _rows(db).values()
    assert status == "error"
    assert error is not None
    assert url in error
    assert claimed in error
    assert actual in error


# -- 2. only http(s), only the index's origin or allowed hosts ------------------------------------


def test_links_to_local_files_are_never_opened(wheels: list[Path], tmp_path: Path) -> None:
    from wheelscan.cli.scan import ScanTarget, Scheduling, run_scan

    w = wheels[0]
    local = tmp_path / "local" / w.name
    local.parent.mkdir()
    shutil.copy(w, local)
    db = tmp_path / "s.sqlite"
    run_scan(ScanTarget([str(local)], str(db)), scheduling=Scheduling(jobs=1))
    before = _rows(db)
    assert list(before) == [str(local)]
    links = [str(local), f"file://{local}", f"file:{local}", f"../../../../..{local}"]
    body = '<html><head><base href="foo:/"></head><body>' + "".join(
        f'<a href="{h}">{w.name}</a>' for h in links
    ) + "</body></html>"  # fmt: skip
    cfg = ServerConfig(flavour="html", routes={"/simple/evil/": (200, {}, body.encode())})
    with IndexServer([], cfg) as srv:
        summary = run_scan(ScanTarget([f"{srv.base}/simple/evil/"], str(db), rescan=True),
                           scheduling=Scheduling(jobs=1))
    d = summary.discovery
    assert d is not None
    assert d.refused == len(links)
    assert summary.scanned == 0
    assert len(d.problems) == len(links)
    assert all("refused: not an http(s) URL" in p for p in d.problems), d.problems
    assert _rows(db) == before  # the local row is neither rescanned nor overwritten


def test_a_lone_surrogate_in_a_json_page_is_refused_per_link(
    wheels: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PEP 691 JSON may write a lone surrogate (``\\ud800``); no UTF-8 store, report or
    terminal can hold one. That link is refused with a note; the good link is scanned."""
    from wheelscan.cli import main
    from wheelscan.cli.scan import ScanTarget, Scheduling, run_scan

    w = wheels[0]
    evil = "evil\ud800-1.0-py3-none-manylinux2014_x86_64.whl"
    doc = {
        "meta": {"api-version": "1.0"},
        "name": "evil",
        "files": [
            {"filename": evil, "url": f"/files/{w.name}", "hashes": {}},
            {"filename": w.name, "url": f"/files/{w.name}?\udfff", "hashes": {}},
            {"filename": w.name, "url": f"/files/{w.name}",
             "hashes": {"sha256": "=HYPERLINK(1)"}, "upload-time": "2024\udc80"},
        ],
    }  # fmt: skip
    body = json.dumps(doc).encode()  # ensure_ascii: the surrogates travel as \\u escapes
    assert b"\\ud800" in body
    cfg = ServerConfig(routes={"/simple/evil/": (200, {"Content-Type": remote.JSON_TYPE}, body)})
    db = tmp_path / "s.sqlite"
    with IndexServer([w], cfg) as srv:
        summary = run_scan(ScanTarget([f"{srv.base}/simple/evil/"], str(db)),
                           scheduling=Scheduling(jobs=1))
        d = summary.discovery
        assert d is not None
        assert d.refused == 2
        assert summary.scanned == 1
        assert all("refused: a lone surrogate" in p for p in d.problems), d.problems
        assert any("evil\\ud800-1.0" in p for p in d.problems), d.problems
        for p in d.problems:
            p.encode("utf-8")  # printable as it stands
        (row,) = _rows(db).values()
        local = judge(scan_wheel(w)).status  # the same bytes, read from disk
        assert row[0] == local, row
        con = sqlite3.connect(db)
        try:
            ((location, upload, content_hash),) = con.execute(
                "SELECT location, upload_time, content_hash FROM wheels"
            ).fetchall()
        finally:
            con.close()
        assert "HYPERLINK" not in location
        assert content_hash is None
        assert upload is None
        # and the CLI prints the refusals without crashing
        rc = main(["scan", f"{srv.base}/simple/evil/", "--db", str(tmp_path / "c.sqlite")])
        assert rc == {"ok": 0, "mislabelled": 1}[local]
    err = capsys.readouterr().err
    assert "refused: a lone surrogate" in err
    err.encode("utf-8")


def test_worker_refuses_a_location_that_is_no_url_nor_absolute_path(wheels: list[Path]) -> None:
    w = wheels[0]
    out = scan_one(f"foo:{w}", w.name, ScanConfig(judge=False, member_cache=False))
    assert out.status == "error"
    assert out.facts_json is None
    assert out.error is not None
    assert f"foo:{w}" in out.error
    assert "refused" in out.error


def test_links_to_another_origin_need_allow_host(wheels: list[Path]) -> None:
    w = wheels[0]
    with IndexServer([w]) as other:
        page = f'<a href="{other.file_url(w.name)}">{w.name}</a>'.encode()
        cfg = ServerConfig(flavour="html", routes={"/simple/p/": (200, {}, page)})
        with IndexServer([], cfg) as idx:
            disc = Discovery()
            assert list(iter_remote(f"{idx.base}/simple/p/", disc)) == []
            assert disc.refused == 1
            assert other.file_url(w.name) in disc.problems[0]
            assert "--allow-host" in disc.problems[0]
            disc = Discovery()
            refs = list(iter_remote(f"{idx.base}/simple/p/", disc, allow_hosts=("127.0.0.1",)))
            assert [r.location for r in refs] == [other.file_url(w.name)]
            assert disc.refused == 0
        assert other.acct.requests == {}  # listing never fetches a wheel


def test_redirects_stay_inside_the_policy_and_are_bounded(wheels: list[Path]) -> None:
    w = wheels[0]
    with IndexServer([w]) as other:
        target = other.file_url(w.name)
        routes = {
            "/files/away.whl": (302, {"Location": target}, b""),
            "/files/local.whl": (302, {"Location": "file:///etc/passwd"}, b""),
            "/files/loop.whl": (302, {"Location": "/files/loop.whl"}, b""),
            "/files/moved.whl": (301, {"Location": f"/files/{w.name}"}, b""),
        }
        with IndexServer([w], ServerConfig(routes=routes)) as srv:
            away = scan_remote(f"{srv.base}/files/away.whl", w.name, **FAST)
            assert away.error is not None
            assert target in away.error
            assert "redirected from" in away.error
            assert "--allow-host" in away.error
            assert other.acct.requests == {}
            local = scan_remote(f"{srv.base}/files/local.whl", w.name, **FAST)
            assert local.error is not None
            assert "file:///etc/passwd" in local.error
            assert "not an http(s) URL" in local.error
            loop = scan_remote(f"{srv.base}/files/loop.whl", w.name, **FAST)
            assert loop.error is not None
            assert "more than 5 redirects" in loop.error
            assert srv.acct.requests["/files/loop.whl"] == 6
            allowed = scan_remote(
                f"{srv.base}/files/away.whl", w.name, allow_hosts=("127.0.0.1",), **FAST
            )
            assert allowed.error is None
            assert other.file_bytes(w.name) > 0
            with HTTPFile(f"{srv.base}/files/moved.whl") as f:
                assert f.read(4) == b"PK\x03\x04"
                f.seek(f.size // 2)
                f.read(10)
                assert f.stats.redirects == 1
            assert srv.acct.requests["/files/moved.whl"] == 1  # later ranges go straight there
    assert scan_wheel(w).error is None


def test_a_backslash_cannot_split_the_host_two_ways(wheels: list[Path]) -> None:
    """urlsplit reads ``http://A\\@B/`` as host B, urllib3 (which connects) as host A: such a
    link or redirect must be refused, and A never asked for anything."""
    w = wheels[0]
    with IndexServer([w]) as other:
        port = other.base.rsplit(":", 1)[1].split("/")[0]
        routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        with IndexServer([w], ServerConfig(flavour="html", routes=routes)) as srv:
            host = srv.base.split("://", 1)[1].split("/")[0]
            sneaky = f"http://127.0.0.1:{port}\\@{host}/files/{w.name}"
            routes["/simple/p/"] = (200, {}, f'<a href="{sneaky}">{w.name}</a>'.encode())
            routes["/files/hop.whl"] = (302, {"Location": sneaky}, b"")
            disc = Discovery()
            assert list(iter_remote(f"{srv.base}/simple/p/", disc)) == []
            assert disc.refused == 1
            assert "cannot be read one way only" in disc.problems[0]
            hop = scan_remote(f"{srv.base}/files/hop.whl", w.name, **FAST)
            assert hop.error is not None
            assert "refused" in hop.error
            assert "redirected from" in hop.error
            with pytest.raises(RemoteError, match="refused"):
                HTTPFile(sneaky, policy=URLPolicy.for_url(srv.base), retries=0)
        assert other.acct.requests == {}


def test_trickled_response_headers_are_bounded_by_the_deadline() -> None:
    """A server that answers with one more header line every 0.25 s never lets a read time
    out; the deadline still ends the wheel on time."""
    import socket
    import threading

    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(10)
    port = lsock.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = lsock.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 206 Partial Content\r\n")
                for i in range(80):  # at most 20 s, then the server gives up by itself
                    if stop.wait(0.25):
                        break
                    conn.sendall(f"X-Drip-{i}: x\r\n".encode())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    url = f"http://127.0.0.1:{port}/files/drip-1.0-py3-none-manylinux2014_x86_64.whl"
    t0 = time.monotonic()
    try:
        facts = scan_remote(url, url.rsplit("/", 1)[1], wheel_timeout=2.0, **FAST)
    finally:
        took = time.monotonic() - t0
        stop.set()
        lsock.close()
        t.join(5)
    assert facts.error is not None
    assert url in facts.error
    assert "deadline of 2 s" in facts.error
    assert took < 4.0, took


# -- 3. deadlines and bounds ----------------------------------------------------------------------


@contextlib.contextmanager
def _dripping(head: bytes, drip: bytes, every: float = 0.25) -> Iterator[int]:
    """A raw server on 127.0.0.1 answering every request with ``head`` and then one byte of
    ``drip`` per ``every`` seconds (for at most 20 s): the port."""
    import socket
    import threading

    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(0.2)
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.recv(65536)
            conn.sendall(head)
            for i in range(int(20 / every)):
                if stop.wait(every):
                    break
                conn.sendall(drip[i % len(drip) : i % len(drip) + 1])

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield lsock.getsockname()[1]
    finally:
        stop.set()
        lsock.close()
        t.join(5)


_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
# a chunk-size line that never ends: "5;" then an endless chunk extension
_ENDLESS_CHUNK_LINE = b"5;" + b"x" * 200


def test_a_trickled_chunk_size_line_cannot_hold_a_wheel() -> None:
    """http.client reads a chunk-size line byte by byte from the socket; each byte restarts
    the read timeout, so only the deadline can end it."""
    head = _CHUNKED % b"application/octet-stream"
    with _dripping(head, _ENDLESS_CHUNK_LINE) as port:
        url = f"http://127.0.0.1:{port}/files/drip-1.0-py3-none-manylinux2014_x86_64.whl"
        t0 = time.monotonic()
        facts = scan_remote(url, url.rsplit("/", 1)[1], wheel_timeout=2.0, **FAST)
        took = time.monotonic() - t0
    assert facts.error is not None
    assert url in facts.error
    assert "deadline of 2 s" in facts.error
    assert took < 4.0, took


def test_a_trickled_chunk_size_line_cannot_hold_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "DEFAULT_WHEEL_TIMEOUT", 2.0)
    head = _CHUNKED % b"text/html"
    with _dripping(head, _ENDLESS_CHUNK_LINE) as port:
        url = f"http://127.0.0.1:{port}/simple/drip/"
        t0 = time.monotonic()
        with pytest.raises(RemoteError, match="deadline of 2 s") as info:
            fetch_page(url)
        took = time.monotonic() - t0
    assert url in str(info.value)
    assert took < 4.0, took



def test_a_trickling_server_cannot_hold_a_wheel(wheels: list[Path], tmp_path: Path) -> None:
    from wheelscan.cli.scan import ScanTarget, Scheduling, run_scan

    w = wheels[0]
    with IndexServer([w], ServerConfig(trickle=0.2)) as srv:  # 5 bytes/s, never a read timeout
        t0 = time.monotonic()
        facts = scan_remote(srv.file_url(w.name), w.name, wheel_timeout=2.0)
        took = time.monotonic() - t0
        assert facts.error is not None
        assert srv.file_url(w.name) in facts.error
        assert "deadline of 2 s" in facts.error
        assert "--wheel-timeout" in facts.error
        assert 1.9 <= took < 3.0, took
        db = tmp_path / "s.sqlite"
        summary = run_scan(ScanTarget([srv.file_url(w.name)], str(db)),
                           config=ScanConfig(wheel_timeout=1.0), scheduling=Scheduling(jobs=1))
    assert summary.counts == {"error": 1}
    ((_, error, _),) = _rows(db).values()
    assert error is not None
    assert "deadline of 1 s" in error


def test_gzip_bomb_page_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "MAX_PAGE_BYTES", 1 << 20)
    bomb = gzip.compress(b" " * (64 << 20), compresslevel=1)  # 64 MiB of spaces: valid JSON pad
    good = {"meta": {"api-version": "1.1"}, "name": "p",
            "files": [{"filename": "p-1-py3-none-any.whl", "url": "p-1-py3-none-any.whl",
                       "hashes": {}}]}  # fmt: skip
    gz = {"Content-Encoding": "gzip", "Content-Type": remote.JSON_TYPE}
    routes = {
        "/simple/bomb/": (200, gz, bomb),
        "/simple/ok/": (200, gz, gzip.compress(json.dumps(good).encode())),
        "/simple/br/": (200, {"Content-Encoding": "br"}, b"xx"),
    }
    with IndexServer([], ServerConfig(routes=routes)) as srv:
        with pytest.raises(RemoteError, match=r"/simple/bomb/: refused: page decodes to more"):
            fetch_page(f"{srv.base}/simple/bomb/")
        assert srv.acct.body_bytes["/simple/bomb/"] == len(bomb) < (1 << 20)
        page = fetch_page(f"{srv.base}/simple/ok/")
        assert [f["url"] for f in page.files] == [f"{srv.base}/simple/ok/p-1-py3-none-any.whl"]
        with pytest.raises(RemoteError, match=r"/simple/br/: refused: unsupported Content-Enc"):
            fetch_page(f"{srv.base}/simple/br/")


@pytest.mark.parametrize("chunked", [False, True])
def test_pages_chunked_and_coded_within_the_cap(
    monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    """Bodies are read one socket read at a time (for the deadline): chunked transfer coding
    and gzip still come out whole, and the cap counts decoded bytes either way."""
    monkeypatch.setattr(remote, "MAX_PAGE_BYTES", 4096)
    names = [f"p-{i}-py3-none-any.whl" for i in range(40)]
    doc = {"meta": {"api-version": "1.1"}, "name": "p",
           "files": [{"filename": n, "url": n, "hashes": {}} for n in names]}  # fmt: skip
    raw = json.dumps(doc).encode()
    big = json.dumps({**doc, "pad": " " * 5000}).encode()
    gz = {"Content-Encoding": "gzip", "Content-Type": remote.JSON_TYPE}
    routes = {
        "/simple/plain/": (200, {"Content-Type": remote.JSON_TYPE}, raw),
        "/simple/gz/": (200, gz, gzip.compress(raw)),
        "/simple/big/": (200, gz, gzip.compress(big)),
        "/simple/zlib/": (200, {**gz, "Content-Encoding": "deflate"}, zlib.compress(raw)),
        "/simple/rawdeflate/": (200, {**gz, "Content-Encoding": "deflate"},
                                zlib.compress(raw, wbits=-15)),
    }
    assert len(raw) < 4096 < len(big)
    assert len(gzip.compress(big)) < 4096
    with IndexServer([], ServerConfig(routes=routes, chunked=chunked)) as srv:
        for p in ("plain", "gz", "zlib", "rawdeflate"):
            page = fetch_page(f"{srv.base}/simple/{p}/")
            assert [f["filename"] for f in page.files] == names
        with pytest.raises(RemoteError, match="refused: page decodes to more than 4096 bytes"):
            fetch_page(f"{srv.base}/simple/big/")


def test_content_coded_wheel_bytes_are_refused(wheels: list[Path]) -> None:
    w = wheels[0]
    routes = {"/files/gz.whl": (200, {"Content-Encoding": "gzip"}, gzip.compress(w.read_bytes()))}
    with IndexServer([], ServerConfig(routes=routes)) as srv:
        url = f"{srv.base}/files/gz.whl"
        facts = scan_remote(url, w.name, **FAST)
    assert facts.error is not None
    assert url in facts.error
    assert "refused: answered with Content-Encoding 'gzip'" in facts.error


def test_page_links_and_nesting_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://127.0.0.1:1/simple/p/"
    deep = b'{"files": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    with pytest.raises(RemoteError, match=r"refused: JSON nested 10001 deep \(limit 32\)"):
        parse_page(url, remote.JSON_TYPE, deep)
    # brackets inside strings are not nesting
    ok = json.dumps({"files": [{"filename": "[" * 100 + ".whl", "url": "x.whl"}]}).encode()
    assert len(parse_page(url, remote.JSON_TYPE, ok).files) == 1
    monkeypatch.setattr(remote, "MAX_LINKS", 10)
    many = "".join(f'<a href="p-{i}-py3-none-any.whl">x</a>' for i in range(11)).encode()
    with pytest.raises(RemoteError, match=r"refused: 11 links \(limit 10\)"):
        parse_page(url, "text/html", many)
    files = json.dumps({"files": [{"filename": "a.whl", "url": "a.whl"}] * 11}).encode()
    with pytest.raises(RemoteError, match=r"refused: 11 files entries \(limit 10\)"):
        parse_page(url, remote.JSON_TYPE, files)
    assert len(parse_page(url, "text/html", many[: many.rindex(b"<a")]).files) == 10


# -- 5. fuzzing the page parsers ------------------------------------------------------------------

_BASE = "http://127.0.0.1:8080/simple/p/"
_HREFS = st.one_of(
    st.sampled_from(["/etc/x.whl", "file:///x.whl", "foo:/x.whl", "//evil:1/x.whl", "x.whl",
                     "../../f/x.whl#sha256=00", "http://127.0.0.1:8080/x.whl", "https://a/x.whl",
                     "http://[::1/x.whl", "http://127.0.0.1:99999/x.whl", "javascript:x.whl"]),
    st.text(max_size=30),
)  # fmt: skip


def _only_allowed(page: remote.IndexPage) -> None:
    """Whatever the page says, every wheel it yields is an http URL on the index's origin."""
    policy = URLPolicy.for_url(_BASE)
    disc = Discovery()
    for ref in remote._refs(page, disc, policy):
        assert ref.location.startswith("http://127.0.0.1:8080/"), ref.location
    for _name, link in page.projects:
        assert isinstance(link, str)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.one_of(st.none(), _HREFS),
    links=st.lists(st.tuples(_HREFS, st.text(max_size=20)), max_size=8),
    noise=st.binary(max_size=64),
)
def test_fuzz_html_page(base: str | None, links: list[tuple[str, str]], noise: bytes) -> None:
    parts = [f'<base href="{base}">'] if base is not None else []
    parts += [f'<a href="{h}" data-yanked>{t}.whl</a>' for h, t in links]
    body = "".join(parts).encode("utf-8", "surrogatepass") + noise
    try:
        page = parse_page(_BASE, "text/html", body)
    except RemoteError:
        return
    _only_allowed(page)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10) | _HREFS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["files", "projects", "url", "filename", "hashes", "name", "size",
                         "yanked", "upload-time", "sha256"]), inner, max_size=5),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_JSON, raw=st.binary(max_size=40))
def test_fuzz_json_page(doc: object, raw: bytes) -> None:
    for body in (json.dumps(doc).encode(), raw):
        try:
            page = parse_page(_BASE, remote.JSON_TYPE, body)
        except RemoteError:
            continue
        _only_allowed(page)


# -- the deadline watchdog --------------------------------------------------------------------


def test_the_watchdog_shuts_a_socket_down_when_its_deadline_passes() -> None:
    """A read blocked on a silent peer returns (end of stream) once the deadline passes,
    long before the socket's own timeout would."""
    import socket

    from wheelscan.mirror.httpfile import Watchdog

    wd = Watchdog()
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(30)  # a hang guard only: the watchdog must end the read
        wd.watch(a, time.monotonic() + 0.05)
        assert a.recv(1) == b""
    assert wd.cuts == 1
    assert wd.watching() == 0


def test_a_cancelled_watch_leaves_the_socket_alone() -> None:
    import socket

    from wheelscan.mirror.httpfile import Watchdog

    wd = Watchdog()
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    with a, b, c, d:
        wd.cancel(wd.watch(a, time.monotonic() + 0.02))
        c.settimeout(30)
        wd.watch(c, time.monotonic() + 0.1)  # later than a's: once c is cut, a's time is past
        assert c.recv(1) == b""
        b.sendall(b"x")
        a.settimeout(5)
        assert a.recv(1) == b"x"  # a was not shut down
    assert wd.cuts == 1


def test_the_watchdog_is_one_thread_and_forgets_cancelled_watches() -> None:
    """Many requests, each watched and then done: one thread for all of them, and the
    entries of finished requests do not pile up until their (far) deadlines."""
    import socket
    import threading

    from wheelscan.mirror.httpfile import Watchdog

    wd = Watchdog()
    before = {t.ident for t in threading.enumerate()}
    a, b = socket.socketpair()
    with a, b:
        far = time.monotonic() + 3600
        for _ in range(5000):
            wd.cancel(wd.watch(a, far))
        kept = wd.watch(a, far)
        new = [t for t in threading.enumerate() if t.ident not in before]
        assert [t.name for t in new] == ["wheelscan-watchdog"]
        assert len(wd._heap) < 200
        assert wd.watching() == 1
        wd.cancel(kept)
    assert wd.cuts == 0
