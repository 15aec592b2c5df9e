"""Caps on the work one wheel may cause: hostile input is normal input."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True)
class Limits:
    #: total bytes one wheel may make us inflate, over all its members
    max_wheel_inflate: int = 4 << 30
    #: members listed in one central directory
    max_members: int = 200_000
    #: size of the central directory we are willing to read
    max_central_directory: int = 256 << 20
    #: bytes of one metadata member (WHEEL) we read
    max_metadata: int = 1 << 20
    #: inflate granularity: output is produced in chunks of this size
    chunk_size: int = 256 << 10
    #: a wheel file up to this size is read into memory whole; a bigger one is read with
    #: pread in chunks, as far as the scan needs (0: always in chunks)
    read_whole_max: int = 1 << 20


DEFAULT_LIMITS = Limits()
