"""Regenerate src/wheelscan/data/stable-abi.json from CPython's ``Misc/stable_abi.toml``.

The manifest lists every item of the Limited API and the Stable ABI with the version that
added it. Only ``function`` and ``data`` items are exported symbols a binary can import;
``struct``, ``typedef``, ``macro`` and ``const`` items are kept by name and kind so that a
binary importing such a name can be told why it is no stable-ABI symbol. An item's
``ifdef`` names a feature macro: the symbol exists only where that macro is defined, and
:data:`LINUX` says which macros a Linux release build of CPython defines. ``abi_only``
items (called by macros, or dropped from the Limited API) stay exported: a binary may import
them.

    python scripts/generate_stable_abi.py stable_abi.toml --url URL [--ref REF] [-o OUT]
    python scripts/generate_stable_abi.py (TOML --url URL | --base JSON) --release 3.X.Y \
        --release-test test_stable_abi_ctypes.py --release-test-url URL \
        --release-docs html/c-api --release-lib libpython3.X.so.1.0

With ``--release``, a toml taken from a development branch is brought to a release's own
symbol set, read from what the release ships generated from its toml: the ctypes test that
lists every exported symbol (and its feature macro) and the HTML documentation that gives each
documented item's kind and "Stable ABI since" version, with the kinds of its built libpython's
exports. A symbol these cannot account for stops the script.

``URL`` names where the toml's bytes came from (a CPython tag or commit); its sha256 is
recorded next to it. Nothing here is typed by hand but :data:`LINUX`.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import tomllib

OUT = Path(__file__).resolve().parent.parent / "src" / "wheelscan" / "data" / "stable-abi.json"
FORMAT = 1
SYMBOL_KINDS = ("function", "data")
OTHER_KINDS = ("struct", "typedef", "macro", "const")
ITEM_KINDS = (*SYMBOL_KINDS, *OTHER_KINDS, "feature_macro")

#: Whether a Linux release build of CPython defines each feature macro (the toml's own
#: ``doc`` says when each is defined). Checked against the dynamic exports of Debian's
#: libpython3.15.so.1.0 (3.15.2-1): every symbol without ``ifdef`` or under a macro marked
#: True is exported, none under a macro marked False is. A macro missing here stops the
#: script: a new one is classified on purpose.
LINUX = {
    "MS_WINDOWS": False,  # on Windows
    "HAVE_FORK": True,  # on platforms with fork()
    "USE_STACKCHECK": False,  # defined for Windows builds only
    "PY_HAVE_THREAD_NATIVE_ID": True,  # Linux has native thread ids
    "Py_REF_DEBUG": False,  # debug builds only
    "Py_TRACE_REFS": False,  # a special build option, off in release builds
}
_VERSION = re.compile(r"^3\.(\d+)$")


def build(raw: bytes, url: str, ref: str | None = None) -> dict[str, Any]:
    """The manifest document from the toml's bytes."""
    doc = tomllib.loads(raw.decode("utf-8"))
    unknown = sorted(set(doc) - set(ITEM_KINDS))
    if unknown:
        raise ValueError(f"unknown item kinds {unknown}: read the toml's header and classify")
    macros: dict[str, Any] = {}
    for name, item in sorted(doc.get("feature_macro", {}).items()):
        if name not in LINUX:
            raise ValueError(f"feature macro {name!r} is not classified in LINUX")
        macros[name] = {"doc": str(item.get("doc", "")), "linux": LINUX[name]}
    symbols: dict[str, Any] = {}
    others: dict[str, str] = {}
    newest = (3, 2)
    for kind in (*SYMBOL_KINDS, *OTHER_KINDS):
        for name, item in doc.get(kind, {}).items():
            added = str(item["added"])
            m = _VERSION.match(added)
            if m is None:
                raise ValueError(f"{kind}.{name}: unexpected added = {added!r}")
            newest = max(newest, (3, int(m.group(1))))
            if name in symbols or name in others:
                raise ValueError(f"{name} listed twice")
            if kind not in SYMBOL_KINDS:
                others[name] = kind
                continue
            entry: dict[str, Any] = {"kind": kind, "added": added}
            if item.get("abi_only"):
                entry["abi_only"] = True
            if "ifdef" in item:
                if item["ifdef"] not in macros:
                    raise ValueError(f"{name}: ifdef {item['ifdef']!r} is no feature macro")
                entry["ifdef"] = str(item["ifdef"])
            symbols[name] = entry
    provenance: dict[str, Any] = {
        "source": "CPython Misc/stable_abi.toml",
        "url": url,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "newest_added": f"{newest[0]}.{newest[1]}",
    }
    if ref:
        provenance["ref"] = ref
    return {
        "format": FORMAT,
        "provenance": provenance,
        "feature_macros": macros,
        "symbols": dict(sorted(symbols.items())),
        "not_symbols": dict(sorted(others.items())),
    }


def release_symbols(raw: bytes) -> dict[str, str | None]:
    """Every exported Stable-ABI symbol of a release, with its feature macro (None: always),
    from the release's ``Lib/test/test_stable_abi_ctypes.py``. CPython generates that file
    from the release's own toml (``Tools/build/stable_abi.py``); it is read as a syntax tree
    (``SYMBOL_NAMES = (...)``, then ``if feature_macros['X']: SYMBOL_NAMES += (...)``), never
    run."""
    out: dict[str, str | None] = {}

    def names(node: ast.AST) -> list[str]:
        if not isinstance(node, ast.Tuple) or not all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            raise ValueError(f"line {getattr(node, 'lineno', '?')}: expected a tuple of names")
        return [e.value for e in node.elts]  # type: ignore[attr-defined]

    for stmt in ast.parse(raw.decode("utf-8")).body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == "SYMBOL_NAMES"):
            out.update(dict.fromkeys(names(stmt.value)))
        elif isinstance(stmt, ast.If) and isinstance(stmt.test, ast.Subscript) and isinstance(
                stmt.test.slice, ast.Constant) and len(stmt.body) == 1 and isinstance(
                stmt.body[0], ast.AugAssign):
            macro = str(stmt.test.slice.value)
            out.update(dict.fromkeys(names(stmt.body[0].value), macro))
    if not out:
        raise ValueError("no SYMBOL_NAMES in the release's test file")
    return out


_DOC_ITEM = re.compile(r'<dl class="c (function|var)">\s*<dt class="sig sig-object c" '
                       r'id="c\.([A-Za-z_][A-Za-z0-9_]*)"')
_DOC_SINCE = re.compile(r"Stable ABI</span></a>\s*since version (3\.\d+)\.")


def documented(html_dir: Path) -> dict[str, tuple[str, str]]:
    """(kind, version) of each C-API item the release's HTML documentation marks "Part of the
    Stable ABI since version X" (``c-api/*.html``: CPython renders that note from its toml)."""
    out: dict[str, tuple[str, str]] = {}
    for page in sorted(html_dir.glob("*.html")):
        text = page.read_text(encoding="utf-8")
        for m in _DOC_ITEM.finditer(text):
            end = text.find("</dd>", m.end())
            since = _DOC_SINCE.search(text, m.end(), end if end > 0 else len(text))
            if since is not None:
                out[m.group(2)] = ("function" if m.group(1) == "function" else "data",
                                   since.group(1))
    return out


def exported(lib: Path) -> dict[str, str]:
    """The kind (``function`` for STT_FUNC, ``data`` for STT_OBJECT) of each symbol a built
    libpython exports, read with pyelftools (a maintainer's tool, not wheelscan's scanner)."""
    from elftools.elf.elffile import ELFFile

    out: dict[str, str] = {}
    with lib.open("rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        for sym in dynsym.iter_symbols():
            if sym["st_shndx"] == "SHN_UNDEF" or sym["st_info"]["bind"] == "STB_LOCAL":
                continue
            kind = {"STT_FUNC": "function", "STT_OBJECT": "data"}.get(sym["st_info"]["type"])
            if kind is not None:
                out[sym.name] = kind
    return out


def amend(data: dict[str, Any], raw_test: bytes, release: str, test_url: str,
          docs: dict[str, tuple[str, str]], lib: dict[str, str]) -> dict[str, Any]:
    """``data`` (built from a toml that is not the release's) brought to ``release``'s own
    symbol set: symbols the release exports but the toml lacks are added, at the release's
    version (the toml already lists every older one: a released Stable ABI never grows), as
    the kind the release's libpython exports them with, checked against the documentation
    where it documents them. A toml symbol the release does not list, a release symbol a
    Linux libpython does not export, or a documented version that disagrees stops the
    script."""
    m = re.fullmatch(r"3\.(\d+)\.\d+", release)
    if m is None:
        raise ValueError(f"--release {release!r}: expected 3.X.Y")
    rel = release_symbols(raw_test)
    syms = dict(data["symbols"])
    linux = {k: v["linux"] for k, v in data["feature_macros"].items()}
    unknown = sorted({mac for mac in rel.values() if mac is not None} - set(linux))
    if unknown:
        raise ValueError(f"the release uses feature macros {unknown}: classify them in LINUX")
    gone = sorted(n for n, e in syms.items() if n not in rel)
    if gone:
        raise ValueError(f"the toml lists {len(gone)} symbols the release lacks: {gone[:10]}")
    added = []
    for name, macro in sorted(rel.items()):
        if name in syms:
            if syms[name].get("ifdef") != macro:
                raise ValueError(f"{name}: ifdef {syms[name].get('ifdef')!r} in the toml, "
                                 f"{macro!r} in the release")
            continue
        version = f"3.{m.group(1)}"
        if data["provenance"]["newest_added"] != version:
            raise ValueError(f"{name}: missing from a toml whose newest entries are "
                             f"{data['provenance']['newest_added']}, not {version}")
        if macro is not None and not linux[macro]:
            raise ValueError(f"{name}: new under {macro}, which Linux builds do not define")
        if name not in lib:
            raise ValueError(f"{name}: listed by {release} but not exported by its libpython")
        kind = lib[name]
        if name in docs and docs[name] != (kind, version):
            raise ValueError(f"{name}: documented as {docs[name]}, exported as {kind}")
        entry: dict[str, Any] = {"kind": kind, "added": version}
        if macro is not None:
            entry["ifdef"] = macro
        syms[name] = entry
        added.append(name)
    missing = sorted(n for n, mac in rel.items() if (mac is None or linux[mac]) and n not in lib)
    if missing:
        raise ValueError(f"the release's libpython does not export {missing[:10]}")
    prov = dict(data["provenance"])
    prov["release"] = {
        "version": release,
        "symbols_from": test_url,
        "symbols_sha256": hashlib.sha256(raw_test).hexdigest(),
        "added": added,
        "documented": sorted(n for n in added if n in docs),
    }
    return {**data, "provenance": prov, "symbols": dict(sorted(syms.items()))}


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("toml", type=Path, nargs="?", help="a copy of CPython's Misc/stable_abi.toml")
    ap.add_argument("--base", type=Path, help="instead of a toml: a manifest this script made "
                    "from one, to bring to --release")
    ap.add_argument("--url", help="where the toml's bytes come from")
    ap.add_argument("--ref", help="what the URL pins, in words (tag, commit, date)")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    ap.add_argument("--release", help="bring the data to this release's symbol set (3.X.Y), "
                    "when the toml at hand is not the release's own")
    ap.add_argument("--release-test", type=Path, help="the release's "
                    "Lib/test/test_stable_abi_ctypes.py (with --release)")
    ap.add_argument("--release-test-url", help="where those bytes come from")
    ap.add_argument("--release-docs", type=Path,
                    help="the release's HTML documentation, its c-api/ directory")
    ap.add_argument("--release-lib", type=Path, help="the release's libpython3.X.so.1.0 "
                    "as a Linux distribution builds it")
    ap.add_argument("--release-from", help="where the documentation and the library came "
                    "from, in words (packages, their sha256)")
    args = ap.parse_args(argv)
    if (args.toml is None) == (args.base is None):
        ap.error("give a toml (with --url) or --base")
    if args.base is not None:
        data = json.loads(args.base.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or "release" in data.get("provenance", {}):
            ap.error(f"{args.base}: not a toml-built manifest of format {FORMAT}")
    elif args.url is None:
        ap.error("a toml needs --url")
    else:
        data = build(args.toml.read_bytes(), args.url, args.ref)
    if args.release:
        if not (args.release_test and args.release_test_url and args.release_docs
                and args.release_lib):
            ap.error("--release needs --release-test, --release-test-url, --release-docs "
                     "and --release-lib")
        data = amend(data, args.release_test.read_bytes(), args.release,
                     args.release_test_url, documented(args.release_docs),
                     exported(args.release_lib))
        if args.release_from:
            data["provenance"]["release"]["docs_and_lib_from"] = args.release_from
    args.output.write_text(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
