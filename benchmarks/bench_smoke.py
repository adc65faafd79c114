"""End-to-end smoke timing: `python -m src.run stage=d92-5`, median of N fresh processes.

Prints wall time per run, the guard (purge + hardlock) and provenance-record times the
run itself measured (runtime_meta.json timings), and simulated seconds per wall second
of engine time. Runs in a temporary copy of the repo so logs/ stays clean.

    python benchmarks/bench_smoke.py [--runs 5]
    python benchmarks/bench_smoke.py --quick      # one run: a check that it works (CI)
"""
from __future__ import annotations

import argparse
import json
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
    args = ap.parse_args()
    if args.quick:
        args.runs = 1
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


if __name__ == "__main__":
    sys.exit(main())
