"""The public API: wheelscan.scan_wheel on paths and file objects, engine choice, and the JSON
contract of WheelFacts (to_dict / from_dict round trip, JSON serialisable), for both engines.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import native_engine_error, require
from helpers.corpus import corpus_wheel

import wheelscan
from wheelscan.environment import environment
from wheelscan.facts import FACTS_SCHEMA_VERSION, WheelFacts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from helpers.corpus import Corpus

ENGINES = ["native", "lief"]


@pytest.fixture(params=ENGINES, ids=[f"{e}-engine" for e in ENGINES])
def engine(request: pytest.FixtureRequest) -> str:
    if request.param == "native":
        require(native_engine_error())
    return str(request.param)


def test_public_names() -> None:
    assert set(wheelscan.ENGINES) == {"native", "lief"}
    assert callable(wheelscan.scan_wheel)
    assert wheelscan.WheelFacts is WheelFacts


@pytest.mark.parametrize("wheel_id", ["x86_64-zstd", "s390x-deflate-zip64", "pure-any"])
def test_path_str_and_file_objects_agree(corpus: Corpus, engine: str, wheel_id: str) -> None:
    w = corpus_wheel(corpus, wheel_id)
    by_path = wheelscan.scan_wheel(w.path, engine=engine)
    assert by_path.engine == engine
    assert by_path.error is None
    assert by_path.filename == w.path.name
    assert wheelscan.scan_wheel(str(w.path), engine=engine) == by_path
    with w.path.open("rb") as fh:
        assert wheelscan.scan_wheel(fh, engine=engine) == by_path  # name from fh.name
    data = w.path.read_bytes()
    in_memory = wheelscan.scan_wheel(io.BytesIO(data), engine=engine, filename=w.path.name)
    assert _without_byte_counts(in_memory) == _without_byte_counts(by_path)
    assert len(by_path.elfs) == len(w.elfs)


class _PathLike:
    """An os.PathLike that is no pathlib.Path, giving its path as ``str`` or ``bytes``."""

    def __init__(self, path: str | bytes) -> None:
        self.path = path

    def __fspath__(self) -> str | bytes:
        return self.path


def test_any_path_like_is_a_path(corpus: Corpus, engine: str, tmp_path: Path) -> None:
    w = corpus_wheel(corpus, "x86_64-deflate")
    by_path = wheelscan.scan_wheel(w.path, engine=engine)
    assert by_path.error is None
    assert wheelscan.scan_wheel(_PathLike(str(w.path)), engine=engine) == by_path
    # a bytes path, even one that is not UTF-8, names the file and gives a str name
    odd = tmp_path / os.fsdecode(b"dir-\xff")
    odd.mkdir()
    copy = odd / w.path.name
    copy.write_bytes(w.path.read_bytes())
    via_bytes = wheelscan.scan_wheel(_PathLike(os.fsencode(copy)), engine=engine)
    assert via_bytes == by_path
    assert via_bytes.filename == w.path.name
    # os.PathLike's own test: a class whose __fspath__ is None is no path (here, a stream)
    stream = _NotAPath(w.path.read_bytes())
    via_stream = wheelscan.scan_wheel(stream, engine=engine, filename=w.path.name)
    assert _without_byte_counts(via_stream) == _without_byte_counts(by_path)


class _NotAPath(io.BytesIO):
    __fspath__ = None


def test_a_path_with_a_nul_is_refused_not_truncated(corpus: Corpus, engine: str) -> None:
    # open(2) would stop at the NUL and read the wheel named by the part before it
    w = corpus_wheel(corpus, "x86_64-deflate")
    with pytest.raises(ValueError, match="null byte"):
        wheelscan.scan_wheel(f"{w.path}\0-1.0-py3-none-any.whl", engine=engine)


def _without_byte_counts(facts: WheelFacts) -> dict[str, object]:
    """Facts minus read/inflated, which may differ between an mmap and a stream source."""
    d = facts.to_dict()
    for m in d["members"]:
        m["read"] = m["inflated"] = 0
    return d


def test_filename_override_and_anonymous_stream(corpus: Corpus, engine: str) -> None:
    w = corpus_wheel(corpus, "x86_64-deflate")
    renamed = wheelscan.scan_wheel(w.path, engine=engine, filename="other-2.0-py3-none-any.whl")
    assert renamed.filename == "other-2.0-py3-none-any.whl"
    assert (renamed.name, renamed.version, renamed.platform_tags) == ("other", "2.0", ["any"])
    anonymous = wheelscan.scan_wheel(io.BytesIO(w.path.read_bytes()), engine=engine)
    assert anonymous.filename.endswith(".whl")
    assert anonymous.filename_error is not None  # "<stream>.whl" is no wheel name
    assert len(anonymous.elfs) == len(w.elfs)  # the contents are still scanned


@pytest.mark.parametrize("wheel_id", ["x86_64-deflate", "i686-deflate", "musl-deflate"])
def test_json_round_trip(corpus: Corpus, engine: str, wheel_id: str) -> None:
    w = corpus_wheel(corpus, wheel_id)
    facts = wheelscan.scan_wheel(w.path, engine=engine)
    text = json.dumps(facts.to_dict(), sort_keys=True)
    back = WheelFacts.from_dict(json.loads(text))
    assert back == facts
    assert back.to_dict() == facts.to_dict()
    assert json.loads(text)["schema"] == FACTS_SCHEMA_VERSION
    # nested objects come back as dataclasses, not dicts
    assert all(type(e).__name__ == "ElfFacts" for e in back.elfs)
    assert all(type(g).__name__ == "SymbolGroup" for e in back.elfs for g in e.imports)


def test_bad_input_is_facts_not_exceptions(tmp_path: Path, engine: str) -> None:
    junk = tmp_path / "junk-1.0-py3-none-any.whl"
    junk.write_bytes(b"this is not a zip archive at all" * 10)
    facts = wheelscan.scan_wheel(junk, engine=engine)
    assert facts.error
    assert json.loads(json.dumps(facts.to_dict()))["error"] == facts.error


@pytest.fixture
def fresh_environment() -> Iterator[None]:
    """WHEELSCAN_ENGINE is read once per process: read it again before and after the test."""
    environment.cache_clear()
    yield
    environment.cache_clear()


def test_unknown_engine_and_env_default(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch, fresh_environment: None
) -> None:
    w = corpus_wheel(corpus, "pure-any")
    with pytest.raises(ValueError, match="unknown engine"):
        wheelscan.scan_wheel(w.path, engine="fortran")
    monkeypatch.setenv("WHEELSCAN_ENGINE", "lief")
    assert wheelscan.scan_wheel(w.path).engine == "lief"
    monkeypatch.setenv("WHEELSCAN_ENGINE", "fortran")
    assert wheelscan.scan_wheel(w.path).engine == "lief"  # read once: the first value holds
    environment.cache_clear()
    with pytest.raises(ImportError, match="WHEELSCAN_ENGINE"):
        wheelscan.scan_wheel(w.path)
    with pytest.raises(ImportError, match="WHEELSCAN_ENGINE"):
        wheelscan.scan_wheel(w.path)  # a bad value is not remembered as a choice
    monkeypatch.delenv("WHEELSCAN_ENGINE")
    environment.cache_clear()
    if native_engine_error() is None:
        assert wheelscan.scan_wheel(w.path).engine == "native"
    assert os.environ.get("WHEELSCAN_ENGINE") is None


def test_env_engine_set_before_the_first_scan(corpus: Corpus) -> None:
    """A process started with WHEELSCAN_ENGINE uses it; setting it in the process before its
    first scan works too."""
    w = corpus_wheel(corpus, "pure-any")
    code = (
        "import os, sys, wheelscan\n"
        "if len(sys.argv) > 2: os.environ['WHEELSCAN_ENGINE'] = sys.argv[2]\n"
        "print(wheelscan.scan_wheel(sys.argv[1]).engine)\n"
    )
    base = {k: v for k, v in os.environ.items() if k != "WHEELSCAN_ENGINE"}
    started = subprocess.run([sys.executable, "-c", code, str(w.path)], check=True, text=True,
                             env={**base, "WHEELSCAN_ENGINE": "lief"}, capture_output=True)
    set_later = subprocess.run([sys.executable, "-c", code, str(w.path), "lief"], check=True,
                               text=True, env=base, capture_output=True)
    assert started.stdout.strip() == set_later.stdout.strip() == "lief"


@pytest.mark.parametrize("inflater", ["zlib", None])
def test_version_names_the_inflater_scans_use(inflater: str | None) -> None:
    """`wheelscan --version` says which deflate implementation a scan will use, and which the
    build offers: whether libisal is built for and loaded decides much of the speed."""
    import subprocess
    import sys

    require(native_engine_error())
    from wheelscan._native import inflate

    env = {k: v for k, v in os.environ.items() if k != "WHEELSCAN_INFLATER"}
    if inflater:
        env["WHEELSCAN_INFLATER"] = inflater
    out = subprocess.run([sys.executable, "-m", "wheelscan", "--version"], env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.startswith(f"wheelscan {wheelscan.__version__}; ")
    assert f"native inflater {inflater or inflate.INFLATERS[0]} " in out
    assert f"(built: {', '.join(inflate.INFLATERS)})" in out

