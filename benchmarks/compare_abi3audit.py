"""Compare wheelscan's abi3 verdicts with abi3audit's over a pinned corpus of real abi3 wheels.

abi3audit (pinned: :data:`ABI3AUDIT`, with the abi3info data it reads) runs in its own venv
under the benchmark cache (``--setup`` creates it through pip), once over every wheel, with
``--report``. wheelscan scans the same wheels (native engine) and judges them. For every
extension module both judged, the two verdicts (abi3 holds or not) and the two symbol sets
(outside the Stable ABI; newer than the python tag) are compared; every difference is sorted
into a named class (:data:`CLASSES`), and ``--table`` writes benchmarks/ABI3_DIFFERENCES.md.

    python benchmarks/fetch_corpus.py --corpus benchmarks/corpus-abi3.json
    python benchmarks/compare_abi3audit.py --setup [--cache DIR] [--table FILE] [--json OUT]

Not a CI requirement: a benchmark and a source of real findings.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import subprocess
import sys
import time
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fetch_corpus import default_cache, load_corpus  # noqa: E402

ABI3AUDIT = ("abi3audit==0.0.26", "abi3info==2026.9.25")
CORPUS = HERE / "corpus-abi3.json"

#: every class a difference may fall in, and what it means (the table's text)
CLASSES: dict[str, str] = {
    "lowest-python-tag": "the wheel has several abi3 python tags: abi3audit judges the highest "
    "(`max`), wheelscan the lowest, the oldest interpreter an installer puts the wheel on",
    "weak-reference": "the symbol is only a weak reference: the loader binds it to NULL where "
    "it is missing; wheelscan tolerates it (weak-import info), abi3audit counts it",
    "exported-c-api-name": "a `Py*` name the binary *defines* (exports), not one it imports from "
    "the interpreter: abi3audit reads every symbol of .dynsym/.symtab, wheelscan only imports",
    "symtab-only": "a `Py*` name only in .symtab (a static or hidden symbol, never bound by "
    "the loader): abi3audit reads .symtab too",
    "platform-conditional": "a Stable-ABI symbol only some builds export (`MS_WINDOWS`, "
    "`Py_REF_DEBUG`...): abi3audit accepts it, wheelscan refuses it on Linux",
    "manifest": "the two Stable-ABI manifests disagree on the symbol (abi3info's data is CPython "
    "main of a later date than wheelscan's stable-abi.json)",
    "not-a-.so-name": "an ELF member whose name does not end in `.so` (a versioned "
    "`libX.so.6`): abi3audit does not audit it, wheelscan judges every ELF member",
    "unclassified": "none of the above: a bug in one of the tools",
}


#: the test of tests/unit/test_abi3.py that shows wheelscan's side of each class
TESTS: dict[str, str] = {
    "lowest-python-tag": "test_the_lowest_python_tag_is_the_claim",
    "weak-reference": "test_weak_references_are_tolerated",
    "exported-c-api-name": "test_defined_c_api_names_are_not_imports",
    "symtab-only": "test_defined_c_api_names_are_not_imports",
    "platform-conditional": "test_symbols_outside_the_stable_abi",
    "manifest": "test_stable_abi_flag",
    "not-a-.so-name": "test_every_elf_member_is_judged_not_only_dot_so_names",
    "unclassified": "",
}


def _venv(cache: Path) -> Path:
    return cache / "abi3audit-venv"


def setup(cache: Path) -> Path:
    """The pinned abi3audit, installed into its own venv (created once)."""
    venv = _venv(cache)
    exe = venv / "bin" / "abi3audit"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *ABI3AUDIT], check=True)
    return exe


def run_abi3audit(exe: Path, wheels: list[Path], out: Path) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    subprocess.run([str(exe), "--report", "-o", str(out), *map(str, wheels)],
                   capture_output=True, text=True, check=False)  # exit 1: violations found
    took = time.perf_counter() - t0
    return json.loads(out.read_text())["specs"], took


def _symbols_of(data: bytes) -> tuple[set[str], set[str]]:
    """(defined dynamic symbol names, .symtab names) of one ELF, by lief."""
    import lief

    b = lief.ELF.parse(list(data))
    if b is None:
        return set(), set()
    defined = {s.name for s in b.dynamic_symbols if s.shndx != 0}
    return defined, {s.name for s in b.symtab_symbols}


def judge_wheelscan(wheels: list[Path]) -> tuple[dict[str, Any], float]:
    from wheelscan.read.engine import scan_wheel
    from wheelscan.rules.verdict import judge

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    for w in wheels:
        facts = scan_wheel(w, engine="native")
        out[w.name] = (facts, judge(facts))
    return out, time.perf_counter() - t0


def _ver(text: str) -> tuple[int, int]:
    a, b = text.split(".")[:2]
    return int(a), int(b)


_DUMP = (
    "import json, abi3info; print(json.dumps({s.name: str(f.added) for m in "
    "(abi3info.FUNCTIONS, abi3info.DATAS) for s, f in m.items()}))"
)


def abi3info_versions(exe: Path) -> dict[str, str]:
    """abi3info's Stable ABI (what abi3audit judges by): symbol -> version that added it."""
    py = exe.parent / "python"
    out = subprocess.run([str(py), "-c", _DUMP], capture_output=True, text=True, check=True)
    data: dict[str, str] = json.loads(out.stdout)
    return data


def compare(wheels: list[Path], ours: dict[str, Any], theirs: dict[str, Any],
            exe: Path) -> dict[str, Any]:
    from wheelscan.rules.stableabi import default_stable_abi

    sa = default_stable_abi()
    their_abi = abi3info_versions(exe)
    figures: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    for w in wheels:
        facts, verdict = ours[w.name]
        spec = theirs.get(str(w)) or {}
        audited = spec.get("wheel") or []
        figures["wheels"] += 1
        figures["elf members (wheelscan)"] += len(facts.elfs)
        figures["extension modules (abi3audit)"] += len(audited)
        by_base: dict[str, list[Any]] = defaultdict(list)
        for e in facts.elfs:
            by_base[posixpath.basename(e.member)].append(e)
        zf = zipfile.ZipFile(w)
        for e in facts.elfs:
            if not posixpath.basename(e.member).endswith(".so"):
                n = len(e.python_imports or ())
                if n:
                    cls = "not-a-.so-name"
                    classes[cls] += 1
                    rows.append({"wheel": w.name, "member": e.member, "class": cls,
                                 "detail": f"{n} C-API imports judged by wheelscan only"})
        base_claim = verdict.abi3["claim"] if verdict.abi3 else None
        ours_holds_by_member = {e.member: True for e in facts.elfs}
        for f in verdict.findings:
            if f.severity == "violation" and f.kind in ("abi3-symbol", "abi3-version"):
                ours_holds_by_member[f.member] = False
        for item in audited:
            name, res = item["name"], item.get("result")
            cands = by_base.get(name) or []
            if not cands or res is None:
                classes["unclassified"] += 1
                rows.append({"wheel": w.name, "member": name, "class": "unclassified",
                             "detail": "not paired: " + json.dumps(item)[:200]})
                continue
            e = cands.pop(0)
            figures["modules compared"] += 1
            theirs_ok = bool(res["is_abi3"] and res["is_abi3_baseline_compatible"])
            ours_ok = ours_holds_by_member[e.member]
            figures["verdict agrees" if ours_ok == theirs_ok else "verdict differs"] += 1
            defined, symtab = _symbols_of(zf.read(e.member))
            imports = set(e.python_imports or ())
            weak = set(e.python_weak_imports)
            base = _ver(res["baseline"])
            t_out = set(res["non_abi3_symbols"])
            t_new = dict(res["future_abi3_objects"])
            o_out = {n for n in imports if sa.on_linux(n) is None}
            o_new = {n: f"{s.added[0]}.{s.added[1]}" for n in imports
                     if (s := sa.on_linux(n)) is not None and s.added > base}
            same = t_out == o_out and t_new == o_new
            figures["symbol sets agree" if same else "symbol sets differ"] += 1
            found: list[tuple[str, str]] = []
            for n in sorted(t_out - o_out):
                if n in imports:
                    cls = "manifest"
                elif n in defined:
                    cls = "exported-c-api-name"
                elif n in symtab:
                    cls = "symtab-only"
                else:
                    cls = "unclassified"
                found.append((cls, f"{n}: abi3audit outside, wheelscan "
                                   f"{'import judged stable' if n in imports else 'no import'}"))
            for n in sorted(o_out - t_out):
                s = sa.symbols.get(n)
                cls = ("platform-conditional" if s is not None and s.ifdef else
                       "manifest" if n in their_abi else "unclassified")
                found.append((cls, f"{n}: wheelscan outside ({sa.why_not(n)}), abi3audit "
                                   f"{'stable ' + their_abi[n] if n in their_abi else 'ignores'}"))
            for n in sorted(set(t_new) ^ set(o_new)):
                mine = sa.symbols.get(n)
                cls = "manifest" if mine is None or their_abi.get(n) != (
                    f"{mine.added[0]}.{mine.added[1]}") else "unclassified"
                found.append((cls, f"{n}: newer than {res['baseline']}: abi3audit "
                                   f"{t_new.get(n)}, wheelscan {o_new.get(n)}"))
            if ours_ok != theirs_ok and not found:
                flagged = (t_out | set(t_new)) & imports
                if flagged and flagged <= weak:
                    found.append(("weak-reference", f"only weak: {', '.join(sorted(flagged))}"))
                elif base_claim and base_claim != f"cp{base[0]}{base[1]}-abi3":
                    found.append(("lowest-python-tag", f"abi3audit baseline {res['baseline']},"
                                                       f" wheelscan claim {base_claim}"))
                else:
                    found.append(("unclassified", f"verdicts differ: wheelscan {ours_ok}, "
                                                  f"abi3audit {theirs_ok}"))
            for cls, detail in found:
                classes[cls] += 1
                rows.append({"wheel": w.name, "member": e.member, "class": cls, "detail": detail})
        figures["wheels abi3audit ok"] += all(
            (r := i.get("result")) and r["is_abi3"] and r["is_abi3_baseline_compatible"]
            for i in audited)
        figures["wheels wheelscan abi3 holds"] += bool(verdict.abi3 and verdict.abi3["holds"])
    return {"figures": dict(figures), "classes": dict(classes), "rows": rows}


def table(result: dict[str, Any], corpus: list[dict[str, Any]], cmd: str) -> str:
    f = result["figures"]
    lines = [
        "# wheelscan vs abi3audit on the abi3 corpus",
        "",
        f"Reproduce: `{cmd}`",
        "",
        f"- tools: wheelscan (native engine) and {' + '.join(ABI3AUDIT)}",
        f"- wheels: {f.get('wheels', 0)}; ELF members judged by wheelscan: "
        f"{f.get('elf members (wheelscan)', 0)}; extension modules audited by abi3audit: "
        f"{f.get('extension modules (abi3audit)', 0)}; compared: {f.get('modules compared', 0)}",
        f"- verdict per module (abi3 holds or not): {f.get('verdict agrees', 0)}/"
        f"{f.get('modules compared', 0)} agree",
        f"- symbol sets per module (outside the Stable ABI; newer than the baseline): "
        f"{f.get('symbol sets agree', 0)}/{f.get('modules compared', 0)} agree",
        f"- wheels whose abi3 claim holds: wheelscan {f.get('wheels wheelscan abi3 holds', 0)}, "
        f"abi3audit {f.get('wheels abi3audit ok', 0)}",
        f"- time over the corpus: wheelscan {result['seconds']['wheelscan']:.2f} s (scan + "
        f"judge, one process), abi3audit {result['seconds']['abi3audit']:.2f} s (one run, "
        "every wheel extracted)",
        "",
        "| class | differences | what it is | test |",
        "|---|---|---|---|",
    ]
    for cls, what in CLASSES.items():
        test = f"`{TESTS[cls]}`" if TESTS[cls] else ""
        lines.append(f"| `{cls}` | {result['classes'].get(cls, 0)} | {what} | {test} |")
    tools = Counter(w.get("toolchain", "?") for w in corpus)
    lines += ["", "Corpus: " + ", ".join(f"{t} {n}" for t, n in sorted(tools.items())), "",
              "## Every difference", "", "| wheel | member | class | detail |", "|---|---|---|---|"]
    lines += [f"| `{r['wheel']}` | `{r['member']}` | `{r['class']}` | {r['detail']} |"
              for r in result["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--setup", action="store_true", help="install the pinned abi3audit first")
    ap.add_argument("--table", type=Path, help="write the Markdown table here")
    ap.add_argument("--json", type=Path, help="write the whole result here")
    args = ap.parse_args(argv)
    cache = args.cache or default_cache()
    exe = setup(cache) if args.setup else _venv(cache) / "bin" / "abi3audit"
    if not exe.exists():
        print(f"{exe} missing: run with --setup", file=sys.stderr)
        return 2
    corpus = load_corpus(args.corpus)
    wheels = [cache / w["filename"] for w in corpus]
    missing = [w.name for w in wheels if not w.exists()]
    if missing:
        print(f"not fetched: {missing[:3]}...: run benchmarks/fetch_corpus.py --corpus "
              f"{args.corpus}", file=sys.stderr)
        return 2
    ours, t_ours = judge_wheelscan(wheels)
    theirs, t_theirs = run_abi3audit(exe, wheels, cache / "abi3audit-report.json")
    result = compare(wheels, ours, theirs, exe)
    result["seconds"] = {"wheelscan": t_ours, "abi3audit": t_theirs}
    cmd = ("python benchmarks/fetch_corpus.py --corpus benchmarks/corpus-abi3.json && "
           "python benchmarks/compare_abi3audit.py --setup --table benchmarks/ABI3_DIFFERENCES.md")
    text = table(result, corpus, cmd)
    print(text)
    if args.table:
        args.table.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
