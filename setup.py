"""Only the Cython extensions; all metadata lives in pyproject.toml.

Every ext/<format>.pyx becomes wheelscan._native.<format>. Set WHEELSCAN_CYTHON_ANNOTATE=1
for HTML annotation, WHEELSCAN_CYTHON_TRACE=1 for line tracing (coverage, profiling).

The inflate module is built for ISA-L's C API when its header and library are installed
(Debian: libisal-dev), which lets it inflate straight into its buffer; without it, ISA-L is
used through python-isal. WHEELSCAN_LIBISAL=1 makes a missing libisal an error, =0 skips it. The
library is not linked: ext/inflate.pyx loads it by soname at import (ext/isal_shim.h), so a
build made with it still imports, and falls back to the next inflater, where libisal is absent.
A .pxd shared between modules sits at its module's package path under ext/ (for example
ext/wheelscan/_native/inflate.pxd), where Cython resolves a cimport of that module.
"""

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

TRACE = os.environ.get("WHEELSCAN_CYTHON_TRACE") == "1"
macros = [("CYTHON_TRACE_NOGIL", "1")] if TRACE else []


def have_libisal() -> bool:
    """Whether a C program using ISA-L's inflate compiles and links here."""
    want = os.environ.get("WHEELSCAN_LIBISAL")
    if want == "0":
        return False
    src = "#include <isa-l/igzip_lib.h>\nint main(void){struct inflate_state s;" \
          "isal_inflate_init(&s);return isal_inflate(&s) == 12345;}\n"
    cc = shlex.split(os.environ.get("CC", "cc"))
    flags = shlex.split(os.environ.get("CFLAGS", "")) + shlex.split(os.environ.get("LDFLAGS", ""))
    with tempfile.TemporaryDirectory() as tmp:
        c = Path(tmp, "t.c")
        c.write_text(src)
        try:
            ok = subprocess.run([*cc, *flags, str(c), "-o", str(Path(tmp, "t")), "-lisal"],
                                capture_output=True).returncode == 0
        except OSError:  # no C compiler by that name: the build itself will say so
            ok = False
    if want == "1" and not ok:
        sys.exit("WHEELSCAN_LIBISAL=1 but libisal (isa-l/igzip_lib.h, -lisal) is not usable")
    print(f"wheelscan: building {'with' if ok else 'without'} libisal", file=sys.stderr)
    return ok


LIBISAL = have_libisal()
extensions = [
    Extension(
        f"wheelscan._native.{pyx.stem}",
        [str(pyx)],
        include_dirs=["ext"],
        libraries=["z"],
        define_macros=macros + ([("WHEELSCAN_HAVE_LIBISAL", "1")] if LIBISAL else []),
        extra_compile_args=["-O3", "-fno-strict-aliasing"],
    )
    for pyx in sorted(Path("ext").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["ext"],
        annotate=os.environ.get("WHEELSCAN_CYTHON_ANNOTATE") == "1",
        compiler_directives={"language_level": 3, "embedsignature": True, "linetrace": TRACE},
    )
)
