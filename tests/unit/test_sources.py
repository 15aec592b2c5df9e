"""Sources: directory trees, bandersnatch mirrors, list files; streamed, filtered, counted."""

from __future__ import annotations

import io
import json
import os
from typing import TYPE_CHECKING

import pytest
from helpers.mirror import blake2b_256, to_bandersnatch

from wheelscan.mirror.sources import (
    Discovery,
    Filters,
    iter_bandersnatch,
    iter_source,
    iter_sources,
    iter_tree,
    parse_since,
)

if TYPE_CHECKING:
    from pathlib import Path

WHEELS = [
    "alpha-1.0-cp311-cp311-manylinux2014_x86_64.whl",
    "alpha-1.0-cp312-cp312-manylinux2014_x86_64.whl",
    "Beta_Pkg-2.0-py3-none-musllinux_1_2_aarch64.whl",
    "gamma-0.1-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
]


def _touch(path: Path, data: bytes = b"PK\x05\x06" + b"\0" * 18) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    _touch(root / WHEELS[0])
    _touch(root / "a" / WHEELS[1])
    _touch(root / "a" / "b" / WHEELS[2])
    _touch(root / "c" / WHEELS[3], b"x" * 1000)
    _touch(root / "a" / "alpha-1.0.tar.gz")
    _touch(root / "c" / "notes.txt")
    return root


def test_tree_finds_wheels_recursively_and_counts_the_rest(tree: Path) -> None:
    disc = Discovery()
    refs = list(iter_sources([str(tree)], disc))
    assert sorted(r.filename for r in refs) == sorted(WHEELS)
    assert disc.wheels == 4
    assert disc.non_wheels == 2
    assert disc.done
    for r in refs:
        st = os.stat(r.location)
        assert os.path.isabs(r.location)
        assert (r.size, r.mtime) == (st.st_size, st.st_mtime)
        assert r.content_hash is None  # a plain tree's path carries no digest
    by_name = {r.filename: r for r in refs}
    assert by_name[WHEELS[2]].project == "beta-pkg"  # canonical (PEP 503) name


def test_tree_streams(tmp_path: Path) -> None:
    for i in range(50):
        _touch(tmp_path / "flat" / f"p{i}-1.0-py3-none-any.whl")
    disc = Discovery()
    it = iter_tree(tmp_path / "flat", disc)
    next(it)
    assert disc.wheels == 1  # the first wheel is out before the directory is listed through
    assert len(list(it)) == 49


def test_filters(tree: Path) -> None:
    def names(f: Filters) -> list[str]:
        return sorted(r.filename for r in iter_sources([str(tree)], Discovery(), f))

    assert names(Filters(projects=frozenset({"beta-pkg"}))) == [WHEELS[2]]
    assert names(Filters(platforms=("musllinux_*",))) == [WHEELS[2]]
    # any of a compressed tag set matches
    assert names(Filters(platforms=("manylinux_2_17_*",))) == [WHEELS[3]]
    old = parse_since("2001-01-01")
    os.utime(tree / "c" / WHEELS[3], (old, old))
    assert WHEELS[3] not in names(Filters(since=parse_since("2020-01-01")))
    assert len(names(Filters(since=parse_since("2000-06-01T00:00:00Z")))) == 4
    disc = Discovery()
    list(iter_sources([str(tree)], disc, Filters(projects=frozenset({"alpha"}))))
    assert disc.filtered == 2


def test_parse_since_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since("last tuesday")
    assert parse_since("2024-01-31") == parse_since("2024-01-31T00:00:00Z")


def test_list_file_and_stdin(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    listing = f"# a comment\n\n{WHEELS[0]}\na/{WHEELS[1]}\nmissing-1.0-py3-none-any.whl\nREADME\n"
    lst = tmp_path / "list.txt"
    lst.write_text(listing)
    disc = Discovery()
    refs = list(iter_source(str(lst), disc))
    assert [r.filename for r in refs] == WHEELS[:2]  # in list order
    assert (disc.wheels, disc.missing, disc.non_wheels) == (2, 1, 1)
    disc = Discovery()
    refs = list(iter_sources(["-"], disc, stdin=io.StringIO(listing)))
    assert [r.location for r in refs] == [str(tree / WHEELS[0]), str(tree / "a" / WHEELS[1])]


def test_single_wheel_and_missing_source(tree: Path) -> None:
    refs = list(iter_source(str(tree / WHEELS[0]), Discovery()))
    assert [r.filename for r in refs] == [WHEELS[0]]
    with pytest.raises(FileNotFoundError):
        list(iter_source(str(tree / "nope"), Discovery()))


def test_bandersnatch_index(tmp_path: Path) -> None:
    src = tmp_path / "src"
    paths = [_touch(src / w, w.encode() * 3) for w in WHEELS]
    digests = {p.name: blake2b_256(p) for p in paths}
    mirror = tmp_path / "mirror"
    to_bandersnatch(
        mirror, paths,
        upload_times={WHEELS[1]: "2021-03-04T05:06:07.000000Z"},
        yanked=frozenset({WHEELS[0]}),
        extra_files={"alpha-1.0.tar.gz": b"sdist"},
    )  # fmt: skip
    # a file the index lists but the mirror lost, and an index that is not JSON
    idx = mirror / "web/simple/alpha/index.v1_json"
    doc = json.loads(idx.read_text())
    doc["files"].append({"filename": "alpha-0.9-py3-none-any.whl", "url": "../../x/y.whl"})
    idx.write_text(json.dumps(doc))
    _touch(mirror / "web/simple/broken/index.v1_json", b"{not json")
    disc = Discovery()
    refs = {r.filename: r for r in iter_source(str(mirror), disc)}
    assert set(refs) == set(WHEELS)
    assert (disc.missing, disc.non_wheels) == (1, 1)
    assert any("broken" in p and "unreadable" in p for p in disc.problems)
    for name, r in refs.items():
        assert r.content_hash == f"blake2b_256:{digests[name]}"  # from the packages/ path
        assert r.location.endswith(f"/{digests[name][4:]}/{name}")
    assert refs[WHEELS[1]].upload_time == "2021-03-04T05:06:07.000000Z"
    assert refs[WHEELS[0]].yanked is True
    assert refs[WHEELS[1]].yanked is False
    # --since goes by the index's upload time, not the file's mtime (which is "now")
    since = Filters(since=parse_since("2022-01-01"))
    assert WHEELS[1] not in {r.filename for r in iter_sources([str(mirror)], Discovery(), since)}


def test_bandersnatch_without_index_walks_packages(tmp_path: Path) -> None:
    paths = [_touch(tmp_path / "src" / w, w.encode()) for w in WHEELS]
    digests = {p.name: blake2b_256(p) for p in paths}
    to_bandersnatch(tmp_path / "m", paths, index=False)
    disc = Discovery()
    refs = list(iter_bandersnatch(tmp_path / "m", disc))
    assert {r.filename: r.content_hash for r in refs} == {
        n: f"blake2b_256:{d}" for n, d in digests.items()
    }
    assert all(r.upload_time is None and r.yanked is None for r in refs)


def test_platform_filters_see_tags_as_installers_do(tmp_path: Path) -> None:
    # pip lowercases tags, so a wheel tagged in capitals is a manylinux wheel all the same:
    # an audit filtered to manylinux must not let it through unscanned
    name = "loud-1.0-CP39-ABI3-MANYLINUX_2_17_X86_64.whl"
    _touch(tmp_path / name)
    got = [r.filename for r in iter_sources([str(tmp_path)], Discovery(),
                                            Filters(platforms=("manylinux_*",)))]
    assert got == [name]
