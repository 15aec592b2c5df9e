"""Policy data: generated from the pinned auditwheel, validated on load, overridable."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import pytest
from conftest import require_module

from wheelscan.rules.policy import (
    PolicyError,
    cxx_runtime_symbols,
    default_policies,
    load_policies,
    musl_12_symbols,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "src" / "wheelscan" / "data"


def _script(name: str) -> Any:
    require_module("auditwheel")  # the generators and the checks read auditwheel's own files
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_shipped_policy_equals_regenerated() -> None:
    gen = _script("generate_policy")
    assert (DATA / "policy.json").read_text() == gen.render(gen.build_policy_data())


def test_pinned_auditwheel_is_the_source() -> None:
    require_module("auditwheel")
    pyproject = (ROOT / "pyproject.toml").read_text()
    pinned = re.search(r'"auditwheel==([^"]+)"', pyproject)
    assert pinned is not None
    ps = default_policies()
    assert ps.provenance["auditwheel_version"] == pinned.group(1) == metadata.version("auditwheel")
    import hashlib

    pkg = resources.files("auditwheel") / "policy"
    for fname, digest in ps.provenance["files"].items():
        assert hashlib.sha256((pkg / fname).read_bytes()).hexdigest() == digest


def test_policies_match_auditwheel_per_arch() -> None:
    require_module("auditwheel")
    """Every (policy, arch) auditwheel itself builds has the same versions and whitelist."""
    from auditwheel.architecture import Architecture
    from auditwheel.libc import Libc
    from auditwheel.policy import WheelPolicies

    ps = default_policies()
    for arch in ("x86_64", "i686", "aarch64", "armv7l", "ppc64le", "s390x", "riscv64"):
        aw = WheelPolicies(libc=Libc.GLIBC, arch=Architecture(arch))
        for p in aw:
            if p.name.startswith("linux"):
                continue
            name = p.name[: -len(arch) - 1]
            ours = ps.resolve("glibc", tuple(map(int, name.split("_")[1:3])), arch)  # type: ignore[arg-type]
            assert ours is not None
            assert ours.exact
            want = {pre: {f"{pre}_{v}" for v in vs} for pre, vs in p.symbol_versions.items()}
            assert ours.symbol_versions == want, p.name
            assert ours.whitelist == p.whitelist
            assert ours.blacklist == p.blacklist


def test_validation_rejects_broken_files(tmp_path: Path) -> None:
    doc = json.loads((DATA / "policy.json").read_text())
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(doc))
    ps = load_policies(ok)
    assert ps.provenance["file"] == str(ok)

    def broken(mutate: Any) -> Path:
        d = copy.deepcopy(doc)
        mutate(d)
        p = tmp_path / "bad.json"
        p.write_text(json.dumps(d))
        return p

    def drop_whitelist(d: dict[str, Any]) -> None:
        newest = max((p for p in d["policies"] if p["libc"] == "glibc"),
                     key=lambda p: p["version"])
        newest["lib_whitelist"].remove("libc.so.6")

    def drop_version(d: dict[str, Any]) -> None:
        newest = max((p for p in d["policies"] if p["libc"] == "glibc"),
                     key=lambda p: p["version"])
        newest["symbol_versions"]["x86_64"]["GLIBC"].remove("2.17")

    def bad_name(d: dict[str, Any]) -> None:
        d["policies"][0]["name"] = "manylinux_9_9"

    for mutate, msg in ((drop_whitelist, "whitelist drops"), (drop_version, "versions missing"),
                        (bad_name, "does not match")):
        with pytest.raises(PolicyError, match=msg):
            load_policies(broken(mutate))
    with pytest.raises(PolicyError, match="format"):
        load_policies(broken(lambda d: d.update(format=2)))
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policies(tmp_path / "junk.json")


def test_policy_file_override_changes_the_verdict(tmp_path: Path) -> None:
    """--policy FILE: a newer policy (here: 2_17 allowing GLIBC_2.18) judges differently."""
    from wheelscan import judge
    from wheelscan.facts import ElfFacts, LibraryNeed, SymbolGroup, VersionNeed, WheelFacts

    doc = json.loads((DATA / "policy.json").read_text())
    for p in doc["policies"]:
        if p["libc"] == "glibc" and p["version"] >= [2, 17]:
            p["symbol_versions"]["x86_64"]["GLIBC"].append("2.18")
    doc["provenance"]["source"] = "test override"
    f = tmp_path / "newer.json"
    f.write_text(json.dumps(doc))
    e = ElfFacts(member="pkg/x.so", elf_class=64, endian="little", osabi=0, e_type=3,
                 machine=62, e_flags=0, has_dynamic=True, needed=["libc.so.6"], stack="noexec",
                 version_needs=[LibraryNeed("libc.so.6", [VersionNeed("GLIBC_2.18")])],
                 imports=[SymbolGroup("libc.so.6", "GLIBC_2.18", 1, ["x"])])
    w = WheelFacts(filename="p-1-cp311-cp311-manylinux_2_17_x86_64.whl",
                   platform_tags=["manylinux_2_17_x86_64"], python_tags=["cp311"],
                   abi_tags=["cp311"], elfs=[e])
    assert judge(w).status == "mislabelled"
    v = judge(w, load_policies(f))
    assert v.status == "ok"
    assert v.policy["source"] == "test override"


def test_resolve_rule() -> None:
    ps = default_policies()
    r = ps.resolve("glibc", (2, 30), "x86_64")
    assert r is not None
    assert (r.exact, r.based_on) == (False, "manylinux_2_28_x86_64")
    assert r.allows("GLIBC_2.30")
    assert not r.allows("GLIBC_2.31")
    assert not r.allows("GLIBC_PRIVATE")
    assert r.allows("OPENSSL_3.0") is None  # prefixes no policy lists are not judged
    assert ps.resolve("glibc", (2, 17), "sparc64") is None
    r = ps.resolve("musl", (1, 1), "i686")
    assert r is not None
    assert "__clock_gettime64" in r.forbidden_symbols
    r = ps.resolve("musl", (1, 1), "x86_64")
    assert r is not None
    assert not r.forbidden_symbols  # 64-bit arches always had a 64-bit time_t
    r = ps.resolve("musl", (1, 2), "armv7l")
    assert r is not None
    assert "libc.musl-armv7.so.1" in r.whitelist


def test_musl_data_provenance() -> None:
    d = musl_12_symbols()
    assert d["provenance"]["tag"] == "v1.2.0"
    assert re.fullmatch(r"[0-9a-f]{40}", d["provenance"]["commit"])
    assert set(d["archs"]) == {"i686", "armv7l"}
    syms = d["symbols"]
    assert syms["__clock_gettime64"] == "clock_gettime"
    assert syms["__stat_time64"] == "stat"
    assert all(t.startswith("__") and "64" in t for t in syms)
    assert len(syms) > 50


def test_cxx_runtime_list() -> None:
    syms = cxx_runtime_symbols()
    assert "__once_proxy" in syms
    assert any(s.startswith("_ZNSt6thread15_M_start_thread") for s in syms)
    assert "_Unwind_Resume" in syms
    # template instantiations are not "the runtime's own" (std::vector<...>::..., weak)
    assert not any(s.startswith("_ZNSt6vectorI") for s in syms)
    prov = json.loads((DATA / "cxx-runtime.json").read_text())["provenance"]
    assert {s["file"].split(".so")[0] for s in prov["sources"]} == {"libstdc++", "libgcc_s"}
