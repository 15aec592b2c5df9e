"""Compare wheelscan's verdicts with auditwheel 6.8.2 (run hermetically) over real wheels.

For every wheel under the given directories: wheelscan's minimal tag and ok/mislabelled
decision next to auditwheel's overall policy and its decision on the filename's claims,
with the time each took. auditwheel runs through its Python API with no host library paths
(tests/aw_hermetic.py). Not a CI requirement: a benchmark and a source of real findings.

    python benchmarks/compare_auditwheel.py [--engine lief|native] [--json OUT] DIR...
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from aw_hermetic import claim_holds, show  # noqa: E402

from wheelscan import judge, scan_wheel  # noqa: E402
from wheelscan.policy import default_policies  # noqa: E402
from wheelscan.tags import parse_claims  # noqa: E402


def compare(path: Path, engine: str, tmp: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    v = judge(scan_wheel(path, engine=engine))
    t1 = time.perf_counter()
    aw = show(path, tmp)
    t2 = time.perf_counter()
    claims = [c.canonical for c in parse_claims(v.claims, default_policies().aliases())]
    aw_ok = aw.error is None and bool(claims) and all(claim_holds(c, aw.overall) for c in claims)
    ours_ok = v.status == "ok"
    return {
        "wheel": path.name,
        "status": v.status,
        "minimal_tag": v.minimal_tag,
        "auditwheel": aw.overall,
        "auditwheel_error": aw.error,
        "agree_tag": v.minimal_tag == aw.overall,
        "agree_decision": ours_ok == aw_ok,
        "violations": [f"{f.kind}: {f.member}: {f.detail}" for f in v.violations][:8],
        "wheelscan_s": round(t1 - t0, 3),
        "auditwheel_s": round(t2 - t1, 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--engine", default="lief")
    ap.add_argument("--json", type=Path, default=None, help="write all rows here")
    args = ap.parse_args(argv)
    wheels = sorted(p for d in args.dirs for p in (d.rglob("*.whl") if d.is_dir() else [d]))
    rows = []
    with tempfile.TemporaryDirectory(prefix="wheelscan-aw-") as tmp:
        for p in wheels:
            r = compare(p, args.engine, Path(tmp))
            rows.append(r)
            mark = "=" if r["agree_tag"] and r["agree_decision"] else "!"
            print(
                f"{mark} {r['status']:<11} {r['minimal_tag'] or '-':<24} "
                f"aw={r['auditwheel'] or (r['auditwheel_error'] or '')[:40]:<24} "
                f"{r['wheelscan_s']:7.2f}s {r['auditwheel_s']:7.2f}s  {p.name}",
                flush=True,
            )
    ws = sum(r["wheelscan_s"] for r in rows)
    aw = sum(r["auditwheel_s"] for r in rows)
    agree = sum(1 for r in rows if r["agree_tag"] and r["agree_decision"])
    print(f"{len(rows)} wheels: {agree} agree; wheelscan {ws:.1f}s, auditwheel {aw:.1f}s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
