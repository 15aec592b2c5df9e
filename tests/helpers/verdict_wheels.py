"""Scenario wheels for the verdict tests and the auditwheel differential suite.

Each scenario is a real wheel: extensions compiled by gcc / cross gcc and linked ``-nostdlib``
against stub libraries (tests/helpers/builders.py) that define exactly the symbol versions the
scenario needs, so the expected verdict follows from the construction, on any host.
Built once per process (:func:`build_scenarios` caches by directory).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from helpers.builders import COMPILERS, MUSL_CC, Import, build_elf, build_stub, have, make_wheel

# The real base GLIBC symbol version of each architecture (its first glibc port).
BASE_GLIBC = {
    "x86_64": "GLIBC_2.2.5",
    "i686": "GLIBC_2.0",
    "aarch64": "GLIBC_2.17",
    "armv7l": "GLIBC_2.4",
    "s390x": "GLIBC_2.2",
}
# Oldest manylinux policy that knows each arch (auditwheel's policy data).
OLDEST = {"x86_64": "2_5", "i686": "2_5", "aarch64": "2_17", "armv7l": "2_17", "s390x": "2_17"}
MUSL_LIBC = {"x86_64": "libc.musl-x86_64.so.1", "i686": "libc.musl-x86.so.1"}


@dataclass
class Scenario:
    name: str
    arch: str
    path: Path
    kinds: set[str]  # violation kinds wheelscan must report (empty: ok)
    minimal_tag: str | None
    status: str
    warnings: set[str] = field(default_factory=set)
    aw_class: str | None = None  # difference class vs auditwheel, None when they must agree


def _ext(name: str) -> str:
    return f"void PyInit_{name}(void) {{}}\n"


def _arch_scenarios(root: Path, arch: str, cc: str, n: list[int]) -> list[Scenario]:
    d = root / arch
    base = BASE_GLIBC[arch]
    libc = build_stub(d, "libc.so.6", {base: ["malloc"], "GLIBC_2.28": ["fcntl64"]}, cc=cc)
    foo = build_stub(d, "libfoo.so.1", {"FOO_1.0": ["foo_init"]}, cc=cc)
    libz = build_stub(d, "libz.so.1", unversioned=["_tr_init", "deflate"], cc=cc)
    cxx = build_stub(d, "libstdc++.so.6",
                     {"GLIBCXX_3.4": ["cxx_old"], "GLIBCXX_3.4.30": ["cxx_new"]}, cc=cc)
    py = build_stub(d, "libpython3.11.so.1.0", unversioned=["PyLong_FromLong"], cc=cc)
    oldest = f"manylinux_{OLDEST[arch]}_{arch}"
    claim = f"manylinux_2_17_{arch}"
    out: list[Scenario] = []

    def wheel(name: str, files: dict[str, Path | bytes], tag: str = claim) -> Path:
        n[0] += 1
        return make_wheel(root / "wheels", f"s{n[0]}_{name}-1.0-cp311-abi3-{tag}.whl", files)

    def ext(tag: str, imports: list[Import], **kw: object) -> Path:
        return build_elf(d / tag, "ext.abi3.so", _ext("ext"), cc=cc, imports=imports,
                         **kw)  # type: ignore[arg-type]

    ok = ext("ok", [Import("malloc", libc), Import("cxx_old", cxx)])
    out.append(Scenario("ok", arch, wheel("ok", {"pkg/ext.abi3.so": ok}), set(), oldest,
                        "ok"))
    new = ext("new", [Import("malloc", libc), Import("fcntl64", libc)])
    out.append(Scenario("symbol-version", arch, wheel("symver", {"pkg/ext.abi3.so": new}),
                        {"symbol-version"}, f"manylinux_2_28_{arch}", "mislabelled"))
    out.append(Scenario("between-policies", arch,
                        wheel("between", {"pkg/ext.abi3.so": new}, f"manylinux_2_30_{arch}"),
                        set(), f"manylinux_2_28_{arch}", "ok"))
    cxxnew = ext("cxxnew", [Import("malloc", libc), Import("cxx_new", cxx)])
    out.append(Scenario("glibcxx", arch, wheel("glibcxx", {"pkg/ext.abi3.so": cxxnew}),
                        {"symbol-version"}, f"manylinux_2_35_{arch}", "mislabelled"))
    ext_foo = ext("foo", [Import("malloc", libc), Import("foo_init", foo)])
    out.append(Scenario("external-library", arch,
                        wheel("external", {"pkg/ext.abi3.so": ext_foo}),
                        {"external-library"}, f"linux_{arch}", "mislabelled"))
    bundled = ext("bundled", [Import("malloc", libc), Import("foo_init", foo)],
                  runpath="$ORIGIN/../pkg.libs")
    foo_real = build_elf(d / "foo", "libfoo.so.1", "void foo_init(void) {}\n", cc=cc,
                         imports=[Import("malloc", libc)], soname="libfoo.so.1")
    out.append(Scenario("bundled", arch,
                        wheel("bundled", {"pkg/ext.abi3.so": bundled,
                                          "pkg.libs/libfoo.so.1": foo_real}),
                        set(), oldest, "ok"))
    out.append(Scenario("unreachable", arch,
                        wheel("unreach", {"pkg/ext.abi3.so": ext_foo,
                                          "pkg/other/libfoo.so.1": foo_real}),
                        {"external-library"}, f"linux_{arch}", "mislabelled"))
    bl = ext("bl", [Import("malloc", libc), Import("_tr_init", libz)])
    out.append(Scenario("blacklisted-symbol", arch, wheel("blacklist", {"pkg/ext.abi3.so": bl}),
                        {"blacklisted-symbol"}, f"linux_{arch}", "mislabelled"))
    # __cxa_thread_atexit_impl is blacklisted for libc before 2.24 here. Rust's std imports
    # it weakly (it copes when it is absent): unversioned, beside strong unversioned imports
    # (libz's here, the Py* API in a real extension); or versioned, if the link-time libc
    # defined it, beside strong imports of the same version node.
    thr = "__cxa_thread_atexit_impl"
    weak_unv = ext("weakunv", [Import("malloc", libc), Import("deflate", libz),
                               Import(thr, libc, weak=True)])
    out.append(Scenario("weak-blacklisted", arch,
                        wheel("weakbl", {"pkg/ext.abi3.so": weak_unv}), set(), oldest, "ok"))
    libc_thr = build_stub(d / "thr", "libc.so.6", {base: ["malloc", thr]}, cc=cc)
    weak_ver = ext("weakver", [Import("malloc", libc_thr), Import(thr, libc_thr, weak=True)])
    out.append(Scenario("weak-blacklisted-versioned", arch,
                        wheel("weakblv", {"pkg/ext.abi3.so": weak_ver}), set(), oldest, "ok"))
    strong = ext("strongthr", [Import("malloc", libc_thr), Import(thr, libc_thr)])
    out.append(Scenario("strong-blacklisted", arch,
                        wheel("strongbl", {"pkg/ext.abi3.so": strong}), {"blacklisted-symbol"},
                        f"manylinux_2_24_{arch}", "mislabelled"))
    pyl = ext("py", [Import("malloc", libc), Import("PyLong_FromLong", py)])
    out.append(Scenario("libpython", arch, wheel("libpython", {"pkg/ext.abi3.so": pyl}),
                        {"external-library"}, f"linux_{arch}", "mislabelled"))
    warn = ext("warn", [Import("malloc", libc)], execstack=True, rpath="/opt/build/lib")
    out.append(Scenario("warnings-only", arch, wheel("warn", {"pkg/ext.abi3.so": warn}),
                        set(), oldest, "ok", warnings={"exec-stack", "rpath"}))
    other = "aarch64" if arch != "aarch64" else "x86_64"
    out.append(Scenario("arch-mismatch", arch,
                        wheel("archmix", {"pkg/ext.abi3.so": ok}, f"manylinux_2_17_{other}"),
                        {"arch-mismatch"}, oldest, "mislabelled",
                        aw_class="other-arch-skipped"))
    out.append(Scenario("purelib", arch,
                        wheel("purelib", {f"s{n[0] + 1}_purelib-1.0.data/purelib/pkg/ext.abi3.so":
                                          new}),
                        {"symbol-version"}, f"manylinux_2_28_{arch}", "mislabelled",
                        warnings={"purelib-binary"}, aw_class="purelib-refused"))
    return out


def _x86_extras(root: Path, n: list[int]) -> list[Scenario]:
    d = root / "x86_64-extra"
    libc = build_stub(d, "libc.so.6", {"GLIBC_2.2.5": ["malloc"]})
    out: list[Scenario] = []
    isa = build_elf(d, "ext.abi3.so", _ext("ext") + "int isa_api(int x) { return x * 3; }\n",
                    imports=[Import("malloc", libc)], flags=["-march=x86-64-v3", "-mneeded"])
    n[0] += 1
    out.append(Scenario("isa-level", "x86_64",
                        make_wheel(root / "wheels",
                                   f"s{n[0]}_isa-1.0-cp311-abi3-manylinux_2_17_x86_64.whl",
                                   {"pkg/ext.abi3.so": isa}),
                        {"isa-level"}, "linux_x86_64", "mislabelled"))
    # A weak reference to a symbol of a newer glibc version still needs that version: the
    # loader refuses the object where GLIBC_2.34 is missing (ld sets no VER_FLG_WEAK)
    libc34 = build_stub(d / "v34", "libc.so.6", {"GLIBC_2.2.5": ["malloc"], "GLIBC_2.34": ["nf"]})
    weak34 = build_elf(d / "v34", "ext.abi3.so", _ext("ext"),
                       imports=[Import("malloc", libc34), Import("nf", libc34, weak=True)])
    n[0] += 1
    out.append(Scenario("weak-new-version", "x86_64",
                        make_wheel(root / "wheels",
                                   f"s{n[0]}_weakver-1.0-cp311-abi3-manylinux_2_17_x86_64.whl",
                                   {"pkg/ext.abi3.so": weak34}),
                        {"symbol-version"}, "manylinux_2_34_x86_64", "mislabelled"))
    # An honest binary whose name holds a NUL: zipfile (pip) installs pkg/ext.abi3.so, a
    # reader keeping the whole name a .txt file; the archive itself is the violation.
    honest = build_elf(d / "nul", "ext.abi3.so", _ext("ext"), imports=[Import("malloc", libc)])
    n[0] += 1
    out.append(Scenario("zip-confusion", "x86_64",
                        make_wheel(root / "wheels",
                                   f"s{n[0]}_nul-1.0-cp311-abi3-manylinux_2_17_x86_64.whl",
                                   {"pkg/ext.abi3.so\x00.txt": honest}),
                        {"zip-confusion"}, "manylinux_2_5_x86_64", "mislabelled",
                        aw_class="zip-confusion"))
    static = build_elf(d / "static", "tool", "int main(void) { return 0; }\n", shared=False,
                       flags=["-static", "-no-pie"])
    n[0] += 1
    out.append(Scenario("static", "x86_64",
                        make_wheel(root / "wheels",
                                   f"s{n[0]}_static-1.0-py3-none-manylinux_2_17_x86_64.whl",
                                   {"pkg/bin/tool": static}),
                        set(), "manylinux_2_5_x86_64", "ok"))
    # older than any x86_64 policy: judged by the glibc bound, which a static program meets
    n[0] += 1
    out.append(Scenario("below-oldest", "x86_64",
                        make_wheel(root / "wheels",
                                   f"s{n[0]}_old-1.0-py3-none-manylinux_2_4_x86_64.whl",
                                   {"pkg/bin/tool": static}),
                        set(), "manylinux_2_5_x86_64", "ok",
                        aw_class="claim-below-oldest-policy"))
    # A grafted, renamed zlib (as auditwheel repair leaves it) that defines ZLIB_1.2.9 itself.
    zlib = build_stub(d, "libz-5badc034.so.1.2.11", {"ZLIB_1.2.9": ["inflateValidate"]})
    uses = build_elf(d / "zlib", "ext.abi3.so", _ext("ext"),
                     imports=[Import("malloc", libc), Import("inflateValidate", zlib)],
                     runpath="$ORIGIN/../pkg.libs")
    n[0] += 1
    out.append(Scenario("bundled-versions", "x86_64",
                        make_wheel(root / "wheels",
                                   f"s{n[0]}_grafted-1.0-cp311-abi3-manylinux_2_17_x86_64.whl",
                                   {"pkg/ext.abi3.so": uses,
                                    "pkg.libs/libz-5badc034.so.1.2.11": zlib}),
                        set(), "manylinux_2_5_x86_64", "ok",
                        aw_class="bundled-library-versions"))
    if have(MUSL_CC):
        musl = build_elf(d / "musl", "ext.abi3.so", _ext("ext") + "#include <string.h>\n"
                         "int m(const char *s) { return (int)strlen(s); }\n", cc=MUSL_CC)
        n[0] += 1
        out.append(Scenario("libc-mismatch", "x86_64",
                            make_wheel(root / "wheels",
                                       f"s{n[0]}_muslglibc-1.0-cp311-abi3-manylinux_2_17_x86_64.whl",
                                       {"pkg/ext.abi3.so": musl}),
                            {"libc-mismatch"}, "linux_x86_64", "mislabelled"))
        # musl-gcc links the bare name libc.so (so do Rust's *-linux-musl cdylibs); musl's
        # loader takes that name for itself
        n[0] += 1
        out.append(Scenario("musl-libc.so", "x86_64",
                            make_wheel(root / "wheels",
                                       f"s{n[0]}_musllibc-1.0-cp311-abi3-musllinux_1_2_x86_64.whl",
                                       {"pkg/ext.abi3.so": musl}),
                            set(), "musllinux_1_1_x86_64", "ok", aw_class="musl-needed-libc.so"))
    return out


def _musl_i686(root: Path, n: list[int]) -> list[Scenario]:
    """musllinux_1_1 vs 1_2 on i686, with stubs: a time64 import proves musl >= 1.2."""
    cc = COMPILERS["i686"]
    d = root / "musl-i686"
    libc = build_stub(d, MUSL_LIBC["i686"], unversioned=["malloc", "__clock_gettime64"], cc=cc)
    out = []
    for tag, syms, kinds, minimal, cls in (
        ("musllinux_1_1_i686", ["malloc", "__clock_gettime64"], {"musl-version"},
         "musllinux_1_2_i686", None),
        ("musllinux_1_1_i686", ["malloc"], set(), "musllinux_1_1_i686", "musl-1.1-unknowable"),
    ):
        e = build_elf(d / str(len(out)), "ext.abi3.so", _ext("ext"), cc=cc,
                      imports=[Import(s, libc) for s in syms])
        n[0] += 1
        out.append(Scenario("musl-version" if kinds else "musl-1.1-ok", "i686",
                            make_wheel(root / "wheels", f"s{n[0]}_musl-1.0-cp311-abi3-{tag}.whl",
                                       {"pkg/ext.abi3.so": e}),
                            kinds, minimal, "mislabelled" if kinds else "ok", aw_class=cls))
    return out


_CACHE: dict[Path, list[Scenario]] = {}


def build_scenarios(root: Path) -> list[Scenario]:
    if root in _CACHE:
        return _CACHE[root]
    if root.exists():
        shutil.rmtree(root)
    n = [0]
    out: list[Scenario] = []
    for arch, cc in COMPILERS.items():
        if have(cc):
            out += _arch_scenarios(root, arch, cc, n)
    if have("gcc"):
        out += _x86_extras(root, n)
    if have(COMPILERS["i686"]):
        out += _musl_i686(root, n)
    _CACHE[root] = out
    return out
