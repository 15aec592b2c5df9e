"""ISA-L's C API is built for but loaded at import, never linked: the extension imports where
libisal is missing (falling back to the next inflater, and saying why), and a library is used
only after it inflated a known stream correctly through the header's layout, bound once.

The stand-in libraries are real shared objects compiled by gcc here, loaded by the real
dynamic loader.
"""

from __future__ import annotations

import ctypes.util
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import require
from helpers.corpus import corpus_wheel
from helpers.native import inflater_env, native_inflate, native_zipread, shared_object

import wheelscan
from wheelscan.environment import environment
from wheelscan.facts import WheelFacts

if TYPE_CHECKING:
    from helpers.corpus import Corpus






def _built_for_libisal() -> Any:
    zipread = native_zipread()
    inflate = native_inflate()
    if not inflate.LIBISAL_BUILT:  # skips on a dev box, fails under CI=true
        require("this build is not for libisal (install libisal-dev, then pip install again)")
    return zipread


def _no_byte_counts(facts: WheelFacts) -> dict[str, object]:
    d = facts.to_dict()
    for m in d["members"]:
        m["read"] = m["inflated"] = 0
    return d


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=True).stdout  # fmt: skip




def test_built_for_libisal_but_not_linked() -> None:
    """No DT_NEEDED on libisal (read by the project's own ELF parser); where the library is
    installed, import loaded it and offers the inflater first."""
    zipread = _built_for_libisal()
    inflate = native_inflate()
    from wheelscan._native import elf

    for module in (zipread, inflate):  # inflate binds the library; zipread calls through it
        data = Path(module.__file__).read_bytes()
        facts = elf.parse(data, len(data), module.__name__)
        assert "libz.so.1" in facts.needed
        assert [n for n in facts.needed if "isal" in n] == []
    if ctypes.util.find_library("isal") is None:
        require("libisal.so.2 is not installed here")
    assert inflate.LIBISAL_ERROR is None
    assert inflate.LIBISAL is True
    assert inflate.INFLATERS[inflate.INFLATERS[0] == "auto"] == "libisal"  # auto: with libz-ng
    assert inflate.LIBISAL_HEADER.startswith("2.")


_SCAN = (
    "import json, sys, wheelscan\n"
    "from wheelscan._native import inflate as i\n"
    "f = wheelscan.scan_wheel(sys.argv[1])\n"
    "print(json.dumps([i.LIBISAL, i.LIBISAL_ERROR, i.INFLATERS, i.inflater, f.to_dict()]))\n"
)


def _scan_elsewhere(path: Path, prelude: str = "", **env: str) -> tuple[Any, ...]:
    out = _python(prelude + _SCAN, str(path), env=inflater_env(**env))
    loaded, why, inflaters, used, facts = json.loads(out)
    return loaded, why, inflaters, used, WheelFacts.from_dict(facts)


def test_missing_library_falls_back_at_import(corpus: Corpus) -> None:
    """The dynamic loader refusing libisal.so.2 (as on a machine without it) leaves the
    import working on the next inflater, with the loader's reason; the facts are the same."""
    _built_for_libisal()
    w = corpus_wheel(corpus, "x86_64-deflate")
    prelude = (
        "import ctypes\n"
        "class _NoIsal(ctypes.CDLL):\n"
        "    def __init__(self, name, *a, **k):\n"
        "        if 'isal' in str(name):\n"
        "            raise OSError(f'{name}: cannot open shared object file')\n"
        "        super().__init__(name, *a, **k)\n"
        "ctypes.CDLL = _NoIsal\n"
    )
    loaded, why, inflaters, used, facts = _scan_elsewhere(w.path, prelude)
    assert loaded is False
    assert why == "cannot load libisal.so.2: libisal.so.2: cannot open shared object file"
    assert "libisal" not in inflaters
    assert used == inflaters[0]
    assert _no_byte_counts(facts) == _no_byte_counts(wheelscan.scan_wheel(w.path))


def test_disabled_by_environment(corpus: Corpus) -> None:
    """WHEELSCAN_LIBISAL=0 keeps it unloaded: same facts, and ``--version`` says why."""
    native_zipread()
    w = corpus_wheel(corpus, "x86_64-deflate")
    loaded, why, inflaters, used, facts = _scan_elsewhere(w.path, WHEELSCAN_LIBISAL="0")
    assert (loaded, why) == (False, "disabled by WHEELSCAN_LIBISAL=0")
    assert "libisal" not in inflaters
    assert used == inflaters[0]
    assert _no_byte_counts(facts) == _no_byte_counts(wheelscan.scan_wheel(w.path))
    version = subprocess.run([sys.executable, "-m", "wheelscan", "--version"], check=True,
                             env=inflater_env(WHEELSCAN_LIBISAL="0"), capture_output=True,
                             text=True).stdout  # fmt: skip
    assert f"native inflater {used} " in version
    assert version.rstrip().endswith("; libisal: disabled by WHEELSCAN_LIBISAL=0")


def test_required_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """WHEELSCAN_LIBISAL=1 makes a library that cannot be used an ImportError."""
    _built_for_libisal()
    inflate = native_inflate()
    monkeypatch.setattr(inflate, "LIBISAL_SONAME", "/nonexistent/libisal.so.2")
    monkeypatch.setenv("WHEELSCAN_LIBISAL", "1")
    environment.cache_clear()
    wanted = r"^WHEELSCAN_LIBISAL=1 but libisal is unusable: cannot load /nonexistent/libisal"
    with pytest.raises(ImportError, match=wanted):
        inflate._load_libisal()
    monkeypatch.setenv("WHEELSCAN_LIBISAL", "")
    environment.cache_clear()
    assert inflate._load_libisal().startswith("cannot load /nonexistent/libisal.so.2: ")




def _inflate_with_bound(zipread: Any) -> None:
    """The binding made at import still inflates a deflated member."""
    data = b"".join(b"%d\n" % (i * i) for i in range(5000))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m.txt", data)
    arc = zipread.Archive(io.BytesIO(buf.getvalue()), inflater="libisal")
    arc.read_directory()
    assert arc.entry(0)[1] == zipfile.ZIP_DEFLATED
    assert arc.read_member(0, 1 << 20) == data


def test_a_library_is_checked_before_it_is_bound(tmp_path: Path) -> None:
    """A library without ISA-L's functions, or whose functions do not inflate a known stream
    through this build's header layout, is refused with the reason, and the binding made at
    import (if any) keeps working."""
    zipread = _built_for_libisal()
    inflate = native_inflate()
    empty = shared_object(tmp_path, "libempty", "int unrelated(void) { return 1; }\n")
    why = inflate._bind_libisal(str(empty))
    assert why.startswith(f"{empty} lacks ISA-L's inflate functions: ")
    # ISA-L's own header, but an inflate that only claims to have filled the output
    fake = shared_object(tmp_path, "libfake", (
        "#include <isa-l/igzip_lib.h>\n"
        "void isal_inflate_init(struct inflate_state *s) { s->block_state = ISAL_BLOCK_NEW_HDR; }\n"
        "int isal_inflate(struct inflate_state *s) {\n"
        "    s->next_in += s->avail_in; s->avail_in = 0;\n"
        "    s->next_out += s->avail_out - 1; s->total_out += s->avail_out - 1;\n"
        "    s->avail_out = 1; s->block_state = ISAL_BLOCK_FINISH; return ISAL_DECOMP_OK; }\n"
    ))  # fmt: skip
    why = inflate._bind_libisal(str(fake))
    assert why == (f"{fake} does not inflate a known stream through the layout of the ISA-L "
                   f"{inflate.LIBISAL_HEADER} header this build used")  # fmt: skip
    missing = tmp_path / "libnothere.so"
    assert inflate._bind_libisal(str(missing)).startswith(f"cannot load {missing}: ")
    if inflate.LIBISAL:
        _inflate_with_bound(zipread)


def _loaded_libisal_file() -> Path | None:
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split()[-1]
        if "libisal.so" in path and path.startswith("/"):
            return Path(path)
    return None


def test_the_first_binding_stays(tmp_path: Path) -> None:
    """A second, working copy of the library (another file, so the loader maps it again at
    other addresses) passes the check but is not bound: threads inflating with the first
    never see their functions change. The same library again is fine."""
    zipread = _built_for_libisal()
    inflate = native_inflate()
    if not inflate.LIBISAL:
        require(f"libisal is not loaded here: {inflate.LIBISAL_ERROR}")
    real = _loaded_libisal_file()
    assert real is not None
    assert inflate._bind_libisal(inflate.LIBISAL_SONAME) is None
    copy = tmp_path / "libisal-copy.so.2"
    shutil.copyfile(real, copy)
    assert inflate._bind_libisal(str(copy)) == (
        f"another libisal is already bound; {copy} is not used")
    _inflate_with_bound(zipread)
