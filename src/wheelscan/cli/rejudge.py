"""``wheelscan rejudge --db FILE``: recompute every verdict from stored facts, no wheel opened."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from ..safe_text import eprint

__all__ = ["configure_parser", "execute", "rejudge"]


def rejudge(
    db: str,
    *,
    policy: str | None = None,
    exclude: tuple[str, ...] = (),
    strict: bool = False,
    stable_abi: str | None = None,
) -> Counter[str]:
    """Re-judge every row that has facts; returns the status counts over the whole store."""
    from ..facts import READABLE_FACTS_SCHEMAS, WheelFacts
    from ..mirror.store import Store
    from ..rules.verdict import make_judge

    judge = make_judge(policy, exclude, strict=strict, stable_abi=stable_abi)
    with Store(db) as store:
        for chunk in store.iter_facts():
            for row_id, filename, location, facts_json in chunk:
                data = json.loads(facts_json)
                if data.get("schema") not in READABLE_FACTS_SCHEMAS:
                    continue  # facts of a schema this version cannot read: only a rescan
                try:
                    facts = WheelFacts.from_dict(data)
                    status, verdict_json, policy_version = judge(facts, location)
                except Exception as e:  # one bad row must not stop the rest
                    eprint(f"wheelscan rejudge: {filename}: {e}")
                    continue
                store.update_verdict(row_id, status, verdict_json, policy_version,
                                    filename=filename, location=location)  # fmt: skip
        store.commit()
        return Counter(store.status_counts())


def configure_parser(sub: Any) -> None:
    from .options import add_db_argument, add_judge_arguments

    p = sub.add_parser(
        "rejudge",
        help="recompute verdicts in a scan store from its stored facts",
        description=(
            "Recompute every verdict of --db from the stored facts under the current (or "
            "given) policy, without opening a wheel. Exit status as for check."
        ),
    )
    add_db_argument(p)
    add_judge_arguments(p)


def execute(args: argparse.Namespace) -> int:
    from ..mirror.store import StoreError
    from .scan import exit_status

    t0 = time.perf_counter()
    try:
        counts = rejudge(
            args.db,
            policy=getattr(args, "policy", None),
            exclude=tuple(getattr(args, "exclude", None) or ()),
            strict=bool(getattr(args, "strict", False)),
            stable_abi=getattr(args, "stable_abi", None),
        )
    except (RuntimeError, StoreError, ValueError) as e:
        eprint(f"wheelscan rejudge: {e}")
        return 2
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing"
    print(
        f"wheelscan rejudge: {sum(counts.values())} wheels: {statuses}; "
        f"{time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return exit_status(counts)
