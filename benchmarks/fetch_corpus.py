"""Download the pinned benchmark corpus (benchmarks/corpus.json) into a cache directory.

Every file is verified against its pinned sha256 and size; files already present and correct
are skipped, so re-runs are free. The cache lives outside git: ``--cache DIR``, else
``$WHEELSCAN_BENCH_CACHE``, else ``~/.cache/wheelscan-bench``.

    python benchmarks/fetch_corpus.py [--corpus FILE] [--cache DIR] [--jobs N] [--pin]

Files come through pip (``pip download`` of the exact name, version and wheel tags, from
whatever index pip is configured with), so the corpus names projects and files, not hosts.
An entry that records the ``url`` it was pinned from (benchmarks/pin_differential.py) is
fetched from there directly, which is much faster than a pip run per wheel; the pin is checked
the same way. ``--corpus`` picks another corpus file (default benchmarks/corpus.json).
``--pin`` records sha256 and size for entries that have none yet (adding a wheel to the corpus).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
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


def _pip_download(entry: dict[str, Any], into: Path) -> Path:
    """Let pip fetch exactly ``entry['filename']``: its name, version and wheel tags."""
    fn = entry["filename"]
    py, abi, plat = fn[: -len(".whl")].split("-")[-3:]
    pytag = py.split(".")[-1]
    impl, pyver = re.fullmatch(r"([a-z]+)(\d+)", pytag).groups()  # type: ignore[union-attr]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--only-binary=:all:", "--dest", str(into), "--implementation", impl,
           "--python-version", pyver]
    for a in abi.split("."):
        cmd += ["--abi", a]
    for p in plat.split("."):
        cmd += ["--platform", p]
    cmd.append(f"{entry['name']}=={entry['version']}")
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    got = into / fn
    if r.returncode != 0 or not got.is_file():
        found = ", ".join(sorted(x.name for x in into.iterdir())) or "nothing"
        msg = f"{fn}: pip download gave {found} (exit {r.returncode}) {r.stderr.strip()[-300:]}"
        raise ValueError(msg)
    return got


def _url_download(entry: dict[str, Any], into: Path) -> Path:
    """Fetch ``entry['url']`` (the file PyPI's JSON API named when the entry was pinned)."""
    got = into / entry["filename"]
    with urllib.request.urlopen(entry["url"], timeout=300) as r, got.open("wb") as f:
        shutil.copyfileobj(r, f, _CHUNK)
    return got


def fetch_one(entry: dict[str, Any], cache: Path, *, pin: bool = False) -> str:
    dest = cache / entry["filename"]
    if "sha256" in entry and is_valid(dest, entry):
        return "cached"
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        fetch = _url_download if "url" in entry else _pip_download
        got = fetch(entry, Path(tmp))
        digest, size = sha256_of(got), got.stat().st_size
        if pin and "sha256" not in entry:
            entry["sha256"], entry["size"] = digest, size
        if size != entry["size"] or digest != entry["sha256"]:
            msg = f"{entry['filename']}: size {size} / sha256 {digest} do not match the pin"
            raise ValueError(msg)
        shutil.move(str(got), dest)
    return "downloaded"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="corpus file (JSON)")
    ap.add_argument("--cache", type=Path, default=None, help="cache directory")
    ap.add_argument("--jobs", type=int, default=4, help="parallel downloads")
    ap.add_argument("--pin", action="store_true",
                    help="record sha256/size of entries without them in corpus.json")
    args = ap.parse_args(argv)
    cache: Path = args.cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    wheels = load_corpus(args.corpus)
    t0 = time.monotonic()
    failed = 0

    def run(entry: dict[str, Any]) -> tuple[dict[str, Any], str]:
        try:
            return entry, fetch_one(entry, cache, pin=args.pin)
        except Exception as e:  # report every failure, keep fetching
            return entry, f"FAILED: {e}"

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for entry, status in pool.map(run, wheels):
            failed += status.startswith("FAILED")
            print(f"{status:>10}  {entry['size'] / 1e6:8.1f} MB  {entry['filename']}")
    if args.pin:
        args.corpus.write_text(json.dumps({"wheels": wheels}, indent=1) + "\n")
    total = sum(w.get("size", 0) for w in wheels)
    print(
        f"{len(wheels) - failed}/{len(wheels)} wheels, {total / 1e6:.1f} MB in {cache} "
        f"({time.monotonic() - t0:.1f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
