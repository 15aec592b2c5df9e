"""Where wheels come from: directory trees, bandersnatch mirrors, list files — streamed.

Every source is a generator of :class:`WheelRef`, so the scheduler starts scanning while a
mirror is still being listed and memory stays flat whatever its size. Non-wheel files are
counted in :class:`Discovery`, never held.

Bandersnatch lays a mirror out as ``web/simple/<project>/index.v1_json`` (PEP 691 JSON, with
PEP 700 ``size`` and ``upload-time``) and ``web/packages/<h[:2]>/<h[2:4]>/<h[4:]>/<file>``
where ``h`` is the hex blake2b-256 digest of the file; that digest is kept as the content hash.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from packaging.utils import canonicalize_name

from ..safe_text import encodable
from .refs import Discovery, WheelRef, is_url

__all__ = [
    "Discovery",
    "Filters",
    "WheelRef",
    "iter_bandersnatch",
    "iter_list",
    "iter_sources",
    "iter_tree",
    "parse_since",
]

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Filters:
    projects: frozenset[str] = frozenset()  # canonical names; empty: all
    platforms: tuple[str, ...] = ()  # fnmatch globs on any platform tag; empty: all
    since: float | None = None  # POSIX time: upload time, else mtime, must be >= this

    def accepts(self, ref: WheelRef) -> bool:
        if self.projects and ref.project not in self.projects:
            return False
        if self.platforms:
            plats = _platform_tags(ref.filename)
            if not any(fnmatch.fnmatchcase(p, g) for p in plats for g in self.platforms):
                return False
        if self.since is not None:
            when = _iso_to_posix(ref.upload_time) if ref.upload_time else ref.mtime
            if when is None or when < self.since:
                return False
        return True


def parse_since(text: str) -> float:
    """``YYYY-MM-DD`` or an ISO 8601 date-time (UTC unless it says otherwise) as POSIX time."""
    t = _iso_to_posix(text)
    if t is None:
        msg = f"--since {text!r}: expected a date like 2024-01-31 or 2024-01-31T12:00:00Z"
        raise ValueError(msg)
    return t


def _iso_to_posix(text: str) -> float | None:
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _platform_tags(filename: str) -> list[str]:
    stem = filename[: -len(".whl")] if filename.endswith(".whl") else filename
    parts = stem.split("-")
    # lowercased as installers compare tags: `MANYLINUX2014_X86_64` is a manylinux wheel too
    return parts[-1].lower().split(".") if len(parts) >= 5 else []


def _project(filename: str, disc: Discovery | None = None) -> str | None:
    # the name only: canonicalize_name, not parse_wheel_filename, which also parses the
    # version and every tag and was the main process's largest cost per wheel
    head = filename.split("-", 1)[0]
    if disc is not None and (filename.count("-") not in (4, 5) or not head):
        disc.invalid_names += 1
    return _canonical(head) if head else None


@functools.lru_cache(maxsize=1024)
def _canonical(head: str) -> str:
    # the files of one project arrive together (a directory, an index): its name is parsed once
    return str(canonicalize_name(head))


def _is_wheel(name: str) -> bool:
    return name.endswith(".whl") and not name.startswith(".")


def _decodable(path: str, disc: Discovery) -> bool:
    """False (noted) for a path holding bytes that are not UTF-8 (surrogate escapes here)."""
    if encodable(path):
        return True
    disc.undecodable += 1
    shown = os.fsencode(path).decode("utf-8", "backslashreplace")
    disc.note(f"{shown}: skipped: the path is not UTF-8 (rename it to scan it)")
    return False


def _make_ref(path: str, st: os.stat_result | None, disc: Discovery) -> WheelRef:
    filename = os.path.basename(path)
    project = _project(filename, disc)
    return WheelRef(
        location=path,
        filename=filename,
        size=st.st_size if st else None,
        mtime=st.st_mtime if st else None,
        content_hash=_hash_from_mirror_path(path),
        project=project,
    )


def _hash_from_mirror_path(path: str) -> str | None:
    """``.../packages/ab/cd/<60 hex>/file.whl`` carries blake2b-256 of the file (bandersnatch)."""
    parts = path.replace(os.sep, "/").rsplit("/", 5)  # the last five components are enough
    if len(parts) < 5 or parts[-5] != "packages":
        return None
    a, b, rest = parts[-4], parts[-3], parts[-2]
    digest = a + b + rest
    if len(a) == 2 and len(b) == 2 and len(digest) == 64 and set(digest) <= _HEX:
        return f"blake2b_256:{digest}"
    return None


def iter_tree(root: str | os.PathLike[str], disc: Discovery) -> Iterator[WheelRef]:
    """Every ``*.whl`` under ``root``, recursively (files in directory order, subdirs sorted)."""
    stack = [os.path.abspath(os.fspath(root))]
    while stack:
        d = stack.pop()
        subdirs: list[str] = []
        try:
            it = os.scandir(d)
        except OSError as e:
            disc.note(f"{d}: {e.strerror or e}")
            continue
        # streamed, not sorted: a flat directory of a million wheels is never held in memory
        with it:
            yield from _scan_entries(it, subdirs, disc)
        subdirs.sort()
        stack.extend(reversed(subdirs))


def _scan_entries(
    entries: Iterator[os.DirEntry[str]], subdirs: list[str], disc: Discovery
) -> Iterator[WheelRef]:
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                subdirs.append(e.path)
                continue
            if not e.is_file():
                continue
            if not _is_wheel(e.name):
                disc.non_wheels += 1
                continue
            if not _decodable(e.path, disc):
                continue
            st = e.stat()
        except OSError as err:
            disc.note(f"{e.path}: {err.strerror or err}")
            continue
        disc.wheels += 1
        yield _make_ref(e.path, st, disc)


def _mirror_web(root: Path) -> Path | None:
    for web in (root / "web", root):
        if (web / "simple").is_dir() or (web / "packages").is_dir():
            return web
    return None


def is_bandersnatch(root: str | os.PathLike[str]) -> bool:
    return _mirror_web(Path(root)) is not None


def iter_bandersnatch(root: str | os.PathLike[str], disc: Discovery) -> Iterator[WheelRef]:
    """A bandersnatch mirror: from ``web/simple/*/index.v1_json`` if any, else ``web/packages``."""
    web = _mirror_web(Path(os.path.abspath(os.fspath(root))))
    if web is None:
        msg = f"{root}: not a bandersnatch mirror (no web/simple or web/packages)"
        raise ValueError(msg)
    simple = web / "simple"
    indexes = _iter_indexes(simple)
    first = next(indexes, None)
    if first is None:
        yield from iter_tree(web / "packages", disc)
        return
    yield from _refs_from_index(first, disc)
    for index in indexes:
        yield from _refs_from_index(index, disc)


def _iter_indexes(simple: Path) -> Iterator[Path]:
    """Each project's index page, in directory order: streamed, since PyPI's 600,000 project
    names held (and sorted) at once would cost the main process ~45 MiB."""
    try:
        with os.scandir(simple) as it:
            for e in it:
                index = Path(e.path) / "index.v1_json"
                if e.is_dir() and index.is_file():
                    yield index
    except OSError:
        return


def _refs_from_index(index: Path, disc: Discovery) -> Iterator[WheelRef]:
    try:
        with open(index, "rb") as f:
            data = json.load(f)
        files = data["files"]
        if not isinstance(files, list):
            raise TypeError("'files' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as e:
        disc.note(f"{index}: unreadable PEP 691 index ({e})")
        return
    base = index.parent
    for entry in files:
        ref = _ref_from_entry(entry, base, index, disc)
        if ref is not None:
            yield ref


def _ref_from_entry(entry: Any, base: Path, index: Path, disc: Discovery) -> WheelRef | None:
    if not isinstance(entry, dict):
        disc.note(f"{index}: a file entry is not an object")
        return None
    filename = entry.get("filename")
    url = entry.get("url")
    if not isinstance(filename, str) or not isinstance(url, str):
        disc.note(f"{index}: a file entry lacks filename/url")
        return None
    if not _is_wheel(filename) or "/" in filename:
        disc.non_wheels += 1
        return None
    rel = url.split("#", 1)[0]
    if "://" in rel or rel.startswith("/"):
        disc.note(f"{index}: {filename}: url {url!r} is not a relative path into the mirror")
        disc.missing += 1
        return None
    path = os.path.normpath(os.path.join(base, rel))
    if not _decodable(path, disc):
        return None
    try:
        st = os.stat(path)
    except OSError:
        disc.missing += 1
        return None
    disc.wheels += 1
    ref = _make_ref(path, st, disc)
    hashes = entry.get("hashes")
    if ref.content_hash is None and isinstance(hashes, dict):
        sha = hashes.get("sha256")
        if isinstance(sha, str):
            ref.content_hash = f"sha256:{sha}"
    upload = entry.get("upload-time")
    if isinstance(upload, str):
        ref.upload_time = upload
    yanked = entry.get("yanked")
    ref.yanked = bool(yanked) if yanked is not None else False
    return ref


def iter_list(stream: TextIO, base: str, disc: Discovery) -> Iterator[WheelRef]:
    """Paths, one per line (blank lines and ``#`` comments skipped); relative to ``base``."""
    for line in stream:
        p = line.strip()
        if not p or p.startswith("#"):
            continue
        if not _is_wheel(os.path.basename(p)):
            disc.non_wheels += 1
            continue
        path = os.path.abspath(os.path.join(base, p))
        if not _decodable(path, disc):
            continue
        try:
            st = os.stat(path)
        except OSError:
            disc.missing += 1
            disc.note(f"{p}: not found")
            continue
        disc.wheels += 1
        yield _make_ref(path, st, disc)


def iter_source(spec: str, disc: Discovery, stdin: TextIO | None = None) -> Iterator[WheelRef]:
    """One SOURCE argument: ``-`` (list on stdin), a wheel, a mirror, a tree or a list file."""
    if spec == "-":
        yield from iter_list(stdin or sys.stdin, os.getcwd(), disc)
        return
    path = Path(spec)
    if path.is_dir():
        if is_bandersnatch(path):
            yield from iter_bandersnatch(path, disc)
        else:
            yield from iter_tree(path, disc)
    elif path.is_file() and _is_wheel(path.name):
        if _decodable(os.path.abspath(spec), disc):
            disc.wheels += 1
            yield _make_ref(os.path.abspath(spec), path.stat(), disc)
    elif path.is_file():
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from iter_list(f, os.getcwd(), disc)
    else:
        msg = f"{spec}: no such file or directory"
        raise FileNotFoundError(msg)


def iter_sources(
    specs: Sequence[str],
    disc: Discovery,
    filters: Filters | None = None,
    stdin: TextIO | None = None,
    allow_hosts: tuple[str, ...] = (),
) -> Iterator[WheelRef]:
    """All sources in order (each SOURCE once), filtered; ``disc.done`` set at the end.
    ``allow_hosts``: hosts besides an index's own origin whose links an index may list."""
    filters = filters or Filters()
    seen_dirs: set[str] = set()
    for spec in specs:
        remote = is_url(spec)
        key = spec if remote or spec == "-" else os.path.abspath(spec)
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        if remote:  # a simple index, project page or wheel URL: wheelscan.mirror.remote
            from .remote import iter_remote

            refs = iter_remote(spec, disc, filters.projects, allow_hosts=allow_hosts)
        else:
            refs = iter_source(spec, disc, stdin)
        for ref in refs:
            if filters.accepts(ref):
                yield ref
            else:
                disc.filtered += 1
    disc.done = True
