"""Pin the abi3 differential corpus (benchmarks/corpus-abi3.json) from PyPI's JSON API.

The picks are projects that publish ``-abi3-`` Linux wheels, built by different toolchains
(pyo3/maturin, cffi, plain C, shiboken, sip, nanobind, a C++ build of OpenCV). From each
release one wheel is kept per architecture (x86_64, aarch64; manylinux first), as
benchmarks/pin_differential.py picks them, and only abi3 wheels stay. Fetch the result with

    python benchmarks/fetch_corpus.py --corpus benchmarks/corpus-abi3.json

    python benchmarks/pin_abi3.py [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pin_differential import pin_all, write_pins  # noqa: E402

OUT = HERE / "corpus-abi3.json"
ARCHES = ("x86_64", "aarch64")

# (name, version or "latest", toolchain, at most this many wheels, size cap in MB)
PICKS: list[tuple[str, str, str, int, int]] = [
    ("cryptography", "3.4.8", "rust-maturin+cffi", 2, 40),
    ("cryptography", "42.0.5", "rust-maturin", 2, 40),
    ("cryptography", "latest", "rust-maturin", 2, 40),
    ("bcrypt", "4.1.2", "rust-maturin", 2, 40),
    ("bcrypt", "latest", "rust-maturin", 2, 40),
    ("safetensors", "latest", "rust-maturin", 2, 40),
    ("tokenizers", "latest", "rust-maturin", 2, 40),
    ("nh3", "latest", "rust-maturin", 2, 40),
    ("uuid-utils", "latest", "rust-maturin", 2, 40),
    ("pynacl", "1.5.0", "cffi", 2, 40),
    ("argon2-cffi-bindings", "21.2.0", "cffi", 2, 40),
    ("psutil", "5.9.8", "c", 2, 40),
    ("psutil", "latest", "c", 2, 40),
    ("pycryptodome", "3.20.0", "c", 2, 40),
    ("pyzmq", "latest", "cython-cmake", 2, 40),
    ("shiboken6", "6.5.0", "shiboken", 2, 40),
    ("shiboken6", "latest", "shiboken", 2, 40),
    ("pyqt5", "5.15.10", "sip", 1, 40),
    ("pyqt6", "latest", "sip", 1, 40),
    ("drjit", "1.0.0", "nanobind", 1, 40),
    ("opencv-python-headless", "4.8.1.78", "cmake-c++", 2, 60),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    picks = [(n, v, t, 8, c) for n, v, t, _, c in PICKS]
    most = {n: m for n, _, _, m, _ in PICKS}

    def abi3(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [r for r in rows if "-abi3-" in r["filename"] and r["arch"] in ARCHES
                and r["libc"] == "manylinux"]  # fmt: skip
        return kept[: most[rows[0]["name"]]] if kept else kept

    write_pins(pin_all(picks, abi3), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
