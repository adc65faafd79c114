"""Issue 3 figures: no-op `dvc repro smoke`, compare of two runs, table of many runs.

All in a temporary git repo holding a copy of the project. The many runs are real
small runs (10 simulated seconds each, seeds 0..N-1) made by a fast in-process loop
through the same loader and `execute` as `python -m src.run`.

    python benchmarks/bench_dvc_compare.py [--runs 1000]
    python benchmarks/bench_dvc_compare.py --quick   # 10 runs, one timing each: a check that it works (CI)
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _repo import temp_checkout  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

ITEMS = ("src", "conf", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", ".dvc/config", ".dvc/plots")


def timed(cmd: list[str], cwd: Path, env: dict[str, str], n: int) -> tuple[float, str]:
    walls, out = [], ""
    for _ in range(n):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        out = proc.stdout + proc.stderr
        if proc.returncode not in (0,):
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out}")
    return statistics.median(walls), out


def make_runs(repo: Path, n: int) -> float:
    """n real small runs, in-process (what a basic-launcher sweep does, minus Hydra's per-job overhead)."""
    code = f"""
import sys, time
from pathlib import Path
from omegaconf import open_dict
from src.config.loader import compose_config, from_composed
from src.provenance.purge import purge_bytecode
from src.runner.execute import execute
root = Path('.').resolve()
overrides = ['stage=d92-5', 'stage.duration_s=10']
cfg, choices = compose_config(root, overrides)
purge = purge_bytecode(root)
t0 = time.perf_counter()
for seed in range({n}):
    cfg.seed = seed
    loaded = from_composed(root, cfg, choices, overrides + [f'seed={{seed}}'])
    out = execute(loaded, loaded.overrides, purge, t_start=time.perf_counter(), t_purge=0.0, out=lambda s: None)
    assert out.status == 'completed', out
print(time.perf_counter() - t0)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="10 small runs, one timing each: seconds, not minutes")
    args = ap.parse_args()
    reps = (1, 1, 1) if args.quick else (5, 5, 3)  # no-op repro, compare of two, table
    if args.quick:
        args.runs = 10
    bindir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PATH=bindir + os.pathsep + env.get("PATH", ""), DVC_NO_ANALYTICS="1")
    with tempfile.TemporaryDirectory() as tmp:
        env["DVC_SITE_CACHE_DIR"] = str(Path(tmp) / "site-cache")
        repo = temp_checkout(Path(tmp) / "repo", ITEMS)
        dvc = str(Path(bindir) / "dvc")
        first, _ = timed([dvc, "repro", "smoke"], repo, env, 1)
        noop, out = timed([dvc, "repro", "smoke"], repo, env, reps[0])
        assert "didn't change" in out, out
        print(f"dvc repro smoke, first run          {first:.3f} s")
        print(f"dvc repro smoke, nothing changed    median {noop:.3f} s of {reps[0]}   target <= 1.5 s")

        py = [sys.executable, "-m", "src.run", "stage=d92-5"]
        subprocess.run([*py, "run.id=A"], cwd=repo, env=env, check=True, capture_output=True)
        subprocess.run([*py, "run.id=B", "seed=9"], cwd=repo, env=env, check=True, capture_output=True)
        pair, _ = timed([sys.executable, "-m", "src.compare", "A", "B"], repo, env, reps[1])
        print(f"compare two runs (process wall)     median {pair:.3f} s of {reps[1]}   target <= 0.3 s")

        made = make_runs(repo, args.runs)
        print(f"made {args.runs} small runs in-process in {made:.1f} s ({made / args.runs * 1000:.0f} ms a run)")
        table, out = timed([sys.executable, "-m", "src.compare", "--stage", "d92-5"], repo, env, reps[2])
        shown = [ln for ln in out.splitlines() if ln.endswith(" runs")]
        print(f"compare table of {shown[-1] if shown else '?'} (process wall)  median {table:.3f} s of {reps[2]}   target <= 2 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
