"""Native engine vs lief engine, field by field, over every corpus wheel and over real ELF files
installed on this machine; plus both engines vs the fixtures' construction and readelf, so the
two engines cannot agree on the same mistake unnoticed.

A failure prints one line per disagreement: wheel, member, field, native value, lief value.
"""

from __future__ import annotations

import dataclasses
import site
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import native_engine_error, require
from helpers.builders import make_wheel
from helpers.corpus import (
    WHEEL_IDS,
    corpus_wheel,
    expectation_mismatches,
    readelf_facts,
    readelf_mismatches,
)

import wheelscan
from wheelscan.facts import ElfFacts, MemberStats, WheelFacts
from wheelscan.read.lief import LIEF_UNCOMPARABLE

if TYPE_CHECKING:
    from helpers.corpus import Corpus, CorpusWheel


# Fields whose free text may differ between engines: only presence (or the member named) is
# compared. Everything else in WheelFacts is compared exactly unless listed in LIEF_UNCOMPARABLE.
def _excluded(cls: str, name: str) -> bool:
    return f"{cls}.{name}" in LIEF_UNCOMPARABLE


def _short(value: object, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _diff_list(where: str, a: list[Any], b: list[Any]) -> list[str]:
    if a == b:
        return []
    try:
        only_a = [x for x in a if x not in b]
        only_b = [x for x in b if x not in a]
    except TypeError:
        only_a, only_b = a, b
    if not only_a and not only_b:
        return [
            f"{where}: same items, different order/multiplicity: native {_short(a)}"
            f" | lief {_short(b)}"
        ]
    return [f"{where}: only native {_short(only_a)} | only lief {_short(only_b)}"]


def diff_elf(wheel: str, a: ElfFacts, b: ElfFacts) -> list[str]:
    """Readable disagreements between two ElfFacts of the same member (native a, lief b)."""
    out: list[str] = []
    where = f"{wheel} :: {a.member}"
    for f in dataclasses.fields(ElfFacts):
        if _excluded("ElfFacts", f.name):
            continue
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if va == vb:
            continue
        if f.name == "imports":
            ga = {(g.library, g.version): g for g in va}
            gb = {(g.library, g.version): g for g in vb}
            for key in sorted(set(ga) | set(gb), key=lambda k: (k[0] or "", k[1] or "")):
                if key not in ga or key not in gb:
                    side = "lief" if key not in ga else "native"
                    out.append(f"{where} :: imports{key}: only in {side}")
                    continue
                for gf in dataclasses.fields(ga[key]):
                    x, y = getattr(ga[key], gf.name), getattr(gb[key], gf.name)
                    if x != y:
                        if isinstance(x, list):
                            out += _diff_list(f"{where} :: imports{key}.{gf.name}", x, y)
                        else:
                            out.append(
                                f"{where} :: imports{key}.{gf.name}: native {x!r} | lief {y!r}"
                            )
            if not out and [(g.library, g.version) for g in va] != [
                (g.library, g.version) for g in vb
            ]:
                out.append(f"{where} :: imports: group order differs")
        elif isinstance(va, list) and isinstance(vb, list):
            out += _diff_list(f"{where} :: {f.name}", va, vb)
        else:
            out.append(f"{where} :: {f.name}: native {_short(va)} | lief {_short(vb)}")
    return out


def diff_facts(native: WheelFacts, lief: WheelFacts) -> list[str]:
    """Every disagreement between the engines' facts for one wheel, one readable line each."""
    out: list[str] = []
    w = native.filename
    for f in dataclasses.fields(WheelFacts):
        name = f.name
        va, vb = getattr(native, name), getattr(lief, name)
        if name in ("elfs", "members", "errors"):
            continue
        if _excluded("WheelFacts", name):
            if bool(va) != bool(vb):
                out.append(
                    f"{w} :: {name} (presence only): native {_short(va)} | lief {_short(vb)}"
                )
            continue
        if va != vb:
            out.append(f"{w} :: {name}: native {_short(va)} | lief {_short(vb)}")
    # members the scan touched: compare name and the central-directory numbers
    stats = [
        f.name for f in dataclasses.fields(MemberStats) if not _excluded("MemberStats", f.name)
    ]
    ma = [tuple(getattr(m, s) for s in stats) for m in native.members]
    mb = [tuple(getattr(m, s) for s in stats) for m in lief.members]
    out += _diff_list(f"{w} :: members{tuple(stats)}", ma, mb)
    out += _diff_list(
        f"{w} :: errors (member names)",
        [e.member for e in native.errors],
        [e.member for e in lief.errors],
    )
    ea = {e.member: e for e in native.elfs}
    eb = {e.member: e for e in lief.elfs}
    out += _diff_list(f"{w} :: elfs (members, in order)", list(ea), list(eb))
    for member in ea.keys() & eb.keys():
        out += diff_elf(w, ea[member], eb[member])
    return out


def assert_same_facts(native: WheelFacts, lief: WheelFacts) -> None:
    problems = diff_facts(native, lief)
    assert not problems, f"{len(problems)} native/lief disagreements:\n" + "\n".join(problems)


@pytest.fixture(scope="session")
def native_available() -> None:
    require(native_engine_error())


@pytest.mark.parametrize("wheel_id", list(WHEEL_IDS))
def test_native_matches_lief(corpus: Corpus, wheel_id: str, native_available: None) -> None:
    w = corpus_wheel(corpus, wheel_id)
    native = wheelscan.scan_wheel(w.path, engine="native")
    lief = wheelscan.scan_wheel(w.path, engine="lief")
    assert native.error is None, f"{w.id}: native: {native.error}"
    assert lief.error is None, f"{w.id}: lief: {lief.error}"
    assert_same_facts(native, lief)


@pytest.mark.parametrize("engine", ["native", "lief"])
@pytest.mark.parametrize("wheel_id", list(WHEEL_IDS))
def test_engine_matches_construction(corpus: Corpus, wheel_id: str, engine: str) -> None:
    """Each ELF as built (stubs, flags, arch) and as readelf reads it, per engine."""
    if engine == "native":
        require(native_engine_error())
    w = corpus_wheel(corpus, wheel_id)
    facts = wheelscan.scan_wheel(w.path, engine=engine)
    assert facts.error is None, f"{w.id}: {facts.error}"
    assert facts.errors == [], f"{w.id}: {facts.errors}"
    assert [e.member for e in facts.elfs] == [m for m in _cd_order(w) if m in w.elfs], w.id
    problems = []
    for elf in facts.elfs:
        e = w.elfs[elf.member]
        problems += [f"{w.id} :: {elf.member} :: {p}" for p in expectation_mismatches(elf, e)]
        problems += [
            f"{w.id} :: {elf.member} :: {p}"
            for p in readelf_mismatches(elf, _readelf(e.source), has_sections=e.has_sections)
        ]
    assert not problems, f"{engine} engine vs construction/readelf:\n" + "\n".join(problems)


def _cd_order(w: CorpusWheel) -> list[str]:
    import zipfile

    with zipfile.ZipFile(w.path) as zf:
        return zf.namelist()


_READELF: dict[Path, dict[str, object]] = {}


def _readelf(path: Path) -> dict[str, object]:
    if path not in _READELF:
        _READELF[path] = readelf_facts(path)
    return _READELF[path]


# ---------------------------------------------------------------------------------------------
# Real-world ELF files already installed here, wrapped into wheels at test time.


def _site_packages() -> Path:
    for p in [*site.getsitepackages(), *sys.path]:
        if (Path(p) / "lief").is_dir():
            return Path(p)
    pytest.skip("site-packages with lief not found")


_SYSTEM_LIBS = ["libc.so.6", "libstdc++.so.6", "libz.so.1", "libm.so.6", "libgcc_s.so.1"]
_MAX_MEMBER = 16 << 20  # keep the suite fast: the biggest installed libraries are skipped


def _real_world_sets() -> dict[str, tuple[str, dict[str, Path]]]:
    sp = _site_packages()
    sets: dict[str, tuple[str, dict[str, Path]]] = {}
    for pkg, method in [
        ("numpy", "deflate"),
        ("lief", "zstd"),
        ("zstandard", "deflate"),
        ("isal", "stored"),
        ("zlib_ng", "deflate"),
    ]:
        files: dict[str, Path] = {}
        for root in (sp / pkg, sp / f"{pkg}.libs"):
            if root.is_dir():
                for f in sorted(root.rglob("*.so*")):
                    if f.is_file() and f.stat().st_size <= _MAX_MEMBER:
                        files[str(f.relative_to(sp))] = f
        if files:
            sets[pkg] = (method, files)
    libdir = Path("/usr/lib/x86_64-linux-gnu")
    system = {
        f"sysfixture.libs/{n}": (libdir / n).resolve()
        for n in _SYSTEM_LIBS
        if (libdir / n).exists()
    }
    if system:
        sets["system"] = ("deflate", system)
    return sets


@pytest.fixture(scope="session")
def real_world_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("realworld")
    wheels = {}
    for name, (method, files) in _real_world_sets().items():
        dist = f"rw_{name}"
        wheels[name] = make_wheel(
            out, f"{dist}-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", dict(files), method=method
        )
    return wheels


REAL_WORLD = ["numpy", "lief", "zstandard", "isal", "zlib_ng", "system"]


@pytest.mark.parametrize("name", REAL_WORLD)
def test_native_matches_lief_real_world(
    real_world_wheels: dict[str, Path], name: str, native_available: None
) -> None:
    if name not in real_world_wheels:
        pytest.skip(f"{name}: not installed here")
    path = real_world_wheels[name]
    native = wheelscan.scan_wheel(path, engine="native")
    lief = wheelscan.scan_wheel(path, engine="lief")
    assert lief.error is None, lief.error
    assert lief.errors == [], lief.errors
    assert lief.elfs, f"{name}: no ELF found"
    assert_same_facts(native, lief)


@pytest.mark.parametrize("name", REAL_WORLD)
def test_lief_engine_matches_readelf_real_world(
    real_world_wheels: dict[str, Path], name: str
) -> None:
    """The oracle itself, checked against binutils on real-world files."""
    if name not in real_world_wheels:
        pytest.skip(f"{name}: not installed here")
    _method, files = _real_world_sets()[name]
    facts = wheelscan.scan_wheel(real_world_wheels[name], engine="lief")
    assert facts.error is None, facts.error
    assert facts.errors == [], facts.errors
    assert sorted(e.member for e in facts.elfs) == sorted(files)
    problems = [
        f"{name} :: {elf.member} :: {p}"
        for elf in facts.elfs
        for p in readelf_mismatches(elf, _readelf(files[elf.member]), has_sections=True)
    ]
    assert not problems, "\n".join(problems)


def test_diff_names_wheel_member_and_field(corpus: Corpus) -> None:
    """The comparison helper itself: a planted difference is reported, readably."""
    w = corpus_wheel(corpus, "x86_64-deflate")
    a = wheelscan.scan_wheel(w.path, engine="lief")
    b = WheelFacts.from_dict(a.to_dict())
    assert diff_facts(a, b) == []
    b.elfs[0].needed = [*b.elfs[0].needed, "libextra.so.1"]
    b.elfs[1].imports[-1].names = b.elfs[1].imports[-1].names[1:]
    b.members[0].size += 1
    problems = diff_facts(a, b)
    assert any(
        a.elfs[0].member in p and ":: needed" in p and "libextra.so.1" in p for p in problems
    ), problems
    assert any(a.elfs[1].member in p and ".names" in p for p in problems), problems
    assert any(":: members" in p for p in problems), problems
    assert all(p.startswith(w.path.name) for p in problems), problems
