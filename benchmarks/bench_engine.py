"""Fast vs reference engine, side by side: symbol-ticks/s, ratio, simulated/wall time, peak RSS.

    python benchmarks/bench_engine.py            # smoke and longrun-24h, median of 3 runs each
    python benchmarks/bench_engine.py --quick    # shorter slices, one run each

Every measurement runs in a fresh subprocess (so peak RSS is that workload's alone) that
composes the config with the real loader, builds the synthetic market and runs one
engine on it, writing no run folder. The market is generated lazily, chunk by chunk,
inside the engine's loop; the time spent generating it is clocked separately
("market s") and taken out of the engine's time, so "engine Mst/s" is symbol-ticks per
second of engine work alone. "sim/wall" is simulated seconds per wall second of the
whole session (engine + market generation), what a user waits for. The reference
engine is too slow to run the 24 h longrun routinely: it runs a proportional slice
(the first hour of the same session) and the table says so (--full-reference runs it
on the whole session); the fast engine runs the slice too, and both must produce the
same trades there (checked by digest).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]

# name -> (Hydra overrides, overrides for the reference engine's slice or None for the same)
WORKLOADS: dict[str, tuple[list[str], list[str] | None]] = {
    "smoke": (["stage=d92-5"], None),
    "longrun": (["stage=longrun-24h"], ["stage=longrun-24h", "stage.duration_s=3600"]),
    # The default 24 h session trips the daily kill switch in its first hour; this one
    # trades all day (no kill switch), to show the per-trade cost.
    "longrun-trading": (["stage=longrun-24h", "risk.daily_loss_limit_usd=1e12"],
                        ["stage=longrun-24h", "risk.daily_loss_limit_usd=1e12", "stage.duration_s=3600"]),
}
QUICK: dict[str, tuple[list[str], list[str] | None]] = {
    "smoke": (["stage=d92-5"], None),
    "longrun": (["stage=longrun-24h", "stage.duration_s=7200"], ["stage=longrun-24h", "stage.duration_s=600"]),
}


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _Clocked:
    """A market whose chunk generation time is summed into `gen_s`."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.gen_s, self.gen_cpu_s = inner, 0.0, 0.0
        self.symbols, self.book, self.n_ticks = inner.symbols, inner.book, inner.n_ticks

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def chunks(self, chunk_ticks: int) -> Iterator[Any]:
        it = iter(self.inner.chunks(chunk_ticks))
        while True:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                chunk = next(it)
            except StopIteration:
                return
            finally:
                self.gen_s += time.perf_counter() - t0
                self.gen_cpu_s += time.process_time() - c0
            yield chunk


def child(engine: str, overrides: list[str]) -> dict[str, Any]:
    """One engine on one workload, in this (fresh) process."""
    sys.path.insert(0, str(ROOT))
    from src.config.loader import load_config
    from src.engine.fast import run_session_fast
    from src.engine.loop import EngineParams, run_session
    from src.market.registry import build_market

    cfg = load_config(overrides, ROOT).cfg
    params = EngineParams.from_config(cfg)
    market = _Clocked(build_market(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s,
                                   ROOT))
    digest = hashlib.sha256()
    run = run_session_fast if engine == "fast" else run_session
    t0, c0 = time.perf_counter(), time.process_time()
    res = run(market, params, lambda t: digest.update(json.dumps(t, sort_keys=True).encode()))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"engine": engine, "symbols": len(symbols), "ticks": res.ticks, "tick_s": cfg.stage.tick_s,
            "symbol_ticks": res.ticks * len(symbols), "wall_s": wall, "gen_s": market.gen_s,
            "engine_s": wall - market.gen_s, "engine_cpu_s": cpu - market.gen_cpu_s, "trades": len(res.trades), "trades_sha256": digest.hexdigest(),
            "peak_rss_mb": peak_rss_mb()}


def measure(specs: list[tuple[str, list[str]]], repeat: int) -> list[dict[str, Any]]:
    """Each (engine, overrides) in a fresh subprocess, `repeat` rounds taking turns (so a
    burst of load on this shared machine hits all alike); per spec, the median of each figure."""
    runs: list[list[dict[str, Any]]] = [[] for _ in specs]
    for _ in range(repeat):
        for j, (engine, overrides) in enumerate(specs):
            out = subprocess.run([sys.executable, __file__, "--child", engine, *overrides], cwd=ROOT,
                                 capture_output=True, text=True, check=True)
            runs[j].append(json.loads(out.stdout.strip().splitlines()[-1]))
    meds = []
    for r in runs:
        med = dict(r[0])
        for key in ("wall_s", "gen_s", "engine_s", "engine_cpu_s", "peak_rss_mb"):
            med[key] = statistics.median(x[key] for x in r)
        assert len({x["trades_sha256"] for x in r}) == 1, "same inputs gave different trades"
        meds.append(med)
    return meds


def row(name: str, m: dict[str, Any]) -> str:
    sim_s = m["ticks"] * m["tick_s"]
    return (f"{name:<26}{m['engine']:<10}{m['symbols']:>4} x {sim_s / 3600:>6.2f} h {m['symbol_ticks'] / 1e6:>7.3f} "
            f"{m['trades']:>7} {m['engine_s']:>9.3f} {m['symbol_ticks'] / m['engine_s'] / 1e6:>9.2f} "
            f"{m['gen_s']:>8.3f} {m['symbol_ticks'] / m['gen_s'] / 1e6:>7.2f} {sim_s / m['wall_s']:>10.0f} "
            f"{m['peak_rss_mb']:>8.0f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short slices, one run each")
    ap.add_argument("--repeat", type=int, default=None, help="runs per measurement (median); default 3, quick 1")
    ap.add_argument("--full-reference", action="store_true",
                    help="time the reference engine on the whole longrun too (about 20 s a run), not a slice")
    ap.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1:])))
        return 0
    repeat = args.repeat or (1 if args.quick else 3)
    print(f"engine benchmark: median of {repeat} fresh process(es) per row; Mst = million symbol-ticks")
    print(f"{'workload':<26}{'engine':<10}{'session':>16} {'Mst':>7} {'trades':>7} {'engine s':>9} "
          f"{'Mst/s':>9} {'market s':>8} {'Mst/s':>7} {'sim/wall':>10} {'RSS MB':>8}")
    summary = []
    for name, (fast_ov, ref_ov) in (QUICK if args.quick else WORKLOADS).items():
        if args.full_reference:
            ref_ov = None
        if ref_ov is None:
            fast, ref = measure([("fast", fast_ov), ("reference", fast_ov)], repeat)
            fast_slice, rows = fast, [(name, fast), (name, ref)]
        else:
            fast, fast_slice, ref = measure([("fast", fast_ov), ("fast", ref_ov), ("reference", ref_ov)], repeat)
            rows = [(name, fast), (f"{name} (slice)", fast_slice), (f"{name} (slice)", ref)]
        for label, m in rows:
            print(row(label, m), flush=True)
        assert ref["trades_sha256"] == fast_slice["trades_sha256"], f"{name}: engines disagree"

        def rate(m: dict[str, Any], key: str = "engine_s") -> float:
            return m["symbol_ticks"] / m[key] / 1e6
        cpu = "engine_cpu_s"
        line = (f"{name}: fast {rate(fast):.2f} Mst/s vs reference {rate(ref):.2f} Mst/s"
                + (f" (reference timed on a {ref['ticks'] * ref['tick_s'] / 3600:g} h slice)" if ref_ov else "")
                + f" -> {rate(fast) / rate(ref):.1f}x (CPU time: {rate(fast, cpu) / rate(ref, cpu):.1f}x)")
        if ref_ov:
            line += (f"; both on the slice: {rate(fast_slice):.2f} vs {rate(ref):.2f} -> "
                     f"{rate(fast_slice) / rate(ref):.1f}x (CPU time: {rate(fast_slice, cpu) / rate(ref, cpu):.1f}x)")
        summary.append(line + "; same trades on the common span: yes")
    print()
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
