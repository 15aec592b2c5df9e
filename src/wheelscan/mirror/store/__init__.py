"""The scan store (SQLite).

``schema`` says what a store is (tables, version); ``writer`` is the one process that writes
(``scan``, ``rejudge``); ``members`` is the member cache the workers read.
"""

from __future__ import annotations

from .members import MIN_CACHED, SharedMemberCache, cache_key
from .schema import STORE_SCHEMA_VERSION, StoreError
from .writer import Outcome, Store, StoreBusy

__all__ = [
    "MIN_CACHED",
    "STORE_SCHEMA_VERSION",
    "Outcome",
    "SharedMemberCache",
    "Store",
    "StoreBusy",
    "StoreError",
    "cache_key",
]
