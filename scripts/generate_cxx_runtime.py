"""Regenerate src/wheelscan/data/cxx-runtime.json: libstdc++'s and libgcc's *own* exports.

A wheel binary that defines and exports one of these symbols carries a piece of the C++/GCC
runtime (typically statically linked devtoolset ``libstdc++_nonshared.a``); when it loads next
to the system libstdc++ the dynamic linker may bind other libraries to the copy. The list is
read from the real runtime libraries of the build machine: dynamic symbols that are defined,
STB_GLOBAL (template instantiations are weak or unique and are skipped) and whose demangled
name (before its parameter list) carries no template argument list. Only names with the
prefixes the facts keep (:data:`wheelscan.facts.RUNTIME_PREFIXES`) are stored.

    python scripts/generate_cxx_runtime.py [LIB ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from elftools.elf.elffile import ELFFile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from wheelscan.facts import RUNTIME_PREFIXES

OUT = Path(__file__).resolve().parent.parent / "src" / "wheelscan" / "data" / "cxx-runtime.json"
DEFAULT_LIBS = (
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/lib/x86_64-linux-gnu/libgcc_s.so.1",
)


def _exports(path: Path) -> list[str]:
    with path.open("rb") as f:
        elf = ELFFile(f)
        dynsym = elf.get_section_by_name(".dynsym")
        names = set()
        for sym in dynsym.iter_symbols():
            if (sym["st_shndx"] != "SHN_UNDEF" and sym["st_info"]["bind"] == "STB_GLOBAL"
                    and sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT")
                    and sym.name.startswith(RUNTIME_PREFIXES)):
                names.add(sym.name)
    ordered = sorted(names)
    demangled = subprocess.run(["c++filt"], input="\n".join(ordered), capture_output=True,
                               text=True, check=True).stdout.splitlines()
    return [n for n, d in zip(ordered, demangled, strict=True) if "<" not in _qualified(d)]


def _qualified(demangled: str) -> str:
    """The demangled name without its parameter list (templated parameter types are fine)."""
    depth = 0
    for i, c in enumerate(demangled):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "(" and depth == 0 and not demangled[:i].endswith("operator"):
            return demangled[:i]
    return demangled


def _package(path: Path) -> str | None:
    r = subprocess.run(["dpkg", "-S", str(path)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return None
    pkg = r.stdout.split(":", 1)[0]
    v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                       text=True, check=False).stdout
    return f"{pkg} {v}".strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("libs", nargs="*", type=Path, default=[Path(p) for p in DEFAULT_LIBS])
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    symbols: set[str] = set()
    sources = []
    for lib in args.libs:
        real = lib.resolve()
        sources.append({"path": str(lib), "file": real.name,
                        "sha256": hashlib.sha256(real.read_bytes()).hexdigest(),
                        "package": _package(lib)})
        symbols.update(_exports(real))
    data = {"format": 1,
            "provenance": {"method": "defined STB_GLOBAL dynsym entries, non-template "
                                     "(c++filt shows no '<'), with wheelscan RUNTIME_PREFIXES",
                           "sources": sources},
            "symbols": sorted(symbols)}
    args.output.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
