"""Kill a process with SIGKILL where it hangs on purpose (the store's test hooks)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def kill_at_hang(argv: list[str], hook: dict[str, str], pidfile: Path, what: str) -> None:
    """Run ``argv`` with the test ``hook`` variables and ``WHEELSCAN_TEST_PIDFILE=pidfile``
    (its code writes its pid there, then hangs); SIGKILL it once it has. ``what`` names the
    step for the assertion that it ended before its hang."""
    env = {**os.environ, **hook, "WHEELSCAN_TEST_PIDFILE": str(pidfile),
           "WHEELSCAN_TEST_HANG_S": "600"}  # fmt: skip
    p = subprocess.Popen(argv, env=env)
    try:
        deadline = time.monotonic() + 120
        while not pidfile.exists() or not pidfile.read_text():
            assert p.poll() is None, f"{what} ended before its hang"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL
