"""Wheels and mirrors for the scan tests and the synthetic mirror benchmark.

Every binary is compiled by gcc against hermetic stubs (tests/helpers/builders.py), so its glibc
needs are known by construction: ``old.so`` needs only GLIBC_2.2.5 (honest under manylinux1),
while ``new.so`` needs ``clock_gettime@GLIBC_2.17`` (honest only from manylinux2014 on). """

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from helpers.builders import Import, build_elf, build_stub, make_wheel

#: platform tags under which new.so (GLIBC_2.17) is honest / a lie
HONEST_NEW = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
LYING_NEW = ("manylinux1_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64")


@dataclass
class Elfs:
    old: Path  # needs GLIBC_2.2.5 only
    new: Path  # needs GLIBC_2.17
    bundled: Path  # a "vendored" library, as in <pkg>.libs/


def build_elfs(out: Path) -> Elfs:
    libc = build_stub(
        out, "libc.so.6", {"GLIBC_2.2.5": ["puts", "malloc"], "GLIBC_2.17": ["clock_gettime"]}
    )
    old = build_elf(out, "old.so", imports=[Import("puts", libc)])
    new = build_elf(out, "new.so", imports=[Import("puts", libc), Import("clock_gettime", libc)])
    # big enough that inflating it dominates, as a vendored library does in real wheels
    fn = "int vendored_{0}(int x) {{ return x * {0} + {1}; }}\n"
    body = "".join(fn.format(i, i % 7) for i in range(1000))
    bundled = build_elf(
        out, "libvendored.so", source=body, imports=[Import("malloc", libc)],
        soname="libvendored-0a1b2c3d.so.1",
    )  # fmt: skip
    return Elfs(old, new, bundled)


def wheel(
    out_dir: Path,
    elfs: Elfs,
    project: str,
    version: str,
    py: str,
    plat: str,
    *,
    needs_new: bool,
    bundle: bool = False,
    salt: str = "",
) -> Path:
    """A wheel ``project-version-py-py-plat.whl`` with one extension (and a .libs/ library)."""
    files: dict[str, bytes | Path] = {
        f"{project}/__init__.py": f"# {project} {version} {salt}\n".encode(),
        f"{project}/_ext.cpython.so": elfs.new if needs_new else elfs.old,
    }
    if bundle:
        files[f"{project}.libs/libvendored-0a1b2c3d.so.1"] = elfs.bundled
    fn = f"{project}-{version}-{py}-{py}-{plat}.whl"
    return make_wheel(out_dir, fn, files)


def blake2b_256(path: Path) -> str:
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_bandersnatch(
    root: Path,
    wheels: list[Path],
    *,
    upload_times: dict[str, str] | None = None,
    yanked: frozenset[str] = frozenset(),
    extra_files: dict[str, bytes] | None = None,
    index: bool = True,
) -> None:
    """Move ``wheels`` into ``root/web/packages/<h[:2]>/<h[2:4]>/<h[4:]>/`` (h = blake2b-256)
    and write ``web/simple/<project>/index.v1_json`` (PEP 691 + PEP 700) as bandersnatch does.
    ``extra_files`` (name -> bytes) are other distributions (sdists) listed beside them."""
    upload_times = upload_times or {}
    by_project: dict[str, list[dict[str, object]]] = {}
    items = [(w.name, w) for w in wheels]
    for name, data in (extra_files or {}).items():
        tmp = root / "tmp-extra" / name
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        items.append((name, tmp))
    for name, src in items:
        h = blake2b_256(src)
        dest = root / "web" / "packages" / h[:2] / h[2:4] / h[4:] / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        project = name.split("-", 1)[0].lower().replace("_", "-")
        sha = hashlib.sha256(dest.read_bytes()).hexdigest()
        by_project.setdefault(project, []).append(
            {
                "filename": name,
                "url": f"../../packages/{h[:2]}/{h[2:4]}/{h[4:]}/{name}",
                "hashes": {"sha256": sha},
                "requires-python": ">=3.8",
                "size": dest.stat().st_size,
                "upload-time": upload_times.get(name, "2024-01-15T10:00:00.000000Z"),
                "yanked": "broken build" if name in yanked else False,
            }
        )
    if not index:
        return
    for project, files in by_project.items():
        d = root / "web" / "simple" / project
        d.mkdir(parents=True, exist_ok=True)
        doc = {"meta": {"api-version": "1.1"}, "name": project, "files": files, "versions": []}
        (d / "index.v1_json").write_text(json.dumps(doc))


_SHARED: dict[str, Elfs] = {}


def shared_elfs(tmp_root: Path) -> Elfs:
    """Build the ELF set once per test process (every scan test file shares it)."""
    if "elfs" not in _SHARED:
        _SHARED["elfs"] = build_elfs(tmp_root)
    return _SHARED["elfs"]


def engine_for_tests() -> str:
    """WHEELSCAN_ENGINE if set, else the native engine when built, else the lief reference.

    The scan tests exercise scheduling and storage; with the native engine a worker process
    starts in a fraction of the time lief's import takes."""
    if "WHEELSCAN_ENGINE" in os.environ:
        return os.environ["WHEELSCAN_ENGINE"]
    try:
        import wheelscan.read.native  # noqa: F401
    except ImportError:
        return "lief"
    return "native"


def without_byte_accounting(facts: dict[str, object]) -> dict[str, object]:
    """Facts minus the per-member inflated/read counts, which depend on member-cache hits
    (a member whose facts are reused is not inflated again) and so on scheduling order."""
    out = dict(facts)
    members = out.get("members")
    if isinstance(members, list):
        out["members"] = [
            {k: v for k, v in m.items() if k not in ("inflated", "read")} for m in members
        ]
    return out


class PidWorker:
    """A WheelWorker that scans nothing: each wheel's outcome names the worker process that
    got it (in ``error``), after a pause long enough for every thread to be handed a wheel."""

    def __init__(self, cfg: object) -> None:
        pass

    def scan(self, location: str, filename: str) -> object:
        import time

        from wheelscan.mirror.store import Outcome

        time.sleep(0.2)
        return Outcome(location, filename, "ok", error=str(os.getpid()))
