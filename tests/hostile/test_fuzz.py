"""Mutation fuzzing of real fixture wheels with hypothesis, for both engines.

Two parsers are fuzzed separately:

- ``zip``: the bytes of whole wheels (deflate, stored, Zstandard, ZIP64) are mutated, so the
  ZIP reader sees broken records, sizes, offsets and streams;
- ``elf``: the bytes of gcc-built ELF files (ELF64 LE, ELF32 LE, ELF64 BE where a cross compiler
  exists) are mutated *before* packing, so the archive is sound and the ELF parser sees mutated
  but decompressible data.

Mutations: bit flips, overwrites with interesting values (0, 0xFF.., 2**31, 2**63, ...) or
random bytes, truncation, duplicated and deleted chunks, positioned near the structures that
matter (headers, directories, dynamic tables) more often than uniformly.

Property: ``scan_wheel`` returns WheelFacts (never raises, never crashes, finishes in bounded
time), every error message is a non-empty str, and facts stay bounded (caps of facts.py, and no
more entries than the member's bytes can hold).

Each fuzz run is a child process (``python tests/hostile/test_fuzz.py ...``), so a segfault fails
the test with the input that caused it saved on disk instead of killing pytest. Profiles (chosen by
``HYPOTHESIS_PROFILE``, default ``ci``): ``ci`` runs 2,000 derandomized examples per parser and
engine; ``expensive`` (needs ``WHEELSCAN_SLOW_TESTS=1``) runs many more from a printed seed
(``WHEELSCAN_FUZZ_SEED`` replays one).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the helpers package

from helpers.builders import (
    COMPILERS,
    Import,
    ZipMember,
    build_elf,
    build_stub,
    have,
    make_wheel,
    write_zip,
)
from helpers.elfpatch import DT, Elf, ZipLayout
from helpers.isolated import engine_params, private_tmp

WHL = "fuzz-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
EXAMPLE_SECONDS = 5.0
MIN_EXAMPLES = {"ci": 2000}
SLOW = os.environ.get("WHEELSCAN_SLOW_TESTS", "") not in ("", "0")


def profile_name() -> str:
    name = os.environ.get("HYPOTHESIS_PROFILE") or ("expensive" if SLOW else "ci")
    return name if name in ("ci", "expensive", "dev") else "ci"


def register_profiles() -> None:
    from hypothesis import HealthCheck, settings

    common: dict[str, Any] = {
        "deadline": None,
        "database": None,
        "suppress_health_check": list(HealthCheck),
        "print_blob": True,
    }
    settings.register_profile("ci", max_examples=2000, derandomize=True, **common)
    settings.register_profile("ci-views", max_examples=3000, derandomize=True, **common)
    settings.register_profile("expensive", max_examples=30000, derandomize=False, **common)
    settings.register_profile("dev", max_examples=200, derandomize=True, **common)


# ---------------------------------------------------------------------------------------------
# Fixtures (built in the pytest process, once per module) and the plan handed to each child.


def _hot_zip(data: bytes) -> list[int]:
    """Offsets of the records the ZIP reader trusts: local headers, CD entries, EOCDs."""
    z = ZipLayout(data)
    hot = [z.eocd, z.cd_offset]
    hot += [x for x in (z.zip64_eocd, z.zip64_locator) if x is not None]
    for e in z.entries:
        hot += [e.cd_at, e.cd_at + 16, e.local_at, e.local_at + 14, z.data_at(e.name)]
    return sorted(set(hot))


def _hot_elf(data: bytes) -> list[int]:
    """Offsets the ELF parser reads: header, program headers, dynamic entries and tables."""
    e = Elf(data)
    hot = [0, 0x10, 0x20, e.phoff, *(p.at for p in e.phdrs), *(a for _t, _v, a in e.dyn)]
    hot += e.notes()
    present = {t for t, _v, _a in e.dyn}
    tags = (DT.STRTAB, DT.SYMTAB, DT.HASH, DT.GNU_HASH, DT.VERSYM, DT.VERNEED, DT.VERDEF)
    hot += [e.table(tag) for tag in tags if tag in present]
    try:
        for vn, auxes in e.verneed_entries():
            hot += [vn, *auxes]
        hot += e.verdef_entries()
    except (StopIteration, KeyError, struct.error):
        pass
    return sorted({h for h in hot if 0 <= h < len(data)})


def build_plan(root: Path) -> dict[str, Any]:
    """Real ELF files and wheels to mutate, with the offsets worth aiming at."""
    elfs: dict[str, Path] = {}
    for arch, cc in COMPILERS.items():
        if arch not in ("x86_64", "i686", "s390x") or not have(cc):
            continue
        d = root / arch
        libc = build_stub(d, "libc.so.6", {"GLIBC_2.2.5": ["fz_old"], "GLIBC_2.17": ["fz_new"]},
                          cc=cc)  # fmt: skip
        libm = build_stub(d, "libm.so.6", {"GLIBC_2.29": ["fz_exp"]}, unversioned=["fz_u"], cc=cc)
        vmap = d / "fz.map"
        vmap.write_text("FZ_1 { global: fz_a; };\nFZ_2 { global: fz_b; } FZ_1;\n")
        flags = [f"-Wl,--version-script={vmap}", "-Wl,--hash-style=both"]
        if arch == "x86_64":
            flags.append("-Wl,-z,x86-64-v2")
        imports = [Import("fz_old", libc), Import("fz_new", libc), Import("fz_exp", libm),
                   Import("fz_u", libm, weak=True)]  # fmt: skip
        src = "int fz_a(void) { return 1; }\nint fz_b(void) { return 2; }\n"
        elfs[arch] = build_elf(d, f"fz_{arch}.so", src, cc=cc, imports=imports, flags=flags,
                               runpath="$ORIGIN/../fuzz.libs")  # fmt: skip
    assert "x86_64" in elfs
    wheels: dict[str, Path] = {}
    files: dict[str, bytes | Path] = {f"fuzz/_{a}.so": p for a, p in elfs.items()}
    files["fuzz/__init__.py"] = b"import os\n"
    for method in ("deflate", "stored", "zstd"):
        wheels[method] = make_wheel(root / f"w-{method}", WHL, files, method=method)
    wheels["zip64"] = make_wheel(root / "w-zip64", WHL, files, zip64=True)
    return {
        "zip": [{"path": str(p), "hot": _hot_zip(p.read_bytes())} for p in wheels.values()],
        "elf": [{"path": str(p), "hot": _hot_elf(p.read_bytes())} for p in elfs.values()],
    }


# ---------------------------------------------------------------------------------------------
# The child: hypothesis drives mutations and checks the property.

INTERESTING = [
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\xff\xff",
    struct.pack("<I", 1 << 31),
    struct.pack(">I", 1 << 31),
    struct.pack("<I", 0x7FFFFFFF),
    struct.pack("<Q", 1 << 63),
    struct.pack(">Q", 1 << 63),
    struct.pack("<Q", (1 << 64) - 1),
    struct.pack("<Q", 1 << 40),
    struct.pack("<I", 0xFFFFFFF0),
    struct.pack("<H", 0xFFFF),
    struct.pack("<I", 1),
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"PK\x06\x06",
    b"\x7fELF",
]


KINDS = ("flip", "set", "rand", "trunc", "dup", "del")


def mutations(n_bases: int) -> Any:
    """A strategy of (base index, [ops]); each op is (kind, a, b, c), plain integers that
    :func:`apply` maps onto the base. Flat integer draws keep hypothesis cheap (a nested
    one_of/sampled_from strategy cost ~10 ms per example) and still shrink towards small ops."""
    from hypothesis import strategies as st

    word = st.integers(0, (1 << 32) - 1)
    op = st.tuples(st.integers(0, len(KINDS) - 1), word, word, word)
    return st.tuples(st.integers(0, n_bases - 1), st.lists(op, min_size=1, max_size=4))


def _position(base: dict[str, Any], a: int, size: int) -> int:
    """3 times in 4 near a hot offset (within 64 bytes after it), else anywhere."""
    hot = base["hot"]
    if a % 4 and hot:
        return min(hot[(a >> 2) % len(hot)] + ((a >> 24) & 63), size - 1)
    return (a >> 2) % size


def apply(base: dict[str, Any], ops: list[tuple[int, int, int, int]]) -> bytes:
    b = bytearray(base["data"])
    for kind_i, x, y, z in ops:
        if not b:
            break
        kind = KINDS[kind_i]
        pos = _position(base, x, len(b))
        if kind == "flip":
            b[pos] ^= 1 << (y & 7)
        elif kind == "set":
            val = INTERESTING[y % len(INTERESTING)]
            b[pos : pos + len(val)] = val
        elif kind == "rand":
            val = y.to_bytes(4, "little")[: 1 + z % 4]
            b[pos : pos + len(val)] = val
        elif kind == "trunc":
            del b[pos:]
        elif kind == "dup":
            chunk = b[pos : pos + 1 + y % 512]
            at = _position(base, z, len(b))
            b[at:at] = chunk
        elif kind == "del":
            del b[pos : pos + 1 + y % 512]
    return bytes(b)


def check_facts(facts: Any, archive_len: int) -> None:
    """The property every scan result must have, whatever the input."""
    from wheelscan import facts as F

    assert isinstance(facts, F.WheelFacts), type(facts)
    assert facts.error is None or (isinstance(facts.error, str) and facts.error.strip() != "")
    for err in facts.errors:
        assert isinstance(err, F.MemberError)
        assert isinstance(err.member, str)
        assert isinstance(err.message, str)
        assert err.message.strip() != "", err
    json.dumps(facts.to_dict())
    # every ELF is a judged member: one of zipfile's, or a local header only a streaming
    # reader installs (the archive then carries a confusion anomaly)
    assert len(facts.elfs) <= len(facts.members)
    if len(facts.members) > max(facts.member_count, 0):
        assert any(a.startswith("confusion: ") for a in facts.anomalies), facts.anomalies
    declared = {m.member: m.size for m in facts.members}
    for e in facts.elfs:
        assert isinstance(e, F.ElfFacts)
        # Facts cannot hold more entries than the member's bytes can: a Dyn entry is at least
        # 8 bytes, Verneed/Vernaux 16, Verdef 20, a symbol 16. A deflate stream expands at most
        # ~1032:1, so a lying declared size is bounded by the archive too.
        size = min(declared.get(e.member, archive_len * 1100), archive_len * 1100)
        assert e.elf_class in (32, 64)
        assert e.endian in ("little", "big")
        assert e.stack in ("none", "noexec", "exec")
        assert len(e.needed) + len(e.rpath) + len(e.runpath) <= size // 8, e.member
        assert len(e.version_needs) <= size // 16
        assert sum(len(n.versions) for n in e.version_needs) <= size // 16
        assert len(e.version_defs) <= size // 20
        if e.symbol_count is not None:
            assert 0 <= e.symbol_count <= size // 16, e.symbol_count
        total = 0
        for g in e.imports:
            cap = F.IMPORT_NAME_CAP if g.version is not None else F.UNVERSIONED_NAME_CAP
            assert len(g.names) <= cap, (g.library, g.version, len(g.names))
            assert g.count >= len(g.names)
            assert 0 <= g.weak_count <= g.count
            assert g.names == sorted(g.names)
            total += g.count
        assert e.export_count >= 0
        assert total + e.export_count <= size // 16, (total, e.export_count, size)
        assert len(e.runtime_exports) <= F.RUNTIME_EXPORT_CAP
        assert e.runtime_export_count >= len(e.runtime_exports)
        for s in [*e.needed, *e.rpath, *e.runpath, *e.version_defs, e.soname or "",
                  e.interpreter or ""]:  # fmt: skip
            assert isinstance(s, str)
            assert len(s) <= size


def check_views(archive: bytes, facts: Any, path: Path) -> int:
    """For an archive zipfile opens: wheelscan's member names and bytes are zipfile's, or the
    wheel is flagged (a zip-anomaly or zip-confusion, or an archive error). Returns 1 when
    zipfile opened it (the input was compared), else 0."""
    import zipfile
    import zlib as _zlib

    from wheelscan._native import zipread
    from wheelscan.read.members import may_be_binary

    try:
        zf = zipfile.ZipFile(io.BytesIO(archive))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError,
            NotImplementedError, UnicodeDecodeError, struct.error):  # fmt: skip
        return 0  # zipfile refuses it: pip installs nothing
    if facts.anomalies or facts.error is not None:
        return 1  # flagged: the property holds whatever wheelscan read
    arc = zipread.Archive(path)
    try:
        arc.read_directory()
        assert arc.names == [i.filename for i in infos], (arc.names, zf.namelist())
        for n, info in enumerate(infos):
            try:
                want = zf.read(info)
            except (zipfile.BadZipFile, NotImplementedError, _zlib.error, EOFError, OSError,
                    ValueError, RuntimeError, UnicodeDecodeError):  # fmt: skip
                continue  # zipfile cannot extract it: pip fails
            try:
                got = arc.read_member(n, 64 << 20)
            except Exception:  # loud, so not silent: the scan names it if it is judged
                loud = {m.member for m in facts.errors}
                judged = may_be_binary(info.filename, info.file_size)
                assert not judged or info.filename in loud, info.filename
                continue
            assert got == want, f"{info.filename}: wheelscan reads other bytes than zipfile"
    finally:
        arc.close()
    return 2


def child(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", choices=["zip", "elf", "views"], required=True)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args(argv)

    from hypothesis import given, seed, settings

    import wheelscan
    from wheelscan.limits import Limits

    register_profiles()
    profile = profile_name()
    settings.load_profile(profile)
    if args.target == "views" and profile == "ci":
        settings.load_profile("ci-views")
    plan = json.loads(Path(args.plan).read_text())["zip" if args.target == "views" else
                                                    args.target]  # fmt: skip
    bases = []
    for b in plan:
        data = Path(b["path"]).read_bytes()
        bases.append({"data": data, "size": len(data), "hot": b["hot"]})
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    current = work / WHL  # the input being scanned: what a crash leaves behind
    limits = Limits(max_wheel_inflate=64 << 20)
    # the native reader reads a path whole or, over read_whole_max, with pread: fuzz both
    pread_limits = dataclasses.replace(limits, read_whole_max=0)
    counter = {"n": 0, "errors": 0, "compared": 0, "unflagged": 0}

    def prop(example: tuple[int, list[tuple[int, int, int, int]]], method_i: int,
             source: str) -> None:  # fmt: skip
        i, ops = example
        data = apply(bases[i], ops)
        if args.target == "elf":
            method = ("deflate", "stored", "zstd")[method_i]
            members = [ZipMember("fuzz/_m.so", data, method), ZipMember("fuzz/__init__.py", b"")]
            write_zip(current, members)
        else:
            current.write_bytes(data)
        archive = current.read_bytes()
        # CPU time, not wall: the suite shares 2 cores with others; a hang still burns CPU (and
        # a blocked one trips the parent's timeout).
        t0 = time.process_time()
        if source == "fileobj":
            facts = wheelscan.scan_wheel(io.BytesIO(archive), engine=args.engine,
                                         filename=WHL, limits=limits)  # fmt: skip
        else:
            facts = wheelscan.scan_wheel(current, engine=args.engine,
                                         limits=pread_limits if source == "pread" else limits)
        took = time.process_time() - t0
        assert took < EXAMPLE_SECONDS, f"scan took {took:.1f} s of CPU"
        check_facts(facts, len(archive))
        if args.target == "views":
            seen = check_views(archive, facts, current)
            counter["compared"] += seen > 0
            counter["unflagged"] += seen == 2
        counter["n"] += 1
        counter["errors"] += bool(facts.error or facts.errors)

    from hypothesis import strategies as st

    sources = st.sampled_from(["path", "pread", "fileobj"])
    test = given(mutations(len(bases)), st.integers(0, 2), sources)(prop)
    if profile != "ci" and not settings().derandomize:
        s = int(os.environ.get("WHEELSCAN_FUZZ_SEED") or random.SystemRandom().getrandbits(32))
        print(f"fuzz seed: {s} (replay with WHEELSCAN_FUZZ_SEED={s})", flush=True)
        test = seed(s)(test)
    # Warm up (lazy imports of the engine and lief) outside the timed examples.
    wheelscan.scan_wheel(Path(json.loads(Path(args.plan).read_text())["zip"][0]["path"]),
                         engine=args.engine)  # fmt: skip
    t0 = time.perf_counter()
    test()
    dt = time.perf_counter() - t0
    cpu = os.times()
    summary = {"examples": counter["n"], "with_errors": counter["errors"],
               "compared": counter["compared"], "unflagged": counter["unflagged"],
               "seconds": round(dt, 2), "cpu_seconds": round(cpu.user + cpu.system, 2),
               "profile": profile}  # fmt: skip
    print("FUZZ-SUMMARY " + json.dumps(summary), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# The pytest side: one child per (parser, engine).


@pytest.fixture(scope="module")
def plan() -> Iterator[Path]:
    with private_tmp("fuzz") as root:
        p = root / "plan.json"
        p.write_text(json.dumps(build_plan(root)))
        yield p


@dataclass
class Child:
    target: str
    engine: str
    proc: subprocess.Popen[bytes]
    work: Path
    out: Path
    err: Path
    timeout: float
    started: float


def start_child(target: str, engine: str, plan: Path) -> Child:
    shm = Path("/dev/shm")
    # The input in flight is rewritten for every example: keep it in memory where possible.
    work = Path(tempfile.mkdtemp(prefix="wheelscan-fuzz-", dir=shm if shm.is_dir() else None))
    timeout = 1800 if profile_name() == "expensive" else 300
    cmd = [sys.executable, __file__, "--target", target, "--engine", engine,
           "--plan", str(plan), "--work", str(work)]  # fmt: skip
    out, err = plan.parent / f"{target}-{engine}.out", plan.parent / f"{target}-{engine}.err"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe)
    return Child(target, engine, proc, work, out, err, timeout, time.monotonic())


def finish_child(c: Child, plan: Path) -> None:
    left = c.timeout - (time.monotonic() - c.started)
    try:
        rc: int | None = c.proc.wait(timeout=max(left, 1))
    except subprocess.TimeoutExpired:
        c.proc.kill()
        c.proc.wait()
        rc = None
    out = c.out.read_text(errors="replace")
    err = c.err.read_text(errors="replace")
    saved = plan.parent / f"last-input-{c.target}-{c.engine}.whl"
    if (c.work / WHL).exists():
        shutil.copy(c.work / WHL, saved)
    shutil.rmtree(c.work, ignore_errors=True)
    replay = (f"replay: python -c \"import wheelscan; print(wheelscan.scan_wheel('{saved}', "
              f"engine='{c.engine}'))\"")  # fmt: skip
    if rc is None:
        pytest.fail(f"fuzz run hung (> {c.timeout} s); the input in flight: {saved}\n{replay}\n"
                    f"{out[-3000:]}")  # fmt: skip
    if rc < 0:
        pytest.fail(f"engine {c.engine} crashed (signal {-rc}) on {saved}\n{replay}\n"
                    f"{out[-3000:]}\n{err[-3000:]}")  # fmt: skip
    assert rc == 0, f"property failed (rc={rc}); last input {saved}\n{out[-6000:]}\n{err[-6000:]}"
    assert "Exception ignored" not in err, err[-3000:]
    line = next(ln for ln in out.splitlines() if ln.startswith("FUZZ-SUMMARY "))
    summary = json.loads(line.split(" ", 1)[1])
    print(f"fuzz {c.target}/{c.engine}: {summary}")
    minimum = MIN_EXAMPLES.get(summary["profile"], 0)
    if c.target == "views" and summary["profile"] == "ci":
        minimum = 3000
        # most inputs must be ones zipfile opens, or the comparison is testing nothing
        assert summary["compared"] >= summary["examples"] // 3, summary
        assert summary["unflagged"] >= summary["examples"] // 20, summary
    assert summary["examples"] >= minimum, summary
    if c.target == "zip":
        # Mutated archives must reach error paths, or the fuzzer is testing nothing.
        assert summary["with_errors"] >= summary["examples"] // 20, summary


@pytest.fixture(scope="module")
def children(plan: Path, request: pytest.FixtureRequest) -> Iterator[dict[tuple[str, str], Child]]:
    """Start every selected fuzz run at once: the 2 cores run them in parallel, and each test
    then waits for its own."""
    wanted = []
    for item in request.session.items:
        if getattr(item, "originalname", "") == "test_fuzz" and not item.get_closest_marker("skip"):
            params = item.callspec.params  # type: ignore[attr-defined]
            wanted.append((params["target"], params["engine"]))
    kids = {key: start_child(*key, plan) for key in dict.fromkeys(wanted)}
    yield kids
    for c in kids.values():
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


# Failures found by this fuzzer that the engine's owner has not fixed yet: (target, engine).
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def _params() -> list[Any]:
    out = []
    for target in ("zip", "elf", "views"):
        for ep in engine_params():
            if target == "views" and ep.values[0] != "native":
                continue  # the lief engine is zipfile's own view
            marks = list(ep.marks)
            bug = KNOWN_BUGS.get((target, ep.values[0]))
            if bug:
                marks.append(pytest.mark.xfail(strict=True, reason=bug))
            out.append(pytest.param(target, ep.values[0], marks=marks,
                                    id=f"{target}-{ep.values[0]}"))  # fmt: skip
    return out


@pytest.mark.parametrize(("target", "engine"), _params())
def test_fuzz(target: str, engine: str, plan: Path, children: dict[tuple[str, str], Child]) -> None:
    c = children.get((target, engine)) or start_child(target, engine, plan)
    finish_child(c, plan)


if __name__ == "__main__":
    sys.exit(child(sys.argv[1:]))
