"""The scan store (SQLite): the only code in wheelscan that speaks SQL.

``schema`` says what a store is (tables, version); ``writer`` is the one process that writes
(``scan``, ``rejudge``); ``members`` is the member cache the workers read; ``reader`` is the
read-only side the reports use, which hands out typed rows and aggregates, never SQL. A change
to the tables touches this package (and ``docs/store-schema.md``), nothing above it.
"""

from __future__ import annotations

from .members import MIN_CACHED, SharedMemberCache, cache_key
from .reader import (
    DuplicateBinary,
    MirrorFindings,
    StoreReader,
    VendoredConflict,
    WheelFilter,
    WheelJSON,
    WheelRow,
)
from .schema import STORE_SCHEMA_VERSION, StoreError
from .writer import Collected, Outcome, Store, StoreBusy

__all__ = [
    "MIN_CACHED",
    "STORE_SCHEMA_VERSION",
    "Collected",
    "DuplicateBinary",
    "MirrorFindings",
    "Outcome",
    "SharedMemberCache",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreReader",
    "VendoredConflict",
    "WheelFilter",
    "WheelJSON",
    "WheelRow",
    "cache_key",
]
