from os import PathLike
from typing import BinaryIO

from wheelscan.facts import ElfFacts

class Member:
    method: int
    data_off: int
    csize: int
    usize: int
    produced: int
    eof: bool
    @property
    def read(self) -> int: ...
    def fill(self, target: int) -> int: ...
    def view(self) -> memoryview: ...
    def close(self) -> None: ...

class Archive:
    size: int
    count: int  # central directory entries read
    anomalies: list[str]
    candidates: list[int]  # entries that may be binaries, by the member-name rules
    wheel_index: int  # the first top-level *.dist-info/WHEEL, or -1
    has_record: bool
    inflater: str
    inflated_total: int
    last_inflated: int
    last_read: int
    last_inflater: str
    def __init__(
        self,
        src: str | bytes | PathLike[str] | BinaryIO,
        *,
        max_wheel_inflate: int = ...,
        max_members: int = ...,
        max_central_directory: int = ...,
        chunk_size: int = ...,
        inflater: str | None = None,
        read_whole_max: int = ...,
    ) -> None: ...
    @property
    def local(self) -> bool: ...
    def close(self) -> None: ...
    def read_directory(self) -> int: ...
    def entry(self, index: int) -> tuple[str, int, int, int, int, int, int]: ...
    def name(self, index: int) -> str: ...
    @property
    def entries(self) -> list[tuple[str, int, int, int, int, int, int]]: ...
    @property
    def names(self) -> list[str]: ...
    def open(self, index: int) -> Member: ...
    def digest(self, index: int) -> str: ...
    def read_member(self, index: int, limit: int) -> bytes: ...
    def scan_elf(self, index: int, member: str) -> ElfFacts | None: ...
