"""Remote scans over a real HTTP server on 127.0.0.1: same facts and verdicts as local scans.

The server (tests/helpers/httpserver.py) serves the fixture corpus as a PEP 691 JSON / PEP 503 HTML
index, with and without range support, and with injected faults (500s, dropped connections,
slow and stalled answers). The expected values are the local scans of the same files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import urllib3
from helpers.httpserver import IndexServer, ServerConfig

from wheelscan import judge, scan_wheel
from wheelscan.mirror.httpfile import HTTPFile, RemoteError
from wheelscan.mirror.remote import fetch_page, iter_remote, scan_remote
from wheelscan.mirror.sources import Discovery

if TYPE_CHECKING:
    from collections.abc import Iterator

    from helpers.corpus import Corpus

    from wheelscan.facts import WheelFacts

FAST = {"timeout": 0.5, "backoff": 0.01}  # client settings: a stall (1.5 s) times out

CONFIGS = {
    "json-ranges": ServerConfig(flavour="json"),
    "json-ranges-no-suffix": ServerConfig(flavour="json", no_suffix=True),
    "html-ranges": ServerConfig(flavour="html"),
    "json-no-ranges": ServerConfig(flavour="json", ranges=False),
    "html-no-ranges-faults": ServerConfig(flavour="html", ranges=False, faults=("500", "drop")),
    "json-ranges-faults": ServerConfig(faults=("500", "drop", "slow", "stall"), fault_every=2),
}


@pytest.fixture(scope="module")
def wheels(corpus: Corpus) -> list[Path]:
    return [w.path for w in corpus.wheels]


@pytest.fixture(scope="module")
def local(wheels: list[Path]) -> dict[str, WheelFacts]:
    return {p.name: scan_wheel(p) for p in wheels}


def comparable(facts: WheelFacts) -> dict[str, object]:
    """Facts minus the byte counters that depend on how bytes arrived (chunking, transfer)."""
    d = facts.to_dict()
    d.pop("transferred")
    d["members"] = [
        (m["member"], m["method"], m["size"], m["compressed_size"]) for m in d["members"]
    ]
    return d


@pytest.fixture(params=list(CONFIGS), scope="module")
def served(request: pytest.FixtureRequest, wheels: list[Path]) -> Iterator[IndexServer]:
    with IndexServer(wheels, dataclasses.replace(CONFIGS[request.param])) as srv:
        yield srv


def test_index_scan_matches_local(served: IndexServer, local: dict[str, WheelFacts]) -> None:
    disc = Discovery()
    refs = list(iter_remote(f"{served.base}/simple/", disc))
    assert sorted(r.filename for r in refs) == sorted(local)
    assert disc.problems == []
    assert disc.non_wheels == len(served.projects())  # one sdist per project page
    for ref in refs:
        assert ref.content_hash == f"sha256:{served.files[ref.filename].sha256}"
        facts = scan_remote(ref.location, ref.filename, **FAST)
        want = local[ref.filename]
        assert comparable(facts) == comparable(want), ref.filename
        assert judge(facts).to_dict() == judge(want).to_dict(), ref.filename
        full = len(served.files[ref.filename].data)
        assert facts.size == full
        assert facts.transferred is not None
        assert facts.transferred > 0
        if not served.config.ranges and not served.config.faults:
            assert facts.transferred == full  # streamed once, whole
    if served.config.faults:
        assert sum(served.acct.faults.values()) >= 3, served.acct.faults


@pytest.mark.parametrize("flavour", ["json", "html"])
def test_content_negotiation(wheels: list[Path], flavour: str) -> None:
    with IndexServer(wheels[:2], ServerConfig(flavour=flavour)) as srv:
        root = fetch_page(f"{srv.base}/simple/")
        assert root.kind == flavour
        assert not root.is_project
        assert [n for n, _ in root.projects] == srv.projects()
        page = fetch_page(root.projects[0][1])
        assert page.kind == flavour
        assert page.is_project
        names = {f["filename"] for f in page.files}
        assert {f.name for f in srv.project_files(srv.projects()[0])} < names


def test_project_filter_reads_only_those_pages(wheels: list[Path]) -> None:
    with IndexServer(wheels) as srv:
        wanted = srv.projects()[1]
        refs = list(iter_remote(f"{srv.base}/simple", Discovery(), [wanted.upper()]))
        assert {r.project for r in refs} == {wanted}
        assert set(srv.acct.requests) == {f"/simple/{wanted}/"}


def test_html_without_hashes(wheels: list[Path]) -> None:
    with IndexServer(wheels[:1], ServerConfig(flavour="html", html_hash_fragment=False)) as srv:
        (ref,) = list(iter_remote(f"{srv.base}/simple/", Discovery()))
        assert ref.content_hash is None
        assert "#" not in ref.location


def test_server_that_keeps_failing(wheels: list[Path]) -> None:
    bad, good = wheels[0], wheels[1]
    cfg = ServerConfig(always_fail=frozenset({f"/files/{bad.name}"}))
    with IndexServer([bad, good], cfg) as srv:
        facts = scan_remote(srv.file_url(bad.name), bad.name, **FAST)
        assert facts.error is not None
        assert srv.file_url(bad.name) in facts.error
        assert "HTTP 500" in facts.error
        assert srv.acct.requests[f"/files/{bad.name}"] == 5  # 1 + 4 retries, then give up
        assert judge(facts).status == "error"
        ok = scan_remote(srv.file_url(good.name), good.name, **FAST)
        assert ok.error is None


def test_whole_file_hash_is_verified(wheels: list[Path]) -> None:
    w = wheels[0]
    with IndexServer([w], ServerConfig(ranges=False)) as srv:
        wrong = "0" * 64
        facts = scan_remote(f"{srv.file_url(w.name)}#sha256={wrong}", w.name, **FAST)
        assert facts.error is not None
        assert "sha256" in facts.error
        assert wrong in facts.error
        right = hashlib.sha256(w.read_bytes()).hexdigest()
        with HTTPFile(f"{srv.file_url(w.name)}#sha256={right}") as f:
            assert f.stats.whole_file
            assert f.stats.verified == f"sha256:{right}"


def test_httpfile_random_reads(wheels: list[Path]) -> None:
    w = max(wheels, key=lambda p: p.stat().st_size)
    data = w.read_bytes()
    rng = random.Random(3)
    with IndexServer([w]) as srv, HTTPFile(srv.file_url(w.name), tail=1024, min_fetch=512) as f:
        assert f.seek(0, 2) == len(data)
        for _ in range(300):
            off = rng.randrange(len(data) + 10)
            n = rng.choice([0, 1, 7, 100, 5000, 40000])
            f.seek(off)
            assert f.read(n) == data[off : off + n], (off, n)
        ranges = f.ranges()
        assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))  # coalesced, disjoint
        assert f.stats.body_bytes == srv.file_bytes(w.name) == f.cached_bytes
        f.seek(0)
        assert f.read() == data
        assert f.ranges() == [(0, len(data))]
        want = hashlib.sha256(data).hexdigest()
        assert f.stats.verified is None  # no expected hash given
    with IndexServer([w]) as srv, HTTPFile(f"{srv.file_url(w.name)}#sha256={want}") as f:
        f.seek(0)
        f.read()
        assert f.stats.verified == f"sha256:{want}"  # read whole through ranges: checked too


def test_missing_wheel_is_a_clear_error(wheels: list[Path]) -> None:
    with IndexServer(wheels[:1]) as srv:
        gone = srv.file_url("x.whl")  # nothing listens there once the server stops
        facts = scan_remote(srv.file_url("nope-1.0-py3-none-any.whl"), "nope-1.0-py3-none-any.whl")
        assert facts.error is not None
        assert "HTTP 404" in facts.error
    with pytest.raises(RemoteError, match=r"Connection refused|NewConnectionError"):
        # a fresh pool: the shared one may keep a live connection to the stopped server
        HTTPFile(gone, retries=1, backoff=0.01, pool=urllib3.PoolManager())


def _db_rows(db: Path) -> dict[str, tuple[str, str | None]]:
    con = sqlite3.connect(db)
    try:
        return {
            str(f): (str(s), c)
            for f, s, c in con.execute("SELECT filename, status, content_hash FROM wheels")
        }
    finally:
        con.close()


def test_cli_scan_url_same_store_as_local(wheels: list[Path], tmp_path: Path) -> None:
    local_db, remote_db = tmp_path / "local.sqlite", tmp_path / "remote.sqlite"
    tree = tmp_path / "tree"
    tree.mkdir()
    for w in wheels:
        (tree / w.name).symlink_to(w)
    base = [sys.executable, "-m", "wheelscan", "scan", "-j", "2", "-q"]
    subprocess.run([*base, str(tree), "--db", str(local_db)], capture_output=True, check=False)
    with IndexServer(wheels, ServerConfig(faults=("500", "drop"))) as srv:
        r = subprocess.run(
            [*base, f"{srv.base}/simple/", "--db", str(remote_db)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert "remote wheels" in r.stderr, r.stderr
        assert "MB fetched of" in r.stderr, r.stderr
        remote = _db_rows(remote_db)
        assert {f: s for f, (s, _) in remote.items()} == {
            f: s for f, (s, _) in _db_rows(local_db).items()
        }
        assert all(c == f"sha256:{srv.files[f].sha256}" for f, (_, c) in remote.items())
        # a re-run skips every wheel: same URL, same hash
        r2 = subprocess.run(
            [*base, f"{srv.base}/simple/", "--db", str(remote_db)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert f"(0 scanned, {len(wheels)} unchanged)" in r2.stderr, r2.stderr


def test_big_reads_are_split_and_bounded(wheels: list[Path]) -> None:
    w = max(wheels, key=lambda p: p.stat().st_size)
    data = w.read_bytes()
    with IndexServer([w]) as srv, HTTPFile(srv.file_url(w.name), tail=100, max_fetch=4096) as f:
        f.seek(1000)
        assert f.read(30000) == data[1000:31000]
        sizes = []
        for _, rng in srv.acct.ranges[1:]:
            a, b = rng.removeprefix("bytes=").split("-")
            sizes.append(int(b) - int(a) + 1)
        assert max(sizes) <= 4096
        # nothing fetched twice; beyond the read, at most one minimum fetch of read-ahead
        assert 30000 <= sum(sizes) < 30000 + 4096


@pytest.mark.parametrize(("lie", "message"), [("shift", "asked for bytes"), ("to-end", "got")])
def test_server_answering_other_ranges(wheels: list[Path], lie: str, message: str) -> None:
    w = max(wheels, key=lambda p: p.stat().st_size)  # bigger than the tail: ranges are needed
    with IndexServer([w], ServerConfig(lie=lie)) as srv:
        facts = scan_remote(srv.file_url(w.name), w.name, **FAST)
        assert facts.error is not None
        assert srv.file_url(w.name) in facts.error
        assert message in facts.error


def _hostile_variants(good: bytes) -> dict[str, bytes]:
    eocd = good.rindex(b"PK\x05\x06")
    rng = random.Random(11)
    out = {
        "empty": b"",
        "ten-bytes": b"0123456789",
        "truncated-half": good[: len(good) // 2],
        "truncated-tail": good[:-5],
        "garbage-appended": good + rng.randbytes(3000),
        "cd-offset-past-end": good[: eocd + 16] + (len(good) + 100).to_bytes(4, "little")
        + good[eocd + 20 :],
        "cd-size-huge": good[: eocd + 12] + (0x7FFFFFFF).to_bytes(4, "little") + good[eocd + 16 :],
    }  # fmt: skip
    for i in range(12):
        b = bytearray(good)
        for _ in range(8):
            b[rng.randrange(len(b))] = rng.randrange(256)
        out[f"flipped-{i}"] = bytes(b)
    return out


def test_hostile_archives_same_as_local_file_object(wheels: list[Path], tmp_path: Path) -> None:
    """Broken archives over HTTP give the facts (and errors) a local file object gives: the
    same reader, the same inflater, the same steps (error texts name the inflater's message)."""
    from wheelscan.read.native import scan_wheel_native

    good = next(p for p in wheels if "x86_64_deflate" in p.name)
    paths = []
    for cid, data in _hostile_variants(good.read_bytes()).items():
        d = tmp_path / cid
        d.mkdir()
        p = d / good.name.replace("fixture_", f"h{cid.replace('-', '_')}_")
        p.write_bytes(data)
        paths.append(p)
    broken = 0
    with IndexServer(paths) as srv:
        for p in paths:
            with open(p, "rb") as f:
                want = scan_wheel_native(f, filename=p.name)
            got = scan_remote(srv.file_url(p.name), p.name, **FAST)
            assert comparable(got) == comparable(want), p.parent.name
            broken += bool(got.error or got.errors)
    assert broken >= 8  # the variants do break things (empty, truncated, CD offsets, flips)
