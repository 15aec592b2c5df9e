"""Every environment variable wheelscan reads, read here, once per process.

=========================  ==================================================================
``WHEELSCAN_ENGINE``       engine of a scan that names none: ``native`` (default) or ``lief``
``WHEELSCAN_INFLATER``     the native engine's deflate back-end (``auto``, ``libisal``, ...)
``WHEELSCAN_LIBISAL``      ``0``: never load libisal; ``1``: its absence is an ImportError
``WHEELSCAN_LIBZNG``       likewise for zlib-ng's C API
``WHEELSCAN_TEST_HANG``    tests only: a worker reaching a wheel whose name holds this hangs...
``WHEELSCAN_TEST_PIDFILE`` ...after writing its pid here...
``WHEELSCAN_TEST_HANG_S``  ...for this many seconds (default: an hour)
``WHEELSCAN_TEST_MIGRATE`` tests only: a store migration hangs (as above) once it has
                           committed this many rows
``WHEELSCAN_TEST_GC``      tests only: set, a store's garbage collection hangs (as above)
                           once it has rewritten its packs, before it commits
``CI``                     set: no progress line on a terminal
=========================  ==================================================================

The build reads its own (``WHEELSCAN_LIBISAL``, ``WHEELSCAN_CYTHON_*``) in ``setup.py``.
Worker processes are spawned, so each reads the environment it inherited (``check``'s are
forked, and inherit the main process's reading with it). A test that changes a variable calls
``environment.cache_clear()`` for the change to be seen.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

__all__ = ["Environment", "environment", "hang_if_asked", "hang_if_collecting", "hang_if_migrated"]


@dataclass(frozen=True)
class Environment:
    engine: str | None = None
    inflater: str | None = None
    libisal: str = ""
    libzng: str = ""
    test_hang: str | None = None
    test_pidfile: str | None = None
    test_hang_seconds: float = 3600.0
    test_migrate: int | None = None
    test_gc: bool = False
    ci: bool = False


@functools.cache
def environment() -> Environment:
    """The variables above as this process found them (read on first use)."""
    env = os.environ
    return Environment(
        engine=env.get("WHEELSCAN_ENGINE"),
        inflater=env.get("WHEELSCAN_INFLATER"),
        libisal=env.get("WHEELSCAN_LIBISAL", ""),
        libzng=env.get("WHEELSCAN_LIBZNG", ""),
        test_hang=env.get("WHEELSCAN_TEST_HANG") or None,
        test_pidfile=env.get("WHEELSCAN_TEST_PIDFILE") or None,
        test_hang_seconds=float(env.get("WHEELSCAN_TEST_HANG_S") or 3600.0),
        test_migrate=int(env["WHEELSCAN_TEST_MIGRATE"]) if env.get("WHEELSCAN_TEST_MIGRATE")
        else None,
        test_gc=bool(env.get("WHEELSCAN_TEST_GC")),
        ci=bool(env.get("CI")),
    )


def hang_if_asked(filename: str) -> None:
    """Tests only: a worker that reaches a wheel named like ``WHEELSCAN_TEST_HANG`` hangs
    there (or is slow: ``WHEELSCAN_TEST_HANG_S``), once it has written its pid."""
    env = environment()
    if env.test_hang and env.test_hang in filename:
        if env.test_pidfile:
            with open(env.test_pidfile, "w") as f:
                f.write(str(os.getpid()))
        time.sleep(env.test_hang_seconds)


def hang_if_migrated(rows: int) -> None:
    """Tests only: a migration that has committed ``rows`` rows, at least
    ``WHEELSCAN_TEST_MIGRATE``, hangs there as :func:`hang_if_asked` does (so a test can kill
    it midway)."""
    env = environment()
    if env.test_migrate is not None and rows >= env.test_migrate:
        if env.test_pidfile:
            with open(env.test_pidfile, "w") as f:
                f.write(str(os.getpid()))
        time.sleep(env.test_hang_seconds)


def hang_if_collecting() -> None:
    """Tests only: with ``WHEELSCAN_TEST_GC`` set, a garbage collection that has rewritten its
    packs hangs there, before its commit, as :func:`hang_if_asked` does."""
    env = environment()
    if env.test_gc:
        if env.test_pidfile:
            with open(env.test_pidfile, "w") as f:
                f.write(str(os.getpid()))
        time.sleep(env.test_hang_seconds)
