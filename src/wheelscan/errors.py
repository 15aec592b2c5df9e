"""Exceptions shared by both engines. Every one is a ValueError naming what is wrong."""

from __future__ import annotations

__all__ = [
    "ElfError",
    "InflateError",
    "LimitExceeded",
    "RemoteError",
    "WheelscanError",
    "ZipFormatError",
]


class WheelscanError(ValueError):
    """Base class: a wheel or member could not be read."""


class ZipFormatError(WheelscanError):
    """The archive structure is invalid (EOCD, central directory, local header)."""


class InflateError(WheelscanError):
    """A member's compressed data could not be decompressed."""


class ElfError(WheelscanError):
    """An ELF member is malformed (offsets, sizes or counts out of range, loops)."""


class LimitExceeded(WheelscanError):
    """A wheel asked for more work than the configured limits allow (e.g. a zip bomb)."""


class RemoteError(OSError):
    """A remote file could not be read (after retries), or its bytes are not what they claim.

    An OSError, as a failing disk would raise: the engines turn it into the wheel's error.
    """
