"""Cheap name rules: which ZIP members could be ELF binaries and deserve a peek.

Both engines use the same rule, so a member either engine skips is skipped by both.
A member that passes is peeked (its first bytes inflated); only ``\\x7fELF`` ones are parsed.
"""

from __future__ import annotations

__all__ = ["ELF_MAGIC", "may_be_binary"]

ELF_MAGIC = b"\x7fELF"

# Suffixes of members that are never binaries we judge: sources, text, metadata, images.
_NOT_BINARY_SUFFIXES = frozenset(
    {
        ".py", ".pyi", ".pyc", ".pyo", ".pyx", ".pxd", ".pxi", ".pth", ".typed",
        ".txt", ".md", ".rst", ".json", ".toml", ".cfg", ".ini", ".yaml", ".yml",
        ".html", ".htm", ".css", ".js", ".map", ".xml", ".csv", ".tsv",
        ".h", ".hh", ".hpp", ".hxx", ".c", ".cc", ".cpp", ".cxx", ".f", ".f90", ".rs", ".go",
        ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".pdf",
        ".pem", ".crt", ".cmake", ".pc", ".in", ".ipynb", ".mo", ".po",
    }
)  # fmt: skip


def may_be_binary(name: str, size: int) -> bool:
    """True if member ``name`` of uncompressed ``size`` could be an ELF file worth peeking at."""
    if name.endswith("/") or size < 4:
        return False
    top, _, rest = name.partition("/")
    if top.endswith(".dist-info") and "/" not in rest:
        return False  # METADATA, WHEEL, RECORD, entry_points.txt, ...
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    if dot <= 0:
        return True  # no suffix: executables, "libfoo" blobs
    return base[dot:].lower() not in _NOT_BINARY_SUFFIXES
