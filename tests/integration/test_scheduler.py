"""The local pool: same facts as an in-process scan, batching, streaming, dead and hung workers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers.mirror import (
    HONEST_NEW,
    LYING_NEW,
    Elfs,
    engine_for_tests,
    shared_elfs,
    wheel,
    without_byte_accounting,
)

from wheelscan import scan_wheel
from wheelscan.mirror.pool import LocalPool, ScanConfig
from wheelscan.mirror.sources import Discovery, iter_tree
from wheelscan.mirror.store import MIN_CACHED, Store

if TYPE_CHECKING:
    from collections.abc import Iterator

    from wheelscan.mirror.sources import WheelRef
    from wheelscan.mirror.store import Outcome

ENGINE = engine_for_tests()


@pytest.fixture(scope="module")
def elfs(tmp_path_factory: pytest.TempPathFactory) -> Elfs:
    return shared_elfs(tmp_path_factory.mktemp("elfs"))


@pytest.fixture(scope="module")
def wheels(elfs: Elfs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Wheel directory -> expected status, known by construction."""
    d = tmp_path_factory.mktemp("wheels")
    expected: dict[str, str] = {}
    for i, py in enumerate(("cp39", "cp310", "cp311", "cp312")):
        for plat in HONEST_NEW:
            w = wheel(d, elfs, f"honest{i}", "1.0", py, plat, needs_new=True, bundle=True)
            expected[w.name] = "ok"
        for plat in LYING_NEW:
            w = wheel(d, elfs, f"liar{i}", "2.0", py, plat, needs_new=True, bundle=i % 2 == 0)
            expected[w.name] = "mislabelled"
        w = wheel(d, elfs, f"oldie{i}", "0.1", py, "manylinux1_x86_64", needs_new=False)
        expected[w.name] = "ok"
    (d / "broken-1.0-py3-none-manylinux1_x86_64.whl").write_bytes(b"not a zip at all" * 10)
    expected["broken-1.0-py3-none-manylinux1_x86_64.whl"] = "error"
    (d / "victim-1.0-py3-none-manylinux2014_x86_64.whl").write_bytes(
        (d / next(iter(expected))).read_bytes()
    )
    expected["victim-1.0-py3-none-manylinux2014_x86_64.whl"] = "ok"
    return {str(d): json.dumps(expected)}


def _dir_and_expected(wheels: dict[str, str]) -> tuple[Path, dict[str, str]]:
    (d, exp), = wheels.items()
    return Path(d), json.loads(exp)


def _run(pool: LocalPool, refs: Iterator[WheelRef] | list[WheelRef]) -> dict[str, Outcome]:
    outs: dict[str, Outcome] = {}

    def on_result(ref: WheelRef, out: Outcome) -> None:
        assert ref.filename not in outs, f"{ref.filename} reported twice"
        assert out.location == ref.location
        outs[ref.filename] = out

    pool.run(refs, on_result)
    return outs


def test_pool_gives_the_facts_of_an_in_process_scan(wheels: dict[str, str]) -> None:
    d, expected = _dir_and_expected(wheels)
    pool = LocalPool(ScanConfig(engine=ENGINE), jobs=2, batch_wheels=3)
    outs = _run(pool, iter_tree(d, Discovery()))
    assert set(outs) == set(expected)
    assert {n: o.status for n, o in outs.items()} == expected
    for name, out in outs.items():
        direct = scan_wheel(d / name, ENGINE).to_dict()
        assert out.facts_json is not None
        got = json.loads(out.facts_json)
        assert without_byte_accounting(got) == without_byte_accounting(direct), name
    assert "broken-1.0" in (outs["broken-1.0-py3-none-manylinux1_x86_64.whl"].error or "")
    assert pool.deaths == 0


def _kill_when_hung(pidfile: Path, sig: int = signal.SIGKILL) -> threading.Thread:
    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if pidfile.exists() and pidfile.read_text():
                os.kill(int(pidfile.read_text()), sig)
                return
            time.sleep(0.02)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    return t


def test_worker_killed_mid_wheel_loses_only_that_wheel(
    wheels: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, expected = _dir_and_expected(wheels)
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("WHEELSCAN_TEST_HANG", "victim")  # read by the spawned workers
    monkeypatch.setenv("WHEELSCAN_TEST_PIDFILE", str(pidfile))
    cfg = ScanConfig(engine=ENGINE)
    pool = LocalPool(cfg, jobs=2, batch_wheels=4)
    killer = _kill_when_hung(pidfile)
    outs = _run(pool, iter_tree(d, Discovery()))
    killer.join()
    assert set(outs) == set(expected)  # nothing else lost, nothing twice
    victim = outs.pop("victim-1.0-py3-none-manylinux2014_x86_64.whl")
    assert victim.status == "error"
    assert "SIGKILL" in (victim.error or "")
    assert "victim-1.0" in (victim.error or "")
    assert {n: o.status for n, o in outs.items()} == {
        n: s for n, s in expected.items() if not n.startswith("victim")
    }
    assert pool.deaths == 1


def test_time_cap_kills_a_hung_wheel(
    wheels: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, expected = _dir_and_expected(wheels)
    monkeypatch.setenv("WHEELSCAN_TEST_HANG", "victim")
    cfg = ScanConfig(engine=ENGINE)
    pool = LocalPool(cfg, jobs=2, batch_wheels=4, timeout=1.5)
    outs = _run(pool, iter_tree(d, Discovery()))
    assert set(outs) == set(expected)
    victim = outs["victim-1.0-py3-none-manylinux2014_x86_64.whl"]
    assert (victim.status, victim.error) == (
        "error",
        "victim-1.0-py3-none-manylinux2014_x86_64.whl: timed out after 1.5 s",
    )
    assert pool.timeouts == 1


def test_first_results_arrive_while_listing(wheels: dict[str, str]) -> None:
    d, _expected = _dir_and_expected(wheels)
    refs = [r for r in iter_tree(d, Discovery()) if not r.filename.startswith("victim")]
    listed_at_first_result: list[int] = []
    listed = 0

    def slow_listing() -> Iterator[WheelRef]:
        # an endless, slow mirror (30 ms per entry) that stops a little after the first result
        nonlocal listed
        while listed < 2000:
            for r in refs:
                if listed_at_first_result and listed >= listed_at_first_result[0] + 5:
                    return
                time.sleep(0.03)
                listed += 1
                yield r

    def on_result(ref: WheelRef, out: Outcome) -> None:
        if not listed_at_first_result:
            listed_at_first_result.append(listed)

    LocalPool(ScanConfig(engine=ENGINE), jobs=2, batch_wheels=4).run(slow_listing(), on_result)
    assert listed_at_first_result, "no result before 2000 wheels were listed"
    assert listed_at_first_result[0] < listed < 2000


def test_member_cache_fills_the_store(
    wheels: dict[str, str], elfs: Elfs, tmp_path: Path
) -> None:
    d, _expected = _dir_and_expected(wheels)

    def compressed(path: Path) -> int:  # as builders.make_wheel deflates a member
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return len(c.compress(path.read_bytes()) + c.flush())

    for min_size, worth in ((0, 3), (MIN_CACHED, None)):
        db = str(tmp_path / f"s{min_size}.sqlite")
        store = Store(db)
        cfg = ScanConfig(engine=ENGINE, db_path=db, cache_min_size=min_size)
        LocalPool(cfg, jobs=2, batch_wheels=4).run(iter_tree(d, Discovery()), store.record)
        store.close()
        con = sqlite3.connect(db)
        (keys,) = con.execute("SELECT count(*) FROM members").fetchone()
        (dups,) = con.execute(
            "SELECT count(*) - count(DISTINCT hex(digest) || size || csize || method) FROM members"
        ).fetchone()
        con.close()
        if min_size == 0 and keys == 0:
            pytest.skip(f"the {ENGINE} engine does not use the member cache")
        if worth is None:  # only members big enough to be worth a lookup are kept
            worth = sum(compressed(p) >= MIN_CACHED for p in (elfs.old, elfs.new, elfs.bundled))
        # distinct ELF files (old.so, new.so, the vendored library), compressed identically
        assert (keys, dups) == (worth, 0), min_size


def test_a_worker_running_several_wheels_at_once_blames_only_the_culprit(
    wheels: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With threads (remote scans) a worker holds several wheels when it dies: none is blamed
    then; each runs again alone, and the one whose worker dies alone is the culprit."""
    d, expected = _dir_and_expected(wheels)
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("WHEELSCAN_TEST_HANG", "victim")
    monkeypatch.setenv("WHEELSCAN_TEST_PIDFILE", str(pidfile))
    killed: list[int] = []

    def killer() -> None:  # every worker that hangs on the victim is killed
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(killed) < 2:
            text = pidfile.read_text() if pidfile.exists() else ""
            if text and int(text) not in killed:
                killed.append(int(text))
                os.kill(int(text), signal.SIGKILL)
            time.sleep(0.02)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    pool = LocalPool(ScanConfig(engine=ENGINE, threads=4), jobs=1, batch_wheels=8)
    outs = _run(pool, iter_tree(d, Discovery()))
    t.join()
    assert set(outs) == set(expected)
    victim = outs.pop("victim-1.0-py3-none-manylinux2014_x86_64.whl")
    assert "SIGKILL" in (victim.error or "")
    assert {n: o.status for n, o in outs.items()} == {
        n: s for n, s in expected.items() if not n.startswith("victim")
    }
    assert pool.deaths == 2  # once among the others, once alone


class _PidWorker:
    """A worker that only says which process it is (built in each spawned worker by name)."""

    def __init__(self, cfg: ScanConfig) -> None:
        self.pid = str(os.getpid())

    def scan(self, location: str, filename: str) -> Outcome:
        from wheelscan.mirror.store import Outcome

        return Outcome(location, filename, "ok", error=self.pid)


def test_a_few_big_wheels_go_one_to_each_worker() -> None:
    """Each worker may hold two batches, but none gets its second before every worker has a
    first: two wheels bigger than a batch must run side by side, not one after the other."""
    from wheelscan.mirror.sources import WheelRef

    refs = [WheelRef(f"/nowhere/w{i}.whl", f"w{i}.whl", size=64 << 20) for i in range(2)]
    outs = _run(LocalPool(ScanConfig(), jobs=2, worker=_PidWorker), refs)
    assert set(outs) == {"w0.whl", "w1.whl"}
    pids = {o.error for o in outs.values()}
    assert len(pids) == 2, pids
    assert str(os.getpid()) not in pids


_MAIN_SCRIPT = """
import sys
from pathlib import Path

with open(sys.argv[1], "a") as f:  # runs in every process that runs this script
    f.write("ran\\n")

from wheelscan.mirror.pool import LocalPool, ScanConfig
from wheelscan.mirror.refs import WheelRef


class Echo:  # a worker defined here: the workers must run this script to find it
    def __init__(self, cfg):
        pass

    def scan(self, location, filename):
        from wheelscan.mirror.store import Outcome

        return Outcome(location, filename, "ok")


if __name__ == "__main__":
    out = []
    refs = [WheelRef(location=f"/nowhere/w{i}-1.0-py3-none-any.whl",
                     filename=f"w{i}-1.0-py3-none-any.whl") for i in range(4)]
    kw = {"worker": Echo} if sys.argv[2] == "own" else {}
    LocalPool(ScanConfig(judge=False, member_cache=False), jobs=2, **kw).run(
        refs, lambda r, o: out.append(o.status))
    print(sorted(out))
"""


@pytest.mark.parametrize(("worker", "runs", "statuses"), [
    ("default", 1, ["error"] * 4),  # wheelscan's worker: the script is not run again
    ("own", 3, ["ok"] * 4),  # a worker from the script: each worker process runs it
])  # fmt: skip
def test_workers_run_the_main_script_only_when_they_need_it(
    tmp_path: Path, worker: str, runs: int, statuses: list[str]
) -> None:
    import subprocess
    import sys

    script = tmp_path / "main_script.py"
    script.write_text(_MAIN_SCRIPT)
    marker = tmp_path / "runs.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script), str(marker), worker], env=env,
                          capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    assert done.stdout.strip() == repr(statuses), done.stderr
    assert marker.read_text().count("ran") == runs


def test_threaded_workers_share_wheels_of_unknown_size() -> None:
    """Remote wheels listed without sizes (a PEP 503 page has none) go out a worker's free
    threads at a time: 8 wheels for 2 workers of 4 threads each are 4 and 4, not all 8 in
    one batch to the first worker while the second has nothing to do."""
    from collections import Counter

    from helpers.mirror import PidWorker

    from wheelscan.mirror.refs import WheelRef

    refs = [WheelRef(location=f"/nowhere/w{i}-1.0-py3-none-any.whl",
                     filename=f"w{i}-1.0-py3-none-any.whl") for i in range(8)]  # fmt: skip
    got: list[str] = []
    cfg = ScanConfig(judge=False, member_cache=False, threads=4)
    LocalPool(cfg, jobs=2, worker=PidWorker).run(refs, lambda r, o: got.append(o.error or ""))
    assert sorted(Counter(got).values()) == [4, 4]


#: set in the test process before a pool starts: a forked worker sees the new value, a spawned
#: one (which imports this module afresh) the one below
_STARTED_AS = "spawned"


class _FdWorker:
    """Says how it was started and how many sockets it holds (its pipe to the main process
    is one; a fork also copies the main process's ends of the other workers' pipes)."""

    def __init__(self, cfg: ScanConfig) -> None:
        pass

    def scan(self, location: str, filename: str) -> Outcome:
        from wheelscan.mirror.store import Outcome

        links = [_link(fd) for fd in os.listdir("/proc/self/fd")]
        sockets = sum(link.startswith("socket:") for link in links)
        epolls = sum("eventpoll" in link for link in links)
        time.sleep(0.2)  # every worker gets a wheel
        return Outcome(location, filename, "ok",
                       error=f"{_STARTED_AS} {os.getpid()} {sockets} {epolls}")  # fmt: skip


def _link(fd: str) -> str:
    """What an fd of this process refers to ("" for the listing's own, closed by now)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def _fd_report(refs_n: int = 6, jobs: int = 3) -> list[list[str]]:
    from wheelscan.mirror.refs import WheelRef

    refs = [WheelRef(location=f"/nowhere/w{i}-1.0-py3-none-any.whl",
                     filename=f"w{i}-1.0-py3-none-any.whl") for i in range(refs_n)]  # fmt: skip
    pool = LocalPool(ScanConfig(judge=False, member_cache=False), jobs=jobs, batch_wheels=1,
                     worker=_FdWorker, start="fork")  # fmt: skip
    return [(o.error or "").split() for o in _run(pool, refs).values()]


_FORK_SCRIPT = """
import sys

import test_scheduler as t

t._STARTED_AS = "forked"  # what a fork of this process sees, a spawned worker does not
print(" ".join(",".join(r) for r in t._fd_report()))
"""


def test_forked_workers_hold_their_own_pipe_only() -> None:
    """In a fresh process (pytest's own may run threads left by other tests, and then the
    workers are spawned): three forked workers, each holding one socket, its own pipe."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                                        *sys.path])}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _FORK_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    got = [r.split(",") for r in done.stdout.split()]
    assert {how for how, *_ in got} == {"forked"}, done.stderr
    assert len({pid for _, pid, *_ in got}) == 3  # three workers, each with a wheel
    assert {(sockets, epolls) for _, _, sockets, epolls in got} == {("1", "0")}


def test_a_fork_with_a_thread_running_is_a_spawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork copies only the thread that forks (a lock another holds stays held forever in
    the child): with a second thread about, workers are spawned instead."""
    monkeypatch.setitem(globals(), "_STARTED_AS", "forked")
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        got = _fd_report(refs_n=4, jobs=2)
    finally:
        stop.set()
        t.join()
    assert {how for how, *_ in got} == {"spawned"}
    assert {sockets for _, _, sockets, _ in got} == {"1"}


def test_a_worker_whose_main_process_is_already_gone_exits() -> None:
    """PR_SET_PDEATHSIG covers a parent that dies after the call: a worker whose parent died
    before it (between fork and prctl) is an orphan already, and leaves at once."""
    import multiprocessing

    from wheelscan.mirror.pool import _die_with_parent

    ctx = multiprocessing.get_context("fork")
    for parent, code in ((os.getpid(), 0), (1, 1)):  # 1: not this worker's parent
        p = ctx.Process(target=_die_with_parent, args=(parent,))
        p.start()
        p.join(30)
        assert p.exitcode == code


def test_worker_connections_have_room_for_results() -> None:
    # a worker's results wait in its connection while the main process commits to the store:
    # both ends ask for PIPE_BUFFER, which Linux grants up to its cap and doubles for its
    # own bookkeeping (socket(7)); a default socketpair end has far less
    import socket

    from wheelscan.mirror import pool as poolmod

    if not Path("/proc/sys/net/core/wmem_max").exists():
        pytest.skip("Linux socket buffer caps only")
    caps = {socket.SO_SNDBUF: int(Path("/proc/sys/net/core/wmem_max").read_text()),
            socket.SO_RCVBUF: int(Path("/proc/sys/net/core/rmem_max").read_text())}  # fmt: skip
    p = LocalPool(ScanConfig(engine=ENGINE), jobs=1)
    slot = p._spawn()
    try:
        for conn in (slot.conn,):
            sock = socket.socket(fileno=conn.fileno())
            try:
                for opt, cap in caps.items():
                    want = 2 * min(poolmod.PIPE_BUFFER, cap)
                    assert sock.getsockopt(socket.SOL_SOCKET, opt) == want
            finally:
                sock.detach()
    finally:
        slot.proc.kill()
        slot.proc.join(10)
