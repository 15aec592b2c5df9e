"""The SQLite store: schema and its version, batched commits, resume rule, member cache."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import TYPE_CHECKING

import pytest

from wheelscan.facts import FACTS_SCHEMA_VERSION, ElfFacts, LibraryNeed, VersionNeed
from wheelscan.mirror.sources import WheelRef
from wheelscan.mirror.store import (
    STORE_SCHEMA_VERSION,
    Outcome,
    SharedMemberCache,
    Store,
    StoreError,
)

if TYPE_CHECKING:
    from pathlib import Path


def _ref(i: int, **kw: object) -> WheelRef:
    base: dict[str, object] = {
        "location": f"/m/p{i}-1.0-py3-none-any.whl",
        "filename": f"p{i}-1.0-py3-none-any.whl",
        "size": 100 + i,
        "mtime": 1700000000.5 + i,
        "project": f"p{i}",
    }
    base.update(kw)
    return WheelRef(**base)  # type: ignore[arg-type]


def _out(ref: WheelRef, status: str = "ok") -> Outcome:
    return Outcome(ref.location, ref.filename, status, facts_json='{"schema": 1}')


def _rows(db: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT location, status FROM wheels ORDER BY location").fetchall()
    finally:
        con.close()


def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    Store(str(db)).close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert int(version) == STORE_SCHEMA_VERSION
    cols = {r[1] for r in con.execute("PRAGMA table_info(wheels)")}
    assert {"location", "size", "mtime", "content_hash", "upload_time", "yanked", "facts",
            "verdict", "status", "facts_schema", "policy_version"} <= cols  # fmt: skip
    con.execute("UPDATE meta SET value = ? WHERE key='schema_version'", (STORE_SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        Store(str(db))


def test_refuses_a_foreign_database(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE wheels (x)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a wheelscan store"):
        Store(str(db))


def test_batched_commits(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    store = Store(str(db), batch_rows=10, batch_seconds=3600)
    for i in range(9):
        store.record(_ref(i), _out(_ref(i)))
    assert _rows(db) == []  # another reader sees nothing before the batch commits
    store.record(_ref(9), _out(_ref(9)))
    assert len(_rows(db)) == 10
    store.record(_ref(10), _out(_ref(10)))
    store.close()  # close commits the tail
    assert len(_rows(db)) == 11


def test_resume_rule(tmp_path: Path) -> None:
    db = str(tmp_path / "s.sqlite")
    hashed = _ref(2, content_hash="blake2b_256:" + "ab" * 32)
    with Store(db) as store:
        store.record(_ref(1), _out(_ref(1), "mislabelled"))
        store.record(hashed, _out(hashed))
    store = Store(db)
    assert store.current_status(_ref(1)) == "mislabelled"
    assert store.current_status(_ref(1, size=1)) is None
    assert store.current_status(_ref(1, mtime=1.0)) is None
    assert store.current_status(_ref(3)) is None
    assert store.current_status(hashed) == "ok"
    assert store.current_status(_ref(2, content_hash="blake2b_256:" + "cd" * 32)) is None
    store.con.execute("UPDATE wheels SET facts_schema = ?", (FACTS_SCHEMA_VERSION - 1,))
    assert store.current_status(_ref(1)) is None  # facts of an old schema are rescanned
    store.close()


def test_batched_resume_lookup_follows_the_same_rule(tmp_path: Path) -> None:
    db = str(tmp_path / "s.sqlite")
    with Store(db) as store:
        for i in range(0, 1200, 2):  # even wheels stored; 1200 refs cross the 500-per-query chunks
            store.record(_ref(i, yanked=False), _out(_ref(i), "mislabelled" if i % 3 else "ok"))
    refs = [_ref(i, yanked=False) for i in range(1200)]
    refs[10] = _ref(10, size=1, yanked=False)  # changed file
    refs[998] = _ref(998, yanked=True)  # yanked since: kept, index columns updated
    with Store(db) as store:
        got = store.current_statuses(refs)
    expected: list[str | None] = [
        None if i % 2 or i == 10 else ("mislabelled" if i % 3 else "ok") for i in range(1200)
    ]
    assert got == expected
    con = sqlite3.connect(db)
    yanked = con.execute("SELECT location FROM wheels WHERE yanked = 1").fetchall()
    assert yanked == [(refs[998].location,)]


def test_rerecording_a_location_replaces_it(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    with Store(str(db)) as store:
        store.record(_ref(1), _out(_ref(1), "error"))
        store.commit()
        store.record(_ref(1), _out(_ref(1), "ok"))
    assert _rows(db) == [(_ref(1).location, "ok")]


def test_index_changes_update_without_rescan(tmp_path: Path) -> None:
    db = str(tmp_path / "s.sqlite")
    ref = _ref(1, upload_time="2024-01-01T00:00:00Z", yanked=False)
    with Store(db) as store:
        store.record(ref, _out(ref))
    yanked = _ref(1, upload_time="2024-01-01T00:00:00Z", yanked=True)
    with Store(db) as store:
        assert store.current_status(yanked) == "ok"
    con = sqlite3.connect(db)
    assert con.execute("SELECT yanked FROM wheels").fetchone()[0] == 1


def _elf(member: str) -> ElfFacts:
    return ElfFacts(
        member=member, elf_class=64, endian="little", osabi=0, e_type=3, machine=62,
        e_flags=0, has_dynamic=True, needed=["libc.so.6"],
        version_needs=[LibraryNeed("libc.so.6", [VersionNeed("GLIBC_2.17")])],
    )  # fmt: skip


def test_member_cache_lru_and_store_backing(tmp_path: Path) -> None:
    db = str(tmp_path / "s.sqlite")
    Store(db).close()
    key = (8, 1234, 5678, "00112233445566778899aabbccddeeff")
    cache = SharedMemberCache(db, capacity=2, min_size=0)
    assert cache.get(key) is None
    cache.put(key, _elf("a/x.so"))
    got = cache.get(key)
    assert got == _elf("a/x.so")
    assert got is not cache.get(key)  # each hit is a fresh object: no aliasing between wheels
    learned = cache.drain()
    assert [k for k, _ in learned] == ["8:1234:5678:00112233445566778899aabbccddeeff"]
    assert cache.drain() == []
    # evicted from a small LRU, and a new process: found again only through the store
    for i in range(3):
        cache.put((8, i, i, f"{i:032x}"), _elf(f"b{i}.so"))
    assert SharedMemberCache(db, min_size=0).get(key) is None  # not written by the cache itself...
    with Store(db) as store:  # ...but by the single writer, with the wheel's outcome
        out = Outcome("/w.whl", "w.whl", "ok", new_members=learned)
        store.record(_ref(0), out)
    fresh = SharedMemberCache(db, min_size=0)
    stored = fresh.get(key)
    # the store keeps one body per distinct ELF: a hit names no member, its caller does
    assert stored is not None
    assert stored.member == ""
    assert dataclasses.replace(stored, member="a/x.so") == _elf("a/x.so")
    assert fresh.get((8, 1234, 5679, key[3])) is None  # same digest, other size: no hit
    assert (fresh.hits, fresh.misses) == (1, 1)
    # members too small to be worth a lookup are neither looked up nor kept
    small = SharedMemberCache(db, min_size=1235)
    assert small.get(key) is None
    small.put(key, _elf("a/x.so"))
    assert small.drain() == []
    assert (small.hits, small.misses) == (0, 0)


def test_member_cache_rejects_bad_keys() -> None:
    cache = SharedMemberCache()
    with pytest.raises(ValueError, match="member cache key"):
        cache.get("crc32:deadbeef")
