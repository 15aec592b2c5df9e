"""``wheelscan check`` of the whole corpus on one core and on N, side by side.

    python benchmarks/bench_check.py [--cache DIR] [--jobs 2] [--repeats 3] [--json OUT]

Runs ``python -m wheelscan check --jobs 1`` and ``--jobs N`` (default 2) over every cached
wheel of the pinned corpus (``benchmarks/corpus.json``; fetch it with
``benchmarks/fetch_corpus.py``), as a user runs them: a fresh process each, this tree's
``src`` first on the path, output kept to compare, not printed. A first untimed pass of each
warms the page cache. Each round then times both once, in a fresh random order; the minimum
wall time over rounds is reported with the CPU time of that run (the command's and its
workers'), the speed-up, and the load average before and after (the machine is shared: other
work on it inflates wall time, and the speed-up is bounded by the cores it leaves free).

The two outputs must be byte-identical (the order is the order given, whatever the workers
do), and so must the exit status; the script fails if they are not.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fetch_corpus import default_cache, is_valid, load_corpus  # noqa: E402


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _run(paths: list[str], jobs: int) -> tuple[float, float, int, bytes]:
    """(wall s, CPU s of the command and its workers, exit status, stdout) of one check."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(HERE.parent / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    cmd = [sys.executable, "-m", "wheelscan", "check", "--jobs", str(jobs), *paths]
    before = os.times()
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    after = os.times()
    if run.returncode not in (0, 1, 2) or b"Traceback" in run.stderr:
        raise SystemExit(f"check --jobs {jobs} failed ({run.returncode}):\n"
                         f"{run.stderr.decode(errors='replace')[-3000:]}")  # fmt: skip
    cpu = (after.children_user + after.children_system
           - before.children_user - before.children_system)  # fmt: skip
    return wall, cpu, run.returncode, run.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=default_cache())
    ap.add_argument("--jobs", type=int, default=2, help="workers to compare with one core")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    # the modules as an installed package has them, compiled once (see bench_remote.py)
    compileall.compile_dir(str(HERE.parent / "src"), quiet=1)
    paths = [str(args.cache / w["filename"]) for w in load_corpus(HERE / "corpus.json")
             if is_valid(args.cache / w["filename"], w)]  # fmt: skip
    if not paths:
        print("no corpus wheels cached: run benchmarks/fetch_corpus.py first", file=sys.stderr)
        return 2
    configs = {1: "jobs 1", args.jobs: f"jobs {args.jobs}"}
    load_before = _load()
    outputs = {jobs: _run(paths, jobs)[2:] for jobs in configs}  # warm-up, and the outputs
    if outputs[1] != outputs[args.jobs]:
        raise SystemExit(f"check --jobs {args.jobs} does not print what --jobs 1 prints")
    best: dict[int, tuple[float, float]] = {}
    rng = random.Random(0)
    for _ in range(args.repeats):
        order = list(configs)
        rng.shuffle(order)
        for jobs in order:
            wall, cpu, status, out = _run(paths, jobs)
            if (status, out) != outputs[1]:
                raise SystemExit(f"check --jobs {jobs} printed something else this time")
            if jobs not in best or wall < best[jobs][0]:
                best[jobs] = (wall, cpu)
    load_after = _load()
    size = sum(Path(p).stat().st_size for p in paths)
    one, many = best[1], best[args.jobs]
    speedup = one[0] / many[0]
    print(f"{len(paths)} wheels, {size / 1e6:.0f} MB, min wall of {args.repeats} interleaved "
          f"rounds; load average before {load_before}, after {load_after}")
    for jobs, name in configs.items():
        print(f"{name}: {best[jobs][0]:.2f} s wall, {best[jobs][1]:.2f} s CPU")
    print(f"speed-up at --jobs {args.jobs}: {speedup:.2f}x (outputs identical)")
    if args.json:
        args.json.write_text(json.dumps({
            "wheels": len(paths), "bytes": size, "repeats": args.repeats,
            "load_average_before": load_before, "load_average_after": load_after,
            **{f"jobs_{j}": {"wall": w, "cpu": c} for j, (w, c) in best.items()},
            "speedup": speedup,
        }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
