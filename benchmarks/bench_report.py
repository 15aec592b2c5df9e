"""Time ``wheelscan report`` in every format over a store of N (default 50,000) wheels.

    python benchmarks/bench_report.py [--wheels 50000] [--dir DIR] [--keep]

The store is made with store.py's own API (``Store.record``) from real facts and verdicts:
a handful of template wheels are compiled by gcc against hermetic stubs (tests/helpers/mirror.py),
scanned and judged once, and their JSON is replayed under 50,000 names (about 3,000 projects,
uploads spread over 2016-2025, a few percent yanked, ~2 % unreadable archives, and the
vendored library in several sizes so the mirror-wide grouping has work to do). Each report
then runs as a user runs it: ``python -m wheelscan report`` in a fresh process, wall time and
peak RSS (``ru_maxrss`` of the child) printed per format.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.mirror import LYING_NEW, build_elfs, wheel

from wheelscan import judge, scan_wheel
from wheelscan.mirror.sources import WheelRef
from wheelscan.mirror.store import Outcome, Store

LIMITS = {"text": 10.0, "csv": 10.0, "jsonl": 10.0, "jsonl.zst": 10.0, "html": 30.0}


def templates(work: Path) -> list[tuple[str, str, str]]:
    """(status, facts JSON, verdict JSON) of real wheels: honest, lying, no-bundle; those that
    bundle the vendored library also in variants where it has another size (another build)."""
    elfs = build_elfs(work / "elfs")
    out = []
    made = [
        wheel(work / "w", elfs, "tpl", "1.0", "cp311", "manylinux2014_x86_64", needs_new=True,
              bundle=True),
        wheel(work / "w", elfs, "tpl", "1.1", "cp311", "manylinux_2_28_x86_64", needs_new=True),
        wheel(work / "w", elfs, "tpl", "1.2", "cp311", "manylinux2010_x86_64", needs_new=False),
        wheel(work / "w", elfs, "tpl", "1.3", "cp311", LYING_NEW[0], needs_new=True, bundle=True),
        wheel(work / "w", elfs, "tpl", "1.4", "cp311", LYING_NEW[1], needs_new=True),
    ]  # fmt: skip
    for w in made:
        facts = scan_wheel(w)
        v = judge(facts)
        d = facts.to_dict()
        variants = [d]
        if any("libvendored" in m["member"] for m in d["members"]):
            for k in range(1, 4):
                alt = json.loads(json.dumps(d))
                for m in alt["members"]:
                    if "libvendored" in m["member"]:
                        m["size"] += 4096 * k
                variants.append(alt)
        out += [(v.status, json.dumps(x), json.dumps(v.to_dict())) for x in variants]
    return out


def make_store(db: Path, n: int, tpls: list[tuple[str, str, str]], seed: int = 1) -> float:
    rnd = random.Random(seed)
    t0 = time.perf_counter()
    with Store(str(db), batch_rows=5000) as st:
        for i in range(n):
            project = f"proj{rnd.randrange(3000):04d}"
            year = 2016 + rnd.randrange(10)
            fn = f"{project}-{i}.0-cp311-cp311-manylinux2014_x86_64.whl"
            ref = WheelRef(
                location=f"/mirror/{i % 256:02x}/{fn}", filename=fn, size=100_000, mtime=0.0,
                upload_time=f"{year}-0{1 + rnd.randrange(9)}-15T00:00:00Z",
                yanked=rnd.random() < 0.02, project=project,
            )  # fmt: skip
            if rnd.random() < 0.02:
                out = Outcome(fn, fn, "error", error=f"{fn}: bad archive at offset {i}")
            else:
                status, facts, verdict = tpls[rnd.randrange(len(tpls))]
                verdict = verdict.replace('"wheel": "tpl-', f'"wheel": "{project}-', 1)
                out = Outcome(fn, fn, status, facts_json=facts, verdict_json=verdict,
                              engine="native")  # fmt: skip
            st.record(ref, out)
    return time.perf_counter() - t0


def run(db: Path, fmt: str, out: Path) -> tuple[float, float, float, int]:
    cmd = [sys.executable, "-m", "wheelscan", "report", "--db", str(db), "--format", fmt,
           "-o", str(out)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)  # this child's own rusage
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    size = out.stat().st_size if out.exists() else 0
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheels", type=int, default=50_000)
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = a.dir or Path(tempfile.mkdtemp(prefix="wheelscan-bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "store.sqlite"
    if not db.exists():
        tpls = templates(work)
        secs = make_store(db, a.wheels, tpls)
        print(f"store: {a.wheels} wheels, {db.stat().st_size / 1e6:.0f} MB, built in {secs:.1f} s")
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().split()[0]} (other work inflates wall time)")
    failed = False
    for fmt, limit in LIMITS.items():
        wall, cpu, rss, size = run(db, fmt, work / f"report.{fmt}")
        ok = wall <= limit
        failed |= not ok
        print(
            f"{fmt:10s} wall {wall:6.2f} s, CPU {cpu:6.2f} s (limit {limit:.0f} s) "
            f"{'ok' if ok else 'SLOW'}  output {size / 1e6:6.2f} MB  max RSS {rss:.0f} MB"
        )
    if not a.keep and a.dir is None:
        shutil.rmtree(work)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
