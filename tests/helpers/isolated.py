"""Scan wheels in a child interpreter, so a crash or a hang in an engine fails one test case
instead of killing (or freezing) the whole pytest run.

A worker process reads case descriptions (JSON lines) on stdin and answers each with a JSON
line: the facts, or the exception ``scan_wheel`` raised (it must never raise), the wall time and
the peak-RSS growth the scan caused. The parent enforces a per-case timeout with ``select``: a
signal handler could not interrupt native code that holds the GIL. After a crash or a timeout the
worker is restarted and the remaining cases go on.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wheelscan

__all__ = [
    "Case",
    "Outcome",
    "engine_params",
    "native_available",
    "private_tmp",
    "run_cases",
]

# the directory holding the wheelscan package this test run imported: src/ in a development
# tree, site-packages after `pip install .` (whose src/ has no compiled modules)
_SRC = str(Path(wheelscan.__file__).resolve().parents[1])

_WORKER = r"""
import io, json, os, resource, sys, time, traceback
sys.path.insert(0, SRC)
import wheelscan
from wheelscan.limits import Limits

def rss_peak_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

for engine in sys.argv[1:]:
    try:
        __import__("wheelscan._%s_engine" % engine)
    except Exception:
        pass
out = sys.stdout
for line in sys.stdin:
    case = json.loads(line)
    out.write(json.dumps({"start": case["id"]}) + "\n")
    out.flush()
    limits = Limits(**case["limits"]) if case.get("limits") else Limits()
    before = rss_peak_kb()
    t0 = time.perf_counter()
    res = {"id": case["id"]}
    try:
        if case.get("fileobj"):
            with open(case["path"], "rb") as f:
                src = io.BytesIO(f.read())
            facts = wheelscan.scan_wheel(src, engine=case["engine"],
                                         filename=os.path.basename(case["path"]), limits=limits)
        else:
            facts = wheelscan.scan_wheel(case["path"], engine=case["engine"], limits=limits)
        res["type"] = type(facts).__name__
        res["facts"] = facts.to_dict()
        try:
            json.dumps(res["facts"])
        except (TypeError, ValueError) as e:
            res["json_error"] = repr(e)
    except BaseException as e:
        res["raised"] = "".join(traceback.format_exception(type(e), e, e.__traceback__))[-4000:]
    res["seconds"] = time.perf_counter() - t0
    res["rss_growth_kb"] = rss_peak_kb() - before
    out.write(json.dumps(res, default=repr) + "\n")
    out.flush()
""".replace("SRC", repr(_SRC))


@dataclass
class Case:
    id: str
    path: Path
    engine: str
    limits: dict[str, int] | None = None
    fileobj: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "path": str(self.path),
                "engine": self.engine,
                "limits": self.limits,
                "fileobj": self.fileobj,
            }
        )


@dataclass
class Outcome:
    """What happened to one case: ``status`` is ok, raised, crashed or timeout."""

    status: str
    facts: dict[str, Any] = field(default_factory=dict)
    result_type: str = ""
    detail: str = ""
    seconds: float = 0.0
    rss_growth_kb: int = 0
    stderr: str = ""
    json_error: str = ""  # the facts were not JSON-serialisable (a broken contract)


class _Worker:
    def __init__(self, engines: list[str]) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the worker)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, *engines],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
        )
        self.buf = b""

    def send(self, case: Case) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(case.to_json().encode() + b"\n")
        self.proc.stdin.flush()

    def read_line(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line, or None on EOF (the worker died) or when ``deadline`` passes."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        result: dict[str, Any] = json.loads(line)
        return result

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        text = self.stderr.read().decode("utf-8", "replace")
        self.stderr.seek(0)
        self.stderr.truncate()
        return text

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self.stderr.close()


def run_cases(cases: list[Case], *, timeout: float = 20.0) -> dict[str, Outcome]:
    """Scan every case in a worker process; a crash or a hang costs only that case."""
    results: dict[str, Outcome] = {}
    engines = sorted({c.engine for c in cases})
    todo = list(cases)
    while todo:
        worker = _Worker(engines)
        done = 0
        try:
            for case in todo:
                worker.send(case)
                start = worker.read_line(time.monotonic() + 60)
                if start is None:
                    results[case.id] = Outcome("crashed", detail="worker died before the scan")
                    done += 1
                    break
                t0 = time.monotonic()
                res = worker.read_line(t0 + timeout)
                done += 1
                if res is None:
                    alive = worker.proc.poll() is None
                    status = "timeout" if alive else "crashed"
                    results[case.id] = Outcome(status, seconds=time.monotonic() - t0)
                    break
                out = Outcome(
                    "raised" if "raised" in res else "ok",
                    facts=res.get("facts", {}),
                    result_type=res.get("type", ""),
                    detail=res.get("raised", ""),
                    seconds=res["seconds"],
                    rss_growth_kb=res["rss_growth_kb"],
                    json_error=res.get("json_error", ""),
                )
                results[case.id] = out
                out.stderr = worker.stderr_text()
        finally:
            last = results.get(todo[done - 1].id) if done else None
            broken = last is not None and last.status in ("crashed", "timeout")
            if broken:
                worker.proc.kill()
            elif worker.proc.stdin is not None:
                worker.proc.stdin.close()
            try:
                rc = worker.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                rc = worker.proc.wait()
            tail = worker.stderr_text()[-4000:]
            worker.close()
            if last is not None and broken:
                last.stderr = tail
                last.detail = f"{last.detail} (worker exit code {rc})".strip()
        todo = todo[done:]
    return results


@contextlib.contextmanager
def private_tmp(prefix: str) -> Iterator[Path]:
    """A temporary directory outside pytest's numbered basetemp: pytest runs started meanwhile
    (several engineers share this machine) prune old basetemps, which could delete the fixture
    files of a running session."""
    d = Path(tempfile.mkdtemp(prefix=f"wheelscan-{prefix}-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def native_available() -> bool:
    try:
        import wheelscan.read.native  # noqa: F401
    except ImportError:
        return False
    return True


def engine_params() -> list[Any]:
    """Both engines as pytest params. Without the native engine its cases skip locally, but in
    CI (env CI=true) a missing native engine fails them: CI must not skip a class of tests."""
    import pytest

    marks = []
    if not native_available() and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        marks.append(pytest.mark.skip(reason="native engine not built (fails under CI=true)"))
    return [pytest.param("native", marks=marks, id="native"), pytest.param("lief", id="lief")]
