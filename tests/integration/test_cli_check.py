"""``wheelscan check``: output contract (JSON Schema), text, exit status, hostile wheels."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers.builders import make_wheel
from helpers.verdict_wheels import Scenario, build_scenarios

ENGINE = os.environ.get("WHEELSCAN_VERDICT_ENGINE", "native")
SCHEMA = json.loads((resources.files("wheelscan") / "data" / "check-schema.json").read_text())


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """In-process ``wheelscan check`` (one subprocess per call would mostly time lief's import)."""
    import contextlib
    import io

    from wheelscan.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(["check", *args])
        except SystemExit as e:  # argparse usage errors
            rc = int(e.code or 0)
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def run_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wheelscan", "check", *args],
                          capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, **(env or {})})  # fmt: skip


def start_process(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "wheelscan", "check", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})  # fmt: skip


def wait_for_pid(pidfile: Path, proc: subprocess.Popen[str]) -> int:
    """The pid a worker wrote on reaching the wheel it hangs on (environment.hang_if_asked)."""
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no worker reached the wheel"
        time.sleep(0.02)
    return int(pidfile.read_text())



def start_hung(tmp_path: Path, victim_of: str, *args: str
               ) -> tuple[subprocess.Popen[str], Path, int]:  # fmt: skip
    """``check --engine ENGINE *args`` with a copy of ``victim_of`` named ``victim-…`` put
    where ``{victim}`` stands in ``args``, its worker hung on purpose on that wheel: the
    process, the victim's path and the hung worker's pid."""
    victim = tmp_path / "victim-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    shutil.copy(victim_of, victim)
    pidfile = tmp_path / "pid"
    proc = start_process("--engine", ENGINE, *(str(victim) if a == "{victim}" else a
                                               for a in args),
                         env={"WHEELSCAN_TEST_HANG": "victim",
                              "WHEELSCAN_TEST_PIDFILE": str(pidfile)})  # fmt: skip
    return proc, victim, wait_for_pid(pidfile, proc)


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True
    return state in ("Z", "X")


def records(out: str) -> list[dict[str, Any]]:
    recs = [json.loads(line) for line in out.splitlines() if line.strip()]
    for r in recs:
        jsonschema.validate(r, SCHEMA, cls=jsonschema.Draft202012Validator)
    return recs


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> list[Scenario]:
    sc = build_scenarios(tmp_path_factory.getbasetemp() / "verdict-scenarios")
    if not sc:
        pytest.skip("no compiler to build scenario wheels")
    return sc


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, scenarios: list[Scenario]) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    good = next(s.path for s in scenarios if s.name == "ok").read_bytes()
    (d / "garbage-1.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"PK\x03\x04" * 50)
    (d / "trunc-1.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(good[: len(good) // 2])
    (d / "empty-1.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"")
    (d / "not a wheel name.whl").write_bytes(good)
    import zipfile

    with zipfile.ZipFile(next(s.path for s in scenarios if s.name == "ok")) as z:
        elf = z.read("pkg/ext.abi3.so")
    make_wheel(d, "badelf-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
               {"pkg/ext.so": elf[:300]})  # header and part of the program headers only
    return d


def test_schema_is_valid_and_matches_vocabulary() -> None:
    from wheelscan.rules.verdict import FINDING_KINDS, VERDICT_SCHEMA_VERSION

    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema_version"]["const"] == VERDICT_SCHEMA_VERSION
    assert set(SCHEMA["$defs"]["finding"]["properties"]["kind"]["enum"]) == set(FINDING_KINDS)


def test_json_lines_over_a_directory(scenarios: list[Scenario], tmp_path: Path) -> None:
    # every x86_64 scenario plus a few of other arches, in a nested tree (recursion)
    chosen = [s for s in scenarios if s.arch == "x86_64" or s.name in ("ok", "musl-version")]
    for i, s in enumerate(chosen):
        d = tmp_path / f"sub{i % 3}" / "deeper"
        d.mkdir(parents=True, exist_ok=True)
        (d / s.path.name).symlink_to(s.path)
    (tmp_path / "README.txt").write_text("not a wheel")
    r = run("--engine", ENGINE, "--format", "json", str(tmp_path))
    assert r.returncode == 1, r.stderr  # some mislabelled, none unreadable
    recs = records(r.stdout)
    assert len(recs) == len(chosen)
    by_name = {rec["wheel"]: rec for rec in recs}
    for s in chosen:
        rec = by_name[s.path.name]
        assert rec["path"].startswith(str(tmp_path))
        assert rec["path"].endswith(s.path.name)
        assert (rec["status"], rec["minimal_tag"]) == (s.status, s.minimal_tag), s.name
        assert {f["kind"] for f in rec["findings"] if f["severity"] == "violation"} == s.kinds
        assert rec["claims"] == s.path.name[:-4].split("-")[-1].split(".")
        assert rec["policy"]["source"] == "auditwheel"


def test_exit_status_and_text(scenarios: list[Scenario]) -> None:
    ok = next(s for s in scenarios if s.name == "ok" and s.arch == "x86_64")
    bad = next(s for s in scenarios if s.name == "symbol-version" and s.arch == "x86_64")
    r = run("--engine", ENGINE, str(ok.path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK ")
    assert r.stdout.count("\n") == 1
    r = run("--engine", ENGINE, str(ok.path), str(bad.path))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("MISLABELLED")
    assert "manylinux_2_17_x86_64 -> manylinux_2_28_x86_64" in lines[1]
    assert "fcntl64@GLIBC_2.28" in lines[1]
    r = run("--engine", ENGINE, "-v", str(bad.path))
    assert "violation: symbol-version [pkg/ext.abi3.so]" in r.stdout
    warn = next(s for s in scenarios if s.name == "warnings-only" and s.arch == "x86_64")
    assert run("--engine", ENGINE, str(warn.path)).returncode == 0
    r = run("--engine", ENGINE, "--strict", "--format", "json", str(warn.path))
    assert r.returncode == 1
    (rec,) = records(r.stdout)
    assert (rec["status"], rec["strict"]) == ("mislabelled", True)


def test_exclude_is_recorded(scenarios: list[Scenario]) -> None:
    s = next(s for s in scenarios if s.name == "external-library" and s.arch == "x86_64")
    r = run("--engine", ENGINE, "--format", "json", "--exclude", "libfoo*", str(s.path))
    assert r.returncode == 0, r.stdout
    (rec,) = records(r.stdout)
    assert rec["exclude"] == ["libfoo*"]
    assert rec["minimal_tag"] == "manylinux_2_5_x86_64"


def test_hostile_wheels_are_errors_without_traceback(hostile: Path) -> None:
    r = run_process("--engine", ENGINE, "--format", "json", str(hostile))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    recs = records(r.stdout)
    assert len(recs) == 5
    for rec in recs:
        assert rec["status"] == "error", rec
        assert rec["error"]
        assert rec["minimal_tag"] is None
    names = {rec["wheel"]: rec for rec in recs}
    assert "filename" in names["not a wheel name.whl"]["error"]
    assert "pkg/ext.so" in names["badelf-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"]["error"]


def test_usage_errors(tmp_path: Path) -> None:
    assert run(str(tmp_path / "missing.whl")).returncode == 2
    assert run("--format", "xml", str(tmp_path)).returncode == 2
    bad = tmp_path / "policy.json"
    bad.write_text('{"format": 1}')
    r = run("--engine", ENGINE, "--policy", str(bad), str(tmp_path))
    assert r.returncode == 2
    assert "policies" in r.stderr
    assert "Traceback" not in r.stderr
    r = run(str(tmp_path))  # an empty directory: nothing to judge, nothing wrong
    assert (r.returncode, r.stdout) == (0, "")
    for jobs in ("0", "-1", "two"):
        r = run("--jobs", jobs, str(tmp_path))
        assert r.returncode == 2
        assert "--jobs" in r.stderr
        assert "at least 1" in r.stderr


@pytest.fixture(scope="module")
def many(scenarios: list[Scenario], hostile: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> list[str]:  # fmt: skip
    """Every scenario wheel and every hostile one, as check is given them: ok, mislabelled and
    error verdicts, findings of every kind, names that are no wheel's."""
    d = tmp_path_factory.mktemp("many")
    for s in scenarios:
        shutil.copy(s.path, d / f"{s.arch}-{s.path.name}")
    paths = sorted(str(p) for p in d.iterdir())
    return [*paths, *sorted(str(p) for p in hostile.iterdir())]


@pytest.mark.parametrize("fmt", [["--format", "json"], ["-vv"]], ids=["json", "text"])
def test_jobs_print_exactly_what_one_at_a_time_prints(many: list[str], fmt: list[str]) -> None:
    one = run_process("--engine", ENGINE, *fmt, "--jobs", "1", *many)
    two = run_process("--engine", ENGINE, *fmt, "--jobs", "2", *many)
    assert one.returncode == 2, one.stderr  # the hostile wheels are errors
    assert (two.returncode, two.stdout) == (one.returncode, one.stdout)
    assert "Traceback" not in two.stderr
    assert len(one.stdout.splitlines()) >= len(many)
    if fmt[0] == "--format":
        assert [r["path"] for r in records(two.stdout)] == many


def test_one_job_or_one_wheel_starts_no_process(
    scenarios: list[Scenario], monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing.process

    def refuse(self: object) -> None:
        raise AssertionError("a process was started")

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    ok = next(s for s in scenarios if s.name == "ok" and s.arch == "x86_64")
    bad = next(s for s in scenarios if s.name == "symbol-version" and s.arch == "x86_64")
    r = run("--engine", ENGINE, "--jobs", "1", str(ok.path), str(bad.path))
    assert (r.returncode, len(r.stdout.splitlines())) == (1, 2), r.stderr
    r = run("--engine", ENGINE, "--jobs", "8", str(bad.path))  # one wheel: jobs do not matter
    assert (r.returncode, len(r.stdout.splitlines())) == (1, 1), r.stderr
    with pytest.raises(AssertionError, match="a process was started"):
        run("--engine", ENGINE, "--jobs", "2", str(ok.path), str(bad.path))


def test_the_first_wheel_is_printed_first_even_when_it_is_the_slowest(
    many: list[str], tmp_path: Path
) -> None:
    slow = tmp_path / "slowpoke-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    shutil.copy(many[0], slow)
    given = [str(slow), *many[1:12]]
    expected = run_process("--engine", ENGINE, "--format", "json", "--jobs", "1", *given)
    t0 = time.monotonic()
    slowly = {"WHEELSCAN_TEST_HANG": "slowpoke", "WHEELSCAN_TEST_HANG_S": "3"}
    r = run_process("--engine", ENGINE, "--format", "json", "--jobs", "2", *given, env=slowly)
    assert time.monotonic() - t0 >= 3  # its worker did wait on it
    assert (r.returncode, r.stdout) == (expected.returncode, expected.stdout), r.stderr
    assert [rec["path"] for rec in records(r.stdout)] == given


def test_a_worker_killed_on_a_wheel_costs_that_wheel_only(many: list[str], tmp_path: Path
                                                          ) -> None:  # fmt: skip
    proc, victim, worker = start_hung(tmp_path, many[0], "--format", "json", "--jobs", "2",
                                      *many[:5], "{victim}", *many[5:10])  # fmt: skip
    given = [*many[:5], str(victim), *many[5:10]]
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    recs = records(out)
    assert [rec["path"] for rec in recs] == given
    lost = recs.pop(5)
    assert (lost["wheel"], lost["status"]) == (victim.name, "error")
    assert "SIGKILL" in lost["error"]
    others = run_process("--engine", ENGINE, "--format", "json", "--jobs", "1",
                         *given[:5], *given[6:])  # fmt: skip
    assert recs == records(others.stdout)


def test_ctrl_c_stops_the_workers_without_a_traceback(many: list[str], tmp_path: Path) -> None:
    proc, _, worker = start_hung(tmp_path, many[0], "--jobs", "2", "{victim}", *many[:6])
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err == "wheelscan check: interrupted\n"
    assert out == ""  # the first wheel given never finished: nothing after it is printed
    assert gone(worker)


def test_a_worker_is_a_fork_that_dies_with_the_main_process(many: list[str], tmp_path: Path
                                                            ) -> None:  # fmt: skip
    """check's workers are forks of it (no interpreter start-up each), still tied to it by
    PR_SET_PDEATHSIG: a kill -9 of the main process leaves no worker hung on a wheel."""
    proc, _, worker = start_hung(tmp_path, many[0], "--jobs", "2", "{victim}", *many[:6])
    stat = Path(f"/proc/{worker}/stat").read_text()
    assert int(stat.rsplit(")", 1)[1].split()[1]) == proc.pid  # its parent: the main process
    # a fork runs the main process's command line; a spawned worker, multiprocessing's own
    cmdline = Path(f"/proc/{worker}/cmdline").read_bytes()
    assert cmdline == Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while not gone(worker):
        assert time.monotonic() < deadline, "worker outlived a kill -9 of the main process"
        time.sleep(0.05)


def test_a_worker_crashing_on_a_wheel_names_that_wheel(many: list[str], tmp_path: Path
                                                       ) -> None:  # fmt: skip
    """A native crash (SIGSEGV) in a forked worker is that wheel's error line, in its place;
    every other wheel is printed as one at a time prints it."""
    proc, victim, worker = start_hung(tmp_path, many[0], "--jobs", "2",
                                      *many[:4], "{victim}", *many[4:9])  # fmt: skip
    given = [*many[:4], str(victim), *many[4:9]]
    os.kill(worker, signal.SIGSEGV)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert lines[4] == (f"ERROR       {victim.name}: no platform tag (worker process died "
                        "with SIGSEGV while scanning this wheel)")  # fmt: skip
    others = run_process("--engine", ENGINE, "--jobs", "1", *given[:4], *given[5:])
    assert lines[:4] + lines[5:] == others.stdout.splitlines()
