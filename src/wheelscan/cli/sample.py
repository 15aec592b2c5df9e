"""A small sample mirror made from real binaries already on this machine, for ``wheelscan demo``.

No compiler and no network: the sample re-packs ELF files that an installed Python already has
(the extension modules of installed binary distributions such as zstandard or lief, wheelscan's
own compiled modules, the interpreter's ``lib-dynload`` modules) into wheels. Some keep the tags
their distribution was published with; some are deliberately mislabelled (an old manylinux
claim for binaries built on a newer glibc, an unbundled external library), so the demo report
shows real findings of every status.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SampleWheel", "make_sample_mirror"]

# Installed distributions whose compiled modules make good sample binaries (first found wins).
_DISTRIBUTIONS = ("zstandard", "isal", "lief", "zlib-ng")


@dataclass(frozen=True)
class SampleWheel:
    path: Path
    why: str  # what the wheel is meant to show


def _machine() -> str:
    m = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m.lower(), m)


def _write_wheel(out: Path, filename: str, files: dict[str, bytes], tags: list[str]) -> Path:
    name, version = filename.split("-")[:2]
    di = f"{name}-{version}.dist-info"
    wheel = "Wheel-Version: 1.0\nGenerator: wheelscan-demo\nRoot-Is-Purelib: false\n"
    wheel += "".join(f"Tag: {t}\n" for t in tags)
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    path = out / filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for member, data in files.items():
            z.writestr(member, data)
        z.writestr(f"{di}/METADATA", meta)
        z.writestr(f"{di}/WHEEL", wheel)
        z.writestr(f"{di}/RECORD", "")
    return path


def _dist_binaries(dist: importlib.metadata.Distribution) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for f in dist.files or ():
        if ".so" in f.name:
            p = Path(str(f.locate()))
            if p.is_file() and p.read_bytes()[:4] == b"\x7fELF":
                found[str(f)] = p.read_bytes()
    return found


def _platform_tags(dist: importlib.metadata.Distribution) -> list[str]:
    text = dist.read_text("WHEEL") or ""
    return [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Tag:")]


def make_sample_mirror(out: Path) -> list[SampleWheel]:
    """Write the sample wheels into ``out`` and say what each is meant to show."""
    out.mkdir(parents=True, exist_ok=True)
    arch = _machine()
    wheels: list[SampleWheel] = []
    for dname in _DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(dname)
        except importlib.metadata.PackageNotFoundError:
            continue
        bins = _dist_binaries(dist)
        tags = _platform_tags(dist)
        if not bins or not tags or "linux" not in tags[0]:
            continue
        norm = dname.replace("-", "_")
        version = dist.version
        py, abi = tags[0].split("-")[:2]
        plats = ".".join(dict.fromkeys(t.split("-")[2] for t in tags))
        fn = f"{norm}-{version}-{py}-{abi}-{plats}.whl"
        wheels.append(SampleWheel(_write_wheel(out, fn, bins, tags),
                                  f"{dname}'s binaries under the tags it was published with"))
        lie = f"manylinux1_{arch}"
        fn = f"{norm}-{version}+relabelled-{py}-{abi}-{lie}.whl"
        wheels.append(SampleWheel(_write_wheel(out, fn, bins, [f"{py}-{abi}-{lie}"]),
                                  f"the same binaries claiming {lie} (glibc 2.5)"))
    native = Path(__file__).parent.parent / "_native"
    mods = {f"wheelscan/_native/{p.name}": p.read_bytes() for p in sorted(native.glob("*.so"))}
    if mods:
        tag = f"manylinux_2_17_{arch}"
        fn = f"wheelscan_native-0.1-cp3-none-{tag}.whl"
        wheels.append(SampleWheel(_write_wheel(out, fn, mods, [f"cp3-none-{tag}"]),
                                  "wheelscan's own modules, built on this machine"))
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or "/nonexistent")
    ssl = sorted(dynload.glob("_ssl*.so"))
    if ssl:
        tag = f"manylinux2014_{arch}"
        fn = f"sample_ssl-1.0-cp3-none-{tag}.whl"
        files = {f"sample_ssl/{ssl[0].name}": ssl[0].read_bytes()}
        wheels.append(SampleWheel(_write_wheel(out, fn, files, [f"cp3-none-{tag}"]),
                                  "links the system OpenSSL without bundling it"))
    fn = f"sample_nobin-1.0-py3-none-manylinux2014_{arch}.whl"
    files = {"sample_nobin/__init__.py": b"VALUE = 1\n"}
    wheels.append(SampleWheel(_write_wheel(out, fn, files, [f"py3-none-manylinux2014_{arch}"]),
                              "a platform tag but no binary inside"))
    fn = "sample_pure-1.0-py3-none-any.whl"
    wheels.append(SampleWheel(_write_wheel(out, fn, files, ["py3-none-any"]),
                              "a pure-Python wheel: nothing to judge"))
    return wheels
