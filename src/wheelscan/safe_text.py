"""The output boundary: text that a terminal or a spreadsheet would act on, made inert.

Member names, sonames, URLs, error messages and index-given names are written by whoever built
the wheel or runs the server. Everything wheelscan writes as text (``check`` text,
``report --format text``, the summary, warnings and errors on stderr) goes through
:func:`term` or :class:`SafeText`; every CSV cell through :func:`csv_cell`. JSON needs
neither: its own escaping already writes control characters as ``\\u`` escapes.

- :func:`term`: C0 controls (newline and tab included), DEL, C1 controls (so ESC and CSI
  cannot start a sequence), Unicode format characters (bidi controls, which can make a
  terminal show text in another order than it is; zero-width characters) and the line and
  paragraph separators, and lone surrogates, become visible escapes: ``\\xNN`` up to U+00FF,
  ``\\uNNNN`` above. Everything else, backslashes included, is left as it is.
- :class:`SafeText`: a text stream for whole reports: the same, except that the newlines that
  begin or end each write (the report's own line structure) are kept.
- :func:`csv_cell`: a text cell beginning with ``=``, ``+``, ``-``, ``@``, tab or carriage
  return (OWASP, "CSV Injection"), NUL or line feed, the fullwidth forms of the
  first four (U+FF1D, U+FF0B, U+FF0D, U+FF20), or whitespace
  before any of these gets a leading ``'``, so a spreadsheet shows it instead of evaluating
  it as a formula.
"""

from __future__ import annotations

import re
import sys
from typing import IO, TextIO

__all__ = ["SafeText", "csv_cell", "encodable", "eprint", "term"]

#: Unicode's format characters (category Cf: bidi controls, zero-width characters, the BOM,
#: tags) and the line and paragraph separators (Zl, Zp), which some terminals and viewers
#: treat as line breaks; tests/unit/test_safe_text.py checks this list against unicodedata.
_FORMAT = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
#: lone surrogates (Cs): no UTF-8 stream can carry them (JSON gives them as ``\\ud800``,
#: a file name with undecodable bytes as surrogate escapes); written out they would crash
_SURROGATES = "\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMAT}{_SURROGATES}]")
_UNSAFE_KEEP_NL = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_FORMAT}{_SURROGATES}]")
_SURROGATE = re.compile(f"[{_SURROGATES}]")
#: a newline with something other than newlines on both sides: inside a line, so from data
_INNER_NL = re.compile(r"(?<=[^\n])\n(?=[^\n])")
#: OWASP's list (= + - @ tab CR), NUL and LF (ASVS), and the fullwidth forms of the four
#: that some spreadsheets fold to ASCII
_FORMULA_START = frozenset("=+-@\t\r\n\x00\uff1d\uff0b\uff0d\uff20")


def _escape(m: re.Match[str]) -> str:
    o = ord(m.group())
    return f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}"


def term(text: object) -> str:
    """``text`` as a string with every control and bidi character written as an escape."""
    s = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, s)


def encodable(text: str) -> bool:
    """False when ``text`` holds a lone surrogate, which no UTF-8 file or database can hold."""
    return _SURROGATE.search(text) is None


def csv_cell(value: object) -> object:
    """``value`` with a ``'`` in front if it is text a spreadsheet would run as a formula:
    one that begins with a formula character, or with NUL, a line break or tab, or with
    whitespace before a formula character (some importers trim it)."""
    if not isinstance(value, str):
        return value
    if not value.isascii():  # only non-ASCII text can hold a surrogate
        value = _SURROGATE.sub(_escape, value)
    if value and (value[0] in _FORMULA_START or value.lstrip()[:1] in _FORMULA_START):
        return "'" + value
    return value


def eprint(message: object, file: IO[str] | None = None) -> None:
    """One line on stderr (or ``file``), neutralised."""
    out = file if file is not None else sys.stderr
    out.write(term(message) + "\n")


class SafeText:
    """A write-only text stream that neutralises what it is given (newlines kept)."""

    def __init__(self, out: TextIO | IO[str]) -> None:
        self.out = out

    def write(self, text: str) -> int:
        """Each call is one or more whole lines of the report: the newlines that open or end
        it are the report's, one between two other characters came with a name and is
        escaped like any control character (a name cannot add a line)."""
        self.out.write(_UNSAFE_KEEP_NL.sub(_escape, _INNER_NL.sub("\\\\x0a", text)))
        return len(text)

    def flush(self) -> None:
        self.out.flush()
