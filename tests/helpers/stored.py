"""What a scan store holds, read back through the store's reader (schema 2 keeps facts and
verdicts split and compressed: no column is JSON a test could select)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from wheelscan.mirror.store import StoreReader, WheelFilter

if TYPE_CHECKING:
    from pathlib import Path

ALL = WheelFilter()


def stored_facts(db: Path | str) -> dict[str, dict[str, Any] | None]:
    """filename -> the facts object the store reassembles (None: the row has none)."""
    with StoreReader(db) as r:
        names = {w.location: w.filename for w in r.wheels_json(ALL)}
        return {names[loc]: None if f is None else json.loads(f) for loc, f in r.facts_json(ALL)}


def stored_verdicts(db: Path | str) -> dict[str, str | None]:
    """filename -> the verdict JSON text as recorded (None: the row has none)."""
    with StoreReader(db) as r:
        return {w.filename: w.verdict_json for w in r.wheels_json(ALL)}
