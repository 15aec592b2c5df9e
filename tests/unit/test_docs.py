"""The docs promise what the code does: the CLI and findings references are generated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_references_are_current() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "docs_reference.py"), "--check"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for doc in ("docs/cli.md", "docs/findings.md", "docs/architecture.md", "docs/performance.md"):
        assert doc in readme, f"README does not link {doc}"
        assert (ROOT / doc).is_file()
