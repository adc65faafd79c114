"""Market generation, old (synthetic-v1) vs new (synthetic-v2), side by side in one run.

    python benchmarks/bench_market.py            # longrun-24h's market (top-100 x 24 h), median of 3
    python benchmarks/bench_market.py --quick    # top-100 x 2 h, one run each (CI)

Each measurement runs in a fresh subprocess that composes the config with the real loader
and draws every chunk the engine would ask for (3600 ticks), writing nothing. Figures: wall
and CPU seconds of generation alone, million symbol-ticks per second, peak RSS of the
process. v1 is benchmarks/_synthetic_v1.py, the generator before cross-CPU bit-identity
(numpy's exp/log and standard_normal); v2 is src/market/synthetic.py with its compiled block
generator (src/market/synth_jit.py's block in the ahead-of-time module of src/engine/aot.py,
its load included; no numba), "v2 numpy" the same generator's numpy path (same bits; what
sessions below 200,000 symbol-ticks use), "v2 warm" the ahead-of-time module loaded before the
clock starts, "v2 jit warm" numba's JIT of the same block (KERNEL_AOT=0) with numba and its
cached code loaded before the clock starts (the previous default: a run's warm-up thread
loaded them while it recorded provenance). The compiled rows run their symbols over worker
threads (src/market/synth_workers.py, one per CPU here, at most 4); a "1t" row is the same with
one worker (MARKET_WORKERS=1): the single-thread figure.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FULL = ["stage=longrun-24h"]
QUICK = ["stage=longrun-24h", "stage.duration_s=7200"]


def child(version: str, overrides: list[str]) -> dict:
    version, _, one = version.partition("@")  # "v2@1": one worker thread
    sys.path.insert(0, str(ROOT))
    from src.config.loader import load_config

    if version == "v1":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from _synthetic_v1 import SyntheticMarket
    else:
        from src.market.synthetic import SyntheticMarket
    cfg = load_config(overrides, ROOT).cfg
    if version == "v2-jit-warm":  # numba and the cached generator loaded first, as a run's warm-up thread did
        from src.market import synth_jit

        synth_jit.warm_up()
    elif version == "v2-warm":  # the ahead-of-time module loaded first
        from src.engine import aot

        aot.engine()
    t0, c0 = time.perf_counter(), time.process_time()
    kw: dict = {} if version == "v1" else {"compiled": version != "v2-numpy"}
    if one:
        kw["workers"] = 1
    market = SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s, **kw)
    ticks = sum(c.n for c in market.chunks(3600))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"version": version + ("@1" if one else ""), "workers": getattr(market, "workers", 1) if kw.get("compiled") else 1,
            "symbol_ticks": ticks * len(market.symbols), "wall_s": wall, "cpu_s": cpu,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="top-100 x 2 h, one run each")
    ap.add_argument("--repeat", type=int, default=None, help="runs per version (median); default 3, quick 1")
    ap.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1:])))
        return 0
    overrides = QUICK if args.quick else FULL
    repeat = args.repeat or (1 if args.quick else 3)
    runs: dict[str, list[dict]] = {v: [] for v in ("v1", "v2-numpy", "v2-jit-warm@1", "v2-jit-warm", "v2@1", "v2",
                                                  "v2-warm@1", "v2-warm")}
    for _ in range(repeat):  # taking turns, so a burst of load on a shared machine hits both alike
        for version in runs:
            env = {**os.environ, "KERNEL_AOT": "0" if version.startswith("v2-jit-warm") else "1"}
            out = subprocess.run([sys.executable, __file__, "--child", version, *overrides], cwd=ROOT,
                                 capture_output=True, text=True, check=True, env=env)
            runs[version].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"market generation ({' '.join(overrides)}): median of {repeat} fresh process(es)")
    print(f"{'generator':<16}{'threads':>8}{'Mst':>8}{'wall s':>9}{'cpu s':>9}{'Mst/s':>9}{'RSS MB':>9}")
    med = {}
    for version, rs in runs.items():
        m = {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cpu_s", "peak_rss_mb")}
        m["symbol_ticks"] = rs[0]["symbol_ticks"]
        med[version] = m
        base, _, one = version.partition("@")
        name = {"v1": "synthetic-v1", "v2-numpy": "v2 numpy", "v2-jit-warm": "v2 jit warm", "v2": "synthetic-v2",
                "v2-warm": "v2 warm"}[base] + (" 1t" if one else "")
        print(f"{name:<16}{rs[0]['workers']:>8}{m['symbol_ticks'] / 1e6:>8.3f}{m['wall_s']:>9.3f}{m['cpu_s']:>9.3f}"
              f"{m['symbol_ticks'] / m['wall_s'] / 1e6:>9.2f}{m['peak_rss_mb']:>9.0f}")
    for version in list(runs)[1:]:
        print(f"{version} / v1 speed: {med['v1']['wall_s'] / med[version]['wall_s']:.2f}x wall, "
              f"{med['v1']['cpu_s'] / med[version]['cpu_s']:.2f}x cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
