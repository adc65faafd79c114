"""Replay throughput: symbol-ticks per second from a Parquet tick file, and peak RSS.

Makes a 24 h x top-10 file at 1 s from the synthetic market (`python -m src.market.export`),
then, in N fresh processes, builds the replay market (open, validate every row, SHA-256 of
the file) and streams all its chunks, as a run does before the engine sees them. Prints the
median figures and the targets (>= 2 M symbol-ticks/s, peak RSS <= 300 MB). `--e2e` also
times a whole `python -m src.run` over the file (engine, KPIs, record) for context.

    python benchmarks/bench_replay.py [--runs 3] [--hours 24] [--e2e]
    python benchmarks/bench_replay.py --quick     # 6 minutes of ticks, one process: a check that it works (CI)
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RATE, TARGET_RSS_MB = 2e6, 300.0


def child(path: str, n_ticks: int, top_n: int) -> None:
    """One measurement, in this (fresh) process; prints JSON."""
    t0 = time.perf_counter()
    import pyarrow.parquet  # noqa: F401 - timed apart: a replay run pays it once

    t_import = time.perf_counter() - t0
    sys.path.insert(0, str(REPO))
    from src.config.loader import load_config
    from src.config.schema import ReplayMarketConfig
    from src.market.replay import ReplayMarket

    cfg = load_config([f"universe.top_n={top_n}"], REPO).cfg
    universe = cfg.symbols.ranked[:top_n]
    t1 = time.perf_counter()
    market = ReplayMarket(ReplayMarketConfig(path=path), universe, n_ticks, 1.0, REPO)
    t2 = time.perf_counter()
    ticks = 0
    for chunk in market.chunks(3600):
        ticks += chunk.n
    t3 = time.perf_counter()
    print(json.dumps({"import_s": t_import, "build_s": t2 - t1, "stream_s": t3 - t2, "ticks": ticks,
                      "symbol_ticks": ticks * len(universe),
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--e2e", action="store_true", help="also time a whole src.run replay of the file")
    ap.add_argument("--quick", action="store_true", help="a 0.1 h file, one process: seconds (figures not meaningful)")
    ap.add_argument("--child", nargs=3, metavar=("PATH", "TICKS", "TOP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return 0
    if args.quick:
        args.runs, args.hours = 1, 0.1
    n_ticks = int(args.hours * 3600)
    overrides = ["stage=d92-5", f"stage.duration_s={n_ticks}", f"universe.top_n={args.top}"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ticks.parquet"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "src.market.export", str(path), *overrides], cwd=REPO, check=True,
                       capture_output=True, text=True)
        print(f"file: {args.hours:g} h x top-{args.top} at 1 s = {n_ticks * args.top:,} symbol-ticks, "
              f"{n_ticks * args.top * 2:,} rows, {path.stat().st_size / 1e6:.1f} MB (export {time.perf_counter() - t0:.1f} s)")
        runs = []
        for _ in range(args.runs):
            proc = subprocess.run([sys.executable, __file__, "--child", str(path), str(n_ticks), str(args.top)],
                                  cwd=REPO, check=True, capture_output=True, text=True)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        med = {k: statistics.median(r[k] for r in runs) for k in ("import_s", "build_s", "stream_s", "rss_mb")}
        sym_ticks = runs[0]["symbol_ticks"]
        rate = sym_ticks / (med["build_s"] + med["stream_s"])
        print(f"replay (median of {args.runs} fresh processes): build (open + validate + sha256) "
              f"{med['build_s']:.3f} s, stream {med['stream_s']:.3f} s, pyarrow import {med['import_s']:.3f} s")
        print(f"throughput: {rate / 1e6:.2f} M symbol-ticks/s (target >= {TARGET_RATE / 1e6:g} M)  "
              f"{'OK' if rate >= TARGET_RATE else 'BELOW TARGET'}; stream alone "
              f"{sym_ticks / med['stream_s'] / 1e6:.2f} M/s")
        print(f"peak RSS: {med['rss_mb']:.0f} MB (target <= {TARGET_RSS_MB:g} MB)  "
              f"{'OK' if med['rss_mb'] <= TARGET_RSS_MB else 'ABOVE TARGET'}")
        if args.e2e:  # in a copy of the repo, so logs/ stays clean
            repo = Path(tmp) / "repo"
            for item in ("src", "conf"):
                shutil.copytree(REPO / item, repo / item, ignore=shutil.ignore_patterns("__pycache__"))
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "src.run", *overrides, "market=replay",
                                   f"market.path={path}", "run.id=bench-replay"],
                                  cwd=repo, capture_output=True, text=True)
            print(f"e2e: python -m src.run over the file: {time.perf_counter() - t0:.1f} s, exit {proc.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
