"""``wheelscan report`` over stores written through store.py's API with hand-made rows: odd
and broken stored JSON, rows without verdicts, names that need JSON escapes, and the HTML
size caps with many more mislabelled wheels than the tables show. Every verdict here is
written by the test, so the expected numbers are the test's own construction."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import html5lib
import pytest

from wheelscan.mirror.sources import WheelRef
from wheelscan.mirror.store import Outcome, Store

ODD_MEMBER = 'pkg.libs/we"ird\\ é.so'
ODD_SONAME = 'libwe"ird-é.so.1'


def _verdict(wheel: str, status: str, claim: str, minimal: str | None,
             symbols: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]  # fmt: skip
    findings = []
    if symbols:
        vers = sorted({s.split("@")[1] for s in symbols})
        findings.append({
            "severity": "violation", "kind": "symbol-version", "member": "pkg/_x.so",
            "detail": f"needs {', '.join(vers)}", "evidence": {
                "claims": [claim], "library": "libc.so.6", "versions": vers,
                "symbols": symbols, "symbol_count": len(symbols), "policy": "x"},
        })  # fmt: skip
    return {
        "schema_version": 1, "wheel": wheel, "path": None, "status": status, "error": None,
        "claims": [claim], "per_claim": [{"tag": claim, "holds": status == "ok"}],
        "minimal_tag": minimal, "minimal_tags": {"manylinux": minimal} if minimal else {},
        "required_glibc": None, "findings": findings,
        "policy": {"source": "test", "files": {}}, "exclude": [], "strict": False,
        "engine": "native",
    }  # fmt: skip


def _facts(wheel: str, elfs: list[tuple[str, str | None, int]]) -> str:
    return json.dumps({
        "filename": wheel,
        "elfs": [{"member": m, "elf_class": 64, "endian": "little", "osabi": 0, "e_type": 3,
                  "machine": 62, "e_flags": 0, "soname": so, "needed": ["libc.so.6"]}
                 for m, so, _ in elfs],
        "members": [{"member": m, "method": 8, "size": size, "compressed_size": size // 2}
                    for m, _, size in elfs],
    })  # fmt: skip


def _ref(fn: str, project: str, upload: str | None = None) -> WheelRef:
    return WheelRef(location=f"/m/{fn}", filename=fn, size=1, mtime=0.0, project=project,
                    upload_time=upload)  # fmt: skip


def _run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "wheelscan", "report", "--db", str(db), *args],
                       capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("odd") / "s.sqlite"
    plat = "manylinux1_x86_64"
    with Store(str(db)) as st:
        for i, (proj, size) in enumerate((("p-one", 1000), ("p-two", 2000))):
            fn = f"{proj.replace('-', '_')}-1.0-cp311-cp311-{plat}.whl"
            v = _verdict(fn, "mislabelled", plat, "manylinux_2_17_x86_64",
                         ["memcpy@GLIBC_2.14", "clock_gettime@GLIBC_2.17"])  # fmt: skip
            st.record(_ref(fn, proj, f"202{i}-01-01T00:00:00Z"), Outcome(
                fn, fn, "mislabelled", facts_json=_facts(fn, [(ODD_MEMBER, ODD_SONAME, size)]),
                verdict_json=json.dumps(v)))  # fmt: skip
        # a worker that died: no facts, no verdict
        dead = "dead-1.0-cp311-cp311-manylinux1_x86_64.whl"
        st.record(_ref(dead, "dead"), Outcome(
            "x", dead, "error", error=f"{dead}: worker died with SIGKILL"))  # fmt: skip
        # stored JSON that is not JSON (a damaged store): reported, never a crash
        st.record(_ref("bad-1.0-cp311-cp311-manylinux1_x86_64.whl", "bad"), Outcome(
            "y", "bad-1.0-cp311-cp311-manylinux1_x86_64.whl", "ok",
            facts_json='{"elfs": [{"member": "x.so", ', verdict_json="not json"))  # fmt: skip
        st.record(_ref("unj-1.0-cp311-cp311-manylinux1_x86_64.whl", "unj"), Outcome(
            "z", "unj-1.0-cp311-cp311-manylinux1_x86_64.whl", "unjudged",
            facts_json=_facts("unj", [("u/a.so", None, 10)])))  # fmt: skip
    return db


def test_odd_store_text(odd_store: Path) -> None:
    text = _run(odd_store).stdout
    assert re.search(r"^  mislabelled +2$", text, re.M)
    assert re.search(r"^  error +1$", text, re.M)
    assert re.search(r"^  unjudged +1$", text, re.M)
    assert re.search(r"^  ok +1$", text, re.M)
    # a cause per version node, with the one symbol behind each, in both wheels
    for ver, sym in (("GLIBC_2.14", "memcpy"), ("GLIBC_2.17", "clock_gettime")):
        line = f"{ver} from libc.so.6: 1 symbol, e.g. {sym} — 2 wheels in 2 projects"
        assert line in text
    assert "worker died with SIGKILL" in text.split("Errors by reason")[1]
    # the vendored library with a name needing JSON escapes, in two sizes in two projects
    assert f"{ODD_SONAME}: 2 variants in 2 projects, 2 wheels" in text


def test_odd_store_records(odd_store: Path) -> None:
    recs = [json.loads(x) for x in _run(odd_store, "--format", "jsonl").stdout.splitlines()]
    assert len(recs) == 5
    keys = set(recs[0])
    assert all(set(r) == keys for r in recs)
    dead = next(r for r in recs if r["project"] == "dead")
    assert dead["status"] == "error"
    assert "SIGKILL" in dead["error"]
    assert dead["findings"] == []
    assert dead["location"] == "/m/dead-1.0-cp311-cp311-manylinux1_x86_64.whl"
    bad = next(r for r in recs if r["project"] == "bad")
    assert bad["status"] == "ok"


def test_html_caps(tmp_path: Path) -> None:
    """More mislabelled wheels than the table shows: the table and the per-project lists stop
    at their caps and say how many there are; the file stays small."""
    from wheelscan.report.html import PROJECT_SECTIONS, PROJECT_WHEELS, TABLE_ROWS

    db = tmp_path / "big.sqlite"
    n = TABLE_ROWS + 500
    plat = "manylinux2010_x86_64"
    with Store(str(db), batch_rows=1000) as st:
        for i in range(n):
            proj = f"proj{i % (PROJECT_SECTIONS + 10)}"
            fn = f"{proj}-{i}.0-cp311-cp311-{plat}.whl"
            v = _verdict(fn, "mislabelled", plat, "manylinux_2_17_x86_64", ["f@GLIBC_2.17"])
            st.record(_ref(fn, proj), Outcome(fn, fn, "mislabelled", verdict_json=json.dumps(v)))
    out = tmp_path / "r.html"
    _run(db, "--format", "html", "-o", str(out))
    doc = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(out.read_bytes())
    assert len(doc.findall(".//table[@id='vtable']/tbody/tr")) == TABLE_ROWS
    h2 = "".join(doc.find(".//section[@id='violations']/h2").itertext())
    assert f"{TABLE_ROWS} of {n} shown" in h2
    sections = doc.findall(".//section[@class='project']")
    assert len(sections) == PROJECT_SECTIONS
    per_project = n // (PROJECT_SECTIONS + 10)
    for sec in sections:
        items = sec.findall(".//li")
        shown = [li for li in items if li.find("code") is not None]
        assert len(shown) == min(PROJECT_WHEELS, per_project)
    assert out.stat().st_size < 5_000_000


def test_empty_store_every_format(tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite"
    Store(str(db)).close()
    assert ": 0 wheels" in _run(db).stdout
    assert _run(db, "--format", "jsonl").stdout == ""
    for fmt in ("csv", "jsonl.zst", "html"):
        out = tmp_path / f"r.{fmt}"
        _run(db, "--format", fmt, "-o", str(out))
        assert out.stat().st_size > 0
    html5lib.HTMLParser(strict=True).parse((tmp_path / "r.html").read_bytes())
    assert (tmp_path / "r.csv").read_text().count("\n") == 1  # the header only
    assert (tmp_path / "r.findings.csv").read_text().count("\n") == 1


def test_store_path_needing_uri_quoting(odd_store: Path, tmp_path: Path) -> None:
    d = tmp_path / "a dir?with#odd%chars"
    d.mkdir()
    db = d / "s.sqlite"
    db.write_bytes(odd_store.read_bytes())
    assert re.search(r"^  mislabelled +2$", _run(db).stdout, re.M)


def test_crc32_in_member_stats_is_the_identity(tmp_path: Path) -> None:
    """Facts whose member stats carry a central-directory CRC-32 (a proposed additive field)
    are compared by CRC-32 + size: equal ELF facts and sizes but different CRCs are different
    contents, and the report says which identity it used."""
    db = tmp_path / "crc.sqlite"
    plat = "manylinux2014_x86_64"
    with Store(str(db)) as st:
        for proj, crc in (("c-one", 111), ("c-two", 222), ("c-three", 222)):
            fn = f"{proj.replace('-', '_')}-1.0-cp311-cp311-{plat}.whl"
            facts = json.loads(_facts(fn, [("lib/libz.so.1", "libz.so.1", 5000)]))
            facts["members"][0]["crc32"] = crc
            v = _verdict(fn, "ok", plat, "manylinux_2_17_x86_64")
            st.record(_ref(fn, proj), Outcome(fn, fn, "ok", facts_json=json.dumps(facts),
                                              verdict_json=json.dumps(v)))  # fmt: skip
    text = _run(db).stdout
    assert "identity: CRC-32 and size" in text
    assert "libz.so.1: 2 variants in 3 projects, 3 wheels" in text
    assert re.search(r"^  libz\.so\.1 \(5000 bytes\): 2 wheels in 2 projects \(c-three, c-two\)$",
                     text, re.M)  # fmt: skip
