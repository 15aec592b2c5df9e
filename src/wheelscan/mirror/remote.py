"""Remote sources: a PEP 691/503 simple index, a project page or a wheel URL, over HTTP.

:func:`iter_remote` lists wheels as :class:`~wheelscan.mirror.sources.WheelRef` whose
``location`` is the wheel's absolute URL with a ``#<algo>=<hex>`` fragment carrying the
index's hash (so a worker that is handed only the location can still verify a whole
download). Index pages are
asked for as PEP 691 JSON and read as PEP 503 HTML when that is what the server answers
(content negotiation, PEP 691 "Clients"). Project pages are fetched by a bounded thread pool,
ahead of the scan, in order.

:func:`scan_remote` is what a worker runs for such a location: it reads the wheel through
:class:`~wheelscan.mirror.httpfile.HTTPFile` (range requests in planned windows, read as they
arrive) and records the response-body bytes in ``facts.transferred``.

Trust. An index's hash is a claim, not proof: it is checked whenever the whole file went
through us (a mismatch is the wheel's error, naming the URL and both hashes) and never used to
look facts up or to skip reading, since a wheel read with range requests was never hashed (an
index claiming another wheel's hash must not hand us that wheel's verdict). Links, redirects
and wheel URLs are kept to ``http(s)`` on the index's origin or the ``--allow-host`` hosts
(:class:`~wheelscan.mirror.httpfile.URLPolicy`); a link that breaks the rule is not followed and is
reported as a discovery problem naming the URL and the rule. Pages are bounded:
``MAX_PAGE_BYTES`` (decoded), ``MAX_LINKS`` entries, ``MAX_JSON_DEPTH`` nesting.

What the native reader (ext/zipread.pyx) reads through a file object: the last 42 bytes
(end record, ZIP64 locator; the 64 KiB search window only when the archive has a comment),
the central directory, each candidate member's local header and first input step (4 KiB,
doubling), each deflated ELF's compressed bytes up to its needed prefix, and for a stored ELF
only the ranges its parser asks for. How those reads become requests is HTTPFile's plan
(docs/scanning.md, "Round trips"); tests/integration/test_remote_bytes.py measures both against an
independent minimum.
"""

from __future__ import annotations

import json
import re
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import unquote, urljoin, urlsplit

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ..facts import WheelFacts
from ..limits import DEFAULT_LIMITS, Limits
from ..safe_text import encodable
from .httpfile import Deadline, HTTPFile, RemoteError, URLPolicy, get, hash_from_url
from .refs import Discovery, WheelRef

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator


__all__ = [
    "ACCEPT",
    "DEFAULT_WHEEL_TIMEOUT",
    "MAX_JSON_DEPTH",
    "MAX_LINKS",
    "MAX_PAGE_BYTES",
    "IndexPage",
    "iter_remote",
    "parse_page",
    "scan_remote",
]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
#: PEP 691's recommended Accept header: JSON preferred, HTML (new and legacy) otherwise
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
_HASH_PREFERENCE = ("sha256", "sha512", "sha384", "blake2b_256")
#: bounds on one index page: bytes (after any content decoding), links / file entries, JSON
#: nesting (a PEP 691 page nests 4 deep; a hostile one must not exhaust the parser's stack)
MAX_PAGE_BYTES = 64 << 20
MAX_LINKS = 200_000
MAX_JSON_DEPTH = 32
#: seconds for every request of one wheel together (``--wheel-timeout``), and of one page
DEFAULT_WHEEL_TIMEOUT = 120.0


# -- index pages ----------------------------------------------------------------------------------


class IndexPage:
    """A parsed simple-API page: project links (root page) or file entries (project page)."""

    def __init__(self, url: str, kind: str) -> None:
        self.url = url
        self.kind = kind  # "json" or "html"
        self.projects: list[tuple[str, str]] = []  # (name, absolute URL of its page)
        self.files: list[dict[str, Any]] = []  # PEP 691-shaped entries, absolute "url"
        self.is_project = False


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self._open = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            if len(self.links) <= MAX_LINKS:  # one over: enough to refuse the page
                self.links.append((self._open, "".join(self._text).strip()))
            self._open = None


_DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".egg", ".exe", ".tar.xz")


def _join(base: str, href: str) -> str | None:
    """``href`` made absolute against ``base``; None when it is not a URL at all (an
    unbalanced ``[`` of an IPv6 host makes urllib raise)."""
    try:
        joined = urljoin(base, href)
        urlsplit(joined)
    except ValueError:
        return None
    return joined


def parse_page(url: str, content_type: str, body: bytes) -> IndexPage:
    """A root or project page, JSON (PEP 691) or HTML (PEP 503), with absolute URLs."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == JSON_TYPE or ctype == "application/json":
        return _parse_json(url, body)
    return _parse_html(url, body)


def _parse_json(url: str, body: bytes) -> IndexPage:
    page = IndexPage(url, "json")
    depth = _json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise RemoteError(f"{url}: refused: JSON nested {depth} deep (limit {MAX_JSON_DEPTH})")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise RemoteError(f"{url}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise RemoteError(f"{url}: PEP 691 page is not a JSON object")
    for key in ("files", "projects"):
        if isinstance(doc.get(key), list) and len(doc[key]) > MAX_LINKS:
            raise RemoteError(
                f"{url}: refused: {len(doc[key])} {key} entries (limit {MAX_LINKS})"
            )
    if isinstance(doc.get("files"), list):
        page.is_project = True
        for entry in doc["files"]:
            if isinstance(entry, dict) and isinstance(entry.get("url"), str):
                item = dict(entry)
                item["url"] = _join(url, entry["url"]) or entry["url"]
                page.files.append(item)
    elif isinstance(doc.get("projects"), list):
        for p in doc["projects"]:
            name = p.get("name") if isinstance(p, dict) else None
            if isinstance(name, str) and name:
                norm = str(canonicalize_name(name))
                page.projects.append((norm, urljoin(url, f"{norm}/")))
    else:
        raise RemoteError(f"{url}: PEP 691 page has neither 'files' nor 'projects'")
    return page


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def _json_depth(body: bytes) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, strings skipped (before parsing it)."""
    depth = deepest = 0
    for m in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', body)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _parse_html(url: str, body: bytes) -> IndexPage:
    page = IndexPage(url, "html")
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    if len(parser.links) > MAX_LINKS:
        raise RemoteError(f"{url}: refused: {len(parser.links)} links (limit {MAX_LINKS})")
    base = (_join(url, parser.base) or url) if parser.base else url
    entries = []
    for attrs, text in parser.links:
        href = attrs.get("href")
        absolute = _join(base, href) if href else None
        if absolute is None:
            continue
        name = unquote(urlsplit(absolute).path.rsplit("/", 1)[-1]) or text
        entries.append((attrs, text, absolute, name))
    page.is_project = any(n.endswith(_DIST_SUFFIXES) for _, _, _, n in entries)
    for attrs, text, absolute, name in entries:
        if page.is_project:
            entry: dict[str, Any] = {"filename": name, "url": absolute, "hashes": {}}
            h = hash_from_url(absolute)
            if h is not None:
                entry["hashes"][h[0]] = h[1]
            yanked = attrs.get("data-yanked")
            entry["yanked"] = (yanked or True) if "data-yanked" in attrs else False
            page.files.append(entry)
        elif text:
            page.projects.append((str(canonicalize_name(text)), absolute))
    return page


def fetch_page(url: str, policy: URLPolicy | None = None) -> IndexPage:
    """An index page, fetched within ``policy`` (default: ``url``'s origin) and bounded."""
    policy = policy or URLPolicy.for_url(url)
    status, final, ctype, body = get(
        url, {"Accept": ACCEPT}, policy=policy, max_bytes=MAX_PAGE_BYTES,
        deadline=Deadline.after(DEFAULT_WHEEL_TIMEOUT),
    )  # fmt: skip
    if status != 200:
        raise RemoteError(f"{url}: HTTP {status}")
    return parse_page(final, ctype, body)


# -- sources --------------------------------------------------------------------------------------


def iter_remote(
    url: str,
    disc: Discovery,
    projects: Collection[str] = (),
    *,
    workers: int = 8,
    allow_hosts: tuple[str, ...] = (),
) -> Iterator[WheelRef]:
    """Wheels of ``url``: a wheel URL, a project page, or a root index (``projects``, if given,
    picks the project pages to read; otherwise every project listed). Only links on ``url``'s
    origin or on ``allow_hosts`` are followed."""
    policy = URLPolicy.for_url(url, allow_hosts)
    path = urlsplit(url).path
    if path.endswith(".whl"):
        ref = _ref({"filename": unquote(path.rsplit("/", 1)[-1]), "url": url}, disc, policy)
        if ref is not None:
            yield ref
        return
    wanted = sorted({str(canonicalize_name(p)) for p in projects})
    if wanted and not url.endswith("/"):
        url += "/"
    if wanted:
        # a root index and named projects: go straight to their pages (PEP 503 normalised names)
        pages = [(p, urljoin(url, f"{p}/")) for p in wanted]
    else:
        page = fetch_page(url, policy)
        if page.is_project:
            yield from _refs(page, disc, policy)
            return
        pages = []
        for name, page_url in page.projects:
            rule = policy.violation(page_url)
            if rule is None:
                pages.append((name, page_url))
            else:
                disc.refused += 1
                disc.note(f"project {name}: {page_url}: refused: {rule}")
    yield from _pages_in_order(pages, disc, workers, policy)


def _pages_in_order(
    pages: list[tuple[str, str]], disc: Discovery, workers: int, policy: URLPolicy
) -> Iterator[WheelRef]:
    """Fetch project pages with at most ``workers`` in flight, yield their wheels in order."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        pending: deque[tuple[str, Future[IndexPage]]] = deque()
        it = iter(pages)
        for name, page_url in it:
            pending.append((name, ex.submit(fetch_page, page_url, policy)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            name, fut = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt[0], ex.submit(fetch_page, nxt[1], policy)))
            try:
                page = fut.result()
            except (RemoteError, ValueError) as e:
                disc.note(f"project {name}: {e}")
                continue
            yield from _refs(page, disc, policy)


def _refs(page: IndexPage, disc: Discovery, policy: URLPolicy) -> Iterator[WheelRef]:
    for entry in page.files:
        ref = _ref(entry, disc, policy)
        if ref is not None:
            yield ref


_HEX = frozenset("0123456789abcdef")


def _shown(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _ref(entry: dict[str, Any], disc: Discovery, policy: URLPolicy) -> WheelRef | None:
    filename = entry.get("filename")
    url = entry.get("url")
    if not isinstance(filename, str) or not isinstance(url, str) or not filename.endswith(".whl"):
        disc.non_wheels += 1
        return None
    if not (encodable(filename) and encodable(url)):  # no store, report or terminal could hold it
        disc.refused += 1
        disc.note(f"{_shown(filename)}: {_shown(url)}: refused: a lone surrogate (text that is "
                  "not Unicode) in the file name or URL")  # fmt: skip
        return None
    rule = policy.violation(url)
    if rule is not None:  # never handed to a worker: it could name a local file
        disc.refused += 1
        disc.note(f"{filename}: {url}: refused: {rule}")
        return None
    try:
        project: str | None = str(parse_wheel_filename(filename)[0])
    except InvalidWheelFilename:
        disc.invalid_names += 1
        head = filename.split("-", 1)[0]
        project = str(canonicalize_name(head)) if head else None
    hashes = entry.get("hashes")
    chosen = hash_from_url(url)
    if chosen is None and isinstance(hashes, dict):
        for algo in _HASH_PREFERENCE:
            value = hashes.get(algo)
            if isinstance(value, str) and value and all(c in _HEX for c in value.lower()):
                chosen = (algo, value.lower())
                break
    location = url.split("#", 1)[0]
    if chosen is not None:
        location += f"#{chosen[0]}={chosen[1]}"
    size = entry.get("size")
    upload = entry.get("upload-time")
    yanked = entry.get("yanked")
    disc.wheels += 1
    return WheelRef(
        location=location,
        filename=filename,
        size=size if isinstance(size, int) and size >= 0 else None,
        content_hash=f"{chosen[0]}:{chosen[1]}" if chosen else None,
        upload_time=upload if isinstance(upload, str) and encodable(upload) else None,
        yanked=bool(yanked) if yanked is not None else None,
        project=project,
    )


# -- the worker side ------------------------------------------------------------------------------


def scan_remote(
    url: str,
    filename: str,
    engine: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    *,
    allow_hosts: tuple[str, ...] = (),
    wheel_timeout: float | None = DEFAULT_WHEEL_TIMEOUT,
    verify_record: bool = False,
    **http: Any,
) -> WheelFacts:
    """Scan the wheel at ``url`` over range requests; never raises for a bad wheel or server.

    Every byte comes from the server this time: facts are never looked up by the index's
    hash (see the module docstring). Requests stay on ``url``'s origin or ``allow_hosts``;
    all of them together take at most ``wheel_timeout`` seconds.
    """
    expected = hash_from_url(url)
    policy = URLPolicy.for_url(url, allow_hosts)
    deadline = Deadline.after(wheel_timeout) if wheel_timeout and wheel_timeout > 0 else None
    try:
        f = HTTPFile(url, expected_hash=expected, policy=policy, deadline=deadline, **http)
    except (RemoteError, OSError) as e:
        from ..read.engine import default_engine
        from ..read.wheelinfo import fill_filename_facts

        facts = WheelFacts(filename=filename, engine=engine or default_engine(), transferred=0)
        fill_filename_facts(facts)
        facts.error = f"{type(e).__name__}: {e}"
        return facts
    # imported once the first request is answered: a worker's first wheels wait on the
    # network, not on the engine's import
    from ..read.engine import scan_wheel

    with f:
        facts = scan_wheel(cast("BinaryIO", f), engine, filename=filename, limits=limits,
                           verify_record=verify_record, ranged=True)  # fmt: skip
        facts.transferred = f.stats.body_bytes
        if not facts.size:
            facts.size = f.size
    return facts
