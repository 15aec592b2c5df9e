"""The output boundary (wheelscan.safe_text): hostile names reach no terminal or spreadsheet raw.

The wheels are real: a gcc-built extension linked against a stub whose soname carries an OSC 8
hyperlink and a clear-screen sequence, packed under member names that carry CSI colour codes
and spreadsheet formulas, in wheels whose names start with ``@``/``=`` or give no project.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.builders import Import, build_elf, build_stub, have, make_wheel

from wheelscan.safe_text import csv_cell, term

EVIL_SONAME = "libe\x1b]8;;http:evil\x07vil\x1b[2J.so.1"
EVIL_MEMBER = "=HYPERLINK(x)\x1b[31m.abi3.so"
EVIL_WHEEL = "evil-1.0-cp311-abi3-manylinux_2_17_x86_64.whl"
FORMULA_WHEEL = "@sum-1.0-cp311-abi3-manylinux_2_17_x86_64.whl"  # an invalid name: an error


def test_term_escapes_controls_and_bidi_only() -> None:
    assert term("a\x1b[2Jb\x07\n\t\r\x00\x7f") == "a\\x1b[2Jb\\x07\\x0a\\x09\\x0d\\x00\\x7f"
    assert term("\x9b31m\x85") == "\\x9b31m\\x85"  # C1: CSI and NEL
    assert term("abc\u202eexe.so\u2066\u200f") == "abc\\u202eexe.so\\u2066\\u200f"
    assert term("café 中文 C:\\path ~!") == "café 中文 C:\\path ~!"


def test_term_escapes_every_format_and_separator_character() -> None:
    """Against this Python's Unicode database: every Cc, Cf, Zl, Zp and Cs code point
    (zero-width characters, U+2028/2029, the BOM, tags, bidi isolates, lone surrogates) is
    escaped, and what comes out can be written as UTF-8."""
    import unicodedata

    cats = ("Cc", "Cf", "Zl", "Zp", "Cs")
    missed = [hex(o) for o in range(0x110000)
              if unicodedata.category(chr(o)) in cats and term(chr(o)) == chr(o)]  # fmt: skip
    assert not missed, (unicodedata.unidata_version, missed)
    term("".join(chr(o) for o in range(0x110000))).encode("utf-8")
    assert term("\u00e9\u4e2d\u00a0\u3000") == "\u00e9\u4e2d\u00a0\u3000"


def test_a_newline_in_a_name_cannot_add_a_report_line() -> None:
    import io

    from wheelscan.safe_text import SafeText

    out = io.StringIO()
    sw = SafeText(out)
    sw.write("\nMost common reasons\n")
    sw.write("  needs libevil.so\nOK          9999 wheels\u2028: 1 wheel\n\n")
    assert out.getvalue() == ("\nMost common reasons\n"
                              "  needs libevil.so\\x0aOK          9999 wheels\\u2028: 1 wheel\n\n")
    assert out.getvalue().count("\n") == 4


def test_csv_cell_prefixes_formulas_only() -> None:
    for bad in ("=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "\nx", "\x00=1", " =x",
                "\xa0=cmd", "\uff1dHYPERLINK(x)", " \uff20SUM(A1)"):
        assert csv_cell(bad) == "'" + bad
    for fine in ("a=b", "1.0", "", " x=1", "[1]", "x\n=1"):
        assert csv_cell(fine) == fine
    assert csv_cell(-1) == -1  # numbers are not text a spreadsheet parses
    # a lone surrogate cannot be written to a UTF-8 file: escaped, then judged as text
    assert csv_cell("a\ud800") == "a\\ud800"
    assert csv_cell("=\udfff") == "'=\\udfff"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not have("gcc"):
        pytest.skip("no gcc")
    d = tmp_path_factory.mktemp("hostile-names")
    stub = build_stub(d / "b", EVIL_SONAME, {"E_1": ["e_init"]})
    ext = build_elf(d / "b", "ext.so", "void PyInit_ext(void) {}\n",
                    imports=[Import("e_init", stub)])  # fmt: skip
    wheels = d / "wheels"
    make_wheel(wheels, EVIL_WHEEL, {EVIL_MEMBER: ext})
    # the same binary in two more projects, and in wheels whose names give no project
    for name in ("a-1.0", "b-1.0", "-1.0", "@sum-1.0"):
        make_wheel(wheels, f"{name}-cp311-abi3-manylinux_2_17_x86_64.whl", {"pkg/e.abi3.so": ext})
    return wheels


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wheelscan", *args], capture_output=True,
                          text=True, check=False, timeout=120)  # fmt: skip


def test_check_text_escapes_and_json_stays_exact(hostile: Path) -> None:
    w = str(hostile / EVIL_WHEEL)
    r = _run("check", "-vv", w)
    assert r.returncode == 1, r.stderr
    assert "MISLABELLED" in r.stdout
    for raw in ("\x1b", "\x07"):
        assert raw not in r.stdout
    assert "libe\\x1b]8;;http:evil\\x07vil\\x1b[2J.so.1" in r.stdout
    assert "[=HYPERLINK(x)\\x1b[31m.abi3.so]" in r.stdout
    j = _run("check", "--format", "json", w)
    v = json.loads(j.stdout)
    assert {f["member"] for f in v["findings"] if f["member"]} == {EVIL_MEMBER}
    assert any(EVIL_SONAME in f["detail"] for f in v["findings"])


def test_reports_neutralise_names(hostile: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "s.sqlite")
    s = _run("scan", "-q", "--db", db, "-j", "1", str(hostile))
    assert "wheels" in s.stderr, s.stderr
    assert "\x1b" not in s.stderr
    t = _run("report", "--db", db, "--format", "text")
    assert t.returncode == 0, t.stderr
    assert "\x1b" not in t.stdout
    assert "\x07" not in t.stdout
    assert "Identical binaries shipped by several projects" in t.stdout
    dup = t.stdout.split("Identical binaries shipped by several projects", 1)[1]
    assert "5 wheels in 4 projects ((unparseable name), @sum, a, b, evil)" in dup
    assert "None" not in t.stdout  # the store's NULL project is never printed as "None"
    out = tmp_path / "r.csv"
    c = _run("report", "--db", db, "--format", "csv", "-o", str(out))
    assert c.returncode == 0, c.stderr
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert "'" + FORMULA_WHEEL in {r["wheel"] for r in rows}
    assert not [v for r in rows for v in r.values() if v and v[0] in "=+-@\t\r"]
    with open(out.with_name("r.findings.csv"), newline="", encoding="utf-8") as f:
        members = {r["member"] for r in csv.DictReader(f)}
    assert "'" + EVIL_MEMBER in members  # the quote only: CSV is not a terminal
    h = tmp_path / "r.html"
    assert _run("report", "--db", db, "--format", "html", "-o", str(h)).returncode == 0
    page = h.read_text("utf-8")
    assert "<script>" not in page.split("</style>", 1)[-1].split("<script", 1)[0]
    assert "=HYPERLINK(x)" in page


def test_html_escapes_a_hostile_member_name(tmp_path: Path) -> None:
    if not have("gcc"):
        pytest.skip("no gcc")
    ext = build_elf(tmp_path / "b", "ext.so", "void PyInit_ext(void) {}\n",
                    imports=[Import("e_init", build_stub(tmp_path / "b", "libx.so.1",
                                                         {"X_1": ["e_init"]}))])  # fmt: skip
    member = 'pkg/<img src=x onerror="alert(1)">&.abi3.so'
    make_wheel(tmp_path / "w", "x-1.0-cp311-abi3-manylinux_2_17_x86_64.whl", {member: ext})
    db = str(tmp_path / "s.sqlite")
    _run("scan", "-q", "--db", db, "-j", "1", str(tmp_path / "w"))
    h = tmp_path / "r.html"
    assert _run("report", "--db", db, "--format", "html", "-o", str(h)).returncode == 0
    page = h.read_text("utf-8")
    assert "<img" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;.abi3.so" in page


def test_csv_policy_cells_survive_batching(tmp_path: Path) -> None:
    # rows carry a placeholder for their policy cell, filled a batch at a time: with two
    # policies interleaved over more than a batch, and a wheel name holding a lone surrogate
    # (what a placeholder is made of), every cell must read back as written
    from wheelscan.report.records import CSV_COLUMNS, write_csv

    pols = [{"source": "a", "file": None, "files": {"x": "1"}, "note": 'q"uote,'},
            {"source": "b", "file": "/p.json", "files": {"x": "2"}, "note": "=1+1"}]
    recs = [{"wheel": f"w{i}\ud8000\ud800.whl" if i == 3 else f"w{i}.whl",
             "location": f"/m/w{i}.whl", "status": "ok", "findings": [],
             "policy": pols[i % 3 == 0]} for i in range(1300)]
    out = tmp_path / "r.csv"
    assert write_csv(recs, out) == (1300, 0)
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(CSV_COLUMNS)
    for i, row in enumerate(rows):
        assert json.loads(row["policy"]) == pols[i % 3 == 0], i
    assert rows[3]["wheel"] == "w3\\ud8000\\ud800.whl"  # escaped, not taken for a policy


def test_csv_cells_made_once_per_value_keep_their_type(tmp_path: Path) -> None:
    # cells of the few-valued columns (status, strict, ...) are made once per value: equal
    # keys of different types (True and 1, 0 and False) must still give their own cells, and
    # a formula in such a column or in a finding's kind is neutralised on every row
    from wheelscan.report.records import write_csv

    values = [True, 1, False, 0, None, "=HYPERLINK()", "ok", 1.0]
    recs = [{"wheel": f"w{i}.whl", "location": f"/m/w{i}.whl", "status": "ok",
             "strict": values[i % len(values)], "engine": values[(i + 3) % len(values)],
             "findings": [{"severity": "violation", "kind": values[i % len(values)],
                           "member": "m", "detail": "d"}]}
            for i in range(40)]  # fmt: skip
    out = tmp_path / "r.csv"
    assert write_csv(recs, out) == (40, 40)
    # each value's cell, by position (a dict would take True, 1 and 1.0 for one key)
    cells = ["true", "1", "false", "0", "", "'=HYPERLINK()", "ok", "1.0"]
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with (tmp_path / "r.findings.csv").open(newline="", encoding="utf-8") as f:
        found = list(csv.DictReader(f))
    for i, (row, fnd) in enumerate(zip(rows, found, strict=True)):
        assert row["strict"] == cells[i % len(values)], i
        assert row["engine"] == cells[(i + 3) % len(values)], i
        assert fnd["kind"] == cells[i % len(values)], i
