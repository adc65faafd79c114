"""End-to-end smoke timing: `python -m src.run stage=d92-5`, median of N fresh processes.

Prints wall time per run, the guard (purge + hardlock) and provenance-record times the
run itself measured (runtime_meta.json timings), and simulated seconds per wall second
of engine time. Runs in a temporary copy of the repo so logs/ stays clean.

    python benchmarks/bench_smoke.py [--runs 5]
    python benchmarks/bench_smoke.py --quick      # one run: a check that it works (CI)
    python benchmarks/bench_smoke.py --stage longrun-24h --aot-vs-jit   # the compiled engine's two ways

--aot-vs-jit: the same runs taking turns with the ahead-of-time module (src/engine/aot.py, no
numba) and with numba's JIT (KERNEL_AOT=0, its cached code), wall and peak RSS side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _repo import temp_checkout  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--stage", default="d92-5")
    ap.add_argument("--quick", action="store_true", help="one run: checks the benchmark works, in seconds")
    ap.add_argument("--aot-vs-jit", action="store_true", help="ahead-of-time module vs numba's JIT, taking turns")
    args = ap.parse_args()
    if args.quick:
        args.runs = 1
    if args.aot_vs_jit:
        return aot_vs_jit(args.stage, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        repo = temp_checkout(Path(tmp) / "repo")
        walls, guard, record, engine, sim_ratio = [], [], [], [], []
        for i in range(args.runs):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "src.run", f"stage={args.stage}", f"run.id=bench{i}"],
                                  cwd=repo, capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return 1
            meta = json.loads((repo / "logs" / args.stage / f"bench{i}" / "runtime_meta.json").read_text())
            t = meta["timings"]
            guard.append(t["purge_s"] + t["hardlock_s"])
            record.append(t["record_s"])
            engine.append(t["engine_s"])
            sim_ratio.append(t["simulated_s_per_wall_s"])
    med = statistics.median
    print(f"stage {args.stage}, {args.runs} runs, each in a fresh process")
    print(f"end-to-end wall      median {med(walls):.3f} s   (min {min(walls):.3f}, max {max(walls):.3f})   target <= 2 s")
    print(f"guard (purge+lock)   median {med(guard) * 1000:.1f} ms")
    print(f"provenance record    median {med(record) * 1000:.1f} ms")
    print(f"guard + record       median {med(g + r for g, r in zip(guard, record)) * 1000:.1f} ms   target <= 100 ms")
    print(f"engine               median {med(engine) * 1000:.1f} ms")
    print(f"simulated s / wall s median {med(sim_ratio):,.0f}x of engine time (the original ran at 1x)")
    return 0


def _run(repo: Path, stage: str, run_id: str, aot: bool) -> tuple[float, float, dict]:
    """(wall s, peak RSS MB, runtime_meta timings) of one `python -m src.run` in a fresh process."""
    env = {**os.environ, "KERNEL_AOT": "1" if aot else "0"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "src.run", f"stage={stage}", f"run.id={run_id}"], cwd=repo,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"run {run_id} failed: {err[-2000:]}")
    meta = json.loads((repo / "logs" / stage / run_id / "runtime_meta.json").read_text())
    return wall, usage.ru_maxrss / 1024.0, meta


def aot_vs_jit(stage: str, runs: int) -> int:
    med = statistics.median
    with tempfile.TemporaryDirectory() as tmp:
        repo = temp_checkout(Path(tmp) / "repo")
        for aot in (True, False):  # load (or build) each once before timing
            _run(repo, stage, f"prime{int(aot)}", aot)
        rows: dict[str, list[tuple[float, float, dict]]] = {"aot": [], "jit": []}
        for i in range(runs):
            for name in rows:
                rows[name].append(_run(repo, stage, f"{name}{i}", name == "aot"))
    print(f"stage {stage}, {runs} runs per way, taking turns, each in a fresh process")
    print(f"{'kernel':<8}{'wall s':>9}{'min s':>9}{'RSS MB':>9}{'engine s':>10}{'Mst/s e2e':>11}")
    for name, rs in rows.items():
        meta = rs[0][2]
        kernel = meta["engine"].get("kernel", {})
        assert kernel.get("aot", {}).get("used", False) == (name == "aot"), kernel.get("aot")
        st = meta["kpis"]["ticks"] * len(meta["kpis"]["per_symbol"]) if "per_symbol" in meta["kpis"] else None
        wall = med(r[0] for r in rs)
        print(f"{name:<8}{wall:>9.3f}{min(r[0] for r in rs):>9.3f}{med(r[1] for r in rs):>9.0f}"
              f"{med(r[2]['timings']['engine_s'] for r in rs):>10.3f}{(st / wall / 1e6 if st else float('nan')):>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
