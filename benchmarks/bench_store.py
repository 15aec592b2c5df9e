"""Bytes per wheel of scan stores: each DB copied, checkpointed and vacuumed, then its size
over its wheel count, with the pages of each table and index (SQLite's ``dbstat``).

    python -m wheelscan scan SOURCE --db s2.sqlite    # this wheelscan: schema 2
    python benchmarks/bench_store.py s1.sqlite s2.sqlite
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
from pathlib import Path


def measure(db: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / db.name
        shutil.copy(db, copy)
        for side in ("-wal", "-shm"):
            if Path(f"{db}{side}").exists():
                shutil.copy(f"{db}{side}", f"{copy}{side}")
        con = sqlite3.connect(copy)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # VACUUM's pages are in the WAL
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        (n,) = con.execute("SELECT count(*) FROM wheels").fetchone()
        size = copy.stat().st_size
        print(f"{db}: schema {version[0]}, {n} wheels, {size:,} bytes, "
              f"{size / max(n, 1):,.0f} bytes/wheel")  # fmt: skip
        try:
            rows = con.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
        except sqlite3.OperationalError:  # an SQLite built without dbstat
            rows = []
        for name, pages in rows:
            print(f"    {name:32} {pages:>12,} {pages / max(n, 1):>9,.0f}/wheel")
        con.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("db", nargs="+", type=Path)
    for db in p.parse_args().db:
        measure(db)


if __name__ == "__main__":
    main()
