"""Read-aheads of remote wheels (``httpfile.AHEAD``): the first windows of the next members the
scan reads are fetched while the reader works on the current one.

A real server on 127.0.0.1 with a round trip of latency; a wheel shaped like numpy's (big
libraries, small candidates scattered between members the scan skips). What is checked: the
facts equal a local scan's; read-aheads happen and overlap the reader's own requests; no byte
range is fetched twice; and an answer that fails or lies (a fault on the first attempt of every
range) is dropped, the reader asking again, with the same facts. (An answer for other
bytes than asked is refused as every range answer is: tests/integration/test_remote.py.)
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.builders import make_wheel
from helpers.httpserver import IndexServer, ServerConfig
from test_remote_bytes import _big_elf, _code_like_bytes

from wheelscan import scan_wheel
from wheelscan.mirror.httpfile import HTTPFile
from wheelscan.mirror.remote import scan_remote

KiB = 1024
LATENCY = 0.03


@pytest.fixture(scope="module")
def numpy_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("remote-ahead")
    src = _code_like_bytes()
    rng = random.Random(11)
    # libraries over BIG_MEMBER compressed (head first, then the rest), and members the scan
    # skips between the candidates, over GAP_MAX each (no window runs across them)
    libs = [_big_elf(root / "b", f"libm{i}.so", src[i * 100_000 :][:400_000],
                     rng.randbytes(400 * KiB)) for i in range(3)]  # fmt: skip
    files: dict[str, bytes | Path] = {}
    for i in range(6):
        files[f"pkg/data/blob{i}"] = rng.randbytes(300) + b"not an ELF file\n" * 20
        files[f"pkg/mod{i}.py"] = rng.randbytes(100 * KiB)
        if i < 3:
            files[f"pkg/_m{i}.so"] = libs[i]
    tag = "cp311-cp311-manylinux_2_17_x86_64"
    return make_wheel(root / "w", f"numpylike-1.0-{tag}.whl", files)


def _timed(srv: IndexServer) -> list[tuple[float, float, str]]:
    """(start, end, Range) of every answer the server gives from now on."""
    log: list[tuple[float, float, str]] = []
    lock = threading.Lock()
    assert srv.httpd is not None
    handler: Any = srv.httpd.RequestHandlerClass
    inner = handler.do_GET

    def do_get(self: Any) -> None:
        t = time.monotonic()
        inner(self)
        with lock:
            log.append((t, time.monotonic(), self.headers.get("Range", "")))

    handler.do_GET = do_get
    return log


def _ranges(log: list[tuple[float, float, str]]) -> list[tuple[int, int]]:
    out = []
    for _, _, rng in log:
        if rng.startswith("bytes=") and not rng.startswith("bytes=-"):
            a, b = rng.removeprefix("bytes=").split("-")
            out.append((int(a), int(b) + 1))
    return out


def test_read_aheads_overlap_the_reader_and_fetch_nothing_twice(numpy_like: Path) -> None:
    local = scan_wheel(numpy_like)
    with IndexServer([numpy_like], ServerConfig(latency=LATENCY)) as srv:
        log = _timed(srv)
        with HTTPFile(srv.file_url(numpy_like.name)) as f:
            facts = scan_wheel(f, filename=numpy_like.name, ranged=True)  # type: ignore[arg-type]
            stats = f.stats
            ranges = f.ranges()
    assert facts.to_dict()["elfs"] == local.to_dict()["elfs"]
    assert stats.read_aheads >= 3
    assert stats.read_aheads_used == stats.read_aheads
    # some read-ahead was on the wire while another request of the file was
    spans = sorted((a, b) for a, b, _ in log)
    assert any(b1 > a2 + LATENCY / 2 for (_, b1), (a2, _) in itertools.pairwise(spans))
    # no byte asked for twice, and the cache holds exactly what was asked
    asked = sorted(_ranges(log))
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(asked)), asked
    assert sum(b - a for a, b in ranges) == stats.body_bytes


def test_failed_read_aheads_are_asked_again(numpy_like: Path) -> None:
    local = scan_wheel(numpy_like)
    # the first attempt of every range fails (a 500, a dropped answer, a cut one): a
    # read-ahead makes one attempt and is dropped; the reader's own request retries
    cfg = ServerConfig(latency=0.005, faults=("500", "drop"), fault_every=1)
    with IndexServer([numpy_like], dataclasses.replace(cfg)) as srv:
        facts = scan_remote(srv.file_url(numpy_like.name), numpy_like.name,
                            timeout=2.0, backoff=0.01)  # fmt: skip
        faults = sum(srv.acct.faults.values())
    assert facts.error is None
    assert facts.to_dict()["elfs"] == local.to_dict()["elfs"]
    assert faults > 0
