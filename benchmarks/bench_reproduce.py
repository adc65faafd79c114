"""Reproduce timing: `python -m src.reproduce RUN` of the smoke against the smoke's own wall time,
and what keeping the inputs (patch, untracked files, data blobs, manifest) adds to a run on a
clean tree (the run's own `timings.reproduce_s`, import of the module included).

Runs in a temporary committed checkout with a DVC folder, so logs/ and the cache stay clean.

    python benchmarks/bench_reproduce.py [--runs 5]
    python benchmarks/bench_reproduce.py --quick      # one run: a check that it works (CI)
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

from _repo import GIT, temp_checkout  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def _timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:])} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--stage", default="d92-5")
    ap.add_argument("--quick", action="store_true", help="one run: checks the benchmark works, in seconds")
    args = ap.parse_args()
    if args.quick:
        args.runs = 1
    with tempfile.TemporaryDirectory() as tmp:
        repo = temp_checkout(Path(tmp) / "repo", ("src", "conf", ".gitignore", ".dvc/config", ".dvcignore"))
        (repo / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
        subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*GIT, "commit", "-qm", "dvc"], cwd=repo, check=True)
        smoke, keep, keep_cpu, again = [], [], [], []
        for i in range(args.runs):
            smoke.append(_timed([sys.executable, "-m", "src.run", f"stage={args.stage}", f"run.id=bench{i}"], repo))
            meta = json.loads((repo / "logs" / args.stage / f"bench{i}" / "runtime_meta.json").read_text())
            if meta["reproduce"].get("patch") or meta["reproduce"].get("untracked"):
                raise SystemExit("the checkout was not clean: the overhead figure would not be a clean-tree one")
            keep.append(meta["timings"]["reproduce_s"])
            keep_cpu.append(meta["timings"]["reproduce_cpu_s"])
        for i in range(args.runs):
            again.append(_timed([sys.executable, "-m", "src.reproduce", f"bench{i}"], repo))
    med = statistics.median
    print(f"stage {args.stage}, {args.runs} runs, each in a fresh process, clean committed tree")
    print(f"smoke wall                     median {med(smoke):.3f} s   (min {min(smoke):.3f}, max {max(smoke):.3f})")
    print(f"reproduce the smoke wall       median {med(again):.3f} s   (min {min(again):.3f}, max {max(again):.3f})")
    print(f"reproduce / smoke              {med(again) / med(smoke):.2f}x   target <= 3x")
    print(f"keeping inputs (clean tree)    median {med(keep) * 1000:.2f} ms   (max {max(keep) * 1000:.2f})   "
          "target <= 20 ms")
    print(f"keeping inputs, CPU time       median {med(keep_cpu) * 1000:.2f} ms   (wall minus waiting for a core)")
    print(f"load average during the run    {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
