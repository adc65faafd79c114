"""Engines side by side in one run: the kernel, the retired fast engine, the reference.

    python benchmarks/bench_engine.py            # smoke, dense 6 h, longrun 24 h; median of 3 runs each
    python benchmarks/bench_engine.py --quick    # short slices, one run each (a test runs this)

Every measurement runs in a fresh subprocess (so peak RSS is that workload's alone) that
composes the config with the real loader, builds the synthetic market and runs one
engine on it, writing trades.jsonl as a run does (the kernel: one write per chunk of its
compiled lines; the others: JsonlAppender per trade). The market is generated lazily,
chunk by chunk; its time is clocked separately ("market s") and taken out, so "engine
Mst/s" is million symbol-ticks per second of engine work *including* writing
trades.jsonl. The kernel's compiled code is loaded from its cache by `warm_up()` first
("load s": numba's import and the load, paid once per process); "compile s" is a first-ever run's cost, measured
in a child with an empty cache. The retired fast engine (numpy + event loop) is run
from the last commit that had it, restored into a temporary copy of `src/`. The
reference runs a slice of the long sessions (the table says so); every engine must give
the same trades as the reference on the common span (checked by digest).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
DENSE = ["stage=longrun-24h", "stage.duration_s=21600", "risk.daily_loss_limit_usd=1e12"]  # top-100 x 6 h, no kill
# name -> (overrides, engines on the whole session, reference slice duration or None for the whole)
WORKLOADS: dict[str, tuple[list[str], tuple[str, ...], float | None]] = {
    "smoke": (["stage=d92-5"], ("kernel", "fast", "reference"), None),
    "dense 6h": (DENSE, ("kernel", "kernel-jit", "fast"), 900.0),
    "longrun 24h": (["stage=longrun-24h"], ("kernel", "kernel-jit", "fast"), 3600.0),
}
QUICK: dict[str, tuple[list[str], tuple[str, ...], float | None]] = {
    "smoke": (["stage=d92-5"], ("kernel", "fast", "reference"), None),
    "dense 30min": (["stage=longrun-24h", "stage.duration_s=1800", "risk.daily_loss_limit_usd=1e12"],
                    ("kernel", "kernel-jit", "fast"), 120.0),
}


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _Clocked:
    """A market whose chunk generation time is summed into `gen_s`."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.gen_s = inner, 0.0
        self.symbols, self.book, self.n_ticks = inner.symbols, inner.book, inner.n_ticks

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def chunks(self, chunk_ticks: int) -> Iterator[Any]:
        it = iter(self.inner.chunks(chunk_ticks))
        while True:
            t0 = time.perf_counter()
            try:
                chunk = next(it)
            except StopIteration:
                return
            finally:
                self.gen_s += time.perf_counter() - t0
            yield chunk


def old_fast_checkout(dest: Path) -> Path | None:
    """A copy of src/ with the retired fast engine (fast.py, vectors.py) restored from git;
    None where there is no git history to restore it from (a copy of the project)."""
    found = subprocess.run(["git", "rev-list", "-n", "1", "HEAD", "--", "src/engine/fast.py"], cwd=ROOT,
                           capture_output=True, text=True)
    rev = found.stdout.strip()
    if found.returncode or not rev:
        return None
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "conf", dest / "conf")
    for name in ("fast.py", "vectors.py"):
        text = subprocess.run(["git", "show", f"{rev}^:src/engine/{name}"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
        (dest / "src/engine" / name).write_text(text)
    return dest


def child(engine: str, root: Path, overrides: list[str]) -> dict[str, Any]:
    """One engine on one workload, in this (fresh) process. kernel: the ahead-of-time module
    (src/engine/aot.py, no numba); kernel-jit: the same code through numba's JIT (KERNEL_AOT=0)."""
    os.environ["KERNEL_AOT"] = "0" if engine == "kernel-jit" else "1"
    sys.path.insert(0, str(root))
    from src.config.loader import load_config
    from src.engine.loop import EngineParams, run_session
    from src.market.registry import build_market
    from src.runs.atomic import JsonlAppender

    cfg = load_config(overrides, root).cfg
    params = EngineParams.from_config(cfg)
    market = _Clocked(build_market(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s,
                                   root))
    out = Path(tempfile.mkdtemp()) / "trades.jsonl"
    sink = JsonlAppender(out)
    load_s = 0.0
    if engine in ("kernel", "kernel-jit"):
        t0 = time.perf_counter()
        from src.engine.kernel_run import run_session_kernel, warm_up

        warm_up()  # load (kernel-jit: import numba, load or compile) every compiled function, as a run does
        load_s = time.perf_counter() - t0

        def run() -> Any:
            return run_session_kernel(market, params, None, write=sink.write_lines)
    elif engine == "fast":
        from src.engine.fast import run_session_fast

        def run() -> Any:
            return run_session_fast(market, params, sink.append)
    else:
        def run() -> Any:
            return run_session(market, params, sink.append)
    t0 = time.perf_counter()
    res = run()
    sink.close()
    wall = time.perf_counter() - t0
    n_sym = len(market.symbols)
    data = out.read_bytes()
    shutil.rmtree(out.parent)
    return {"engine": engine, "symbols": n_sym, "ticks": res.ticks, "tick_s": cfg.stage.tick_s,
            "symbol_ticks": res.ticks * n_sym, "wall_s": wall, "gen_s": market.gen_s, "engine_s": wall - market.gen_s,
            "load_s": load_s, "trades": len(res.trades), "trades_sha256": hashlib.sha256(data).hexdigest(),
            "peak_rss_mb": peak_rss_mb()}


def compile_cost() -> float:
    """Seconds a first-ever kernel run spends compiling: a child with an empty cache."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "src", Path(tmp) / "src", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "conf", Path(tmp) / "conf")
        m = _spawn("kernel", Path(tmp), ["stage=d92-5", "stage.duration_s=1"])
        return m["load_s"]


def _spawn(engine: str, root: Path, overrides: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", engine, str(root), *overrides], cwd=root,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"child {engine} {overrides} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(specs: list[tuple[str, Path, list[str]]], repeat: int) -> list[dict[str, Any]]:
    """Each spec in a fresh subprocess, `repeat` rounds taking turns (a burst of load on this
    shared machine hits all alike); per spec, the median of each figure."""
    runs: list[list[dict[str, Any]]] = [[] for _ in specs]
    for _ in range(repeat):
        for j, spec in enumerate(specs):
            runs[j].append(_spawn(*spec))
    meds = []
    for r in runs:
        med = dict(r[0])
        for key in ("wall_s", "gen_s", "engine_s", "load_s", "peak_rss_mb"):
            med[key] = statistics.median(x[key] for x in r)
        assert len({x["trades_sha256"] for x in r}) == 1, "same inputs gave different trades"
        meds.append(med)
    return meds


def row(name: str, m: dict[str, Any]) -> str:
    sim_s = m["ticks"] * m["tick_s"]
    rate = m["symbol_ticks"] / m["engine_s"] / 1e6
    return (f"{name:<22}{m['engine']:<10}{m['symbols']:>4} x {sim_s / 3600:>5.2f} h {m['symbol_ticks'] / 1e6:>7.3f} "
            f"{m['trades']:>7} {m['engine_s']:>9.4f} {rate:>8.2f} {m['load_s']:>7.3f} {m['gen_s']:>8.3f} "
            f"{m['peak_rss_mb']:>7.0f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short slices, one run each")
    ap.add_argument("--repeat", type=int, default=None, help="runs per measurement (median); default 3, quick 1")
    ap.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.child[2:])))
        return 0
    repeat = args.repeat or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        old = old_fast_checkout(Path(tmp))
        roots = {"kernel": ROOT, "kernel-jit": ROOT, "reference": ROOT, "fast": old}
        if old is None:
            print(f"fast (retired): not run, no git history in {ROOT} to restore it from")
        print(f"engine benchmark: median of {repeat} fresh process(es) per row; Mst = million symbol-ticks; "
              "engine s includes writing trades.jsonl")
        print(f"{'workload':<22}{'engine':<10}{'session':>15} {'Mst':>7} {'trades':>7} {'engine s':>9} "
              f"{'Mst/s':>8} {'load s':>7} {'market s':>8} {'RSS MB':>7}")
        summary = []
        for name, (overrides, engines, slice_s) in (QUICK if args.quick else WORKLOADS).items():
            specs = [(e, roots[e], overrides) for e in engines if roots[e] is not None]
            sliced = ([o for o in overrides if not o.startswith("stage.duration_s=")]  # a key given twice is refused
                      + [f"stage.duration_s={slice_s}"]) if slice_s else None
            if sliced:
                specs += [("kernel", ROOT, sliced), ("reference", ROOT, sliced)]
            ms = measure(specs, repeat)
            for (e, _r, ov), m in zip(specs, ms):
                print(row(name + (" (slice)" if ov is sliced else ""), m), flush=True)
            by = {(m["engine"], ov is sliced): m for (_e, _r, ov), m in zip(specs, ms)}
            ref = by[("reference", bool(sliced))]
            for e in (e for e in engines if roots[e] is not None):  # each agrees with the reference where both ran
                other = by[(e, bool(sliced))] if not sliced else by[("kernel", True)]
                assert other["trades_sha256"] == ref["trades_sha256"], f"{name}: {e} disagrees with the reference"
            k, f = by[("kernel", False)], by.get(("fast", False))
            assert f is None or k["trades_sha256"] == f["trades_sha256"], f"{name}: kernel and fast engine disagree"

            def rate(m: dict[str, Any]) -> float:
                return m["symbol_ticks"] / m["engine_s"] / 1e6
            vs = f"fast (retired) {rate(f):.2f} Mst/s -> {rate(k) / rate(f):.1f}x" if f else "fast (retired) not run"
            j = by.get(("kernel-jit", False))
            if j is not None:
                vs += (f"; kernel-jit {rate(j):.1f} Mst/s, load {j['load_s']:.3f} s, RSS {j['peak_rss_mb']:.0f} MB"
                       f" (kernel RSS {k['peak_rss_mb']:.0f} MB)")
            summary.append(f"{name}: kernel {rate(k):.1f} Mst/s, {vs}; reference {rate(ref):.2f} Mst/s"
                           + (f" (on a {slice_s:g} s slice)" if sliced else "")
                           + f"; kernel load {k['load_s']:.3f} s per process; same trades: yes")
        print()
        print("\n".join(summary))
        print(f"kernel compile, first-ever run (empty cache): {compile_cost():.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
