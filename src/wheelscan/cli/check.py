"""``wheelscan check PATH...``: judge each wheel's platform tags and say why.

Output: one line per wheel (``--format text``, details with ``-v``) or JSON Lines
(``--format json``, one object per wheel, validated by ``data/check-schema.json``), in the
order the wheels were given, however many are judged at once (``--jobs``).
Exit status: 2 if any wheel is ``error`` or on usage errors, else 1 if any is ``mislabelled``,
else 0; 130 on Ctrl-C. A hostile wheel never produces a traceback: it becomes status ``error``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from ..environment import environment, hang_if_asked
from ..mirror.refs import WheelRef
from ..report.demangle import humanize
from ..safe_text import eprint, term
from .options import add_engine_argument, add_judge_arguments, add_record_argument

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from ..mirror.pool import ScanConfig
    from ..mirror.store import Outcome
    from ..rules.policy import PolicySet
    from ..rules.stableabi import StableAbi
    from ..rules.verdict import Verdict

__all__ = [
    "CheckWorker",
    "available_cores",
    "check_in_workers",
    "check_wheel",
    "configure_parser",
    "execute",
    "iter_wheels",
]


def configure_parser(sub: Any) -> None:
    help_ = "Judge wheels' manylinux/musllinux/linux platform tags against their binaries."
    p = sub.add_parser("check", help=help_, description=help_)
    p.add_argument("paths", nargs="+", metavar="PATH", help="a wheel, or a directory (recursed)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="one line per wheel, or one JSON object per wheel (data/check-schema.json)")
    add_engine_argument(p)
    add_judge_arguments(p)
    add_record_argument(p)
    p.add_argument("--jobs", "-j", type=_at_least_one, default=None, metavar="N",
                   help="wheels judged at once, each in a worker process; the output keeps "
                        "the order given (default: the cores this process may run on)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="text format: list findings (-vv: with info)")


def _at_least_one(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        msg = f"expected a whole number of at least 1, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return n


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


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
    from ..rules.verdict import judge

    try:
        facts = scan_wheel(path, engine=engine, verify_record=verify_record)
        v = judge(facts, policies, exclude=tuple(exclude), strict=strict, stable_abi=stable_abi)
    except Exception as e:  # one bad wheel (or an engine bug) must not end a bulk check
        v = _unjudged(path, f"{type(e).__name__}: {e}", policies, exclude, strict, engine)
    v.path = path
    return v


def _unjudged(path: str, error: str, policies: PolicySet, exclude: Sequence[str], strict: bool,
              engine: str | None) -> Verdict:  # fmt: skip
    """The ``error`` verdict of a wheel that could not be judged, saying why."""
    from ..rules.verdict import Verdict

    return Verdict(wheel=os.path.basename(path), status="error", path=path, error=error,
                   policy=dict(policies.provenance), exclude=list(exclude), strict=strict,
                   engine=engine)  # fmt: skip


class CheckWorker:
    """``check``'s work in a worker process: :func:`check_wheel`, with the policies loaded once
    per process; the verdict goes back as JSON (:meth:`Verdict.from_json` reads it)."""

    def __init__(self, cfg: ScanConfig) -> None:
        from ..rules.policy import load_policies
        from ..rules.stableabi import load_stable_abi

        self.cfg = cfg
        self.policies = load_policies(cfg.policy)
        self.stable_abi = load_stable_abi(cfg.stable_abi)

    def scan(self, location: str, filename: str) -> Outcome:
        from ..mirror.store import Outcome

        hang_if_asked(filename)
        cfg = self.cfg
        v = check_wheel(location, self.policies, engine=cfg.engine, exclude=cfg.exclude,
                        strict=cfg.strict, verify_record=cfg.verify_record,
                        stable_abi=self.stable_abi)  # fmt: skip
        return Outcome(location, filename, v.status, verdict_json=v.to_json())


@dataclass
class _Given(WheelRef):
    """A wheel as check was given it: ``location`` is the path as written (check keeps no
    store, and a verdict's ``path`` is what the user typed)."""

    index: int = 0  # its place among the wheels given


def check_in_workers(
    paths: Sequence[str],
    cfg: ScanConfig,
    policies: PolicySet,
    jobs: int,
    emit: Callable[[Verdict], None],
) -> None:
    """:func:`check_wheel` for every path in ``jobs`` worker processes (the project's pool:
    a worker that dies costs only its wheel, which gets an ``error`` verdict saying so);
    ``emit`` gets the verdicts in the order of ``paths``, each as soon as those before it."""
    from ..mirror.pool import LocalPool
    from ..rules.verdict import Verdict

    refs = [_Given(p, os.path.basename(p), size=_size(p), index=i) for i, p in enumerate(paths)]
    done: dict[int, Verdict] = {}
    following = 0

    def on_result(ref: WheelRef, out: Outcome) -> None:
        nonlocal following
        assert isinstance(ref, _Given)
        if out.verdict_json is not None:
            done[ref.index] = Verdict.from_json(out.verdict_json)
        else:  # the pool's own account: the worker died on this wheel
            error = (out.error or "no verdict").removeprefix(f"{ref.filename}: ")
            done[ref.index] = _unjudged(ref.location, error, policies, cfg.exclude, cfg.strict,
                                        cfg.engine)  # fmt: skip
        while following in done:
            emit(done.pop(following))
            following += 1

    # largest first (the longest-processing-time rule): a big wheel dispatched last would
    # leave the other workers idle while it alone finishes; the verdicts still come in order
    by_size = sorted(refs, key=lambda r: -(r.size or 0))
    # the workers are forks of this process (see LocalPool's start): check holds no store and
    # runs no thread, and what a worker needs is imported and loaded here once, so each
    # starts in milliseconds (execute loaded the policies, and their caches come along)
    from ..read import engine  # noqa: F401
    from ..rules import verdict  # noqa: F401

    LocalPool(cfg, jobs, timeout=None, worker=CheckWorker, start="fork").run(by_size, on_result)


def _size(path: str) -> int | None:
    """Bytes of the file (how the pool shares wheels out), None if it cannot be told."""
    try:
        return os.stat(path).st_size
    except OSError:
        return None


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

    def emit(v: Verdict) -> None:
        nonlocal worst
        if args.format == "json":
            out.write(json.dumps(v.to_dict(), sort_keys=False) + "\n")
        else:
            _text(v, args.verbose, out)
        out.flush()
        if v.status == "error":
            worst = 2
        elif v.status == "mislabelled" and worst < 1:
            worst = 1

    paths = [path for given in args.paths for path in iter_wheels(given)]
    jobs = min(args.jobs or available_cores(), len(paths))
    try:
        if jobs > 1:
            from ..mirror.pool import ScanConfig

            cfg = ScanConfig(engine=args.engine, member_cache=False, policy=args.policy,
                             stable_abi=getattr(args, "stable_abi", None),
                             exclude=tuple(args.exclude), strict=args.strict,
                             verify_record=args.verify_record)  # fmt: skip
            check_in_workers(paths, cfg, policies, jobs, emit)
        else:  # no process to start for one wheel, or one at a time
            for path in paths:
                emit(check_wheel(path, policies, engine=args.engine, exclude=args.exclude,
                                 strict=args.strict, verify_record=args.verify_record,
                                 stable_abi=stable_abi))  # fmt: skip
    except KeyboardInterrupt:
        eprint("wheelscan check: interrupted")
        return 130
    return worst
