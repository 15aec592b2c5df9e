"""``--verify-record``: each member's hash and size against RECORD, the bytes zipfile extracts.

Wheels are written by the test builders (RECORD with sha256 of every file), then altered:
a member's bytes, a RECORD row, a file added or removed. The expectation is computed here
with hashlib from the bytes put in, never from wheelscan's own reading.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.builders import Import, build_elf, build_stub, have, make_wheel
from helpers.stored import stored_facts

from wheelscan import judge, scan_wheel
from wheelscan.cli.scan import ScanTarget, Scheduling, run_scan
from wheelscan.mirror.pool import ScanConfig

NAME = "rec-1.0-py3-none-manylinux_2_17_x86_64.whl"
FILES = {"rec/__init__.py": b"x = 1\n", "rec/data.bin": b"\x00" * 5000}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None],
             add: dict[str, bytes] | None = None) -> Path:  # fmt: skip
    """A copy of ``src`` with members replaced (None: removed) and others added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = change.get(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


@pytest.fixture(scope="module")
def so(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if not have("gcc"):
        pytest.skip("no gcc")
    d = tmp_path_factory.mktemp("rec")
    libc = build_stub(d, "libc.so.6", {"GLIBC_2.2.5": ["malloc"]})
    return build_elf(d, "_x.so", "int f(void) { return 1; }\n",
                     imports=[Import("malloc", libc)]).read_bytes()  # fmt: skip


@pytest.fixture
def wheel(tmp_path: Path, so: bytes) -> Path:
    return make_wheel(tmp_path / "w", NAME, {**FILES, "rec/_x.so": so})


def _record(w: Path) -> bytes:
    with zipfile.ZipFile(w) as zf:
        return zf.read("rec-1.0.dist-info/RECORD")


@pytest.mark.parametrize("engine", ["native", "lief"])
def test_a_wheel_that_matches_its_record(wheel: Path, engine: str) -> None:
    f = scan_wheel(wheel, engine=engine, verify_record=True)
    assert f.record == []
    assert scan_wheel(wheel, engine=engine).record is None  # not asked: not verified
    assert not [x for x in judge(f).findings if x.kind == "record-mismatch"]


def test_changed_bytes_unlisted_and_missing_files(wheel: Path, tmp_path: Path) -> None:
    evil = b"x = 2\n"
    record = _record(wheel).replace(b"rec/data.bin,", b"rec/gone.bin,")
    w = _rewrite(wheel, tmp_path / NAME, {"rec/__init__.py": evil,
                                          "rec-1.0.dist-info/RECORD": record},
                 add={"rec/extra.txt": b"hello"})  # fmt: skip
    f = scan_wheel(w, verify_record=True)
    assert f.record is not None
    text = "\n".join(f.record)
    want = _b64(FILES["rec/__init__.py"])
    assert f"'rec/__init__.py': sha256 is {_b64(evil)}, RECORD says {want}" in text
    assert "'rec/data.bin' is not listed in RECORD" in text
    assert "'rec/extra.txt' is not listed in RECORD" in text
    assert "'rec/gone.bin' is listed in RECORD but not in the wheel" in text
    v = judge(f)
    assert v.status == "ok"  # warnings: the tag is not what is wrong
    assert len([x for x in v.findings if x.kind == "record-mismatch"]) == len(f.record)
    assert judge(f, strict=True).status == "mislabelled"


def test_size_weak_hash_and_missing_hash(wheel: Path, tmp_path: Path) -> None:
    data = FILES["rec/data.bin"]
    record = _record(wheel).decode()
    record = record.replace(f"rec/data.bin,sha256={_b64(data)},{len(data)}",
                            f"rec/data.bin,sha256={_b64(data)},{len(data) + 1}")
    md5 = base64.urlsafe_b64encode(hashlib.md5(b"x = 1\n").digest()).rstrip(b"=").decode()
    record = record.replace(f"rec/__init__.py,sha256={_b64(FILES['rec/__init__.py'])}",
                            f"rec/__init__.py,md5={md5}")
    record = record.replace("rec-1.0.dist-info/METADATA,sha256=", "rec-1.0.dist-info/METADATA,x")
    w = _rewrite(wheel, tmp_path / NAME, {"rec-1.0.dist-info/RECORD": record.encode()})
    text = "\n".join(scan_wheel(w, verify_record=True).record or [])
    assert f"'rec/data.bin': {len(data)} bytes, RECORD says {len(data) + 1}" in text
    assert "hashes 'rec/__init__.py' with 'md5'" in text
    assert "with 'x" in text  # not an algorithm at all


def test_the_copy_zipfile_extracts_is_hashed(wheel: Path, tmp_path: Path) -> None:
    """Two copies of a member: RECORD matching the first copy is a mismatch (pip installs
    the last)."""
    w = tmp_path / NAME
    w.write_bytes(wheel.read_bytes())
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(w, "a") as zf:
        zf.writestr("rec/__init__.py", b"x = 3\n")
    with zipfile.ZipFile(w) as zf:
        assert zf.read("rec/__init__.py") == b"x = 3\n"
    text = "\n".join(scan_wheel(w, verify_record=True).record or [])
    assert f"sha256 is {_b64(b'x = 3' + bytes([10]))}" in text


def test_no_record(tmp_path: Path) -> None:
    w = make_wheel(tmp_path, NAME, FILES, record=False)
    assert scan_wheel(w, verify_record=True).record == ["rec-1.0.dist-info/RECORD is missing"]


def test_check_flag_and_exit_status(wheel: Path, tmp_path: Path) -> None:
    w = _rewrite(wheel, tmp_path / NAME, {"rec/__init__.py": b"x = 9\n"})
    run = [sys.executable, "-m", "wheelscan", "check", "--format", "json", str(w)]
    plain = subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)
    assert "record-mismatch" not in plain.stdout
    r = subprocess.run([*run, "--verify-record"], capture_output=True, text=True, timeout=60,
                       check=False)  # fmt: skip
    kinds = [x["kind"] for x in json.loads(r.stdout)["findings"]]
    assert "record-mismatch" in kinds, r.stdout
    assert r.returncode == 0
    strict = subprocess.run([*run, "--verify-record", "--strict"], capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert strict.returncode == 1, strict.stdout


def test_scan_verifies_and_resume_knows_what_was_verified(wheel: Path, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    bad = _rewrite(wheel, tmp_path / "src" / NAME.replace("rec-1.0", "rec-1.1"),
                   {"rec/__init__.py": b"x = 9\n"})  # fmt: skip
    (tmp_path / "src" / NAME).write_bytes(wheel.read_bytes())
    db = str(tmp_path / "s.sqlite")
    target, one = ScanTarget([str(tmp_path / "src")], db), Scheduling(jobs=1)
    verify = ScanConfig(verify_record=True)
    first = run_scan(target, scheduling=one)
    assert first.scanned == 2
    again = run_scan(target, config=verify, scheduling=one)
    assert (again.scanned, again.unchanged) == (2, 0)  # stored facts had not verified RECORD
    third = run_scan(target, config=verify, scheduling=one)
    assert (third.scanned, third.unchanged) == (0, 2)
    rows = stored_facts(db)
    assert rows[NAME]["record"] == []  # type: ignore[index]
    assert "'rec/__init__.py': sha256 is" in rows[bad.name]["record"][0]  # type: ignore[index]
