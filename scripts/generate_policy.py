"""Regenerate src/wheelscan/data/policy.json from the installed auditwheel's policy files.

The policies are never typed by hand: this script copies auditwheel's published
``manylinux-policy.json`` and ``musllinux-policy.json`` (package data of the release pinned
in the ``test`` extra) into one file, drops the catch-all ``linux`` entries, records each
policy's PEP 600/656 version, and stamps the provenance (auditwheel version, sha256 of each
source file). ``tests/unit/test_policy.py`` regenerates it in memory and compares.

Usage: python scripts/generate_policy.py [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from importlib import metadata, resources
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "src" / "wheelscan" / "data" / "policy.json"
SOURCES = {"glibc": "manylinux-policy.json", "musl": "musllinux-policy.json"}
FORMAT = 1
_NAME = re.compile(r"^(manylinux|musllinux)_(\d+)_(\d+)$")


def build_policy_data() -> dict[str, Any]:
    """The policy document, built from the installed auditwheel's package data."""
    files: dict[str, str] = {}
    policies: list[dict[str, Any]] = []
    pkg = resources.files("auditwheel") / "policy"
    for libc, fname in SOURCES.items():
        raw = (pkg / fname).read_bytes()
        files[fname] = hashlib.sha256(raw).hexdigest()
        for p in json.loads(raw):
            if p["name"] == "linux":
                continue
            m = _NAME.match(p["name"])
            if m is None:
                raise ValueError(f"{fname}: unexpected policy name {p['name']!r}")
            policies.append(
                {
                    "name": p["name"],
                    "family": m.group(1),
                    "libc": libc,
                    "version": [int(m.group(2)), int(m.group(3))],
                    "aliases": list(p["aliases"]),
                    "priority": p["priority"],
                    "symbol_versions": {
                        arch: {pre: sorted(v) for pre, v in sorted(pres.items())}
                        for arch, pres in sorted(p["symbol_versions"].items())
                    },
                    "lib_whitelist": sorted(p["lib_whitelist"]),
                    "blacklist": {k: sorted(v) for k, v in sorted(p["blacklist"].items())},
                }
            )
    policies.sort(key=lambda p: (p["libc"], p["version"]))
    return {
        "format": FORMAT,
        "provenance": {
            "source": "auditwheel",
            "auditwheel_version": metadata.version("auditwheel"),
            "files": files,
        },
        "policies": policies,
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the shipped file differs")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    text = render(build_policy_data())
    if args.check:
        same = args.output.exists() and args.output.read_text() == text
        print("up to date" if same else f"{args.output} is stale", file=sys.stderr)
        return 0 if same else 1
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
