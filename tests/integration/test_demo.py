"""The quick start's `wheelscan demo`: a real scan of real binaries, with expectations read
independently of wheelscan (pyelftools over the sample's own binaries)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import html5lib
from elftools.elf.elffile import ELFFile


def _glibc_versions(data: bytes) -> set[tuple[int, ...]]:
    elf = ELFFile(io.BytesIO(data))
    sec = elf.get_section_by_name(".gnu.version_r")
    found: set[tuple[int, ...]] = set()
    if sec is None:
        return found
    for _verneed, auxes in sec.iter_versions():
        for aux in auxes:
            m = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)+)", aux.name)
            if m:
                found.add(tuple(int(x) for x in m.group(1).split(".")))
    return found


def _needed(data: bytes) -> list[str]:
    elf = ELFFile(io.BytesIO(data))
    dyn = elf.get_section_by_name(".dynamic")
    return [t.needed for t in dyn.iter_tags() if t.entry.d_tag == "DT_NEEDED"] if dyn else []


def test_demo_writes_reports_with_expected_statuses(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "wheelscan", "demo", "--out", str(out)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert str(out / "report.txt") in r.stdout
    records = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    by_wheel = {rec["wheel"]: rec for rec in records}
    wheels = sorted((out / "wheels").glob("*.whl"))
    assert len(records) == len(wheels) >= 3
    assert by_wheel[next(w.name for w in wheels if "sample_pure" in w.name)]["status"] == (
        "not-linux")
    assert by_wheel[next(w.name for w in wheels if "sample_nobin" in w.name)]["status"] == (
        "no-binaries")
    for w in wheels:
        with zipfile.ZipFile(w) as z:
            bins = [z.read(n) for n in z.namelist() if ".so" in n]
        rec = by_wheel[w.name]
        if "relabelled" in w.name:  # claims manylinux1 = glibc 2.5
            too_new = any(v > (2, 5) for b in bins for v in _glibc_versions(b))
            assert rec["status"] == ("mislabelled" if too_new else "ok"), w.name
            if too_new:
                kinds = {f["kind"] for f in rec["findings"] if f["severity"] == "violation"}
                assert "symbol-version" in kinds
        if w.name.startswith("sample_ssl"):
            libs = [n for b in bins for n in _needed(b) if n.startswith(("libssl", "libcrypto"))]
            assert libs
            assert rec["status"] == "mislabelled"
            evidence = " ".join(f["detail"] for f in rec["findings"]
                                if f["kind"] == "external-library")
            for lib in libs:
                assert lib in evidence
    text = (out / "report.txt").read_text()
    assert text.count("\n# ") + text.startswith("# ") == len(wheels)
    # the batch report from the scan store agrees with the per-wheel check above
    html = out / "report.html"
    assert str(html) in r.stdout
    doc = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html.read_bytes())
    assert len(list(doc.iter("{http://www.w3.org/2000/svg}svg"))) >= 3
    cards = {
        c.find("b").tail: int(c.find("b").text)
        for c in doc.iter("div")
        if "card" in (c.get("class") or "").split()
    }
    statuses = Counter(rec["status"] for rec in records)
    assert cards == dict(statuses)
    vrows = doc.findall(".//table[@id='vtable']/tbody/tr")
    assert len(vrows) == statuses["mislabelled"]
