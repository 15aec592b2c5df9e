"""Verdicts: facts + policy -> is every claimed platform tag honest, and why.

:func:`judge` looks only at :class:`~wheelscan.facts.WheelFacts` and the policy data, never at
the scanning machine, so a verdict is the same wherever it is computed and stored facts can
be re-judged under new policy data.

Findings vocabulary: :data:`FINDINGS` (fixed; extend only on purpose, and update
``data/check-schema.json``; ``docs/findings.md`` is generated from it).

Status precedence: ``error`` when the archive or filename is unreadable; ``mislabelled``
whenever readers disagree on the members (``zip-confusion``), whatever the tags; ``not-linux``
when no Linux platform tag is claimed; ``no-binaries`` when no ELF is inside and nothing
failed; else ``mislabelled`` if any violation is proven (also with ``strict`` for any warning), even
if another member could not be read; else ``error`` if a member that may be a binary could
not be read; else ``ok``.

Library resolution is loader-faithful: a DT_NEEDED is satisfied inside the wheel when a
member of that file name sits in a directory of the object's search path (DT_RUNPATH if
present, else DT_RPATH plus the DT_RPATH of the objects that loaded it, ``$ORIGIN``
expanded against the *installed* location: ``*.data/purelib|platlib/`` map to the root),
or when another object that is loaded in the same process tree already provides that
name/soname (auditwheel's "fixup" of non-extension trees). Versioned needs on a library
resolved inside the wheel are not judged unless that library is on the policy whitelist
(a system soname already loaded by the process wins over the bundled copy).

Weak references: a weak undefined symbol binds to NULL where nothing defines it, so the
blacklist and the musl-1.2 symbol check read strong imports only (as auditwheel's blacklist
does) and list the weak ones as ``weak-import`` info. Version needs are judged whatever the
strength of the symbols behind them: the loader refuses a missing version a binary needs even
when only weak symbols use it (binutils sets no ``VER_FLG_WEAK`` for them), and a need that
does carry ``VER_FLG_WEAK`` is still counted, as auditwheel counts it, because a strong symbol
bound to that version would fail to resolve.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import posixpath
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..elfabi import ArmFlags, Machine
from ..facts import PYTHON_API_PREFIXES
from ..read.zipviews import CONFUSION
from .policy import (
    PolicySet,
    ResolvedPolicy,
    cxx_runtime_symbols,
    default_policies,
    glibc_version,
    load_policies,
)
from .stableabi import StableAbi, default_stable_abi, load_stable_abi, python_tag_version
from .tags import Claim, expand_tags, parse_claims

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from ..facts import ElfFacts, WheelFacts

__all__ = [
    "CONFUSION_PREFIX",
    "FINDINGS",
    "FINDING_KINDS",
    "FINDING_MEANINGS",
    "STATUSES",
    "STATUS_MEANINGS",
    "VERDICT_SCHEMA_VERSION",
    "Finding",
    "Judge",
    "Verdict",
    "judge",
    "make_judge",
    "policy_version",
]

#: 2: ``abi3`` (the ABI tag's claim) and the ``abi3-symbol``/``abi3-version`` findings
VERDICT_SCHEMA_VERSION = 2

#: Every status a wheel can have, in the order reports list them, and what each means.
STATUS_MEANINGS: dict[str, str] = {
    "ok": "every claimed platform tag holds (and the `abi3` tag, where claimed)",
    "mislabelled": "a claimed tag (platform or `abi3`) is broken by a violation (or readers "
                   "disagree on the members)",
    "error": "the archive, its filename or a member that may be a binary could not be read",
    "no-binaries": "a platform tag, but no ELF file inside",
    "not-linux": "no Linux platform tag claimed",
    "unjudged": "stored without a verdict: the scan ran with no policy",
}
STATUSES = tuple(STATUS_MEANINGS)

#: An archive anomaly with this prefix means readers disagree on the members or their names
#: (CPython's zipfile, which pip uses, is the view judged): a ``zip-confusion`` violation.
CONFUSION_PREFIX = CONFUSION

#: (severity, kind, meaning) of every finding a verdict can carry
FINDINGS: tuple[tuple[str, str, str], ...] = (
    ("violation", "symbol-version",
     "a versioned import newer than the claim's policy allows (evidence names "
     "`symbol@VERSION`)"),
    ("violation", "external-library",
     "a DT_NEEDED that is not bundled reachably, not on the policy whitelist and not "
     "`--exclude`-d (libpython too)"),
    ("violation", "blacklisted-symbol",
     "an import the policy blacklists for that library"),
    ("violation", "arch-mismatch",
     "a binary for another architecture (or ABI: soft-float ARM, unknown machine) than the "
     "claim"),
    ("violation", "isa-level",
     "x86-64 binary needing a micro-architecture level > v1"),
    ("violation", "libc-mismatch",
     "glibc binary under a musllinux claim or vice versa"),
    ("violation", "musl-version",
     "a symbol only musl >= 1.2 provides under musllinux_1_1"),
    ("violation", "abi3-symbol",
     "an `abi3` wheel's binary imports a C-API symbol outside the Stable ABI (or one Linux "
     "builds do not export), e.g. `_PyLong_AsByteArray` under `cp39-abi3`"),
    ("violation", "abi3-version",
     "an `abi3` wheel's binary imports a stable-ABI symbol newer than its python tag, e.g. "
     "`PyType_GetName` (3.11) under `cp39-abi3`; evidence names each symbol and its version"),
    ("warning", "wheel-tag-mismatch",
     "WHEEL `Tag:` lines disagree with the filename"),
    ("warning", "linux-tag",
     "a bare `linux_ARCH` tag (PyPI refuses it)"),
    ("warning", "exec-stack",
     "PT_GNU_STACK missing or executable (glibc >= 2.41 refuses to dlopen such objects)"),
    ("warning", "textrel",
     "text relocations"),
    ("warning", "rpath",
     "absolute or build-machine RPATH/RUNPATH entries"),
    ("warning", "cxx-runtime",
     "exports libstdc++/libgcc's own runtime symbols"),
    ("warning", "abi-suffix",
     "extension suffix disagrees with python/abi tags or arch"),
    ("warning", "purelib-binary",
     "binaries under `.data/purelib/` or Root-Is-Purelib"),
    ("warning", "binary-in-pure-wheel",
     "ELF inside a wheel with no platform tag"),
    ("violation", "zip-confusion",
     "readers disagree on the archive's members, names or bytes (two end records, a ZIP64 "
     "locator pointing elsewhere, a NUL in a name, a Unicode path extra, local headers the "
     "directory hides or contradicts): every reader's binaries are judged"),
    ("warning", "zip-anomaly",
     "what PyPI's upload validator refuses though readers agree: comments, names, descriptors,"
     " extras, duplicates, trailing"),
    ("warning", "record-mismatch",
     "`--verify-record`: a member's hash or size differs from RECORD, a member is unlisted, or"
     " a listed file is missing"),
    ("info", "over-conservative",
     "an older tag the wheel could honestly claim"),
    ("info", "required-glibc",
     "the exact minimum glibc, next to the quantised tag"),
    ("info", "weak-import",
     "a weak (optional) import the policy would refuse if it were strong: blacklisted, musl"
     " >= 1.2 only, or outside or newer than the `abi3` claim; tolerated"),
)

FINDING_KINDS: dict[str, str] = {kind: severity for severity, kind, _ in FINDINGS}
FINDING_MEANINGS: dict[str, str] = {kind: meaning for _, kind, meaning in FINDINGS}
_SEVERITY_ORDER = {"violation": 0, "warning": 1, "info": 2}

# (e_machine, ELF class, endianness) -> wheel arch name (auditwheel's table, by ELF numbers).
_ARCH_BY_MACHINE: dict[tuple[int, int, str], str] = {
    (Machine.I386, 32, "little"): "i686",
    (Machine.X86_64, 64, "little"): "x86_64",
    (Machine.PPC64, 64, "little"): "ppc64le",
    (Machine.PPC64, 64, "big"): "ppc64",
    (Machine.RISCV, 64, "little"): "riscv64",
    (Machine.AARCH64, 64, "little"): "aarch64",
    (Machine.S390, 64, "big"): "s390x",
    (Machine.ARM, 32, "little"): "armv7l",
    (Machine.LOONGARCH, 64, "little"): "loongarch64",
}
_ISA_LEVELS = ((8, 4), (4, 3), (2, 2))  # GNU_PROPERTY_X86_ISA_1_V4/V3/V2 bits -> level

_LIBPYTHON = re.compile(r"^libpython\d+\.\d+[a-z]*\.so(\.\d+)*$")
_EXT_SUFFIX = re.compile(r"\.cpython-(\d)(\d+)([a-z]*)-([a-z0-9_]+)-linux-(gnu|musl)[a-z]*\.so$")
_MULTIARCH = {
    "x86_64": "x86_64", "i386": "i686", "i686": "i686", "aarch64": "aarch64", "arm": "armv7l",
    "powerpc64le": "ppc64le", "powerpc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64",
    "loongarch64": "loongarch64",
}  # fmt: skip


# Libraries of glibc itself: only GLIBC_ versions needed from these say "glibc" (libgcc_s on
# some arches defines GLIBC_2.0 nodes of its own, and musl wheels bundle such a libgcc_s).
_GLIBC_LIBS = frozenset({
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libresolv.so.2",
    "libutil.so.1", "libnsl.so.1", "libanl.so.1", "libmvec.so.1", "libcrypt.so.1",
    "libBrokenLocale.so.1", "libthread_db.so.1", "libc_malloc_debug.so.0",
})  # fmt: skip


def _is_glibc_lib(soname: str) -> bool:
    return soname in _GLIBC_LIBS or soname.startswith(("ld-linux", "ld64.so."))


def _is_loader(soname: str) -> bool:
    return soname.startswith(("ld-linux", "ld64.so.", "ld-musl-")) or soname == "ld.so.1"


def _libc_sonames(name: str) -> str | None:
    if name in ("libc.so", "libc.musl.so") or name.startswith(("libc.musl-", "ld-musl-")):
        return "musl"
    if name == "libc.so.6" or name.startswith(("ld-linux", "ld64.so.")):
        return "glibc"
    return None


@dataclass
class Finding:
    severity: str
    kind: str
    member: str | None
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "kind": self.kind,
            "member": self.member,
            "detail": self.detail,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(data["severity"], data["kind"], data["member"], data["detail"],
                   dict(data["evidence"]))  # fmt: skip


@dataclass
class Verdict:
    wheel: str
    status: str
    path: str | None = None
    error: str | None = None
    claims: list[str] = field(default_factory=list)
    per_claim: list[dict[str, Any]] = field(default_factory=list)  # {"tag", "holds"}
    minimal_tag: str | None = None
    minimal_tags: dict[str, str] = field(default_factory=dict)
    required_glibc: str | None = None
    #: the ABI tag's claim, for an abi3 wheel: {"claim": "cp39-abi3", "holds", "minimal_tag":
    #: the oldest python tag the binaries allow ("cp311-abi3"; None: none does), "needs"}
    abi3: dict[str, Any] | None = None
    findings: list[Finding] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    strict: bool = False
    engine: str | None = None

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "violation"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON Lines object of the output contract (``data/check-schema.json``)."""
        return {
            "schema_version": VERDICT_SCHEMA_VERSION,
            "wheel": self.wheel,
            "path": self.path,
            "status": self.status,
            "error": self.error,
            "claims": list(self.claims),
            "per_claim": [dict(c) for c in self.per_claim],
            "minimal_tag": self.minimal_tag,
            "minimal_tags": dict(self.minimal_tags),
            "required_glibc": self.required_glibc,
            "abi3": dict(self.abi3) if self.abi3 is not None else None,
            "findings": [f.to_dict() for f in self.findings],
            "policy": dict(self.policy),
            "exclude": list(self.exclude),
            "strict": self.strict,
            "engine": self.engine,
        }

    def to_json(self) -> str:
        """Compact JSON of :meth:`to_dict` (what the store keeps)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """The verdict a :meth:`to_dict` object describes (one of this schema version)."""
        if data.get("schema_version") != VERDICT_SCHEMA_VERSION:
            msg = (f"verdict schema {data.get('schema_version')!r}: this version reads "
                   f"{VERDICT_SCHEMA_VERSION}")  # fmt: skip
            raise ValueError(msg)
        return cls(
            wheel=data["wheel"],
            status=data["status"],
            path=data["path"],
            error=data["error"],
            claims=list(data["claims"]),
            per_claim=[dict(c) for c in data["per_claim"]],
            minimal_tag=data["minimal_tag"],
            minimal_tags=dict(data["minimal_tags"]),
            required_glibc=data["required_glibc"],
            abi3=dict(data["abi3"]) if data["abi3"] is not None else None,
            findings=[Finding.from_dict(f) for f in data["findings"]],
            policy=dict(data["policy"]),
            exclude=list(data["exclude"]),
            strict=data["strict"],
            engine=data["engine"],
        )

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        """The inverse of :meth:`to_json`: a verdict back from the store or another process."""
        return cls.from_dict(json.loads(text))


# ---------------------------------------------------------------------------------------------
# Per-binary facts derived once, independent of any claim.


def elf_arch(elf: ElfFacts) -> tuple[str | None, str]:
    """(wheel arch name or None, human description) of one ELF, auditwheel's rules."""
    arch = _ARCH_BY_MACHINE.get((elf.machine, elf.elf_class, elf.endian))
    desc = arch or f"e_machine {elf.machine}, ELF{elf.elf_class}, {elf.endian}-endian"
    if arch == "armv7l":
        if elf.e_flags & ArmFlags.EABIMASK != ArmFlags.EABI_VER5:
            return None, f"ARM EABI {(elf.e_flags & ArmFlags.EABIMASK) >> 24} (armv7l needs EABI5)"
        if not elf.e_flags & ArmFlags.ABI_FLOAT_HARD:
            return None, "ARM soft-float (armv7l needs hard-float)"
    return arch, desc


def isa_level(elf: ElfFacts) -> int:
    """x86-64 micro-architecture level the binary declares it needs (1 = baseline)."""
    bits = elf.x86_isa_needed or 0
    for bit, level in _ISA_LEVELS:
        if bits & bit:
            return level
    return 1


def elf_libc(elf: ElfFacts) -> tuple[str | None, list[str]]:
    """("glibc" | "musl" | "mixed" | None, evidence) from PT_INTERP, DT_NEEDED, versions,
    extension suffix."""
    seen: dict[str, list[str]] = {}
    if elf.interpreter:
        fam = _libc_sonames(posixpath.basename(elf.interpreter))
        if fam:
            seen.setdefault(fam, []).append(f"PT_INTERP {elf.interpreter}")
    for n in elf.needed:
        fam = _libc_sonames(n)
        if fam:
            seen.setdefault(fam, []).append(f"DT_NEEDED {n}")
    for ln in elf.version_needs:
        if _is_glibc_lib(ln.file) and any(v.name.startswith("GLIBC_") for v in ln.versions):
            seen.setdefault("glibc", []).append(f"GLIBC_ versions from {ln.file}")
            break
    base = posixpath.basename(elf.member)
    if base.endswith(("-linux-musl.so", "-musleabihf.so")):
        seen.setdefault("musl", []).append(f"extension suffix of {base}")
    elif base.endswith(("-linux-gnu.so", "-gnueabihf.so")):
        m = _EXT_SUFFIX.search(base)
        if m and m.group(1) == "3" and int(m.group(2)) >= 11:  # musl used -gnu before 3.11
            seen.setdefault("glibc", []).append(f"extension suffix of {base}")
    if len(seen) > 1:
        return "mixed", [e for v in seen.values() for e in v]
    for fam, ev in seen.items():
        return fam, ev
    return None, []


def installed_path(member: str) -> str:
    """Where a member lands in site-packages: ``*.data/purelib|platlib/x`` -> ``x``."""
    top, _, rest = member.partition("/")
    if top.endswith(".data"):
        scheme, _, inner = rest.partition("/")
        if scheme in ("purelib", "platlib"):
            return inner
    return member


def _search_dirs(entries: Sequence[str], origin: str) -> list[str]:
    out = []
    for e in entries:
        if "$ORIGIN" not in e and "${ORIGIN}" not in e:
            continue  # absolute or CWD-relative: never inside the installed wheel
        p = e.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
        p = posixpath.normpath(p) if p else "."
        if p != ".." and not p.startswith("../"):
            out.append(p)
    return out


@dataclass
class _Bin:
    elf: ElfFacts
    path: str  # installed path
    arch: str | None
    arch_desc: str
    libc: str | None
    libc_evidence: list[str]
    rpath_dirs: list[str]
    runpath_dirs: list[str]
    resolved: dict[str, str] = field(default_factory=dict)  # needed -> installed path
    internal: set[str] = field(default_factory=set)  # needed names satisfied inside the wheel
    names: dict[str | None, set[str]] = field(default_factory=dict)  # _imported_names cache


def _prepare(facts: WheelFacts) -> list[_Bin]:
    bins = []
    for e in facts.elfs:
        path = installed_path(e.member)
        origin = posixpath.dirname(path) or "."
        arch, desc = elf_arch(e)
        libc, ev = elf_libc(e)
        bins.append(
            _Bin(e, path, arch, desc, libc, ev,
                 _search_dirs(e.rpath, origin), _search_dirs(e.runpath, origin))
        )  # fmt: skip
    _resolve(bins)
    return bins


def _resolve(bins: list[_Bin]) -> None:
    """Fill ``internal``: the DT_NEEDED names each binary gets from inside the wheel."""
    by_path = {b.path: b for b in bins}
    for root in bins:
        names = {posixpath.basename(root.path)}
        if root.elf.soname:
            names.add(root.elf.soname)
        loaded = {root.path}
        queue: list[tuple[_Bin, list[str]]] = [(root, [])]
        steps = 0
        while queue and steps <= len(bins):
            steps += 1
            obj, chain = queue.pop(0)
            own_rpath = [] if obj.elf.runpath else obj.rpath_dirs
            search = obj.runpath_dirs if obj.elf.runpath else own_rpath + chain
            for need in obj.elf.needed:
                if _is_loader(need):
                    continue
                if need in names:
                    obj.internal.add(need)
                    continue
                for d in search:
                    cand = by_path.get(posixpath.normpath(posixpath.join(d, need)))
                    if cand is None or cand.elf.machine != obj.elf.machine or (
                        cand.elf.elf_class != obj.elf.elf_class
                    ):
                        continue
                    obj.internal.add(need)
                    obj.resolved.setdefault(need, cand.path)
                    names.add(need)
                    if cand.elf.soname:
                        names.add(cand.elf.soname)
                    if cand.path not in loaded:
                        loaded.add(cand.path)
                        queue.append((cand, own_rpath + chain))
                    break


# ---------------------------------------------------------------------------------------------
# Judging one claim (or one candidate policy for the minimal tag).


@dataclass
class _Ctx:
    facts: WheelFacts
    bins: list[_Bin]
    exclude: tuple[str, ...]


def _imported_names(b: _Bin, library: str | None) -> set[str]:
    """Strong imported names that may bind to ``library`` (unversioned ones may bind anywhere).

    A weak undefined reference is optional: the loader binds it to NULL when nothing defines
    it, and the object still loads (auditwheel's blacklist skips them too)."""
    cached = b.names.get(library)
    if cached is not None:
        return cached
    out: set[str] = set()
    for g in b.elf.imports:
        if g.library is None or g.library == library:
            if g.weak_count and g.weak_count >= g.count:
                continue
            out.update(g.names)
            out.difference_update(g.weak_names)
    b.names[library] = out
    return out


def _weak_names(b: _Bin, library: str | None) -> set[str]:
    """Names imported only weakly that may bind to ``library``."""
    out: set[str] = set()
    for g in b.elf.imports:
        if g.library is None or g.library == library:
            out.update(g.weak_names)
            if g.weak_count and g.weak_count >= g.count:
                out.update(g.names)  # schema-1 facts: a group all of whose names are weak
    return out - _imported_names(b, library)


def _tolerated_weak(ctx: _Ctx, claim_tag: str, pol: ResolvedPolicy) -> list[Finding]:
    """Info: weak imports the claim's policy would refuse if they were strong (blacklisted,
    or only in musl >= 1.2), tolerated because the loader copes with their absence."""
    out: list[Finding] = []
    for b in ctx.bins:
        e = b.elf
        if b.arch != pol.arch or (b.libc is not None and b.libc != pol.libc):
            continue
        for lib, banned in pol.blacklist.items():
            if lib in e.needed and (hits := sorted(_weak_names(b, lib) & banned)):
                out.append(Finding("info", "weak-import", e.member,
                                   f"optional (weak) import of {', '.join(hits[:5])} from {lib},"
                                   f" blacklisted by {pol.tag}; tolerated: the loader binds "
                                   "it to NULL where it is missing",
                                   {"claim": claim_tag, "library": lib, "symbols": hits,
                                    "reason": "blacklisted-symbol", "policy": pol.tag}))
        if pol.forbidden_symbols and (hits := sorted(_weak_names(b, None)
                                                     & pol.forbidden_symbols)):
            out.append(Finding("info", "weak-import", e.member,
                               f"optional (weak) import of {', '.join(hits[:5])}, only in "
                               f"musl >= 1.2; tolerated under {pol.tag}: the loader binds it "
                               "to NULL where it is missing",
                               {"claim": claim_tag, "symbols": hits, "reason": "musl-version",
                                "policy": pol.tag}))
    return out


def _excluded(name: str, exclude: Iterable[str]) -> str | None:
    for pat in exclude:
        if fnmatch.fnmatchcase(name, pat):
            return pat
    return None


def _check(
    ctx: _Ctx, claim_tag: str, claim: Claim, pol: ResolvedPolicy | None
) -> Iterator[Finding]:
    """Violations of one claim (family/version/arch) by every binary of the wheel, lazily
    (the minimal-tag search stops at the first one)."""
    ev0 = {"claim": claim_tag}
    for b in ctx.bins:
        e = b.elf
        m = e.member
        if b.arch != claim.arch:
            yield Finding("violation", "arch-mismatch", m,
                           f"binary is {b.arch_desc}, claim is {claim.arch}",
                           {**ev0, "machine": e.machine, "class": e.elf_class,
                            "endian": e.endian, "e_flags": e.e_flags, "arch": b.arch})
            continue
        if claim.arch == "x86_64" and (lvl := isa_level(e)) > 1:
            yield Finding("violation", "isa-level", m,
                           f"needs x86-64-v{lvl} (GNU_PROPERTY_X86_ISA_1_NEEDED), "
                           "policies assume the x86-64 baseline",
                           {**ev0, "level": lvl, "isa_needed": e.x86_isa_needed})
        if claim.family == "linux" or pol is None:
            continue
        if b.libc is not None and b.libc != pol.libc:
            what = "both glibc and musl" if b.libc == "mixed" else b.libc
            yield Finding("violation", "libc-mismatch", m,
                           f"binary is linked for {what} ({'; '.join(b.libc_evidence[:3])}),"
                           f" {claim.family} needs {pol.libc}",
                           {**ev0, "libc": b.libc, "evidence": b.libc_evidence})
            continue
        yield from _check_versions(ctx, b, claim_tag, pol)
        yield from _check_libraries(ctx, b, claim_tag, pol)
        if pol.forbidden_symbols:
            hits = sorted(_imported_names(b, None) & pol.forbidden_symbols)
            if hits:
                yield Finding("violation", "musl-version", m,
                               f"imports {', '.join(hits[:5])}, only in musl >= 1.2, "
                               f"but {pol.tag} promises musl 1.1",
                               {**ev0, "symbols": hits, "min_musl": "1.2"})


def _check_versions(ctx: _Ctx, b: _Bin, claim_tag: str, pol: ResolvedPolicy) -> list[Finding]:
    out: list[Finding] = []
    e = b.elf
    for ln in e.version_needs:
        if _is_loader(ln.file):
            continue
        if ln.file in b.internal and ln.file not in pol.whitelist:
            continue
        bad = [v.name for v in ln.versions if pol.allows(v.name) is False]
        if not bad:
            continue
        symbols: list[str] = []
        counts = 0
        for g in e.imports:
            if g.library == ln.file and g.version in bad:
                symbols += [f"{n}@{g.version}" for n in g.names]
                counts += g.count
        shown = ", ".join(symbols[:4]) or ", ".join(bad)
        out.append(Finding("violation", "symbol-version", e.member,
                           f"needs {', '.join(sorted(bad))} from {ln.file} ({shown}), "
                           f"newer than {pol.tag} allows",
                           {"claim": claim_tag, "library": ln.file, "versions": sorted(bad),
                            "symbols": sorted(symbols), "symbol_count": counts,
                            "policy": pol.tag}))
    return out


def _check_libraries(ctx: _Ctx, b: _Bin, claim_tag: str, pol: ResolvedPolicy) -> list[Finding]:
    out: list[Finding] = []
    e = b.elf
    for need in e.needed:
        if _is_loader(need) or need in b.internal or need in pol.whitelist:
            continue
        if _excluded(need, ctx.exclude):
            continue
        fam = _libc_sonames(need)
        if fam is not None and fam != pol.libc:
            continue  # reported as libc-mismatch
        elsewhere = sorted(x.elf.member for x in ctx.bins if posixpath.basename(x.path) == need
                           or x.elf.soname == need)
        why = "libpython (extensions must not link it)" if _LIBPYTHON.match(need) else (
            f"bundled as {elsewhere[0]} but not reachable through RPATH/RUNPATH"
            if elsewhere else "not bundled")
        out.append(Finding("violation", "external-library", e.member,
                           f"needs {need}: {why}, not on the {pol.tag} whitelist",
                           {"claim": claim_tag, "library": need, "bundled_elsewhere": elsewhere,
                            "rpath": e.rpath, "runpath": e.runpath, "policy": pol.tag}))
    for lib, banned in pol.blacklist.items():
        if lib not in e.needed:
            continue
        hits = sorted(_imported_names(b, lib) & banned)
        if hits:
            out.append(Finding("violation", "blacklisted-symbol", e.member,
                               f"imports {', '.join(hits[:5])} from {lib}, "
                               f"blacklisted by {pol.tag}",
                               {"claim": claim_tag, "library": lib, "symbols": hits,
                                "policy": pol.tag}))
    return out


# ---------------------------------------------------------------------------------------------
# Claim-independent warnings.


def _warnings(facts: WheelFacts, bins: list[_Bin], claims: list[Claim]) -> list[Finding]:
    out: list[Finding] = []
    if facts.platform_tags:
        fn_tags = expand_tags(
            [f"{'.'.join(facts.python_tags)}-{'.'.join(facts.abi_tags)}-"
             f"{'.'.join(facts.platform_tags)}"]
        )
        if not facts.has_wheel_file:
            out.append(Finding("warning", "wheel-tag-mismatch", None,
                               "no .dist-info/WHEEL file to confirm the filename's tags",
                               {"filename_tags": sorted(fn_tags), "wheel_tags": []}))
        else:
            wt = expand_tags(facts.wheel_tags)
            if wt != fn_tags:
                out.append(Finding("warning", "wheel-tag-mismatch", None,
                                   "WHEEL Tag: lines disagree with the filename "
                                   "(a hand-renamed wheel?)",
                                   {"filename_only": sorted(fn_tags - wt),
                                    "wheel_only": sorted(wt - fn_tags)}))
    out.extend(
        Finding("warning", "linux-tag", None,
                f"{c.tag}: a bare linux tag makes no portability promise; PyPI refuses it",
                {"claim": c.tag})
        for c in claims if c.family == "linux"
    )  # fmt: skip
    out.extend(_archive_findings(facts))
    runtime = cxx_runtime_symbols()
    py_tags = set(facts.python_tags) | set(facts.abi_tags)
    for b in bins:
        e = b.elf
        m = e.member
        if e.has_dynamic and e.stack != "noexec":
            what = "no PT_GNU_STACK (executable stack by default)" if e.stack == "none" else (
                "PT_GNU_STACK is executable")
            out.append(Finding("warning", "exec-stack", m,
                               f"{what}; glibc >= 2.41 refuses to dlopen it",
                               {"pt_gnu_stack": e.stack}))
        if e.textrel:
            out.append(Finding("warning", "textrel", m, "has text relocations (DT_TEXTREL)",
                               {"textrel": True}))
        bad_paths = [p for p in [*e.rpath, *e.runpath]
                     if "$ORIGIN" not in p and "${ORIGIN}" not in p]
        if bad_paths:
            out.append(Finding("warning", "rpath", m,
                               f"RPATH/RUNPATH outside the wheel: {', '.join(bad_paths)}",
                               {"entries": bad_paths, "rpath": e.rpath, "runpath": e.runpath}))
        own = sorted(set(e.runtime_exports) & runtime)
        if own and not (e.soname or "").startswith(("libstdc++", "libgcc_s")):
            out.append(Finding("warning", "cxx-runtime", m,
                               f"exports {len(own)} symbol(s) of libstdc++/libgcc's own runtime "
                               f"(e.g. {own[0]}): a statically linked C++ runtime that can "
                               "interpose on the system one",
                               {"symbols": own, "count": len(own),  # facts cap the list
                                "runtime_export_count": e.runtime_export_count}))
        if (mm := _EXT_SUFFIX.search(posixpath.basename(m))) is not None:
            problems = []
            tag = f"cp{mm.group(1)}{mm.group(2)}"
            if facts.python_tags and tag not in py_tags and not any(
                t.startswith("cp3") and t == tag for t in py_tags
            ):
                problems.append(f"built for {tag}, wheel tags are {sorted(py_tags)}")
            sfx_arch = _MULTIARCH.get(mm.group(4))
            if b.arch is not None and sfx_arch is not None and sfx_arch != b.arch:
                problems.append(f"suffix says {sfx_arch}, binary is {b.arch}")
            if problems:
                out.append(Finding("warning", "abi-suffix", m, "; ".join(problems),
                                   {"suffix_python": tag, "suffix_arch": sfx_arch,
                                    "binary_arch": b.arch}))
        top, _, rest = m.partition("/")
        if (top.endswith(".data") and rest.startswith("purelib/")) or facts.root_is_purelib:
            where = "under .data/purelib/" if top.endswith(".data") else (
                "in a Root-Is-Purelib: true wheel")
            out.append(Finding("warning", "purelib-binary", m,
                               f"binary {where}: installers may place it in purelib",
                               {"root_is_purelib": facts.root_is_purelib}))
    return out


# ---------------------------------------------------------------------------------------------
# The ABI tag: abi3.


#: The first CPython with the Stable ABI (PEP 384): an ``abi3`` wheel's ``cp2X`` tag is no
#: claim any interpreter acts on, so it does not lower the claim of its ``cp3X`` tags.
FIRST_ABI3 = (3, 2)


def _abi3_claim(facts: WheelFacts) -> tuple[int, int] | None:
    """The oldest CPython an ``abi3`` wheel installs on (its lowest ``cpXY`` python tag from
    3.2 on), or None when it claims no abi3 an installer would act on (no abi3 tag, no such
    ``cpXY`` tag)."""
    if "abi3" not in facts.abi_tags:
        return None
    versions = [v for t in facts.python_tags
                if (v := python_tag_version(t)) is not None and v >= FIRST_ABI3]
    return min(versions) if versions else None


def _lowercase_tags(facts: WheelFacts) -> WheelFacts:
    """``facts`` with the filename's tags as installers compare them: packaging's ``Tag``
    lowercases each part, so pip installs ``CP39-ABI3-MANYLINUX2014_X86_64`` as
    ``cp39-abi3-manylinux2014_x86_64`` and the lowercase claim is the one to judge."""
    tags = (facts.python_tags, facts.abi_tags, facts.platform_tags)
    if all(t == t.lower() for group in tags for t in group):
        return facts
    py, abi, plat = ([t.lower() for t in group] for group in tags)
    return replace(facts, python_tags=py, abi_tags=abi, platform_tags=plat)


def _python_imports(e: ElfFacts) -> tuple[list[str], set[str], bool]:
    """(C-API imports, those only weakly imported, whether the list is complete): recorded
    whole since facts schema 4, else taken from the capped unversioned group."""
    if e.python_imports is not None:
        # facts of schema 4 written before versioned C-API imports were collected lack them:
        # the versioned groups' kept names fill what they can
        kept: set[str] = set()  # the versioned groups' kept C-API names
        strong: set[str] = set()
        weakly: set[str] = set()
        for g in e.imports:
            if g.version is not None:
                for n in g.names:
                    if n.startswith(PYTHON_API_PREFIXES):
                        kept.add(n)
                        if n not in g.weak_names:
                            strong.add(n)
                weakly.update(n for n in g.weak_names if n.startswith(PYTHON_API_PREFIXES))
        recorded = set(e.python_imports)
        if kept <= recorded:
            return e.python_imports, set(e.python_weak_imports), True
        weakly |= set(e.python_weak_imports)
        strong |= recorded - set(e.python_weak_imports)
        return sorted(strong | weakly), weakly - strong, True
    names: set[str] = set()
    weak: set[str] = set()
    complete = True
    for g in e.imports:
        if g.library is None and g.version is None:
            names.update(n for n in g.names if n.startswith(PYTHON_API_PREFIXES))
            weak.update(n for n in g.weak_names if n.startswith(PYTHON_API_PREFIXES))
            complete = complete and g.count <= len(g.names)
    return sorted(names), weak, complete


def _dotted(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def _abi3(facts: WheelFacts, sa: StableAbi, base: tuple[int, int]) -> tuple[
    list[Finding], dict[str, Any]
]:
    """The ``abi3`` claim judged over every ELF member's C-API imports: each must be a
    stable-ABI symbol a Linux build exports (``abi3-symbol``) and none newer than the
    wheel's lowest python tag (``abi3-version``); weak references are tolerated (info)."""
    claim = f"cp{base[0]}{base[1]}-abi3"
    out: list[Finding] = []
    needs = (3, 2)
    outside_any = False
    incomplete = False
    for e in facts.elfs:
        names, weak, complete = _python_imports(e)
        incomplete = incomplete or not complete
        outside: list[str] = []
        newer: dict[str, str] = {}
        w_outside: list[str] = []
        w_newer: dict[str, str] = {}
        for n in names:
            sym = sa.on_linux(n)
            if sym is None:
                (w_outside if n in weak else outside).append(n)
            elif n in weak:
                if sym.added > base:
                    w_newer[n] = _dotted(sym.added)
            else:
                needs = max(needs, sym.added)
                if sym.added > base:
                    newer[n] = _dotted(sym.added)
        ev0: dict[str, Any] = {"claim": claim} if complete else {"claim": claim,
                                                                 "complete": False}
        if outside:
            outside_any = True
            notes = {n: why for n in outside if (why := sa.why_not(n)) != "not in the Stable ABI"}
            out.append(Finding("violation", "abi3-symbol", e.member,
                               f"imports {len(outside)} C-API symbol{'s' * (len(outside) != 1)} "
                               f"outside the Stable ABI ({', '.join(outside[:5])}); {claim} "
                               "promises only stable-ABI symbols",
                               {**ev0, "symbols": outside, "notes": notes}))
        if newer:
            top = max(newer.values(), key=lambda t: tuple(map(int, t.split("."))))
            shown = ", ".join(f"{n} ({v})" for n, v in sorted(
                newer.items(), key=lambda kv: (tuple(map(int, kv[1].split("."))), kv[0]),
                reverse=True)[:5])
            out.append(Finding("violation", "abi3-version", e.member,
                               f"needs Python >= {top} for {shown}; {claim} promises "
                               f"{_dotted(base)}",
                               {**ev0, "symbols": sorted(newer), "added": newer,
                                "needs": top, "python": _dotted(base)}))
        if w_outside or w_newer:
            hits = sorted([*w_outside, *w_newer])
            out.append(Finding("info", "weak-import", e.member,
                               f"optional (weak) import of {', '.join(hits[:5])}, outside the "
                               f"Stable ABI or newer than {claim}; tolerated: the loader binds "
                               "it to NULL where it is missing",
                               {"claim": claim, "symbols": hits, "reason": "abi3",
                                "outside": w_outside, "added": w_newer}))
    holds = not any(f.severity == "violation" for f in out)
    # no binaries, or facts of schema < 4 cut at the name cap: nothing says all they need
    known = bool(facts.elfs) and not outside_any and not incomplete
    return out, {"claim": claim, "holds": holds,
                 "minimal_tag": f"cp{needs[0]}{needs[1]}-abi3" if known else None,
                 "needs": _dotted(needs) if known else None}


# ---------------------------------------------------------------------------------------------


def judge(
    facts: WheelFacts,
    policy: PolicySet | None = None,
    exclude: Sequence[str] = (),
    *,
    strict: bool = False,
    stable_abi: StableAbi | None = None,
) -> Verdict:
    """Judge every Linux platform tag ``facts`` claims, and the ``abi3`` tag; see the module
    docstring."""
    ps = policy or default_policies()
    sa = stable_abi or default_stable_abi()
    facts = _lowercase_tags(facts)
    v = Verdict(wheel=facts.filename, status="ok", claims=[],
                policy={**ps.provenance, "stable_abi": dict(sa.provenance)},
                exclude=list(exclude), strict=strict, engine=facts.engine)
    if facts.error or facts.filename_error:
        v.status = "error"
        v.error = facts.error or f"invalid wheel filename: {facts.filename_error}"
        v.claims = list(facts.platform_tags)
        return v
    v.claims = list(facts.platform_tags)
    claims = parse_claims(facts.platform_tags, ps.aliases())
    if not claims:
        v.status = "not-linux"
        # readers that install different members: whatever the tags, never a clean verdict
        v.findings.extend(_archive_findings(facts))
        if any(f.kind == "zip-confusion" for f in v.findings):
            v.status = "mislabelled"
        if facts.elfs:
            n = len(facts.elfs)
            v.findings.append(Finding("warning", "binary-in-pure-wheel", facts.elfs[0].member,
                                      f"{n} ELF binar{'y' if n == 1 else 'ies'} "
                                      "in a wheel with no Linux platform tag",
                                      {"members": [e.member for e in facts.elfs][:32]}))
        return v
    bins = _prepare(facts)
    ctx = _Ctx(facts, bins, tuple(exclude))
    findings: list[Finding] = []
    for c in claims:
        pol = None if c.libc is None or c.version is None else ps.resolve(c.libc, c.version, c.arch)
        found = list(_check(ctx, c.tag, c, pol))
        if c.libc is not None and pol is None:
            found.append(Finding("violation", "arch-mismatch", None,
                                 f"{c.tag}: no {c.family} policy knows architecture {c.arch}",
                                 {"claim": c.tag, "arch": c.arch}))
        v.per_claim.append({"tag": c.tag, "holds": not found})
        findings.extend(found)
        if pol is not None:
            findings.extend(_tolerated_weak(ctx, c.tag, pol))
    findings.extend(_warnings(facts, bins, claims))
    if (base := _abi3_claim(facts)) is not None:
        found_abi3, v.abi3 = _abi3(facts, sa, base)
        findings.extend(found_abi3)
    if bins:
        _minimal(v, ps, ctx, claims, findings)
        v.required_glibc = _required_glibc(bins, ps, v)
        if v.required_glibc:
            findings.append(Finding("info", "required-glibc", None,
                                    f"the binaries need glibc >= {v.required_glibc}",
                                    {"glibc": v.required_glibc, "minimal_tag": v.minimal_tag}))
    v.findings = _merge(findings)
    if not facts.elfs and not facts.errors and not any(
            f.kind == "zip-confusion" for f in v.findings):
        v.status = "no-binaries"
        v.minimal_tag = None
        v.minimal_tags = {}
        v.per_claim = [{"tag": c.tag, "holds": True} for c in claims]
        return v
    counted = {"violation", "warning"} if strict else {"violation"}
    if any(f.severity in counted for f in v.findings):
        v.status = "mislabelled"
    elif facts.errors:
        v.status = "error"
        v.error = "; ".join(f"{e.member}: {e.message}" for e in facts.errors[:3])
    return v


def _archive_findings(facts: WheelFacts) -> list[Finding]:
    """The archive's anomalies: a ``zip-confusion`` violation where readers disagree on what
    is installed, else a ``zip-anomaly`` warning."""
    out = [Finding("warning", "record-mismatch", None, r, {"record": r})
           for r in facts.record or ()]
    for a in facts.anomalies:
        if a.startswith(CONFUSION_PREFIX):
            out.append(Finding("violation", "zip-confusion", None, a[len(CONFUSION_PREFIX):],
                               {"anomaly": a}))
        else:
            out.append(Finding("warning", "zip-anomaly", None, a, {"anomaly": a}))
    return out


def _wheel_arch(bins: list[_Bin], claims: list[Claim]) -> str:
    arches = Counter(b.arch for b in bins if b.arch)
    for c in claims:
        if c.arch in arches:
            return c.arch
    if arches:
        return arches.most_common(1)[0][0]
    return claims[0].arch


def _minimal(v: Verdict, ps: PolicySet, ctx: _Ctx, claims: list[Claim],
             findings: list[Finding]) -> None:
    arch = _wheel_arch(ctx.bins, claims)
    libcs = {c.libc for c in claims if c.libc}
    if not libcs:
        libcs = {"musl" if any(b.libc == "musl" for b in ctx.bins) else "glibc"}
    for libc in sorted(libcs):  # "glibc" < "musl"
        tag = f"linux_{arch}"
        for p in ps.family(libc, arch):
            pol = ps.resolve(libc, p.version, arch)
            probe = Claim(f"{p.family}_{p.version[0]}_{p.version[1]}_{arch}", p.family, arch,
                          p.version)
            if pol is not None and next(_check(ctx, probe.tag, probe, pol), None) is None:
                tag = probe.tag
                break
        family = "manylinux" if libc == "glibc" else "musllinux"
        v.minimal_tags[family] = tag
    v.minimal_tag = v.minimal_tags.get("manylinux") or v.minimal_tags.get("musllinux")
    for c, pc in zip(claims, v.per_claim, strict=True):
        fam_min = v.minimal_tags.get(c.family)
        if not pc["holds"] or c.version is None or fam_min is None or c.arch != arch:
            continue
        parts = fam_min.split("_")
        if parts[0] != c.family:
            continue
        mv = (int(parts[1]), int(parts[2]))
        if mv < c.version:
            findings.append(Finding("info", "over-conservative", None,
                                    f"{c.tag} holds, and so would the older {fam_min}",
                                    {"claim": c.tag, "could_claim": fam_min}))


def _required_glibc(bins: list[_Bin], ps: PolicySet, v: Verdict) -> str | None:
    best: tuple[tuple[int, int, int], str] | None = None
    for b in bins:
        for ln in b.elf.version_needs:
            if not _is_glibc_lib(ln.file) or _is_loader(ln.file) or ln.file in b.internal:
                continue
            for ver in ln.versions:
                gv = glibc_version(ver.name)
                if gv is not None and (best is None or gv > best[0]):
                    best = (gv, ver.name.partition("_")[2])
    return best[1] if best else None


def _merge(findings: list[Finding]) -> list[Finding]:
    """One finding per (severity, kind, member, detail); the claims it concerns are merged."""
    merged: dict[tuple[str, str, str | None, str], Finding] = {}
    for f in findings:
        claim = f.evidence.get("claim")
        key = (f.severity, f.kind, f.member, f.detail)
        if key in merged:
            prev = merged[key].evidence
            if claim and claim not in prev.setdefault("claims", []):
                prev["claims"].append(claim)
            continue
        ev = {k: val for k, val in f.evidence.items() if k != "claim"}
        if claim:
            ev["claims"] = [claim]
        merged[key] = Finding(f.severity, f.kind, f.member, f.detail, ev)
    return sorted(merged.values(),
                  key=lambda f: (_SEVERITY_ORDER[f.severity], f.kind, f.member or ""))


#: facts (and the wheel's location, kept in the verdict) -> (status, verdict JSON, policy version)
Judge = Callable[["WheelFacts", "str | None"], tuple[str, str, "str | None"]]


def make_judge(
    policy: str | None = None,
    exclude: Sequence[str] = (),
    *,
    strict: bool = False,
    stable_abi: str | None = None,
) -> Judge:
    """A judge over one policy set (``policy``: a policy file, None for the shipped one; the
    same for ``stable_abi``, the abi3 manifest), loaded once: what the pool's workers and
    ``rejudge`` store for each wheel."""
    policies = load_policies(policy)
    sa = load_stable_abi(stable_abi)
    excluded = tuple(exclude)
    version = policy_version({**policies.provenance, "stable_abi": dict(sa.provenance)})

    def run(facts: WheelFacts, path: str | None = None) -> tuple[str, str, str | None]:
        v = judge(facts, policies, excluded, strict=strict, stable_abi=sa)
        if path is not None:
            v.path = path
        return str(v.status), v.to_json(), version

    return run


def policy_version(provenance: dict[str, Any]) -> str | None:
    """A short stable name for a policy set: its auditwheel version + a digest of its
    provenance (the ``policy`` object every verdict carries)."""
    if not provenance:
        return None
    digest = hashlib.sha256(json.dumps(provenance, sort_keys=True).encode()).hexdigest()[:12]
    base = provenance.get("auditwheel_version")
    return f"auditwheel-{base}+{digest}" if base else digest
