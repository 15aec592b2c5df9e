"""Session-wide fixtures: the compiled fixture corpus, and a guard against swallowed exceptions."""

from __future__ import annotations

import importlib
import shutil
from typing import TYPE_CHECKING, Any

import pytest
from helpers.corpus import Corpus, build_corpus, in_ci, missing_toolchains

# the native unit tests' session fixtures (gcc-built libraries), shared by three modules
from helpers.native import built, native_ready  # noqa: F401

from wheelscan.environment import environment

if TYPE_CHECKING:
    from collections.abc import Iterator


def native_engine_error() -> str | None:
    """Why the native engine cannot be imported, or None when it can."""
    try:
        importlib.import_module("wheelscan.read.native")
    except ImportError as e:
        return f"native engine not importable: {e}"
    return None


def require(reason: str | None) -> None:
    """Skip on a dev box, fail in CI (CI=true): a class of tests must never vanish silently."""
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str) -> Any:
    """The module, imported; else skip on a dev box and fail under CI=true (the test extras
    install it), as :func:`require` does for tools."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        require(f"{name} is not importable ({e}); pip install '.[test]'")
        raise  # unreachable: require() skipped or failed


def pytest_report_header(config: pytest.Config) -> list[str]:
    import lief

    lines = []
    native = native_engine_error()
    inflater = "n/a"
    if native is None:
        try:
            zipread = importlib.import_module("wheelscan._native.zipread")
            chosen = getattr(zipread, "inflater", "?")
            inflater = f"{chosen} of {getattr(zipread, 'INFLATERS', '?')}"
        except ImportError as e:
            inflater = f"unknown ({e})"
    lines.append(
        f"wheelscan engines: native={'yes' if native is None else native}; lief={lief.__version__}"
    )
    lines.append(f"wheelscan inflater: {inflater}")
    missing = missing_toolchains()
    from helpers.builders import COMPILERS, MUSL_CC

    present = [cc for cc in [*COMPILERS.values(), MUSL_CC, "g++"] if shutil.which(cc)]
    lines.append(f"wheelscan toolchains: {', '.join(present) or 'none'}")
    if missing:
        lines.append(f"wheelscan MISSING (those fixtures skip, or fail with CI=true): {missing}")
    return lines


@pytest.fixture(autouse=True)
def _environment_read_again() -> Iterator[None]:
    """wheelscan reads its environment once per process: a test that changed a variable
    (monkeypatch, undone before this runs) leaves no stale reading behind."""
    yield
    environment.cache_clear()


@pytest.fixture(autouse=True)
def _no_swallowed_exceptions(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test in which Cython (or any noexcept/callback code) printed 'Exception ignored'."""
    if {"capsys", "capsysbinary", "capfdbinary"} & set(request.fixturenames):
        yield  # pytest forbids two capture fixtures at once; those tests capture themselves
        return
    capfd = request.getfixturevalue("capfd")
    yield
    out, err = capfd.readouterr()
    assert "Exception ignored" not in err, f"an exception was swallowed:\n{err}"
    # hand the text back so pytest still shows it for failing tests
    print(out, end="")
    import sys

    print(err, end="", file=sys.stderr)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Every fixture wheel this machine can build, compiled once per session."""
    return build_corpus(tmp_path_factory.mktemp("corpus"))
