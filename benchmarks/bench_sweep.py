"""Sweep wall time: a 6-job sweep on the basic launcher vs joblib with 2 workers (and Ray).

The sweep is `zone_profile=default,wide,tight seed=1,2` over a workload that gives each
job about a second of work, so parallelism can pay for the worker start-up: stage d92-1
(advisory, 1 s ticks) over the top-100 for 6 simulated hours (`universe=top100
stage.duration_s=21600`, 2.16 M symbol-ticks per job). Each launcher runs the same sweep
`--rounds` times in fresh processes, interleaved; the medians of the end-to-end wall
times (process start to exit, what a user waits for) give the speed-up. Ray starts a
local instance per sweep (loopback only, private temp folder); `--no-ray` skips it.
Every launcher must give the same fingerprint per job. Runs in a temporary copy.

    python benchmarks/bench_sweep.py [--rounds 3] [--no-ray] [--duration 21600]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEP = ["zone_profile=default,wide,tight", "seed=1,2", "stage=d92-1", "universe=top100"]
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "ray": ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2"],
}


def run_sweep(repo: Path, extra: list[str], env: dict[str, str]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "src.run", "-m", *SWEEP, *extra], cwd=repo, capture_output=True,
                          text=True, env=env)
    wall = time.perf_counter() - t0
    m = re.search(r"^summary: (\S+)$", proc.stdout, flags=re.M)
    if proc.returncode != 0 or not m:
        raise SystemExit(f"sweep failed ({proc.returncode}): {' '.join(extra)}\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return wall, json.loads((repo / m.group(1)).read_text())


def ray_env(base: dict[str, str]) -> tuple[dict[str, str], str]:
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    return dict(base, RAY_TMPDIR=tmp, RAY_AUTH_MODE="disabled", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
                RAY_USAGE_STATS_ENABLED="0"), tmp


def reap(tmp: str) -> None:
    """Kill any process still carrying our private RAY_TMPDIR (the driver normally takes Ray down)."""
    marker = f"RAY_TMPDIR={tmp}".encode()
    time.sleep(1)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if marker in Path(f"/proc/{d}/environ").read_bytes().split(b"\0"):
                    os.kill(int(d), signal.SIGKILL)
            except OSError:
                pass
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=21600.0, help="simulated seconds per job")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    SWEEP.append(f"stage.duration_s={args.duration:g}")
    names = [n for n in LAUNCHERS if n != "ray" or not args.no_ray]
    if "ray" in names:
        try:
            import hydra_plugins.hydra_ray_launcher  # noqa: F401
        except ImportError:
            print("ray: the [ray] extra is not installed, skipped")
            names.remove("ray")
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    walls: dict[str, list[float]] = {n: [] for n in names}
    inner: dict[str, list[float]] = {n: [] for n in names}
    prints: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        for item in ("src", "conf"):
            shutil.copytree(REPO / item, repo / item, ignore=shutil.ignore_patterns("__pycache__"))
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", "bench"], cwd=repo, check=True)
        for r in range(args.rounds):
            for name in names:
                env, ray_tmp = ray_env(base) if name == "ray" else (base, None)
                try:
                    wall, summary = run_sweep(repo, LAUNCHERS[name], env)
                finally:
                    if ray_tmp:
                        reap(ray_tmp)
                walls[name].append(wall)
                inner[name].append(summary["wall_s"])
                prints[name] = {" ".join(j["overrides"]): j["fingerprint"] for j in summary["jobs"]}
                print(f"round {r + 1} {name:<6} {wall:6.2f} s", flush=True)
        job_s = [j["kpis"]["ticks"] for j in summary["jobs"]]
    med = statistics.median
    same = all(p == prints["basic"] for p in prints.values())
    print(f"\n6-job sweep {' '.join(SWEEP)}: {len(job_s)} jobs, {job_s[0]} ticks x top-100 each; "
          f"{args.rounds} rounds, 2 cores")
    print(f"{'launcher':<8} {'wall median':>11} {'(min-max)':>15} {'in-sweep median':>15} {'speed-up':>9}")
    for name in names:
        w = walls[name]
        print(f"{name:<8} {med(w):10.2f}s {f'({min(w):.2f}-{max(w):.2f})':>15} {med(inner[name]):14.2f}s "
              f"{med(walls['basic']) / med(w):8.2f}x")
    print(f"same fingerprints on every launcher: {same}")
    print("target: joblib (2 workers) >= 1.6x the basic launcher")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
