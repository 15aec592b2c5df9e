"""Remote-scan benchmark: bytes and time of range-request scans against full downloads.

    python benchmarks/bench_remote.py [WHEEL_DIR] [--latency 0.02] [--json out.json]

Serves WHEEL_DIR (default: the byte-efficiency corpus of tests/test_remote_bytes.py, built
on the fly) from the test HTTP server on 127.0.0.1, optionally with a fixed delay per answer
to stand in for a distant index, and reports per wheel: full size, bytes fetched by
``scan_remote``, requests, the independent minimum the verdict needs (and that minimum plus
the native reader's forced reads), scan time over HTTP, and the time to download the whole
file through the same connection pool. Then a ``wheelscan scan URL`` run over the index
(2 workers) for wheels/s end to end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.httpserver import IndexServer, ServerConfig


def _corpus(tmp: Path) -> list[Path]:
    import pytest
    from test_remote_bytes import big_wheels

    class _Factory:
        def mktemp(self, name: str) -> Path:
            d = tmp / name
            d.mkdir(parents=True, exist_ok=True)
            return d

    fn: Any = getattr(big_wheels, "__wrapped__", None)
    if fn is None:  # pytest keeps the undecorated function here
        fn = big_wheels.__pytest_wrapped__.obj  # type: ignore[attr-defined]
    del pytest
    return list(fn(_Factory()))


def _download(url: str) -> tuple[int, float]:
    from wheelscan.mirror.httpfile import pool_manager

    t0 = time.perf_counter()
    r = pool_manager().request("GET", url, preload_content=True)
    return len(r.data), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("wheels", nargs="?", type=Path)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    from test_remote_bytes import minimum_bytes

    from wheelscan import judge, scan_wheel
    from wheelscan.cli.scan import run_scan
    from wheelscan.mirror.remote import scan_remote

    with tempfile.TemporaryDirectory() as tmp:
        wheels = sorted(args.wheels.glob("*.whl")) if args.wheels else _corpus(Path(tmp))
        rows = []
        with IndexServer(wheels, ServerConfig(latency=args.latency), max_seconds=3600) as srv:
            for w in wheels:
                url = srv.file_url(w.name)
                srv.reset_accounting()
                t0 = time.perf_counter()
                facts = scan_remote(url, w.name)
                secs = time.perf_counter() - t0
                requests = srv.acct.requests[f"/files/{w.name}"]
                full, dl_secs = _download(url)
                same = judge(facts).to_dict() == judge(scan_wheel(w)).to_dict()
                try:
                    m = minimum_bytes(w)
                    minimum, reader = m.total, m.reader
                except Exception:
                    minimum = reader = None
                rows.append({
                    "wheel": w.name, "size": full, "fetched": facts.transferred,
                    "requests": requests, "minimum": minimum, "reader_minimum": reader,
                    "scan_s": round(secs, 4), "download_s": round(dl_secs, 4),
                    "error": facts.error, "same_verdict": same,
                })  # fmt: skip
            db = Path(tmp) / "bench.sqlite"
            t0 = time.perf_counter()
            summary = run_scan([f"{srv.base}/simple/"], str(db), jobs=2)
            e2e = time.perf_counter() - t0
    print(f"latency per answer: {args.latency * 1000:.0f} ms")
    print(f"{'wheel':44} {'size':>9} {'fetched':>9} {'%':>6} {'req':>4} {'minimum':>9} "
          f"{'x min':>6} {'x rdr':>6} {'scan s':>7} {'dl s':>6}")  # fmt: skip
    for r in rows:
        share = r["fetched"] / r["size"] if r["size"] else 0
        xmin = f"{r['fetched'] / r['minimum']:.3f}" if r["minimum"] else "-"
        xrdr = f"{r['fetched'] / r['reader_minimum']:.3f}" if r["reader_minimum"] else "-"
        print(f"{r['wheel'][:44]:44} {r['size']:9} {r['fetched']:9} {share:6.1%} "
              f"{r['requests']:4} {r['minimum'] or '-':>9} {xmin:>6} {xrdr:>6} "
              f"{r['scan_s']:7.3f} {r['download_s']:6.3f}")  # fmt: skip
    tot = {k: sum(r[k] or 0 for r in rows) for k in ("size", "fetched", "minimum")}
    print(f"total: {tot['fetched']} of {tot['size']} bytes fetched "
          f"({tot['fetched'] / max(tot['size'], 1):.1%}); minimum {tot['minimum']}")  # fmt: skip
    differ = [r["wheel"] for r in rows if not r["same_verdict"]]
    print(f"verdicts equal to local scans: {len(rows) - len(differ)}/{len(rows)} {differ or ''}")
    print(f"end to end (wheelscan scan URL, 2 workers): {summary.line()} [{e2e:.1f} s]")
    if args.json:
        args.json.write_text(json.dumps({"latency": args.latency, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
