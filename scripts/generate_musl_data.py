"""Regenerate src/wheelscan/data/musl-1.2.json: symbols a binary can only import from musl >= 1.2.

musl has no symbol versioning, so a musllinux_1_1 claim can only be disproved by name: musl
1.2.0 made ``time_t`` 64-bit on 32-bit archs and redirects the time-related functions to new
``__*_time64`` / ``__*64`` entry points through ``__REDIR(name, target)`` in its public headers
(active where ``_REDIR_TIME64`` is defined). A binary importing one of those targets was built
against musl >= 1.2.0 headers and fails to load on musl 1.1.

Reads the headers straight from a musl git repository at a given tag (no build needed):

    python scripts/generate_musl_data.py /path/to/musl.git [--tag v1.2.0]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "wheelscan" / "data" / "musl-1.2.json"
_REDIR = re.compile(r"__REDIR\(\s*(\w+)\s*,\s*(\w+)\s*\)")
_TIME64_ARCH = re.compile(r"^arch/(\w+)/bits/alltypes\.h\.in$")
# musl arch directory -> wheel architecture names of the policies.
_ARCH_NAMES = {"i386": "i686", "arm": "armv7l"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def build(repo: Path, tag: str) -> dict[str, object]:
    commit = _git(repo, "rev-parse", f"{tag}^{{commit}}").strip()
    files = [f for f in _git(repo, "ls-tree", "-r", "--name-only", commit, "include").split()
             if f.endswith(".h")]
    texts = {f: _git(repo, "show", f"{commit}:{f}") for f in files}
    redirects = {
        target: public
        for text in texts.values()
        for public, target in _REDIR.findall(text)
        if public != "x"  # the macro's own definition
    }
    archs = []
    for f in _git(repo, "grep", "-l", "_REDIR_TIME64 1", commit, "--", "arch").split():
        m = _TIME64_ARCH.match(f.partition(":")[2])
        if m and m.group(1) in _ARCH_NAMES:
            archs.append(_ARCH_NAMES[m.group(1)])
    return {
        "format": 1,
        "provenance": {
            "source": "musl libc public headers, __REDIR(name, target) declarations",
            "repository": "https://git.musl-libc.org/cgit/musl (GitHub mirror bminor/musl)",
            "tag": tag,
            "commit": commit,
            "files": sorted(f for f, text in texts.items() if "__REDIR(" in text),
            "release_notes": "WHATSNEW 1.2.0: time_t is now 64-bit on all archs",
        },
        "min_musl": [1, 2],
        "archs": sorted(archs),
        "symbols": dict(sorted(redirects.items())),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo", type=Path, help="a musl git directory (bare or .git)")
    ap.add_argument("--tag", default="v1.2.0")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    data = build(args.repo, args.tag)
    args.output.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
