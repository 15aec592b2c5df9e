"""``wheelscan gc --db FILE``: delete the ELF facts no stored wheel uses any more."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ..safe_text import eprint

__all__ = ["configure_parser", "execute"]


def configure_parser(sub: Any) -> None:
    from .options import add_db_argument

    p = sub.add_parser(
        "gc",
        help="delete ELF facts no stored wheel uses any more, and compact the store",
        description=(
            "Delete the ELF facts of --db that no stored wheel links to any more (left by "
            "wheels re-scanned after their file changed) with their member-cache entries, "
            "rewrite the packs that held them, then VACUUM. One transaction: killed, the store "
            "is as it was. Refused while a scan or rejudge writes the store. Exit status 0, or "
            "2 if the store cannot be used."
        ),
    )
    add_db_argument(p)
    p.add_argument("--no-vacuum", action="store_true",
                   help="leave the freed pages in the file (no VACUUM)")  # fmt: skip


def execute(args: argparse.Namespace) -> int:
    from ..mirror.store import Store, StoreError

    t0 = time.perf_counter()
    if not os.path.isfile(args.db):
        eprint(f"wheelscan gc: {args.db}: no such scan store")
        return 2
    try:
        with Store(args.db) as store:
            got = store.collect_garbage(vacuum=not args.no_vacuum)
    except (StoreError, ValueError) as e:
        eprint(f"wheelscan gc: {e}")
        return 2
    print(
        f"wheelscan gc: {got.elf_rows} unreferenced ELF facts ({got.elf_bytes:,} bytes of "
        f"bodies) and {got.members} member-cache entries deleted; {got.packs_rewritten} packs "
        f"({got.pack_bytes_before:,} bytes) rewritten as {got.packs_written} "
        f"({got.pack_bytes_after:,} bytes); {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return 0
