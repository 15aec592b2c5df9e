"""``wheelscan demo [--out DIR]``: build a sample mirror from binaries on this machine, judge
every wheel in it, and write the reports (text and JSON Lines) into DIR; then scan the sample
into ``DIR/wheelscan.sqlite`` as ``wheelscan scan`` does and write the batch HTML report
``DIR/report.html`` from it (``wheelscan report``).

The sample (see :mod:`wheelscan.cli.sample`) needs no data, compiler or network; some wheels keep
their published tags, some are deliberately mislabelled. Exit status 0 when the reports were
written: mislabelled wheels are the point of the demo, not a failure.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["configure_parser", "execute"]


def configure_parser(sub: Any) -> None:
    help_ = "Scan a generated sample of real binaries and write a report (no data needed)."
    p = sub.add_parser("demo", help=help_, description=help_)
    p.add_argument("--out", default="wheelscan-demo", metavar="DIR",
                   help="where the sample wheels and reports go (default: ./wheelscan-demo)")


def execute(args: argparse.Namespace) -> int:
    from ..rules.policy import load_policies
    from .check import _text, check_wheel
    from .sample import make_sample_mirror

    out = Path(args.out)
    wheels_dir = out / "wheels"
    samples = make_sample_mirror(wheels_dir)
    policies = load_policies(None)
    text = io.StringIO()
    counts: Counter[str] = Counter()
    with (out / "report.jsonl").open("w") as jl:
        for s in samples:
            v = check_wheel(str(s.path), policies)
            counts[v.status] += 1
            jl.write(json.dumps(v.to_dict()) + "\n")
            text.write(f"# {s.why}\n")
            _text(v, 1, text)
            text.write("\n")
    (out / "report.txt").write_text(text.getvalue())
    sys.stdout.write(text.getvalue())
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"wheelscan demo: {len(samples)} sample wheels in {wheels_dir}: {summary}")
    print(f"wheelscan demo: reports written to {out / 'report.txt'} and {out / 'report.jsonl'}")
    html = _scan_and_report(wheels_dir, out)
    print(f"wheelscan demo: scanned into {out / 'wheelscan.sqlite'}; HTML report: {html}")
    return 0


def _scan_and_report(wheels_dir: Path, out: Path) -> Path:
    """The mirror workflow on the sample: ``wheelscan scan`` into a fresh store, then
    ``wheelscan report --format html``."""
    import os

    from ..report.records import ALL
    from .report import write_report
    from .scan import ScanTarget, Scheduling, run_scan

    db = out / "wheelscan.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    run_scan(ScanTarget([str(wheels_dir)], str(db)),
             scheduling=Scheduling(jobs=min(2, os.cpu_count() or 1)))  # fmt: skip
    html = out / "report.html"
    write_report(str(db), "html", str(html), ALL)
    return html
