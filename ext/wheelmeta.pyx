# cython: language_level=3, boundscheck=False, wraparound=False
"""A wheel's filename and its WHEEL file, read in C for the common case.

:mod:`wheelscan.read.wheelinfo` asks these first and falls back to its Python code whenever they
return None, so each either gives exactly what that code would or None. They exist because a
small wheel's scan is a few dozen microseconds: matching the filename with a regular
expression and splitting the WHEEL file into Python strings took a sixth of it.

- :func:`split_filename` accepts what ``wheelinfo._SIMPLE_WHEEL`` accepts (plain ASCII names,
  versions already in packaging's normal form, build numbers of at most 18 digits, tags every
  packaging release accepts), where packaging's result can be computed without packaging.
- :func:`wheel_fields` reads any ASCII WHEEL file: for ASCII, ``str.splitlines`` ends lines at
  LF, CR, CRLF, VT, FF, FS, GS and RS, and ``str.strip`` also removes US, space and tab.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.string cimport memchr

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL


cdef inline bint is_digit(char c) noexcept nogil:
    return b"0" <= c <= b"9"


cdef inline bint is_alpha(char c) noexcept nogil:
    return b"a" <= c <= b"z" or b"A" <= c <= b"Z"


cdef inline bint is_word(char c) noexcept nogil:
    return is_alpha(c) or is_digit(c) or c == b"_"


cdef Py_ssize_t number(const char* s, Py_ssize_t i, Py_ssize_t end) noexcept nogil:
    """The end of ``0|[1-9][0-9]{0,17}`` at ``i``, if no digit follows it; else -1."""
    cdef Py_ssize_t j = i
    while j < end and is_digit(s[j]):
        j += 1
    if j == i or j - i > 18 or (s[i] == b"0" and j - i > 1):
        return -1
    return j


cdef inline bint starts(const char* s, Py_ssize_t i, Py_ssize_t end, const char* word,
                        Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    if end - i < n:
        return False
    for k in range(n):
        if s[i + k] != word[k]:
            return False
    return True


cdef bint normal_version(const char* s, Py_ssize_t i, Py_ssize_t end) noexcept nogil:
    """``[N!]N(.N)*[(a|b|rc)N][.postN][.devN]``: a version packaging prints as written."""
    cdef const char* bang = <const char*>memchr(s + i, b"!", end - i)
    if bang != NULL:
        if s[i] == b"0" or number(s, i, bang - s) != bang - s:
            return False
        i = bang - s + 1
    i = number(s, i, end)
    while i > 0 and i + 1 < end and s[i] == b"." and is_digit(s[i + 1]):
        i = number(s, i + 1, end)
    if i > 0 and i < end and (s[i] == b"a" or s[i] == b"b"):
        i = number(s, i + 1, end)
    elif i > 0 and starts(s, i, end, b"rc", 2):
        i = number(s, i + 2, end)
    if i > 0 and starts(s, i, end, b".post", 5):
        i = number(s, i + 5, end)
    if i > 0 and starts(s, i, end, b".dev", 4):
        i = number(s, i + 4, end)
    return i == end


cdef bint tag_set(const char* s, Py_ssize_t i, Py_ssize_t end, bint ident) noexcept nogil:
    """Non-empty ``.``-separated words of ``[A-Za-z0-9_]``, each starting with a letter or
    ``_`` if ``ident`` (an interpreter tag)."""
    cdef bint start = True
    if i >= end:
        return False
    while i < end:
        if s[i] == b".":
            if start:
                return False
            start = True
        elif not is_word(s[i]) or (start and ident and is_digit(s[i])):
            return False
        else:
            start = False
        i += 1
    return not start


def split_filename(str filename not None):
    """(normalised name, version, build or None, python tags, abi tags, platform tags) as
    packaging's ``parse_wheel_filename`` gives them, or None where this cannot tell."""
    cdef Py_ssize_t n, i, k, m, ndash = 0, start, digits
    cdef Py_ssize_t dash[5]
    cdef const char* s
    cdef char* out
    cdef bytes canon
    cdef char c
    if not filename.isascii():
        return None
    s = PyUnicode_AsUTF8AndSize(filename, &n)
    if n < 4 or not starts(s, n - 4, n, b".whl", 4):
        return None
    n -= 4
    for i in range(n):
        if s[i] == b"-":
            if ndash == 5:
                return None
            dash[ndash] = i
            ndash += 1
    if ndash < 4:
        return None
    # name: [A-Za-z0-9._]+ without "__"; packaging lower-cases it and turns each run of
    # "_" and "." into one "-"
    if dash[0] == 0:
        return None
    canon = PyBytes_FromStringAndSize(NULL, dash[0])
    out = PyBytes_AS_STRING(canon)
    m = 0
    for i in range(dash[0]):
        c = s[i]
        if is_alpha(c):
            out[m] = c | 0x20
            m += 1
        elif is_digit(c):
            out[m] = c
            m += 1
        elif c == b"." or c == b"_":
            if c == b"_" and i > 0 and s[i - 1] == b"_":
                return None
            if i == 0 or not (s[i - 1] == b"." or s[i - 1] == b"_"):
                out[m] = b"-"
                m += 1
        else:
            return None
    if not normal_version(s, dash[0] + 1, dash[1]):
        return None
    build = None
    k = 1
    if ndash == 5:
        # [0-9]{1,18} then anything but a newline; more digits go to packaging (its int())
        start = dash[1] + 1
        digits = start
        while digits < dash[2] and is_digit(s[digits]):
            digits += 1
        if digits == start or digits - start > 18:
            return None
        if memchr(s + start, b"\n", dash[2] - start) != NULL:
            return None
        while start < digits - 1 and s[start] == b"0":
            start += 1  # int() drops leading zeros
        build = PyUnicode_DecodeASCII(s + start, dash[2] - start, NULL)
        k = 2
    if not (tag_set(s, dash[k] + 1, dash[k + 1], True)
            and tag_set(s, dash[k + 1] + 1, dash[k + 2], False)
            and tag_set(s, dash[k + 2] + 1, n, False)):
        return None
    return (
        PyUnicode_DecodeASCII(out, m, NULL),
        PyUnicode_DecodeASCII(s + dash[0] + 1, dash[1] - dash[0] - 1, NULL),
        build,
        PyUnicode_DecodeASCII(s + dash[k] + 1, dash[k + 1] - dash[k] - 1, NULL).split("."),
        PyUnicode_DecodeASCII(s + dash[k + 1] + 1, dash[k + 2] - dash[k + 1] - 1,
                              NULL).split("."),
        PyUnicode_DecodeASCII(s + dash[k + 2] + 1, n - dash[k + 2] - 1, NULL).split("."),
    )


cdef inline bint ends_line(unsigned char c) noexcept nogil:
    return c == 10 or c == 13 or c == 11 or c == 12 or c == 28 or c == 29 or c == 30


cdef inline bint is_space(unsigned char c) noexcept nogil:
    return c == 32 or c == 9 or c == 31 or ends_line(c)


cdef bint key_is(const unsigned char* s, Py_ssize_t i, Py_ssize_t end, const char* word,
                 Py_ssize_t n) noexcept nogil:
    """Whether ``s[i:end]``, lower-cased, is ``word``."""
    cdef Py_ssize_t k
    cdef unsigned char c
    if end - i != n:
        return False
    for k in range(n):
        c = s[i + k]
        if b"A" <= c <= b"Z":
            c |= 0x20
        if c != <unsigned char>word[k]:
            return False
    return True


def wheel_fields(bytes data not None):
    """(the ``Tag:`` values, ``Root-Is-Purelib`` as a bool or None) of an ASCII WHEEL file,
    as ``wheelinfo.fill_wheel_file_facts`` reads them; None if a byte is not ASCII."""
    cdef Py_ssize_t n = len(data), i = 0, line, eol, colon, ks, ke, vs, ve
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef list tags = []
    purelib = None
    for i in range(n):
        if s[i] >= 0x80:
            return None
    i = 0
    while i < n:
        line = i
        while i < n and not ends_line(s[i]):
            i += 1
        eol = i
        i += 2 if i + 1 < n and s[i] == 13 and s[i + 1] == 10 else 1
        colon = line
        while colon < eol and s[colon] != b":":
            colon += 1
        if colon == eol:
            continue
        ks, ke = line, colon
        while ks < ke and is_space(s[ks]):
            ks += 1
        while ke > ks and is_space(s[ke - 1]):
            ke -= 1
        vs, ve = colon + 1, eol
        while vs < ve and is_space(s[vs]):
            vs += 1
        while ve > vs and is_space(s[ve - 1]):
            ve -= 1
        if key_is(s, ks, ke, b"tag", 3):
            tags.append(PyUnicode_DecodeASCII(<const char*>s + vs, ve - vs, NULL))
        elif key_is(s, ks, ke, b"root-is-purelib", 15):
            purelib = key_is(s, vs, ve, b"true", 4)
    return tags, purelib
