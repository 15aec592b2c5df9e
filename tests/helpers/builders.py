"""Test-time builders: real ELF files compiled by gcc/g++ (cross compilers where present) and
real wheels written byte by byte (stored, deflate, Zstandard, ZIP64), so every fixture is made
fresh from source and nothing binary lives in git.

Symbol versions are made hermetic with *stub libraries*: a stub with any soname (``libc.so.6``,
``libstdc++.so.6``...) and a version script defining any version node (``GLIBC_2.40``), linked
with ``-nostdlib``. The consumer then carries exactly the DT_NEEDED and Verneed entries asked
for, on every architecture, whatever glibc the build machine has.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import subprocess
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import zstandard

# Cross compilers by wheel architecture name (Debian package names in scripts/install-test-deps.sh).
COMPILERS: dict[str, str] = {
    "x86_64": "gcc",
    "i686": "i686-linux-gnu-gcc",
    "aarch64": "aarch64-linux-gnu-gcc",
    "armv7l": "arm-linux-gnueabihf-gcc",
    "s390x": "s390x-linux-gnu-gcc",
}
MUSL_CC = "musl-gcc"


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def _run(cmd: Sequence[str], cwd: Path) -> None:
    r = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")


def build_stub(
    out_dir: Path,
    soname: str,
    versions: Mapping[str, Sequence[str]] | None = None,
    *,
    unversioned: Sequence[str] = (),
    cc: str = "gcc",
) -> Path:
    """A shared library named ``soname`` defining each symbol under the given version node.

    ``versions`` maps a version name (e.g. ``GLIBC_2.14``) to the function names it defines;
    ``unversioned`` symbols are exported without a version (no version script node).
    """
    versions = dict(versions or {})
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = soname.replace("+", "p").replace(".", "_")
    src = out_dir / f"stub_{stem}.c"
    syms = [s for names in versions.values() for s in names] + list(unversioned)
    src.write_text("".join(f"void {s}(void) {{}}\n" for s in syms) or "int __stub_dummy;\n")
    cmd = [cc, "-shared", "-fPIC", "-nostdlib", "-fno-builtin", f"-Wl,-soname,{soname}"]
    if versions:
        script = out_dir / f"stub_{stem}.map"
        nodes = []
        for ver, names in versions.items():
            body = " ".join(f"{n};" for n in names)
            nodes.append(f"{ver} {{ global: {body} }};" if body else f"{ver} {{ }};")
        script.write_text("\n".join(nodes) + "\n")
        cmd.append(f"-Wl,--version-script={script}")
    path = out_dir / "stubs" / stem / soname
    path.parent.mkdir(parents=True, exist_ok=True)
    _run([*cmd, "-o", str(path), str(src)], out_dir)
    return path


@dataclass
class Import:
    """A symbol the consumer calls, taken from ``stub`` (a path from :func:`build_stub`)."""

    symbol: str
    stub: Path
    weak: bool = False


def build_elf(
    out_dir: Path,
    name: str,
    source: str = "int wheelscan_fixture(void) { return 42; }\n",
    *,
    cc: str = "gcc",
    lang: str = "c",
    shared: bool = True,
    imports: Sequence[Import] = (),
    stubs: Sequence[Path] = (),
    nostdlib: bool | None = None,
    libs: Sequence[str] = (),
    soname: str | None = None,
    rpath: str | None = None,
    runpath: str | None = None,
    execstack: bool = False,
    strip: bool = False,
    flags: Sequence[str] = (),
) -> Path:
    """Compile ``source`` (plus calls to ``imports``) into a shared object or executable.

    With stubs or imports the link is ``-nostdlib`` against exactly those stubs (hermetic);
    otherwise the toolchain's own libc is linked (real versioned imports of the build host).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = ".cpp" if lang == "c++" else ".c"
    body = source
    decls = []
    calls = []
    linkage = 'extern "C" ' if lang == "c++" else ""
    for imp in imports:
        attr = " __attribute__((weak))" if imp.weak else ""
        decls.append(f"{linkage}void {imp.symbol}(void){attr};")
        calls.append(f"  if ({imp.symbol}) {imp.symbol}();" if imp.weak else f"  {imp.symbol}();")
    if imports:
        body += "\n" + "\n".join(decls) + f"\n{linkage}void wheelscan_calls(void) {{\n"
        body += "\n".join(calls) + "\n}\n"
    if not shared and "main(" not in body:
        body += "\nint main(void) { return 0; }\n"
    src = out_dir / f"{name}{ext}"
    src.write_text(body)
    out = out_dir / name
    compiler = cc.replace("gcc", "g++") if lang == "c++" and cc.endswith("gcc") else cc
    link_stubs = list(dict.fromkeys([*(i.stub for i in imports), *stubs]))
    if nostdlib is None:
        nostdlib = bool(link_stubs)
    cmd = [compiler, "-O1", "-fPIC", "-fno-builtin"]
    cmd += ["-shared"] if shared else ["-pie"]
    if nostdlib:
        cmd += ["-nostdlib"]
        if not shared:
            cmd += ["-Wl,-e,wheelscan_entry"]
            src.write_text(src.read_text() + "\nvoid wheelscan_entry(void) { for (;;) {} }\n")
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    if rpath is not None:
        cmd += [f"-Wl,-rpath,{rpath}", "-Wl,--disable-new-dtags"]
    if runpath is not None:
        cmd += [f"-Wl,-rpath,{runpath}", "-Wl,--enable-new-dtags"]
    cmd += ["-Wl,-z,execstack"] if execstack else ["-Wl,-z,noexecstack"]
    cmd += [*flags, "-o", str(out), str(src)]
    cmd += [str(p) for p in link_stubs]
    cmd += [f"-l{lib}" for lib in libs]
    _run(cmd, out_dir)
    if strip:
        strip_tool = cc[: -len("gcc")] + "strip" if cc.endswith("gcc") else "strip"
        _run([strip_tool if have(strip_tool) else "strip", "--strip-all", str(out)], out_dir)
    return out


def drop_section_headers(path: Path) -> None:
    """Zero e_shoff/e_shnum/e_shstrndx, as sstrip does: the loader never needs them."""
    data = bytearray(path.read_bytes())
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        struct.pack_into(end + "Q", data, 0x28, 0)
        struct.pack_into(end + "HH", data, 0x3C, 0, 0)
    else:
        struct.pack_into(end + "I", data, 0x20, 0)
        struct.pack_into(end + "HH", data, 0x30, 0, 0)
    path.write_bytes(bytes(data))


def drop_gnu_stack(path: Path) -> None:
    """Turn PT_GNU_STACK into PT_NULL (an object built by old toolchains has none)."""
    data = bytearray(path.read_bytes())
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(end + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x2A)
    for i in range(phnum):
        off = phoff + i * phentsize
        (p_type,) = struct.unpack_from(end + "I", data, off)
        if p_type == 0x6474E551:  # PT_GNU_STACK
            struct.pack_into(end + "I", data, off, 0)  # PT_NULL
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------------
# ZIP writing (APPNOTE 6.3.x), by hand so tests control every field, method and ZIP64 record.

METHODS = {"stored": 0, "deflate": 8, "zstd": 93, "zstd-checksum": 93}


@dataclass
class ZipMember:
    name: str | bytes  # bytes: written as they are (e.g. invalid UTF-8)
    data: bytes
    method: str = "deflate"
    flags: int = 0


def compress(data: bytes, method: str) -> bytes:
    """A member's data as ``write_zip`` stores it under ``method`` (see METHODS)."""
    if method == "stored":
        return data
    if method == "deflate":
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    if method == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if method == "zstd-checksum":  # the frame ends with a 4-byte checksum of the content
        return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)
    raise ValueError(method)


def deflate_3bit_block(data: bytes, *, complete: bool) -> bytes:
    """A raw deflate stream of one dynamic block giving each byte value of ``data`` and the
    end-of-block symbol a 3-bit literal/length code (no distance is used), written bit by bit.
    With fewer than 8 such symbols the code is incomplete unless ``complete`` adds unused
    literals: RFC 1951 coders build complete codes, and zlib refuses an incomplete literal/
    length code ("invalid literal/lengths set")."""
    syms = sorted(set(data) | {256})
    if len(syms) > 8:
        raise ValueError("at most 7 distinct bytes")
    if complete:
        unused = [s for s in range(256) if s not in syms]
        syms = sorted(syms + unused[: 8 - len(syms)])
    acc = nbits = 0
    out = bytearray()

    def put(value: int, n: int) -> None:  # deflate packs fields from the low bit
        nonlocal acc, nbits
        acc |= value << nbits
        nbits += n
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8

    def code(c: int, n: int) -> None:  # Huffman codes go most significant bit first
        put(int(f"{c:0{n}b}"[::-1], 2), n)

    put(1, 1)  # BFINAL
    put(2, 2)  # dynamic Huffman codes
    put(0, 5)  # HLIT: 257 literal/length lengths
    put(0, 5)  # HDIST: 1 distance length
    put(14, 4)  # HCLEN: 18 code length code lengths
    # the code length code: symbols 0, 1, 3 and 18 (a run of 11-138 zeros), 2 bits each
    clen = {18: 2, 0: 2, 3: 2, 1: 2}
    for s in (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1):
        put(clen.get(s, 0), 3)
    ccode = {0: 0, 1: 1, 3: 2, 18: 3}  # canonical order of those symbols
    lengths = [3 if s in syms else 0 for s in range(257)] + [1]  # then the one distance
    i = 0
    while i < len(lengths):
        run = 0
        while lengths[i + run] == 0 and run < 138 and i + run + 1 < len(lengths):
            run += 1
        if run >= 11:
            code(ccode[18], 2)
            put(run - 11, 7)
            i += run
        else:
            code(ccode[lengths[i]], 2)
            i += 1
    index = {s: k for k, s in enumerate(syms)}  # canonical: all 3 bits, in symbol order
    for s in [*data, 256]:
        code(index[s], 3)
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def write_zip(
    path: Path,
    members: Sequence[ZipMember],
    *,
    zip64: bool = False,
    comment: bytes = b"",
) -> Path:
    """Write a ZIP archive; ``zip64`` forces ZIP64 extra fields and the ZIP64 EOCD records."""
    out = bytearray()
    central = bytearray()
    for m in members:
        comp = compress(m.data, m.method)
        crc = zlib.crc32(m.data)
        name = m.name if isinstance(m.name, bytes) else m.name.encode()
        offset = len(out)
        method = METHODS[m.method]
        if zip64:
            extra = struct.pack("<HHQQ", 1, 16, len(m.data), len(comp))
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, m.flags, method, 0, 0x21,
                               crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra))
        else:
            extra = b""
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, m.flags, method, 0, 0x21,
                               crc, len(comp), len(m.data), len(name), 0)
        out += name + extra + comp
        if zip64:
            cextra = struct.pack("<HHQQQ", 1, 24, len(m.data), len(comp), offset)
            central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 45, m.flags,
                                   method, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name),
                                   len(cextra), 0, 0, 0, 0o100755 << 16, 0xFFFFFFFF)
            central += name + cextra
        else:
            central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, m.flags,
                                   method, 0, 0x21, crc, len(comp), len(m.data), len(name),
                                   0, 0, 0, 0, 0o100755 << 16, offset)
            central += name
    cd_offset = len(out)
    out += central
    n = len(members)
    if zip64:
        z64_offset = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n,
                           len(central), cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, z64_offset, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF,
                           0xFFFFFFFF, 0xFFFFFFFF, len(comment))
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_offset,
                           len(comment))
    out += comment
    path.write_bytes(bytes(out))
    return path


def wheel_metadata(
    name: str,
    version: str,
    tags: Sequence[str],
    *,
    root_is_purelib: bool = False,
) -> dict[str, bytes]:
    """The dist-info members of a wheel (METADATA, WHEEL; RECORD is added by make_wheel)."""
    di = f"{name}-{version}.dist-info"
    wheel = "Wheel-Version: 1.0\nGenerator: wheelscan-tests\n"
    wheel += f"Root-Is-Purelib: {'true' if root_is_purelib else 'false'}\n"
    wheel += "".join(f"Tag: {t}\n" for t in tags)
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    return {f"{di}/METADATA": meta.encode(), f"{di}/WHEEL": wheel.encode()}


def make_wheel(
    out_dir: Path,
    filename: str,
    files: Mapping[str, bytes | Path],
    *,
    method: str = "deflate",
    methods: Mapping[str, str] | None = None,
    wheel_tags: Sequence[str] | None = None,
    root_is_purelib: bool = False,
    record: bool = True,
    zip64: bool = False,
) -> Path:
    """Write a wheel named ``filename`` holding ``files`` (bytes, or paths to read).

    ``wheel_tags`` default to the tags of the filename; ``methods`` overrides per member.
    """
    stem = filename[: -len(".whl")]
    parts = stem.split("-")
    name, version = parts[0], parts[1]
    if wheel_tags is None:
        py, abi, plat = parts[-3:]
        wheel_tags = [f"{p}-{a}-{t}" for p in py.split(".") for a in abi.split(".")
                      for t in plat.split(".")]
    contents: dict[str, bytes] = {
        k: (v.read_bytes() if isinstance(v, Path) else v) for k, v in files.items()
    }
    contents.update(wheel_metadata(name, version, wheel_tags, root_is_purelib=root_is_purelib))
    if record:
        di = f"{name}-{version}.dist-info"
        lines = []
        for k, v in contents.items():
            digest = base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=").decode()
            lines.append(f"{k},sha256={digest},{len(v)}")
        lines.append(f"{di}/RECORD,,")
        contents[f"{di}/RECORD"] = ("\n".join(lines) + "\n").encode()
    methods = dict(methods or {})
    members = [ZipMember(k, v, methods.get(k, method)) for k, v in contents.items()]
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_zip(out_dir / filename, members, zip64=zip64)


def mark_version_weak(path: Path, version: str) -> None:
    """Set VER_FLG_WEAK on the Vernaux entry named ``version`` (GNU ld leaves it unset).

    The Verneed chain is walked by hand from the ``.gnu.version_r`` section (found with
    pyelftools), so call this before :func:`drop_section_headers`.
    """
    from elftools.elf.elffile import ELFFile

    data = bytearray(path.read_bytes())
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        sec = elf.get_section_by_name(".gnu.version_r")
        strtab = elf.get_section(sec["sh_link"])
        base = sec["sh_offset"]
        count = sec["sh_info"]  # number of Verneed entries
        str_off = strtab["sh_offset"]
    end = "<" if data[5] == 1 else ">"
    vn = base
    for _ in range(count):
        _ver, cnt, _file, aux, nxt = struct.unpack_from(end + "HHIII", data, vn)
        va = vn + aux
        for _ in range(cnt):
            _hash, flags, _other, name, vnext = struct.unpack_from(end + "IHHII", data, va)
            nul = data.index(0, str_off + name)
            if data[str_off + name : nul].decode() == version:
                struct.pack_into(end + "H", data, va + 4, flags | 0x2)  # VER_FLG_WEAK
                path.write_bytes(bytes(data))
                return
            va += vnext
        vn += nxt
    raise ValueError(f"{path}: no Vernaux named {version}")
