"""Policies: what each manylinux/musllinux tag allows, as data generated from auditwheel.

The shipped ``data/policy.json`` is written by ``scripts/generate_policy.py`` from the policy
files of the auditwheel release pinned in the ``test`` extra; it is validated on every load
(PEP 600 monotonicity, as auditwheel does) and its provenance is recorded in every verdict.
``--policy FILE`` (:func:`load_policies`) judges with newer data without a new release.

Claims that name no existing policy get this documented rule (:meth:`PolicySet.resolve`):

* **glibc between or beyond policies** (e.g. ``manylinux_2_30``, ``manylinux_2_45``): the
  ``GLIBC`` prefix gets an *exact* bound — ``GLIBC_x.y[.z]`` is allowed iff ``(x, y)`` is not
  newer than the claim (``GLIBC_PRIVATE`` never). Every other prefix (GLIBCXX, CXXABI, GCC,
  ...), the library whitelist and the blacklist come from the nearest older policy.
* **older than the oldest policy of the arch** (``manylinux_2_3_x86_64``,
  ``manylinux_2_5_aarch64``): the oldest policy of the arch for everything but GLIBC, with the
  same exact GLIBC bound, so such a claim holds only for binaries that really need no newer
  glibc (no aarch64 binary can: its base symbol version is GLIBC_2.17).
* **musllinux beyond 1.2** uses the 1.2 policy; **musllinux 1.1** additionally refuses the
  symbols only musl >= 1.2 provides (``data/musl-1.2.json``, from musl's own headers).
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "ARCHES",
    "MUSL_LIBC_SONAMES",
    "Policy",
    "PolicyError",
    "PolicySet",
    "ResolvedPolicy",
    "cxx_runtime_symbols",
    "default_policies",
    "glibc_version",
    "load_policies",
    "musl_12_symbols",
]

#: Every architecture a policy may name (PEP 599/600/656 spelling).
ARCHES = (
    "x86_64", "i686", "aarch64", "armv7l", "ppc64le", "ppc64", "s390x", "riscv64", "loongarch64",
)  # fmt: skip

#: musl's libc soname as Alpine (and musllinux images) spell it; upstream musl uses ``libc.so``.
MUSL_LIBC_SONAMES = {
    "x86_64": "libc.musl-x86_64.so.1",
    "i686": "libc.musl-x86.so.1",
    "aarch64": "libc.musl-aarch64.so.1",
    "armv7l": "libc.musl-armv7.so.1",
    "ppc64le": "libc.musl-ppc64le.so.1",
    "s390x": "libc.musl-s390x.so.1",
    "riscv64": "libc.musl-riscv64.so.1",
    "loongarch64": "libc.musl-loongarch64.so.1",
}

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


class PolicyError(ValueError):
    """A policy file is missing, malformed or violates PEP 600 monotonicity."""


def glibc_version(version_name: str) -> tuple[int, int, int] | None:
    """``GLIBC_2.3.4`` -> (2, 3, 4); None for ``GLIBC_PRIVATE`` or another prefix."""
    prefix, _, ver = version_name.partition("_")
    if prefix != "GLIBC":
        return None
    m = _VERSION.match(ver)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass(frozen=True)
class Policy:
    """One policy of the data file, for every arch it knows."""

    name: str  # e.g. "manylinux_2_17"
    family: str  # "manylinux" or "musllinux"
    libc: str  # "glibc" or "musl"
    version: tuple[int, int]
    aliases: tuple[str, ...]
    priority: int
    symbol_versions: dict[str, dict[str, frozenset[str]]]  # arch -> prefix -> versions
    whitelist: frozenset[str]
    blacklist: dict[str, frozenset[str]]


@dataclass(frozen=True)
class ResolvedPolicy:
    """What one claim (family, version, arch) allows, ready to judge against."""

    tag: str  # canonical PEP 600/656 spelling, e.g. "manylinux_2_17_x86_64"
    family: str
    libc: str
    version: tuple[int, int]
    arch: str
    symbol_versions: dict[str, frozenset[str]]  # prefix -> allowed "PREFIX_x.y" names
    whitelist: frozenset[str]
    blacklist: dict[str, frozenset[str]]
    exact: bool  # True: an existing policy; False: synthesised by the documented rule
    based_on: str | None = None  # the policy the rule started from
    glibc_max: tuple[int, int] | None = None  # exact GLIBC bound of a synthesised policy
    forbidden_symbols: frozenset[str] = field(default_factory=frozenset)  # musl 1.1

    def allows(self, version_name: str) -> bool | None:
        """Whether a needed symbol version is allowed; None when the policy has no opinion
        (a prefix it does not list, e.g. ``OPENSSL_1_1_0``, as auditwheel ignores them)."""
        prefix = version_name.partition("_")[0]
        if prefix == "GLIBC" and self.glibc_max is not None:
            gv = glibc_version(version_name)
            return gv is not None and gv[:2] <= self.glibc_max
        allowed = self.symbol_versions.get(prefix)
        if allowed is None:
            return None
        return version_name in allowed


@dataclass
class PolicySet:
    policies: list[Policy]
    provenance: dict[str, Any]

    def family(self, libc: str, arch: str) -> list[Policy]:
        """Policies of ``libc`` that know ``arch``, oldest first."""
        return sorted(
            (p for p in self.policies if p.libc == libc and arch in p.symbol_versions),
            key=lambda p: p.version,
        )

    def aliases(self) -> dict[str, tuple[int, int]]:
        """Legacy alias -> PEP 600 version, e.g. ``manylinux2014`` -> (2, 17)."""
        return {a: p.version for p in self.policies for a in p.aliases}

    def resolve(self, libc: str, version: tuple[int, int], arch: str) -> ResolvedPolicy | None:
        """The policy a claim is judged by (module docstring); None if no policy knows arch."""
        fam = self.family(libc, arch)
        if not fam:
            return None
        family = fam[0].family
        tag = f"{family}_{version[0]}_{version[1]}_{arch}"
        exact = [p for p in fam if p.version == version]
        older = [p for p in fam if p.version < version]
        base = exact[0] if exact else (older[-1] if older else fam[0])
        r = _resolved(base, arch, tag, exact=bool(exact))
        musl12 = musl_12_symbols()
        if libc == "musl" and version < (1, 2) and arch in musl12["archs"]:
            r = _replace(r, forbidden_symbols=frozenset(musl12["symbols"]))
        if exact:
            return r
        if libc != "glibc":
            return _replace(r, version=version)
        sv = dict(r.symbol_versions)
        sv.pop("GLIBC", None)  # replaced by the numeric bound (ResolvedPolicy.allows)
        return _replace(r, version=version, symbol_versions=sv, glibc_max=version)

    def by_name(self, name: str) -> Policy | None:
        for p in self.policies:
            if p.name == name or name in p.aliases:
                return p
        return None


def _resolved(p: Policy, arch: str, tag: str, *, exact: bool) -> ResolvedPolicy:
    whitelist = set(p.whitelist)
    if p.libc == "musl" and "libc.so" in whitelist and arch in MUSL_LIBC_SONAMES:
        whitelist.add(MUSL_LIBC_SONAMES[arch])
    sv = {pre: frozenset(f"{pre}_{v}" for v in vs) for pre, vs in p.symbol_versions[arch].items()}
    return ResolvedPolicy(
        tag=tag, family=p.family, libc=p.libc, version=p.version, arch=arch,
        symbol_versions=sv, whitelist=frozenset(whitelist), blacklist=p.blacklist,
        exact=exact, based_on=f"{p.name}_{arch}",
    )  # fmt: skip


def _replace(r: ResolvedPolicy, **changes: Any) -> ResolvedPolicy:
    import dataclasses

    return dataclasses.replace(r, **changes)


def _validate(doc: Any, origin: str) -> PolicySet:
    def bad(msg: str) -> PolicyError:
        return PolicyError(f"{origin}: {msg}")

    if not isinstance(doc, dict) or not isinstance(doc.get("policies"), list):
        raise bad("expected an object with a 'policies' list")
    if doc.get("format") != 1:
        raise bad(f"unsupported format {doc.get('format')!r} (expected 1)")
    prov = doc.get("provenance")
    if not isinstance(prov, dict):
        raise bad("missing 'provenance' object")
    policies = []
    for i, p in enumerate(doc["policies"]):
        try:
            sv = {
                str(arch): {str(pre): frozenset(map(str, vs)) for pre, vs in pres.items()}
                for arch, pres in p["symbol_versions"].items()
            }
            pol = Policy(
                name=str(p["name"]),
                family=str(p["family"]),
                libc=str(p["libc"]),
                version=(int(p["version"][0]), int(p["version"][1])),
                aliases=tuple(map(str, p["aliases"])),
                priority=int(p["priority"]),
                symbol_versions=sv,
                whitelist=frozenset(map(str, p["lib_whitelist"])),
                blacklist={str(k): frozenset(map(str, v)) for k, v in p["blacklist"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise bad(f"policy #{i} is malformed: {e!r}") from e
        if (pol.family, pol.libc) not in {("manylinux", "glibc"), ("musllinux", "musl")}:
            raise bad(f"{pol.name}: unknown family/libc {pol.family}/{pol.libc}")
        if pol.name != f"{pol.family}_{pol.version[0]}_{pol.version[1]}":
            raise bad(f"{pol.name}: name does not match version {pol.version}")
        unknown = set(sv) - set(ARCHES)
        if unknown:
            raise bad(f"{pol.name}: unknown architectures {sorted(unknown)}")
        policies.append(pol)
    for libc in ("glibc", "musl"):
        fam = sorted((p for p in policies if p.libc == libc), key=lambda p: p.version)
        # Older policies must be subsets of newer ones (auditwheel's PEP 600 check).
        whitelist: set[str] = set()
        seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for a, b in itertools.pairwise(fam):
            if a.version == b.version or a.priority <= b.priority:
                raise bad(f"{a.name}/{b.name}: versions and priorities must be strictly ordered")
        for p in fam:
            if not whitelist <= p.whitelist:
                raise bad(f"{p.name}: whitelist drops {sorted(whitelist - p.whitelist)}")
            whitelist |= p.whitelist
            for arch, pres in p.symbol_versions.items():
                for pre, vs in pres.items():
                    if not seen[arch][pre] <= vs:
                        missing = sorted(seen[arch][pre] - vs)
                        raise bad(f"{p.name}_{arch}: {pre} versions missing {missing}")
                    seen[arch][pre] |= vs
    return PolicySet(policies, dict(prov))


def load_policies(path: str | Path | None = None) -> PolicySet:
    """Load and validate a policy file (the shipped one when ``path`` is None)."""
    if path is None:
        return default_policies()
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PolicyError(f"{path}: cannot read policy file: {e}") from e
    ps = _validate(doc, str(path))
    ps.provenance = {**ps.provenance, "file": str(path)}
    return ps


def _data(name: str) -> Any:
    return json.loads((resources.files("wheelscan") / "data" / name).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def default_policies() -> PolicySet:
    ps = _validate(_data("policy.json"), "wheelscan/data/policy.json")
    ps.provenance = {**ps.provenance, "file": "wheelscan/data/policy.json"}
    return ps


@functools.lru_cache(maxsize=1)
def musl_12_symbols() -> dict[str, Any]:
    """``{"symbols": {target: public name}, "archs": [...], "provenance": {...}}``."""
    d = _data("musl-1.2.json")
    return {"symbols": dict(d["symbols"]), "archs": list(d["archs"]), "provenance": d["provenance"]}


@functools.lru_cache(maxsize=1)
def cxx_runtime_symbols() -> frozenset[str]:
    return frozenset(_data("cxx-runtime.json")["symbols"])
