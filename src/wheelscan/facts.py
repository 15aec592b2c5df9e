"""What a scan records about a wheel: plain, typed, serialisable facts (no verdicts).

Facts describe what the binaries *are*; verdicts are computed from facts and a policy
(see :mod:`wheelscan.rules.verdict`), so stored facts can be re-judged without reading a
wheel again.

Both engines (``native`` and ``lief``) produce exactly these objects. The JSON form
(:meth:`WheelFacts.to_dict`) is a contract: bump :data:`FACTS_SCHEMA_VERSION` on any change.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "FACTS_SCHEMA_VERSION",
    "IMPORT_NAME_CAP",
    "PYTHON_API_PREFIXES",
    "READABLE_FACTS_SCHEMAS",
    "RUNTIME_EXPORT_CAP",
    "UNVERSIONED_NAME_CAP",
    "ElfFacts",
    "LibraryNeed",
    "MemberCache",
    "MemberError",
    "MemberKey",
    "MemberStats",
    "SymbolGroup",
    "VersionNeed",
    "WheelFacts",
    "python_api_imports",
    "weak_only",
]

#: 2: ``SymbolGroup.weak_names``. 3: ``WheelFacts.record`` (``--verify-record``). 4:
#: ``ElfFacts.python_imports`` and ``python_weak_imports`` (every C-API import, uncapped).
#: Older facts still load (no weak names known, RECORD not verified, C-API imports taken from
#: the capped unversioned group: judged as before); a scan re-reads wheels whose stored facts
#: are older.
FACTS_SCHEMA_VERSION = 4
#: facts schemas :meth:`WheelFacts.from_dict` reads (``rejudge`` judges stored facts of each)
READABLE_FACTS_SCHEMAS = frozenset({1, 2, 3, 4})

#: Symbol names kept per (library, version) group of versioned imports; the true count is kept.
IMPORT_NAME_CAP = 64
#: Names kept for unversioned imports (blacklist checks need them by name).
UNVERSIONED_NAME_CAP = 4096
#: Exported C++/GCC runtime symbols kept per binary (for the cxx-runtime check).
RUNTIME_EXPORT_CAP = 256

#: Name prefixes of symbols that belong to libstdc++'s / libgcc's own runtime. A binary that
#: *defines and exports* a STB_GLOBAL symbol with one of these prefixes carries a piece of a
#: C++ runtime (template instantiations are STB_WEAK or STB_GNU_UNIQUE and are not kept).
RUNTIME_PREFIXES = (
    "_ZNSt",
    "_ZSt",
    "_ZNKSt",
    "_ZTVSt",
    "_ZTISt",
    "_ZTSSt",
    "_ZN9__gnu_cxx",
    "_ZNK9__gnu_cxx",
    "_ZN10__cxxabiv1",
    "_ZTVN10__cxxabiv1",
    "__cxa_",
    "__gxx_",
    "__once_proxy",
    "__once_call",
    "__once_callable",
    "_Unwind_",
    "__gcc_personality",
    "__register_frame",
    "__deregister_frame",
)


#: Name prefixes of CPython's C-API symbols (what abi3 judges; ``PyInit_*`` are exports).
PYTHON_API_PREFIXES = ("Py", "_Py")


def python_api_imports(names: list[str], weak: list[str]) -> tuple[list[str], list[str]]:
    """(the C-API names among an object's imports, sorted and unique; those of them imported
    only as weak references), from every imported name and every weak one.

    Extension modules do not link libpython: the interpreter provides these symbols, so they
    are plain undefined, unversioned imports as a rule. A reference versioned through a
    bundled library's verneed binds to the interpreter's unversioned definition all the same,
    so versioned names count too. Both lists are uncapped (bounded by the object's symbol
    count, whose names are bounded by its dynstr): an abi3 verdict needs every name."""
    py = sorted(n for n in names if n.startswith(PYTHON_API_PREFIXES))
    py_weak = [w for w in weak if w.startswith(PYTHON_API_PREFIXES)]
    return sorted(set(py)), weak_only(py, py_weak, len(py))


def weak_only(names: list[str], weak: list[str], cap: int) -> list[str]:
    """The names of ``weak`` not also in ``names`` as a strong import, sorted, at most ``cap``.

    ``names`` is every imported name of a group, sorted, with each weak reference in it too;
    a name is weak-only when all its occurrences are weak ones (bisect: no per-name set).
    """
    if not weak:
        return []
    out = []
    for w in sorted(set(weak)):
        total = bisect.bisect_right(names, w) - bisect.bisect_left(names, w)
        if total == weak.count(w):
            out.append(w)
            if len(out) >= cap:
                break
    return out


@dataclass
class VersionNeed:
    """One ``Vernaux`` entry: a version required from a library."""

    name: str  # e.g. "GLIBC_2.14"
    weak: bool = False  # VER_FLG_WEAK: the loader tolerates its absence


@dataclass
class LibraryNeed:
    """One ``Verneed`` entry of ``.gnu.version_r`` (found through DT_VERNEED)."""

    file: str  # e.g. "libc.so.6"
    versions: list[VersionNeed] = field(default_factory=list)


@dataclass
class SymbolGroup:
    """Undefined dynamic symbols that share one (library, version) through versym.

    ``library``/``version`` are None for unversioned imports (versym index 0 or 1, or no
    DT_VERSYM at all). ``names`` is sorted and capped; ``count`` is the true count.
    ``weak_names`` (sorted, capped like ``names``) are the names imported only as STB_WEAK
    references: the loader binds them to NULL when no object defines them, so they are
    optional (gABI, "Symbol Binding"). A name also imported strongly is not listed.
    """

    library: str | None
    version: str | None
    count: int
    names: list[str] = field(default_factory=list)
    weak_count: int = 0  # how many of them are STB_WEAK references
    weak_names: list[str] = field(default_factory=list)  # schema >= 2


@dataclass
class ElfFacts:
    """Facts about one ELF member, read through PT_DYNAMIC as the loader does."""

    member: str
    elf_class: int  # 32 or 64
    endian: str  # "little" or "big"
    osabi: int  # e_ident[EI_OSABI]
    e_type: int  # ET_EXEC=2, ET_DYN=3, ...
    machine: int  # e_machine
    e_flags: int  # e_flags (ARM EABI version, hard-float, ...)
    interpreter: str | None = None  # PT_INTERP
    has_dynamic: bool = False  # a PT_DYNAMIC segment exists (False: static binary)
    soname: str | None = None
    needed: list[str] = field(default_factory=list)  # DT_NEEDED, in order
    rpath: list[str] = field(default_factory=list)  # DT_RPATH split on ':'
    runpath: list[str] = field(default_factory=list)  # DT_RUNPATH split on ':'
    dt_flags: int = 0  # DT_FLAGS
    dt_flags_1: int = 0  # DT_FLAGS_1
    textrel: bool = False  # DT_TEXTREL present or DF_TEXTREL set
    stack: str = "none"  # PT_GNU_STACK: "none" (absent), "noexec", "exec"
    symbol_count: int | None = None  # dynamic symbols incl. index 0 (DT_HASH / DT_GNU_HASH)
    version_needs: list[LibraryNeed] = field(default_factory=list)
    version_defs: list[str] = field(default_factory=list)  # Verdef names, index order
    imports: list[SymbolGroup] = field(default_factory=list)  # sorted by (library, version)
    export_count: int = 0  # defined dynamic symbols (GLOBAL/WEAK/UNIQUE, not index 0)
    runtime_exports: list[str] = field(default_factory=list)  # sorted, capped
    runtime_export_count: int = 0
    x86_isa_needed: int | None = None  # GNU_PROPERTY_X86_ISA_1_NEEDED bitmask
    #: unversioned imports named ``Py*``/``_Py*``, sorted, uncapped (schema >= 4; None: facts
    #: of an older schema, which kept them only in the capped unversioned group)
    python_imports: list[str] | None = field(default_factory=list)
    python_weak_imports: list[str] = field(default_factory=list)  # of those, weak-only

    def to_json(self) -> str:
        return _to_json(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ElfFacts:
        d = dict(data)
        d["version_needs"] = [
            LibraryNeed(n["file"], [VersionNeed(**v) for v in n["versions"]])
            for n in d.get("version_needs", [])
        ]
        d["imports"] = [SymbolGroup(**g) for g in d.get("imports", [])]
        d.setdefault("python_imports", None)  # schema < 4: not recorded
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> ElfFacts:
        return cls.from_dict(json.loads(text))


@dataclass
class MemberStats:
    """Byte accounting for one member the scan touched (peeked or parsed)."""

    member: str
    method: int  # ZIP compression method
    size: int  # uncompressed size from the central directory
    compressed_size: int
    inflated: int = 0  # bytes of output produced by the scan
    read: int = 0  # bytes of compressed input consumed by the scan
    crc32: int | None = None  # CRC-32 from the central directory entry (the member's identity)


@dataclass
class MemberError:
    """A member that may be a binary but could not be read, and why."""

    member: str
    message: str


@dataclass
class WheelFacts:
    """Everything a verdict needs to know about one wheel."""

    filename: str
    name: str | None = None
    version: str | None = None
    build: str | None = None
    python_tags: list[str] = field(default_factory=list)  # as written in the filename
    abi_tags: list[str] = field(default_factory=list)
    platform_tags: list[str] = field(default_factory=list)
    filename_error: str | None = None  # why packaging rejected the filename
    wheel_tags: list[str] = field(default_factory=list)  # "Tag:" lines of the WHEEL file
    root_is_purelib: bool | None = None
    has_wheel_file: bool = False
    has_record: bool = False
    member_count: int = 0
    elfs: list[ElfFacts] = field(default_factory=list)  # central-directory order
    members: list[MemberStats] = field(default_factory=list)
    errors: list[MemberError] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)  # ZIP structure oddities
    error: str | None = None  # the archive itself could not be read
    engine: str = "native"
    size: int = 0  # bytes of the wheel file
    schema: int = FACTS_SCHEMA_VERSION
    transferred: int | None = None  # response-body bytes fetched (remote sources); None: local
    #: what disagrees between the members and RECORD ([]: nothing); None: not verified
    record: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Compact JSON of :meth:`to_dict` (what the store keeps)."""
        return _to_json(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WheelFacts:
        d = dict(data)
        d["elfs"] = [ElfFacts.from_dict(e) for e in d.get("elfs", [])]
        d["members"] = [MemberStats(**m) for m in d.get("members", [])]
        d["errors"] = [MemberError(**e) for e in d.get("errors", [])]
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> WheelFacts:
        return cls.from_dict(json.loads(text))


#: (method, compressed size, size, blake2b-16 hex digest of the compressed bytes): what proves
#: two members hold the same bytes, so that one's facts serve for the other
MemberKey = tuple[int, int, int, str]


class MemberCache(Protocol):
    """Facts of ELF members already seen (both engines take one; the pool's is store-backed)."""

    def get(self, key: MemberKey) -> ElfFacts | None: ...
    def put(self, key: MemberKey, facts: ElfFacts) -> None: ...


def _fields(obj: object) -> dict[str, Any]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dict(vars(obj))
    msg = f"cannot encode {type(obj).__name__}"
    raise TypeError(msg)


def _to_json(facts: object) -> str:
    # json.dumps(facts.to_dict()) without dataclasses.asdict's deep copies: the C encoder walks
    # each dataclass's __dict__ (the same text, several times faster)
    return json.dumps(facts, default=_fields, separators=(",", ":"))
