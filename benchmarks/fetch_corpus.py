"""Download the pinned benchmark corpus (benchmarks/corpus.json) into a cache directory.

Every file is verified against its pinned sha256 and size; files already present and correct
are skipped, so re-runs are free. The cache lives outside git: ``--cache DIR``, else
``$WHEELSCAN_BENCH_CACHE``, else ``~/.cache/wheelscan-bench``.

    python benchmarks/fetch_corpus.py [--cache DIR] [--jobs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.json"
_CHUNK = 1 << 20


def default_cache() -> Path:
    env = os.environ.get("WHEELSCAN_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "wheelscan-bench"


def load_corpus(path: Path = CORPUS) -> list[dict[str, Any]]:
    wheels: list[dict[str, Any]] = json.loads(path.read_text())["wheels"]
    return wheels


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def is_valid(path: Path, entry: dict[str, Any]) -> bool:
    return (
        path.is_file()
        and path.stat().st_size == entry["size"]
        and sha256_of(path) == entry["sha256"]
    )


def fetch_one(entry: dict[str, Any], cache: Path) -> str:
    dest = cache / entry["filename"]
    if is_valid(dest, entry):
        return "cached"
    part = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    size = 0
    with urllib.request.urlopen(entry["url"], timeout=120) as resp, part.open("wb") as out:
        while block := resp.read(_CHUNK):
            h.update(block)
            size += len(block)
            if size > entry["size"]:
                break
            out.write(block)
    if size != entry["size"] or h.hexdigest() != entry["sha256"]:
        part.unlink(missing_ok=True)
        msg = f"{entry['filename']}: size {size} / sha256 {h.hexdigest()} do not match the pin"
        raise ValueError(msg)
    part.replace(dest)
    return "downloaded"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="cache directory")
    ap.add_argument("--jobs", type=int, default=4, help="parallel downloads")
    args = ap.parse_args(argv)
    cache: Path = args.cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    wheels = load_corpus()
    t0 = time.monotonic()
    failed = 0

    def run(entry: dict[str, Any]) -> tuple[dict[str, Any], str]:
        try:
            return entry, fetch_one(entry, cache)
        except Exception as e:  # report every failure, keep fetching
            return entry, f"FAILED: {e}"

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for entry, status in pool.map(run, wheels):
            failed += status.startswith("FAILED")
            print(f"{status:>10}  {entry['size'] / 1e6:8.1f} MB  {entry['filename']}")
    total = sum(w["size"] for w in wheels)
    print(
        f"{len(wheels) - failed}/{len(wheels)} wheels, {total / 1e6:.1f} MB in {cache} "
        f"({time.monotonic() - t0:.1f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
