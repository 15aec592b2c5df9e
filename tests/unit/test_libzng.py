"""zlib-ng's C API: bound at import (the system libz-ng.so.2, else the functions the zlib-ng
package's extension module exports) only after it inflated a known stream through the
declared stream layout; the ``auto`` inflater sends the deflated members that inflate at least
``AUTO_ZNG_RATIO`` times their compressed size to it, and the others to libisal.

The shared objects are compiled by gcc here; the stand-in libraries are real shared objects
loaded by the real dynamic loader.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import require
from helpers.native import inflater_env, native_inflate, native_zipread, shared_object
from helpers.native import zip_with_stream as _with_member_stream

from wheelscan.environment import environment
from wheelscan.errors import InflateError, LimitExceeded
from wheelscan.read.native import scan_wheel_native

_SOURCE = """
#include <string.h>
char buf[64];
int use(const char *s) { memcpy(buf, s, strlen(s)); return buf[0]; }
"""


def _bound() -> Any:
    zipread = native_zipread()
    inflate = native_inflate()
    if not inflate.LIBZNG:  # skips on a dev box, fails under CI=true
        require(f"libz-ng is not offered here: {inflate.LIBZNG_ERROR}")
    return zipread


def _padded_and_dense(tmp_path: Path) -> tuple[bytes, bytes]:
    """Two real shared objects: one whose segments are aligned to 64 KiB in the file (mostly
    zero padding, as aarch64 builds are), one whose read-only data is 64 KiB of random bytes."""
    padded = shared_object(tmp_path, "libpadded", _SOURCE, "-O1",
                            "-Wl,-z,max-page-size=0x10000", "-Wl,-z,separate-code")  # fmt: skip
    blob = ",".join(str(b) for b in os.urandom(65536))
    dense = shared_object(tmp_path, "libdense",
                           _SOURCE + f"const unsigned char blob[] = {{{blob}}};\n"
                           "const unsigned char *get(void) { return blob; }\n", "-O1")  # fmt: skip
    return padded.read_bytes(), dense.read_bytes()


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("p-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: cp311-cp311-linux_x86_64\n")
    return path


def test_bound_at_import() -> None:
    """Where the zlib-ng package is installed (a dependency), import binds zlib-ng 2.x from it
    or from the system library, and offers ``auto`` first (with libisal or python-isal, both
    faster on ordinary code: see AUTO_ZNG_RATIO)."""
    _bound()
    inflate = native_inflate()
    assert inflate.LIBZNG_VERSION.startswith("2.")
    assert inflate.LIBZNG_SOURCE == inflate.LIBZNG_SONAME or Path(inflate.LIBZNG_SOURCE).is_file()
    isal = ("libisal",) * inflate.LIBISAL + ("isal",)
    assert inflate.INFLATERS[: 2 + len(isal)] == ("auto", *isal, "libz-ng")


_ROUTES = (
    "import json, sys\nfrom wheelscan._native import zipread as z\n"
    "a = z.Archive(sys.argv[1], inflater='auto'); a.read_directory(); out = []\n"
    "for i, n in enumerate(a.names[:2]):\n"
    "    f = a.scan_elf(i, n); out.append([n, a.last_inflater, a.last_inflated, f.needed])\n"
    "print(json.dumps(out))\n"
)


def test_auto_without_libisal_uses_python_isal(tmp_path: Path) -> None:
    """Where libisal is not offered, ``auto`` is python-isal with libz-ng for the padded
    members, with the same facts and prefixes."""
    _bound()
    inflate = native_inflate()
    padded, dense = _padded_and_dense(tmp_path)
    w = _wheel(tmp_path / "p-1.0-cp311-cp311-linux_x86_64.whl",
               {"p/libpadded.so": padded, "p/libdense.so": dense})  # fmt: skip
    runs = {}
    for flag in ("0", ""):  # libisal disabled; the default
        out = subprocess.run([sys.executable, "-c", _ROUTES, str(w)], check=True, text=True,
                             env=inflater_env(WHEELSCAN_LIBISAL=flag), capture_output=True).stdout
        runs[flag] = json.loads(out)
    isal = "libisal" if inflate.LIBISAL else "isal"
    assert [r[:2] for r in runs["0"]] == [["p/libpadded.so", "libz-ng"], ["p/libdense.so", "isal"]]
    assert [r[:2] for r in runs[""]] == [["p/libpadded.so", "libz-ng"], ["p/libdense.so", isal]]
    assert [r[2:] for r in runs["0"]] == [r[2:] for r in runs[""]]


def test_auto_sends_members_by_their_ratio(tmp_path: Path) -> None:
    """Under ``auto`` the padded library goes to libz-ng and the dense one to libisal, as
    their central-directory sizes say; every inflater gives zlib's facts and byte counts
    (zlib-ng, like zlib, inflates exactly the output asked for). Scanned over and over, in
    alternation, with a corrupt member between: the zlib-ng stream kept between members
    starts each member afresh."""
    zipread = _bound()
    inflate = native_inflate()
    if not inflate.LIBISAL:
        require(f"libisal is not offered here: {inflate.LIBISAL_ERROR}")
    padded, dense = _padded_and_dense(tmp_path)
    # its first 4 KiB, a flush, then a block of the reserved type: corrupt before PT_DYNAMIC
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    broken = c.compress(padded[:4096]) + c.flush(zlib.Z_FULL_FLUSH) + b"\x07" + bytes(64)
    w = _wheel(tmp_path / "p-1.0-cp311-cp311-linux_x86_64.whl",
               {"p/libpadded.so": padded, "p/libdense.so": dense, "p/libpadded2.so": padded})
    ratio = {}
    with zipfile.ZipFile(w) as zf:
        for info in zf.infolist():
            ratio[info.filename] = info.file_size / info.compress_size
    assert ratio["p/libpadded.so"] >= inflate.AUTO_ZNG_RATIO > ratio["p/libdense.so"]
    reference = zipread.Archive(w, inflater="zlib")
    reference.read_directory()
    names = reference.names[:3]
    expect = {}
    for i, name in enumerate(names):
        expect[name] = (reference.scan_elf(i, name), reference.last_inflated)
        assert expect[name][0] is not None
    bad = _with_member_stream(tmp_path / "bad.zip", broken, len(padded))
    for _ in range(3):
        a = zipread.Archive(w, inflater="auto")
        a.read_directory()
        for i, name in enumerate(names):
            assert (a.scan_elf(i, name), a.last_inflated) == expect[name]
            assert a.last_inflater == ("libz-ng" if "padded" in name else "libisal")
            assert 0 < a.last_read <= a.entry(i)[3]
        a.close()
        # a corrupt stream on the kept zlib-ng stream; the next round starts afresh on it
        b = zipread.Archive(bad, inflater="auto")
        b.read_directory()
        with pytest.raises(InflateError, match="corrupt deflate stream"):
            b.scan_elf(0, "t.bin")
        assert b.last_inflater == "libz-ng"
        b.close()
    # whole wheels, every inflater: the same facts, and the same bytes inflated
    for inflater in inflate.INFLATERS:
        facts = scan_wheel_native(w, inflater=inflater)
        assert (facts.error, facts.errors) == (None, [])
        assert facts.elfs == [expect[n][0] for n in names], inflater
        if inflater in ("zlib", "libisal", "libz-ng", "auto"):  # the C APIs stop exactly there
            assert [m.inflated for m in facts.members] == [expect[n][1] for n in names]


def test_disabled_by_environment(tmp_path: Path) -> None:
    """WHEELSCAN_LIBZNG=0 keeps it unbound: ``auto`` is not offered either, the facts are the
    same, and ``--version`` says why."""
    native_zipread()
    inflate = native_inflate()
    padded, dense = _padded_and_dense(tmp_path)
    w = _wheel(tmp_path / "p-1.0-cp311-cp311-linux_x86_64.whl",
               {"p/libpadded.so": padded, "p/libdense.so": dense})  # fmt: skip
    code = ("import json, sys\nfrom wheelscan._native import inflate as i\n"
            "from wheelscan.read.native import scan_wheel_native\n"
            "f = scan_wheel_native(sys.argv[1])\n"
            "print(json.dumps([i.LIBZNG, i.LIBZNG_ERROR, i.INFLATERS, i.inflater, "
            "[e.needed for e in f.elfs], f.errors]))\n")  # fmt: skip
    env = inflater_env(WHEELSCAN_LIBZNG="0")
    out = subprocess.run([sys.executable, "-c", code, str(w)], env=env, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    bound, why, inflaters, used, needed, errors = json.loads(out)
    assert (bound, why) == (False, "disabled by WHEELSCAN_LIBZNG=0")
    assert "libz-ng" not in inflaters
    assert "auto" not in inflaters
    assert used == inflaters[0] == ("libisal" if inflate.LIBISAL else "isal")
    assert errors == []
    assert needed == [e.needed for e in scan_wheel_native(w).elfs]
    version = subprocess.run([sys.executable, "-m", "wheelscan", "--version"], check=True,
                             env=inflater_env(WHEELSCAN_LIBZNG="0"), capture_output=True,
                             text=True).stdout  # fmt: skip
    assert f"native inflater {used} " in version
    assert version.rstrip().endswith("; libz-ng: disabled by WHEELSCAN_LIBZNG=0")


def test_required_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the system library nor the package: the reasons for both, an ImportError when
    WHEELSCAN_LIBZNG=1 asks for it."""
    native_zipread()
    inflate = native_inflate()
    monkeypatch.setattr(inflate, "LIBZNG_SONAME", "/nonexistent/libz-ng.so.2")
    monkeypatch.setitem(sys.modules, "zlib_ng", None)  # the package is not installed
    monkeypatch.setenv("WHEELSCAN_LIBZNG", "1")
    environment.cache_clear()
    with pytest.raises(ImportError, match=r"^WHEELSCAN_LIBZNG=1 but zlib-ng is unusable: "
                                          r"cannot load /nonexistent/libz-ng\.so\.2: .*; "
                                          r"zlib-ng package: "):  # fmt: skip
        inflate._load_libzng()
    monkeypatch.setenv("WHEELSCAN_LIBZNG", "")
    environment.cache_clear()
    why, source, version = inflate._load_libzng()
    assert why.startswith("cannot load /nonexistent/libz-ng.so.2: ")
    assert "; zlib-ng package: " in why
    assert (source, version) == (None, None)


def _stand_in(tmp_path: Path, name: str, version: str, inflate_body: str) -> Path:
    return shared_object(tmp_path, name, (
        "#include <stdint.h>\n#include <string.h>\n"
        "typedef struct { const uint8_t *next_in; uint32_t avail_in; size_t total_in;\n"
        "  uint8_t *next_out; uint32_t avail_out; size_t total_out; } s_t;\n"
        f'const char *zlibng_version(void) {{ return "{version}"; }}\n'
        "int32_t zng_inflateInit2(s_t *s, int32_t w) { (void)s; (void)w; return 0; }\n"
        "int32_t zng_inflateReset(s_t *s) { s->total_in = s->total_out = 0; return 0; }\n"
        "int32_t zng_inflateEnd(s_t *s) { (void)s; return 0; }\n"
        f"int32_t zng_inflate(s_t *s, int32_t f) {{ (void)f; {inflate_body} }}\n"
    ))  # fmt: skip


def test_a_library_is_checked_before_it_is_bound(tmp_path: Path) -> None:
    """A library without zlib-ng's functions, of another major version, or whose inflate does
    not give a known stream's bytes through the declared layout is refused with the reason;
    the binding made at import keeps working."""
    zipread = native_zipread()
    inflate = native_inflate()
    empty = shared_object(tmp_path, "libempty", "int unrelated(void) { return 1; }\n")
    why, version = inflate._bind_libzng(str(empty))
    assert why.startswith(f"{empty} lacks zlib-ng's inflate functions: ")
    assert version is None
    # claims the end of the stream after filling all but one byte with nothing decoded
    lying = ("s->next_in += s->avail_in; s->total_in += s->avail_in; s->avail_in = 0;\n"
             "s->next_out += s->avail_out - 1; s->total_out += s->avail_out - 1;\n"
             "s->avail_out = 1; return 1;")  # fmt: skip
    old = _stand_in(tmp_path, "libold", "1.9.9", lying)
    assert inflate._bind_libzng(str(old)) == (
        f"{old} is zlib-ng 1.9.9; the stream layout used is zlib-ng 2.x's", None)
    fake = _stand_in(tmp_path, "libfake", "2.9.9", lying)
    assert inflate._bind_libzng(str(fake)) == (
        f"{fake} (zlib-ng 2.9.9) does not inflate a known stream", None)
    missing = tmp_path / "libnothere.so"
    assert inflate._bind_libzng(str(missing))[0].startswith(f"cannot load {missing}: ")
    if inflate.LIBZNG:
        data = b"".join(b"%d\n" % (i * i) for i in range(5000))
        w = tmp_path / "m.zip"
        with zipfile.ZipFile(w, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("m.txt", data)
        arc = zipread.Archive(w, inflater="libz-ng")
        arc.read_directory()
        assert arc.read_member(0, 1 << 20) == data


def test_the_first_binding_stays(tmp_path: Path) -> None:
    """Another working copy of the library (another file, mapped again elsewhere) passes the
    check but is not bound; the same library again is fine."""
    _bound()
    inflate = native_inflate()
    assert inflate._bind_libzng(inflate.LIBZNG_SOURCE) == (None, inflate.LIBZNG_VERSION)
    real = Path(inflate.LIBZNG_SOURCE)
    if not real.is_file():  # the soname: find the file the loader mapped
        maps = Path("/proc/self/maps").read_text().split()
        real = Path(next(p for p in maps if "libz-ng.so" in p and p.startswith("/")))
    copy = tmp_path / f"copy-{real.name}"
    shutil.copyfile(real, copy)
    assert inflate._bind_libzng(str(copy)) == (
        f"another zlib-ng is already bound; {copy} is not used", None)


def test_the_ratio_rule_at_its_boundary(tmp_path: Path) -> None:
    """4.5 times the compressed size, exactly: a member declared one byte short of it goes to
    ISA-L, one declared at it to zlib-ng (the rule is read from the central directory, before
    any byte is inflated, so the declared size decides even when it lies)."""
    zipread = _bound()
    inflate = native_inflate()
    if not inflate.LIBISAL:
        require(f"libisal is not offered here: {inflate.LIBISAL_ERROR}")
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = c.compress(b"\x7fELF" + bytes(200)) + c.flush()
    if len(stream) % 2 == 0:  # an odd size, so that 4.5 times it is not a whole number
        stream += b"\0"  # ignored after the final block
    at = -(-len(stream) * 9 // 2)  # ceil(4.5 * size)
    for declared, expect in ((at - 1, "libisal"), (at, "libz-ng")):
        a = zipread.Archive(_with_member_stream(tmp_path / f"r{declared}.zip", stream, declared),
                            inflater="auto")  # fmt: skip
        a.read_directory()
        # the declared size is not the stream's: only the choice matters here
        with contextlib.suppress(InflateError, LimitExceeded):
            a.scan_elf(0, "t.bin")
        assert a.last_inflater == expect, declared
        a.close()


def test_threads_share_the_kept_stream_safely(tmp_path: Path) -> None:
    """Four threads scanning padded and dense members at once (the kept zlib-ng stream and
    ISA-L state are swapped under the GIL, inflating runs without it) get the facts one
    thread gets."""
    from concurrent.futures import ThreadPoolExecutor

    _bound()
    inflate = native_inflate()
    padded, dense = _padded_and_dense(tmp_path)
    w = _wheel(tmp_path / "p-1.0-cp311-cp311-linux_x86_64.whl",
               {"p/libpadded.so": padded, "p/libdense.so": dense, "p/libpadded2.so": padded})
    expect = scan_wheel_native(w, inflater="zlib").elfs
    assert len(expect) == 3
    inflaters = [i for i in ("auto", "libz-ng", "zlib") if i in inflate.INFLATERS]

    def scan(k: int) -> list[object]:
        return list(scan_wheel_native(w, inflater=inflaters[k % len(inflaters)]).elfs)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(scan, range(60)))
    assert all(r == expect for r in results)
