"""Command-line root: ``wheelscan <subcommand>``; each subcommand lives in ``cli/<name>.py``."""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

__all__ = ["main"]

# Subcommand modules, each with configure_parser(subparsers) and execute(args) -> int.
SUBCOMMANDS: tuple[str, ...] = ("scan", "rejudge", "check", "demo", "report", "gc")


class _Version(argparse.Action):
    """``--version``: the package version and the deflate implementation scans will use (whether
    libisal is built for and loaded decides much of the speed, see the README's quick start)."""

    def __init__(self, option_strings: list[str], dest: str, **kw: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        try:
            from .._native import inflate

            native = f"native inflater {inflate.inflater} (built: {', '.join(inflate.INFLATERS)})"
            if inflate.LIBISAL_ERROR:
                native += f"; libisal: {inflate.LIBISAL_ERROR}"
            if inflate.LIBZNG_ERROR:
                native += f"; libz-ng: {inflate.LIBZNG_ERROR}"
        except ImportError as e:
            native = f"native engine unavailable: {e}"
        sys.stdout.write(f"wheelscan {__version__}; {native}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wheelscan",
        description="Check Linux wheels' manylinux/musllinux tags against their binaries.",
    )
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"wheelscan.cli.{name}").configure_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    module = importlib.import_module(f"wheelscan.cli.{args.command}")
    return int(module.execute(args))
