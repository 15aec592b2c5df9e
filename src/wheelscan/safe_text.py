"""The output boundary: text that a terminal or a spreadsheet would act on, made inert.

Member names, sonames, URLs, error messages and index-given names are written by whoever built
the wheel or runs the server. Everything wheelscan writes as text (``check`` text,
``report --format text``, the summary, warnings and errors on stderr) goes through
:func:`term` or :class:`SafeText`; every CSV cell through :func:`csv_cell`. JSON needs
neither: its own escaping already writes control characters as ``\\u`` escapes.

- :func:`term`: C0 controls (newline and tab included), DEL, C1 controls (so ESC and CSI
  cannot start a sequence) and the Unicode bidirectional controls (which can make a terminal
  show text in another order than it is) become visible escapes: ``\\xNN`` up to U+00FF,
  ``\\uNNNN`` above. Everything else, backslashes included, is left as it is.
- :class:`SafeText`: a text stream for whole reports: the same, except that ``\\n`` (the
  report's own line structure) is kept.
- :func:`csv_cell`: a text cell beginning with ``=``, ``+``, ``-``, ``@``, tab or carriage
  return gets a leading ``'`` (OWASP, "CSV Injection"), so a spreadsheet shows it instead of
  evaluating it as a formula.
"""

from __future__ import annotations

import re
import sys
from typing import IO, TextIO

__all__ = ["SafeText", "csv_cell", "eprint", "term"]

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_KEEP_NL = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_BIDI}]")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _escape(m: re.Match[str]) -> str:
    o = ord(m.group())
    return f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}"


def term(text: object) -> str:
    """``text`` as a string with every control and bidi character written as an escape."""
    s = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, s)


def csv_cell(value: object) -> object:
    """``value`` with a ``'`` in front if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA):
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
        self.out.write(_UNSAFE_KEEP_NL.sub(_escape, text))
        return len(text)

    def flush(self) -> None:
        self.out.flush()
