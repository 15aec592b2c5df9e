"""The fixture corpus: real ELF files compiled at test time, packed into real wheels.

:func:`build_corpus` compiles every fixture once (the session fixture in conftest.py calls it)
and returns :class:`Corpus`: a list of :class:`CorpusWheel` (path, readable id) whose ELF
members each carry an :class:`ElfExpect` derived from how the fixture was *built* (stub
versions imported, DT_NEEDED order, RPATH/RUNPATH, stack flag, class/endianness/machine), so
tests can check both engines against something neither engine computed. :func:`readelf_facts`
is a second independent oracle (binutils ``readelf``) for the files built on disk.

Other suites reuse it: ``from helpers.corpus import build_corpus`` (tests/ is on sys.path under
pytest), or the ``corpus`` session fixture.
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.builders import (
    COMPILERS,
    MUSL_CC,
    Import,
    build_elf,
    build_stub,
    drop_gnu_stack,
    drop_section_headers,
    have,
    make_wheel,
    mark_version_weak,
)
from wheelscan.facts import IMPORT_NAME_CAP, RUNTIME_EXPORT_CAP

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from wheelscan.facts import ElfFacts

__all__ = [
    "ARCHES",
    "WHEEL_IDS",
    "Corpus",
    "CorpusWheel",
    "ElfExpect",
    "build_corpus",
    "corpus_wheel",
    "expectation_mismatches",
    "in_ci",
    "missing_toolchains",
    "readelf_facts",
    "readelf_mismatches",
]

# arch -> (ELF class, endianness, e_machine): what the compiler for that arch must produce.
ARCHES: dict[str, tuple[int, str, int]] = {
    "x86_64": (64, "little", 62),
    "i686": (32, "little", 3),
    "aarch64": (64, "little", 183),
    "armv7l": (32, "little", 40),
    "s390x": (64, "big", 22),
}

# Stub libraries: soname -> {version node: symbols}. Real-looking names, hermetic versions.
LIBC_VERSIONS = {
    "GLIBC_2.2.5": ["malloc", "free"],
    "GLIBC_2.14": ["memcpy"],
    "GLIBC_2.17": ["clock_gettime"],
    "GLIBC_2.28": ["fcntl64"],
    "GLIBC_2.30": ["gettid"],  # core.so gets VER_FLG_WEAK on it, patched in
    "GLIBC_2.34": ["pthread_create", "dlopen"],
}
LIBM_VERSIONS = {"GLIBC_2.2.5": ["cos"], "GLIBC_2.27": ["expf"]}
LIBSTDCXX_VERSIONS = {
    "GLIBCXX_3.4": ["_ZNSt8ios_base4InitC1Ev"],
    "GLIBCXX_3.4.21": ["_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm"],
    "GLIBCXX_3.4.26": ["_ZNSt13random_device9_M_getvalEv"],
    "CXXABI_1.3": ["__cxa_begin_catch", "__cxa_end_catch"],
    "CXXABI_1.3.9": ["_ZdlPvm"],
}
LIBGCC_VERSIONS = {"GCC_3.0": ["_Unwind_Resume"], "GCC_4.2.0": ["_Unwind_GetIPInfo"]}
LIBFOO_UNVERSIONED = ["foo_init", "foo_optional"]

RUNTIME_LIKE = [
    "__once_proxy",
    "_ZNSt6thread15_M_start_threadESt10unique_ptrINS_6_StateESt14default_deleteIS1_EEPFvvE",
]


#: Every corpus wheel id and the fixture family (toolchain) it needs; None: always built.
WHEEL_IDS: dict[str, str | None] = {
    "x86_64-deflate": "x86_64",
    "x86_64-stored": "x86_64",
    "x86_64-zstd": "x86_64",
    "x86_64-zip64": "x86_64",
    "x86_64-mixed-norecord": "x86_64",
    "i686-deflate": "i686",
    "aarch64-zstd": "aarch64",
    "armv7l-stored": "armv7l",
    "s390x-deflate-zip64": "s390x",
    "musl-deflate": "musl",
    "pure-any": None,
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_toolchains() -> dict[str, str]:
    """Fixture family -> why it cannot be built on this machine."""
    missing = {
        arch: f"{cc} not installed (scripts/install-test-deps.sh)"
        for arch, cc in COMPILERS.items()
        if not have(cc)
    }
    if not have(MUSL_CC):
        missing["musl"] = f"{MUSL_CC} not installed (musl-tools)"
    if not have("g++"):
        missing["c++"] = "g++ not installed"
    if not have("readelf"):
        missing["readelf"] = "binutils readelf not installed"
    return missing


@dataclass
class ElfExpect:
    """What one fixture ELF must look like, known from its construction. None: not asserted."""

    source: Path  # the file as built, for readelf
    arch: str
    elf_class: int
    endian: str
    machine: int
    e_type: int = 3
    needed: list[str] | None = None  # exact, in order
    needed_includes: list[str] = field(default_factory=list)
    soname: str | None = None
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    stack: str = "noexec"
    # (library, version) -> exact symbol names of that versioned group
    versioned_imports: dict[tuple[str, str], set[str]] | None = None
    unversioned_includes: set[str] = field(default_factory=set)
    weak_imports: set[str] = field(default_factory=set)
    weak_versions: set[str] | None = None  # versions whose Vernaux must carry VER_FLG_WEAK
    version_defs: list[str] | None = None
    runtime_exports: list[str] | None = None
    exports_include: int = 0  # at least this many defined dynamic symbols
    interpreter: bool = False
    has_sections: bool = True
    x86_isa_needed: int | bool | None = False  # False: not asserted
    textrel: bool = False
    runtime_export_count: int | None = None  # None: len(runtime_exports)
    libc: str = "glibc"
    symbol_count: int | None = None  # .dynsym's entries, read before section headers are dropped


@dataclass
class CorpusWheel:
    id: str
    path: Path
    arch: str
    method: str
    elfs: dict[str, ElfExpect] = field(default_factory=dict)  # member -> expectation
    non_elf_members: list[str] = field(default_factory=list)  # peeked, not ELF


@dataclass
class Corpus:
    root: Path
    wheels: list[CorpusWheel]
    missing: dict[str, str]  # fixture family -> reason it was not built
    seconds: float = 0.0

    def by_id(self, wheel_id: str) -> CorpusWheel:
        return next(w for w in self.wheels if w.id == wheel_id)


# ---------------------------------------------------------------------------------------------


def _stubs(out: Path, cc: str) -> dict[str, Path]:
    specs = {
        "libc.so.6": LIBC_VERSIONS,
        "libm.so.6": LIBM_VERSIONS,
        "libstdc++.so.6": LIBSTDCXX_VERSIONS,
        "libgcc_s.so.1": LIBGCC_VERSIONS,
    }
    stubs = {so: build_stub(out, so, v, cc=cc) for so, v in specs.items()}
    stubs["libfoo.so"] = build_stub(out, "libfoo.so", unversioned=LIBFOO_UNVERSIONED, cc=cc)
    return stubs


def _owner(stubs: dict[str, Path], symbol: str) -> tuple[str, str | None]:
    tables = {
        "libc.so.6": LIBC_VERSIONS,
        "libm.so.6": LIBM_VERSIONS,
        "libstdc++.so.6": LIBSTDCXX_VERSIONS,
        "libgcc_s.so.1": LIBGCC_VERSIONS,
    }
    for so, versions in tables.items():
        for ver, names in versions.items():
            if symbol in names:
                return so, ver
    assert symbol in LIBFOO_UNVERSIONED, symbol
    return "libfoo.so", None


def _imports(stubs: dict[str, Path], spec: Sequence[tuple[str, bool]]) -> list[Import]:
    return [Import(sym, stubs[_owner(stubs, sym)[0]], weak) for sym, weak in spec]


def _expect_imports(
    stubs: dict[str, Path], spec: Sequence[tuple[str, bool]], expect: ElfExpect
) -> None:
    groups: dict[tuple[str, str], set[str]] = {}
    needed: list[str] = []
    for sym, weak in spec:
        so, ver = _owner(stubs, sym)
        if so not in needed:
            needed.append(so)
        if weak:
            expect.weak_imports.add(sym)
        if ver is None:
            expect.unversioned_includes.add(sym)
            continue
        groups.setdefault((so, ver), set()).add(sym)
    expect.needed = needed
    expect.versioned_imports = groups
    expect.weak_versions = set()  # GNU ld never sets VER_FLG_WEAK; see mark_version_weak


CORE_IMPORTS = [
    ("malloc", False),
    ("free", False),
    ("memcpy", False),
    ("clock_gettime", False),
    ("fcntl64", False),
    ("gettid", True),
    ("pthread_create", False),
    ("cos", False),
    ("expf", False),
    ("foo_init", False),
    ("foo_optional", True),
]
CXX_IMPORTS = [
    ("_ZNSt8ios_base4InitC1Ev", False),
    ("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm", False),
    ("_ZNSt13random_device9_M_getvalEv", True),
    ("__cxa_begin_catch", False),
    ("__cxa_end_catch", False),
    ("_ZdlPvm", False),
    ("_Unwind_Resume", False),
    ("_Unwind_GetIPInfo", False),
    ("memcpy", False),
]
BUNDLED_SOURCE = """
int bundled_api(void) { return 1; }
int bundled_api_v2(void) { return 2; }
void __once_proxy(void) {}
void _ZNSt6thread15_M_start_threadESt10unique_ptrINS_6_StateESt14default_deleteIS1_EEPFvvE(void) {}
__attribute__((visibility("hidden"))) void __cxa_hidden_helper(void) {}
__attribute__((weak)) void _ZNSt9weak_inst4funcEv(void) {}
"""
BUNDLED_MAP = """BUNDLED_1.0 { global: bundled_api; __once_proxy;
  _ZNSt6thread15_M_start_threadESt10unique_ptrINS_6_StateESt14default_deleteIS1_EEPFvvE;
  _ZNSt9weak_inst4funcEv; local: *; };
BUNDLED_2.0 { global: bundled_api_v2; } BUNDLED_1.0;
"""
HOST_SOURCE = """
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int host_api(const char *s, char *d, size_t n) {
  memcpy(d, s, n);
  printf("%ld\\n", strtol(s, NULL, 10));
  return (int)strlen(d);
}
"""
CXX_SOURCE = """
#include <string>
#include <vector>
#include <stdexcept>
extern "C" int cxx_api(const char *s) {
  std::vector<std::string> v;
  v.emplace_back(s);
  if (v.back().size() > 1000) throw std::runtime_error("too long");
  return (int)v.back().size();
}
"""


def _dynsym_entries(path: Path) -> int:
    """How many entries .dynsym holds, from its section header (pyelftools)."""
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as fh:
        return int(ELFFile(fh).get_section_by_name(".dynsym").num_symbols())


def _arch_elfs(out: Path, arch: str, cc: str) -> dict[str, ElfExpect]:
    """The hermetic fixture family for one architecture, keyed by file name."""
    out.mkdir(parents=True, exist_ok=True)
    stubs = _stubs(out / "stubs", cc)
    cls, endian, machine = ARCHES[arch]

    def expect(path: Path, **kw: object) -> ElfExpect:
        return ElfExpect(path, arch, cls, endian, machine, **kw)  # type: ignore[arg-type]

    elfs: dict[str, ElfExpect] = {}

    core = build_elf(
        out,
        "core.so",
        cc=cc,
        imports=_imports(stubs, CORE_IMPORTS),
        runpath="$ORIGIN/../fixture.libs",
    )
    mark_version_weak(core, "GLIBC_2.30")
    e = expect(core, runpath=["$ORIGIN/../fixture.libs"], exports_include=2)
    _expect_imports(stubs, CORE_IMPORTS, e)
    e.weak_versions = {"GLIBC_2.30"}
    elfs["core"] = e

    (out / "bundled.map").write_text(BUNDLED_MAP)
    soname = "libbundled-1a2b3c4d.so.1"
    bundled = build_elf(
        out,
        "bundled.so",
        BUNDLED_SOURCE,
        cc=cc,
        soname=soname,
        imports=_imports(stubs, CXX_IMPORTS),
        rpath="$ORIGIN:$ORIGIN/lib",
        flags=[f"-Wl,--version-script={out / 'bundled.map'}"],
    )
    e = expect(
        bundled,
        soname=soname,
        rpath=["$ORIGIN", "$ORIGIN/lib"],
        version_defs=[soname, "BUNDLED_1.0", "BUNDLED_2.0"],
        runtime_exports=sorted(RUNTIME_LIKE),
        exports_include=5,
    )
    _expect_imports(stubs, CXX_IMPORTS, e)
    elfs["bundled"] = e

    exe_imports = [("malloc", False), ("memcpy", False)]
    exe = build_elf(out, "tool", cc=cc, shared=False, imports=_imports(stubs, exe_imports))
    e = expect(exe, interpreter=True, e_type=3)
    _expect_imports(stubs, exe_imports, e)
    elfs["exe"] = e

    small = [("memcpy", False), ("foo_init", False)]
    execstack = build_elf(
        out, "execstack.so", cc=cc, imports=_imports(stubs, small), execstack=True
    )
    e = expect(execstack, stack="exec")
    _expect_imports(stubs, small, e)
    elfs["execstack"] = e

    nostack = build_elf(out, "nostack.so", cc=cc, imports=_imports(stubs, small))
    drop_gnu_stack(nostack)
    e = expect(nostack, stack="none")
    _expect_imports(stubs, small, e)
    elfs["nostack"] = e

    stripped = build_elf(
        out, "stripped.so", cc=cc, imports=_imports(stubs, CORE_IMPORTS), strip=True
    )
    e = expect(stripped)
    _expect_imports(stubs, CORE_IMPORTS, e)
    elfs["stripped"] = e

    # only a SysV hash table and no section headers: the symbol count must come from the
    # table's nchain, whose word size is 8 bytes on s390x
    sysvhash = build_elf(
        out,
        "sysvhash.so",
        "".join(f"int sysv_export_{i}(void) {{ return {i}; }}\n" for i in range(60)),
        cc=cc,
        imports=_imports(stubs, CORE_IMPORTS),
        # -O1 sizes the bucket array above the symbol count: a misread nchain overshoots
        flags=["-Wl,--hash-style=sysv", "-Wl,-O1"],
    )
    symbols = _dynsym_entries(sysvhash)
    drop_section_headers(sysvhash)
    e = expect(sysvhash, has_sections=False, exports_include=60, symbol_count=symbols)
    _expect_imports(stubs, CORE_IMPORTS, e)
    elfs["sysvhash"] = e

    nosect = build_elf(
        out, "nosect.so", cc=cc, imports=_imports(stubs, CORE_IMPORTS), runpath="$ORIGIN"
    )
    mark_version_weak(nosect, "GLIBC_2.34")
    drop_section_headers(nosect)
    e = expect(nosect, has_sections=False, runpath=["$ORIGIN"])
    _expect_imports(stubs, CORE_IMPORTS, e)
    e.weak_versions = {"GLIBC_2.34"}
    elfs["nosect"] = e

    if arch == "i686":  # non-PIC i386 code in a shared object: the loader must patch .text
        textrel = build_elf(
            out,
            "textrel.so",
            "extern int counter;\nint bump(void) { return ++counter; }\nint counter;\n",
            cc=cc,
            flags=["-fno-PIC"],
        )
        elfs["textrel"] = expect(
            textrel, textrel=True, needed=[], versioned_imports={}, weak_versions=set()
        )

    host = build_elf(out, "hostlibc.so", HOST_SOURCE, cc=cc)
    elfs["hostlibc"] = expect(host, needed_includes=["libc.so.6"], unversioned_includes=set())
    return elfs


def _x86_extras(out: Path) -> dict[str, ElfExpect]:
    out.mkdir(parents=True, exist_ok=True)
    cls, endian, machine = ARCHES["x86_64"]
    elfs: dict[str, ElfExpect] = {}
    if have("g++"):
        cxx = build_elf(out, "cxx.so", CXX_SOURCE, lang="c++")
        elfs["cxx"] = ElfExpect(
            cxx, "x86_64", cls, endian, machine, needed_includes=["libstdc++.so.6", "libc.so.6"]
        )
    big = [f"big_{i:03d}" for i in range(100)]
    libbig = build_stub(out / "stubs", "libbig.so.1", {"BIG_1.0": big})
    runtime = [f"__cxa_wsc_{i:03d}" for i in range(300)]
    caps_src = "".join(f"void {n}(void) {{}}\n" for n in runtime)
    caps = build_elf(out, "caps.so", caps_src, imports=[Import(n, libbig) for n in big])
    elfs["caps"] = ElfExpect(
        caps,
        "x86_64",
        cls,
        endian,
        machine,
        needed=["libbig.so.1"],
        versioned_imports={("libbig.so.1", "BIG_1.0"): set(big)},
        weak_versions=set(),
        runtime_exports=sorted(runtime),
        runtime_export_count=300,
        exports_include=300,
    )
    isa = build_elf(
        out,
        "isa.so",
        "int isa_api(int x) { return x * 3; }\n",
        flags=["-march=x86-64-v3", "-mneeded"],
    )
    elfs["isa"] = ElfExpect(isa, "x86_64", cls, endian, machine, x86_isa_needed=0x7)
    return elfs


def _musl_elfs(out: Path) -> dict[str, ElfExpect]:
    out.mkdir(parents=True, exist_ok=True)
    cls, endian, machine = ARCHES["x86_64"]
    lib = build_elf(out, "musl.so", HOST_SOURCE, cc=MUSL_CC)
    exe = build_elf(out, "musl-tool", HOST_SOURCE, cc=MUSL_CC, shared=False)
    return {
        "musl": ElfExpect(
            lib,
            "x86_64",
            cls,
            endian,
            machine,
            needed=["libc.so"],
            versioned_imports={},
            libc="musl",
        ),
        "musl-exe": ElfExpect(
            exe,
            "x86_64",
            cls,
            endian,
            machine,
            needed=["libc.so"],
            versioned_imports={},
            interpreter=True,
            libc="musl",
        ),
    }


# Where each fixture goes inside a wheel (package "fixture").
def _layout(arch: str, kind: str) -> str:
    plat = {
        "x86_64": "x86_64",
        "i686": "i386",
        "aarch64": "aarch64",
        "armv7l": "arm",
        "s390x": "s390x",
    }[arch]
    return {
        "core": f"fixture/_core.cpython-311-{plat}-linux-gnu.so",
        "bundled": "fixture.libs/libbundled-1a2b3c4d.so.1",
        "exe": "fixture-1.0.data/scripts/fixture-tool",
        "execstack": "fixture/_execstack.so",
        "nostack": "fixture/_nostack.so",
        "stripped": "fixture/_stripped.abi3.so",
        "sysvhash": "fixture/_sysvhash.so",
        "nosect": "fixture-1.0.data/purelib/fixture_extra/_nosect.so",
        "hostlibc": "fixture/_host.so",
        "cxx": "fixture/_cxx.so",
        "isa": "fixture/_isa.so",
        "caps": "fixture/_caps.so",
        "textrel": "fixture/_textrel.so",
        "musl": "fixture/_musl.so",
        "musl-exe": "fixture-1.0.data/scripts/fixture-musl-tool",
    }[kind]


DECOYS: dict[str, bytes] = {
    "fixture/__init__.py": b"from ._core import *\n",
    "fixture/README.txt": b"not a binary\n",
    "fixture/fake.so": b"this is text that pretends to be a shared object\n",
    "fixture/blob": b"\x00\x01\x02\x03 opaque data without a suffix",
    "fixture/abc": b"EL",  # too small to peek
}
NON_ELF_PEEKED = ["fixture/fake.so", "fixture/blob"]

_PLATFORM = {
    "x86_64": "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "i686": "manylinux_2_17_i686.manylinux2014_i686",
    "aarch64": "manylinux_2_28_aarch64",
    "armv7l": "manylinux_2_31_armv7l",
    "s390x": "manylinux_2_17_s390x",
}


def _wheel(
    out: Path,
    wheel_id: str,
    arch: str,
    elfs: dict[str, ElfExpect],
    *,
    platform: str | None = None,
    method: str = "deflate",
    methods: Callable[[int], str] | None = None,
    record: bool = True,
    zip64: bool = False,
) -> CorpusWheel:
    dist = f"fixture_{wheel_id.replace('-', '_')}"
    filename = f"{dist}-1.0-cp311-cp311-{platform or _PLATFORM[arch]}.whl"
    files: dict[str, bytes | Path] = dict(DECOYS)
    expects: dict[str, ElfExpect] = {}
    for kind, e in elfs.items():
        member = _layout(arch, kind).replace("fixture-1.0.data", f"{dist}-1.0.data")
        files[member] = e.source
        expects[member] = e
    per_member = {name: methods(i) for i, name in enumerate(files)} if methods else None
    path = make_wheel(
        out, filename, files, method=method, methods=per_member, record=record, zip64=zip64
    )
    return CorpusWheel(
        wheel_id, path, arch, "mixed" if methods else method, expects, list(NON_ELF_PEEKED)
    )


def build_corpus(root: Path) -> Corpus:
    """Compile every fixture this machine's toolchains allow and pack them into wheels."""
    import time

    t0 = time.perf_counter()
    missing = missing_toolchains()
    families: dict[str, Callable[[], dict[str, ElfExpect]]] = {}
    for arch, cc in COMPILERS.items():
        if arch not in missing:
            families[arch] = lambda a=arch, c=cc: _arch_elfs(root / "build" / a, a, c)
    families["x86_64-extra"] = lambda: _x86_extras(root / "build" / "x86_64-extra")
    if "musl" not in missing:
        families["musl"] = lambda: _musl_elfs(root / "build" / "musl")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(fn) for name, fn in families.items()}
        built = {name: f.result() for name, f in futures.items()}

    out = root / "wheels"
    wheels: list[CorpusWheel] = []
    cycle = ["stored", "deflate", "zstd"]
    if "x86_64" in built:
        x86 = {**built["x86_64"], **built["x86_64-extra"]}
        wheels += [
            _wheel(out, "x86_64-deflate", "x86_64", x86),
            _wheel(out, "x86_64-stored", "x86_64", x86, method="stored"),
            _wheel(out, "x86_64-zstd", "x86_64", x86, method="zstd"),
            _wheel(out, "x86_64-zip64", "x86_64", x86, zip64=True),
            _wheel(
                out,
                "x86_64-mixed-norecord",
                "x86_64",
                x86,
                record=False,
                methods=lambda i: cycle[i % 3],
            ),
        ]
    per_arch = {
        "i686": ("deflate", False),
        "aarch64": ("zstd", False),
        "armv7l": ("stored", False),
        "s390x": ("deflate", True),
    }
    for arch, (method, zip64) in per_arch.items():
        if arch in built:
            wheels.append(
                _wheel(
                    out,
                    f"{arch}-{method}{'-zip64' if zip64 else ''}",
                    arch,
                    built[arch],
                    method=method,
                    zip64=zip64,
                )
            )
    if "musl" in built:
        wheels.append(
            _wheel(out, "musl-deflate", "x86_64", built["musl"], platform="musllinux_1_2_x86_64")
        )
    pure = make_wheel(
        out,
        "fixture_pure-1.0-py3-none-any.whl",
        {"fixture_pure/__init__.py": b"", "fixture_pure/data.bin": b"\x00" * 64},
        root_is_purelib=True,
    )
    wheels.append(CorpusWheel("pure-any", pure, "any", "deflate", {}, ["fixture_pure/data.bin"]))
    return Corpus(root, wheels, missing, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# readelf: binutils' view of a file, an oracle independent of lief and of wheelscan.

_NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[(.*)\]")
_SONAME = re.compile(r"\(SONAME\)\s+Library soname: \[(.*)\]")
_RPATH = re.compile(r"\(RPATH\)\s+Library rpath: \[(.*)\]")
_RUNPATH = re.compile(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]")
_VERNEED_FILE = re.compile(r"^\s*0x[0-9a-f]+: Version: \d+\s+File: (\S+)\s+Cnt: \d+", re.M)
_VERNEED_FILE0 = re.compile(r"^\s*[0-9a-fx]+: Version: \d+\s+File: (\S+)\s+Cnt: \d+")
_VERNAUX = re.compile(r"^\s*0x[0-9a-f]+:\s+Name: (\S+)\s+Flags: (.*?)\s+Version: \d+")
_VERDEF = re.compile(r"^\s*[0-9a-fx]+: Rev: \d+\s+Flags: .*?Index: (\d+)\s+Cnt: \d+\s+Name: (\S+)")
_SYMCOUNT = re.compile(r"Symbol table '\.dynsym' contains (\d+) entries")


def _readelf(*args: str) -> str:
    r = subprocess.run(["readelf", "-W", *args], capture_output=True, text=True, check=False)
    return r.stdout


def readelf_facts(path: Path) -> dict[str, object]:
    """needed, soname, rpath, runpath, interpreter, stack, version needs/defs, symbol count."""
    dyn = _readelf("-d", str(path))
    facts: dict[str, object] = {
        "needed": _NEEDED.findall(dyn),
        "soname": (_SONAME.findall(dyn) or [None])[0],
        "rpath": [p for v in _RPATH.findall(dyn) for p in v.split(":")],
        "runpath": [p for v in _RUNPATH.findall(dyn) for p in v.split(":")],
    }
    head = _readelf("-h", str(path))
    m = re.search(r"^\s*Flags:\s+(0x[0-9a-f]+)", head, re.M)
    facts["e_flags"] = int(m.group(1), 16) if m else None
    m = re.search(r"^\s*OS/ABI:\s+(.*?)\s*$", head, re.M)
    facts["osabi"] = {"UNIX - System V": 0, "UNIX - GNU": 3}.get(m.group(1)) if m else None
    m = re.search(r"^\s*Type:\s+(\w+)", head, re.M)
    facts["e_type"] = {"EXEC": 2, "DYN": 3}.get(m.group(1)) if m else None
    seg = _readelf("-l", str(path))
    m = re.search(r"Requesting program interpreter: (.*)\]", seg)
    facts["interpreter"] = m.group(1) if m else None
    stack = [ln.split() for ln in seg.splitlines() if ln.split()[:1] == ["GNU_STACK"]]
    # columns: type offset vaddr paddr filesz memsz flags... align ("R E" splits in two)
    facts["stack"] = (
        "none" if not stack else ("exec" if "E" in "".join(stack[0][6:-1]) else "noexec")
    )
    needs: list[tuple[str, list[tuple[str, bool]]]] = []
    defs: list[tuple[int, str]] = []
    section = ""
    for line in _readelf("-V", str(path)).splitlines():
        if line.startswith("Version needs section"):
            section = "need"
        elif line.startswith("Version definition section"):
            section = "def"
        elif line.startswith("Version symbols section"):
            section = "sym"
        elif section == "need" and (fm := _VERNEED_FILE0.match(line)):
            needs.append((fm.group(1), []))
        elif section == "need" and (am := _VERNAUX.match(line)) and needs:
            needs[-1][1].append((am.group(1), "WEAK" in am.group(2)))
        elif section == "def" and (dm := _VERDEF.match(line)):
            defs.append((int(dm.group(1)), dm.group(2)))
    facts["version_needs"] = needs
    facts["version_defs"] = [name for _, name in sorted(defs)]
    m = _SYMCOUNT.search(_readelf("--dyn-syms", "-D", str(path)))
    facts["symbol_count"] = int(m.group(1)) if m else None
    return facts


# ---------------------------------------------------------------------------------------------
# Checking an engine's ElfFacts against the oracles above; each returns readable mismatches.


def expectation_mismatches(elf: ElfFacts, e: ElfExpect) -> list[str]:
    """Where ``elf`` (either engine) disagrees with what the fixture was built to be."""
    bad: list[str] = []

    def check(name: str, got: object, want: object) -> None:
        if got != want:
            bad.append(f"{name}: got {got!r}, built to be {want!r}")

    check("elf_class", elf.elf_class, e.elf_class)
    check("endian", elf.endian, e.endian)
    check("machine", elf.machine, e.machine)
    check("e_type", elf.e_type, e.e_type)
    if (
        e.arch == "armv7l"
    ):  # arm-linux-gnueabihf: EABI version 5, hard-float (EF_ARM_ABI_FLOAT_HARD)
        check("e_flags EABI version", elf.e_flags >> 24, 5)
        check("e_flags hard-float", bool(elf.e_flags & 0x400), True)
    check("has_dynamic", elf.has_dynamic, True)
    if e.needed is not None:
        check("needed", elf.needed, e.needed)
    bad.extend(
        f"needed: {lib!r} missing from {elf.needed!r}"
        for lib in e.needed_includes
        if lib not in elf.needed
    )
    check("soname", elf.soname, e.soname)
    check("rpath", elf.rpath, e.rpath)
    check("runpath", elf.runpath, e.runpath)
    check("stack", elf.stack, e.stack)
    check("textrel", elf.textrel, e.textrel)
    if e.interpreter:
        if not elf.interpreter:
            bad.append("interpreter: missing for an executable")
    else:
        check("interpreter", elf.interpreter, None)
    groups = {(g.library, g.version): g for g in elf.imports}
    if e.versioned_imports is not None:
        got = {k: set(g.names) for k, g in groups.items() if k[1] is not None}
        # names are sorted then capped; the count stays true
        want = {k: set(sorted(v)[:IMPORT_NAME_CAP]) for k, v in e.versioned_imports.items()}
        check("versioned imports", got, want)
        got_counts = {k: g.count for k, g in groups.items() if k[1] is not None}
        check(
            "versioned import counts",
            got_counts,
            {k: len(v) for k, v in e.versioned_imports.items()},
        )
        for key, g in groups.items():
            if g.names != sorted(g.names):
                bad.append(f"imports {key}: names not sorted")
        need_versions = {(n.file, v.name) for n in elf.version_needs for v in n.versions}
        check("version_needs", need_versions, set(want))
    unversioned = groups.get((None, None))
    got_unversioned = set(unversioned.names) if unversioned else set()
    if not e.unversioned_includes <= got_unversioned:
        bad.append(
            f"unversioned imports: {sorted(e.unversioned_includes - got_unversioned)} missing"
        )
    weak_names = set()
    for g in elf.imports:
        weak_names |= {n for n in g.names if n in e.weak_imports}
        if g.weak_count > g.count:
            bad.append(f"imports {(g.library, g.version)}: weak_count > count")
    check("weak imports present", weak_names, e.weak_imports)
    weak_total = sum(g.weak_count for g in elf.imports)
    if weak_total < len(e.weak_imports):
        bad.append(f"weak_count total {weak_total} < {len(e.weak_imports)} weak references")
    if e.weak_versions is not None:
        got_weak = {v.name for n in elf.version_needs for v in n.versions if v.weak}
        check("VER_FLG_WEAK versions", got_weak, e.weak_versions)
    if e.version_defs is not None:
        check("version_defs", elf.version_defs, e.version_defs)
    if e.runtime_exports is not None:
        check("runtime_exports", elf.runtime_exports, e.runtime_exports[:RUNTIME_EXPORT_CAP])
        want_count = e.runtime_export_count
        check(
            "runtime_export_count",
            elf.runtime_export_count,
            len(e.runtime_exports) if want_count is None else want_count,
        )
    if elf.export_count < e.exports_include:
        bad.append(f"export_count {elf.export_count} < {e.exports_include}")
    if e.x86_isa_needed is not False:
        check("x86_isa_needed", elf.x86_isa_needed, e.x86_isa_needed)
    if elf.symbol_count is None:
        bad.append("symbol_count: None although the file has a hash table")
    if e.symbol_count is not None:
        check("symbol_count", elf.symbol_count, e.symbol_count)
    return bad


def readelf_mismatches(elf: ElfFacts, r: dict[str, object], *, has_sections: bool) -> list[str]:
    """Where ``elf`` disagrees with :func:`readelf_facts` of the same file."""
    bad = [
        f"{name}: got {getattr(elf, name)!r}, readelf says {r[name]!r}"
        for name in ("needed", "soname", "rpath", "runpath", "interpreter", "stack")
        if getattr(elf, name) != r[name]
    ]
    bad += [
        f"{name}: got {getattr(elf, name)!r}, readelf -h says {r[name]!r}"
        for name in ("e_flags", "osabi", "e_type")
        if r[name] is not None and getattr(elf, name) != r[name]
    ]
    if r["symbol_count"] is not None and elf.symbol_count != r["symbol_count"]:
        bad.append(f"symbol_count: got {elf.symbol_count}, readelf -D says {r['symbol_count']}")
    if has_sections:  # readelf -V reads the version sections through section headers
        got_needs = [(n.file, [(v.name, v.weak) for v in n.versions]) for n in elf.version_needs]
        if got_needs != r["version_needs"]:
            bad.append(f"version_needs: got {got_needs!r}, readelf says {r['version_needs']!r}")
        if elf.version_defs != r["version_defs"]:
            bad.append(
                f"version_defs: got {elf.version_defs!r}, readelf says {r['version_defs']!r}"
            )
    return bad


if __name__ == "__main__":  # python tests/helpers/corpus.py OUT_DIR: build and list the corpus
    import sys

    built = build_corpus(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out"))
    for cw in built.wheels:
        print(f"{cw.id}\t{cw.path}\t{len(cw.elfs)} ELF")
    for family, why in built.missing.items():
        print(f"missing {family}: {why}", file=sys.stderr)
    print(f"built in {built.seconds:.1f} s", file=sys.stderr)


def corpus_wheel(corpus: Corpus, wheel_id: str) -> CorpusWheel:
    """One fixture wheel by id; its toolchain's absence skips on a dev box, fails in CI."""
    from conftest import require  # conftest imports this module

    family = WHEEL_IDS[wheel_id]
    if family is not None and family in corpus.missing:
        require(f"fixture family {family}: {corpus.missing[family]}")
    return corpus.by_id(wheel_id)
