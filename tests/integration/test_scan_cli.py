"""``wheelscan scan`` / ``rejudge`` end to end, as a user runs them: real subprocesses, real
signals (Ctrl-C, kill -9), a bandersnatch-shaped mirror, resuming, exit statuses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.mirror import (
    HONEST_NEW,
    LYING_NEW,
    Elfs,
    blake2b_256,
    engine_for_tests,
    shared_elfs,
    to_bandersnatch,
    wheel,
)
from helpers.stored import stored_facts, stored_verdicts

from wheelscan.facts import FACTS_SCHEMA_VERSION
from wheelscan.mirror.refs import WheelRef
from wheelscan.mirror.store import Outcome, Store

ENGINE = engine_for_tests()
VICTIM = "victim-1.0-py3-py3-manylinux2014_x86_64.whl"


@pytest.fixture(scope="module")
def elfs(tmp_path_factory: pytest.TempPathFactory) -> Elfs:
    return shared_elfs(tmp_path_factory.mktemp("elfs"))


def _make_wheels(d: Path, elfs: Elfs) -> dict[str, str]:
    expected: dict[str, str] = {}
    for i, py in enumerate(("cp310", "cp311", "cp312")):
        for plat in HONEST_NEW:
            w = wheel(d, elfs, "honest", f"1.{i}", py, plat, needs_new=True, bundle=True)
            expected[w.name] = "ok"
        for plat in LYING_NEW[:2]:
            w = wheel(d, elfs, "liar", f"2.{i}", py, plat, needs_new=True, bundle=True)
            expected[w.name] = "mislabelled"
    w = wheel(d, elfs, "victim", "1.0", "py3", "manylinux2014_x86_64", needs_new=True)
    assert w.name == VICTIM
    expected[w.name] = "ok"
    return expected


@pytest.fixture(scope="module")
def mirror(elfs: Elfs, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A bandersnatch mirror (index + packages/ by blake2b) and each wheel's expected status."""
    root = tmp_path_factory.mktemp("mirror")
    expected = _make_wheels(root / "src", elfs)
    wheels = sorted((root / "src").iterdir())
    uploads = {w.name: f"2023-0{1 + n % 9}-01T00:00:00Z" for n, w in enumerate(wheels)}
    to_bandersnatch(
        root, wheels, upload_times=uploads, yanked=frozenset({wheels[0].name}),
        extra_files={"honest-1.0.tar.gz": b"an sdist"},
    )  # fmt: skip
    return root, expected


def _scan(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "wheelscan", "scan", "--engine", ENGINE, "-j", "2", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd,
        timeout=120, check=False,
    )  # fmt: skip


def _rows(db: Path, cols: str = "filename, status") -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(f"SELECT {cols} FROM wheels ORDER BY filename").fetchall()
    finally:
        con.close()


def _counts(db: Path) -> tuple[int, int]:
    con = sqlite3.connect(db)
    try:
        sql = "SELECT count(*), count(DISTINCT location) FROM wheels"
        n, distinct = con.execute(sql).fetchone()
        return int(n), int(distinct)
    finally:
        con.close()


def test_bandersnatch_scan_resume_and_rescan(
    mirror: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, expected = mirror
    db = tmp_path / "s.sqlite"
    r = _scan(str(root), "--db", str(db), "-q")
    assert r.returncode == 1, r.stderr  # mislabelled wheels, no errors
    n = len(expected)
    assert f"{n} wheels ({n} scanned, 0 unchanged)" in r.stderr
    assert "1 non-wheel files skipped" in r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr  # --quiet: the summary line only
    assert dict(_rows(db)) == expected
    rows = _rows(db, "filename, location, content_hash, upload_time, yanked, size")
    verdicts = stored_verdicts(db)
    yanked = sorted(expected)[0]
    for fn, loc, chash, upload, is_yanked, size in rows:
        verdict = verdicts[str(fn)]
        assert chash == f"blake2b_256:{blake2b_256(Path(str(loc)))}"
        assert upload is not None
        assert str(upload).startswith("2023-")
        assert is_yanked == (fn == yanked)
        assert size == Path(str(loc)).stat().st_size
        assert json.loads(str(verdict))["status"] == expected[str(fn)]
    # a completed scan, re-run: nothing is opened again
    r = _scan(str(root), "--db", str(db), "-q")
    assert r.returncode == 1
    assert f"{n} wheels (0 scanned, {n} unchanged)" in r.stderr
    r = _scan(str(root), "--db", str(db), "-q", "--rescan")
    assert f"{n} wheels ({n} scanned, 0 unchanged)" in r.stderr
    assert _counts(db) == (n, n)


def test_filters_and_exit_status(mirror: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, expected = mirror
    db = tmp_path / "s.sqlite"
    r = _scan(str(root), "--db", str(db), "-q", "--project", "Honest")
    assert r.returncode == 0, r.stderr  # only honest wheels
    assert {fn for fn, _ in _rows(db)} == {f for f in expected if f.startswith("honest-")}
    r = _scan(str(root), "--db", str(tmp_path / "p.sqlite"), "-q", "--platform", "manylinux1_*")
    assert {fn for fn, _ in _rows(tmp_path / "p.sqlite")} == {
        f for f in expected if f.endswith("manylinux1_x86_64.whl")
    }
    assert r.returncode == 1
    # a wheel that is not a ZIP: status error, exit 2, the message names the wheel
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "bad-1.0-py3-none-manylinux1_x86_64.whl").write_bytes(b"garbage" * 50)
    r = _scan(str(tree), "--db", str(tmp_path / "b.sqlite"), "-q")
    assert r.returncode == 2, r.stderr
    ((status, error),) = _rows(tmp_path / "b.sqlite", "status, error")
    assert status == "error"
    assert "bad-1.0-py3-none-manylinux1_x86_64.whl" in str(error)


def _start_hung_scan(root: Path, db: Path, pidfile: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "WHEELSCAN_TEST_HANG": "victim", "WHEELSCAN_TEST_PIDFILE": str(pidfile)}
    cmd = [sys.executable, "-m", "wheelscan", "scan", "--engine", ENGINE, "-j", "2", "-q",
           "--db", str(db), str(root)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)  # let the other worker finish what it has
    return proc


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True
    return state in ("Z", "X")


def _resume_completes(root: Path, db: Path, expected: dict[str, str]) -> None:
    before, _ = _counts(db)
    assert VICTIM not in dict(_rows(db))  # the wheel in progress was not recorded
    r = _scan(str(root), "--db", str(db), "-q")
    n = len(expected)
    assert f"{n} wheels ({n - before} scanned, {before} unchanged)" in r.stderr
    assert _counts(db) == (n, n)  # every wheel once: nothing lost, no duplicates
    assert dict(_rows(db)) == expected


def test_ctrl_c_commits_and_resumes(mirror: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, expected = mirror
    db = tmp_path / "s.sqlite"
    proc = _start_hung_scan(root, db, tmp_path / "pid")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "INTERRUPTED" in err
    assert _gone(int((tmp_path / "pid").read_text()))
    assert 0 < _counts(db)[0] < len(expected)  # finished wheels were committed
    _resume_completes(root, db, expected)


def test_kill_9_of_main_then_rerun(mirror: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, expected = mirror
    db = tmp_path / "s.sqlite"
    pidfile = tmp_path / "pid"
    proc = _start_hung_scan(root, db, pidfile)
    proc.kill()
    proc.communicate(timeout=30)
    worker = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while not _gone(worker):  # the hung worker does not outlive the main process
        assert time.monotonic() < deadline, "worker outlived a kill -9 of the main process"
        time.sleep(0.05)
    _resume_completes(root, db, expected)


def test_rejudge_without_opening_wheels(
    elfs: Elfs, mirror: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, expected = mirror
    tree = tmp_path / "tree"
    expected = _make_wheels(tree, elfs)
    db = tmp_path / "s.sqlite"
    assert _scan(str(tree), "--db", str(db), "-q").returncode == 1
    verdicts = stored_verdicts(db)
    assert all(verdicts.values())
    shutil.rmtree(tree)  # rejudge must not need a single wheel
    con = sqlite3.connect(db)
    con.execute("UPDATE wheels SET status = 'unjudged', verdict = NULL, policy_version = NULL")
    con.commit()
    con.close()
    r = subprocess.run(
        [sys.executable, "-m", "wheelscan", "rejudge", "--db", str(db)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert f"{len(expected)} wheels" in r.stderr
    assert dict(_rows(db)) == expected
    assert stored_verdicts(db) == verdicts
    assert all(v for (v,) in _rows(db, "policy_version"))


def test_progress_bar(mirror: tuple[Path, dict[str, str]], tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from wheelscan.cli.scan import Feedback, ScanTarget, Scheduling, run_scan
    from wheelscan.mirror.pool import ScanConfig

    root, expected = mirror
    n = len(expected)
    summary = run_scan(ScanTarget([str(root)], str(tmp_path / "s.sqlite")),
                       config=ScanConfig(engine=ENGINE), scheduling=Scheduling(jobs=2),
                       feedback=Feedback(progress=True))  # fmt: skip
    err = capsys.readouterr().err
    assert f"{n}/{n}" in err  # the total became known when listing ended
    assert "whl/s" in err
    assert "mislabelled=" in err
    assert summary.counts["mislabelled"] == sum(1 for s in expected.values() if s != "ok")


def test_second_scan_on_a_busy_store_is_refused(
    mirror: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Two scans of one store at once: the second is refused with a sentence naming the first
    (no traceback, nothing written), and once the first is done every wheel is there once."""
    root, expected = mirror
    db = tmp_path / "s.sqlite"
    proc = _start_hung_scan(root, db, tmp_path / "pid")
    try:
        before = _counts(db)
        for cmd in (["scan", "--engine", ENGINE, "-q", "--db", str(db), str(root)],
                    ["rejudge", "--db", str(db)]):  # fmt: skip
            r = subprocess.run([sys.executable, "-m", "wheelscan", *cmd], capture_output=True,
                               text=True, timeout=60, check=False)  # fmt: skip
            assert r.returncode == 2, r.stderr
            assert "Traceback" not in r.stderr
            assert r.stderr.count("\n") == 1, r.stderr  # one line says it all
            assert f"in use by another wheelscan scan or rejudge (process {proc.pid}" in r.stderr
            assert str(db) in r.stderr
        assert _counts(db) == before  # the refused runs wrote nothing
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    _resume_completes(root, db, expected)


def test_slow_rates_keep_a_decimal() -> None:
    from wheelscan.cli.scan import ScanSummary

    s = ScanSummary()
    s.scanned, s.seconds, s.bytes = 3, 8.0, 4_000_000
    assert "0.4 wheels/s" in s.line()
    s.scanned, s.seconds = 14_410, 10.0
    assert "1,441 wheels/s" in s.line()


def test_rejudge_reads_facts_stored_under_schema_1(
    elfs: Elfs, mirror: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """A store written before facts schema 2 (no weak_names) is rejudged without a wheel and
    without an error, to the same statuses; a scan then re-reads those wheels."""
    _, expected = mirror
    tree = tmp_path / "tree"
    expected = _make_wheels(tree, elfs)
    db = tmp_path / "s.sqlite"
    assert _scan(str(tree), "--db", str(db), "-q").returncode == 1
    old = {}
    for fn, d in stored_facts(db).items():
        assert d is not None
        d["schema"] = 1
        del d["record"]  # schema 3's
        for e in d["elfs"]:
            for g in e["imports"]:
                del g["weak_names"]
        old[fn] = json.dumps(d)
    con = sqlite3.connect(db)
    sql = "SELECT filename, location, size, mtime FROM wheels"
    refs = [WheelRef(location=str(loc), filename=str(fn), size=int(size), mtime=float(mt))
            for fn, loc, size, mt in con.execute(sql)]  # fmt: skip
    con.close()
    with Store(str(db)) as store:  # re-recorded as a scan before facts schema 2 would have
        for ref in refs:
            store.record(ref, Outcome(ref.location, ref.filename, "unjudged",
                                      facts_json=old[ref.filename]))  # fmt: skip
    con = sqlite3.connect(db)
    con.execute("UPDATE wheels SET facts_schema = 1")
    con.commit()
    con.close()
    r = subprocess.run(
        [sys.executable, "-m", "wheelscan", "rejudge", "--db", str(db)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert dict(_rows(db)) == expected
    n = len(expected)
    r = _scan(str(tree), "--db", str(db), "-q")
    assert f"{n} wheels ({n} scanned, 0 unchanged)" in r.stderr  # old facts are re-read
    assert {s for (s,) in _rows(db, "facts_schema")} == {FACTS_SCHEMA_VERSION}


def test_a_path_that_is_not_utf8_is_skipped_with_a_note(elfs: Elfs, tmp_path: Path) -> None:
    """A file name with bytes that are not UTF-8 (a surrogate escape in Python) cannot be held
    by the store or a UTF-8 report: that wheel is skipped and named, the rest is scanned."""
    d = tmp_path / "tree"
    good = wheel(d, elfs, "victim", "1.0", "py3", "manylinux2014_x86_64", needs_new=True)
    raw = os.fsencode(d) + b"/vic\xfftim-1.0-py3-none-manylinux2014_x86_64.whl"
    with open(raw, "wb") as f:
        f.write(good.read_bytes())
    db = tmp_path / "s.sqlite"
    for source in (str(d), os.fsdecode(raw)):
        r = _scan(source, "--db", str(db))
        assert "skipped: the path is not UTF-8" in r.stderr, r.stderr
        assert "vic\\xfftim-1.0" in r.stderr, r.stderr
        assert "1 paths not UTF-8 skipped" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert _rows(db) == [(good.name, "ok")]
    r = _scan(str(d), "--db", str(db))
    assert r.returncode == 0, r.stderr
