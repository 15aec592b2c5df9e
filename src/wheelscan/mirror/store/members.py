"""The member cache: ELF facts by the digest of a member's compressed bytes, backed by the
store's ``members`` table (which points at the facts' ``elf_facts`` row); the workers read it,
the writer stores what they learned."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict

import zstandard as zstd

from ...facts import FACTS_SCHEMA_VERSION, ElfFacts
from .codec import Codec, member_key

__all__ = ["MIN_CACHED", "SharedMemberCache", "cache_key"]

#: Members compressed smaller than this are not cached: re-inflating them costs less than a
#: store lookup plus sending and storing their facts (measured on benchmarks/make_mirror.py).
MIN_CACHED = 32 << 10


def cache_key(key: object) -> str:
    """(method, compressed_size, size, blake2b-16 hex of the compressed bytes) as text."""
    if isinstance(key, tuple) and len(key) == 4:
        method, csize, size, digest = key
        return f"{int(method)}:{int(csize)}:{int(size)}:{digest}"
    msg = f"member cache key must be (method, compressed_size, size, digest), got {key!r}"
    raise ValueError(msg)


class SharedMemberCache:
    """ELF facts by the digest of the member's compressed bytes: an LRU backed by the store.

    The facts of a hit carry an empty member path: the caller names the member it found them
    for. Reads go to the SQLite ``members`` table on an LRU miss (so facts found by an earlier run
    or another worker are reused); new entries are *not* written here but collected with
    :meth:`drain` and sent to the single writer with the wheel's outcome. Thread-safe (a Dask
    worker runs several threads over one cache).
    """

    def __init__(
        self, db_path: str | None = None, capacity: int = 4096, min_size: int = MIN_CACHED
    ) -> None:
        self.db_path = db_path
        self.capacity = capacity
        self.min_size = min_size
        self._lru: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()
        self.hits = 0
        self.misses = 0

    def _db(self) -> Codec | None:
        """This thread's reader of the store (its connection and decoders)."""
        if not self.db_path:
            return None
        codec: Codec | None = getattr(self._local, "codec", None)
        if codec is None and os.path.exists(self.db_path):
            try:
                con = sqlite3.connect(self.db_path, timeout=5.0, check_same_thread=False)
            except sqlite3.Error:
                self.db_path = None
                return None
            codec = self._local.codec = Codec(con, cache=64)
        return codec

    def _new(self) -> list[tuple[str, str]]:
        new: list[tuple[str, str]] | None = getattr(self._local, "new", None)
        if new is None:
            new = self._local.new = []
        return new

    def get(self, key: object) -> ElfFacts | None:
        k = cache_key(key)
        if self._small(key):
            return None
        with self._lock:
            text = self._lru.get(k)
            if text is not None:
                self._lru.move_to_end(k)
        if text is None:
            codec = self._db()
            if codec is not None:
                text = self._stored(codec, k)
                if text is not None:
                    self._remember(k, text)
        if text is None:
            self.misses += 1
            return None
        self.hits += 1
        return ElfFacts.from_json(text)

    @staticmethod
    def _stored(codec: Codec, k: str) -> str | None:
        try:
            row = codec.con.execute(
                "SELECT elf_id FROM members WHERE digest = ? AND size = ? AND csize = ?"
                " AND method = ? AND facts_schema = ?",
                (*member_key(k), FACTS_SCHEMA_VERSION),
            ).fetchone()
            if row is None:
                return None
            body = codec.body(int(row[0])).decode()
        except (sqlite3.Error, ValueError, zstd.ZstdError):
            return None  # a store still migrating, or one this version cannot decode: no hit
        return '{"member":"",' + body[1:] if body != "{}" else '{"member":""}'

    def put(self, key: object, facts: ElfFacts) -> None:
        k = cache_key(key)
        if self._small(key):
            return
        text = facts.to_json()
        self._remember(k, text)
        self._new().append((k, text))

    def _small(self, key: object) -> bool:
        return int(key[1]) < self.min_size  # type: ignore[index]

    def _remember(self, k: str, text: str) -> None:
        with self._lock:
            self._lru[k] = text
            self._lru.move_to_end(k)
            while len(self._lru) > self.capacity:
                self._lru.popitem(last=False)

    def drain(self) -> list[tuple[str, str]]:
        new = self._new()
        out = list(new)
        new.clear()
        return out
