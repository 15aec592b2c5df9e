"""Command-line root: ``wheelscan <subcommand>``; each subcommand lives in ``cli_<name>.py``."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

__all__ = ["main"]

# Subcommand modules, each with configure_parser(subparsers) and execute(args) -> int.
SUBCOMMANDS: tuple[str, ...] = ("scan", "rejudge", "check", "demo", "report")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wheelscan",
        description="Check Linux wheels' manylinux/musllinux tags against their binaries.",
    )
    p.add_argument("--version", action="version", version=f"wheelscan {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"wheelscan.cli_{name}").configure_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    module = importlib.import_module(f"wheelscan.cli_{args.command}")
    return int(module.execute(args))
