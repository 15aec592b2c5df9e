"""Demangled names in human-facing output, checked against binutils' c++filt on the names g++
and rustc really emit; short forms checked against the declarations they were compiled from."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require

from wheelscan.report.demangle import MAX_MANGLED, _aliased, demangle, humanize, short

CXX = r"""
#include <string>
#include <vector>
#include <sstream>
#include <iostream>
namespace geo { struct Point {
    double x, y; double norm() const; Point operator+(const Point&) const; }; }
double geo::Point::norm() const { return x * x + y * y; }
geo::Point geo::Point::operator+(const geo::Point& o) const { return {x + o.x, y + o.y}; }
namespace text {
std::size_t last_dot(const std::string& s) { return s.find_last_of(".", std::string::npos, 1); }
std::string join(const std::vector<std::string>& parts) {
    std::ostringstream out; for (auto& p : parts) out << p;
    std::cout << std::endl; return out.str(); }
template <typename T> T twice(T v) { return v + v; }
template int twice<int>(int);
}
"""

RUST = r"""
pub mod shapes { pub struct Circle(pub f64);
  impl Circle { #[inline(never)] pub fn area(&self) -> f64 { self.0 * self.0 * 3.14 } } }
#[no_mangle] pub extern "C" fn entry(r: f64) -> f64 { shapes::Circle(r).area() }
"""


def _dynamic_names(lib: Path) -> list[str]:
    out = subprocess.run(["nm", "-D", "--format=posix", str(lib)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return sorted({line.split()[0].split("@")[0] for line in out.splitlines() if line.strip()})


def _cxxfilt(names: list[str]) -> list[str]:
    return subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                          check=True).stdout.splitlines()  # fmt: skip


@pytest.fixture(scope="module")
def cxx_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("g++") is None or shutil.which("c++filt") is None:
        require("g++ and c++filt are needed to build and read C++ names")
    d = tmp_path_factory.mktemp("demangle")
    (d / "lib.cpp").write_text(CXX)
    subprocess.run(["g++", "-shared", "-fPIC", "-O1", "-o", str(d / "lib.so"), str(d / "lib.cpp")],
                   check=True)  # fmt: skip
    return d / "lib.so"


def test_cxx_names_read_as_cxxfilt_reads_them(cxx_lib: Path) -> None:
    names = [n for n in _dynamic_names(cxx_lib) if n.startswith("_Z")]
    assert len(names) > 20  # the library's own and the libstdc++ ones it imports
    got = [demangle(n) for n in names]
    assert all(got)
    assert [_aliased(g or "") for g in got] == [_aliased(c) for c in _cxxfilt(names)]


def test_short_forms_name_the_declaration(cxx_lib: Path) -> None:
    shorts = {short(n) for n in _dynamic_names(cxx_lib)}
    for want in ("geo::Point::norm", "geo::Point::operator+", "text::last_dot", "text::join",
                 "int text::twice<int>", "std::string::find_last_of",
                 "std::ostream::put", "std::ios_base::Init::~Init", "vtable for std::ostringstream",
                 "std::ostream& std::__ostream_insert<char, std::char_traits<char> >"):  # fmt: skip
        assert want in shorts, (want, sorted(shorts))


LEGACY_RUST = [  # rustc's legacy mangling (stable rustc now emits v0; older wheels hold these)
    "_ZN4core3fmt5write17h0123456789abcdefE",
    "_ZN3std2io5stdio6_print17h1a2b3c4d5e6f7081E",
    "_ZN60_$LT$alloc..string..String$u20$as$u20$core..fmt..Display$GT$3fmt17h0011223344556677E",
    "_ZN4core3ptr85drop_in_place$LT$std..rt..lang_start$LT$$LP$$RP$$GT$..$u7b$$u7b$closure$u7d$"
    "$u7d$$GT$17h3b1e5a7f0c2d4e6fE",
]


def test_rust_legacy_names_read_as_cxxfilt_reads_them() -> None:
    if shutil.which("c++filt") is None:
        require("c++filt is needed to read Rust names")
    want = [re.sub(r"::h[0-9a-f]{16}$", "", c) for c in _cxxfilt(LEGACY_RUST)]
    assert [demangle(n) for n in LEGACY_RUST] == want
    assert short(LEGACY_RUST[2]) == "<alloc::string::String as core::fmt::Display>::fmt"


def test_rustc_names_legacy_read_and_v0_raw(tmp_path: Path) -> None:
    """A crate built by this rustc: its own names are legacy-mangled and read as c++filt reads
    them; the standard library's are v0 and stay raw (see the module docstring for why)."""
    if shutil.which("rustc") is None or shutil.which("c++filt") is None:
        require("rustc and c++filt are needed to build and read Rust names")
    src = tmp_path / "lib.rs"
    src.write_text(RUST)
    out = tmp_path / "libshapes.so"
    subprocess.run(["rustc", "--crate-type=cdylib", "-C", "opt-level=1", "--crate-name", "shapes",
                    "-o", str(out), str(src)], check=True, capture_output=True)  # fmt: skip
    syms = subprocess.run(["nm", "--format=posix", str(out)], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    names = sorted({line.split()[0] for line in syms.splitlines()})
    legacy = [n for n in names if re.match(r"^_ZN.*17h[0-9a-f]{16}E$", n)]
    v0 = [n for n in names if n.startswith("_R")]
    assert legacy
    assert v0
    want = [re.sub(r"::h[0-9a-f]{16}$", "", c) for c in _cxxfilt(legacy)]
    assert [demangle(n) for n in legacy] == want
    assert "shapes::shapes::Circle::area" in {short(n) for n in legacy}
    assert [short(n) for n in v0] == v0


@pytest.mark.parametrize("name", ["memcpy", "_Zfoo", "_R", "_Z" + "N1a" * 500 + "E",
                                  "_Z1f\u00e9", "_Z1fv\0", "GLIBC_2.14", ""])
def test_what_is_not_a_readable_mangled_name_is_shown_as_it_is(name: str) -> None:
    assert short(name) == name
    assert demangle(name) is None


def test_hostile_lengths_are_not_demangled() -> None:
    long = "_ZN" + "".join(f"{len(w)}{w}" for w in ["abcdefgh"] * 200) + "Ev"
    assert len(long) > MAX_MANGLED
    assert demangle(long) is None
    deep = "_Z1fI" + "St6vectorI" * 300 + "i" + "EE" * 300 + "Ev"
    assert short(deep) in (deep, short(deep))  # refused or read, never a crash


def test_humanize_replaces_names_in_free_text() -> None:
    text = ("needs GLIBCXX_3.4.21 from libstdc++.so.6 (_ZNKSt7__cxx1112basic_stringIcSt11char_"
            "traitsIcESaIcEE12find_last_ofEPKcmm@GLIBCXX_3.4.21, memcpy@GLIBC_2.14)")
    assert humanize(text) == ("needs GLIBCXX_3.4.21 from libstdc++.so.6 "
                              "(std::string::find_last_of@GLIBCXX_3.4.21, memcpy@GLIBC_2.14)")
