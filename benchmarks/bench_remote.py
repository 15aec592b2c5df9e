"""Remote scans on a modelled link, side by side with download-then-check of the same wheels.

    python benchmarks/bench_remote.py [WHEEL_DIR] [--max-size 15e6] [--links 0:0,20:100,100:20]
                                      [--baseline TREE] [--connections 32] [--repeats N]
                                      [--json out.json]

WHEEL_DIR defaults to the pinned corpus (``benchmarks/corpus.json``) in the benchmark cache
(``benchmarks/fetch_corpus.py``; other files there are ignored) when it is there,
else to the synthetic byte-efficiency corpus of tests/integration/test_remote_bytes.py, built
on the fly;
``--max-size`` keeps the wheels up to that many bytes (default 15 MB: 33 wheels, 196 MB of the
cache). Each link model ``MS:MBPS`` is the test server of tests/helpers/httpserver.py on
127.0.0.1 with MS milliseconds added to every answer and MBPS megabytes per second shared by
all answers (0: no cap). For each link, in one run:

- remote: ``wheelscan scan URL`` of the server's simple index (2 workers, ``--connections``);
- download-then-check: every wheel downloaded whole over 8 connections, then checked
  (scan + judge, one core, as ``wheelscan check`` does);
- baseline (``--baseline TREE``, a worktree built in place): the same remote scan by that tree.

With ``--repeats N`` each link runs N rounds of all of them, and the minimum time of each is
kept (the machine is shared: only ratios from one run compare).

Reported per link: wall seconds, the remote/download ratio, requests per wheel against 3 + the
wheel's binaries, response-body bytes the server wrote against the independent minimum the
verdicts need (tests/integration/test_remote_bytes.py) and against the full size, and whether
every remote verdict equals the local one.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from helpers.httpserver import IndexServer, ServerConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_corpus import is_valid, load_corpus

CACHE = Path(os.environ.get("WHEELSCAN_BENCH_CACHE", "~/.cache/wheelscan-bench")).expanduser()


def _synthetic(tmp: Path) -> list[Path]:
    from test_remote_bytes import big_wheels

    class _Factory:
        def mktemp(self, name: str) -> Path:
            d = tmp / name
            d.mkdir(parents=True, exist_ok=True)
            return d

    fn: Any = getattr(big_wheels, "__wrapped__", None)
    if fn is None:  # pytest keeps the undecorated function here
        fn = big_wheels.__pytest_wrapped__.obj  # type: ignore[attr-defined]
    return list(fn(_Factory()))


def _links(text: str) -> list[tuple[float, float]]:
    out = []
    for part in text.split(","):
        ms, _, mbps = part.partition(":")
        out.append((float(ms) / 1000, float(mbps or 0) * 1e6))
    return out


def _download_then_check(srv: IndexServer, wheels: list[Path], tmp: Path) -> float:
    import urllib3

    from wheelscan.cli.check import check_wheel
    from wheelscan.rules.policy import load_policies

    policies = load_policies(None)
    pool = urllib3.PoolManager(maxsize=8)
    dest = tmp / "downloaded"
    dest.mkdir(exist_ok=True)

    def get(w: Path) -> Path:
        r = pool.request("GET", srv.file_url(w.name), preload_content=False)
        out = dest / w.name
        with open(out, "wb") as f:
            for chunk in r.stream(1 << 20):
                f.write(chunk)
        r.release_conn()
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as ex:
        files = list(ex.map(get, wheels))
    for f in files:
        check_wheel(str(f), policies)
    secs = time.perf_counter() - t0
    for f in files:
        f.unlink()
    return secs


_BASELINE = """
import sys, time
sys.path.insert(0, sys.argv[1] + "/src")
from wheelscan.cli import main
t0 = time.perf_counter()
main(["scan", sys.argv[2], "--db", sys.argv[3], "--jobs", "2", "--quiet"])
print(time.perf_counter() - t0)
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("wheels", nargs="?", type=Path)
    ap.add_argument("--max-size", type=float, default=15e6)
    ap.add_argument("--links", default="0:0,20:100,100:20", help="MS:MBPS,... (0 MBPS: no cap)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--baseline", type=Path, help="a tree built in place, remote-scanned too")
    ap.add_argument("--no-minimum", action="store_true", help="skip the (slow) minimum bytes")
    ap.add_argument("--repeats", type=int, default=1,
                    help="rounds per link, each timing every configuration once; the "
                         "minimum per configuration is kept")  # fmt: skip
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    # every tree's modules as an installed package has them, compiled once: pip compiles them
    # at install, but an editable install under PYTHONDONTWRITEBYTECODE would have each
    # spawned worker compile them from source again (0.1-0.2 s of its start-up)
    for tree in [Path(__file__).resolve().parent.parent, args.baseline]:
        if tree is not None:
            compileall.compile_dir(str(tree / "src"), quiet=1)

    from test_remote_bytes import minimum_bytes

    from wheelscan import judge, scan_wheel
    from wheelscan.cli.scan import Feedback, ScanTarget, Scheduling, run_scan

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        src = args.wheels or (CACHE if CACHE.is_dir() else None)
        if src is None:
            wheels = _synthetic(tmp)
        else:
            if args.wheels is None:  # the cache: the pinned corpus in it, not whatever else
                pinned = [src / w["filename"] for w in load_corpus()
                          if is_valid(src / w["filename"], w)]  # fmt: skip
            else:
                pinned = list(src.glob("*.whl"))
            wheels = sorted(p for p in pinned if p.stat().st_size <= args.max_size)
        full = sum(w.stat().st_size for w in wheels)
        local = {}
        binaries = 0
        for w in wheels:
            facts = scan_wheel(w)
            binaries += len(facts.elfs)
            v = judge(facts).to_dict()
            v.pop("path")
            local[w.name] = v
        minimum = None
        if not args.no_minimum:
            minimum = sum(minimum_bytes(w).total for w in wheels)
        print(f"{len(wheels)} wheels, {full / 1e6:.1f} MB, {binaries} ELF members"
              + (f"; minimum the verdicts need {minimum / 1e6:.1f} MB" if minimum else ""))
        results = []
        for latency, bandwidth in _links(args.links):
            cfg = ServerConfig(latency=latency, bandwidth=bandwidth)
            dl = remote = float("inf")
            base: float | None = None
            with IndexServer(wheels, cfg, max_seconds=7200) as srv:
                for rnd in range(max(1, args.repeats)):
                    dl = min(dl, _download_then_check(srv, wheels, tmp))
                    srv.reset_accounting()
                    outs: dict[str, Any] = {}

                    def keep(ref: Any, out: Any, outs: dict[str, Any] = outs) -> None:
                        outs[ref.filename] = out

                    db = tmp / f"remote-{latency}-{bandwidth}-{rnd}.sqlite"
                    t0 = time.perf_counter()
                    summary = run_scan(
                        ScanTarget([f"{srv.base}/simple/"], str(db)),
                        scheduling=Scheduling(jobs=2, connections=args.connections),
                        feedback=Feedback(on_outcome=keep),
                    )
                    remote = min(remote, time.perf_counter() - t0)
                    reqs = sum(n for p, n in srv.acct.requests.items() if p.startswith("/files/"))
                    sent = sum(n for p, n in srv.acct.body_bytes.items()
                               if p.startswith("/files/"))  # fmt: skip
                    same = 0
                    for name, out in outs.items():
                        v = json.loads(out.verdict_json) if out.verdict_json else {}
                        v.pop("path", None)
                        same += v == local[name]
                    if args.baseline is not None:
                        bdb = tmp / f"base-{latency}-{bandwidth}-{rnd}.sqlite"
                        run = subprocess.run(
                            [sys.executable, "-c", _BASELINE, str(args.baseline.resolve()),
                             f"{srv.base}/simple/", str(bdb)],
                            capture_output=True, text=True, check=True,
                        )  # fmt: skip
                        secs = float(run.stdout.split()[-1])
                        base = secs if base is None else min(base, secs)
            row = {
                "latency_ms": latency * 1000, "bandwidth_MBps": bandwidth / 1e6,
                "remote_s": round(remote, 2), "download_check_s": round(dl, 2),
                "ratio": round(remote / dl, 3), "baseline_s": base and round(base, 2),
                "requests_per_wheel": round(reqs / len(wheels), 2),
                "target_requests_per_wheel": round(3 + binaries / len(wheels), 2),
                "bytes": sent, "bytes_of_full": round(sent / full, 4),
                "bytes_of_minimum": round(sent / minimum, 4) if minimum else None,
                "same_verdicts": f"{same}/{len(wheels)}", "scanned": summary.scanned,
            }  # fmt: skip
            results.append(row)
            bw = f"{bandwidth / 1e6:g} MB/s" if bandwidth else "no cap"
            print(f"link {latency * 1000:g} ms, {bw}: remote {remote:.2f} s, download+check "
                  f"{dl:.2f} s, ratio {remote / dl:.3f}"
                  + (f", baseline remote {base:.2f} s" if base is not None else "")
                  + f"; requests/wheel {reqs / len(wheels):.2f} (3 + binaries: "
                  f"{3 + binaries / len(wheels):.2f}); bytes {sent / 1e6:.1f} MB = "
                  f"{sent / full:.1%} of full"
                  + (f", {sent / minimum:.3f}x the minimum" if minimum else "")
                  + f"; verdicts equal to local {same}/{len(wheels)}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
