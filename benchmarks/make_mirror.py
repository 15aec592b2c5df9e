"""Build a synthetic bandersnatch mirror of real wheels, shaped like real releases.

    python benchmarks/make_mirror.py OUT [--wheels 5000] [--seed 1]

Every binary is compiled by gcc (cross gcc for aarch64 when present) against hermetic stub
libraries (tests/helpers/builders.py), so what each one needs is known by construction:

- a *release* (project + version) ships one extension per Python version (cp38 ... cp312) and
  the same vendored library in ``<project>.libs/`` in every one of them — the byte-identical
  members the member cache exists for;
- extensions differ from release to release (a per-release trailer after the ELF image, so the
  compressed bytes differ while the ELF content the scan reads is the same shape);
- tags vary (manylinux1/2010/2014/_2_17/_2_28, x86_64 and aarch64, some abi3); about one
  release in eight lies: it claims manylinux1/2010 while needing GLIBC_2.17, or claims x86_64
  while shipping aarch64 code;
- sdists sit beside the wheels, as in a real mirror (they are counted, not scanned).

The layout is bandersnatch's: ``web/packages/<h[:2]>/<h[2:4]>/<h[4:]>/<file>`` (h = blake2b-256
of the file) and ``web/simple/<project>/index.v1_json`` (PEP 691 + PEP 700 size/upload-time).
``OUT/expected.json`` maps each wheel to the status its construction implies.

Past ``--distinct`` wheels (default 20,000) the rest are hard links: each further release
(its own project, version, upload time and tags) links, under its own file name, a built
wheel of the same tags, architecture, glibc need and bundling, in that wheel's bandersnatch
directory. A million-wheel mirror then takes minutes and no more disk than the distinct part;
its wheels differ in name and index entry, not in bytes (the member cache sees the same
members again, as it does across real releases that vendor one library).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.builders import COMPILERS, Import, build_elf, build_stub, have, make_wheel
from helpers.mirror import to_bandersnatch

PYS = ("cp38", "cp39", "cp310", "cp311", "cp312")
HONEST = {  # tag -> whether an extension needing GLIBC_2.17 honours it
    "manylinux2014": True,
    "manylinux_2_17": True,
    "manylinux_2_28": True,
    "manylinux1": False,
    "manylinux2010": False,
}


def build_binaries(out: Path, arches: list[str]) -> dict[str, dict[str, bytes]]:
    """arch -> {"old": ext needing GLIBC_2.2.5 (2.17 on aarch64), "new": GLIBC_2.17, "lib"}."""
    bins: dict[str, dict[str, bytes]] = {}
    for arch in arches:
        cc = COMPILERS[arch]
        d = out / arch
        base = "GLIBC_2.17" if arch == "aarch64" else "GLIBC_2.2.5"
        vers = {base: ["puts", "malloc", "memcpy"]}
        if arch != "aarch64":
            vers["GLIBC_2.17"] = ["clock_gettime"]
        else:
            vers[base].append("clock_gettime")
        libc = build_stub(d, "libc.so.6", vers, cc=cc)
        src = "".join(f"int f{i}(int x) {{ return x * {i} + {i % 5}; }}\n" for i in range(400))
        old = build_elf(d, "old.so", src, cc=cc, imports=[Import("puts", libc)])
        new = build_elf(d, "new.so", src, cc=cc,
                        imports=[Import("puts", libc), Import("clock_gettime", libc)])  # fmt: skip
        lib_src = "".join(f"int v{i}(int x) {{ return x ^ {i}; }}\n" for i in range(2500))
        lib = build_elf(d, "libvendored.so", lib_src, cc=cc, soname="libvendored-5e1f.so.1",
                        imports=[Import("malloc", libc), Import("memcpy", libc)])  # fmt: skip
        bins[arch] = {"old": old.read_bytes(), "new": new.read_bytes(), "lib": lib.read_bytes()}
    return bins


def plan(n_wheels: int, arches: list[str], rng: random.Random) -> list[dict[str, object]]:
    releases: list[dict[str, object]] = []
    total = 0
    i = 0
    while total < n_wheels:
        project = f"proj{i // 3:05d}"
        version = f"{1 + i % 3}.{rng.randrange(10)}.0"
        arch = rng.choice(arches)
        tag_family = rng.choice(list(HONEST))
        pys = PYS[rng.randrange(3) :][: rng.randint(3, 5)]
        abi3 = rng.random() < 0.1
        lie = rng.random() < 0.125
        if lie and arch == "aarch64":
            kind = "wrong-arch"  # aarch64 code in a wheel tagged x86_64
        elif lie:
            kind = "glibc"
            tag_family = rng.choice(["manylinux1", "manylinux2010"])
        else:
            kind = "honest"
        if arch == "aarch64" and tag_family in ("manylinux1", "manylinux2010"):
            tag_family = "manylinux2014"  # no such aarch64 policies
        needs_new = kind == "glibc" or (kind == "honest" and HONEST[tag_family])
        plat_arch = "x86_64" if kind == "wrong-arch" else arch
        if tag_family.startswith("manylinux_"):
            plat = f"{tag_family}_{plat_arch}"
        else:
            plat = f"{tag_family}_{plat_arch}"
        py_list = ["cp38"] if abi3 else list(pys)
        releases.append({
            "project": project, "version": version, "arch": arch, "plat": plat,
            "pys": py_list, "abi3": abi3, "needs_new": needs_new,
            "expected": "ok" if kind == "honest" else "mislabelled",
            "salt": rng.getrandbits(64), "bundle": rng.random() < 0.8,
        })  # fmt: skip
        total += len(py_list)
        i += 1
    return releases


_BINS: dict[str, dict[str, bytes]] = {}


def _init(bins: dict[str, dict[str, bytes]]) -> None:
    _BINS.update(bins)


def write_release(args: tuple[dict[str, object], str]) -> list[tuple[str, str]]:
    rel, out = args
    b = _BINS[str(rel["arch"])]
    salt = int(rel["salt"]).to_bytes(8, "little")  # type: ignore[call-overload]
    ext = b["new" if rel["needs_new"] else "old"] + b"release-trailer" + salt
    lib = b["lib"] + b"vendored-trailer" + salt  # same in every Python version of a release
    project = str(rel["project"])
    written = []
    for py in rel["pys"]:  # type: ignore[attr-defined]
        abi = "abi3" if rel["abi3"] else py
        files: dict[str, bytes | Path] = {
            f"{project}/__init__.py": b"from ._core import *\n",
            f"{project}/_core.{py}-linux.so": ext + py.encode(),
        }
        if rel["bundle"]:
            files[f"{project}.libs/libvendored-5e1f.so.1"] = lib
        fn = f"{project}-{rel['version']}-{py}-{abi}-{rel['plat']}.whl"
        w = make_wheel(Path(out), fn, files)
        written.append((w.name, str(rel["expected"])))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--wheels", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--distinct", type=int, default=20_000,
                    help="wheels built; the rest are hard links to them (default 20000)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rng = random.Random(args.seed)
    arches = ["x86_64"] + (["aarch64"] if have(COMPILERS["aarch64"]) else [])
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    staging = out / "staging"
    staging.mkdir(parents=True)
    bins = build_binaries(out / "build", arches)
    releases = plan(args.wheels, arches, rng)
    built, rest = _split(releases, args.distinct)
    # each further release repeats a built one's shape (tags, needs, bundling) under its own
    # name and version, so a built wheel of the same key always exists to link
    linked = []
    n_rest = sum(len(r["pys"]) for r in rest)  # type: ignore[arg-type]
    while n_rest > 0:
        shape = rng.choice(built)
        linked.append({**shape, "minor": rng.randrange(10)})
        n_rest -= len(shape["pys"])  # type: ignore[arg-type]
    expected: dict[str, str] = {}
    with Pool(args.jobs, initializer=_init, initargs=(bins,)) as pool:
        for written in pool.imap_unordered(
            write_release, [(r, str(staging)) for r in built], chunksize=16
        ):
            expected.update(written)
    wheels = sorted(staging.iterdir())
    base = 1_600_000_000
    uploads = {
        w.name: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + 3600 * i))
        for i, w in enumerate(wheels)
    }
    sdists = {f"{r['project']}-{r['version']}.tar.gz": b"sdist" for r in built[::2]}
    to_bandersnatch(out, wheels, upload_times=uploads, extra_files=sdists)
    shutil.rmtree(staging)
    shutil.rmtree(out / "tmp-extra", ignore_errors=True)
    shutil.rmtree(out / "build")
    expected.update(_link_releases(out, built, linked, base + 3600 * len(wheels)))
    (out / "expected.json").write_text(json.dumps(expected, indent=0, sort_keys=True))
    size = sum(p.stat().st_size for p in _distinct_files(out / "web" / "packages"))
    lies = sum(1 for s in expected.values() if s == "mislabelled")
    print(
        f"{out}: {len(expected)} wheels ({lies} mislabelled, {len(expected) - len(wheels)} "
        f"hard links) in {len(releases)} releases, {len(sdists)} sdists, {size / 1e6:.0f} MB "
        f"on disk, arches {arches}, {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )
    return 0


def _split(releases: list[dict[str, object]], distinct: int) -> tuple[
    list[dict[str, object]], list[dict[str, object]]
]:
    """The releases to build (their wheels reach ``distinct``) and the rest, to link."""
    n = 0
    for i, r in enumerate(releases):
        if n >= distinct:
            return releases[:i], releases[i:]
        n += len(r["pys"])  # type: ignore[arg-type]
    return releases, []


def _key(rel: dict[str, object], py: str) -> tuple[object, ...]:
    """What a linked wheel must share with its source: every tag and what its bytes need."""
    return (rel["arch"], rel["plat"], rel["abi3"], rel["needs_new"], rel["bundle"], py)


def _wheel_name(rel: dict[str, object], py: str) -> str:
    abi = "abi3" if rel["abi3"] else py
    return f"{rel['project']}-{rel['version']}-{py}-{abi}-{rel['plat']}.whl"


def _distinct_files(packages: Path) -> list[Path]:
    seen: set[int] = set()
    out = []
    for p in packages.rglob("*.whl"):
        ino = p.stat().st_ino
        if ino not in seen:
            seen.add(ino)
            out.append(p)
    return out


def _link_releases(out: Path, built: list[dict[str, object]], linked: list[dict[str, object]],
                   first_upload: int) -> dict[str, str]:
    """Hard-link each wheel of ``linked`` to a built wheel of the same :func:`_key`, beside it
    in its bandersnatch directory, with an index page per project; their expected status."""
    if not linked:
        return {}
    sources = {_key(r, py): _wheel_name(r, py)
               for r in built for py in r["pys"]}  # type: ignore[attr-defined]
    index: dict[str, dict[str, object]] = {}
    for page in (out / "web" / "simple").glob("*/index.v1_json"):
        for f in json.loads(page.read_text())["files"]:
            index[str(f["filename"])] = f
    expected: dict[str, str] = {}
    pages: dict[str, list[dict[str, object]]] = {}
    n = 0
    for i, rel in enumerate(linked):
        # projects of their own, three releases each (distinct majors: distinct names)
        rel = {**rel, "project": f"link{i // 3:06d}", "version": f"{1 + i % 3}.{rel['minor']}.0"}
        for py in rel["pys"]:  # type: ignore[attr-defined]
            src_name = sources[_key(rel, py)]
            url = str(index[src_name]["url"])  # ../../packages/ab/cd/<rest>/<file>
            src = out / "web" / url.removeprefix("../../")
            name = _wheel_name(rel, py)
            os.link(src, src.parent / name)
            entry = {**index[src_name], "filename": name,
                     "url": url.rsplit("/", 1)[0] + "/" + name,
                     "upload-time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                  time.gmtime(first_upload + 60 * n))}
            pages.setdefault(str(rel["project"]), []).append(entry)
            expected[name] = str(rel["expected"])
            n += 1
    for project, files in pages.items():
        d = out / "web" / "simple" / project
        d.mkdir(parents=True, exist_ok=True)
        doc = {"meta": {"api-version": "1.1"}, "name": project, "files": files, "versions": []}
        (d / "index.v1_json").write_text(json.dumps(doc))
    return expected


if __name__ == "__main__":
    sys.exit(main())
