"""Run a command; print its wall time and its own peak RSS (VmHWM, polled; children not
counted): the main-process figure of the scale rows in docs/performance.md.

    python benchmarks/peak_rss.py wheelscan scan /tmp/m1m --db /tmp/s1m.sqlite --quiet
"""

from __future__ import annotations

import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    hwm = 0
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM"):
                        hwm = max(hwm, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.2)
    print(f"rc={p.returncode} wall={time.perf_counter() - t:.1f}s "
          f"main_peak_rss={hwm / 1024:.1f}MiB: {' '.join(argv)[:120]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
