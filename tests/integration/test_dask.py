"""``--dask``: the same batches on a dask.distributed LocalCluster give the local pool's results."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest
from conftest import require
from helpers.mirror import (
    HONEST_NEW,
    LYING_NEW,
    Elfs,
    engine_for_tests,
    shared_elfs,
    wheel,
    without_byte_accounting,
)
from helpers.stored import stored_facts, stored_verdicts

from wheelscan.cli.scan import ScanTarget, Scheduling, run_scan
from wheelscan.mirror.pool import ScanConfig

if TYPE_CHECKING:
    from pathlib import Path

try:
    import distributed
except ImportError:  # pragma: no cover - only on a box without the test extra
    distributed = None

ENGINE = engine_for_tests()


@pytest.fixture(autouse=True)
def _needs_distributed() -> None:
    require(None if distributed is not None else "dask.distributed is not installed")
COLUMNS = "filename, location, status, error, policy_version, facts_schema"


@pytest.fixture(scope="module")
def elfs(tmp_path_factory: pytest.TempPathFactory) -> Elfs:
    return shared_elfs(tmp_path_factory.mktemp("elfs"))


def _rows(db: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(f"SELECT {COLUMNS} FROM wheels ORDER BY location").fetchall()
    finally:
        con.close()
    # facts compared without byte counts: which wheel meets a shared library first (and
    # inflates it) depends on scheduling, not on the executor
    facts, verdicts = stored_facts(db), stored_verdicts(db)
    return [
        (*r[:4], without_byte_accounting(f) if (f := facts[str(r[0])]) else None,
         verdicts[str(r[0])], *r[4:])
        for r in rows
    ]  # fmt: skip


def test_dask_local_cluster_matches_local_pool(elfs: Elfs, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for i, py in enumerate(("cp311", "cp312")):
        for plat in (*HONEST_NEW, *LYING_NEW):
            wheel(tree, elfs, f"p{i}", "1.0", py, plat, needs_new=True, bundle=True)
    (tree / "bad-1.0-py3-none-manylinux1_x86_64.whl").write_bytes(b"not a zip" * 20)
    n = 2 * (len(HONEST_NEW) + len(LYING_NEW)) + 1

    local = run_scan(ScanTarget([str(tree)], str(tmp_path / "local.sqlite")),
                     config=ScanConfig(engine=ENGINE), scheduling=Scheduling(jobs=2))
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        remote = run_scan(
            ScanTarget([str(tree)], str(tmp_path / "dask.sqlite")),
            config=ScanConfig(engine=ENGINE),
            # several batches, in flight at once
            scheduling=Scheduling(dask=cluster.scheduler_address, batch_bytes=64 << 10),
        )
        # and resuming works the same way: nothing left to do
        again = run_scan(ScanTarget([str(tree)], str(tmp_path / "dask.sqlite")),
                         scheduling=Scheduling(dask=cluster.scheduler_address))
    assert (again.scanned, again.unchanged) == (0, n)
    assert remote.scanned == local.scanned == n
    assert remote.counts == local.counts
    assert local.counts == {"ok": 2 * len(HONEST_NEW), "mislabelled": 2 * len(LYING_NEW),
                            "error": 1}  # fmt: skip
    assert _rows(tmp_path / "dask.sqlite") == _rows(tmp_path / "local.sqlite")
