from typing import NoReturn

from typing_extensions import Buffer

from wheelscan.facts import ElfFacts

HEADER_PREFIX: int

def parse(data: Buffer, total: int, member: str = "") -> int | ElfFacts: ...
def raise_status(status: int, message: str) -> NoReturn: ...
