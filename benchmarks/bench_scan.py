"""Mirror-scale scan benchmark: scheduler + store against the work itself.

    python benchmarks/make_mirror.py /tmp/mirror --wheels 5000
    python benchmarks/bench_scan.py /tmp/mirror [--rss 5000,50000] [--json out.json]

Measures, in one run, on the same wheels:

1. wheels/s and MB/s of ``wheelscan scan`` at 1 and 2 workers (member cache off, fresh store),
   against 1 and 2 processes doing nothing but inflating the same ELF members fully with the
   scanner's inflater (the floor: scanning inflates most of each binary to reach PT_DYNAMIC);
2. per-wheel overhead of scheduler + store: ``scan --jobs 1`` against the same scan + judge +
   JSON encoding done in-process in a plain loop;
3. the member cache: ``scan --jobs 2`` with the cache, cold (empty store) and warm (a
   ``--rescan`` that finds the members of an earlier run), against no cache;
4. peak RSS of the main process for N1 vs N2 wheels (a list file; N2 may exceed the mirror:
   the extra entries are hard links, so disk stays small).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from multiprocessing import get_context
from pathlib import Path
from typing import Any


def wheels_of(mirror: Path) -> list[Path]:
    return sorted((mirror / "web" / "packages").rglob("*.whl"))


def _inflater_module() -> Any:
    """The deflate implementation the scanner uses by default (``inflate.inflater``): the
    floor must do *the same* inflating. zlib and ISA-L scale differently over the two
    hyperthreads of this VM (zlib is latency-bound and pairs well; ISA-L much less), so a zlib
    floor would measure a speed-up the scanner's inflater cannot have."""
    import importlib

    from wheelscan._native import inflate

    # a C API as the scanner calls it (auto: ISA-L's, as for most members)
    c_floor_of = {"libisal": "libisal", "auto": "libisal", "libz-ng": "libzng"}
    if inflate.inflater in c_floor_of:
        from c_floor import load_libisal, load_libzng
        from fetch_corpus import default_cache

        name = c_floor_of[inflate.inflater]
        load = load_libisal if name == "libisal" else load_libzng
        lib = load(default_cache() / "build")
        if lib is None:
            sys.exit(f"the scanner uses {inflate.inflater} but {name}_floor.c does not "
                     f"build or load here")  # fmt: skip
        return lib
    return importlib.import_module(
        {"isal": "isal.isal_zlib", "zlib-ng": "zlib_ng.zlib_ng", "zlib": "zlib"}[inflate.inflater]
    )


def _inflate_all(paths: list[str]) -> int:
    from wheelscan.read.members import may_be_binary

    inflater = _inflater_module()

    n = 0
    for p in paths:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                if info.compress_type != zipfile.ZIP_DEFLATED:
                    continue
                if not may_be_binary(info.filename, info.file_size):
                    continue
                with open(p, "rb") as f:
                    f.seek(info.header_offset + 26)
                    nlen, xlen = (
                        int.from_bytes(f.read(2), "little"),
                        int.from_bytes(f.read(2), "little"),
                    )
                    f.seek(info.header_offset + 30 + nlen + xlen)
                    comp = f.read(info.compress_size)
                if hasattr(inflater, "inflate_all"):  # c_floor
                    n += inflater.inflate_all(comp)
                else:
                    n += len(inflater.decompressobj(-15).decompress(comp))
    return n


def inflate_floor(paths: list[Path], procs: int) -> float:
    """Seconds for ``procs`` processes to inflate every candidate member of ``paths`` fully,
    with the scanner's inflater."""
    chunks = [[str(p) for p in paths[i::procs]] for i in range(procs)]
    with get_context("spawn").Pool(procs) as pool:
        pool.map(_inflate_all, [[str(paths[0])]] * procs)  # warm imports
        t0 = time.perf_counter()
        pool.map(_inflate_all, chunks)
        return time.perf_counter() - t0


def timed_scan(
    sources: list[str], db: Path, jobs: int, *, member_cache: bool, rescan: bool = False
) -> tuple[float, Any]:
    from wheelscan.cli.scan import ScanTarget, Scheduling, run_scan
    from wheelscan.mirror.pool import ScanConfig

    t0 = time.perf_counter()
    s = run_scan(ScanTarget(sources, str(db), rescan=rescan),
                 config=ScanConfig(member_cache=member_cache),
                 scheduling=Scheduling(jobs=jobs))  # fmt: skip
    return time.perf_counter() - t0, s


def in_process(paths: list[Path]) -> float:
    """The worker's own work (scan, judge, JSON) in a plain loop: no pool, no store."""
    from wheelscan.mirror.pool import ScanConfig, Worker

    w = Worker(ScanConfig(member_cache=False))
    w.scan(str(paths[0]), paths[0].name)  # warm imports and policy
    t0 = time.perf_counter()
    for p in paths:
        w.scan(str(p), p.name)
    return time.perf_counter() - t0


def rss_run(listfile: Path, db: Path) -> tuple[int, float, int]:
    """(peak RSS KiB of the main process, seconds, wheels) for a scan of ``listfile``."""
    code = (
        "import resource, sys, time\n"
        "from wheelscan.cli.scan import ScanTarget, Scheduling, run_scan\n"
        "t = time.perf_counter()\n"
        f"s = run_scan(ScanTarget([{str(listfile)!r}], {str(db)!r}), "
        "scheduling=Scheduling(jobs=2))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t,"
        " s.scanned + s.unchanged)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), float(out[1]), int(out[2])


def make_list(paths: list[Path], n: int, work: Path) -> Path:
    """A list file of ``n`` distinct wheel paths: the mirror's, then hard links to them."""
    links = work / f"links{n}"
    listfile = work / f"list{n}.txt"
    with open(listfile, "w") as f:
        for i in range(n):
            src = paths[i % len(paths)]
            if i < len(paths):
                f.write(f"{src}\n")
                continue
            d = links / f"{i // 1000:03d}"
            d.mkdir(parents=True, exist_ok=True)
            dst = d / f"{i}-{src.name}"
            if not dst.exists():
                os.link(src, dst)
            f.write(f"{dst}\n")
    return listfile


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mirror", type=Path)
    ap.add_argument("--rss", default="5000,50000", help="N1,N2 wheels for the RSS comparison")
    ap.add_argument("--skip", default="", help="comma list of: speed,overhead,cache,rss")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved repeats (minimum kept)")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    paths = wheels_of(args.mirror)
    mb = sum(p.stat().st_size for p in paths) / 1e6
    n = len(paths)
    res: dict[str, Any] = {"wheels": n, "MB": round(mb, 1), "cpus": os.cpu_count(),
                           "loadavg_start": os.getloadavg()}  # fmt: skip
    print(f"{n} wheels, {mb:.0f} MB, load average {os.getloadavg()}", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="wheelscan-bench-"))
    src = [str(args.mirror)]

    def report(key: str, value: Any) -> None:
        res[key] = value
        print(f"{key}: {value}", file=sys.stderr)

    if "speed" not in skip:
        # interleaved repeats, minimum of each: a busy machine slows whatever runs at the time
        runs: dict[str, list[float]] = {"f1": [], "f2": [], "s1": [], "s2": []}
        for r in range(args.repeats):
            runs["f1"].append(inflate_floor(paths, 1))
            runs["f2"].append(inflate_floor(paths, 2))
            runs["s1"].append(timed_scan(src, work / f"j1-{r}.sqlite", 1, member_cache=False)[0])
            runs["s2"].append(timed_scan(src, work / f"j2-{r}.sqlite", 2, member_cache=False)[0])
        res["speed_runs_s"] = {k: [round(x, 2) for x in v] for k, v in runs.items()}
        f1, f2, s1, s2 = (min(runs[k]) for k in ("f1", "f2", "s1", "s2"))
        report("inflate_only_s", {"1": round(f1, 2), "2": round(f2, 2)})
        report("scan_s", {"1": round(s1, 2), "2": round(s2, 2)})
        report("scan_wheels_per_s", {"1": round(n / s1), "2": round(n / s2)})
        report("scan_MB_per_s", {"1": round(mb / s1, 1), "2": round(mb / s2, 1)})
        report("speedup_scan_1_to_2", round(s1 / s2, 3))
        report("speedup_inflate_1_to_2", round(f1 / f2, 3))
        report("speedup_ratio", round((s1 / s2) / (f1 / f2), 3))
    if "overhead" not in skip:
        oruns: dict[str, list[float]] = {"in": [], "pool": []}
        for r in range(args.repeats):
            oruns["in"].append(in_process(paths))
            oruns["pool"].append(timed_scan(src, work / f"o1-{r}.sqlite", 1, member_cache=False)[0])
        res["overhead_runs_s"] = {k: [round(x, 2) for x in v] for k, v in oruns.items()}
        t_in, t_pool = min(oruns["in"]), min(oruns["pool"])
        report("in_process_s", round(t_in, 2))
        report("pool_store_jobs1_s", round(t_pool, 2))
        report("overhead_per_wheel_ms", round((t_pool - t_in) / n * 1e3, 3))
        report("overhead_pct", round((t_pool / t_in - 1) * 100, 1))
    if "cache" not in skip:
        cruns: dict[str, list[float]] = {"off": [], "cold": [], "warm": []}
        for r in range(args.repeats):
            db = work / f"c1-{r}.sqlite"
            cruns["off"].append(timed_scan(src, work / f"c0-{r}.sqlite", 2, member_cache=False)[0])
            cruns["cold"].append(timed_scan(src, db, 2, member_cache=True)[0])
            cruns["warm"].append(timed_scan(src, db, 2, member_cache=True, rescan=True)[0])
        res["cache_runs_s"] = {k: [round(x, 2) for x in v] for k, v in cruns.items()}
        off, cold, warm = (min(cruns[k]) for k in ("off", "cold", "warm"))
        report("cache_s", {"off": round(off, 2), "cold": round(cold, 2), "warm": round(warm, 2)})
        report("cache_speedup", {"cold": round(off / cold, 2), "warm": round(off / warm, 2)})
    if "rss" not in skip:
        n1, n2 = (int(x) for x in args.rss.split(","))
        out = {}
        for k in (n1, n2):
            rss, secs, count = rss_run(make_list(paths, k, work), work / f"rss{k}.sqlite")
            out[str(k)] = {"rss_MiB": round(rss / 1024, 1), "s": round(secs, 1), "rows": count}
        report("main_peak_rss", out)
        report("rss_growth_pct",
               round((out[str(n2)]["rss_MiB"] / out[str(n1)]["rss_MiB"] - 1) * 100, 1))  # fmt: skip
    res["loadavg_end"] = os.getloadavg()
    res["self_maxrss_MiB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    print(json.dumps(res), file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
