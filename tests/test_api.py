"""The public API: wheelscan.scan_wheel on paths and file objects, engine choice, and the JSON
contract of WheelFacts (to_dict / from_dict round trip, JSON serialisable), for both engines.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import native_engine_error, require
from test_differential import _corpus_wheel

import wheelscan
from wheelscan.facts import FACTS_SCHEMA_VERSION, WheelFacts

if TYPE_CHECKING:
    from corpus import Corpus

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
    w = _corpus_wheel(corpus, wheel_id)
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


def _without_byte_counts(facts: WheelFacts) -> dict[str, object]:
    """Facts minus read/inflated, which may differ between an mmap and a stream source."""
    d = facts.to_dict()
    for m in d["members"]:
        m["read"] = m["inflated"] = 0
    return d


def test_filename_override_and_anonymous_stream(corpus: Corpus, engine: str) -> None:
    w = _corpus_wheel(corpus, "x86_64-deflate")
    renamed = wheelscan.scan_wheel(w.path, engine=engine, filename="other-2.0-py3-none-any.whl")
    assert renamed.filename == "other-2.0-py3-none-any.whl"
    assert (renamed.name, renamed.version, renamed.platform_tags) == ("other", "2.0", ["any"])
    anonymous = wheelscan.scan_wheel(io.BytesIO(w.path.read_bytes()), engine=engine)
    assert anonymous.filename.endswith(".whl")
    assert anonymous.filename_error is not None  # "<stream>.whl" is no wheel name
    assert len(anonymous.elfs) == len(w.elfs)  # the contents are still scanned


@pytest.mark.parametrize("wheel_id", ["x86_64-deflate", "i686-deflate", "musl-deflate"])
def test_json_round_trip(corpus: Corpus, engine: str, wheel_id: str) -> None:
    w = _corpus_wheel(corpus, wheel_id)
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


def test_unknown_engine_and_env_default(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    w = _corpus_wheel(corpus, "pure-any")
    with pytest.raises(ValueError, match="unknown engine"):
        wheelscan.scan_wheel(w.path, engine="fortran")
    monkeypatch.setenv("WHEELSCAN_ENGINE", "lief")
    assert wheelscan.scan_wheel(w.path).engine == "lief"
    monkeypatch.setenv("WHEELSCAN_ENGINE", "fortran")
    with pytest.raises(ImportError, match="WHEELSCAN_ENGINE"):
        wheelscan.scan_wheel(w.path)
    monkeypatch.delenv("WHEELSCAN_ENGINE")
    if native_engine_error() is None:
        assert wheelscan.scan_wheel(w.path).engine == "native"
    assert os.environ.get("WHEELSCAN_ENGINE") is None


@pytest.mark.parametrize("inflater", ["zlib", None])
def test_version_names_the_inflater_scans_use(inflater: str | None) -> None:
    """`wheelscan --version` says which deflate implementation a scan will use, and which the
    build offers: whether libisal is built for and loaded decides much of the speed."""
    import subprocess
    import sys

    require(native_engine_error())
    from wheelscan._native import zipread

    env = {k: v for k, v in os.environ.items() if k != "WHEELSCAN_INFLATER"}
    if inflater:
        env["WHEELSCAN_INFLATER"] = inflater
    out = subprocess.run([sys.executable, "-m", "wheelscan", "--version"], env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.startswith(f"wheelscan {wheelscan.__version__}; ")
    assert f"native inflater {inflater or zipread.INFLATERS[0]} " in out
    assert f"(built: {', '.join(zipread.INFLATERS)})" in out

