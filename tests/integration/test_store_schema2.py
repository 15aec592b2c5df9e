"""Store schema 2 against schema 1 on real scanned wheels: facts and verdicts read back as
recorded, the same reports byte for byte, and a migration killed midway that resumes to the
very store an uninterrupted one makes."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import zstandard as zstd
from helpers.killing import kill_at_hang
from helpers.mirror import HONEST_NEW, LYING_NEW, engine_for_tests, shared_elfs, wheel
from helpers.store_v1 import write_v1

from wheelscan.cli.report import write_report
from wheelscan.mirror.pool import ScanConfig, scan_one
from wheelscan.mirror.sources import Discovery, iter_tree
from wheelscan.mirror.store import (
    Outcome,
    SharedMemberCache,
    Store,
    StoreError,
    StoreReader,
    WheelFilter,
)
from wheelscan.report.records import findings_path
from wheelscan.rules.verdict import make_judge

if TYPE_CHECKING:
    from wheelscan.mirror.refs import WheelRef

ALL = WheelFilter()
BENCH = Path(os.environ.get("WHEELSCAN_BENCH_CACHE") or Path.home() / ".cache" / "wheelscan-bench")


def _scan_tree(tree: Path) -> list[tuple[WheelRef, Outcome]]:
    cfg = ScanConfig(engine=engine_for_tests())
    judge = make_judge()
    cache = SharedMemberCache(None, min_size=0)  # so outcomes carry member-cache entries
    refs = sorted(iter_tree(tree, Discovery()), key=lambda r: r.filename)
    return [(r, scan_one(r.location, r.filename, cfg, judge, cache)) for r in refs]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[WheelRef, Outcome]]:
    elfs = shared_elfs(tmp_path_factory.mktemp("elfs"))
    tree = tmp_path_factory.mktemp("tree")
    for i, project in enumerate(("alpha", "beta", "gamma")):
        for py in ("cp311", "cp312"):
            for plat in (HONEST_NEW[i], LYING_NEW[i]):
                wheel(tree, elfs, project, "1.0", py, plat, needs_new=True, bundle=i < 2)
    wheel(tree, elfs, "delta", "2.0", "cp311", "manylinux1_x86_64", needs_new=False)
    (tree / "broken-1.0-py3-none-manylinux1_x86_64.whl").write_bytes(b"not a zip" * 10)
    out = _scan_tree(tree)
    assert {o.status for _, o in out} >= {"ok", "mislabelled", "error"}
    return out


def _stores(rows: list[tuple[WheelRef, Outcome]], root: Path) -> dict[str, Path]:
    """The same outcomes as a schema-1 store, a schema-2 one, and the schema-1 one migrated;
    each ``<root>/<kind>/store.sqlite`` (reports name their source: the same name)."""
    paths = {k: root / k / "store.sqlite" for k in ("v1", "v2", "migrated")}
    for p in paths.values():
        p.parent.mkdir(parents=True)
    write_v1(paths["v1"], rows)
    shutil.copy(paths["v1"], paths["migrated"])
    Store(str(paths["migrated"])).close()
    with Store(str(paths["v2"])) as st:
        for ref, out in rows:
            st.record(ref, out)
    return paths


def _version(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
    finally:
        con.close()


def _read_back(db: Path) -> dict[str, tuple[str | None, str | None]]:
    with StoreReader(db) as r:
        facts = dict(r.facts_json(ALL))
        return {w.location: (facts[w.location], w.verdict_json) for w in r.wheels_json(ALL)}


def test_facts_and_verdicts_read_back_as_recorded(
    scanned: list[tuple[WheelRef, Outcome]], tmp_path: Path
) -> None:
    rows = list(scanned)
    bench = sorted(BENCH.glob("*.whl")) if BENCH.is_dir() else []
    if bench:  # the real benchmark corpus, where present (benchmarks/fetch_corpus.py)
        tree = tmp_path / "bench"
        tree.mkdir()
        for w in bench:
            (tree / w.name).symlink_to(w)
        rows += _scan_tree(tree)
    paths = _stores(rows, tmp_path)
    assert (_version(paths["v1"]), _version(paths["v2"]), _version(paths["migrated"])) == (1, 2, 2)
    want = {ref.location: (out.facts_json, out.verdict_json) for ref, out in rows}
    want_v = {ref.filename: out.verdict_json for ref, out in rows if out.verdict_json}
    for kind in ("v2", "migrated"):
        got = _read_back(paths[kind])
        assert got.keys() == want.keys()
        for loc, (facts, verdict) in want.items():
            assert got[loc][0] == facts, (kind, loc)  # the very text WheelFacts.to_json wrote
            assert got[loc][1] == verdict, (kind, loc)
    # one row per distinct ELF's facts (without its path), however many wheels ship it
    bodies = {
        json.dumps({k: v for k, v in e.items() if k != "member"})
        for _, out in rows if out.facts_json
        for e in json.loads(out.facts_json)["elfs"]
    }  # fmt: skip
    con = sqlite3.connect(paths["v2"])
    (n,) = con.execute("SELECT count(*) FROM elf_facts").fetchone()
    assert n == len(bodies)
    # a stored verdict leaves out the wheel's name and path (its row has them)
    dicts = dict(con.execute("SELECT id, dict FROM zdicts"))
    sql = "SELECT filename, verdict, verdict_dict FROM wheels WHERE verdict IS NOT NULL"
    for fn, blob, dict_id in con.execute(sql).fetchall():
        dd = zstd.ZstdCompressionDict(dicts[dict_id]) if dict_id else None
        v = json.loads(zstd.ZstdDecompressor(dict_data=dd).decompress(blob))
        assert (v["wheel"], v["path"], v["status"]) == (
            None,
            None,
            json.loads(want_v[fn])["status"],
        )
    con.close()


FORMATS = {"text": "txt", "csv": "csv", "jsonl": "jsonl", "jsonl.zst": "jsonl.zst", "html": "html"}


def test_every_report_format_is_the_same_from_schema_1_and_2(
    scanned: list[tuple[WheelRef, Outcome]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _stores(scanned, tmp_path)
    out: dict[str, dict[str, bytes]] = {}
    for kind, db in paths.items():
        monkeypatch.chdir(db.parent)
        got = out[kind] = {}
        for fmt, ext in FORMATS.items():
            for flt in (ALL, WheelFilter(statuses=frozenset({"mislabelled"}))):
                name = f"report-{len(got)}.{ext}"
                write_report(db.name, fmt, name, flt, 20)
                got[name] = Path(name).read_bytes()
                if fmt == "csv":
                    got[name + ".findings"] = findings_path(Path(name)).read_bytes()
    assert out["v2"] == out["v1"]
    assert out["migrated"] == out["v1"]
    assert b"libvendored" in out["v1"]["report-0.txt"]  # the mirror-wide findings are there


def _dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        # a dictionary's creation time is the only thing a rerun may change
        sql = {t: f"SELECT * FROM {t} ORDER BY 1, 2" for t in tables}
        sql["zdicts"] = "SELECT id, kind, dict, samples FROM zdicts"
        return {t: con.execute(q).fetchall() for t, q in sql.items()}
    finally:
        con.close()


def test_a_migration_killed_midway_resumes_to_the_same_store(
    scanned: list[tuple[WheelRef, Outcome]], tmp_path: Path
) -> None:
    v1, killed, whole = (tmp_path / f"{k}.sqlite" for k in ("v1", "killed", "whole"))
    write_v1(v1, scanned)
    shutil.copy(v1, killed)
    shutil.copy(v1, whole)
    pidfile = tmp_path / "pid"
    code = (
        "import sys\nfrom wheelscan.mirror.store import Store\n"
        "Store(sys.argv[1], batch_rows=3).close()"
    )
    kill_at_hang([sys.executable, "-c", code, str(killed)], {"WHEELSCAN_TEST_MIGRATE": "6"},
                 pidfile, "the migration")  # fmt: skip
    con = sqlite3.connect(killed)
    assert con.execute("SELECT value FROM meta WHERE key='migrating_from_1'").fetchone() == (
        "wheels:6",)  # fmt: skip
    assert con.execute("SELECT count(*) FROM wheels").fetchone() == (6,)
    assert con.execute("SELECT count(*) FROM wheels_v1").fetchone() == (len(scanned),)
    con.close()
    with pytest.raises(StoreError, match="migration"):
        StoreReader(killed)
    Store(str(killed), batch_rows=3).close()  # resumes
    Store(str(whole), batch_rows=3).close()
    con = sqlite3.connect(v1)
    want = {
        str(loc): (f, v) for loc, f, v in con.execute("SELECT location, facts, verdict FROM wheels")
    }
    con.close()
    assert _read_back(killed) == want
    dumped = _dump(killed)
    assert "wheels_v1" not in dumped
    assert dumped == _dump(whole)
