"""The options several commands share, declared once (flag names are a contract: docs/cli.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..read.engine import ENGINES

if TYPE_CHECKING:
    import argparse

__all__ = [
    "add_db_argument",
    "add_engine_argument",
    "add_filter_arguments",
    "add_judge_arguments",
    "add_record_argument",
]


def add_db_argument(p: argparse.ArgumentParser) -> None:
    """``--db``: scan, rejudge and report."""
    p.add_argument("--db", default="wheelscan.sqlite", help="scan store (default: %(default)s)")


def add_engine_argument(p: argparse.ArgumentParser) -> None:
    """``--engine``: check and scan."""
    p.add_argument("--engine", choices=ENGINES, default=None,
                   help="scanner (default: native, or $WHEELSCAN_ENGINE)")  # fmt: skip


def add_judge_arguments(p: argparse.ArgumentParser) -> None:
    """``--exclude``, ``--policy``, ``--stable-abi``, ``--strict``: check, scan, rejudge."""
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="SONAME glob of a library provided by something else (repeatable)")
    p.add_argument("--policy", metavar="FILE", default=None,
                   help="policy JSON to judge with instead of the shipped one")
    p.add_argument("--stable-abi", metavar="FILE", default=None,
                   help="stable-ABI manifest (scripts/generate_stable_abi.py) to judge abi3 "
                        "wheels with instead of the shipped one")
    p.add_argument("--strict", action="store_true", help="warnings count as violations")


def add_record_argument(p: argparse.ArgumentParser) -> None:
    """``--verify-record``: check and scan."""
    p.add_argument("--verify-record", action="store_true",
                   help="also hash every member against RECORD (record-mismatch warnings); "
                        "inflates everything")  # fmt: skip


def add_filter_arguments(p: argparse.ArgumentParser) -> None:
    """``--project``, ``--platform``, ``--since``: which wheels scan reads and report covers."""
    p.add_argument("--project", action="append", default=[], metavar="NAME",
                   help="only this project (repeatable)")  # fmt: skip
    p.add_argument("--platform", action="append", default=[], metavar="GLOB",
                   help="only wheels with a platform tag matching GLOB (repeatable)")  # fmt: skip
    p.add_argument("--since", metavar="DATE",
                   help="only wheels uploaded (else modified) since DATE")  # fmt: skip
