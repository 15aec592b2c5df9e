"""judge(): findings, status precedence, minimal tags — on built wheels and on facts built by
hand (the judge only sees facts, so hand-built facts test its logic exactly)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest
from helpers.verdict_wheels import Scenario, build_scenarios

from wheelscan import judge, scan_wheel
from wheelscan.facts import (
    ElfFacts,
    LibraryNeed,
    MemberError,
    SymbolGroup,
    VersionNeed,
    WheelFacts,
)
from wheelscan.rules.verdict import FINDING_KINDS, installed_path

if TYPE_CHECKING:
    from collections.abc import Sequence

ENGINE = os.environ.get("WHEELSCAN_VERDICT_ENGINE", "native")


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> list[Scenario]:
    sc = build_scenarios(tmp_path_factory.getbasetemp() / "verdict-scenarios")
    if not sc:
        pytest.skip("no compiler to build scenario wheels")
    return sc


def test_scenarios(scenarios: list[Scenario]) -> None:
    bad = []
    for s in scenarios:
        v = judge(scan_wheel(s.path, engine=ENGINE))
        got = (v.status, v.minimal_tag, {f.kind for f in v.violations})
        warns = {f.kind for f in v.findings if f.severity == "warning"}
        if got != (s.status, s.minimal_tag, s.kinds) or not s.warnings <= warns:
            bad.append(f"{s.arch}/{s.name}: {got} warnings={warns}; expected "
                       f"{(s.status, s.minimal_tag, s.kinds)} warnings>={s.warnings}")
    assert not bad, "\n".join(bad)


def test_symbol_evidence_from_imports(scenarios: list[Scenario]) -> None:
    for s in scenarios:
        if s.name != "symbol-version":
            continue
        v = judge(scan_wheel(s.path, engine=ENGINE))
        (f,) = v.violations
        assert f.member == "pkg/ext.abi3.so"
        assert f.evidence["symbols"] == ["fcntl64@GLIBC_2.28"]
        assert f.evidence["library"] == "libc.so.6"
        assert f.evidence["claims"] == [f"manylinux_2_17_{s.arch}"]
        assert "fcntl64@GLIBC_2.28" in f.detail
        assert v.required_glibc == "2.28"


# ---------------------------------------------------------------------------------------------
# Hand-built facts.


def elf(
    member: str = "pkg/ext.so",
    *,
    machine: int = 62,
    cls: int = 64,
    endian: str = "little",
    e_flags: int = 0,
    needed: Sequence[str] = ("libc.so.6",),
    versions: dict[str, list[tuple[str, list[str]]]] | None = None,
    unversioned: Sequence[str] = (),
    **kw: Any,
) -> ElfFacts:
    """``versions``: library -> [(version, [symbol names])]."""
    versions = versions if versions is not None else {"libc.so.6": [("GLIBC_2.2.5", ["malloc"])]}
    vn = [LibraryNeed(lib, [VersionNeed(v) for v, _ in vs]) for lib, vs in versions.items()]
    imports = [SymbolGroup(lib, v, len(names), sorted(names))
               for lib, vs in versions.items() for v, names in vs]
    if unversioned:
        imports.append(SymbolGroup(None, None, len(unversioned), sorted(unversioned)))
    kw.setdefault("stack", "noexec")
    return ElfFacts(member=member, elf_class=cls, endian=endian, osabi=0, e_type=3,
                    machine=machine, e_flags=e_flags, has_dynamic=True, needed=list(needed),
                    version_needs=vn, imports=imports, **kw)


def wheel(tags: str = "manylinux_2_17_x86_64", elfs: Sequence[ElfFacts] = (),
          **kw: Any) -> WheelFacts:
    fn = f"pkg-1.0-cp311-cp311-{tags}.whl"
    plat = tags.split(".")
    kw.setdefault("wheel_tags", [f"cp311-cp311-{t}" for t in plat])
    return WheelFacts(filename=fn, name="pkg", version="1.0", python_tags=["cp311"],
                      abi_tags=["cp311"], platform_tags=plat, has_wheel_file=True,
                      elfs=list(elfs), engine="test", **kw)


def kinds(v: Any, severity: str | None = None) -> set[str]:
    return {f.kind for f in v.findings if severity is None or f.severity == severity}


def test_vocabulary_is_complete() -> None:
    """One entry per kind, each with a severity and a meaning (docs/findings.md and the HTML
    legend are generated from it: tests/unit/test_docs.py and
    tests/integration/test_report_reasons.py)."""
    from wheelscan.rules.verdict import FINDINGS

    kinds_ = [k for _, k, _ in FINDINGS]
    assert len(kinds_) == len(set(kinds_)) == len(FINDING_KINDS)
    assert {sev for sev, _, _ in FINDINGS} == {"violation", "warning", "info"}
    assert all(len(meaning) > 10 for _, _, meaning in FINDINGS)


def test_ok_and_over_conservative() -> None:
    v = judge(wheel("manylinux_2_28_x86_64", [elf()]))
    assert v.status == "ok"
    assert v.minimal_tag == "manylinux_2_5_x86_64"
    assert v.per_claim == [{"tag": "manylinux_2_28_x86_64", "holds": True}]
    assert "over-conservative" in kinds(v, "info")
    assert v.required_glibc == "2.2.5"


def test_aliases_kept_as_written_and_judged_by_meaning() -> None:
    e = elf(versions={"libc.so.6": [("GLIBC_2.2.5", ["malloc"]), ("GLIBC_2.14", ["memcpy"])]})
    v = judge(wheel("manylinux1_x86_64.manylinux2014_x86_64", [e]))
    assert v.claims == ["manylinux1_x86_64", "manylinux2014_x86_64"]
    assert v.per_claim == [{"tag": "manylinux1_x86_64", "holds": False},
                           {"tag": "manylinux2014_x86_64", "holds": True}]
    assert v.status == "mislabelled"
    assert v.minimal_tag == "manylinux_2_17_x86_64"
    (f,) = v.violations
    assert f.evidence["symbols"] == ["memcpy@GLIBC_2.14"]


def test_claims_between_and_beyond_policies() -> None:
    e31 = elf(versions={"libc.so.6": [("GLIBC_2.31", ["x"])]})
    assert judge(wheel("manylinux_2_30_x86_64", [e31])).status == "mislabelled"
    assert judge(wheel("manylinux_2_31_x86_64", [e31])).status == "ok"
    e44 = elf(versions={"libc.so.6": [("GLIBC_2.44", ["y"])]})
    v = judge(wheel("manylinux_2_45_x86_64", [e44]))
    assert v.status == "ok"  # exact GLIBC bound past the newest policy
    assert v.minimal_tag == "linux_x86_64"  # no existing policy allows GLIBC_2.44
    assert judge(wheel("manylinux_2_43_x86_64", [e44])).status == "mislabelled"
    # other prefixes come from the nearest older policy (2_41 has GLIBCXX_3.4.30, not .99)
    cxx = elf(needed=["libc.so.6", "libstdc++.so.6"],
              versions={"libstdc++.so.6": [("GLIBCXX_3.4.99", ["z"])]})
    assert judge(wheel("manylinux_2_45_x86_64", [cxx])).status == "mislabelled"
    # a claim older than any policy: aarch64's base version GLIBC_2.17 cannot satisfy 2_5
    a64 = elf(machine=183, versions={"libc.so.6": [("GLIBC_2.17", ["malloc"])]})
    assert judge(wheel("manylinux_2_5_aarch64", [a64])).status == "mislabelled"
    assert judge(wheel("manylinux_2_17_aarch64", [a64])).status == "ok"


def test_status_precedence() -> None:
    bad = elf(versions={"libc.so.6": [("GLIBC_2.28", ["fcntl64"])]})
    err = [MemberError("pkg/other.so", "truncated")]
    assert judge(wheel(elfs=[bad], errors=err)).status == "mislabelled"
    v = judge(wheel(elfs=[elf()], errors=err))
    assert v.status == "error"
    assert v.error is not None
    assert "pkg/other.so" in v.error
    v = judge(wheel(elfs=[]))
    assert (v.status, v.minimal_tag) == ("no-binaries", None)
    v = judge(wheel(elfs=[], errors=err))
    assert v.status == "error"
    v = judge(wheel("any", [elf()]))
    assert v.status == "not-linux"
    assert v.minimal_tag is None
    assert kinds(v) == {"binary-in-pure-wheel"}
    v = judge(WheelFacts(filename="nonsense.whl", filename_error="bad name"))
    assert v.status == "error"
    assert v.error is not None
    assert "bad name" in v.error
    v = judge(wheel(elfs=[elf()], error="central directory is corrupt"))
    assert (v.status, v.error) == ("error", "central directory is corrupt")


def test_strict_counts_warnings() -> None:
    e = elf(textrel=True)
    assert judge(wheel(elfs=[e])).status == "ok"
    v = judge(wheel(elfs=[e]), strict=True)
    assert v.status == "mislabelled"
    assert v.strict
    assert v.to_dict()["strict"] is True


def test_wheel_tag_mismatch_is_only_a_warning() -> None:
    v = judge(wheel(elfs=[elf()], wheel_tags=["cp311-cp311-linux_x86_64"]))
    assert v.status == "ok"
    (f,) = [f for f in v.findings if f.kind == "wheel-tag-mismatch"]
    assert f.evidence["filename_only"] == ["cp311-cp311-manylinux_2_17_x86_64"]
    assert f.evidence["wheel_only"] == ["cp311-cp311-linux_x86_64"]
    # compressed tag sets in WHEEL are expanded before comparing
    v = judge(wheel("manylinux1_x86_64.manylinux_2_5_x86_64", [elf()],
                    wheel_tags=["cp311-cp311-manylinux1_x86_64.manylinux_2_5_x86_64"]))
    assert "wheel-tag-mismatch" not in kinds(v)


def test_linux_tag() -> None:
    v = judge(wheel("linux_x86_64", [elf(needed=["libc.so.6", "libssl.so.3"])]))
    assert v.status == "ok"  # a bare linux tag promises nothing but the arch
    assert "linux-tag" in kinds(v, "warning")
    assert v.minimal_tag == "linux_x86_64"
    assert v.minimal_tags == {"manylinux": "linux_x86_64"}
    v = judge(wheel("linux_aarch64", [elf()]))
    assert v.status == "mislabelled"
    assert kinds(v, "violation") == {"arch-mismatch"}


def test_external_library_and_exclude() -> None:
    e = elf(needed=["libc.so.6", "libtorch_cpu.so"])
    v = judge(wheel(elfs=[e]))
    (f,) = v.violations
    assert (f.kind, f.evidence["library"]) == ("external-library", "libtorch_cpu.so")
    v = judge(wheel(elfs=[e]), exclude=["libtorch*.so"])
    assert v.status == "ok"
    assert v.exclude == ["libtorch*.so"]
    assert v.to_dict()["exclude"] == ["libtorch*.so"]
    v = judge(wheel(elfs=[elf(needed=["libc.so.6", "libpython3.11.so.1.0"])]))
    (f,) = v.violations
    assert "libpython" in f.detail


def test_runpath_disables_rpath() -> None:
    lib = elf("pkg/libs/libfoo.so.1", soname="libfoo.so.1")
    via_rpath = elf(needed=["libc.so.6", "libfoo.so.1"], rpath=["$ORIGIN/libs"])
    assert judge(wheel(elfs=[via_rpath, lib])).status == "ok"
    both = elf(needed=["libc.so.6", "libfoo.so.1"], rpath=["$ORIGIN/libs"],
               runpath=["$ORIGIN/elsewhere"])
    v = judge(wheel(elfs=[both, lib]))
    assert v.status == "mislabelled"
    (f,) = v.violations
    assert f.evidence["bundled_elsewhere"] == ["pkg/libs/libfoo.so.1"]
    via_runpath = elf(needed=["libc.so.6", "libfoo.so.1"], runpath=["${ORIGIN}/libs"])
    assert judge(wheel(elfs=[via_runpath, lib])).status == "ok"


def test_dependency_found_through_the_loader_tree() -> None:
    """libA (no RPATH) needs libB; both are found through the extension's RPATH: glibc
    searches the loader's DT_RPATH too, and auditwheel counts libB internal."""
    ext = elf(needed=["libc.so.6", "libA.so"], rpath=["$ORIGIN/.libs"])
    a = elf("pkg/.libs/libA.so", needed=["libc.so.6", "libB.so"], soname="libA.so")
    b = elf("pkg/.libs/libB.so", soname="libB.so")
    assert judge(wheel(elfs=[ext, a, b])).status == "ok"
    # with RUNPATH on the extension the chain does not extend to libA's lookups
    ext2 = elf(needed=["libc.so.6", "libA.so"], runpath=["$ORIGIN/.libs"])
    assert judge(wheel(elfs=[ext2, a, b])).status == "mislabelled"


def test_purelib_paths_install_to_the_root() -> None:
    assert installed_path("pkg-1.0.data/purelib/pkg/x.so") == "pkg/x.so"
    assert installed_path("pkg-1.0.data/platlib/pkg/x.so") == "pkg/x.so"
    assert installed_path("pkg-1.0.data/scripts/tool") == "pkg-1.0.data/scripts/tool"
    ext = elf("pkg-1.0.data/platlib/pkg/ext.so", needed=["libc.so.6", "libfoo.so.1"],
              runpath=["$ORIGIN/../pkg.libs"])
    lib = elf("pkg.libs/libfoo.so.1", soname="libfoo.so.1")
    v = judge(wheel(elfs=[ext, lib]))
    assert v.status == "ok"
    assert "purelib-binary" not in kinds(v)
    ext_pure = elf("pkg-1.0.data/purelib/pkg/ext.so")
    assert "purelib-binary" in kinds(judge(wheel(elfs=[ext_pure])), "warning")
    assert "purelib-binary" in kinds(judge(wheel(elfs=[elf()], root_is_purelib=True)))


def test_blacklist_needs_the_library_and_a_strong_import() -> None:
    e = elf(needed=["libc.so.6", "libz.so.1"], unversioned=["_tr_init"])
    v = judge(wheel(elfs=[e]))
    assert kinds(v, "violation") == {"blacklisted-symbol"}
    assert v.minimal_tag == "linux_x86_64"
    not_needed = elf(unversioned=["_tr_init"])
    assert judge(wheel(elfs=[not_needed])).status == "ok"
    weak = elf(needed=["libc.so.6", "libz.so.1"])
    weak.imports.append(SymbolGroup(None, None, 1, ["_tr_init"], weak_count=1))
    assert judge(wheel(elfs=[weak])).status == "ok"


def test_arch_abi_and_isa() -> None:
    soft = elf(machine=40, cls=32, e_flags=0x05000200,
               versions={"libc.so.6": [("GLIBC_2.4", ["malloc"])]})
    v = judge(wheel("manylinux_2_17_armv7l", [soft]))
    (f,) = v.violations
    assert f.kind == "arch-mismatch"
    assert "soft-float" in f.detail
    hard = elf(machine=40, cls=32, e_flags=0x05000400,
               versions={"libc.so.6": [("GLIBC_2.4", ["malloc"])]})
    assert judge(wheel("manylinux_2_17_armv7l", [hard])).status == "ok"
    big = elf(machine=21, endian="big")
    v = judge(wheel("manylinux_2_17_ppc64le", [big]))
    assert kinds(v, "violation") == {"arch-mismatch"}
    v = judge(wheel(elfs=[elf(x86_isa_needed=0x3)]))
    (f,) = v.violations
    assert (f.kind, f.evidence["level"]) == ("isa-level", 2)
    assert judge(wheel(elfs=[elf(x86_isa_needed=0x1)])).status == "ok"
    v = judge(wheel("manylinux_2_17_sparc64", [elf()]))
    assert v.status == "mislabelled"


def test_libc_families_and_minimal_tags() -> None:
    musl = elf(needed=["libc.musl-x86_64.so.1"], versions={})
    v = judge(wheel("manylinux_2_17_x86_64.musllinux_1_1_x86_64", [musl]))
    assert v.per_claim == [{"tag": "manylinux_2_17_x86_64", "holds": False},
                           {"tag": "musllinux_1_1_x86_64", "holds": True}]
    assert v.minimal_tags == {"manylinux": "linux_x86_64", "musllinux": "musllinux_1_1_x86_64"}
    assert v.minimal_tag == "linux_x86_64"  # the glibc one when claims span both
    assert kinds(v, "violation") == {"libc-mismatch"}
    glibc_only = elf()
    v = judge(wheel("musllinux_1_2_x86_64", [glibc_only]))
    assert kinds(v, "violation") == {"libc-mismatch"}
    by_suffix = elf("pkg/m.cpython-311-x86_64-linux-musl.so", needed=[], versions={})
    v = judge(wheel("manylinux_2_17_x86_64", [by_suffix]))
    assert kinds(v, "violation") == {"libc-mismatch"}


def test_musl_version_only_on_time64_arches() -> None:
    e = elf(machine=3, cls=32, needed=["libc.musl-x86.so.1"], versions={},
            unversioned=["__clock_gettime64", "malloc"])
    v = judge(wheel("musllinux_1_1_i686", [e]))
    (f,) = v.violations
    assert f.kind == "musl-version"
    assert f.evidence["symbols"] == ["__clock_gettime64"]
    assert v.minimal_tag == "musllinux_1_2_i686"
    assert judge(wheel("musllinux_1_2_i686", [e])).status == "ok"


def test_static_binary_satisfies_the_oldest_policy() -> None:
    static = ElfFacts(member="pkg/bin/tool", elf_class=64, endian="little", osabi=0, e_type=2,
                      machine=62, e_flags=0, has_dynamic=False)
    v = judge(wheel("manylinux_2_17_aarch64.manylinux_2_17_x86_64", [static]))
    assert v.minimal_tag == "manylinux_2_5_x86_64"
    assert v.per_claim[1] == {"tag": "manylinux_2_17_x86_64", "holds": True}
    assert "exec-stack" not in kinds(v)


def test_warnings() -> None:
    e = elf("pkg/m.cpython-310-aarch64-linux-gnu.so", stack="none", textrel=True,
            rpath=["/home/build/lib", "$ORIGIN"],
            runtime_exports=["__once_proxy", "_ZNSt6thread4joinEv", "_ZNSt8not_real_thingEv"])
    v = judge(wheel(elfs=[e], anomalies=["duplicate name pkg/x.py"]))
    assert v.status == "ok"
    assert kinds(v, "warning") == {"exec-stack", "textrel", "rpath", "cxx-runtime",
                                   "abi-suffix", "zip-anomaly"}
    by = {f.kind: f for f in v.findings}
    assert by["rpath"].evidence["entries"] == ["/home/build/lib"]
    assert by["cxx-runtime"].evidence["symbols"] == ["_ZNSt6thread4joinEv", "__once_proxy"]
    assert "cp310" in by["abi-suffix"].detail
    assert "aarch64" in by["abi-suffix"].detail
    libstdcxx = elf("pkg.libs/libstdc++.so.6", soname="libstdc++.so.6",
                    runtime_exports=["__once_proxy"])
    assert "cxx-runtime" not in kinds(judge(wheel(elfs=[libstdcxx])))


def test_policy_provenance_recorded() -> None:
    from importlib.metadata import version

    v = judge(wheel(elfs=[elf()]))
    assert v.policy["auditwheel_version"] == version("auditwheel")
    assert set(v.policy["files"]) == {"manylinux-policy.json", "musllinux-policy.json"}


def test_glibc_versions_of_other_libraries_are_not_libc_evidence() -> None:
    """aarch64 libgcc_s defines GLIBC_2.0 nodes; musl wheels bundle such a libgcc_s (numpy
    1.26.4 musllinux_1_1_aarch64 does) and are still musl binaries."""
    ext = elf("pkg/m.cpython-311-aarch64-linux-musl.so", machine=183,
              needed=["libc.musl-aarch64.so.1", "libgcc_s-4e37474d.so.1"],
              versions={"libgcc_s-4e37474d.so.1": [("GLIBC_2.0", ["__getauxval"])]},
              runpath=["$ORIGIN/../pkg.libs"])
    gcc_s = elf("pkg.libs/libgcc_s-4e37474d.so.1", machine=183,
                needed=["libc.musl-aarch64.so.1"], versions={},
                soname="libgcc_s-4e37474d.so.1")
    v = judge(wheel("musllinux_1_1_aarch64", [ext, gcc_s]))
    assert v.status == "ok"
    assert v.required_glibc is None


@pytest.mark.skipif(not __import__("shutil").which("g++"), reason="g++ needed")
def test_cxx_runtime_from_a_statically_linked_libstdcxx(tmp_path: Any) -> None:
    """g++ -static-libstdc++ exports libstdc++'s own std::thread and __once_proxy from the
    extension (nm shows them as defined, global); wheelscan warns, the claim still holds."""
    import subprocess

    from helpers.builders import build_elf, make_wheel

    src = ("#include <thread>\n#include <mutex>\nstatic std::once_flag f;\n"
           'extern "C" int run(void) { std::thread t([]{ std::call_once(f, []{}); });'
           " t.join(); return 0; }\n")
    so = build_elf(tmp_path, "ext.so", src, lang="c++", cc="gcc",
                   flags=["-static-libstdc++", "-static-libgcc", "-pthread"])
    nm = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True,
                        text=True, check=True).stdout
    assert " T __once_proxy" in nm  # the construction really exports the runtime
    w = make_wheel(tmp_path, "cxx-1.0-cp311-cp311-manylinux_2_34_x86_64.whl",
                   {"cxx/ext.so": so})
    v = judge(scan_wheel(w, engine=ENGINE))
    (f,) = [f for f in v.findings if f.kind == "cxx-runtime"]
    assert f.severity == "warning"
    # (facts keep the first RUNTIME_EXPORT_CAP names sorted, so __once_proxy may be cut off)
    assert any(s.startswith("_ZNSt6thread15_M_start_thread") for s in f.evidence["symbols"])
    assert f.evidence["count"] >= 100
    # an ordinary C++ extension linking the shared libstdc++ exports none of it
    plain = build_elf(tmp_path / "plain", "ext.so", src, lang="c++", cc="gcc", flags=["-pthread"])
    w2 = make_wheel(tmp_path / "plain", "cxx-1.0-cp311-cp311-manylinux_2_34_x86_64.whl",
                    {"cxx/ext.so": plain})
    assert "cxx-runtime" not in kinds(judge(scan_wheel(w2, engine=ENGINE)))


def test_judge_never_raises_on_odd_facts() -> None:
    """Facts from a hostile wheel can hold any strings and numbers; judge must still answer
    with a verdict that fits the schema."""
    import json
    from importlib import resources

    import jsonschema
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    schema = json.loads((resources.files("wheelscan") / "data" / "check-schema.json").read_text())
    text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
        ["$ORIGIN/..", "${ORIGIN}", "/abs", "..", "", "GLIBC_", "GLIBC_2.x", "GLIBC_99.99",
         "libc.so.6", "libc.musl-x86_64.so.1", "ld-linux-x86-64.so.2", "libpython3.11.so"])
    elf_st = st.builds(
        lambda member, machine, cls, flags, needed, rp, rn, vers, names, stack, isa: ElfFacts(
            member=member, elf_class=cls, endian="little", osabi=0, e_type=3, machine=machine,
            e_flags=flags, has_dynamic=True, needed=needed, rpath=rp, runpath=rn, stack=stack,
            version_needs=[LibraryNeed(lib, [VersionNeed(v)]) for lib, v in vers],
            imports=[SymbolGroup(lib, v, len(names), names) for lib, v in vers]
            + [SymbolGroup(None, None, len(names), names)],
            x86_isa_needed=isa),
        st.sampled_from(["pkg/a.so", "pkg/b/c.so", "x.data/purelib/a.so", "../evil.so"]) | text,
        st.sampled_from([3, 62, 183, 40, 0, 65535]), st.sampled_from([32, 64]),
        st.integers(0, 2**32 - 1), st.lists(text, max_size=4), st.lists(text, max_size=3),
        st.lists(text, max_size=3), st.lists(st.tuples(text, text), max_size=3),
        st.lists(text, max_size=3), st.sampled_from(["none", "exec", "noexec", "?"]),
        st.none() | st.integers(0, 2**32 - 1))
    tags = st.lists(st.sampled_from(["manylinux_2_17_x86_64", "manylinux1_i686", "any",
                                     "musllinux_1_1_armv7l", "linux_aarch64",
                                     "manylinux_2_99_x86_64", "manylinux_0_0_x86_64",
                                     "manylinux9_x86_64", "macosx_11_0_arm64"]),
                    min_size=1, max_size=3)

    validator = jsonschema.Draft202012Validator(schema)

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(tags, st.lists(elf_st, max_size=4), st.lists(text, max_size=2))
    def check(plat: list[str], elfs: list[ElfFacts], wheel_tags: list[str]) -> None:
        w = wheel(".".join(plat), elfs, wheel_tags=wheel_tags)
        v = judge(w, exclude=["lib*.so.?"])
        validator.validate(v.to_dict())

    check()


def test_verdict_round_trips_through_json(scenarios: list[Scenario], tmp_path: Any) -> None:
    """A verdict crosses a process boundary (``check --jobs``) and the store as JSON: what comes
    back is the same verdict, and prints the same bytes."""
    import json

    from wheelscan.rules.verdict import Verdict

    (tmp_path / "bad-1.0-py3-none-manylinux1_x86_64.whl").write_bytes(b"PK\x05\x06" * 9)
    verdicts = [judge(scan_wheel(s.path, engine=ENGINE)) for s in scenarios]
    verdicts.append(judge(scan_wheel(tmp_path / "bad-1.0-py3-none-manylinux1_x86_64.whl")))
    odd = "m\u00e9mber/\udcff\x1b[2J.so"  # a name undecodable as UTF-8, with an escape
    verdicts.append(judge(wheel("manylinux_2_17_x86_64", [elf(member=odd, needed=["libx.so"])]),
                          exclude=["liby.so"], strict=True))  # fmt: skip
    assert {v.status for v in verdicts} >= {"ok", "mislabelled", "error"}
    assert any(f.member == odd for f in verdicts[-1].findings)
    for v in verdicts:
        v.path = f"some/where/{v.wheel}"
        back = Verdict.from_json(v.to_json())
        assert back == v, v.wheel
        assert json.dumps(back.to_dict()) == json.dumps(v.to_dict())
    stale = json.loads(verdicts[0].to_json()) | {"schema_version": 0}
    with pytest.raises(ValueError, match="verdict schema 0"):
        Verdict.from_dict(stale)


def test_judge_is_hermetic(scenarios: list[Scenario], monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the policy data is loaded, judging touches no file at all: nothing about the
    scanning machine (its libraries, ld.so.conf, libc) can change a verdict."""
    import builtins
    import io

    from wheelscan.rules.policy import cxx_runtime_symbols, default_policies, musl_12_symbols

    default_policies()
    cxx_runtime_symbols()
    musl_12_symbols()
    facts = [scan_wheel(s.path, engine=ENGINE) for s in scenarios]
    expected = [judge(f).to_dict() for f in facts]

    def forbidden(*a: Any, **k: Any) -> Any:
        raise AssertionError(f"judge touched the filesystem: {a!r}")

    with monkeypatch.context() as m:
        for mod, name in ((builtins, "open"), (io, "open"), (os, "stat"), (os, "listdir"),
                          (os, "scandir"), (os.path, "exists"), (os.path, "realpath")):
            m.setattr(mod, name, forbidden)
        again = [judge(f).to_dict() for f in facts]
    assert again == expected


THR = "__cxa_thread_atexit_impl"


@pytest.mark.parametrize("engine", ["native", "lief"])
def test_weak_blacklisted_import_is_tolerated_and_said(
    scenarios: list[Scenario], engine: str
) -> None:
    """A weak import of a blacklisted symbol (Rust's std and __cxa_thread_atexit_impl) binds to
    NULL where libc lacks it: ok, with an info finding naming it; a strong one is a violation.
    Both engines see the weak binding independently (pyelftools checks the ELF itself)."""
    from elftools.elf.elffile import ELFFile

    wanted = {"weak-blacklisted", "weak-blacklisted-versioned", "strong-blacklisted"}
    seen = set()
    for s in (s for s in scenarios if s.name in wanted):
        seen.add(s.name)
        facts = scan_wheel(s.path, engine=engine)
        (elf,) = facts.elfs
        weak = {n for g in elf.imports for n in g.weak_names}
        assert (THR in weak) == s.name.startswith("weak"), (s.arch, s.name, elf.imports)
        import zipfile

        with zipfile.ZipFile(s.path) as z, z.open(elf.member) as f:
            import io

            dynsym = ELFFile(io.BytesIO(f.read())).get_section_by_name(".dynsym")
            binding = {sym.name: sym["st_info"]["bind"] for sym in dynsym.iter_symbols()}
        assert binding[THR] == ("STB_WEAK" if s.name.startswith("weak") else "STB_GLOBAL")
        v = judge(facts)
        infos = [f for f in v.findings if f.kind == "weak-import"]
        if s.name.startswith("weak"):
            assert v.status == "ok", (s.arch, s.name, v.findings)
            assert infos, (s.arch, s.name)
            assert all(f.severity == "info" and THR in f.detail for f in infos)
            assert infos[0].evidence["symbols"] == [THR]
            assert infos[0].evidence["library"] == "libc.so.6"
        else:
            assert v.status == "mislabelled"
            assert not infos
            (bl,) = [f for f in v.violations if f.kind == "blacklisted-symbol"]
            assert bl.evidence["symbols"] == [THR]
    assert seen == wanted


def test_weak_and_strong_import_of_one_name_is_strong() -> None:
    """A name referenced both weakly and strongly in one group must be there at load time."""
    from wheelscan.facts import weak_only

    names = sorted(["malloc", THR, THR, "free"])
    assert weak_only(names, [THR], 64) == []
    assert weak_only(names, [THR, THR], 64) == [THR]
    assert weak_only(["a", "b", "c"], ["c", "b", "a"], 2) == ["a", "b"]


def test_schema_1_facts_still_load_and_judge() -> None:
    """Stored facts from before weak_names: a group with no weak_names field is read as
    'no weak names known', and an all-weak group is still tolerated as it was."""
    elf = _elf_dict(imports=[
        {"library": None, "version": None, "count": 2, "names": [THR, "deflate"],
         "weak_count": 1},
        {"library": "libc.so.6", "version": "GLIBC_2.2.5", "count": 1, "names": [THR],
         "weak_count": 1},
    ])
    facts = WheelFacts.from_dict(_wheel_dict(elf, schema=1))
    assert facts.elfs[0].imports[0].weak_names == []
    v = judge(facts)
    # the unversioned group mixes weak and strong: schema 1 cannot tell which, so strong
    assert v.status == "mislabelled"
    elf["imports"] = elf["imports"][1:]
    v = judge(WheelFacts.from_dict(_wheel_dict(elf, schema=1)))
    assert v.status == "ok", v.findings
    assert [f.kind for f in v.findings if f.kind == "weak-import"] == ["weak-import"]


def _elf_dict(**kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "member": "pkg/ext.abi3.so", "elf_class": 64, "endian": "little", "osabi": 0,
        "e_type": 3, "machine": 62, "e_flags": 0, "has_dynamic": True, "stack": "noexec",
        "needed": ["libc.so.6", "libz.so.1"],
        "version_needs": [{"file": "libc.so.6",
                           "versions": [{"name": "GLIBC_2.2.5", "weak": False}]}],
    }
    d.update(kw)
    return d


def _wheel_dict(elf: dict[str, Any], schema: int) -> dict[str, Any]:
    return {"filename": "rs-1.0-cp311-abi3-manylinux2014_x86_64.whl", "name": "rs",
            "version": "1.0", "python_tags": ["cp311"], "abi_tags": ["abi3"],
            "platform_tags": ["manylinux2014_x86_64"], "has_wheel_file": True,
            "wheel_tags": ["cp311-abi3-manylinux2014_x86_64"], "elfs": [elf], "schema": schema}
