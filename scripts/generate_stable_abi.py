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

``URL`` names where the toml's bytes came from (a CPython tag or commit); its sha256 is
recorded next to it. Nothing here is typed by hand but :data:`LINUX`.
"""

from __future__ import annotations

import argparse
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


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("toml", type=Path, help="a copy of CPython's Misc/stable_abi.toml")
    ap.add_argument("--url", required=True, help="where those bytes come from")
    ap.add_argument("--ref", help="what the URL pins, in words (tag, commit, date)")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.output.write_text(render(build(args.toml.read_bytes(), args.url, args.ref)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
