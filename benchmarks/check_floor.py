"""Cross-check the floor's needed prefixes against section headers (a second, independent way).

floor.py finds each table through PT_DYNAMIC as the loader does; here the same end is computed
from the section headers (.interp, .dynamic, .dynstr, .dynsym, .gnu.version*, .hash,
.gnu.hash, allocated notes, program headers). Members without section headers are skipped.

    python benchmarks/check_floor.py [--cache DIR]      # after one run.py (it builds the data)
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

from elftools.elf.elffile import ELFFile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fetch_corpus import default_cache
from run import FLOOR_CACHE_VERSION

_TABLES = {
    ".interp", ".dynamic", ".dynstr", ".dynsym", ".gnu.version", ".gnu.version_r",
    ".gnu.version_d", ".gnu.hash", ".hash",
}  # fmt: skip
_SHF_ALLOC = 2


def section_prefix(data: bytes) -> int | None:
    elf = ELFFile(io.BytesIO(data))
    if elf.num_sections() == 0:
        return None
    hdr = elf.header
    end: int = hdr["e_phoff"] + hdr["e_phnum"] * hdr["e_phentsize"]
    for s in elf.iter_sections():
        if s["sh_type"] == "SHT_NOBITS":
            continue
        if s.name in _TABLES or (s["sh_type"] == "SHT_NOTE" and s["sh_flags"] & _SHF_ALLOC):
            end = max(end, s["sh_offset"] + s["sh_size"])
    return end


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    cache: Path = args.cache or default_cache()
    fdata = json.loads((cache / f"floor-v{FLOOR_CACHE_VERSION}.json").read_text())
    compared = differ = 0
    for wheel, info in sorted(fdata.items()):
        with zipfile.ZipFile(cache / wheel) as zf:
            for m in info["members"]:
                if "prefix" not in m:
                    continue
                expected = section_prefix(zf.read(m["name"]))
                if expected is None:
                    continue
                compared += 1
                if expected != m["prefix"]:
                    differ += 1
                    print(
                        f"DIFFER {wheel}:{m['name']}: floor {m['prefix']} ({m['limiter']}), "
                        f"sections {expected}"
                    )
    print(f"{compared} ELF members compared, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
