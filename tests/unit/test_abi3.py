"""The abi3 claim: gcc-built extension modules importing chosen C-API symbols, in real wheels,
through both engines; the stable-ABI manifest, its generator and its override.

The expected classification of each symbol is CPython's (its documentation says when each
function joined the Stable ABI), not read back from the manifest under test.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import native_engine_error, require
from helpers.builders import Import, build_elf, build_stub, make_wheel

from wheelscan.facts import UNVERSIONED_NAME_CAP, WheelFacts
from wheelscan.read.engine import scan_wheel
from wheelscan.rules.stableabi import StableAbiError, default_stable_abi, load_stable_abi
from wheelscan.rules.verdict import judge

ROOT = Path(__file__).resolve().parents[2]
TAG = "cp39-abi3-manylinux_2_17_x86_64"
ENGINES = ["native", "lief"]
SCHEMA = json.loads((resources.files("wheelscan") / "data" / "check-schema.json").read_text())

# (name, kind): kind "data" is taken by address, "weak" is a weak function reference
STABLE_OLD = [("PyLong_FromLong", "f"), ("PyObject_GC_IsTracked", "f"),  # 3.2, 3.9
              ("_PyObject_GC_New", "f"),  # ABI-only since 3.2: PyObject_GC_New calls it
              ("PyExc_TypeError", "data"), ("_Py_NoneStruct", "data")]
NEWER = [("PyObject_GetAIter", "f"), ("PyUnicode_AsUTF8AndSize", "f"),  # 3.10
         ("PyType_GetName", "f")]  # 3.11
OUTSIDE = [("_PyLong_AsByteArray", "f"),  # private, never in the Stable ABI
           ("PyErr_SetFromWindowsErr", "f"),  # Stable ABI on Windows only
           ("Py_BEGIN_ALLOW_THREADS", "f")]  # a macro of the Limited API, no symbol
WEAK = [("PyType_GetQualName", "weak"), ("_PyUnicode_Ready", "weak")]  # 3.11; private


def _source(imports: list[tuple[str, str]], module: str) -> str:
    lines = [f"void *PyInit_{module}(void) {{ return 0; }}"]  # an export, not an import
    body = []
    for i, (name, kind) in enumerate(imports):
        if kind == "data":
            lines.append(f"extern char {name}[];")
            body.append(f"  sink[{i}] = (void *){name};")
        elif kind == "weak":
            lines.append(f"extern void *{name}(void *) __attribute__((weak));")
            body.append(f"  if ({name}) sink[{i}] = {name}(o);")
        else:
            lines.append(f"extern void *{name}(void *);")
            body.append(f"  sink[{i}] = {name}(o);")
    lines.append(f"void *sink[{max(len(imports), 1)}];")
    lines.append("void wheelscan_calls(void *o) {")
    return "\n".join([*lines, *body, "}"]) + "\n"


def _module(tmp: Path, name: str, imports: list[tuple[str, str]]) -> Path:
    # no libpython and no libc: undefined symbols are allowed in a shared object
    return build_elf(tmp, f"{name}.abi3.so", _source(imports, name), nostdlib=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("gcc") is None:
        require("gcc is needed to build the abi3 fixtures")
    d = tmp_path_factory.mktemp("abi3")
    mods = {
        "old": _module(d, "old", STABLE_OLD),
        "newer": _module(d, "newer", STABLE_OLD + NEWER),
        "outside": _module(d, "outside", STABLE_OLD + OUTSIDE),
        "weak": _module(d, "weak", STABLE_OLD + WEAK),
        "many": _module(d, "many", [(f"PyFake_{i:05d}", "f")
                                    for i in range(UNVERSIONED_NAME_CAP + 100)]),
    }
    out: dict[str, Path] = {}

    def wheel(key: str, mod: str, tag: str = TAG, extra: str | None = None) -> None:
        files: dict[str, bytes | Path] = {f"pkg/{mod}.abi3.so": mods[mod]}
        if extra:
            files[f"pkg/{extra}.abi3.so"] = mods[extra]
        out[key] = make_wheel(d / "wheels", f"{key}-1.0-{tag}.whl", files)

    wheel("old", "old")
    wheel("newer", "newer")
    wheel("newer311", "newer", "cp311-abi3-manylinux_2_17_x86_64")
    wheel("newer310", "newer", "cp310.cp311-abi3-manylinux_2_17_x86_64")
    wheel("outside", "outside")
    wheel("weak", "weak")
    wheel("two", "newer", extra="outside")
    wheel("many", "many")
    wheel("notabi3", "outside", "cp39-cp39-manylinux_2_17_x86_64")
    wheel("pyabi3", "outside", "py3-abi3-manylinux_2_17_x86_64")
    return out


def _scan(path: Path, engine: str) -> WheelFacts:
    if engine == "native" and (why := native_engine_error()):
        require(why)
    facts = scan_wheel(path, engine=engine)
    assert facts.error is None, facts.error
    assert not facts.errors, facts.errors
    return facts


def _violations(v: Any) -> dict[str, Any]:
    return {f.kind: f for f in v.findings if f.severity == "violation"}


def _names(imports: list[tuple[str, str]]) -> list[str]:
    return sorted(n for n, _ in imports)


@pytest.mark.parametrize("engine", ENGINES)
def test_facts_keep_every_c_api_import(built: dict[str, Path], engine: str) -> None:
    facts = _scan(built["weak"], engine)
    (e,) = facts.elfs
    assert e.python_imports == _names(STABLE_OLD + WEAK)  # PyInit_weak is defined: not there
    assert e.python_weak_imports == _names(WEAK)
    many = _scan(built["many"], engine).elfs[0]
    assert many.python_imports is not None
    assert len(many.python_imports) == UNVERSIONED_NAME_CAP + 100  # the group's names cap
    (group,) = [g for g in many.imports if g.version is None]
    assert len(group.names) == UNVERSIONED_NAME_CAP < group.count


def test_engines_agree_on_c_api_imports(built: dict[str, Path]) -> None:
    for path in built.values():
        a, b = (_scan(path, e) for e in ENGINES)
        assert [(x.python_imports, x.python_weak_imports) for x in a.elfs] == [
            (x.python_imports, x.python_weak_imports) for x in b.elfs], path.name


@pytest.mark.parametrize("engine", ENGINES)
def test_old_stable_symbols_hold(built: dict[str, Path], engine: str) -> None:
    v = judge(_scan(built["old"], engine))
    assert v.status == "ok", v.findings
    assert v.abi3 == {"claim": "cp39-abi3", "holds": True, "minimal_tag": "cp39-abi3",
                      "needs": "3.9"}
    assert v.policy["stable_abi"]["sha256"] == default_stable_abi().provenance["sha256"]


@pytest.mark.parametrize("engine", ENGINES)
def test_newer_symbols_break_the_python_tag(built: dict[str, Path], engine: str) -> None:
    v = judge(_scan(built["newer"], engine))
    assert v.status == "mislabelled"
    assert set(_violations(v)) == {"abi3-version"}
    f = _violations(v)["abi3-version"]
    assert f.member == "pkg/newer.abi3.so"
    assert f.evidence["added"] == {"PyObject_GetAIter": "3.10", "PyUnicode_AsUTF8AndSize": "3.10",
                                   "PyType_GetName": "3.11"}
    assert f.evidence["needs"] == "3.11"
    assert f.evidence["claims"] == ["cp39-abi3"]
    assert "PyType_GetName (3.11)" in f.detail
    assert v.abi3 == {"claim": "cp39-abi3", "holds": False, "minimal_tag": "cp311-abi3",
                      "needs": "3.11"}
    assert v.per_claim == [{"tag": "manylinux_2_17_x86_64", "holds": True}]  # platform is fine


def test_the_lowest_python_tag_is_the_claim(built: dict[str, Path]) -> None:
    v = judge(_scan(built["newer311"], "native"))
    assert v.status == "ok"
    assert v.abi3 is not None
    assert v.abi3["holds"]
    v = judge(_scan(built["newer310"], "native"))  # installs on 3.10: PyType_GetName is 3.11
    assert _violations(v)["abi3-version"].evidence["added"] == {"PyType_GetName": "3.11"}
    assert v.abi3 is not None
    assert v.abi3["claim"] == "cp310-abi3"


@pytest.mark.parametrize("engine", ENGINES)
def test_symbols_outside_the_stable_abi(built: dict[str, Path], engine: str) -> None:
    v = judge(_scan(built["outside"], engine))
    assert v.status == "mislabelled"
    f = _violations(v)["abi3-symbol"]
    assert f.evidence["symbols"] == _names(OUTSIDE)
    notes = f.evidence["notes"]
    assert "MS_WINDOWS" in notes["PyErr_SetFromWindowsErr"]
    assert "macro" in notes["Py_BEGIN_ALLOW_THREADS"]
    assert "_PyLong_AsByteArray" not in notes  # plainly outside
    assert v.abi3 is not None
    assert v.abi3["minimal_tag"] is None  # no abi3 tag is honest


def test_findings_name_each_member(built: dict[str, Path]) -> None:
    v = judge(_scan(built["two"], "native"))
    got = {(f.kind, f.member) for f in v.findings if f.severity == "violation"}
    assert got == {("abi3-version", "pkg/newer.abi3.so"), ("abi3-symbol", "pkg/outside.abi3.so")}


@pytest.mark.parametrize("engine", ENGINES)
def test_weak_references_are_tolerated(built: dict[str, Path], engine: str) -> None:
    v = judge(_scan(built["weak"], engine))
    assert v.status == "ok", v.findings
    (info,) = [f for f in v.findings if f.kind == "weak-import"]
    assert info.severity == "info"
    assert info.evidence["symbols"] == _names(WEAK)
    assert info.evidence["outside"] == ["_PyUnicode_Ready"]
    assert info.evidence["added"] == {"PyType_GetQualName": "3.11"}


def test_nothing_new_without_an_abi3_claim(built: dict[str, Path]) -> None:
    for key in ("notabi3", "pyabi3"):  # py3-abi3: no installer picks it for a CPython
        v = judge(_scan(built[key], "native"))
        assert v.abi3 is None
        assert v.status == "ok", v.findings
        assert not {f.kind for f in v.findings} & {"abi3-symbol", "abi3-version"}


def test_facts_of_an_older_schema_still_rejudge(built: dict[str, Path]) -> None:
    facts = _scan(built["newer"], "native")
    data = json.loads(facts.to_json())
    old = copy.deepcopy(data)
    old["schema"] = 3
    for e in old["elfs"]:
        del e["python_imports"], e["python_weak_imports"]
    restored = WheelFacts.from_dict(old)
    assert restored.elfs[0].python_imports is None
    assert judge(restored).to_dict()["findings"] == judge(facts).to_dict()["findings"]


def test_verdicts_match_the_schema(built: dict[str, Path]) -> None:
    for path in built.values():
        rec = judge(_scan(path, "native")).to_dict()
        jsonschema.validate(rec, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_shipped_manifest(tmp_path: Path) -> None:
    sa = default_stable_abi()
    prov = sa.provenance
    assert prov["source"] == "CPython Misc/stable_abi.toml"
    assert len(prov["sha256"]) == 64
    assert prov["url"].startswith("https://")
    # what CPython documents, independent of the data
    assert sa.on_linux("PyType_GetName") is not None
    assert sa.on_linux("PyType_GetName").added == (3, 11)  # type: ignore[union-attr]
    assert sa.on_linux("PyUnicode_AsUTF8AndSize").added == (3, 10)  # type: ignore[union-attr]
    assert sa.on_linux("PyOS_AfterFork_Child") is not None  # HAVE_FORK: Linux has fork()
    # 3.15.2's: the documentation says "Part of the Stable ABI since version 3.15"
    assert sa.on_linux("PyThreadState_Ensure").added == (3, 15)  # type: ignore[union-attr]
    assert sa.on_linux("PyType_FromSlots").added == (3, 15)  # type: ignore[union-attr]
    assert prov["release"]["version"] == "3.15.2"
    assert sa.on_linux("_Py_RefTotal") is None  # debug builds only
    assert sa.on_linux("PyType_Slot") is None  # a struct
    assert sa.not_symbols["PyType_Slot"] == "struct"


def test_bad_manifests_are_refused(tmp_path: Path) -> None:
    doc = json.loads((resources.files("wheelscan") / "data" / "stable-abi.json").read_text())
    cases: dict[str, Any] = {
        "format": {**doc, "format": 2},
        "kind": {**doc, "symbols": {**doc["symbols"], "Py_X": {"kind": "macro", "added": "3.2"}}},
        "ifdef": {**doc, "symbols": {"Py_X": {"kind": "function", "added": "3.2",
                                              "ifdef": "NOPE"}}},
        "added": {**doc, "symbols": {"Py_X": {"kind": "function", "added": "2.7"}}},
        "provenance": {k: v for k, v in doc.items() if k != "provenance"},
    }
    for name, bad in cases.items():
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(bad))
        with pytest.raises(StableAbiError):
            load_stable_abi(p)


def _wheelscan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wheelscan", *args], capture_output=True,
                          text=True, check=False)


def test_stable_abi_flag(built: dict[str, Path], tmp_path: Path) -> None:
    doc = json.loads((resources.files("wheelscan") / "data" / "stable-abi.json").read_text())
    for n in ("PyObject_GetAIter", "PyUnicode_AsUTF8AndSize", "PyType_GetName"):
        doc["symbols"][n]["added"] = "3.9"  # a manifest that says otherwise
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(doc))
    path = str(built["newer"])
    r = _wheelscan("check", "--engine", "lief", "--format", "json", path)
    assert r.returncode == 1, r.stderr
    r = _wheelscan("check", "--engine", "lief", "--format", "json", "--stable-abi", str(mine), path)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["abi3"]["holds"]
    assert rec["policy"]["stable_abi"]["file"] == str(mine)
    (tmp_path / "broken.json").write_text("{")
    r = _wheelscan("check", "--stable-abi", str(tmp_path / "broken.json"), path)
    assert r.returncode == 2
    assert "stable-ABI manifest" in r.stderr


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "generate_stable_abi", ROOT / "scripts" / "generate_stable_abi.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TOML = b"""
[feature_macro.MS_WINDOWS]
    doc = 'on Windows'
    windows = true
[struct.PyObject]
    added = '3.2'
    struct_abi_kind = 'members'
[function.PyArg_Parse]
    added = '3.2'
[data.PyExc_WindowsError]
    added = '3.7'
    ifdef = 'MS_WINDOWS'
[function._Py_IncRef]
    added = '3.10'
    abi_only = true
[macro.Py_BEGIN_ALLOW_THREADS]
    added = '3.2'
[const.Py_tp_dealloc]
    added = '3.2'
"""


def test_generator_reads_the_toml(tmp_path: Path) -> None:
    gen = _generator()
    doc = gen.build(TOML, "https://example.invalid/stable_abi.toml", "a test")
    assert doc["symbols"] == {
        "PyArg_Parse": {"kind": "function", "added": "3.2"},
        "PyExc_WindowsError": {"kind": "data", "added": "3.7", "ifdef": "MS_WINDOWS"},
        "_Py_IncRef": {"kind": "function", "added": "3.10", "abi_only": True},
    }
    assert doc["not_symbols"] == {"PyObject": "struct", "Py_BEGIN_ALLOW_THREADS": "macro",
                                  "Py_tp_dealloc": "const"}
    assert doc["feature_macros"] == {"MS_WINDOWS": {"doc": "on Windows", "linux": False}}
    assert doc["provenance"]["newest_added"] == "3.10"
    out = tmp_path / "m.json"
    out.write_text(gen.render(doc))
    sa = load_stable_abi(out)
    assert sa.on_linux("PyExc_WindowsError") is None
    assert sa.on_linux("_Py_IncRef") is not None
    with pytest.raises(ValueError, match="not classified"):
        gen.build(TOML + b"[feature_macro.NEW_ONE]\n    doc = 'x'\n", "u")
    with pytest.raises(ValueError, match="unknown item kinds"):
        gen.build(TOML + b"[gadget.Py_X]\n    added = '3.2'\n", "u")


RELEASE_TEST = b"""
SYMBOL_NAMES = (
    "PyArg_Parse",
    "_Py_IncRef",
    "PyNew_Function",
    "PyNew_Data",
)
if feature_macros['MS_WINDOWS']:
    SYMBOL_NAMES += (
        'PyExc_WindowsError',
    )
"""
RELEASE_DOCS = """<dl class="c function">
<dt class="sig sig-object c" id="c.PyNew_Function"><span>PyNew_Function()</span></dt>
<dd><em class="stableabi"> Part of the <a href="stable.html#stable"><span>Stable ABI</span></a>
 since version 3.10.</em><p>New.</p></dd></dl>
"""


def _release_files(tmp_path: Path, lib_source: str) -> tuple[Path, Path]:
    docs = tmp_path / "c-api"
    docs.mkdir()
    (docs / "new.html").write_text(RELEASE_DOCS)
    lib = build_elf(tmp_path, "libpython3.10.so.1.0", lib_source, nostdlib=True)
    return docs, lib


def test_generator_brings_a_toml_to_a_release(tmp_path: Path) -> None:
    gen = _generator()
    base = gen.build(TOML, "https://example.invalid/stable_abi.toml", "a branch")
    docs, lib = _release_files(tmp_path, "void PyArg_Parse(void) {}\nvoid _Py_IncRef(void) {}\n"
                               "void PyNew_Function(void) {}\nint PyNew_Data = 1;\n")
    doc = gen.amend(base, RELEASE_TEST, "3.10.4", "https://example.invalid/test",
                    gen.documented(docs), gen.exported(lib))
    # the one documented, the other (undocumented) as its libpython exports it: an object
    assert doc["symbols"]["PyNew_Function"] == {"kind": "function", "added": "3.10"}
    assert doc["symbols"]["PyNew_Data"] == {"kind": "data", "added": "3.10"}
    assert doc["symbols"]["PyExc_WindowsError"]["ifdef"] == "MS_WINDOWS"  # kept as it was
    assert doc["provenance"]["release"]["added"] == ["PyNew_Data", "PyNew_Function"]
    assert doc["provenance"]["release"]["documented"] == ["PyNew_Function"]
    out = tmp_path / "m.json"
    out.write_text(gen.render(doc))
    assert load_stable_abi(out).on_linux("PyNew_Data") is not None
    # what the sources cannot account for stops the script
    with pytest.raises(ValueError, match="the release lacks"):
        gen.amend(base, RELEASE_TEST.replace(b'"PyArg_Parse",', b""), "3.10.4", "u",
                  gen.documented(docs), gen.exported(lib))
    with pytest.raises(ValueError, match="not exported"):
        gen.amend(base, RELEASE_TEST, "3.10.4", "u", gen.documented(docs),
                  {k: v for k, v in gen.exported(lib).items() if k != "PyNew_Data"})
    with pytest.raises(ValueError, match="newest entries"):  # a version the toml predates
        gen.amend(base, RELEASE_TEST, "3.11.0", "u", gen.documented(docs), gen.exported(lib))
    with pytest.raises(ValueError, match="documented as"):
        gen.amend(base, RELEASE_TEST, "3.10.4", "u", gen.documented(docs),
                  {**gen.exported(lib), "PyNew_Function": "data"})


# The difference classes of benchmarks/ABI3_DIFFERENCES.md that the fixtures above do not
# already show (lowest-python-tag, weak-reference and platform-conditional are shown there).


def test_defined_c_api_names_are_not_imports(tmp_path: Path) -> None:
    # exported-c-api-name / symtab-only: a module's own Py* helpers, exported or static, are
    # never bound to the interpreter (psutil exports PyErr_SetFromOSErrnoWithSyscall)
    src = _source([("PyLong_FromLong", "f")], "own") + (
        "void *PyErr_SetFromOSErrnoWithSyscall(const char *s) { return (void *)s; }\n"
        "static void *_PyOwn_Static(void *o) { return o; }\n"
        "void *wheelscan_static(void *o) { return _PyOwn_Static(o); }\n")
    so = build_elf(tmp_path, "own.abi3.so", src, nostdlib=True, flags=["-O0"])
    w = make_wheel(tmp_path, f"own-1.0-{TAG}.whl", {"own.abi3.so": so})
    for engine in ENGINES:
        facts = _scan(w, engine)
        assert facts.elfs[0].python_imports == ["PyLong_FromLong"]
        v = judge(facts)
        assert v.status == "ok", v.findings
    symtab = subprocess.run(["readelf", "-Ws", str(so)], capture_output=True, text=True,
                            check=True).stdout
    assert "_PyOwn_Static" in symtab  # the static helper is there, in .symtab only


def test_every_elf_member_is_judged_not_only_dot_so_names(tmp_path: Path) -> None:
    # not-a-.so-name: a shared library the extension loads (libshiboken6.abi3.so.6.12) calls
    # the C API as the extension does, whatever its file name
    lib = _module(tmp_path, "libhelper", STABLE_OLD + NEWER)
    ext = _module(tmp_path, "ext", STABLE_OLD)
    w = make_wheel(tmp_path, f"lib-1.0-{TAG}.whl",
                   {"pkg/libhelper.abi3.so.6": lib, "pkg/ext.abi3.so": ext})
    v = judge(_scan(w, "native"))
    f = _violations(v)["abi3-version"]
    assert f.member == "pkg/libhelper.abi3.so.6"


def test_reports_count_abi3_claims_and_reasons(built: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "mirror"
    src.mkdir()
    for key in ("old", "newer", "outside", "notabi3"):
        (src / built[key].name).symlink_to(built[key])
    db = tmp_path / "s.sqlite"
    r = _wheelscan("scan", str(src), "--db", str(db), "--quiet", "--jobs", "1")
    assert r.returncode == 1, r.stderr  # two abi3 claims break
    text = _wheelscan("report", "--db", str(db)).stdout
    section = text.split("abi3 claims")[1].split("\n\n")[0]
    assert "3 abi3 wheels, 2 whose abi3 claim breaks" in section
    rows = {tuple(line.split()) for line in section.splitlines()[2:]}
    assert rows == {("claimed", "honest", "wheels"), ("cp39-abi3", "cp39-abi3", "1"),
                    ("cp39-abi3", "cp311-abi3", "1"), ("cp39-abi3", "none", "1")}
    assert "abi3: C-API symbols outside the Stable ABI: 3 symbols" in text
    assert "abi3: Stable ABI symbols of Python 3.10, older python tag: 2 symbols" in text
    assert "abi3: Stable ABI symbols of Python 3.11, older python tag: 1 symbol" in text
    only = _wheelscan("report", "--db", str(db), "--project", "newer").stdout
    assert "1 abi3 wheel, 1 whose abi3 claim breaks" in only
    assert "outside the Stable ABI" not in only  # the same filters as every section
    out = tmp_path / "r.html"
    r = _wheelscan("report", "--db", str(db), "--format", "html", "-o", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert '<h2 id="abi3">abi3 claims</h2>' in html
    assert "3 judged abi3 wheels, 2 whose claim breaks" in html
    assert "<td>cp39-abi3</td><td>cp311-abi3</td>" in html


def test_tags_with_capitals_are_judged_as_installers_read_them(tmp_path: Path) -> None:
    # packaging's Tag lowercases every part: pip installs this wheel on CPython 3.9 and up
    mod = _module(tmp_path / "m", "newer", STABLE_OLD + NEWER)
    w = make_wheel(tmp_path, "caps-1.0-CP39-ABI3-MANYLINUX_2_17_X86_64.whl",
                   {"pkg/newer.abi3.so": mod})
    for engine in ENGINES:
        v = judge(_scan(w, engine))
        assert v.status == "mislabelled", v.findings
        assert _violations(v)["abi3-version"].evidence["needs"] == "3.11"
        assert v.abi3 is not None
        assert v.abi3["claim"] == "cp39-abi3"
        assert v.claims == ["manylinux_2_17_x86_64"]
        assert v.per_claim == [{"tag": "manylinux_2_17_x86_64", "holds": True}]
        assert not {f.kind for f in v.findings} & {"wheel-tag-mismatch", "abi-suffix"}


def test_a_python_2_tag_does_not_lower_the_claim(tmp_path: Path) -> None:
    mod = _module(tmp_path / "m", "old", STABLE_OLD)
    both = make_wheel(tmp_path, "two-1.0-cp27.cp39-abi3-manylinux_2_17_x86_64.whl",
                      {"pkg/old.abi3.so": mod})
    v = judge(_scan(both, "native"))
    assert v.status == "ok", v.findings
    assert v.abi3 == {"claim": "cp39-abi3", "holds": True, "minimal_tag": "cp39-abi3",
                      "needs": "3.9"}
    only = make_wheel(tmp_path, "py2-1.0-cp27-abi3-manylinux_2_17_x86_64.whl",
                      {"pkg/old.abi3.so": mod})
    assert judge(_scan(only, "native")).abi3 is None  # no CPython with a stable ABI installs it


def _versioned_import_wheel(tmp_path: Path) -> Path:
    # the module links a bundled library whose version script also defines PyType_GetName:
    # the reference is versioned (BUNDLE_1.0), yet the interpreter's unversioned definition
    # is the one it binds to when the bundled library does not come first
    stub = build_stub(tmp_path / "stub", "libbundled.so.1",
                      {"BUNDLE_1.0": ["PyType_GetName", "bundled_helper"]})
    ext = build_elf(tmp_path / "ext", "ext.abi3.so",
                    "void *PyInit_ext(void) { return 0; }\n",
                    imports=[Import("PyType_GetName", stub), Import("bundled_helper", stub)])
    return make_wheel(tmp_path, f"ver-1.0-{TAG}.whl",
                      {"pkg/ext.abi3.so": ext, "pkg/libbundled.so.1": stub})


@pytest.mark.parametrize("engine", ENGINES)
def test_versioned_c_api_imports_are_judged(tmp_path: Path, engine: str) -> None:
    facts = _scan(_versioned_import_wheel(tmp_path), engine)
    ext = next(e for e in facts.elfs if e.member == "pkg/ext.abi3.so")
    assert any(g.version == "BUNDLE_1.0" and "PyType_GetName" in g.names for g in ext.imports)
    assert ext.python_imports == ["PyType_GetName"]
    v = judge(facts)
    f = next(f for f in v.findings if f.kind == "abi3-version" and f.member == ext.member)
    assert f.evidence["added"] == {"PyType_GetName": "3.11"}
    # schema-4 facts written before versioned names were collected still see it
    old = json.loads(facts.to_json())
    for e in old["elfs"]:
        e["python_imports"] = []
    again = judge(WheelFacts.from_dict(old))
    assert any(f.kind == "abi3-version" and f.member == ext.member for f in again.findings)


def test_old_facts_cut_at_the_name_cap_claim_no_honest_tag(built: dict[str, Path]) -> None:
    # schema-3 facts kept at most 4096 unversioned names: a group cut there may hide a
    # newer or private C-API import, so no python tag can be called honest
    old = json.loads(_scan(built["old"], "native").to_json())
    old["schema"] = 3
    for e in old["elfs"]:
        del e["python_imports"], e["python_weak_imports"]
    whole = judge(WheelFacts.from_dict(old))
    assert whole.abi3 is not None
    assert whole.abi3["minimal_tag"] == "cp39-abi3"
    for e in old["elfs"]:
        (group,) = [g for g in e["imports"] if g["version"] is None]
        group["count"] = len(group["names"]) + 10  # as a group cut at the cap records it
    v = judge(WheelFacts.from_dict(old))
    assert v.abi3 is not None
    assert v.abi3["minimal_tag"] is None
    assert v.abi3["needs"] is None
