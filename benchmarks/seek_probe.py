"""Issue 24's measurement probe: could entering the deflate stream near PT_DYNAMIC pay?

For every deflated ELF member of the benchmark corpus this measures, without wheelscan code:

- the head (ELF + program headers and every table PT_DYNAMIC points to that lies before it),
  PT_DYNAMIC's range and the needed prefix (floor.py's definition);
- today's cost: libisal streamed up to the prefix (run.py's floor), compressed bytes consumed;
- a seek plan that could run without knowing the answer: estimate PT_DYNAMIC's compressed
  position by interpolation, search bit positions backwards for a block header zlib accepts,
  trial-decode it, decode from it to the member's end (whose length gives the boundary's
  uncompressed offset), step further back on overshoot; the true block map (zlib Z_BLOCK)
  only grades the choice;
- window dependence: the stretch decoded under two placeholder windows (all 0x00, all 0xFF);
  PT_DYNAMIC and the tables after it must be window-independent, and every window-independent
  byte is checked against the sequentially inflated member;
- the same decoding with ISA-L entered at a bit offset, and an "anchor" variant that stops at
  the end of the needed tail and locates PT_DYNAMIC by its shape instead of by the member end.

    python benchmarks/seek_probe.py [--only SUBSTR] [--repeats 3] [--json OUT]

Needs gcc, zlib and ISA-L headers (Debian: zlib1g-dev, libisal-dev), pyelftools, the corpus
(python benchmarks/fetch_corpus.py). Results: benchmarks/SEEK_PROBE.md.
"""

from __future__ import annotations

import argparse
import ctypes
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from c_floor import load_libisal
from fetch_corpus import default_cache
from floor import ELF_MAGIC, INPUT_SLACK, _data_offset, needed_prefix
from run import STREAM_CHUNK, STREAM_INPUT, corpus_paths

_HERE = Path(__file__).parent
TRIAL_OUT = 64 << 10  # output a candidate must decode without error to be taken
SEARCH_BUDGET = 4 << 20  # compressed bytes searched per member before giving up
JUMP_MARGIN = 16 << 10  # aim this far before the target after an overshoot
MAX_DEP_RETRIES = 2  # earlier boundaries tried when the needed tail is window-dependent
ANCHOR_SLACK = 64 << 10  # the anchor variant decodes this far past the needed tail


class _Sink(ctypes.Structure):
    _fields_ = [
        ("out1", ctypes.c_void_p), ("k0", ctypes.c_uint64), ("k1", ctypes.c_uint64),
        ("out2", ctypes.c_void_p), ("k2", ctypes.c_uint64), ("k3", ctypes.c_uint64),
        ("stop", ctypes.c_uint64),
    ]  # fmt: skip


class _Result(ctypes.Structure):
    _fields_ = [
        ("produced", ctypes.c_uint64), ("end_bit", ctypes.c_uint64),
        ("status", ctypes.c_int32), ("seconds", ctypes.c_double),
    ]  # fmt: skip


def _load(build_dir: Path) -> Any:
    build_dir.mkdir(parents=True, exist_ok=True)
    src = _HERE / "seek_probe.c"
    so = build_dir / "seek_probe.so"
    if not so.exists() or so.stat().st_mtime < src.stat().st_mtime:
        with tempfile.NamedTemporaryFile(dir=build_dir, suffix=".so", delete=False) as tmp:
            pass
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, "-O2", "-shared", "-fPIC", str(src), "-o", tmp.name, "-lz", "-lisal"],
                       check=True)  # fmt: skip
        os.replace(tmp.name, so)
    lib = ctypes.CDLL(str(so))
    u64, vp, p64 = ctypes.c_uint64, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64)
    lib.probe_blocks.restype = ctypes.c_long
    lib.probe_blocks.argtypes = [vp, u64, p64, p64, u64]
    for name in ("probe_zdecode", "probe_idecode"):
        fn = getattr(lib, name)
        fn.restype = None
        fn.argtypes = [vp, u64, u64, ctypes.c_int, ctypes.POINTER(_Sink), ctypes.POINTER(_Result)]
    for name in ("probe_find", "probe_find_fast"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_long
        fn.argtypes = [vp, u64, u64, u64, p64, u64, p64, ctypes.POINTER(ctypes.c_double)]
    lib.probe_anchor.restype = ctypes.c_long
    lib.probe_anchor.argtypes = [vp, u64, u64, ctypes.c_int, p64]
    lib.probe_compare.restype = None
    lib.probe_compare.argtypes = [vp, vp, vp, u64, p64]
    return lib


def _addr(b: bytes | bytearray) -> int:
    if isinstance(b, bytearray):
        return ctypes.addressof((ctypes.c_char * len(b)).from_buffer(b))
    v = ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p).value
    assert v is not None
    return v


class Probe:
    def __init__(self, lib: Any, isal: Any) -> None:
        self.lib = lib
        self.isal = isal

    def blocks(self, comp: bytes, size: int) -> tuple[list[int], list[int]]:
        cap = max(1024, size // 1024)
        bits, outs = (ctypes.c_uint64 * cap)(), (ctypes.c_uint64 * cap)()
        n = self.lib.probe_blocks(_addr(comp), len(comp), bits, outs, cap)
        if n < 0 or n >= cap:
            raise ValueError(f"block map: corrupt stream or over {cap} blocks")
        return list(bits[:n]), list(outs[:n])

    def decode(
        self, comp: bytes, bit: int, fill: int, *, stop: int = 0, keep: bytearray | None = None,
        isal: bool = False,
    ) -> _Result:  # fmt: skip
        sink = _Sink()
        if keep is not None:
            sink.out1, sink.k0, sink.k1 = _addr(keep), 0, len(keep)
        sink.stop = stop
        res = _Result()
        fn = self.lib.probe_idecode if isal else self.lib.probe_zdecode
        fn(_addr(comp), len(comp), bit, fill, ctypes.byref(sink), ctypes.byref(res))
        return res

    def find(self, comp: bytes, lo: int, hi: int, cap: int = 256) -> tuple[list[int], int, float]:
        cands = (ctypes.c_uint64 * cap)()
        tested, secs = ctypes.c_uint64(), ctypes.c_double()
        n = self.lib.probe_find_fast(_addr(comp), len(comp), lo, hi, cands, cap,
                                ctypes.byref(tested), ctypes.byref(secs))  # fmt: skip
        return list(cands[:n]), tested.value, secs.value

    def compare(self, a: bytearray, b: bytearray, truth: bytes | None) -> tuple[int, int, int]:
        out = (ctypes.c_uint64 * 3)()
        n = min(len(a), len(b), len(truth) if truth is not None else len(a))
        self.lib.probe_compare(_addr(a), _addr(b), _addr(truth) if truth else None, n, out)
        return out[0], out[1], out[2]

    def anchor(self, buf: bytearray, size: int, is64: bool) -> tuple[int, int]:
        first = ctypes.c_uint64()
        n = self.lib.probe_anchor(_addr(buf), len(buf), size, int(is64), ctypes.byref(first))
        return n, first.value

    def isal_stream(self, comp: bytes, upto: int) -> float:
        t0 = time.perf_counter()
        self.isal.stream(comp, upto, STREAM_CHUNK, STREAM_INPUT)
        return time.perf_counter() - t0


def _input_for(comp: bytes, upto: int) -> int:
    """Compressed bytes zlib consumes to produce the first ``upto`` bytes (as floor.py)."""
    d = zlib.decompressobj(-15)
    d.decompress(comp, upto)
    return len(comp) - len(d.unconsumed_tail)


_TABLE_TAGS = (
    ("dynstr", "DT_STRTAB"), ("dynsym", "DT_SYMTAB"), ("hash", "DT_HASH"),
    ("gnu_hash", "DT_GNU_HASH"), ("versym", "DT_VERSYM"), ("verneed", "DT_VERNEED"),
    ("verdef", "DT_VERDEF"),
)  # fmt: skip


def _elf_facts(data: bytes, ends: dict[str, int]) -> dict[str, Any]:
    """Header facts and the needed byte ranges (starts from the ELF, ends from floor.py)."""
    elf = ELFFile(io.BytesIO(data))
    h = elf.header
    ranges = [(0, h["e_ehsize"]), (h["e_phoff"], ends["phdrs"])]
    loads: list[tuple[int, int, int]] = []
    dyn = None
    tags: dict[str, int] = {}
    for seg in elf.iter_segments():
        kind, off, filesz = seg["p_type"], seg["p_offset"], seg["p_filesz"]
        if kind == "PT_LOAD":
            loads.append((seg["p_vaddr"], off, filesz))
        elif kind in ("PT_INTERP", "PT_NOTE", "PT_GNU_PROPERTY") and filesz:
            ranges.append((off, off + filesz))
        elif kind == "PT_DYNAMIC":
            dyn = (off, off + filesz)
            ranges.append(dyn)
            for t in seg.iter_tags():
                if isinstance(t.entry.d_tag, str):
                    tags.setdefault(t.entry.d_tag, t.entry.d_val)
    for key, tag in _TABLE_TAGS:
        if key in ends and tag in tags:
            start = next((tags[tag] - va + off for va, off, sz in loads
                          if va <= tags[tag] < va + sz), None)  # fmt: skip
            if start is not None:
                ranges.append((start, ends[key]))
    size = len(data)
    ranges = sorted((max(0, lo), min(hi, size)) for lo, hi in ranges if lo < hi)
    merged: list[list[int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return {
        "is64": elf.elfclass == 64,
        "little": elf.little_endian,
        "dyn": dyn,
        "shoff": h["e_shoff"],
        "shend": h["e_shoff"] + h["e_shnum"] * h["e_shentsize"],
        "ranges": merged,
    }


def split_ranges(ranges: list[list[int]]) -> tuple[int, int, list[list[int]]] | None:
    """Where to skip: (head end, tail start, tail ranges) across the widest gap, or None."""
    if len(ranges) < 2:
        return None
    i = max(range(len(ranges) - 1), key=lambda i: ranges[i + 1][0] - ranges[i][1])
    return ranges[i][1], ranges[i + 1][0], ranges[i + 1 :]


class _Search:
    """Walk backwards through a member's compressed bits for validated block boundaries."""

    def __init__(self, p: Probe, comp: bytes, size: int, lo_limit: int, true: dict[int, int]):
        self.p, self.comp, self.size, self.lo_limit = p, comp, size, lo_limit
        self.true = true  # bit -> uncompressed offset of every real boundary (grading only)
        self.aliases = 0
        self.budget = SEARCH_BUDGET * 8
        self.tested = self.trials = self.false_pos = self.undetected = 0
        self.search_s = self.trial_s = self.wasted_s = 0.0

    def next_boundary(self, hi: int) -> tuple[int, int] | None:
        """The first boundary below bit ``hi``: (bit, uncompressed offset), or None."""
        csize = len(self.comp)
        while hi > self.lo_limit and self.budget > 0:
            lo = max(self.lo_limit, hi - self.budget)
            cands, t, s = self.p.find(self.comp, lo, hi, cap=1)
            self.tested += t
            self.budget -= t
            self.search_s += s
            if not cands:
                return None
            c = hi = cands[0]
            self.trials += 1
            r = self.p.decode(self.comp, c, 0, stop=TRIAL_OUT)
            self.trial_s += r.seconds
            if r.status < 0:
                continue
            # taken: decode to the end; the final block must end at the member's last byte
            full = self.p.decode(self.comp, c, 0)
            if not (full.status == 1 and csize * 8 - 8 < full.end_bit <= csize * 8):
                self.false_pos += 1
                self.wasted_s += full.seconds
                continue
            u = self.size - full.produced
            if c not in self.true:
                # a stored block's header is also found at the zero padding bits before its
                # length: the same block, the same offset. Anything else is a wrong offset.
                if any(self.true.get(c - k) == u for k in range(1, 8)):
                    self.aliases += 1
                else:
                    self.undetected += 1
                    continue
            return c, u
        return None


def window_reach(p: Probe, comp: bytes, m: dict[str, Any], bits: list[int], outs: list[int]):
    """How far before the target a true boundary must be for the needed tail to come out
    window-independent: boundaries 1, 2, 3, 5, 9, 17, ... before the last one at the target."""
    target, tail = m["target"], m["tail_ranges"]
    last = max(i for i, o in enumerate(outs) if o <= target)
    step = 0
    attempts: list[tuple[int, int]] = []
    while True:
        i = last - (0 if step == 0 else (1 << (step - 1)))
        if i < 0 or outs[i] < m["head_end"]:
            return None
        b, u = bits[i], outs[i]
        attempts.append((b, u))
        need = m["prefix"] - u
        a, z = bytearray(need), bytearray(need)
        p.decode(comp, b, 0x00, stop=need, keep=a)
        p.decode(comp, b, 0xFF, stop=need, keep=z)
        dep = sum(p.compare(a[lo - u : hi - u], z[lo - u : hi - u], None)[0] for lo, hi in tail)
        if not dep:
            return {"reach_bit": b, "reach_u": u, "reach_blocks": last - i, "attempts": attempts}
        step += 1


def plan_member(p: Probe, comp: bytes, data: bytes, m: dict[str, Any], start: str) -> None:
    """The seek plan for one member, filling ``m`` (see the module docstring)."""
    size, csize = len(data), len(comp)
    target, tail = m["target"], m["tail_ranges"]
    bits, outs = p.blocks(comp, size)
    m["blocks"] = len(bits)
    # the oracle: the last true boundary at or before the tail's first needed byte
    ob = max(i for i, o in enumerate(outs) if o <= target)
    m["oracle_bit"], m["oracle_out"] = bits[ob], outs[ob]
    m["oracle_gap"] = target - outs[ob]
    reach = window_reach(p, comp, m, bits, outs)
    if reach is None:
        m["reach_fail"] = True
    else:
        m.update(reach)
    head_c = m["head_c"]
    if start == "interp":  # interpolate the target's compressed position
        ratio = (csize - head_c) * 8 / max(1, size - m["head_end"])
        hi = min(csize * 8 - 1, head_c * 8 + int((target - m["head_end"]) * ratio))
    else:  # from the member's end, jumping back by what each boundary tells
        hi = csize * 8 - 1
    search = _Search(p, comp, size, head_c * 8, dict(zip(bits, outs, strict=True)))
    overshoots = dep_retries = 0
    dep_wasted = 0.0
    found: tuple[int, int] | None = None
    a = z = bytearray()
    while True:
        found = search.next_boundary(hi)
        if found is None:
            m["fallback"] = "no boundary found"
            break
        c, u = found
        if u > target:  # overshoot: jump back by the gap at the local ratio, and a margin
            overshoots += 1
            local = (csize * 8 - c) / max(1, size - u)
            hi = c - int((u - target + JUMP_MARGIN) * local)
            continue
        if u < m["head_end"]:
            m["fallback"] = "boundary inside the head"
            break
        a, z = bytearray(size - u), bytearray(size - u)
        ra = p.decode(comp, c, 0x00, keep=a)
        rz = p.decode(comp, c, 0xFF, keep=z)
        assert ra.produced == rz.produced == size - u, (ra.produced, rz.produced, size - u)
        dep = sum(p.compare(a[lo - u : hi_ - u], z[lo - u : hi_ - u], None)[0] for lo, hi_ in tail)
        if dep and dep_retries < MAX_DEP_RETRIES:  # try the boundary before this one
            dep_retries += 1
            dep_wasted += ra.seconds + rz.seconds
            hi = c
            continue
        break
    m.update(search_tested=search.tested, trials=search.trials, false_pos=search.false_pos,
             undetected=search.undetected, aliases=search.aliases, overshoots=overshoots,
             dep_retries=dep_retries, search_s=search.search_s, trial_s=search.trial_s,
             wasted_decode_s=search.wasted_s + dep_wasted)  # fmt: skip
    if found is None or "fallback" in m:
        return
    b, u = found
    m["bit"], m["u"] = b, u
    m["u_est_err"] = u - target
    # correctness and window dependence: the whole stretch under both windows
    n_keep = size - u
    truth = data[u:]
    dep, wrong, first = p.compare(a, z, truth)
    m["dep_bytes"], m["wrong_bytes"] = dep, wrong
    m["first_dep"] = None if first == 2**64 - 1 else first
    m["dep_needed"] = sum(p.compare(a[lo - u : hi - u], z[lo - u : hi - u], None)[0]
                          for lo, hi in tail)  # fmt: skip
    dyn_start, dyn_end = m["dyn"]
    m["dyn_in_tail"] = dyn_start >= u
    if dyn_start >= u:
        m["dep_dyn"] = p.compare(a[dyn_start - u : dyn_end - u], z[dyn_start - u : dyn_end - u],
                                 None)[0]  # fmt: skip
    if m["shoff"] >= u and m["shend"] > m["shoff"]:
        m["dep_shdrs"] = p.compare(a[m["shoff"] - u : m["shend"] - u],
                                   z[m["shoff"] - u : m["shend"] - u], None)[0]  # fmt: skip
    # ISA-L entered at the same bit must give the same bytes
    ia = bytearray(n_keep)
    ri = p.decode(comp, b, 0x00, keep=ia, isal=True)
    m["isal_ok"] = ri.produced == n_keep and ia == a
    # the anchor variant: PT_DYNAMIC located by shape in the stretch up to the needed tail
    if dyn_start >= u and m["little"]:
        stretch = a[: min(n_keep, m["prefix"] - u + ANCHOR_SLACK)]
        count, first_at = p.anchor(stretch, dyn_end - dyn_start, m["is64"])
        m["anchor_count"], m["anchor_hit"] = count, first_at == dyn_start - u
    if m["dep_needed"]:
        m["fallback"] = "needed tail window-dependent"


def time_member(p: Probe, comp: bytes, m: dict[str, Any], repeats: int) -> None:
    """CPU seconds of each piece, minimum over ``repeats`` interleaved rounds."""
    seq_in = comp[: m["input_needed"] + INPUT_SLACK]
    head_in = comp[: m["head_c"] + INPUT_SLACK]
    keys = ["seq_isal", "head_isal"]
    have_seek = "bit" in m
    if have_seek:
        keys += ["tail_z", "tail_i", "need_z", "need_i", "anchor_z", "anchor_i"]
    best = dict.fromkeys(keys, float("inf"))
    for _ in range(repeats):
        got = {"seq_isal": p.isal_stream(seq_in, m["prefix"]),
               "head_isal": p.isal_stream(head_in, m["head_end"])}  # fmt: skip
        if have_seek:
            b, u = m["bit"], m["u"]
            need = m["prefix"] - u
            anchor = min(m["size"] - u, need + ANCHOR_SLACK)
            got["tail_z"] = p.decode(comp, b, 0).seconds
            got["tail_i"] = p.decode(comp, b, 0, isal=True).seconds
            got["need_z"] = p.decode(comp, b, 0xFF, stop=need).seconds
            got["need_i"] = p.decode(comp, b, 0xFF, stop=need, isal=True).seconds
            got["anchor_z"] = p.decode(comp, b, 0, stop=anchor).seconds
            got["anchor_i"] = p.decode(comp, b, 0, stop=anchor, isal=True).seconds
        if "reach_bit" in m:
            b, u = m["reach_bit"], m["reach_u"]
            got["reach_i"] = p.decode(comp, b, 0, isal=True).seconds
            got["reach_need_i"] = p.decode(comp, b, 0xFF, stop=m["prefix"] - u, isal=True).seconds
            # the doubling walk: both windows to the needed end per attempt, and the first
            # attempt's boundary decoded on to the member's end (its length gives the offset)
            walk = 0.0
            for j, (b, u) in enumerate(m["attempts"]):
                walk += p.decode(comp, b, 0xFF, stop=m["prefix"] - u, isal=True).seconds
                walk += p.decode(comp, b, 0, stop=0 if j == 0 else m["prefix"] - u,
                                 isal=True).seconds  # fmt: skip
            got["walk_i"] = walk
        for k, v in got.items():
            best[k] = min(best.get(k, float("inf")), v)
    m["t"] = best


def probe_wheel(
    p: Probe, path: Path, repeats: int, threshold: int, start_at: str
) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    rows: list[dict[str, Any]] = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_DEFLATED or info.file_size < 4:
                continue
            with zf.open(info) as f:
                if f.read(4) != ELF_MAGIC:
                    continue
            data = zf.read(info)
            start = _data_offset(raw, info)
            comp = raw[start : start + info.compress_size]
            m: dict[str, Any] = {"wheel": path.name, "name": info.filename, "size": len(data),
                                 "csize": len(comp)}  # fmt: skip
            rows.append(m)
            try:
                np_ = needed_prefix(data)
                facts = _elf_facts(data, np_["ends"])
            except Exception as exc:  # a broken ELF: today's path, not this probe's business
                m["fallback"] = f"ELF not parsed: {exc!r}"
                continue
            m.update(facts)
            m["prefix"] = np_["prefix"]
            m["input_needed"] = _input_for(comp, m["prefix"])
            m["ranges_end"] = facts["ranges"][-1][1] if facts["ranges"] else 0
            split = split_ranges(facts["ranges"]) if facts["dyn"] is not None else None
            if split is None:
                m.update(head_end=m["prefix"], head_c=m["input_needed"])
                m["fallback"] = "no PT_DYNAMIC" if facts["dyn"] is None else "no gap"
            else:
                m["head_end"], m["target"], m["tail_ranges"] = split
                m["head_c"] = _input_for(comp, m["head_end"])
                if len(data) < threshold:
                    m["fallback"] = "below the size threshold"
                else:
                    plan_member(p, comp, data, m, start_at)
            time_member(p, comp, m, repeats)
    return rows


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Corpus totals: today's path vs the seek plan (falling back per member)."""
    tot: dict[str, Any] = {
        "members": len(rows), "elf_bytes": 0, "seq_bytes": 0, "plan_bytes": 0,
        "plan_bytes_2pass": 0, "anchor_bytes": 0, "seq_remote": 0, "plan_remote": 0,
        "anchor_remote": 0, "seq_isal_s": 0.0, "cpu": {}, "fallbacks": {}, "seeks": 0,
        "dep_retries": 0, "search_tested": 0, "search_s": 0.0, "trial_s": 0.0, "false_pos": 0,
        "overshoots": 0, "undetected": 0, "aliases": 0,
        "wrong_bytes": 0, "dep_bytes": 0, "stretch_bytes": 0, "dep_dyn_members": 0,
        "dep_shdr_members": 0, "shdr_members": 0, "isal_mismatch": 0, "anchor_unique": 0,
        "anchor_cands": 0,
        "anchor_members": 0, "oracle_gap": 0, "plan_gap": 0, "tail_after_dyn": 0,
        "head_bytes": 0,
    }  # fmt: skip
    variants = ("end_z", "end_i", "anchor_z", "anchor_i")
    cpu = dict.fromkeys(variants, 0.0)
    for m in rows:
        t = m.get("t")
        tot["elf_bytes"] += m["size"]
        if t is None:  # not parsed: counted as today's bytes, untimed
            continue
        tot["seq_bytes"] += m["prefix"]
        tot["seq_remote"] += m["input_needed"]
        tot["seq_isal_s"] += t["seq_isal"]
        search = m.get("search_s", 0.0) + m.get("trial_s", 0.0) + m.get("wasted_decode_s", 0.0)
        tot["search_tested"] += m.get("search_tested", 0)
        tot["search_s"] += m.get("search_s", 0.0)
        tot["trial_s"] += m.get("trial_s", 0.0) + m.get("wasted_decode_s", 0.0)
        tot["false_pos"] += m.get("false_pos", 0)
        tot["overshoots"] += m.get("overshoots", 0)
        tot["undetected"] += m.get("undetected", 0)
        tot["aliases"] += m.get("aliases", 0)
        tot["dep_retries"] += m.get("dep_retries", 0)
        if "bit" in m:
            tot["wrong_bytes"] += m["wrong_bytes"]
            tot["dep_bytes"] += m["dep_bytes"]
            tot["stretch_bytes"] += m["size"] - m["u"]
            tot["dep_dyn_members"] += bool(m.get("dep_dyn"))
            if "dep_shdrs" in m:
                tot["shdr_members"] += 1
                tot["dep_shdr_members"] += bool(m["dep_shdrs"])
            tot["isal_mismatch"] += not m["isal_ok"]
            if "anchor_hit" in m:
                tot["anchor_members"] += 1
                tot["anchor_unique"] += m["anchor_hit"]
                tot["anchor_cands"] += m["anchor_count"]
        fb = m.get("fallback")
        seek_bytes = m["head_end"] + m["size"] - m["u"] if "bit" in m else None
        if fb is None and seek_bytes is not None and seek_bytes >= m["prefix"]:
            fb = m["fallback"] = "seek decodes more than the prefix"
        if fb is not None:
            tot["fallbacks"][fb] = tot["fallbacks"].get(fb, 0) + 1
            tot["plan_bytes"] += m["prefix"]
            tot["plan_bytes_2pass"] += m["prefix"]
            tot["anchor_bytes"] += m["prefix"]
            tot["plan_remote"] += m["input_needed"]
            tot["anchor_remote"] += m["input_needed"]
            for v in variants:  # today's cost, plus whatever the attempt spent
                wasted = search
                if "bit" in m:
                    wasted += t["tail_z"] + t["need_z"] if v.endswith("z") else 0.0
                    wasted += t["tail_i"] + t["need_i"] if v.endswith("i") else 0.0
                cpu[v] += t["seq_isal"] + wasted
            continue
        tot["seeks"] += 1
        need = m["prefix"] - m["u"]
        anchor = min(m["size"] - m["u"], need + ANCHOR_SLACK)
        anchored = bool(m.get("anchor_hit"))  # else the anchor variant decodes to the end too
        tot["head_bytes"] += m["head_end"]
        tot["plan_bytes"] += seek_bytes
        tot["plan_bytes_2pass"] += seek_bytes + need
        tot["anchor_bytes"] += m["head_end"] + 2 * anchor if anchored else seek_bytes + need
        tot["oracle_gap"] += m["oracle_gap"]
        tot["plan_gap"] += m["target"] - m["u"]
        tot["tail_after_dyn"] += m["size"] - m["target"]
        tot["plan_remote"] += m["head_c"] + m["csize"] - m["bit"] // 8
        tot["anchor_remote"] += (
            m["head_c"] + (m["input_needed"] if anchored else m["csize"]) - m["bit"] // 8
        )
        cpu["end_z"] += t["head_isal"] + search + t["tail_z"] + t["need_z"]
        cpu["end_i"] += t["head_isal"] + search + t["tail_i"] + t["need_i"]
        for sfx in "zi":
            tail = 2 * t[f"anchor_{sfx}"] if anchored else t[f"tail_{sfx}"] + t[f"need_{sfx}"]
            cpu[f"anchor_{sfx}"] += t["head_isal"] + search + tail
    tot["cpu"] = cpu
    return tot


def summarise_reach(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The optimistic plan: enter at the nearest true boundary whose needed tail comes out
    window-independent, reached by doubling jumps back from the target, each jump costing one
    search at the member's measured average; ISA-L for both passes; the re-decoding a failed
    jump costs is not counted."""
    tot: dict[str, Any] = {"seeks": 0, "bytes": 0, "bytes_2pass": 0, "remote": 0, "cpu": 0.0,
                           "seq_bytes": 0, "seq_remote": 0, "floor": 0.0, "fallbacks": {},
                           "reach_blocks": [], "reach_dist": [], "search_s": 0.0,
                           "cpu_walk": 0.0}  # fmt: skip
    wheels: dict[str, list[float]] = {}
    for m in rows:
        t = m.get("t")
        if t is None:
            continue
        tot["seq_bytes"] += m["prefix"]
        tot["seq_remote"] += m["input_needed"]
        tot["floor"] += t["seq_isal"]
        w = wheels.setdefault(m["wheel"], [0.0, 0.0, 0.0])
        w[0] += t["seq_isal"]
        fb = None
        if "target" not in m or m.get("fallback") in ("below the size threshold", "no gap"):
            fb = m.get("fallback", "no PT_DYNAMIC")
        elif m.get("reach_fail") or "reach_bit" not in m:
            fb = "window-dependent back to the head"
        elif m["head_end"] + m["size"] - m["reach_u"] >= m["prefix"]:
            fb = "seek decodes more than the prefix"
        if fb is not None:
            tot["fallbacks"][fb] = tot["fallbacks"].get(fb, 0) + 1
            tot["bytes"] += m["prefix"]
            tot["bytes_2pass"] += m["prefix"]
            tot["remote"] += m["input_needed"]
            tot["cpu"] += t["seq_isal"]
            tot["cpu_walk"] += t["seq_isal"]
            w[1] += t["seq_isal"]
            w[2] += t["seq_isal"]
            continue
        tot["seeks"] += 1
        u = m["reach_u"]
        tot["reach_blocks"].append(m["reach_blocks"])
        tot["reach_dist"].append(m["target"] - u)
        # walking back by doubling jumps: one search of the member's average cost per jump
        per_search = (m["search_s"] + m["trial_s"]) / (
            1 + m.get("overshoots", 0) + m.get("dep_retries", 0)
        )
        search = per_search * (1 + m["reach_blocks"].bit_length())
        tot["search_s"] += search
        tot["bytes"] += m["head_end"] + m["size"] - u
        tot["bytes_2pass"] += m["head_end"] + m["size"] - u + m["prefix"] - u
        tot["remote"] += m["head_c"] + m["csize"] - m["reach_bit"] // 8
        tail = t["reach_i"] + t["reach_need_i"]
        total = t["head_isal"] + search + tail
        tot["cpu"] += total
        walk_total = t["head_isal"] + search + t["walk_i"]
        tot["cpu_walk"] += walk_total
        w[2] += max(walk_total / 2, t["head_isal"], search + t["walk_i"] / 2)
        w[1] += max(total / 2, t["head_isal"], search + tail / 2)
    tot["wheels"] = wheels
    return tot


def report_reach(tot: dict[str, Any]) -> None:
    f = tot["floor"]
    rb, rd = sorted(tot["reach_blocks"]), sorted(tot["reach_dist"])

    def q(v: list[int], x: float) -> int:
        return v[min(len(v) - 1, int(x * len(v)))] if v else 0

    print(
        f"\noptimistic plan (nearest window-independent boundary, ISA-L): seeks {tot['seeks']}; "
        f"fallbacks {json.dumps(tot['fallbacks'])}"
    )
    print(
        f"  blocks walked back beyond the nearest: median {q(rb, 0.5)}, p90 {q(rb, 0.9)}, "
        f"max {q(rb, 1.0)}; boundary-to-target distance median {q(rd, 0.5):,} B, "
        f"p90 {q(rd, 0.9):,} B"
    )
    print(
        f"  inflated {_mb(tot['bytes'])} = {tot['bytes'] / tot['seq_bytes']:.3f}x today "
        f"({_mb(tot['bytes_2pass'])} = {tot['bytes_2pass'] / tot['seq_bytes']:.3f}x with the "
        f"second window); search {tot['search_s']:.3f} s"
    )
    print(
        f"  CPU {tot['cpu']:.3f} s = {tot['cpu'] / f:.3f}x the libisal floor ({f:.3f} s); "
        f"with every doubling attempt decoded {tot['cpu_walk']:.3f} s = "
        f"{tot['cpu_walk'] / f:.3f}x; remote {_mb(tot['remote'])} = "
        f"{tot['remote'] / tot['seq_remote']:.3f}x"
    )
    big = sorted(tot["wheels"].items(), key=lambda kv: -kv[1][0])[:3]
    for name, (seq, seek, walk) in big:
        print(
            f"  wall, 2 cores, {name[:40]}: today {seq:.3f} s, seek {seek:.3f} s = "
            f"{seek / seq:.3f}x, with the attempts {walk:.3f} s = {walk / seq:.3f}x"
        )


def wall_2core(rows: list[dict[str, Any]], variant: str) -> tuple[float, float]:
    """One wheel on 2 cores, members in turn: (today's sequential, seek plan) seconds. The seek
    plan runs the head on one core and search + tail passes on the other per member."""
    seq = seek = 0.0
    for m in rows:
        t = m.get("t")
        if t is None:
            continue
        seq += t["seq_isal"]
        if "bit" not in m or m.get("fallback"):
            seek += t["seq_isal"]
            continue
        sfx = variant[-1]
        search = m["search_s"] + m["trial_s"] + m["wasted_decode_s"]
        if variant.startswith("anchor") and m.get("anchor_hit"):
            tail = 2 * t[f"anchor_{sfx}"]
        else:
            tail = t[f"tail_{sfx}"] + t[f"need_{sfx}"]
        total = t["head_isal"] + search + tail
        seek += max(total / 2, t["head_isal"], search + tail / 2)
    return seq, seek


def report(rows: list[dict[str, Any]], tot: dict[str, Any]) -> None:
    f = tot["seq_isal_s"]
    print(f"\n{tot['members']} deflated ELF members, {_mb(tot['elf_bytes'])} of ELF")
    print(f"seeks taken: {tot['seeks']}; fallbacks: {json.dumps(tot['fallbacks'])}")
    print(
        f"inflated: today {_mb(tot['seq_bytes'])}; seek plan, one pass "
        f"{_mb(tot['plan_bytes'])} ({tot['plan_bytes'] / tot['seq_bytes']:.3f}x), with the "
        f"second window to the needed end {_mb(tot['plan_bytes_2pass'])} "
        f"({tot['plan_bytes_2pass'] / tot['seq_bytes']:.3f}x); anchor variant "
        f"{_mb(tot['anchor_bytes'])} ({tot['anchor_bytes'] / tot['seq_bytes']:.3f}x)"
    )
    print(
        f"  of the seeks: head {_mb(tot['head_bytes'])}, member tails after the target "
        f"{_mb(tot['tail_after_dyn'])}, boundary-to-target gaps "
        f"{_mb(tot['plan_gap'])} (oracle's {_mb(tot['oracle_gap'])})"
    )
    print(
        f"search: {tot['search_tested']:,} bit positions tried, {tot['search_s']:.3f} s; "
        f"trial + wasted decodes {tot['trial_s']:.3f} s; false positives {tot['false_pos']}, "
        f"overshoots {tot['overshoots']}, window retries {tot['dep_retries']}, "
        f"undetected false boundaries {tot['undetected']} (stored-block aliases {tot['aliases']})"
    )
    print(
        f"window-dependent: {tot['dep_bytes']:,} of {tot['stretch_bytes']:,} stretch bytes; "
        f"PT_DYNAMIC dependent in {tot['dep_dyn_members']} members; section headers dependent "
        f"in {tot['dep_shdr_members']} of {tot['shdr_members']}"
    )
    print(
        f"correctness: window-independent bytes differing from sequential: "
        f"{tot['wrong_bytes']}; ISA-L mismatches {tot['isal_mismatch']}; anchor's first match "
        f"right in {tot['anchor_unique']} of {tot['anchor_members']} "
        f"({tot['anchor_cands']} matches in all)"
    )
    print(f"CPU: libisal streamed floor {f:.3f} s")
    for v, s in tot["cpu"].items():
        print(f"  seek plan {v:9s} {s:.3f} s = {s / f:.3f}x")
    print(
        f"remote (ELF members' compressed bytes): today {_mb(tot['seq_remote'])}; seek plan "
        f"{_mb(tot['plan_remote'])} ({tot['plan_remote'] / tot['seq_remote']:.3f}x); anchor "
        f"{_mb(tot['anchor_remote'])} ({tot['anchor_remote'] / tot['seq_remote']:.3f}x)"
    )
    wheels: dict[str, list[dict[str, Any]]] = {}
    for m in rows:
        wheels.setdefault(m["wheel"], []).append(m)
    big = sorted(wheels, key=lambda w: -sum(m["size"] for m in wheels[w]))[:3]
    for w in big:
        parts = []
        for v in ("end_i", "anchor_i"):
            seq, seek = wall_2core(wheels[w], v)
            parts.append(f"{v} {seek:.3f} s = {seek / seq:.3f}x")
        print(f"wall, 2 cores, {w[:40]}: today {seq:.3f} s; " + "; ".join(parts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--only", default=None, help="wheels whose file name contains this")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threshold", type=int, default=1 << 20, help="seek members >= this size")
    ap.add_argument(
        "--start",
        choices=("end", "interp"),
        default="end",
        help="search from the member's end, or from an interpolated position",
    )
    ap.add_argument("--report", type=Path, default=None, help="summarise a --json file again")
    ap.add_argument("--json", type=Path, default=None, help="write per-member rows here")
    args = ap.parse_args(argv)
    cache: Path = args.cache or default_cache()
    isal = load_libisal(cache / "build")
    if isal is None:
        sys.exit("libisal floor unavailable (needs libisal-dev and a C compiler)")
    p = Probe(_load(cache / "build"), isal)
    rows: list[dict[str, Any]] = []
    if args.report:  # summarise rows an earlier run wrote
        saved = json.loads(args.report.read_text())
        rows = saved["rows"] if isinstance(saved, dict) else saved
    for _entry, path in [] if args.report else corpus_paths(cache, args.only):
        t0 = time.perf_counter()
        got = probe_wheel(p, path, args.repeats, args.threshold, args.start)
        rows += got
        print(
            f"  {path.name[:60]}: {len(got)} members ({time.perf_counter() - t0:.1f} s)", flush=True
        )
        if args.json:
            args.json.write_text(json.dumps(rows))
    tot = summarise(rows)
    report(rows, tot)
    reach = summarise_reach(rows)
    report_reach(reach)
    tot["reach"] = {k: v for k, v in reach.items() if k != "wheels"}
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "totals": tot}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
