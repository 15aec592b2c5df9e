"""ISA-L's and zlib-ng's C APIs as floor inflaters, shaped like ``zlib``'s ``decompressobj``
for run.py.

python-isal's and zlib-ng's ``decompressobj`` return a new bytes object per call; a reader
calling the C library inflates straight into its own buffer. This module compiles
``libisal_floor.c`` (needs a C compiler and libisal, e.g. Debian's libisal-dev) and
``libzng_floor.c`` (a C compiler; it loads libz-ng.so.2 or the zlib-ng package's module) into
the benchmark cache and calls them with ctypes, so the floor has the same advantage.
``load_libisal()`` and ``load_libzng()`` return None when unavailable.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent


class _Decompressor:
    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self._state = lib.floor_new()
        if not self._state:
            raise MemoryError("floor_new")
        self._out = bytearray()
        self.unconsumed_tail = b""
        self.eof = False

    def __del__(self) -> None:
        if self._state:
            self._lib.floor_free(self._state)

    def _call(self, src: int, n_in: int, max_length: int) -> tuple[int, int]:
        if len(self._out) < max_length:
            self._out = bytearray(max_length)
        out = (ctypes.c_char * len(self._out)).from_buffer(self._out)
        consumed = ctypes.c_uint32()
        n = self._lib.floor_inflate(self._state, src, n_in, out, max_length, ctypes.byref(consumed))
        if n < 0:
            raise ValueError("corrupt deflate stream")
        return n, consumed.value

    def decompress(self, data: bytes, max_length: int) -> memoryview:
        """Up to ``max_length`` bytes of output, as a view of a buffer reused between calls."""
        n, used = self._call(_address(data), len(data), max_length)
        self.unconsumed_tail = data[used:]
        return memoryview(self._out)[:n]

    def stream(self, comp: bytes, prefix: int, chunk: int, in_chunk: int) -> int:
        """run.py's streamed floor without copying input slices: ``in_chunk`` bytes of input
        per call at most, ``chunk`` bytes of output."""
        base, pos, produced = _address(comp), 0, 0
        while produced < prefix:
            n_in = min(in_chunk, len(comp) - pos)
            n, used = self._call(base + pos, n_in, min(chunk, prefix - produced))
            pos += used
            produced += n
            if not n and not n_in:
                break
        return produced


def _address(data: bytes) -> int:
    addr = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
    assert addr is not None
    return addr


class CFloor:
    """The module-like object run.py times: ``CFloor(lib).decompressobj(-15)``."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib

    def decompressobj(self, wbits: int = -15) -> _Decompressor:
        assert wbits == -15, "raw deflate only"
        return _Decompressor(self._lib)

    def stream(self, comp: bytes, prefix: int, chunk: int, in_chunk: int) -> int:
        return _Decompressor(self._lib).stream(comp, prefix, chunk, in_chunk)

    def inflate_all(self, comp: bytes, chunk: int = 1 << 20) -> int:
        """Inflate the whole stream in ``chunk``-byte outputs, dropping them: the byte count."""
        d = _Decompressor(self._lib)
        base, pos, total = _address(comp), 0, 0
        while True:
            n, used = d._call(base + pos, len(comp) - pos, chunk)
            pos += used
            total += n
            if n < chunk and (not used or pos >= len(comp)):
                return total


def _build(build_dir: Path, name: str, *libs: str) -> Any:
    """Compile ``name``.c into the cache (again when the source is newer) and load it."""
    build_dir.mkdir(parents=True, exist_ok=True)
    src = _HERE / f"{name}.c"
    so = build_dir / f"{name}.so"
    if not so.exists() or so.stat().st_mtime < src.stat().st_mtime:
        cc = os.environ.get("CC", "cc")
        with tempfile.NamedTemporaryFile(dir=build_dir, suffix=".so", delete=False) as tmp:
            pass
        r = subprocess.run([cc, "-O2", "-shared", "-fPIC", str(src), "-o", tmp.name, *libs],
                           capture_output=True)  # fmt: skip
        if r.returncode != 0:
            os.unlink(tmp.name)
            return None
        os.replace(tmp.name, so)
    lib = ctypes.CDLL(str(so))
    lib.floor_new.restype = ctypes.c_void_p
    lib.floor_free.argtypes = [ctypes.c_void_p]
    lib.floor_inflate.restype = ctypes.c_long
    lib.floor_inflate.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32,
        ctypes.POINTER(ctypes.c_uint32),
    ]  # fmt: skip
    return lib


def load_libisal(build_dir: Path) -> CFloor | None:
    lib = _build(build_dir, "libisal_floor", "-lisal")
    return None if lib is None else CFloor(lib)


def load_libzng(build_dir: Path) -> CFloor | None:
    """zlib-ng's C API from the system library, else from the zlib-ng package's module."""
    lib = _build(build_dir, "libzng_floor", "-ldl")
    if lib is None:
        return None
    candidates = ["libz-ng.so.2"]
    try:
        from zlib_ng import zlib_ng

        candidates.append(zlib_ng.__file__)
    except ImportError:
        pass
    for path in candidates:
        if lib.floor_bind(path.encode()) == 0:
            return CFloor(lib)
    return None
