"""``wheelscan report``: summaries and exports of a scan store (``wheelscan scan --db``).

Reads the store only; never opens a wheel. Exit status 0 when the report was written, 2 when
the store cannot be read or an argument is wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..safe_text import eprint

__all__ = ["configure_parser", "execute", "write_report"]


def configure_parser(sub: Any) -> None:
    from ..report.records import FORMATS
    from ..rules.verdict import STATUSES
    from .options import add_db_argument, add_filter_arguments

    help_ = "Summarise or export a scan store: text, csv, jsonl, jsonl.zst or one HTML file."
    p = sub.add_parser("report", help=help_, description=help_)
    add_db_argument(p)
    p.add_argument("--format", "-f", choices=FORMATS, default="text")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file (default: stdout for text/jsonl; report.<format> otherwise);"
        " csv also writes OUT's .findings.csv beside it",
    )
    add_filter_arguments(p)
    p.add_argument(
        "--status",
        action="append",
        default=[],
        choices=STATUSES,
        help="only wheels with this status (repeatable)",
    )
    p.add_argument(
        "--top",
        type=int,
        default=20,
        metavar="N",
        help="rows in each ranking of the text report (default: %(default)s)",
    )


def write_report(db: str, fmt: str, output: str | None, filters: Any, top: int = 20) -> str:
    """Write one report; returns where it went (``-`` for stdout)."""
    from ..mirror.store import StoreReader
    from ..report.records import (
        iter_lines,
        iter_records,
        summarise_all,
        write_csv,
        write_jsonl,
        write_jsonl_zst,
        write_text,
    )

    to_stdout = fmt in ("text", "jsonl") and output in (None, "-")
    out = Path(output or f"report.{fmt}")
    if fmt == "text":
        s, mf = summarise_all(db, filters, top)
        if to_stdout:
            write_text(s, mf, sys.stdout, top=top, source=db)
            return "-"
        with open(out, "w", encoding="utf-8") as f:
            write_text(s, mf, f, top=top, source=db)
        return str(out)
    if fmt == "html":
        from ..report.html import render_html

        s, mf = summarise_all(db, filters, 50)
        with StoreReader(db) as store:
            out.write_text(render_html(store, filters, source=db, summary=s, mf=mf), "utf-8")
        return str(out)
    with StoreReader(db) as store:
        if fmt == "jsonl":
            if to_stdout:
                write_jsonl(iter_lines(store, filters), sys.stdout)
                return "-"
            with open(out, "w", encoding="utf-8") as f:
                write_jsonl(iter_lines(store, filters), f)
        elif fmt == "jsonl.zst":
            write_jsonl_zst(iter_lines(store, filters), out)
        else:
            write_csv(iter_records(store, filters), out)
        return str(out)


def execute(args: argparse.Namespace) -> int:
    from ..mirror.store import StoreError
    from ..report.records import findings_path, parse_filters

    try:
        filters = parse_filters(args.project, args.platform, args.status, args.since)
    except ValueError as e:
        eprint(f"wheelscan report: {e}")
        return 2
    try:
        where = write_report(args.db, args.format, args.output, filters, args.top)
    except StoreError as e:
        eprint(f"wheelscan report: {e}")
        return 2
    except BrokenPipeError:
        return 0
    if where != "-":
        extra = f" and {findings_path(Path(where))}" if args.format == "csv" else ""
        eprint(f"wheelscan report: wrote {where}{extra}")
    return 0
