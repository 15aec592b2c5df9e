"""Throughput of wheelscan on the pinned real-wheel corpus, against the inflate floor.

    python benchmarks/fetch_corpus.py            # once: download + verify the corpus
    python benchmarks/run.py [--cache DIR] [--json OUT] [--repeats N]

Measures, in one run, on the same page-cached wheels:
- the inflate floor (benchmarks/floor.py, no wheelscan code): each ELF member's compressed
  bytes inflated up to its needed prefix by zlib, zlib-ng and ISA-L alone;
- ``wheelscan.scan_wheel(path, engine="native")``, once per WHEELSCAN_INFLATER value, each in
  its own subprocess, and ``engine="lief"``;
- bytes the scanner inflated per member vs the needed prefix (+ one chunk allowed);
- small wheels (< 100 KB): one in-process scan vs ``zipfile.ZipFile(path).infolist()``, timed
  side by side in rounds of a random order (``--small-only`` runs just that: 200 rounds of
  10 calls, whatever ``--repeats`` says).
Timings are the minimum over repeats, interleaved (each round times every floor and every
scan configuration once); wall (perf_counter) and CPU (os.times user+sys).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import random
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fetch_corpus import default_cache, is_valid, load_corpus  # noqa: E402
from floor import INPUT_SLACK, analyse_wheel  # noqa: E402

FLOOR_CACHE_VERSION = 1
SMALL_WHEEL = 100_000
INFLATER_VALUES = ("zlib", "zlib-ng", "isal", "libisal", "libz-ng")  # "native" is the default
CHUNK_ALLOWANCE = 256 << 10  # wheelscan.limits.Limits.chunk_size, the inflate granularity
STREAM_CHUNK = 256 << 10  # output per call when streaming
STREAM_INPUT = 16 << 10  # compressed input per call when streaming

Timing = dict[str, float]


def _inflaters() -> dict[str, Any]:
    mods: dict[str, Any] = {"zlib": zlib}
    try:
        from zlib_ng import zlib_ng

        mods["zlib-ng"] = zlib_ng
    except ImportError:
        pass
    try:
        from isal import isal_zlib

        mods["isal"] = isal_zlib
    except ImportError:
        pass
    from c_floor import load_libisal, load_libzng

    for name, load in (("libisal", load_libisal), ("libz-ng", load_libzng)):
        lib = load(default_cache() / "build")
        if lib is not None:
            mods[name] = lib
    return mods


def _cpu() -> float:
    # os.times() user + system, but at clock_gettime resolution (os.times ticks are 10 ms)
    return time.process_time()


def best_of(fn: Callable[[], object], repeats: int) -> Timing:
    """Minimum wall and minimum CPU seconds of ``fn()`` over ``repeats`` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        c0, w0 = _cpu(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(_cpu() - c0)
    return {"wall": min(walls), "cpu": min(cpus)}


# -- corpus and floor data ------------------------------------------------------------------


def corpus_paths(cache: Path, only: str | None) -> list[tuple[dict[str, Any], Path]]:
    out = []
    for entry in load_corpus():
        if only and only not in entry["filename"]:
            continue
        path = cache / entry["filename"]
        if not path.is_file() or path.stat().st_size != entry["size"]:
            # PyPI's mirrors here may no longer offer a pinned file: say so, measure the rest
            print(f"skipped: {path.name} is not cached (python benchmarks/fetch_corpus.py)",
                  file=sys.stderr)
            continue
        out.append((entry, path))
    return out


def floor_data(cache: Path, wheels: list[tuple[dict[str, Any], Path]]) -> dict[str, Any]:
    """Per wheel: ELF members, compressed ranges and needed prefixes (cached as JSON)."""
    cache_file = cache / f"floor-v{FLOOR_CACHE_VERSION}.json"
    data: dict[str, Any] = {}
    if cache_file.is_file():
        data = json.loads(cache_file.read_text())
    changed = False
    for entry, path in wheels:
        known = data.get(entry["filename"])
        if known is not None and known.get("sha256") == entry["sha256"]:
            continue
        if not is_valid(path, entry):
            sys.exit(f"{path}: sha256 does not match the pin; re-run fetch_corpus.py")
        t0 = time.perf_counter()
        data[entry["filename"]] = {"sha256": entry["sha256"], **analyse_wheel(path)}
        print(f"  floor data {entry['filename']} ({time.perf_counter() - t0:.1f} s)", flush=True)
        changed = True
    if changed:
        cache_file.write_text(json.dumps(data))
    return data


def floor_inputs(
    wheels: list[tuple[dict[str, Any], Path]], fdata: dict[str, Any]
) -> list[tuple[bytes, int]]:
    """(compressed bytes needed, prefix) for every deflated ELF member, loaded outside timing."""
    items = []
    for entry, path in wheels:
        raw = path.read_bytes()
        for m in fdata[entry["filename"]]["members"]:
            if m.get("method") != zipfile.ZIP_DEFLATED:
                continue
            start = m["data_offset"]
            stop = min(start + m["input_needed"] + INPUT_SLACK, start + m["compressed_size"])
            items.append((raw[start:stop], m["prefix"]))
    return items


def _inflate_once(mod: Any, comp: bytes, prefix: int) -> int:
    return len(mod.decompressobj(-15).decompress(comp, prefix))


def _inflate_all(mod: Any, items: list[tuple[bytes, int]]) -> None:
    for comp, prefix in items:
        _inflate_once(mod, comp, prefix)


def _inflate_streamed(mod: Any, comp: bytes, prefix: int) -> int:
    """Inflate in STREAM_CHUNK outputs from STREAM_INPUT inputs, dropping each output."""
    if hasattr(mod, "stream"):  # a C API through ctypes: same chunking, no input copies
        return int(mod.stream(comp, prefix, STREAM_CHUNK, STREAM_INPUT))
    d = mod.decompressobj(-15)
    view = memoryview(comp)
    produced = pos = 0
    while produced < prefix:
        tail = d.unconsumed_tail
        if tail:
            data = tail
        elif pos < len(view):
            data, pos = view[pos : pos + STREAM_INPUT], pos + STREAM_INPUT
        else:
            data = b""  # isal may still hold output it inflated earlier
        n = len(d.decompress(data, min(STREAM_CHUNK, prefix - produced)))
        if not n and not data:
            break
        produced += n
    return produced


def time_floor(items: list[tuple[bytes, int]], repeats: int, names: list[str]) -> dict[str, Any]:
    """Each inflater alone, one call per member up to its prefix, and streamed in chunks."""
    results: dict[str, Any] = {}
    for name, mod in _inflaters().items():
        if name not in names:
            continue
        for mode, fn in (("", _inflate_once), (" streamed", _inflate_streamed)):
            short: list[int] = []

            def run(mod: Any = mod, fn: Any = fn, short: list[int] = short) -> None:
                for comp, prefix in items:
                    if fn(mod, comp, prefix) != prefix:
                        short.append(prefix)

            t: dict[str, Any] = dict(best_of(run, repeats))
            if short:
                t["error"] = f"{len(short)} member inflations fell short of the prefix"
            results[name + mode] = t
    return results


# -- scanning ----------------------------------------------------------------------------------


def scan_worker(paths: list[str], engine: str, repeats: int) -> dict[str, Any]:
    """Time scan_wheel over all paths (runs inside the subprocess for one inflater)."""
    import wheelscan

    facts = [wheelscan.scan_wheel(p, engine=engine) for p in paths]  # warm-up, and the facts
    per_wheel = [float("inf")] * len(paths)
    walls, cpus = [], []
    for _ in range(repeats):
        c0, w0 = _cpu(), time.perf_counter()
        for i, p in enumerate(paths):
            t0 = time.perf_counter()
            wheelscan.scan_wheel(p, engine=engine)
            per_wheel[i] = min(per_wheel[i], time.perf_counter() - t0)
        walls.append(time.perf_counter() - w0)
        cpus.append(_cpu() - c0)
    return {
        "total": {"wall": min(walls), "cpu": min(cpus)},
        "per_wheel_wall": per_wheel,
        "members": [[dataclasses.asdict(m) for m in f.members] for f in facts],
        "errors": [[f.error] + [f"{e.member}: {e.message}" for e in f.errors] for f in facts],
        "elf_members": [[e.member for e in f.elfs] for f in facts],
    }


def run_scan(paths: list[Path], engine: str, repeats: int, inflater: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("WHEELSCAN_INFLATER", None)
    if inflater:
        env["WHEELSCAN_INFLATER"] = inflater
    args = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        engine,
        "--repeats",
        str(repeats),
        *map(str, paths),
    ]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _merge_min(acc: dict[str, Any], new: dict[str, Any]) -> None:
    """Per configuration, the minimum wall and CPU seen so far (errors are kept)."""
    for name, t in new.items():
        old = acc.get(name)
        if old is None or "error" in t:
            acc[name] = dict(t)
        elif "error" not in old:
            old["wall"] = min(old["wall"], t["wall"])
            old["cpu"] = min(old["cpu"], t["cpu"])


def _merge_scan(acc: dict[str, Any], label: str, new: dict[str, Any]) -> None:
    """One more round of a scan configuration: minimum totals and per-wheel walls."""
    old = acc.get(label)
    if old is None or "error" in new:
        acc[label] = new
        return
    if "error" in old:
        return
    for k in ("wall", "cpu"):
        old["total"][k] = min(old["total"][k], new["total"][k])
    old["per_wheel_wall"] = [
        min(a, b) for a, b in zip(old["per_wheel_wall"], new["per_wheel_wall"], strict=True)
    ]


def check_inflated(
    wheels: list[tuple[dict[str, Any], Path]], fdata: dict[str, Any], scan: dict[str, Any]
) -> dict[str, Any]:
    """Scanner's inflated bytes vs the needed prefix of each ELF member (+ one chunk)."""
    inflated_elf = needed = elf_bytes = inflated_other = 0
    violations, unscanned = [], []
    for (entry, _), members in zip(wheels, scan["members"], strict=True):
        stats = {m["member"]: m for m in members}
        for m in fdata[entry["filename"]]["members"]:
            if "prefix" not in m:
                continue
            elf_bytes += m["size"]
            needed += m["prefix"]
            s = stats.pop(m["name"], None)
            if s is None:
                unscanned.append(f"{entry['filename']}:{m['name']}")
                continue
            inflated_elf += s["inflated"]
            if s["inflated"] > m["prefix"] + CHUNK_ALLOWANCE:
                violations.append(
                    {
                        "wheel": entry["filename"],
                        "member": m["name"],
                        "size": m["size"],
                        "prefix": m["prefix"],
                        "inflated": s["inflated"],
                        "excess": s["inflated"] - m["prefix"],
                    }
                )
        inflated_other += sum(s["inflated"] for s in stats.values())
    return {
        "elf_bytes": elf_bytes,
        "needed_prefix_bytes": needed,
        "inflated_elf_bytes": inflated_elf,
        "inflated_other_bytes": inflated_other,
        "violations": violations,
        "elf_members_not_in_stats": unscanned,
    }


def small_wheels(
    wheels: list[tuple[dict[str, Any], Path]], fdata: dict[str, Any], rounds: int, loops: int
) -> list[dict[str, Any]]:
    """Per small wheel: microseconds per call, and ratios to zipfile's listing.

    This VM's speed changes in phases of seconds, so timing all repeats of one function and
    then all of the next compares different phases. Each round times ``loops`` calls of every
    function back to back, in a new random order each round; per-call figures are
    the minimum over rounds, ratios the median over rounds of the two functions' times in
    the same round. ``floor_us`` is the fastest inflater alone inflating the wheel's ELF
    prefixes: no scanner that reads PT_DYNAMIC can beat it, whatever zipfile's listing costs.
    """
    import wheelscan

    def listing(p: Path) -> None:
        with zipfile.ZipFile(p) as zf:
            zf.infolist()

    out = []
    for entry, p in wheels:
        if entry["size"] >= SMALL_WHEEL:
            continue
        items = floor_inputs([(entry, p)], fdata)
        fns: dict[str, Callable[[], object]] = {
            "scan": functools.partial(wheelscan.scan_wheel, p),
            "zipfile": functools.partial(listing, p),
        }
        for name, mod in _inflaters().items():
            fns[f"floor {name}"] = functools.partial(_inflate_all, mod, items)
        names = list(fns)
        times: dict[str, list[dict[str, float]]] = {k: [] for k in names}
        for fn in fns.values():
            fn()
        order = random.Random(0)
        for _ in range(rounds):
            # a new random order each round: a function timed right after another runs with
            # the caches that one left (the first one after the listing runs slower), so no
            # function should always follow the same one
            order.shuffle(names)
            for k in names:
                fn = fns[k]
                c0, w0 = _cpu(), time.perf_counter()
                for _ in range(loops):
                    fn()
                times[k].append(
                    {"wall": (time.perf_counter() - w0) / loops * 1e6,
                     "cpu": (_cpu() - c0) / loops * 1e6}
                )  # fmt: skip
        floors = {
            k.removeprefix("floor "): _min_per_call(times[k])
            for k in names
            if k.startswith("floor ")
        }
        fastest = min(floors, key=lambda k: floors[k]["cpu"])
        out.append(
            {
                "wheel": p.name,
                "size": entry["size"],
                "scan_us": _min_per_call(times["scan"]),
                "zipfile_us": _min_per_call(times["zipfile"]),
                "floor_us": floors[fastest],
                "floor_fastest": fastest,
                "floor_by_inflater_us": floors,
                "scan_over_zipfile": _paired(times["scan"], times["zipfile"]),
                "floor_over_zipfile": _paired(times[f"floor {fastest}"], times["zipfile"]),
                "rounds": rounds,
                "loops": loops,
            }
        )
    return out


# -- report ------------------------------------------------------------------------------------


def _min_per_call(rounds: list[dict[str, float]]) -> Timing:
    return {t: min(x[t] for x in rounds) for t in ("wall", "cpu")}


def _paired(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    """Median over rounds of a's CPU time over b's in the same round."""
    import statistics

    ratios = [x["cpu"] / y["cpu"] for x, y in zip(a, b, strict=True) if y["cpu"]]
    return statistics.median(ratios) if ratios else float("nan")


def _print_small(rows: list[dict[str, Any]]) -> None:
    if rows:
        print("small wheels, CPU us per call (min over rounds); ratios to zipfile's listing "
              "(median over rounds of side-by-side times); target: scan/zipfile <= 1")  # fmt: skip
    for s in rows:
        print(
            f"  {s['wheel'][:44]:<44} scan {s['scan_us']['cpu']:6.1f}  zipfile "
            f"{s['zipfile_us']['cpu']:6.1f}  floor {s['floor_us']['cpu']:6.1f} "
            f"({s['floor_fastest']})  scan/zipfile {s['scan_over_zipfile']:.3f}  "
            f"floor/zipfile {s['floor_over_zipfile']:.3f}"
        )


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")  # os.times() ticks are 10 ms: tiny runs read 0


def _row(label: str, t: Timing, n: int, mb: float, floor: Timing) -> str:
    wall, cpu = t["wall"], t["cpu"]
    return (
        f"{label:<26}{wall:9.3f}{cpu:9.2f}{n / wall:10.1f}{mb / wall:9.1f}"
        f"{_ratio(wall, floor['wall']):8.3f}{_ratio(cpu, floor['cpu']):8.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="wheelscan throughput vs the inflate floor")
    ap.add_argument("--cache", type=Path, default=None, help="corpus cache directory")
    ap.add_argument("--json", type=Path, default=None, help="write all results here")
    ap.add_argument("--repeats", type=int, default=3, help="repeats (minimum is reported)")
    ap.add_argument("--lief-repeats", type=int, default=1)
    ap.add_argument("--only", default=None, help="only wheels whose file name contains this")
    ap.add_argument("--no-lief", action="store_true", help="skip the (slow) lief engine")
    ap.add_argument(
        "--small-only", action="store_true", help="only the small-wheel comparison (< 100 KB)"
    )
    ap.add_argument(
        "--inflaters",
        default=",".join(INFLATER_VALUES),
        help="comma-separated inflaters to time (floor and WHEELSCAN_INFLATER)",
    )
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        json.dump(scan_worker(args.paths, args.worker, args.repeats), sys.stdout)
        return 0

    cache: Path = args.cache or default_cache()
    wheels = corpus_paths(cache, args.only)
    paths = [p for _, p in wheels]
    total_mb = sum(e["size"] for e, _ in wheels) / 1e6
    for p in paths:  # warm the page cache: timings below exclude disk I/O
        p.read_bytes()
    fdata = floor_data(cache, wheels)
    if args.small_only:
        rows = small_wheels(wheels, fdata, rounds=200, loops=10)
        _print_small(rows)
        if args.json:
            args.json.write_text(json.dumps({"small_wheels": rows}, indent=1))
        return 0
    items = floor_inputs(wheels, fdata)
    res: dict[str, Any] = {
        "machine": {
            "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "zlib": zlib.ZLIB_RUNTIME_VERSION,
        },
        "corpus": {"wheels": len(wheels), "bytes": int(total_mb * 1e6)},
        "repeats": args.repeats,
        "loadavg_start": os.getloadavg(),
    }
    inflaters = [x for x in args.inflaters.split(",") if x]
    print(
        f"corpus: {len(wheels)} wheels, {total_mb:.1f} MB, {len(items)} deflated ELF members",
        flush=True,
    )
    # Repeats are interleaved (every floor and every scan once per round, minimum per
    # configuration over rounds): on a shared machine a burst of other load then hits one
    # round of every configuration instead of all repeats of one.
    from wheelscan._native import inflate

    # a scan config per inflater this scanner offers (libisal: when built for it and loaded)
    configs = [("native", None)] + [(f"native {v}", v) for v in inflaters if v in inflate.INFLATERS]
    res["floor"] = {}
    res["scans"] = {}
    for r in range(args.repeats):
        print(f"  round {r + 1}/{args.repeats}: floors, then scans", flush=True)
        _merge_min(res["floor"], time_floor(items, 1, inflaters))
        for label, inflater in configs:
            _merge_scan(res["scans"], label, run_scan(paths, "native", 1, inflater))
    floor_ok = {k: v for k, v in res["floor"].items() if "error" not in v}
    # the fastest floor, by CPU (robust to other load on the machine) and by wall
    fastest = min(floor_ok, key=lambda k: floor_ok[k]["cpu"])
    fastest_wall = min(floor_ok, key=lambda k: floor_ok[k]["wall"])
    floor = {"wall": floor_ok[fastest_wall]["wall"], "cpu": floor_ok[fastest]["cpu"]}
    res["floor_fastest"] = {"cpu": fastest, "wall": fastest_wall, **floor}

    if not args.no_lief:
        print("  timing lief ...", flush=True)
        res["scans"]["lief"] = run_scan(paths, "lief", args.lief_repeats, None)
    native = res["scans"]["native"]
    if "error" not in native:
        res["inflate_check"] = check_inflated(wheels, fdata, native)
        res["per_wheel"] = [
            {
                "wheel": e["filename"],
                "native_wall": w,
                "elf_prefix_bytes": sum(
                    m.get("prefix", 0) for m in fdata[e["filename"]]["members"]
                ),
            }
            for (e, _), w in zip(wheels, native["per_wheel_wall"], strict=True)
        ]
        res["small_wheels"] = small_wheels(wheels, fdata, rounds=200, loops=10)
    res["max_versions"] = {e["filename"]: fdata[e["filename"]]["max_versions"] for e, _ in wheels}
    res["loadavg_end"] = os.getloadavg()

    print()
    print(
        f"load average at start {res['loadavg_start'][0]:.2f}, "
        f"at end {res['loadavg_end'][0]:.2f}; minimum of {args.repeats} repeats"
    )
    print(
        f"{'':<26}{'wall s':>9}{'cpu s':>9}{'wheels/s':>10}{'MB/s':>9}{'w/floor':>8}{'c/floor':>8}"
    )
    for name, t in res["floor"].items():
        print(
            _row(f"floor {name}", t, len(wheels), total_mb, floor)
            + (f"  {t['error']}" if "error" in t else "")
        )
    for label, scan in res["scans"].items():
        if "error" in scan:
            print(f"{label:<26}ERROR {scan['error']}")
        else:
            print(_row(label, scan["total"], len(wheels), total_mb, floor))
    lief = res["scans"].get("lief", {})
    if "total" in native and "total" in lief:
        ratio = native["total"]["wall"] / lief["total"]["wall"]
        res["native_over_lief"] = ratio
        print(f"native/lief wall ratio: {ratio:.4f} (native is {1 / ratio:.1f}x faster)")
    if "total" in native:
        res["native_over_floor"] = {
            k: _ratio(native["total"][k], floor[k]) for k in ("wall", "cpu")
        }
        print(
            f"native / fastest floor: wall {res['native_over_floor']['wall']:.3f} "
            f"(floor {fastest_wall}), cpu {res['native_over_floor']['cpu']:.3f} "
            f"(floor {fastest}); target <= 1.15"
        )
    chk = res.get("inflate_check")
    if chk:
        print(
            f"ELF bytes {chk['elf_bytes'] / 1e6:.1f} MB, needed prefix "
            f"{chk['needed_prefix_bytes'] / 1e6:.1f} MB "
            f"({chk['needed_prefix_bytes'] / chk['elf_bytes']:.1%}), inflated by native "
            f"{chk['inflated_elf_bytes'] / 1e6:.1f} MB "
            f"({chk['inflated_elf_bytes'] / chk['elf_bytes']:.1%}) "
            f"+ {chk['inflated_other_bytes'] / 1e6:.2f} MB of non-ELF peeks"
        )
        print(
            f"members inflated past prefix + {CHUNK_ALLOWANCE >> 10} KB: {len(chk['violations'])}"
        )
        for v in chk["violations"][:20]:
            print(
                f"  VIOLATION {v['wheel']}:{v['member']} prefix {v['prefix']} "
                f"inflated {v['inflated']} (+{v['excess']})"
            )
        if chk["elf_members_not_in_stats"]:
            print(
                f"ELF members without MemberStats: {len(chk['elf_members_not_in_stats'])}, "
                f"e.g. {chk['elf_members_not_in_stats'][:3]}"
            )
    _print_small(res.get("small_wheels", []))
    errs = [
        (e["filename"], x)
        for (e, _), x in zip(wheels, native.get("errors", []), strict=False)
        if any(x)
    ]
    for name, x in errs:
        print(f"native errors in {name}: {[y for y in x if y][:3]}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
        print(f"results -> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
