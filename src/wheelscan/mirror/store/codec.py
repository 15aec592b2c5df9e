"""How store schema 2 keeps facts and verdicts: split, content-addressed, zstd-compressed.

A wheel's facts (``WheelFacts.to_dict()`` as JSON) are split into the wheel's own part and
one body per ELF member: the member's facts without its path. Bodies are keyed by the digest
of their canonical JSON, so every wheel that ships a binary with the same dynamic section
(the same library in each build of a project, re-compressed or not) shares one row. Bodies
are kept in *packs*: the bodies of consecutive new ELFs, concatenated, one frame (binaries
of one project and its builds import much the same names, which one frame finds and a frame
per body does not). Blobs are Zstandard frames, with a dictionary trained on the store's own
blobs of that kind. A verdict loses the wheel name and path its row already holds.

Everything here is a pure function of the bytes, except :class:`Codec`, which reads the
dictionaries of one database (they are never changed once written, so it caches them).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import zstandard as zstd

__all__ = [
    "KINDS",
    "LEVEL",
    "OPEN_LEVEL",
    "PACK_BYTES",
    "PACK_WINDOW_LOG",
    "SMALL_LEVEL",
    "Codec",
    "SplitFacts",
    "digest",
    "dumps",
    "fill_verdict",
    "join_facts",
    "member_key",
    "split_facts",
    "strip_verdict",
    "train",
]

#: what a dictionary is trained on: a wheel's own facts, an ELF body, a verdict
KINDS = ("wheel", "elf", "verdict")
#: zstd level of an ELF pack once it is closed (full, or at the end of a writer's session):
#: on the benchmark corpus's 8.8 MB of bodies in one frame 12 gives 11% less than 9 for twice
#: the (small) time; 15 another 6% for seven times more, 19 14% for eighteen times more
LEVEL = 12
#: the window of a closed pack's frame: the whole pack (2**24 = PACK_BYTES), so a body can
#: refer to any earlier one in its pack (level 12 alone would use 2**23); every decoder takes
#: windows up to 2**27 by default
PACK_WINDOW_LOG = 24
#: zstd level of the open pack re-encoded at each commit of a session (it grows to
#: PACK_BYTES; level 12 of 16 MiB at every commit would cost 0.2 s); the pack is encoded at
#: LEVEL once when it closes. Frames are self-describing: a reader does not care which
OPEN_LEVEL = 3
#: zstd level of the small blobs (a wheel's own facts, a verdict: a few hundred bytes to a few
#: KB with their dictionary): on the benchmark corpus 6 gives 10% (facts) to 17% (verdicts)
#: less than 3 and 1% more than 9 in half 9's time
SMALL_LEVEL = 6
#: a pack of ELF bodies is closed once it holds this many bytes. Larger packs find more
#: repetition (the corpus's 8.8 MB of bodies: 295 KB as 4 MiB packs, 213 KB as one 16 MiB
#: pack); a reader decodes a whole pack to read one body (16 MiB: about 10 ms)
PACK_BYTES = 16 << 20
#: a trained dictionary's size bound, and the sample bytes read to train it; the trainer tries
#: sizes from DICT_MIN up by doubling and keeps the one that makes samples + dictionary
#: smallest (a small store's dictionary is a large part of it)
DICT_MAX = 64 << 10
DICT_MIN = 2 << 10
TRAIN_BYTES = 4 << 20
#: fewer samples than this cannot train a useful dictionary (zstd may refuse outright)
TRAIN_MIN_SAMPLES = 16

#: verdict keys the row holds itself (``verdict_strip`` bits)
_WHEEL, _PATH = 1, 2


def member_key(key: str) -> tuple[bytes, int, int, int]:
    """A member-cache key (``<method>:<compressed size>:<size>:<hex digest>``) as the
    ``members`` table holds it: (digest, size, compressed size, method)."""
    method, csize, size, hexdigest = key.split(":", 3)
    try:
        raw = bytes.fromhex(hexdigest)
    except ValueError:
        raw = hexdigest.encode()
    return raw, int(size), int(csize), int(method)


def dumps(obj: object) -> str:
    """Compact JSON, as ``WheelFacts.to_json`` and ``Verdict.to_json`` write it."""
    return json.dumps(obj, separators=(",", ":"))


def digest(body: bytes) -> bytes:
    """An ELF body's identity: blake2b-128 of its canonical JSON."""
    return hashlib.blake2b(body, digest_size=16).digest()


@dataclass
class SplitFacts:
    """A wheel's facts as schema 2 stores them."""

    #: the wheel's own facts JSON: ``elfs`` holds ``[ordinal, entry]`` of each entry that is
    #: not a member's facts (none, from a scan); the original text when it is no JSON object
    wheel: bytes
    #: (ordinal in ``elfs``, member path, index of the last entry of the wheel's ``members``
    #: list with that path (None: none has it), body JSON: the entry without ``member``, its
    #: ``soname`` when that is text)
    elfs: list[tuple[int, str, int | None, bytes, str | None]] = field(default_factory=list)
    record_checked: int | None = None  # 1: ``record`` is not null (RECORD verified)


def split_facts(text: str) -> SplitFacts:
    try:
        d = json.loads(text)
    except ValueError:
        d = None
    if not isinstance(d, dict):
        return SplitFacts(text.encode("utf-8", "surrogatepass"))
    out = SplitFacts(b"", record_checked=int(d.get("record") is not None))
    where = member_index(d.get("members"))
    elfs = d.get("elfs")
    if isinstance(elfs, list):
        inline = []
        for i, e in enumerate(elfs):
            if isinstance(e, dict) and isinstance(e.get("member"), str):
                body = {k: v for k, v in e.items() if k != "member"}
                soname = body.get("soname")
                out.elfs.append((i, e["member"], where.get(e["member"]), dumps(body).encode(),
                                 soname if isinstance(soname, str) else None))  # fmt: skip
            else:
                inline.append([i, e])
        d = {**d, "elfs": inline}
    out.wheel = dumps(d).encode()
    return out


def member_index(members: object) -> dict[str, int]:
    """Path -> index of the last entry of a ``members`` list with that path."""
    out: dict[str, int] = {}
    if isinstance(members, list):
        for i, m in enumerate(members):
            if isinstance(m, dict) and isinstance(m.get("member"), str):
                out[m["member"]] = i
    return out


def wheel_object(wheel: str) -> dict[str, Any] | None:
    """A stored wheel part decoded; None when the facts were no JSON object (stored as is)."""
    try:
        d = json.loads(wheel)
    except ValueError:
        return None
    return d if isinstance(d, dict) else None


def link_path(d: dict[str, Any], member: int | None, path: str | None) -> str:
    """An ELF link's member path: its own, or that of the ``members`` entry it names."""
    if member is None:
        return str(path)
    return str(d["members"][member]["member"])


def join_facts(wheel: str, elfs: list[tuple[int, int | None, str | None, dict[str, Any]]]) -> str:
    """The facts JSON back from :func:`split_facts`' parts (``elfs``: ordinal, index into
    ``members`` or None and then the path, body decoded)."""
    d = wheel_object(wheel)
    if d is None:
        return wheel
    inline = d.get("elfs")
    if isinstance(inline, list):
        entries: dict[int, Any] = {int(i): e for i, e in inline}
        for i, member, path, body in elfs:
            entries[i] = {"member": link_path(d, member, path), **body}
        d["elfs"] = [entries[i] for i in sorted(entries)]
    return dumps(d)


def strip_verdict(text: str, filename: str, location: str) -> tuple[str, int]:
    """(the verdict JSON to store, its ``verdict_strip`` bits): the ``wheel`` and ``path``
    values equal to the row's filename and location become null. Text that is not the
    canonical JSON of an object is kept as it is (bits 0): reports pass it through."""
    try:
        d = json.loads(text)
    except ValueError:
        return text, 0
    if not isinstance(d, dict) or dumps(d) != text:
        return text, 0
    bits = 0
    if "wheel" in d and d["wheel"] == filename:
        d["wheel"], bits = None, bits | _WHEEL
    if "path" in d and d["path"] == location:
        d["path"], bits = None, bits | _PATH
    return (dumps(d) if bits else text), bits


def fill_verdict(text: str, bits: int, filename: str, location: str) -> str:
    """The inverse of :func:`strip_verdict`."""
    if not bits:
        return text
    return dumps(fill_verdict_object(json.loads(text), bits, filename, location))


def fill_verdict_object(d: Any, bits: int, filename: str, location: str) -> Any:
    """:func:`fill_verdict` on the decoded object (``d``, changed in place and returned)."""
    if bits and isinstance(d, dict):
        if bits & _WHEEL:
            d["wheel"] = filename
        if bits & _PATH:
            d["path"] = location
    return d


def train(samples: list[bytes]) -> bytes | None:
    """A dictionary for blobs like ``samples``, or None when none pays for itself. Sizes from
    DICT_MIN, doubling, up to DICT_MAX and an eighth of the samples' bytes are tried, until
    one does worse than the one before it (each trial trains anew: at the end of a small
    scan the trials were most of its last commit); the one kept makes the samples compressed
    with it (SMALL_LEVEL), plus itself, smallest, and smaller than the samples compressed
    without one."""
    if len(samples) < TRAIN_MIN_SAMPLES:
        return None
    total = sum(len(s) for s in samples)
    plain = zstd.ZstdCompressor(level=SMALL_LEVEL)
    best: tuple[int, bytes] = (sum(len(plain.compress(s)) for s in samples), b"")
    size = DICT_MIN
    while size <= min(DICT_MAX, max(DICT_MIN, total // 8)):
        try:
            d = zstd.train_dictionary(size, list[bytes | bytearray | memoryview](samples))
        except zstd.ZstdError:
            break
        with_dict = zstd.ZstdCompressor(level=SMALL_LEVEL, dict_data=d)
        raw = d.as_bytes()
        cost = len(raw) + sum(len(with_dict.compress(s)) for s in samples)
        if cost >= best[0] and best[1]:
            break  # past the best size: a bigger dictionary costs more than it saves
        if cost < best[0]:
            best = (cost, raw)
        size *= 2
    return best[1] or None


class Codec:
    """Zstandard frames for one database: dictionaries by id (0: none), cached; the last few
    ELF packs read and ELF bodies decoded, cached."""

    def __init__(self, con: sqlite3.Connection, *, cache: int = 256, packs: int = 4) -> None:
        self.con = con
        self._dicts: dict[int, zstd.ZstdCompressionDict] = {}
        self._comp: dict[tuple[int, int, int], zstd.ZstdCompressor] = {}
        self._decomp: dict[int, zstd.ZstdDecompressor] = {}
        self._packs: OrderedDict[int, bytes] = OrderedDict()
        self._pack_cache = packs
        self._objects: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._cache = cache

    def forget(self) -> None:
        """Drop the packs and bodies cached (their rows may have moved: ``gc``)."""
        self._packs.clear()
        self._objects.clear()

    # -- dictionaries -----------------------------------------------------------------------

    def latest(self, kind: str) -> int:
        row = self.con.execute("SELECT max(id) FROM zdicts WHERE kind = ?", (kind,)).fetchone()
        return int(row[0] or 0)

    def _dict(self, dict_id: int) -> zstd.ZstdCompressionDict:
        d = self._dicts.get(dict_id)
        if d is None:
            row = self.con.execute("SELECT dict FROM zdicts WHERE id = ?", (dict_id,)).fetchone()
            if row is None:
                msg = f"zstd dictionary {dict_id} is not in the store"
                raise ValueError(msg)
            d = self._dicts[dict_id] = zstd.ZstdCompressionDict(bytes(row[0]))
        return d

    def compress(self, data: bytes, dict_id: int, *, level: int = LEVEL,
                 window_log: int = 0) -> bytes:  # fmt: skip
        """``data`` as one frame (``window_log``: its window, 0: the level's)."""
        c = self._comp.get((dict_id, level, window_log))
        if c is None:
            dd = self._dict(dict_id) if dict_id else None
            if window_log:
                params = zstd.ZstdCompressionParameters.from_level(level, window_log=window_log)
                c = zstd.ZstdCompressor(compression_params=params, dict_data=dd)
            else:
                c = zstd.ZstdCompressor(level=level, dict_data=dd)
            self._comp[dict_id, level, window_log] = c
        return c.compress(data)

    def decompress(self, blob: bytes, dict_id: int) -> bytes:
        d = self._decomp.get(dict_id)
        if d is None:
            dd = self._dict(dict_id) if dict_id else None
            d = self._decomp[dict_id] = zstd.ZstdDecompressor(dict_data=dd)
        return d.decompress(blob)

    # -- ELF bodies -------------------------------------------------------------------------

    def pack(self, pack_id: int, need: int = 0) -> bytes:
        """A pack's bodies, decoded (cached; a pack still open may have grown since: one
        shorter than ``need`` is read again)."""
        got = self._packs.get(pack_id)
        if got is not None and len(got) >= need:
            self._packs.move_to_end(pack_id)
            return got
        row = self.con.execute(
            "SELECT dict_id, body FROM elf_packs WHERE id = ?", (pack_id,)
        ).fetchone()
        if row is None:
            msg = f"ELF facts pack {pack_id} is not in the store"
            raise ValueError(msg)
        data = self.decompress(bytes(row[1]), int(row[0]))
        self.remember_pack(pack_id, data)
        return data

    def remember_pack(self, pack_id: int, data: bytes) -> None:
        self._packs[pack_id] = data
        self._packs.move_to_end(pack_id)
        while len(self._packs) > self._pack_cache:
            self._packs.popitem(last=False)

    def body(self, elf_id: int) -> bytes:
        """An ``elf_facts`` row's body JSON."""
        row = self.con.execute(
            "SELECT pack_id, offset, length FROM elf_facts WHERE id = ?", (elf_id,)
        ).fetchone()
        if row is None:
            msg = f"ELF facts {elf_id} are not in the store"
            raise ValueError(msg)
        pack_id, off, n = (int(v) for v in row)
        got = self._packs.get(pack_id)
        if got is None or len(got) < off + n:
            # where the body lies and the pack it lies in, read in one statement: a ``gc``
            # that commits between two would have moved the body to another pack
            row = self.con.execute(
                "SELECT f.pack_id, f.offset, f.length, p.dict_id, p.body FROM elf_facts f"
                " JOIN elf_packs p ON p.id = f.pack_id WHERE f.id = ?", (elf_id,)
            ).fetchone()
            if row is None:
                msg = f"ELF facts {elf_id} are not in the store"
                raise ValueError(msg)
            pack_id, off, n = (int(v) for v in row[:3])
            got = self.decompress(bytes(row[4]), int(row[3]))
            self.remember_pack(pack_id, got)
        else:
            self._packs.move_to_end(pack_id)
        return got[off : off + n]

    def body_object(self, elf_id: int) -> dict[str, Any]:
        """An ELF body decoded (shared: callers copy before they change it)."""
        got = self._objects.get(elf_id)
        if got is None:
            got = self._objects[elf_id] = json.loads(self.body(elf_id))
            while len(self._objects) > self._cache:
                self._objects.popitem(last=False)
        else:
            self._objects.move_to_end(elf_id)
        return got

    # -- rows -------------------------------------------------------------------------------

    def text(self, blob: bytes, dict_id: int | None) -> str:
        return self.decompress(bytes(blob), int(dict_id or 0)).decode("utf-8", "surrogatepass")

    def facts(self, wheel_id: int, blob: bytes | None, dict_id: int | None) -> str | None:
        """A wheel row's facts JSON, reassembled (None: the row has none)."""
        if blob is None:
            return None
        links = self.con.execute(
            "SELECT ordinal, member, path, elf_id FROM wheel_elfs WHERE wheel_id = ?"
            " ORDER BY ordinal",
            (wheel_id,),
        ).fetchall()
        elfs = [(int(o), m, p, self.body_object(int(e))) for o, m, p, e in links]
        return join_facts(self.text(blob, dict_id), elfs)

    def verdict(
        self, blob: bytes | None, dict_id: int | None, bits: int | None, filename: str,
        location: str,
    ) -> str | None:  # fmt: skip
        """A wheel row's verdict JSON as it was recorded (None: the row has none)."""
        if blob is None:
            return None
        return fill_verdict(self.text(blob, dict_id), int(bits or 0), filename, location)

    def verdict_object(
        self, blob: bytes, dict_id: int | None, bits: int | None, filename: str,
        location: str,
    ) -> Any:  # fmt: skip
        """:meth:`verdict` decoded, without its text made again only to be decoded."""
        obj = json.loads(self.text(blob, dict_id))
        return fill_verdict_object(obj, int(bits or 0), filename, location)
