"""What every source yields and counts: a :class:`WheelRef` per wheel, a :class:`Discovery`
of what was listed. Below the sources, the remote index, the pool and the store, which all
speak of them."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Discovery", "WheelRef", "is_url"]


def is_url(location: str) -> bool:
    """A remote source (http or https), not a local path."""
    return location.startswith(("http://", "https://"))


@dataclass
class WheelRef:
    """One wheel to scan: where it is and what its source says about it."""

    location: str  # absolute path: the wheel's identity in the store
    filename: str
    size: int | None = None
    mtime: float | None = None
    content_hash: str | None = None  # "<algo>:<hex>" from the mirror path or index
    upload_time: str | None = None  # ISO 8601, from the index
    yanked: bool | None = None  # from the index; None where the source cannot say
    project: str | None = None  # canonical name from the filename


@dataclass
class Discovery:
    """Running counts of what sources listed; updated while iterating."""

    wheels: int = 0
    non_wheels: int = 0
    filtered: int = 0
    missing: int = 0  # listed (index or list file) but not on disk
    invalid_names: int = 0  # *.whl names without 5 or 6 dash-separated parts (still scanned)
    refused: int = 0  # index links not followed: not http(s), or off the allowed origins
    undecodable: int = 0  # local paths whose bytes are not UTF-8: no store or report holds them
    done: bool = False
    problems: list[str] = field(default_factory=list)  # unreadable index files etc. (capped)

    def note(self, problem: str) -> None:
        if len(self.problems) < 100:
            self.problems.append(problem)
