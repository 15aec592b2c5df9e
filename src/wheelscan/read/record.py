"""``--verify-record``: every member's bytes against the wheel's RECORD, as PyPI checks on upload.

The wheel spec (and PEP 376) lists each installed file in ``*.dist-info/RECORD`` with its hash
(``sha256=`` or a stronger hashlib algorithm, urlsafe base64 without padding) and size; RECORD
itself and its signatures (``RECORD.jws``, ``RECORD.p7s``) are listed without one. The members
hashed are the ones zipfile (pip) extracts, the last copy of each name, streamed through
zipfile itself so the bytes judged are the bytes installed. Opt-in: it inflates everything.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import zipfile
import zlib
from typing import BinaryIO

from .wheelinfo import find_wheel_file

__all__ = ["verify_record"]

#: Problems listed per kind before "and N more".
_SHOWN = 5
_CHUNK = 1 << 20
#: Algorithms a RECORD may use: hashlib's guaranteed ones, less the broken md5 and sha1.
_ALLOWED = frozenset(hashlib.algorithms_guaranteed) - {"md5", "sha1"}
_UNHASHED = ("RECORD", "RECORD.jws", "RECORD.p7s")


def _digest(zf: zipfile.ZipFile, info: zipfile.ZipInfo, algo: str) -> tuple[str, int]:
    h = hashlib.new(algo)
    n = 0
    with zf.open(info) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            n += len(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode("ascii"), n


def _rows(zf: zipfile.ZipFile, name: str, problems: list[str]) -> dict[str, tuple[str, str]]:
    listed: dict[str, tuple[str, str]] = {}
    with zf.open(name) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        for row in csv.reader(text):
            if not row:
                continue
            path = row[0]
            if path in listed:
                problems.append(f"RECORD lists {path!r} twice")
            listed[path] = (row[1] if len(row) > 1 else "", row[2] if len(row) > 2 else "")
    return listed


def verify_record(src: str | os.PathLike[str] | BinaryIO) -> list[str]:
    """What disagrees between the members and RECORD (empty: they agree)."""
    problems: list[str] = []
    try:
        with zipfile.ZipFile(src) as zf:
            final = {i.filename: i for i in zf.infolist()}  # the last copy of a name wins
            wheel, _ = find_wheel_file(list(final))
            if wheel is None:
                return ["no .dist-info/WHEEL, so no RECORD to verify"]
            dist_info = wheel.rsplit("/", 1)[0]
            record = f"{dist_info}/RECORD"
            if record not in final:
                return [f"{record} is missing"]
            listed = _rows(zf, record, problems)
            unlisted, bad = [], []
            for name, info in final.items():
                if name.endswith("/"):
                    continue
                if name not in listed:
                    unlisted.append(name)
                    continue
                digest, size = listed[name]
                if not digest:
                    if name.rsplit("/", 1)[-1] not in _UNHASHED or not name.startswith(
                            dist_info + "/"):
                        bad.append(f"RECORD lists {name!r} without a hash")
                    continue
                algo, _, want = digest.partition("=")
                if algo not in _ALLOWED:
                    bad.append(f"RECORD hashes {name!r} with {algo!r}, not sha256 or stronger")
                    continue
                got, n = _digest(zf, info, algo)
                if got != want:
                    bad.append(f"{name!r}: {algo} is {got}, RECORD says {want}")
                elif size and size != str(n):
                    bad.append(f"{name!r}: {n} bytes, RECORD says {size}")
            missing = [p for p in listed if p not in final and not p.endswith("/")]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, UnicodeDecodeError, ValueError, csv.Error) as e:  # fmt: skip
        return [*problems, f"RECORD could not be verified: {type(e).__name__}: {e}"]
    for msgs, what in ((unlisted, "not listed in RECORD"), (missing, "listed in RECORD but not "
                       "in the wheel")):  # fmt: skip
        problems.extend(f"{m!r} is {what}" for m in msgs[:_SHOWN])
        if len(msgs) > _SHOWN:
            problems.append(f"and {len(msgs) - _SHOWN} more {what}")
    problems.extend(bad[:_SHOWN])
    if len(bad) > _SHOWN:
        problems.append(f"and {len(bad) - _SHOWN} more hash or size mismatches")
    return problems
