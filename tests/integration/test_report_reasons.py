"""Why a wheel is mislabelled, as a person reads it: reasons grouped by cause (a library's
version node), C++ names demangled in text, ``check`` and HTML, raw names kept in JSON.

The wheels link gcc-built consumers against a stub ``libstdc++.so.6`` whose GLIBCXX_3.4.21
and GLIBCXX_3.4.26 nodes define real mangled names, so every count below is known from how
the wheels were built."""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.builders import Import, build_elf, build_stub, have, make_wheel

from wheelscan.report.demangle import short

FIND_LAST_OF = "_ZNKSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE12find_last_ofEPKcmm"
ASSIGN = "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_assignERKS4_"
PUT = "_ZNSo3putEc"
FLUSH = "_ZNSo5flushEv"
NEWER = "_ZNSt8ios_base4InitC1Ev"  # under GLIBCXX_3.4.26 in the stub
# wheel -> (project, symbols it imports at 3.4.21, imports at 3.4.26)
WHEELS = {
    "cxxpkg-1.0-cp311-cp311-manylinux2014_x86_64.whl": ("cxxpkg", [FIND_LAST_OF, ASSIGN, PUT], []),
    "cxxpkg-1.1-cp311-cp311-manylinux2014_x86_64.whl": ("cxxpkg", [FIND_LAST_OF, FLUSH], [NEWER]),
    "other-2.0-cp311-cp311-manylinux2014_x86_64.whl": ("other", [FIND_LAST_OF], []),
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wheelscan", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


def _html(db: Path, tmp_path: Path) -> Path:
    out = tmp_path / "r.html"
    assert _run("report", "--db", str(db), "--format", "html", "-o", str(out)).returncode == 0
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not have("gcc"):
        pytest.skip("no gcc")
    tmp = tmp_path_factory.mktemp("reasons")
    stdcxx = build_stub(tmp / "stub", "libstdc++.so.6", {
        "GLIBCXX_3.4": ["_ZNSt9exceptionD2Ev"],
        "GLIBCXX_3.4.21": [FIND_LAST_OF, ASSIGN, PUT, FLUSH],
        "GLIBCXX_3.4.26": [NEWER],
    })  # fmt: skip
    wheels = tmp / "wheels"
    for i, (fn, (_, old, new)) in enumerate(WHEELS.items()):
        so = build_elf(tmp / f"b{i}", f"_ext{i}.so",
                       imports=[Import(s, stdcxx) for s in old + new])  # fmt: skip
        w = make_wheel(wheels, fn, {f"pkg/_ext{i}.so": so})
        when = calendar.timegm((2021 if i < 2 else 2023, 6, 1, 12, 0, 0))
        os.utime(w, (when, when))  # a plain directory gives no upload times: mtimes date them
    db = tmp / "s.sqlite"
    r = _run("scan", "--db", str(db), "-q", str(wheels))
    assert r.returncode == 1, r.stderr  # every wheel is mislabelled
    return wheels, db


def test_text_report_groups_by_version_node(store: tuple[Path, Path]) -> None:
    _, db = store
    text = _run("report", "--db", str(db)).stdout
    section = text.split("Most common reasons")[1].split("\n\n")[0]
    lines = [line.strip() for line in section.splitlines()[1:]]
    # 3.4.21: four distinct symbols; find_last_of (3 wheels) first, then the rest by name
    others = sorted([ASSIGN, FLUSH, PUT])[:2]
    assert lines == [
        "GLIBCXX_3.4.21 from libstdc++.so.6: 4 symbols, e.g. "
        f"{', '.join(short(s) for s in [FIND_LAST_OF, *others])} — 3 wheels in 2 projects",
        f"GLIBCXX_3.4.26 from libstdc++.so.6: 1 symbol, e.g. {short(NEWER)} — 1 wheel in "
        "1 project",
    ]
    assert "std::string::find_last_of" in lines[0]
    assert "_ZN" not in section


def test_html_shows_demangled_names_with_the_raw_name_on_hover(
    store: tuple[Path, Path], tmp_path: Path
) -> None:
    html = _html(store[1], tmp_path).read_text()
    reasons = html.split('id="reasons"')[1].split("</table>")[0]
    assert f'<code title="{FIND_LAST_OF}">std::string::find_last_of</code>' in reasons
    assert ">GLIBCXX_3.4.21 from libstdc++.so.6<" in reasons
    # the evidence in the violations table: demangled, the raw detail on hover
    assert 'title="needs GLIBCXX_3.4.21' in html
    assert "std::string::find_last_of@GLIBCXX_3.4.21" in html


def test_exports_keep_raw_names(store: tuple[Path, Path]) -> None:
    _, db = store
    out = _run("report", "--db", str(db), "--format", "jsonl").stdout
    records = [json.loads(line) for line in out.splitlines()]
    symbols = {s for r in records for f in r["findings"] if f["kind"] == "symbol-version"
               for s in f["evidence"]["symbols"]}  # fmt: skip
    assert f"{FIND_LAST_OF}@GLIBCXX_3.4.21" in symbols
    assert not any("std::" in s for s in symbols)


def test_check_text_is_demangled_and_json_is_raw(store: tuple[Path, Path]) -> None:
    wheels, _ = store
    first = str(wheels / next(iter(WHEELS)))
    text = _run("check", "-v", first).stdout
    assert "std::string::find_last_of@GLIBCXX_3.4.21" in text
    assert FIND_LAST_OF not in text
    raw = json.loads(_run("check", "--format", "json", first).stdout)
    assert any(FIND_LAST_OF in f["detail"] for f in raw["findings"])


def test_a_directory_store_charts_years_by_file_mtime(
    store: tuple[Path, Path], tmp_path: Path
) -> None:
    html = _html(store[1], tmp_path).read_text()
    caption = "Mislabelled share by file modification year (the source gave no upload times)"
    assert f"<figcaption>{caption}</figcaption>" in html
    assert "2021: 2 of 2 judged wheels mislabelled" in html
    assert "2023: 1 of 1 judged wheels mislabelled" in html
    assert "upload year" not in html  # no empty upload-year chart beside it


def test_charts_without_data_are_left_out(tmp_path: Path) -> None:
    wheels = tmp_path / "w"
    wheels.mkdir()
    (wheels / "broken-1.0-py3-none-manylinux2014_x86_64.whl").write_bytes(b"not a zip")
    db = tmp_path / "s.sqlite"
    assert _run("scan", "--db", str(db), "-q", str(wheels)).returncode == 2
    out = tmp_path / "r.html"
    assert _run("report", "--db", str(db), "--format", "html", "-o", str(out)).returncode == 0
    html = out.read_text()
    assert 'id="charts"' not in html
    assert "<svg" not in html


@pytest.mark.parametrize("width", [390, 1280])
def test_long_cxx_reasons_stay_in_their_box(
    store: tuple[Path, Path], tmp_path: Path, width: int
) -> None:
    from test_report import _page_width, require_chromium

    exe = require_chromium()
    assert _page_width(exe, _html(store[1], tmp_path), width, tmp_path) == (width, width)


def test_legend_defines_every_status_and_kind_and_evidence_links_to_it(
    store: tuple[Path, Path], tmp_path: Path
) -> None:
    import html5lib

    from wheelscan.rules.verdict import FINDING_KINDS, STATUSES

    doc = html5lib.parse(_html(store[1], tmp_path).read_bytes(), namespaceHTMLElements=False)
    legend = doc.find(".//section[@id='legend']")
    assert legend is not None
    codes = {"".join(c.itertext()) for c in legend.iter("code")}
    assert set(STATUSES) | set(FINDING_KINDS) <= codes
    anchors = {el.get("id") for el in doc.iter() if el.get("id", "").startswith("kind-")}
    assert anchors == {f"kind-{k}" for k in FINDING_KINDS}
    links = {a.get("href") for a in doc.iter("a") if (a.get("href") or "").startswith("#kind-")}
    assert "#kind-symbol-version" in links
    assert {h[1:] for h in links} <= anchors
    # the docs carry the same table
    findings_md = (Path(__file__).resolve().parents[2] / "docs" / "findings.md").read_text()
    assert all(f'<a id="{k}"></a>`{k}`' in findings_md for k in FINDING_KINDS)
