"""What reading the archive as two readers costs, and what ``--verify-record`` costs.

    git worktree add /tmp/ws-base <commit before the archive views>
    (cd /tmp/ws-base && python setup.py build_ext --inplace -j 2)
    python benchmarks/bench_archive.py --baseline /tmp/ws-base [--repeats 5] [--json OUT]

Times, in one run and interleaved (each round runs every configuration once, in a fresh
random order; the minimum over rounds is reported), a native scan of every wheel of the
pinned corpus (``benchmarks/corpus.json``, page-cached by a first untimed pass):

- ``baseline``: the wheelscan tree given by ``--baseline`` (no local-header walk);
- ``scan``: this tree (the local-header comparison on every wheel);
- ``verify``: this tree with ``verify_record=True`` (every member hashed against RECORD).

Each configuration runs in its own subprocess, so the two trees never share an import.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fetch_corpus import default_cache, is_valid, load_corpus  # noqa: E402

CHILD = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import wheelscan
assert wheelscan.__file__.startswith(sys.argv[1]), wheelscan.__file__
paths = json.loads(sys.argv[2]); verify = sys.argv[3] == "1"
kw = {"verify_record": True} if verify else {}
t0 = time.perf_counter(); c0 = os.times()
anomalies = 0
for p in paths:
    f = wheelscan.scan_wheel(p, engine="native", **kw)
    anomalies += len(f.anomalies) + len(getattr(f, "record", None) or ())
c1 = os.times()
print(json.dumps({"wall": time.perf_counter() - t0,
                  "cpu": c1.user + c1.system - c0.user - c0.system, "findings": anomalies}))
"""


def _run(tree: Path, paths: list[str], verify: bool) -> dict[str, float]:
    cmd = [sys.executable, "-c", CHILD, str(tree / "src"), json.dumps(paths), str(int(verify))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{tree}: the scan failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", type=Path, required=True, help="an older wheelscan tree, built")
    ap.add_argument("--cache", type=Path, default=default_cache())
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    corpus = load_corpus(HERE / "corpus.json")
    paths = [str(args.cache / w["filename"]) for w in corpus
             if is_valid(args.cache / w["filename"], w)]  # fmt: skip
    if not paths:
        print("no corpus wheels cached: run benchmarks/fetch_corpus.py first", file=sys.stderr)
        return 2
    here = HERE.parent
    configs = {"baseline": (args.baseline, False), "scan": (here, False), "verify": (here, True)}
    for tree, verify in configs.values():  # warm the page cache and the imports
        _run(tree, paths, verify)
    best: dict[str, dict[str, float]] = {}
    rng = random.Random(0)
    for _ in range(args.repeats):
        order = list(configs)
        rng.shuffle(order)
        for name in order:
            tree, verify = configs[name]
            r = _run(tree, paths, verify)
            cur = best.setdefault(name, r)
            for k in ("wall", "cpu"):
                cur[k] = min(cur[k], r[k])
    size = sum(Path(p).stat().st_size for p in paths)
    print(f"{len(paths)} wheels, {size / 1e6:.0f} MB, min of {args.repeats} rounds")
    print("| configuration | wall s | CPU s | CPU vs baseline | findings |")
    print("|---|---|---|---|---|")
    for name, r in best.items():
        print(f"| {name} | {r['wall']:.2f} | {r['cpu']:.2f} | "
              f"{r['cpu'] / best['baseline']['cpu']:.3f}x | {int(r['findings'])} |")
    if args.json:
        args.json.write_text(json.dumps({"wheels": len(paths), "bytes": size, **best}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
