"""Only the Cython extensions; all metadata lives in pyproject.toml.

Every ext/<format>.pyx becomes wheelscan._native.<format>. Set WHEELSCAN_CYTHON_ANNOTATE=1
for HTML annotation, WHEELSCAN_CYTHON_TRACE=1 for line tracing (coverage, profiling).
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

TRACE = os.environ.get("WHEELSCAN_CYTHON_TRACE") == "1"
macros = [("CYTHON_TRACE_NOGIL", "1")] if TRACE else []
extensions = [
    Extension(
        f"wheelscan._native.{pyx.stem}",
        [str(pyx)],
        include_dirs=["ext"],
        libraries=["z"],
        define_macros=macros,
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
