"""``wheelscan check PATH...``: judge each wheel's platform tags and say why.

Output: one line per wheel (``--format text``, details with ``-v``) or JSON Lines
(``--format json``, one object per wheel, validated by ``data/check-schema.json``).
Exit status: 2 if any wheel is ``error`` or on usage errors, else 1 if any is ``mislabelled``,
else 0. A hostile wheel never produces a traceback: it becomes status ``error``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ..environment import environment
from ..report.demangle import humanize
from ..safe_text import eprint, term
from .options import add_engine_argument, add_judge_arguments, add_record_argument

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ..rules.policy import PolicySet
    from ..rules.stableabi import StableAbi
    from ..rules.verdict import Verdict

__all__ = ["check_wheel", "configure_parser", "execute", "iter_wheels"]


def configure_parser(sub: Any) -> None:
    help_ = "Judge wheels' manylinux/musllinux/linux platform tags against their binaries."
    p = sub.add_parser("check", help=help_, description=help_)
    p.add_argument("paths", nargs="+", metavar="PATH", help="a wheel, or a directory (recursed)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="one line per wheel, or one JSON object per wheel (data/check-schema.json)")
    add_engine_argument(p)
    add_judge_arguments(p)
    add_record_argument(p)
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="text format: list findings (-vv: with info)")


def iter_wheels(path: str) -> Iterator[str]:
    """``path`` itself if it is a file, else every ``*.whl`` below it, sorted."""
    if not os.path.isdir(path):
        yield path
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for f in sorted(filenames):
            if f.endswith(".whl"):
                yield os.path.join(dirpath, f)


def check_wheel(
    path: str,
    policies: PolicySet,
    *,
    engine: str | None = None,
    exclude: Sequence[str] = (),
    strict: bool = False,
    verify_record: bool = False,
    stable_abi: StableAbi | None = None,
) -> Verdict:
    """Scan and judge one wheel file; an engine that raises gives an ``error`` verdict."""
    from ..read.engine import scan_wheel
    from ..rules.verdict import Verdict, judge

    try:
        facts = scan_wheel(path, engine=engine, verify_record=verify_record)
        v = judge(facts, policies, exclude=tuple(exclude), strict=strict, stable_abi=stable_abi)
    except Exception as e:  # one bad wheel (or an engine bug) must not end a bulk check
        v = Verdict(wheel=os.path.basename(path), status="error",
                    error=f"{type(e).__name__}: {e}", policy=dict(policies.provenance),
                    exclude=list(exclude), strict=strict, engine=engine)  # fmt: skip
    v.path = path
    return v


def _text(v: Verdict, verbose: int, out: TextIO) -> None:
    claimed = ", ".join(v.claims) or "no platform tag"
    line = f"{v.status.upper():<11} {v.wheel}: {claimed}"
    if v.minimal_tag:
        line += f" -> {v.minimal_tag}"
    if v.abi3 is not None and not v.abi3["holds"]:
        line += f"; {v.abi3['claim']} -> {v.abi3['minimal_tag'] or 'no abi3 tag'}"
    if v.status == "error" and v.error:
        line += f" ({v.error})"
    else:
        # the same reason found in several members is one reason on the summary line
        reasons = list(dict.fromkeys(humanize(f.detail) for f in v.findings
                                     if f.severity == "violation"))  # fmt: skip
        if reasons:
            extra = len(reasons) - 2
            line += f" ({'; '.join(reasons[:2])}{f'; +{extra} more' if extra > 0 else ''})"
    out.write(term(line) + "\n")  # names and details are the wheel's: see safe_text
    if verbose:
        for f in v.findings:
            if f.severity == "info" and verbose < 2:
                continue
            where = f" [{f.member}]" if f.member else ""
            out.write(term(f"    {f.severity}: {f.kind}{where}: {humanize(f.detail)}") + "\n")


def execute(args: argparse.Namespace) -> int:
    from ..rules.policy import PolicyError, load_policies
    from ..rules.stableabi import load_stable_abi

    try:
        policies = load_policies(args.policy)
        stable_abi = load_stable_abi(getattr(args, "stable_abi", None))
    except PolicyError as e:
        eprint(f"wheelscan check: {e}")
        return 2
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        eprint(f"wheelscan check: no such file or directory: {', '.join(missing)}")
        return 2
    if (args.engine or environment().engine or "native") == "native":
        try:
            importlib.import_module("wheelscan.read.native")
        except ImportError as e:
            print(f"wheelscan check: native engine unavailable ({e}); build it with "
                  "`python setup.py build_ext --inplace` or use --engine lief", file=sys.stderr)
            return 2
    worst = 0
    out = sys.stdout
    for given in args.paths:
        for path in iter_wheels(given):
            v = check_wheel(path, policies, engine=args.engine, exclude=args.exclude,
                            strict=args.strict, verify_record=args.verify_record,
                            stable_abi=stable_abi)  # fmt: skip
            if args.format == "json":
                out.write(json.dumps(v.to_dict(), sort_keys=False) + "\n")
            else:
                _text(v, args.verbose, out)
            out.flush()
            if v.status == "error":
                worst = 2
            elif v.status == "mislabelled" and worst < 1:
                worst = 1
    return worst
