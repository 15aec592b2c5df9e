"""``wheelscan gc`` on real scans: after wheels are replaced by different ones at the same
locations, the ELF facts no wheel links to are gone, every referenced body reads back byte for
byte, every report format is the same, and a collection killed midway leaves the store as it
was."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.killing import kill_at_hang
from helpers.mirror import HONEST_NEW, LYING_NEW, engine_for_tests, shared_elfs, wheel

from wheelscan.cli.report import write_report
from wheelscan.mirror.store import StoreReader, WheelFilter

ENGINE = engine_for_tests()
FORMATS = {"text": "txt", "csv": "csv", "jsonl": "jsonl", "jsonl.zst": "jsonl.zst", "html": "html"}


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wheelscan", *args], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip


def _scan(tree: Path, db: Path) -> None:
    r = _run("scan", "--engine", ENGINE, "-j", "2", "-q", str(tree), "--db", str(db))
    assert r.returncode in (0, 1), r.stderr


def _unreferenced(db: Path) -> tuple[int, int]:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT count(*), coalesce(sum(length), 0) FROM elf_facts"
            " WHERE id NOT IN (SELECT elf_id FROM wheel_elfs)"
        ).fetchone()
    finally:
        con.close()


def _bodies(db: Path) -> dict[bytes, bytes]:
    """Each referenced ``elf_facts`` row's body, by its digest, read through the packs."""
    from wheelscan.mirror.store.codec import Codec

    con = sqlite3.connect(db)
    try:
        codec = Codec(con)
        rows = con.execute("SELECT id, digest FROM elf_facts WHERE id IN"
                           " (SELECT elf_id FROM wheel_elfs)").fetchall()  # fmt: skip
        return {bytes(d): codec.body(int(i)) for i, d in rows}
    finally:
        con.close()


def _reports(db: Path, out: Path) -> dict[str, bytes]:
    out.mkdir()
    got: dict[str, bytes] = {}
    cwd = os.getcwd()
    os.chdir(out)
    try:
        for fmt, ext in FORMATS.items():
            name = f"report.{ext}"
            write_report(str(db), fmt, name, WheelFilter(), 20)
            got[name] = Path(name).read_bytes()
    finally:
        os.chdir(cwd)
    return got


def _read_back(db: Path) -> dict[str, str | None]:
    with StoreReader(db) as r:
        return dict(r.facts_json(WheelFilter()))


@pytest.fixture
def garbage_store(tmp_path: Path) -> Path:
    """A store scanned, then re-scanned after its wheels were replaced by different builds
    (other binaries) at the same paths: their old ELF facts are unreferenced."""
    elfs = shared_elfs(tmp_path / "elfs")
    tree = tmp_path / "tree"
    tree.mkdir()
    made = []
    for i, project in enumerate(("alpha", "beta", "gamma")):
        for plat in (HONEST_NEW[i], LYING_NEW[i]):
            made.append((project, plat, i))
            wheel(tree, elfs, project, "1.0", "cp311", plat, needs_new=True, bundle=True)
    db = tmp_path / "store.sqlite"
    _scan(tree, db)
    assert _unreferenced(db)[0] == 0
    time.sleep(0.01)
    for project, plat, _ in made:  # the same names, other binaries inside
        wheel(tree, elfs, project, "1.0", "cp311", plat, needs_new=False, bundle=False,
              salt="rebuilt")  # fmt: skip
    _scan(tree, db)
    return db


def test_gc_deletes_unreferenced_facts_and_keeps_the_rest(garbage_store: Path,
                                                          tmp_path: Path) -> None:  # fmt: skip
    db = garbage_store
    n, nbytes = _unreferenced(db)
    assert n > 0
    assert nbytes > 0
    before_bodies, before_facts = _bodies(db), _read_back(db)
    before_reports = _reports(db, tmp_path / "before")
    con = sqlite3.connect(db)
    (max_id,) = con.execute("SELECT max(id) FROM elf_facts").fetchone()
    (packs_before,) = con.execute("SELECT coalesce(sum(size), 0) FROM elf_packs").fetchone()
    con.close()
    r = _run("gc", "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "unreferenced ELF facts" in r.stderr
    left, _ = _unreferenced(db)
    con = sqlite3.connect(db)
    (still_max,) = con.execute("SELECT max(id) FROM elf_facts").fetchone()
    (packs_after,) = con.execute("SELECT coalesce(sum(size), 0) FROM elf_packs").fetchone()
    dangling = con.execute("SELECT count(*) FROM members WHERE elf_id NOT IN"
                           " (SELECT id FROM elf_facts)").fetchone()  # fmt: skip
    con.close()
    # only the highest id may stay (so no new row ever gets a deleted one's id)
    assert left == (1 if still_max == max_id and max_id in _orphans(db) else 0)
    assert still_max == max_id
    assert dangling == (0,)
    # the packs' decoded bytes shrank by the unreferenced bodies (bar the kept highest id)
    assert packs_before - packs_after >= nbytes - _orphan_bytes(db)
    assert _bodies(db) == before_bodies
    assert _read_back(db) == before_facts
    assert _reports(db, tmp_path / "after") == before_reports
    # a second collection finds nothing more
    r = _run("gc", "--db", str(db))
    assert r.returncode == 0
    assert "wheelscan gc: 0 unreferenced" in r.stderr


def _orphans(db: Path) -> set[int]:
    con = sqlite3.connect(db)
    try:
        sql = "SELECT id FROM elf_facts WHERE id NOT IN (SELECT elf_id FROM wheel_elfs)"
        return {int(r[0]) for r in con.execute(sql)}
    finally:
        con.close()


def _orphan_bytes(db: Path) -> int:
    return _unreferenced(db)[1]


def _dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    finally:
        con.close()


def test_gc_killed_midway_leaves_the_store_as_it_was(garbage_store: Path,
                                                      tmp_path: Path) -> None:  # fmt: skip
    db = garbage_store
    copy = tmp_path / "copy.sqlite"
    shutil.copy(db, copy)
    for side in ("-wal", "-shm"):
        if Path(f"{db}{side}").exists():
            shutil.copy(f"{db}{side}", f"{copy}{side}")
    want = _dump(copy)
    kill_at_hang([sys.executable, "-m", "wheelscan", "gc", "--db", str(db)],
                 {"WHEELSCAN_TEST_GC": "1"}, tmp_path / "pid", "gc")  # fmt: skip
    assert _dump(db) == want  # nothing of the killed collection is visible
    assert _unreferenced(db)[0] > 0
    r = _run("gc", "--db", str(db))  # and the next one completes
    assert r.returncode == 0, r.stderr
    assert _read_back(db) == _read_back(copy)
