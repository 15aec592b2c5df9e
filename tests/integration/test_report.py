"""``wheelscan report`` golden tests over a generated mirror scanned by ``wheelscan scan``.

Every expected number is computed here from how the mirror was built: which projects ship the
binary that needs ``clock_gettime@GLIBC_2.17`` (from the stub the test links against) under
which claim, which vendored library variant each project bundles, when each file was uploaded.
The report code is not consulted for any expectation.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import html5lib
import jsonschema
import pytest
import zstandard
from helpers.builders import Import, build_elf, build_stub, make_wheel
from helpers.corpus import in_ci
from helpers.mirror import Elfs, engine_for_tests, shared_elfs, to_bandersnatch

from wheelscan.mirror.store import STORE_SCHEMA_VERSION

ENGINE = engine_for_tests()
SONAME = "libvendored-0a1b2c3d.so.1"
# PEP 600 glibc versions of the manylinux policies, oldest first (manylinux1/2010/2014 aliases)
PEP600_GLIBC = [(2, 5), (2, 12), (2, 17), (2, 24), (2, 27), (2, 28), (2, 31), (2, 34)]
LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
NEW_NEEDS = (2, 17)  # the GLIBC_2.17 node of the stub new.so links clock_gettime from
OLD_NEEDS = (2, 2, 5)
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "src/wheelscan/data/report-schema.json").read_text()
)


@dataclass
class Built:
    filename: str
    project: str
    status: str
    claim: tuple[int, int] | None  # glibc version the claim promises
    needs: tuple[int, ...] | None  # newest GLIBC_ version the binary needs
    upload: str
    yanked: bool
    vendored: str | None = None  # "A" or "B": which variant of SONAME it bundles


def _minimal(needs: tuple[int, ...]) -> tuple[int, int]:
    return next(v for v in PEP600_GLIBC if v >= needs[:2])


@dataclass
class Mirror:
    root: Path
    db: Path
    wheels: dict[str, Built]
    locations: dict[str, str]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Mirror:
    tmp = tmp_path_factory.mktemp("report")
    elfs: Elfs = shared_elfs(tmp_path_factory.mktemp("elfs"))
    libc = build_stub(tmp / "b", "libc.so.6", {"GLIBC_2.2.5": ["malloc"]})
    body = "".join(f"int other_{i}(int x) {{ return x - {i}; }}\n" for i in range(300))
    variant_b = build_elf(tmp / "b", "libvendored_b.so", source=body,
                          imports=[Import("malloc", libc)], soname=SONAME)  # fmt: skip
    src = tmp / "src"
    built: list[Built] = []

    def add(project: str, version: str, py: str, plat: str, *, new: bool, vendored: str | None,
            upload: str, yanked: bool = False) -> None:  # fmt: skip
        files: dict[str, bytes | Path] = {
            f"{project}/__init__.py": b"",
            f"{project}/_ext.cpython.so": elfs.new if new else elfs.old,
        }
        if vendored:
            files[f"{project}.libs/{SONAME}"] = elfs.bundled if vendored == "A" else variant_b
        fn = f"{project}-{version}-{py}-{py}-{plat}.whl"
        make_wheel(src, fn, files)
        claim = LEGACY[plat.rsplit("_", 2)[0]] if plat.startswith("manylinux") else None
        needs = NEW_NEEDS if new else OLD_NEEDS
        status = "mislabelled" if claim and _minimal(needs) > claim else "ok"
        built.append(Built(fn, project, status, claim, needs, upload, yanked, vendored))

    for v, py in (("1.0", "cp310"), ("1.0", "cp311"), ("1.1", "cp310"), ("1.1", "cp311")):
        add("alpha", v, py, "manylinux2014_x86_64", new=True, vendored="A",
            upload=f"2021-0{3 + len(built)}-01T00:00:00Z")  # fmt: skip
    for i, py in enumerate(("cp310", "cp311", "cp312")):
        add("beta", "2.0", py, "manylinux1_x86_64", new=True, vendored="B",
            upload=f"2022-05-0{1 + i}T00:00:00Z", yanked=i == 0)  # fmt: skip
    add("gamma", "3.0", "cp311", "manylinux2010_x86_64", new=False, vendored=None,
        upload="2023-01-10T00:00:00Z")  # fmt: skip
    add("gamma", "3.0", "cp312", "manylinux2010_x86_64", new=False, vendored=None,
        upload="2023-02-10T00:00:00Z")  # fmt: skip
    add("gamma", "3.1", "cp312", "manylinux2010_x86_64", new=True, vendored=None,
        upload="2023-06-10T00:00:00Z")  # fmt: skip
    broken = "delta-1.0-cp311-cp311-manylinux2014_x86_64.whl"
    (src / broken).write_bytes(b"PK\x03\x04 this is not a zip archive at all" * 10)
    built.append(Built(broken, "delta", "error", (2, 17), None, "2024-02-02T00:00:00Z", False))
    make_wheel(src, "epsilon-1.0-py3-none-any.whl", {"epsilon/__init__.py": b"x = 1\n"})
    built.append(Built("epsilon-1.0-py3-none-any.whl", "epsilon", "not-linux", None, None,
                       "2024-03-03T00:00:00Z", False))  # fmt: skip

    root = tmp / "mirror"
    to_bandersnatch(
        root, sorted(src.iterdir()), upload_times={b.filename: b.upload for b in built},
        yanked=frozenset(b.filename for b in built if b.yanked),
    )  # fmt: skip
    db = tmp / "scan.sqlite"
    r = subprocess.run(
        [sys.executable, "-m", "wheelscan", "scan", "--engine", ENGINE, "-j", "2", "-q",
         "--db", str(db), str(root)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr  # one error wheel by construction
    locations = {p.name: str(p) for p in (root / "web" / "packages").rglob("*.whl")}
    return Mirror(root, db, {b.filename: b for b in built}, locations)


def _report(m: Mirror, *args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "wheelscan", "report", "--db", str(m.db), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r


def _policy(v: tuple[int, int]) -> str:
    return f"manylinux_{v[0]}_{v[1]}"


def _expected_matrix(m: Mirror) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for b in m.wheels.values():
        if b.claim and b.needs:
            out[(_policy(b.claim), _policy(_minimal(b.needs)))] += 1
    return out


def _liars(m: Mirror) -> list[Built]:
    return [b for b in m.wheels.values() if b.status == "mislabelled"]


# ---------------------------------------------------------------------------------------------


def test_text_report(mirror: Mirror) -> None:
    m = mirror
    text = _report(m).stdout
    statuses = Counter(b.status for b in m.wheels.values())
    assert f": {len(m.wheels)} wheels" in text.splitlines()[0]
    for st, n in statuses.items():
        assert re.search(rf"^  {re.escape(st)} +{n}$", text, re.M), (st, n, text)
    # the matrix: header row of minimal tags, one row per claimed tag
    lines = text.splitlines()
    i = lines.index("Claimed tag (rows) vs minimal honest tag (columns), judged wheels")
    header = lines[i + 1].split()[3:]  # after "claimed \ minimal"
    grid: Counter[tuple[str, str]] = Counter()
    for line in lines[i + 2 :]:
        if not line.strip():
            break
        cells = line.split()
        for col, cell in zip(header, cells[1:], strict=True):
            if cell != ".":
                grid[(cells[0], col)] = int(cell)
    assert grid == _expected_matrix(m)
    liars = _liars(m)
    projects = {b.project for b in liars}
    # the one cause (the stub's GLIBC_2.17 node) and the one symbol new.so takes from it
    assert (f"GLIBC_2.17 from libc.so.6: 1 symbol, e.g. clock_gettime — {len(liars)} wheels in "
            f"{len(projects)} projects" in text)  # fmt: skip
    judged = [b for b in m.wheels.values() if b.status in ("ok", "mislabelled")]
    assert re.search(rf"^  x86_64 +glibc +{len(judged)} +{len(liars)}$", text, re.M), text
    per_project = Counter(b.project for b in liars)
    for p, n in per_project.items():
        total = sum(1 for b in m.wheels.values() if b.project == p)
        assert re.search(rf"^  {p} +{n} +{total}$", text, re.M), (p, text)
    errors = [b for b in m.wheels.values() if b.status == "error"]
    assert re.search(rf"^  {len(errors)}  \S", text.split("Errors by reason")[1], re.M)
    variants = {b.vendored for b in m.wheels.values() if b.vendored}
    vend_projects = {b.project for b in m.wheels.values() if b.vendored}
    vend_wheels = sum(1 for b in m.wheels.values() if b.vendored)
    assert (f"{SONAME}: {len(variants)} variants in {len(vend_projects)} projects, "
            f"{vend_wheels} wheels") in text  # fmt: skip
    # identical binaries across projects: the new.so extension, shipped by every project
    # that needs GLIBC_2.17 (the vendored variants each stay inside one project)
    new_wheels = [b for b in m.wheels.values() if b.needs == NEW_NEEDS]
    new_projects = sorted({b.project for b in new_wheels})
    dup = re.search(r"^  _ext\.cpython\.so \((\d+) bytes\): (\d+) wheels in (\d+) projects "
                    r"\(([^)]*)\)$", text, re.M)  # fmt: skip
    assert dup, text
    assert int(dup.group(2)) == len(new_wheels)
    assert int(dup.group(3)) == len(new_projects)
    assert dup.group(4).split(", ") == new_projects
    assert "  1 binary\n" in text
    # every binary in two or more wheels, whatever the project: the test's own file list
    import zipfile

    seen: dict[bytes, list[int]] = {}
    for b in m.wheels.values():
        if b.status in ("error", "not-linux"):
            continue
        with zipfile.ZipFile(m.locations[b.filename]) as z:
            for info in z.infolist():
                data = z.read(info)
                if data[:4] == b"\x7fELF":
                    seen.setdefault(data, []).append(info.file_size)
    repeated = {k: v for k, v in seen.items() if len(v) > 1}
    copies = sum(len(v) - 1 for v in repeated.values())
    extra = sum((len(v) - 1) * v[0] for v in repeated.values())
    assert (f"  {len(repeated)} binaries in two or more wheels: {copies} extra copies, "
            f"{extra} bytes\n") in text  # fmt: skip


def test_duplicate_size_is_the_binary_size(mirror: Mirror, tmp_path: Path) -> None:
    import zipfile

    new_wheel = next(b for b in mirror.wheels.values() if b.needs == NEW_NEEDS)
    with zipfile.ZipFile(mirror.locations[new_wheel.filename]) as z:
        size = z.getinfo(f"{new_wheel.project}/_ext.cpython.so").file_size
    text = _report(mirror).stdout
    assert f"_ext.cpython.so ({size} bytes)" in text


def _check_records(m: Mirror, records: list[dict[str, object]]) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert len(records) == len(m.wheels)
    for rec in records:
        errs = [e.message for e in validator.iter_errors(rec)]
        assert not errs, (rec["wheel"], errs)
        b = m.wheels[str(rec["wheel"])]
        assert rec["status"] == b.status
        assert rec["location"] == m.locations[b.filename]
        assert rec["upload_time"] == b.upload
        assert rec["yanked"] is b.yanked
        assert rec["project"] == b.project
        if b.status in ("ok", "mislabelled"):
            assert b.claim is not None
            assert b.needs is not None
            assert rec["minimal_tag"] == _policy(_minimal(b.needs)) + "_x86_64"
            assert rec["required_glibc"] == ".".join(map(str, b.needs))
        if b.status == "mislabelled":
            kinds = {f["kind"] for f in rec["findings"] if f["severity"] == "violation"}  # type: ignore[attr-defined]
            assert kinds == {"symbol-version"}


def test_jsonl_and_zst_round_trip(mirror: Mirror, tmp_path: Path) -> None:
    out = _report(mirror, "--format", "jsonl").stdout
    records = [json.loads(line) for line in out.splitlines()]
    _check_records(mirror, records)
    zst = tmp_path / "r.jsonl.zst"
    r = _report(mirror, "--format", "jsonl.zst", "-o", str(zst))
    assert str(zst) in r.stderr
    with zst.open("rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as zr:
        raw = zr.read()
    assert [json.loads(line) for line in raw.decode().splitlines()] == records
    assert zst.stat().st_size < len(out)


def test_csv_and_findings_file(mirror: Mirror, tmp_path: Path) -> None:
    out = tmp_path / "wheels.csv"
    _report(mirror, "--format", "csv", "-o", str(out))
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(mirror.wheels)
    for row in rows:
        b = mirror.wheels[row["wheel"]]
        assert row["status"] == b.status
        assert row["location"] == mirror.locations[b.filename]
        assert row["yanked"] == ("true" if b.yanked else "false")
        assert row["upload_time"] == b.upload
        claims = [b.filename[:-4].rsplit("-", 1)[1]]  # the platform tag as written
        assert json.loads(row["claims"]) == claims
        assert int(row["violations"]) == (1 if b.status == "mislabelled" else 0)
    with (tmp_path / "wheels.findings.csv").open(newline="") as f:
        findings = list(csv.DictReader(f))
    sv = [x for x in findings if x["kind"] == "symbol-version"]
    liars = _liars(mirror)
    assert sorted(x["wheel"] for x in sv) == sorted(b.filename for b in liars)
    for x in sv:
        assert "clock_gettime@GLIBC_2.17" in json.loads(x["evidence"])["symbols"]
        assert x["member"].endswith("/_ext.cpython.so")
    by_wheel = Counter(x["wheel"] for x in findings)
    for row in rows:
        assert by_wheel[row["wheel"]] == int(row["findings"])


def test_filters(mirror: Mirror) -> None:
    def wheels(*args: str) -> set[str]:
        out = _report(mirror, "--format", "jsonl", *args).stdout
        return {json.loads(line)["wheel"] for line in out.splitlines()}

    ws = mirror.wheels.values()
    assert wheels("--project", "Beta") == {b.filename for b in ws if b.project == "beta"}
    assert wheels("--status", "mislabelled") == {b.filename for b in _liars(mirror)}
    assert wheels("--since", "2023-01-01") == {b.filename for b in ws if b.upload >= "2023"}
    assert wheels("--platform", "manylinux1_*") == {
        b.filename for b in ws if "manylinux1_" in b.filename
    }
    assert wheels("--project", "gamma", "--status", "ok") == {
        b.filename for b in ws if b.project == "gamma" and b.status == "ok"
    }
    r = subprocess.run([sys.executable, "-m", "wheelscan", "report", "--db",
                        str(mirror.db), "--since", "yesterday-ish"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 2
    assert "--since" in r.stderr


def test_missing_or_foreign_store(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "wheelscan", "report", "--db",
                        str(tmp_path / "none.sqlite")], capture_output=True, text=True,
                       check=False)  # fmt: skip
    assert r.returncode == 2
    assert "none.sqlite" in r.stderr
    assert "Traceback" not in r.stderr
    other = tmp_path / "other.sqlite"
    import sqlite3

    con = sqlite3.connect(other)
    con.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    con.execute("CREATE TABLE wheels (id INTEGER)")
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    r = subprocess.run([sys.executable, "-m", "wheelscan", "report", "--db", str(other)],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 2
    assert "schema" in r.stderr
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------------
# HTML


SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def html_report(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    _report(mirror, "--format", "html", "-o", str(out))
    return out


def _text_of(el: object) -> str:
    return "".join(el.itertext())  # type: ignore[attr-defined]


def test_html_is_strict_and_self_contained(mirror: Mirror, html_report: Path) -> None:
    data = html_report.read_bytes()
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    doc = parser.parse(data)  # raises ParseError on any markup error
    # nothing fetched from anywhere: no src/href to another origin, no link/img/iframe
    assert not re.search(rb"""(src|href)\s*=\s*["']?(https?:|//)""", data)
    for tag in ("link", "img", "iframe", "object", "embed"):
        assert doc.find(f".//{tag}") is None, tag
    assert all(s.get("src") is None for s in doc.iter("script"))
    svgs = list(doc.iter(f"{SVG}svg"))
    labels = {s.get("aria-label") for s in svgs}
    assert {"claimed vs minimal tag heatmap", "mislabelled share by upload year",
            "distribution of required glibc"} <= labels  # fmt: skip
    heat = next(s for s in svgs if s.get("aria-label") == "claimed vs minimal tag heatmap")
    cells = Counter[tuple[str, str]]()
    for rect in heat.iter(f"{SVG}rect"):
        t = rect.find(f"{SVG}title")
        if t is not None:
            mt = re.fullmatch(r"(\S+) claimed, (\S+) minimal: (\d+)", t.text or "")
            assert mt
            cells[(mt.group(1), mt.group(2))] = int(mt.group(3))
    assert cells == _expected_matrix(mirror)
    years = next(s for s in svgs if s.get("aria-label") == "mislabelled share by upload year")
    tips = {(t.text or "") for t in years.iter(f"{SVG}title")}
    for year in {b.upload[:4] for b in mirror.wheels.values() if b.status in ("ok", "mislabelled")}:
        judged = [b for b in mirror.wheels.values() if b.upload.startswith(year)
                  and b.status in ("ok", "mislabelled")]  # fmt: skip
        lied = sum(b.status == "mislabelled" for b in judged)
        assert f"{year}: {lied} of {len(judged)} judged wheels mislabelled" in tips
    glibc = next(s for s in svgs if s.get("aria-label") == "distribution of required glibc")
    need = Counter(".".join(map(str, b.needs)) for b in mirror.wheels.values()
                   if b.needs and b.status in ("ok", "mislabelled"))  # fmt: skip
    gtips = {(t.text or "") for t in glibc.iter(f"{SVG}title")}
    assert gtips == {f"glibc {v}: {n} wheels" for v, n in need.items()}
    # the violations table: one row per mislabelled wheel, with evidence
    table = doc.find(".//table[@id='vtable']")
    assert table is not None
    rows = table.findall("./tbody/tr")
    assert sorted(_text_of(r.findall("td")[1]) for r in rows) == sorted(
        b.filename for b in _liars(mirror)
    )
    for r in rows:
        assert "clock_gettime@GLIBC_2.17" in _text_of(r)
    # per-project sections for every project with a mislabelled wheel
    for p in {b.project for b in _liars(mirror)}:
        sec = doc.find(f".//section[@id='p-{p}']")
        assert sec is not None, p
        listed = [_text_of(li.find("code")) for li in sec.iter("li")]
        assert sorted(listed) == sorted(b.filename for b in _liars(mirror) if b.project == p)
    conflicts = doc.find(".//table[@id='conflicts']")
    assert conflicts is not None
    assert SONAME in _text_of(conflicts)
    assert len(data) < 5_000_000


def test_html_broken_markup_is_caught() -> None:
    """The strict parser used above does reject broken markup (the check can fail)."""
    parser = html5lib.HTMLParser(strict=True)
    with pytest.raises(html5lib.html5parser.ParseError):
        parser.parse("<!DOCTYPE html><html><head><title>x</title></head><body><p>a</i></body>")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def require_chromium() -> str:
    """Chromium's path; skip on a dev box without it, fail under CI=true."""
    exe = _chromium()
    if exe is None:
        reason = "chromium not installed (scripts/install-test-deps.sh installs it)"
        if in_ci():
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)
    return exe


def _png_stats(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct colours in a sample of rows) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8
            assert ctype in (2, 6)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    bpp = 3 if ctype == 2 else 4
    stride = width * bpp
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 0xFF
            elif f == 2:
                line[x] = (line[x] + b) & 0xFF
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        if y % 8 == 0:
            colours.update(bytes(line[i : i + 3]) for i in range(0, stride, bpp * 2))
        prev = line
    return width, height, len(colours)


@pytest.mark.parametrize("width", [390, 1280])
def test_html_renders_in_headless_chromium(html_report: Path, tmp_path: Path, width: int) -> None:
    exe = require_chromium()
    shot = tmp_path / f"shot{width}.png"
    r = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", f"--window-size={width},900", html_report.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert shot.is_file(), r.stderr[-2000:]
    w, h, colours = _png_stats(shot.read_bytes())
    assert (w, h) == (width, 900)
    # text, red/green heatmap cells and blue bars: far more than a blank or error page has
    assert colours > 40, colours


def test_report_reads_only(mirror: Mirror) -> None:
    before = mirror.db.stat().st_mtime_ns
    data = mirror.db.read_bytes()
    _report(mirror, "--format", "html", "-o", os.devnull)
    assert mirror.db.read_bytes() == data
    assert mirror.db.stat().st_mtime_ns == before


def test_text_report_to_file_and_jsonl_default_stdout(mirror: Mirror, tmp_path: Path) -> None:
    out = tmp_path / "r.txt"
    r = _report(mirror, "-o", str(out))
    assert r.stdout == ""
    assert out.read_text() == _report(mirror).stdout.replace(str(mirror.db), str(mirror.db))
    assert io.StringIO(out.read_text()).readline().startswith("wheelscan report")


_PROBE = """<!DOCTYPE html><html><head><title>x</title></head><body style="margin:0">
<iframe id="f" src="{src}" style="width:{width}px;height:900px;border:0"></iframe><script>
document.getElementById('f').addEventListener('load', function () {{
  var d = this.contentDocument.documentElement;
  document.title = 'PROBE ' + d.scrollWidth + ' ' + this.contentWindow.innerWidth; }});
</script></body></html>"""


def _page_width(exe: str, report: Path, width: int, tmp: Path) -> tuple[int, int]:
    """(page scrollWidth, viewport width) of ``report`` laid out ``width`` CSS px wide, in an
    iframe: headless Chromium keeps its window at least 500 px wide."""
    wrap = report.with_name(f"probe-{width}-{report.name}")
    wrap.write_text(_PROBE.format(src=report.name, width=width))
    r = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", "--allow-file-access-from-files",
         f"--user-data-dir={tmp / f'profile{width}'}", "--dump-dom", "--window-size=1400,1000",
         wrap.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
        env={**os.environ, "HOME": str(tmp)},
    )  # fmt: skip
    m = re.search(r"<title>PROBE (\d+) (\d+)</title>", r.stdout)
    assert m, r.stderr[-2000:]
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("width", [390, 1280])
def test_html_never_overflows_the_page_sideways(
    html_report: Path, tmp_path: Path, width: int
) -> None:
    """Wide tables scroll inside their own box; the page itself is never wider than the
    screen. A copy with one over-wide element shows that the probe sees overflow."""
    exe = require_chromium()
    report = tmp_path / "report.html"
    shutil.copy(html_report, report)
    assert _page_width(exe, report, width, tmp_path) == (width, width)
    wide = tmp_path / "wide.html"
    over = '<div style="width:3000px">x</div></body>'
    wide.write_text(report.read_text().replace("</body>", over))
    scroll, viewport = _page_width(exe, wide, width, tmp_path)
    assert viewport == width
    assert scroll > width


def test_project_counts_match_a_count_over_the_rows(mirror: Mirror, tmp_path: Path) -> None:
    # the summary's top projects are grouped by SQLite, not counted row by row: they must
    # equal a count over the rows the summary reads, with a project that is NULL or empty
    # (a store someone edited) counted once, as the unparseable name
    import sqlite3

    from wheelscan.mirror.store import StoreReader
    from wheelscan.report.records import ALL, UNPARSEABLE

    db = tmp_path / "edited.sqlite"
    src = sqlite3.connect(mirror.db)
    dst = sqlite3.connect(db)
    src.backup(dst)
    src.close()
    ids = [r[0] for r in dst.execute("SELECT id FROM wheels WHERE status = 'mislabelled'"
                                     " ORDER BY id")]  # fmt: skip
    dst.execute("UPDATE wheels SET project = NULL WHERE id = ?", (ids[0],))
    dst.execute("UPDATE wheels SET project = '' WHERE id = ?", (ids[1],))
    dst.commit()
    dst.close()
    with StoreReader(str(db)) as store:
        rows = list(store.wheels(ALL))
        got = store.project_counts(ALL, UNPARSEABLE, 100)
        top1 = store.project_counts(ALL, UNPARSEABLE, 1)
    mis: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for r in rows:
        p = r.project or UNPARSEABLE
        total[p] += 1
        mis[p] += r.status == "mislabelled"
    want = sorted(((p, mis[p], total[p]) for p in total if mis[p]), key=lambda t: (-t[1], t[0]))
    assert got == want
    assert (UNPARSEABLE, 2, 2) in got
    assert top1 == want[:1]
