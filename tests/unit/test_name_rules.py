"""The native scanner applies the member-name rules in C while it walks the central directory,
and parses common wheel filenames and WHEEL files without packaging or Python string methods.
Each must give exactly the answers of its Python reference (``members.may_be_binary``,
``wheelinfo.find_wheel_file``, packaging's ``parse_wheel_filename`` and wheelinfo's own
WHEEL-file loop): hypothesis searches for a name or a file on which they differ.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from conftest import native_engine_error, require
from helpers.builders import ZipMember, write_zip
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

from wheelscan.facts import WheelFacts
from wheelscan.read import wheelinfo
from wheelscan.read.members import _NOT_BINARY_SUFFIXES, may_be_binary
from wheelscan.read.wheelinfo import (
    _SIMPLE_WHEEL,
    fill_filename_facts,
    fill_wheel_file_facts,
    find_wheel_file,
)

try:
    from wheelscan._native import wheelmeta
except ImportError:  # the Python paths are still compared with packaging
    wheelmeta = None  # type: ignore[assignment]

# Pieces that make the rules' corner cases likely: directory separators, the .dist-info
# level, WHEEL/RECORD, listed suffixes in any case, and characters whose lower() is ASCII
# (KELVIN SIGN -> "k") or longer than themselves (DOTTED CAPITAL I -> "i" + combining dot).
_PIECES = st.sampled_from(
    [
        "/", ".", "a", "lib", "x.dist-info", ".dist-info", "dist-info", "WHEEL", "RECORD",
        "wheel", "so", ".so.1", "K", "\u212a", "\u0130", "\u00e9", "\u2603", "_", "-", "1",
        *sorted(_NOT_BINARY_SUFFIXES), *(s.upper() for s in sorted(_NOT_BINARY_SUFFIXES)),
        ".CMA\u212aE", ".P\u0130", ".toolongsuffix",
    ]
)  # fmt: skip
_NAMES = st.lists(_PIECES, min_size=1, max_size=6).map("".join)


@pytest.fixture(scope="module")
def zipread() -> object:
    require(native_engine_error())
    from wheelscan._native import zipread

    return zipread


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    members=st.lists(
        st.tuples(_NAMES, st.integers(0, 6), st.sampled_from([0, 0x800])), min_size=1, max_size=12
    )
)
@example(members=[("pkg-1.0.dist-info/WHEEL", 5, 0x800), ("pkg-1.0.dist-info/RECORD", 5, 0)])
@example(members=[("a/b.CMA\u212aE", 6, 0x800), ("lib.P\u0130", 6, 0x800), (".hidden", 6, 0)])
@example(members=[("x.dist-info/sub/lib.so", 6, 0x800), ("x.dist-info/", 0, 0)])
def test_directory_walk_applies_the_python_name_rules(
    zipread: object, tmp_path: Path, members: list[tuple[str, int, int]]
) -> None:
    path = write_zip(
        tmp_path / "names.zip",
        [ZipMember(name, b"\x7fELF\0\0"[:size], "stored", flags) for name, size, flags in members],
    )
    arc = zipread.Archive(path)  # type: ignore[attr-defined]
    assert arc.read_directory() == len(members)
    entries = arc.entries
    # the names as the archive decoded them (CP437 without bit 11): the rules apply to those
    expected = [i for i, e in enumerate(entries) if may_be_binary(e[0], e[4])]
    assert arc.candidates == expected
    wheel, has_record = find_wheel_file(arc.names)
    assert (arc.names[arc.wheel_index] if arc.wheel_index >= 0 else None) == wheel
    assert arc.has_record == has_record
    arc.close()


def _reference(fn: str) -> tuple[WheelFacts, frozenset[Tag] | None]:
    """What packaging alone makes of ``fn``: name, version, build or the error, and its tags."""
    ref = WheelFacts(filename=fn)
    try:
        name, version, build, tags = parse_wheel_filename(fn)
    except Exception as e:
        ref.filename_error = str(e)
        return ref, None
    ref.name, ref.version = str(name), str(version)
    ref.build = f"{build[0]}{build[1]}" if build else None
    return ref, tags


def _assert_like_packaging(facts: WheelFacts, fn: str) -> None:
    ref, tags = _reference(fn)
    assert (facts.name, facts.version, facts.build) == (ref.name, ref.version, ref.build)
    assert (facts.filename_error is None) == (ref.filename_error is None)
    sets = (facts.python_tags, facts.abi_tags, facts.platform_tags)
    if tags is None:
        assert sets == ([], [], [])
        return
    # the compressed tag sets expand to packaging's tags, and are kept as written
    assert {Tag(i, a, p) for i in sets[0] for a in sets[1] for p in sets[2]} == tags
    assert fn.endswith("-" + "-".join(".".join(t) for t in sets) + ".whl")


_VERSION = st.lists(
    st.sampled_from(
        ["0", "1", "01", "10", ".", "a", "b", "rc", "c", "alpha", "post", ".post", "-post",
         ".dev", "dev", "!", "+", "local", "v", "_", "2", "9", "9" * 18, "9" * 19]
    ),
    min_size=1,
    max_size=6,
).map("".join)  # fmt: skip
_NAME = st.lists(
    st.sampled_from(["Mark", "up", "Safe", "_", "__", ".", "-", "9", "\u00e9", "a"]),
    min_size=0,
    max_size=4,
).map("".join)
_BUILD = st.one_of(
    st.just(""),
    st.sampled_from(
        ["1", "01", "2abc", "x1", "", "1a\nb", "9" * 19, "0" * 18 + "1", "0" * 19, "0x"]
    ).map(lambda b: b + "-"),
)
_TAGS = st.sampled_from(
    ["cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64", "py3-none-any", "py2.py3-none-any",
     "cp39-abi3-musllinux_1_1_aarch64", "--", "cp311-cp311",
     # packaging releases differ on these: empty members, non-identifier interpreters
     "py3.-none-any", ".py3-none-any", "py3-none.-any", "py3-none-any.", "3py-none-any",
     "py3-non e-any", "py-3-none-any", "py3-none-any.linux_x86_64", "py\u00e9-none-any"]
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(
    name=_NAME, version=_VERSION, build=_BUILD, tags=_TAGS, ext=st.sampled_from([".whl", ".zip"])
)
@example(name="crc32c", version="2.3.post0", build="", tags="py3-none-any", ext=".whl")
@example(
    name="Foo.Bar_baz", version="1!2.0rc1.post3.dev4", build="7x-", tags="py3-none-any", ext=".whl"
)
@example(name="foo", version="1.01", build="", tags="py3-none-any", ext=".whl")
@example(name="foo__bar", version="1.0", build="", tags="py3-none-any", ext=".whl")
@example(name="Mark", version="0", build="", tags="--", ext=".whl")  # packaging 26.3 rejects
@example(name="foo", version="1.0", build="1a\nb-", tags="py3-none-any", ext=".whl")
@example(name="foo", version="1." + "9" * 5000, build="", tags="py3-none-any", ext=".whl")
@example(name="foo", version="1.0", build="9" * 30 + "-", tags="py3-none-any", ext=".whl")
@example(name="foo", version="1.0", build="0" * 18 + "1-", tags="py3-none-any", ext=".whl")
@example(name="foo", version="1.0", build="007x-", tags="py3-none-any", ext=".whl")
@example(name="foo", version="0!1.0", build="", tags="py3-none-any", ext=".whl")
@example(name="foo", version="00!1.0", build="", tags="py3-none-any", ext=".whl")
def test_filename_fast_path_equals_packaging(
    name: str, version: str, build: str, tags: str, ext: str
) -> None:
    """The regular expression (Python) and the C path (when built) agree with packaging."""
    fn = f"{name}-{version}-{build}{tags}{ext}"
    python = WheelFacts(filename=fn)
    with mock.patch.object(wheelinfo, "_split_filename", None):
        fill_filename_facts(python)
    _assert_like_packaging(python, fn)
    if wheelmeta is not None:  # test_fast_paths_are_built makes its absence fail in CI
        native = WheelFacts(filename=fn)
        fill_filename_facts(native)
        _assert_like_packaging(native, fn)
        # the C path takes exactly the names the expression takes
        m = _SIMPLE_WHEEL.fullmatch(fn)
        taken = m is not None and "__" not in m["name"]
        assert (wheelmeta.split_filename(fn) is not None) == taken


_COMMON = [
    "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "crc32c-2.3.post0-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.whl",
    "opencv_python_headless-4.8.1.78-cp37-abi3-musllinux_1_1_x86_64.whl",
    "tensorflow-1.13.1-cp37-cp37m-manylinux1_x86_64.whl",
    "pkg-1.0rc1-1-py3-none-any.whl",
]


def test_fast_paths_are_built() -> None:
    require(native_engine_error())
    assert wheelmeta is not None


def test_fast_path_covers_common_filenames() -> None:
    """The fast paths are only worth having if ordinary index filenames take them."""
    for fn in _COMMON:
        assert _SIMPLE_WHEEL.fullmatch(fn), fn
        if wheelmeta is not None:
            assert wheelmeta.split_filename(fn) is not None, fn


def test_odd_filename_objects() -> None:
    """A str subclass (numpy.str_ is one) is a filename like any other; None is refused
    before C reads it."""

    class Name(str):
        pass

    fn = _COMMON[0]
    plain, sub = WheelFacts(filename=fn), WheelFacts(filename=Name(fn))
    fill_filename_facts(plain)
    fill_filename_facts(sub)
    assert (sub.name, sub.version, sub.platform_tags) == (plain.name, plain.version,
                                                          plain.platform_tags)
    assert plain.name == "markupsafe"
    if wheelmeta is not None:
        with pytest.raises(TypeError):
            wheelmeta.split_filename(None)  # type: ignore[arg-type]


# Pieces of WHEEL files: the keys in any case, every ASCII character str.splitlines ends a
# line at or str.strip removes, and non-ASCII ones that end lines (NEL, LINE SEPARATOR), lower
# to several characters (DOTTED CAPITAL I) or decode with replacements (a lone byte).
_WHEEL_PIECES = st.sampled_from(
    [
        "Tag", "tag", "TAG", "T\u0130g", "Root-Is-Purelib", "root-is-purelib", "ROOT-IS-PURELIB",
        ":", ": ", " ", "\t", "\x1f", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r", "\n",
        "\r\n", "\x00", "true", "True", "TRUE", "false", "tru", "cp311-cp311-linux_x86_64",
        "py3-none-any", "Wheel-Version: 1.0", "\u0085", "\u2028", "\u00e9", "\udcff",
    ]
)  # fmt: skip


@settings(max_examples=2000, deadline=None)
@given(pieces=st.lists(_WHEEL_PIECES, max_size=14))
@example(pieces=["Tag", ":", " ", "a", "\x1f", "\r\n", "root-is-purelib", ":", "TRUE", "\x0b"])
@example(pieces=[])
def test_wheel_file_fast_path_equals_python(pieces: list[str]) -> None:
    if wheelmeta is None:  # test_fast_paths_are_built makes its absence fail in CI
        pytest.skip("wheelscan._native.wheelmeta is not built: no C path to compare")
    content = "".join(pieces).encode("utf-8", "surrogateescape")
    got = WheelFacts(filename="x")
    fill_wheel_file_facts(got, content)
    python = WheelFacts(filename="x")
    with mock.patch.object(wheelinfo, "_wheel_fields", None):
        fill_wheel_file_facts(python, content)
    assert (got.wheel_tags, got.root_is_purelib) == (python.wheel_tags, python.root_is_purelib)
    assert (wheelmeta.wheel_fields(content) is None) == (not content.isascii())
