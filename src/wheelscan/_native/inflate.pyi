AUTO_ZNG_RATIO: float
INFLATERS: tuple[str, ...]
LIBISAL: bool
LIBISAL_BUILT: bool
LIBISAL_ERROR: str | None
LIBISAL_HEADER: str | None
LIBISAL_SONAME: str
LIBZNG: bool
LIBZNG_ERROR: str | None
LIBZNG_SOURCE: str | None
LIBZNG_SONAME: str
LIBZNG_VERSION: str | None
inflater: str
ZLIB_VERSION: str

class Inflater:
    kind: int
    name: str

class InflaterChoice:
    name: str
    def __init__(self, name: str) -> None: ...
