"""The store's read side for reports: typed rows under filters, the mirror-wide findings, and
the refusals of files it cannot read. Every store here is written through the writer's API
(``Store.record``) from rows the test makes, so each expectation is the test's construction."""

from __future__ import annotations

import json
import sqlite3
from calendar import timegm
from typing import TYPE_CHECKING, Any

import pytest

from wheelscan.facts import ElfFacts
from wheelscan.mirror.sources import WheelRef
from wheelscan.mirror.store import (
    STORE_SCHEMA_VERSION,
    Outcome,
    Store,
    StoreError,
    StoreReader,
    WheelFilter,
    WheelRow,
)

if TYPE_CHECKING:
    from pathlib import Path

ALL = WheelFilter()


def _epoch(y: int, m: int = 1, d: int = 1) -> float:
    return float(timegm((y, m, d, 0, 0, 0)))


def _verdict(wheel: str, status: str) -> str:
    return json.dumps({"schema_version": 1, "wheel": wheel, "status": status, "error": None,
                       "claims": [], "findings": []})  # fmt: skip


# (filename, project, status, upload time, mtime, yanked, error, verdict JSON)
WHEELS: list[tuple[str, str | None, str, str | None, float, bool | None, str | None, str | None]]
WHEELS = [
    ("alpha-1.0-cp311-cp311-manylinux1_x86_64.whl", "alpha", "mislabelled",
     "2021-05-01T00:00:00Z", _epoch(2021), False, None, "verdict"),
    ("alpha-1.1-cp311-cp311-manylinux2014_x86_64.whl", "alpha", "ok",
     "2023-02-01T00:00:00Z", _epoch(2020), True, None, "verdict"),
    ("beta-1.0-cp311-cp311-musllinux_1_1_x86_64.whl", "beta", "ok",
     None, _epoch(2024, 3), None, None, "verdict"),
    ("beta-2.0-py3-none-any.whl", "beta", "not-linux", None, _epoch(2019), None, None, "verdict"),
    ("gamma-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "gamma", "error",
     "2022-01-01T00:00:00Z", _epoch(2022), None, "worker died with SIGKILL", None),
    ("odd.whl", None, "mislabelled", None, _epoch(2025), None, None, "[1, 2]"),  # not an object
    ("delta-1.0-cp311-cp311-manylinux1_x86_64.whl", "delta", "ok",
     None, _epoch(2018), None, None, "not json"),
]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("reader") / "s.sqlite"
    with Store(str(db)) as st:
        for fn, project, status, upload, mtime, yanked, error, verdict in WHEELS:
            ref = WheelRef(location=f"/m/{fn}", filename=fn, size=1, mtime=mtime,
                           project=project, upload_time=upload, yanked=yanked)  # fmt: skip
            vj = _verdict(fn, status) if verdict == "verdict" else verdict
            st.record(ref, Outcome(ref.location, fn, status, error=error, verdict_json=vj))
    return db


def _names(rows: Any) -> list[str]:
    return [r.filename for r in rows]


def test_rows_are_typed_and_in_recording_order(store: Path) -> None:
    with StoreReader(store) as r:
        rows = list(r.wheels(ALL))
    assert _names(rows) == [w[0] for w in WHEELS]
    for row, (fn, project, status, upload, mtime, yanked, error, verdict) in zip(
        rows, WHEELS, strict=True
    ):
        assert isinstance(row, WheelRow)
        assert row.location == f"/m/{fn}"
        assert (row.project, row.status, row.upload_time, row.error) == (
            project, status, upload, error)  # fmt: skip
        assert row.yanked is yanked  # a bool (or None), not the stored integer
        assert row.mtime == mtime
        if verdict == "verdict":
            assert row.verdict == json.loads(_verdict(fn, status))
        else:  # no verdict, a JSON array, text that is not JSON: no verdict object
            assert row.verdict is None


def test_stored_verdict_text_is_passed_through(store: Path) -> None:
    with StoreReader(store) as r:
        texts = list(r.wheels_json(ALL))
        rows = list(r.wheels(ALL))
    assert _names(texts) == [w[0] for w in WHEELS]
    for t, (fn, _p, status, _u, _m, _y, _e, verdict) in zip(texts, WHEELS, strict=True):
        assert t.verdict_json == (_verdict(fn, status) if verdict == "verdict" else verdict)
    for t, row in zip(texts, rows, strict=True):
        d = t.decoded()
        assert d.mtime is None
        d.mtime = row.mtime
        assert d == row


def test_a_rerecorded_wheel_keeps_its_place(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    refs = [WheelRef(location=f"/m/{n}-1.0-py3-none-any.whl", filename=f"{n}-1.0-py3-none-any.whl",
                     size=1, mtime=0.0, project=n) for n in ("a", "b", "c")]  # fmt: skip
    with Store(str(db)) as st:
        for ref in refs:
            st.record(ref, Outcome(ref.location, ref.filename, "ok"))
        st.commit()
        st.record(refs[0], Outcome(refs[0].location, refs[0].filename, "error", error="again"))
    with StoreReader(db) as r:
        rows = list(r.wheels(ALL))
    assert [(x.project, x.status) for x in rows] == [("a", "error"), ("b", "ok"), ("c", "ok")]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (WheelFilter(projects=frozenset({"alpha", "gamma"})), [0, 1, 4]),
        (WheelFilter(statuses=frozenset({"ok", "error"})), [1, 2, 4, 6]),
        (WheelFilter(platforms=("manylinux1_*",)), [0, 6]),
        # any of a compressed tag set matches
        (WheelFilter(platforms=("manylinux2014_*",)), [1, 4]),
        (WheelFilter(platforms=("musllinux_*", "manylinux_2_17_*")), [2, 4]),
        # uploaded since, else (no upload time) modified since: alpha-1.1's old mtime is moot
        (WheelFilter(since=_epoch(2022, 6)), [1, 2, 5]),
        (WheelFilter(projects=frozenset({"alpha", "beta"}), statuses=frozenset({"ok"}),
                     platforms=("m*",), since=_epoch(2023)), [1, 2]),
        (WheelFilter(projects=frozenset({"nobody"})), []),
    ],
    ids=["projects", "statuses", "platform", "platform-compressed", "platforms", "since", "all",
         "none"],
)
def test_filters(store: Path, flt: WheelFilter, expected: list[int]) -> None:
    with StoreReader(store) as r:
        assert _names(r.wheels(flt)) == [WHEELS[i][0] for i in expected]
        assert _names(r.wheels_json(flt)) == [WHEELS[i][0] for i in expected]


def test_narrowing_adds_to_the_filter(store: Path) -> None:
    with StoreReader(store) as r:
        assert _names(r.wheels(ALL, status="mislabelled")) == [WHEELS[0][0], WHEELS[5][0]]
        assert _names(r.wheels(ALL, status="mislabelled", project="alpha")) == [WHEELS[0][0]]
        # both must hold: a status outside the filter's statuses selects nothing
        assert list(r.wheels(WheelFilter(statuses=frozenset({"ok"})), status="error")) == []
        # the stored name exactly: the name reports give a nameless wheel is no project
        assert list(r.wheels(ALL, project="(unparseable name)")) == []


def test_reads_with_different_filters_may_overlap(store: Path) -> None:
    many1 = WheelFilter(platforms=("manylinux1_*",))
    musl = WheelFilter(platforms=("musllinux_*",))
    with StoreReader(store) as r:
        a, b = r.wheels(many1), r.wheels(musl)
        first = next(a)
        assert _names(b) == [WHEELS[2][0]]
        assert [first.filename, *_names(a)] == [WHEELS[0][0], WHEELS[6][0]]


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such scan store"):
        StoreReader(tmp_path / "none.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database, it is a file of sixty-four bytes or so..")
    with pytest.raises(StoreError, match="not a wheelscan store"):
        StoreReader(junk)
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE wheels (id INTEGER)")
    con.commit()
    with pytest.raises(StoreError, match=r"no wheels/meta tables"):
        StoreReader(other)
    con.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    con.commit()
    with pytest.raises(StoreError, match="store schema None is not one"):
        StoreReader(other)
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=f"store schema {STORE_SCHEMA_VERSION + 1} is not one"):
        StoreReader(other)


# ---------------------------------------------------------------------------------------------
# Mirror-wide findings


def _elf(member: str, soname: str | None, needed: tuple[str, ...] = ("libc.so.6",)) -> Any:
    e = ElfFacts(member=member, elf_class=64, endian="little", osabi=0, e_type=3, machine=62,
                 e_flags=0, soname=soname, needed=list(needed))  # fmt: skip
    return json.loads(e.to_json())


def _facts(elfs: list[tuple[str, str | None, int]], crc: dict[str, int] | None = None,
           needed: tuple[str, ...] = ("libc.so.6",)) -> str:  # fmt: skip
    members = [{"member": m, "method": 8, "size": size, "compressed_size": size // 2}
               for m, _, size in elfs]  # fmt: skip
    for m in members:
        if crc and m["member"] in crc:
            m["crc32"] = crc[m["member"]]
    return json.dumps({"elfs": [_elf(m, so, needed) for m, so, _ in elfs], "members": members})


ODD = 'pkg.libs/we"ird\\ é.so'
ODD_SONAME = 'libwe"ird-é.so.1'


def _mirror(db: Path, wheels: list[tuple[str, str | None, str]]) -> None:
    with Store(str(db)) as st:
        for fn, project, facts in wheels:
            ref = WheelRef(location=f"/m/{fn}", filename=fn, size=1, mtime=0.0, project=project)
            st.record(ref, Outcome(ref.location, fn, "ok", facts_json=facts))


def test_mirror_findings_by_facts(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    ext = "pkg/_x.cpython-311-x86_64-linux-gnu.so"
    _mirror(db, [
        # libfoo: one content in a, b and a nameless wheel; another (size) in c
        ("a-1.0-cp311-cp311-linux_x86_64.whl", "a",
         _facts([("a.libs/libfoo.so.1", "libfoo.so.1", 100), (ext, "ext.so", 10)])),
        ("b-1.0-cp311-cp311-linux_x86_64.whl", "b",
         _facts([("b.libs/libfoo.so.1", "libfoo.so.1", 100), (ext, "ext.so", 20)])),
        ("c-1.0-cp311-cp311-linux_x86_64.whl", "c",
         _facts([("c.libs/libfoo.so.1", "libfoo.so.1", 200), (ODD, ODD_SONAME, 7)])),
        ("0nameless.whl", None, _facts([("z/libfoo.so.1", "libfoo.so.1", 100)])),
        # the odd name twice in d's two wheels (one project: no duplicate across projects),
        # with other facts than c's: a second variant of it
        ("d-1.0-cp311-cp311-linux_x86_64.whl", "d",
         _facts([(ODD, ODD_SONAME, 7)], needed=("libm.so.6",))),
        ("d-1.1-cp311-cp311-linux_x86_64.whl", "d",
         _facts([(ODD, ODD_SONAME, 7)], needed=("libm.so.6",))),
        # facts that are not JSON: skipped, the walk goes on
        ("e-1.0-cp311-cp311-linux_x86_64.whl", "e", '{"elfs": [{"member": "x.so", '),
        ("f-1.0-cp311-cp311-linux_x86_64.whl", "f",
         _facts([("f.libs/libfoo.so.1", "libfoo.so.1", 200)])),
    ])  # fmt: skip
    with StoreReader(db) as r:
        mf = r.mirror_findings(ALL, top=10)
    assert mf.identity == "facts"
    # Python extensions are no vendored library: ext.so (two sizes in two projects) is absent
    assert [(c.soname, c.variants, c.projects, c.wheels) for c in mf.conflicts] == [
        ("libfoo.so.1", 2, 4, 5), (ODD_SONAME, 2, 2, 3)]  # fmt: skip
    assert mf.conflicts_total == 2
    foo = mf.conflicts[0]
    # one example per variant (its least wheel name), by project, a nameless wheel's None first
    assert foo.examples == [
        (None, "0nameless.whl", 100), ("c", "c-1.0-cp311-cp311-linux_x86_64.whl", 200)]  # fmt: skip
    dup = {(d.member, d.size): d for d in mf.duplicates}
    assert set(dup) == {("a.libs/libfoo.so.1", 100), ("c.libs/libfoo.so.1", 200)}
    # the nameless wheel counts among the wheels, not among the projects
    foo100 = dup["a.libs/libfoo.so.1", 100]
    assert (foo100.wheels, foo100.projects, foo100.examples) == (3, 2, [None, "a", "b"])
    assert dup["c.libs/libfoo.so.1", 200].examples == ["c", "f"]
    assert mf.duplicates_total == 2
    # repeated: libfoo 100 (3 wheels), libfoo 200 (2), d's odd library (2)
    assert mf.repeated == (3, 2 + 1 + 1, 2 * 100 + 200 + 7)


def test_mirror_findings_by_crc_and_filter(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    lib = "libz.so.1"
    _mirror(db, [
        # equal facts and sizes, different CRC-32: different contents
        ("p-1.0-cp311-cp311-manylinux1_x86_64.whl", "p",
         _facts([("p.libs/libz.so.1", lib, 50)], crc={"p.libs/libz.so.1": 1})),
        ("q-1.0-cp311-cp311-manylinux1_x86_64.whl", "q",
         _facts([("q.libs/libz.so.1", lib, 50)], crc={"q.libs/libz.so.1": 2})),
        # same CRC-32 and size as q's but other facts: the same contents
        ("r-1.0-cp311-cp311-musllinux_1_1_x86_64.whl", "r",
         _facts([("r.libs/libz.so.1", lib, 50)], crc={"r.libs/libz.so.1": 2},
                needed=("libc.musl-x86_64.so.1",))),
    ])  # fmt: skip
    with StoreReader(db) as r:
        mf = r.mirror_findings(ALL)
        glibc = r.mirror_findings(WheelFilter(platforms=("manylinux*",)))
    assert mf.identity == "crc32"
    assert [(c.soname, c.variants, c.projects, c.wheels) for c in mf.conflicts] == [(lib, 2, 3, 3)]
    assert [(d.member, d.wheels, d.projects, d.examples) for d in mf.duplicates] == [
        ("q.libs/libz.so.1", 2, 2, ["q", "r"])]  # fmt: skip
    assert mf.repeated == (1, 1, 50)
    # the filter applies to the walk: without r, q's copy is alone
    assert [(c.variants, c.projects) for c in glibc.conflicts] == [(2, 2)]
    assert (glibc.duplicates_total, glibc.repeated) == (0, (0, 0, 0))


def test_identity_is_the_facts_without_the_path(tmp_path: Path) -> None:
    """Facts stored with other spacing, under another path, give one identity; array entries
    that are not objects (a damaged or foreign store) are passed over, not a crash."""
    db = tmp_path / "m.sqlite"
    lib = "libbar.so.2"
    spaced = json.dumps({"elfs": [_elf("s.libs/libbar.so.2", lib)],
                         "members": [{"member": "s.libs/libbar.so.2", "size": 64}]}, indent=1)
    odd = json.dumps({"elfs": ["t.libs/libbar.so.2", 3, None, [1], _elf("t/libbar.so.2", lib),
                               {"soname": lib}],
                      "members": [7, "x", {"member": "t/libbar.so.2", "size": 64}]})
    _mirror(db, [
        ("s-1.0-cp311-cp311-linux_x86_64.whl", "s", spaced),
        ("t-1.0-cp311-cp311-linux_x86_64.whl", "t", odd),
        ("u-1.0-cp311-cp311-linux_x86_64.whl", "u", _facts([("u.libs/libbar.so.2", lib, 64)])),
        # another needed library: other facts, another identity
        ("v-1.0-cp311-cp311-linux_x86_64.whl", "v",
         _facts([("v.libs/libbar.so.2", lib, 64)], needed=("libz.so.1",))),
    ])  # fmt: skip
    with StoreReader(db) as r:
        mf = r.mirror_findings(ALL)
    assert [(d.member, d.size, d.wheels, d.examples) for d in mf.duplicates] == [
        ("s.libs/libbar.so.2", 64, 3, ["s", "t", "u"])]  # fmt: skip
    assert [(c.soname, c.variants, c.wheels) for c in mf.conflicts] == [(lib, 2, 4)]


def test_a_malformed_facts_row_costs_no_other_row(tmp_path: Path) -> None:
    """sqlite3 reads a row ahead, so an error in one wheel's facts surfaces in place of the
    last element of the wheel before it: the walk must not lose that one."""
    db = tmp_path / "m.sqlite"
    _mirror(db, [
        ("x-1.0-cp311-cp311-linux_x86_64.whl", "x",
         _facts([("x.libs/libx.so.1", "libx.so.1", 10), ("x.libs/liby.so.1", "liby.so.1", 20)])),
        ("bad-1.0-cp311-cp311-linux_x86_64.whl", "bad", '{"elfs": [{"member": "b.so", '),
        ("z-1.0-cp311-cp311-linux_x86_64.whl", "z",
         _facts([("z.libs/liby.so.1", "liby.so.1", 20)])),
    ])  # fmt: skip
    with StoreReader(db) as r:
        mf = r.mirror_findings(ALL)
    assert [(d.member, d.size, d.examples) for d in mf.duplicates] == [
        ("x.libs/liby.so.1", 20, ["x", "z"])]  # fmt: skip


def test_the_reader_never_writes(store: Path) -> None:
    before = store.read_bytes()
    with StoreReader(store) as r:
        list(r.wheels(WheelFilter(platforms=("m*",), since=0.0)))
        r.mirror_findings(ALL)
        # the walk's temporary table goes to a temporary file, not to memory
        assert r._con.execute("PRAGMA temp_store").fetchone()[0] == 1
    assert store.read_bytes() == before
