"""Symbol names as people read them: C++ (Itanium ABI) and Rust (legacy and v0) demangled.

Human-facing output only (the text report, ``check`` text, the HTML report); JSON, CSV and the
store keep the raw names, and the HTML shows the raw name on hover. C++ goes through the C++
runtime's own demangler (``__cxa_demangle``, via ``cxxfilt``): it is the implementation that
defines what a mangled name means and reads as binutils' ``c++filt`` reads it. Rust legacy
names are Itanium-shaped: the same demangler, then rustc's escapes (``$LT$``, ``..``) undone
and the ``::h<hash>`` suffix dropped, as rustc-demangle's short form does. Rust v0 names
(``_R...``) are shown raw: the one Python v0 demangler on PyPI (rust-demangler 1.0) misreads
real rustc output (``extern "C-"fn``, fails on ``dyn for<'a>``) and prints to stdout; v0 names
are also never what a system library is asked for, which is what the reports show.

Names come from the wheel, so from an adversary: a name longer than :data:`MAX_MANGLED`, one
with a NUL or outside ASCII, or one a demangler refuses, is shown as it is. Results are cached.
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["MAX_MANGLED", "demangle", "humanize", "short"]

#: longer names are shown raw: real ones are far shorter, and demangling cost grows with length
MAX_MANGLED = 1024
_RUST_HASH = re.compile(r"::h[0-9a-f]{16}$")
_TOKEN = re.compile(r"\b_Z[A-Za-z0-9_$.]+")  # what demangle() reads: Itanium-shaped
#: the standard library's typedefs, spelled out by every demangler, shortened for reading
_STD_ALIASES = tuple(
    (re.compile(re.escape(long).replace(r"\ >", r" ?>")), short)
    for long, short in (
        ("std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >",
         "std::string"),
        ("std::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string"),
        ("std::__cxx11::basic_string<wchar_t, std::char_traits<wchar_t>, "
         "std::allocator<wchar_t> >", "std::wstring"),
        ("std::__cxx11::basic_ostringstream<char, std::char_traits<char>, "
         "std::allocator<char> >", "std::ostringstream"),
        ("std::__cxx11::basic_istringstream<char, std::char_traits<char>, "
         "std::allocator<char> >", "std::istringstream"),
        ("std::__cxx11::basic_stringstream<char, std::char_traits<char>, "
         "std::allocator<char> >", "std::stringstream"),
        ("std::basic_ostream<char, std::char_traits<char> >", "std::ostream"),
        ("std::basic_istream<char, std::char_traits<char> >", "std::istream"),
        ("std::basic_iostream<char, std::char_traits<char> >", "std::iostream"),
        ("std::basic_streambuf<char, std::char_traits<char> >", "std::streambuf"),
        ("std::basic_ios<char, std::char_traits<char> >", "std::ios"),
        ("std::basic_filebuf<char, std::char_traits<char> >", "std::filebuf"),
        ("std::basic_ofstream<char, std::char_traits<char> >", "std::ofstream"),
        ("std::basic_ifstream<char, std::char_traits<char> >", "std::ifstream"),
    )
)  # fmt: skip


@functools.cache
def _cxx() -> Any:
    try:
        import cxxfilt

        cxxfilt.demangle("_Z1fv")  # loads the C++ runtime; a host without one has no demangler
    except Exception:  # no usable demangler: names are shown raw
        return None
    return cxxfilt


_RUST_ESCAPES = {"SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")",
                 "C": ","}  # fmt: skip
_RUST_ESCAPE = re.compile(r"\$([A-Z]+|u[0-9a-f]{1,6})\$")


def _rust_legacy(text: str) -> str:
    """rustc's legacy escapes undone in each path component: ``$LT$`` -> ``<``, ``$u20$`` ->
    a space, ``..`` -> ``::``, a leading ``_$`` -> ``$``."""

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code.startswith("u"):
            ch = chr(int(code[1:], 16))
            return ch if ch.isprintable() else m.group(0)
        return _RUST_ESCAPES.get(code, m.group(0))

    parts = []
    for comp in text.split("::"):
        if comp.startswith("_$"):
            comp = comp[1:]
        parts.append(_RUST_ESCAPE.sub(one, comp.replace("..", "::")))
    return "::".join(parts)


@functools.lru_cache(maxsize=65536)
def demangle(name: str) -> str | None:
    """The demangled name, parameters included; None when ``name`` is not a mangled name this
    module reads (a C name, a Rust v0 name, a hostile or refused one)."""
    if len(name) > MAX_MANGLED or not name.isascii() or "\0" in name:
        return None
    try:
        if not name.startswith("_Z"):
            return None
        cxx = _cxx()
        out = cxx.demangle(name) if cxx is not None else None
        if out is not None and name.startswith("_ZN") and _RUST_HASH.search(out):
            out = _rust_legacy(_RUST_HASH.sub("", out))  # a Rust legacy name
    except Exception:  # refused or broken: shown as it is
        return None
    if not out or out == name:
        return None
    return str(out)


def _aliased(full: str) -> str:
    for pattern, alias in _STD_ALIASES:
        full = pattern.sub(alias, full)
    return full


def _drop_parameters(text: str) -> str:
    """``ns::f(int, char const*) const`` -> ``ns::f``: the outermost trailing parameter list."""
    stripped = text.rstrip()
    for qual in (" const", " volatile", " &&", " &"):
        if stripped.endswith(qual):
            stripped = stripped[: -len(qual)]
    if not stripped.endswith(")"):
        return text
    depth = 0
    for i in range(len(stripped) - 1, -1, -1):
        c = stripped[i]
        if c == ")":
            depth += 1
        elif c == "(":
            depth -= 1
            if depth == 0:
                head = stripped[:i]
                return head if head and not head.endswith("operator") else text
    return text


@functools.lru_cache(maxsize=65536)
def short(name: str, width: int = 120) -> str:
    """A name for an example list: demangled, standard typedefs shortened, without its
    parameter list, at most ``width`` characters; ``name`` itself when it is not mangled."""
    full = demangle(name)
    if full is None:
        return name
    out = _drop_parameters(_aliased(full))
    return out if len(out) <= width else out[: width - 1] + "…"


def humanize(text: str) -> str:
    """``text`` with every mangled name in it replaced by its :func:`short` form."""
    return _TOKEN.sub(lambda m: short(m.group(0)), text) if "_Z" in text else text
