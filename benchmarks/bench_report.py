"""Issue 14 figures for `python -m src.report`: one smoke run, 20 smoke runs, a 24-hour top-100 run.

Process wall time of the report (what a user waits for) and the size of the HTML file,
side by side with the targets. In a temporary git checkout of the project: the runs are
real (`python -m src.run`; the 20 come from one Hydra multirun over seeds).

    python benchmarks/bench_report.py [--reps 5]
    python benchmarks/bench_report.py --quick   # one timing each: a check that it works (CI)
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _repo import REPO, temp_checkout  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def run(repo: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, *args], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def timed_report(repo: Path, out: str, reps: int, *runs: str) -> tuple[float, int]:
    """Median process wall of `python -m src.report RUNS -o out`, and the file's size in bytes."""
    walls = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run(repo, "-m", "src.report", *runs, "-o", out)
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), (repo / out).stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5, help="timings per case (median printed)")
    ap.add_argument("--quick", action="store_true", help="one timing per case: seconds, not minutes")
    args = ap.parse_args()
    reps = 1 if args.quick else args.reps
    items = ("src", "conf") + ((".cache",) if (REPO / ".cache").is_dir() else ())  # .cache: compiled kernels
    with tempfile.TemporaryDirectory() as tmp:
        repo = temp_checkout(Path(tmp) / "repo", items)
        run(repo, "-m", "src.run", "stage=d92-5", "run.id=one")
        t0 = time.perf_counter()
        run(repo, "-m", "src.run", "-m", "stage=d92-5", "seed=range(1,20)")
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        run(repo, "-m", "src.run", "stage=longrun-24h", "run.id=day")
        day = time.perf_counter() - t0
        rows = [("1 smoke run", *timed_report(repo, "one.html", reps, "one"), "<= 1 s", ""),
                ("20 smoke runs", *timed_report(repo, "twenty.html", reps, "--stage", "d92-5", "--last", "20"),
                 "<= 3 s", ""),
                ("24-hour top-100 run", *timed_report(repo, "day.html", reps, "day"), "", "< 2 MB")]
    print(f"runs made: 1 + 19 smoke (multirun, {made:.1f} s), one 24-hour top-100 ({day:.1f} s)")
    print(f"{'report of':<22}{'wall (median of ' + str(reps) + ')':<22}{'target':<10}{'file size':<14}target")
    for name, wall, size, t_wall, t_size in rows:
        print(f"{name:<22}{f'{wall:.3f} s':<22}{t_wall:<10}{f'{size / 1024:,.0f} KB':<14}{t_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
