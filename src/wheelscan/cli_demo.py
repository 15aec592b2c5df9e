"""``wheelscan demo [--out DIR]``: build a sample mirror from binaries on this machine, judge
every wheel in it, and write the reports (text and JSON Lines) into DIR.

The sample (see :mod:`wheelscan.sample`) needs no data, compiler or network; some wheels keep
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
    from .cli_check import _check_one, _text
    from .policy import load_policies
    from .sample import make_sample_mirror

    out = Path(args.out)
    wheels_dir = out / "wheels"
    samples = make_sample_mirror(wheels_dir)
    policies = load_policies(None)
    check_args = argparse.Namespace(engine=None, exclude=[], strict=False)
    text = io.StringIO()
    counts: Counter[str] = Counter()
    with (out / "report.jsonl").open("w") as jl:
        for s in samples:
            v = _check_one(str(s.path), check_args, policies)
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
    return 0
