"""Compare wheelscan's verdicts with auditwheel 6.8.2 (run hermetically) over real wheels.

For every wheel under the given directories: wheelscan's minimal tag and ok/mislabelled
decision next to auditwheel's overall policy and its decision on the filename's claims,
with the time each took. auditwheel runs through its Python API with no host library paths
(tests/helpers/aw_hermetic.py). Not a CI requirement: a benchmark and a source of real
findings.

    python benchmarks/compare_auditwheel.py [--engine lief|native] [--json OUT] DIR...
    python benchmarks/compare_auditwheel.py --corpus benchmarks/corpus-differential.json \
        [--cache DIR] [--jobs 2] [--json OUT] [--table benchmarks/DIFFERENCES.md]

With ``--corpus`` the wheels are that pinned corpus's files in the fetch cache
(benchmarks/fetch_corpus.py; ``--cache`` as there). ``--jobs`` runs that many worker
processes. At the end: agreement on status (ok/mislabelled against auditwheel's decision on
the filename's claims) and on ``minimal_tag`` (against auditwheel's overall policy), N/N, and
every difference sorted into a named class (:data:`CLASSES`); ``--table`` writes that table.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from fetch_corpus import default_cache, load_corpus  # noqa: E402
from helpers.aw_hermetic import claim_holds, hermetic, show  # noqa: E402

from wheelscan import judge, scan_wheel  # noqa: E402
from wheelscan.rules.policy import default_policies  # noqa: E402
from wheelscan.rules.tags import parse_claims  # noqa: E402


@contextmanager
def musl_host(version: str | None) -> Iterator[None]:
    """auditwheel as run on a musl ``version`` host (e.g. "1_1"); None: as hermetic() leaves it.

    auditwheel judges a musllinux wheel against one musllinux policy only, the host's musl
    version (latest known, musllinux_1_2, when it cannot tell), so the hermetic run alone can
    never answer musllinux_1_1. Passing auditwheel's own ``musl_policy`` asks it as a musl 1.1
    host (Alpine 3.12-3.13) would.
    """
    from auditwheel import policy, wheel_abi
    from auditwheel.libc import Libc

    if version is None:
        yield
        return
    orig = policy.WheelPolicies

    def patched(*, libc: Any, arch: Any, wheel_fn: Any = None, musl_policy: Any = None) -> Any:
        if libc == Libc.MUSL and musl_policy is None:
            musl_policy = f"musllinux_{version}"
        return orig(libc=libc, arch=arch, wheel_fn=wheel_fn, musl_policy=musl_policy)

    wheel_abi.WheelPolicies = patched  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        wheel_abi.WheelPolicies = orig  # type: ignore[misc]


def aw_bundled_versions(path: Path, tmp: Path) -> list[str]:
    """Versions auditwheel counts that are needed from a library the wheel itself bundles."""
    from auditwheel.wheel_abi import analyze_wheel_abi, get_wheel_elfdata
    from auditwheel.wheeltools import get_wheel_architecture, get_wheel_libc

    get_wheel_elfdata.cache_clear()
    with zipfile.ZipFile(path) as z:
        inside = {posixpath.basename(n) for n in z.namelist()}
    try:
        with hermetic(tmp):
            info = analyze_wheel_abi(get_wheel_libc(path.name), get_wheel_architecture(path.name),
                                     path, frozenset(), disable_isa_ext_check=False,
                                     allow_graft=False, args_ldpaths="")
    except Exception:  # the first run already recorded auditwheel's refusal
        return []
    return sorted(f"{v}@{lib}" for lib, vs in info.versioned_symbols.items() if lib in inside
                  for v in vs)


def _aw(path: Path, tmp: Path, family: str | None) -> tuple[Any, str | None]:
    """auditwheel's answer (asked about ``family``'s libc when given), and its first answer
    before a musllinux_1_2 answer was asked again as on a musl 1.1 host."""
    libc = {"manylinux": "glibc", "musllinux": "musl", None: None}[family]
    aw = show(path, tmp, libc=libc)
    first = aw.overall
    if aw.overall and aw.overall.startswith("musllinux_1_2_"):
        with musl_host("1_1"):
            aw11 = show(path, tmp, libc=libc)
        if aw11.overall and aw11.overall.startswith("musllinux_1_1_"):
            aw = aw11
    return aw, first


def compare(path: Path, engine: str, tmp: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    facts = scan_wheel(path, engine=engine)
    v = judge(facts)
    t1 = time.perf_counter()
    claims = [c.canonical for c in parse_claims(v.claims, default_policies().aliases())]
    musl = any(c.startswith("musllinux_") for c in claims)
    families = {c.split("_", 1)[0] for c in claims}
    # auditwheel judges one libc per run, taken from the file name; a wheel tagged for both
    # (a static executable runs on either) is asked once per libc and each claim is judged by
    # the answer for its own libc
    if len(families) > 1:
        answers = {f: _aw(path, tmp, f) for f in sorted(families)}
        mine = (v.minimal_tag or "").split("_", 1)[0]
        aw, aw12 = answers.get(mine, answers["manylinux"])
        aw_ok = all(
            answers[c.split("_", 1)[0]][0].error is None
            and claim_holds(c, answers[c.split("_", 1)[0]][0].overall)
            for c in claims
        )
    else:
        aw, aw12 = _aw(path, tmp, None)
        aw_ok = (
            aw.error is None and bool(claims) and all(claim_holds(c, aw.overall) for c in claims)
        )
    t2 = time.perf_counter()
    ours_ok = v.status == "ok"
    row = {
        "wheel": path.name,
        "status": v.status,
        "minimal_tag": v.minimal_tag,
        "error": v.error or next((f"{e.member}: {e.message}" for e in facts.errors), None),
        "claims": claims,
        "auditwheel": aw.overall,
        "auditwheel_musl12": aw12 if musl else None,
        "auditwheel_sym": aw.sym,
        "auditwheel_ok": aw_ok,
        "auditwheel_error": aw.error,
        "agree_tag": v.minimal_tag == aw.overall,
        "agree_decision": ours_ok == aw_ok,
        "violations": [f"{f.kind}: {f.member}: {f.detail}" for f in v.violations][:8],
        "findings": sorted({f"{f.severity} {f.kind}" for f in v.findings}),
        "needed": sorted({n for e in facts.elfs for n in e.needed}),
        "static": sorted(e.member for e in facts.elfs if not e.has_dynamic),
        "machines": sorted({e.machine for e in facts.elfs}),
        "wheelscan_s": round(t1 - t0, 3),
        "auditwheel_s": round(t2 - t1, 3),
    }
    if not (row["agree_tag"] and row["agree_decision"]):
        row["aw_bundled_versions"] = aw_bundled_versions(path, tmp)
    return row


# Every known class of difference: (name, what it is, does this row belong to it).
# The first class that matches names a row; a difference no class matches is "unclassified".
Row = dict[str, Any]


def _viol(r: Row, kind: str, text: str = "") -> bool:
    return any(x.startswith(kind + ":") and text in x for x in r["violations"])


def _only_viol(r: Row, kind: str) -> bool:
    return bool(r["violations"]) and all(x.startswith(kind + ":") for x in r["violations"])


def _s390x_hash(r: Row) -> bool:
    return "s390x" in r["wheel"] and bool(r["error"]) and "outside dynstr" in r["error"]


def _musl_libc_so(r: Row) -> bool:
    return (r["status"] == "ok" and "libc.so" in r["needed"]
            and (r["auditwheel"] or "").startswith("linux_")
            and (r["minimal_tag"] or "").startswith("musllinux_"))


def _bundled_versions(r: Row) -> bool:
    return bool(r.get("aw_bundled_versions")) and not r["agree_tag"]


def _below_oldest_policy(r: Row) -> bool:
    """wheelscan ok, auditwheel's answer its oldest policy for the arch, and a claim older."""
    if r["status"] != "ok" or not r["agree_tag"] or not r["auditwheel"]:
        return False
    fam, _, _, arch = r["auditwheel"].split("_", 3)
    known = default_policies().family("glibc" if fam == "manylinux" else "musl", arch)
    return bool(known) and f"{known[0].name}_{arch}" == r["auditwheel"] and any(
        c.startswith(fam + "_") and not claim_holds(c, r["auditwheel"]) for c in r["claims"]
    )


def _musl12_symbols(r: Row) -> bool:
    return (_viol(r, "musl-version") and (r["minimal_tag"] or "").startswith("musllinux_1_2_")
            and (r["auditwheel"] or "").startswith("musllinux_1_1_"))


CLASSES: list[tuple[str, str, Any]] = [
    ("weak-blacklisted-import",
     "weak undefined `__cxa_thread_atexit_impl` (Rust std) judged as a blacklisted import; "
     "auditwheel skips weak undefined symbols. Was a wheelscan bug (44 wheels), fixed: weak "
     "imports are an info finding",
     lambda r: _only_viol(r, "blacklisted-symbol") and _viol(r, "blacklisted-symbol",
                                                               "__cxa_thread_atexit_impl")),
    ("s390x-sysv-hash-8-byte-words",
     "native engine: on s390x the SysV `.hash` words are 8 bytes (sh_entsize 8), read as 4, "
     "so nchain (the symbol count) is wrong and a symbol name offset falls outside .dynstr: "
     "wheelscan says error where auditwheel reads the wheel. Was a wheelscan bug (10 "
     "wheels; lief has it too where section headers are absent), fixed",
     _s390x_hash),
    ("musl-needed-libc.so",
     "Rust `*-unknown-linux-musl` cdylibs NEED the bare name `libc.so`; auditwheel only "
     "whitelists `libc.musl-ARCH.so.1`, calls it an external library and says linux_ARCH. "
     "musl's loader maps `libc.so` to itself, so wheelscan's musllinux verdict is right",
     _musl_libc_so),
    ("versioned-need-on-bundled-library",
     "auditwheel counts version needs on libraries the wheel bundles (a grafted "
     "`libatomic-HASH.so.1.0.0`: `LIBATOMIC_1.0`, absent from manylinux_2_17's policy) and "
     "raises the tag; wheelscan judges needs on bundled non-system libraries not at all: the "
     "bundled copy provides them, so wheelscan is right per the loader",
     _bundled_versions),
    ("claim-below-oldest-policy",
     "a claim older than any policy for its arch (manylinux_2_28_riscv64; riscv64 policies "
     "start at 2_31): auditwheel cannot confirm it; wheelscan judges it by the numeric glibc "
     "bound with the oldest policy's libraries, which a static executable meets",
     _below_oldest_policy),
    ("musl-1.2-only-symbols",
     "wheelscan requires musllinux_1_2 for symbols only musl >= 1.2 provides; auditwheel "
     "(even as on a musl 1.1 host) checks no musl symbols",
     _musl12_symbols),
]


def classify(r: Row) -> str | None:
    """None when wheelscan and auditwheel agree, else the name of the row's class."""
    if r["agree_tag"] and r["agree_decision"]:
        return None
    for name, _, match in CLASSES:
        if match(r):
            return str(name)
    return "unclassified"


_TMP: list[Path] = []


def _work(args: tuple[str, str]) -> Row:
    """One wheel in a worker process (each with its own scratch directory)."""
    path, engine = args
    if not _TMP:
        _TMP.append(Path(tempfile.mkdtemp(prefix="wheelscan-aw-")))
    try:
        return compare(Path(path), engine, _TMP[0])
    except Exception as e:  # keep going; the row says which wheel broke what
        return {"wheel": Path(path).name, "status": "crash", "minimal_tag": None,
                "auditwheel": None, "auditwheel_sym": None, "auditwheel_ok": False,
                "auditwheel_error": None, "agree_tag": False, "agree_decision": False,
                "violations": [f"crash: {type(e).__name__}: {e}"], "findings": [],
                "wheelscan_s": 0.0, "auditwheel_s": 0.0}


def table(rows: list[Row], command: str, meta: dict[str, dict[str, Any]]) -> str:
    n = len(rows)
    st = sum(r["agree_decision"] for r in rows)
    tg = sum(r["agree_tag"] for r in rows)
    counts = Counter(r["class"] for r in rows if r["class"])
    described = {name: what for name, what, _ in CLASSES}
    out = [
        "# wheelscan vs auditwheel 6.8.2 on the differential corpus",
        "",
        f"Reproduce: `{command}`",
        "",
        f"- wheels: {n}",
        f"- status (ok/mislabelled vs auditwheel's decision on the claims): {st}/{n} agree",
        f"- minimal_tag (vs auditwheel's overall policy): {tg}/{n} agree",
        f"- both: {sum(1 for r in rows if not r['class'])}/{n} agree",
        "",
        "| class | wheels | status differs | minimal_tag differs | what it is | example |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in counts.most_common():
        mine = [r for r in rows if r["class"] == name]
        ex = mine[0]
        out.append(
            f"| `{name}` | {c} | {sum(not r['agree_decision'] for r in mine)}"
            f" | {sum(not r['agree_tag'] for r in mine)}"
            f" | {described.get(name, 'not characterised')} | `{ex['wheel']}`: wheelscan "
            f"{ex['status']} / {ex['minimal_tag']}, "
            f"auditwheel {ex['auditwheel'] or ex['auditwheel_error']} |"
        )
    by: dict[str, Counter[str]] = {}
    for r in rows:
        m = meta.get(r["wheel"], {})
        for k in ("toolchain", "arch", "libc"):
            by.setdefault(k, Counter())[str(m.get(k, "?"))] += 1
    out += ["", "Corpus: " + "; ".join(
        f"{k}: " + ", ".join(f"{v} {c}" for v, c in sorted(cnt.items())) for k, cnt in by.items()),
        "", "## Every difference", "",
        "| wheel | class | wheelscan | auditwheel | first violation |", "|---|---|---|---|---|"]
    for r in rows:
        if r["class"]:
            first = (r["violations"] or [""])[0].replace("|", "\\|")[:160]
            out.append(f"| `{r['wheel']}` | `{r['class']}` | {r['status']} / {r['minimal_tag']} | "
                       f"{r['auditwheel'] or (r['auditwheel_error'] or '')[:80]} | {first} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--engine", default="lief")
    ap.add_argument("--corpus", type=Path, default=None, help="pinned corpus file (JSON)")
    ap.add_argument("--cache", type=Path, default=None, help="fetch cache (with --corpus)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--json", type=Path, default=None, help="write all rows here")
    ap.add_argument("--table", type=Path, default=None, help="write the class table here")
    args = ap.parse_args(argv)
    wheels = sorted(p for d in args.dirs for p in (d.rglob("*.whl") if d.is_dir() else [d]))
    meta: dict[str, dict[str, Any]] = {}
    if args.corpus:
        cache = args.cache or default_cache()
        for e in load_corpus(args.corpus):
            meta[e["filename"]] = e
            p = cache / e["filename"]
            if p.is_file() and p.stat().st_size == e["size"]:
                wheels.append(p)
            else:
                print(f"missing from {cache}: {e['filename']} (run fetch_corpus.py)", flush=True)
    if not wheels:
        ap.error("no wheels: give DIRs or --corpus")
    rows = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for r in pool.map(_work, [(str(p), args.engine) for p in wheels]):
            r["class"] = classify(r)
            rows.append(r)
            mark = "=" if not r["class"] else "!"
            print(
                f"{mark} {r['status']:<11} {r['minimal_tag'] or '-':<24} "
                f"aw={r['auditwheel'] or (r['auditwheel_error'] or '')[:40]:<24} "
                f"{r['wheelscan_s']:7.2f}s {r['auditwheel_s']:7.2f}s  {r['wheel']}"
                + (f"  [{r['class']}]" if r["class"] else ""),
                flush=True,
            )
    ws = sum(r["wheelscan_s"] for r in rows)
    aw = sum(r["auditwheel_s"] for r in rows)
    n = len(rows)
    print(f"{n} wheels: status {sum(r['agree_decision'] for r in rows)}/{n} agree, "
          f"minimal_tag {sum(r['agree_tag'] for r in rows)}/{n} agree; "
          f"wheelscan {ws:.1f}s, auditwheel {aw:.1f}s")
    for name, c in Counter(r["class"] for r in rows if r["class"]).most_common():
        print(f"  {c:4d}  {name}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    if args.table:
        given = list(argv or sys.argv[1:])
        if "--json" in given:  # where the rows went is not part of reproducing the table
            i = given.index("--json")
            del given[i:i + 2]
        command = "python benchmarks/compare_auditwheel.py " + " ".join(
            os.path.relpath(a) if os.path.exists(a) else a for a in given)
        args.table.write_text(table(rows, command, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
