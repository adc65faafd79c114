"""Sweep wall time: a 6-job sweep on the basic launcher vs joblib with 2 workers (and Ray).

The sweep is `zone_profile=default,wide,tight seed=1,2` over a workload that gives each
job more than a second of work, so parallelism can pay for the worker start-up (about
a second per loky worker: a fresh Python importing Hydra, numpy and the engine): the
24-hour top-100 session at 1 s ticks (stage d92-1, advisory, `universe=top100
stage.duration_s=86400`: 8.64 M symbol-ticks, ~1.5 s of fast-engine work per job).
Each launcher runs the same sweep `--rounds` times in fresh processes, interleaved;
the medians of the end-to-end wall times (process start to exit, what a user waits
for) give the speed-up. `ray` starts a local Ray instance per sweep; `ray-att` attaches
to one started once beforehand (loopback only, private temp folders; `--no-ray` skips
both). Every launcher must give the same fingerprint per job. Runs in a temporary copy.

With `--queue`, it times DVC's experiment queue instead: four queued smoke variants
(`-S "smoke.overrides='seed=N'"`) run with `dvc queue start -j 1` and `-j 2`, in a
temporary git repo, from `queue start` until `dvc queue status` shows none left.

    python benchmarks/bench_sweep.py [--rounds 3] [--no-ray] [--duration 86400]
    python benchmarks/bench_sweep.py --queue [--rounds 1]
    python benchmarks/bench_sweep.py --quick      # one round of 60 s jobs, basic and joblib: a check (CI)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _repo import temp_checkout  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

REPO = Path(__file__).resolve().parents[1]
SWEEP = ["zone_profile=default,wide,tight", "seed=1,2", "stage=d92-1", "universe=top100"]
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "ray": ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2"],  # starts a local instance each time
    "ray-att": ["hydra/launcher=ray", "hydra.launcher.ray.init.address={address}"],  # attaches to a running one
}


def run_sweep(repo: Path, extra: list[str], env: dict[str, str]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "src.run", "-m", *SWEEP, *extra], cwd=repo, capture_output=True,
                          text=True, env=env)
    wall = time.perf_counter() - t0
    m = re.search(r"^summary: (\S+)$", proc.stdout, flags=re.M)
    if proc.returncode != 0 or not m:
        raise SystemExit(f"sweep failed ({proc.returncode}): {' '.join(extra)}\n"
                         f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return wall, json.loads((repo / m.group(1)).read_text())


def ray_env(base: dict[str, str]) -> tuple[dict[str, str], str]:
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    return dict(base, RAY_TMPDIR=tmp, RAY_AUTH_MODE="disabled", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
                RAY_USAGE_STATS_ENABLED="0"), tmp


def start_head(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """A local Ray head on 127.0.0.1 (`ray start --head --block`); stop it with `stop_head`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = Path(env["RAY_TMPDIR"]) / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                                 f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                                 "--include-dashboard=false", "--disable-usage-stats"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if head.poll() is not None or time.monotonic() > deadline:
            stop_head(head)
            raise SystemExit(f"ray head did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    return head, f"127.0.0.1:{port}"


def stop_head(head: subprocess.Popen) -> None:
    head.send_signal(signal.SIGTERM)  # `--block` stops every Ray process it started
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=10)


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


_SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(8_000_000): x += i\nprint(time.perf_counter() - t)"


def effective_cores() -> float:
    """How many cores this machine gives us right now: one CPU-bound process alone vs two at once.

    2.0 on an idle 2-core machine; less when other work shares it, and then no
    launcher can reach a 2x speed-up.
    """
    def spin(n: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE, text=True) for _ in range(n)]
        return max(float(p.communicate()[0]) for p in procs)
    one, two = spin(1), spin(2)
    return round(2 * one / two, 2)


def dvc(repo: Path, env: dict[str, str], *args: str) -> str:
    exe = Path(sys.executable).parent / "dvc"
    with tempfile.TemporaryFile("w+") as out:  # not a pipe: queue workers inherit it and outlive the command
        proc = subprocess.run([str(exe), *args], cwd=repo, env=env, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{text[-3000:]}")
    return text


def bench_queue(rounds: int) -> int:
    med = statistics.median
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""), DVC_NO_ANALYTICS="1",
                   DVC_SITE_CACHE_DIR=str(Path(tmp) / "site"))
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(REPO), str(repo)], check=True)
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        dvc(repo, env, "repro", "smoke")
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", "baseline", "--allow-empty"], cwd=repo, check=True)
        n, cores = 0, [effective_cores()]
        for r in range(rounds):
            for jobs in (1, 2):
                for _ in range(4):
                    n += 1
                    dvc(repo, env, "exp", "run", "--queue", "smoke", "-q", "-n", f"q{n}", "-S",
                        f"smoke.overrides='seed={n}'")
                t0 = time.perf_counter()
                dvc(repo, env, "queue", "start", "-j", str(jobs))
                while re.search(r"\b(Queued|Running)\s*$", dvc(repo, env, "queue", "status"), flags=re.M):
                    time.sleep(0.5)
                times[jobs].append(time.perf_counter() - t0)
                print(f"round {r + 1} -j {jobs}: {times[jobs][-1]:.1f} s", flush=True)
                # Idle workers quit ~10 s after the queue empties; wait, or they would take the next
                # round's tasks. Not `dvc queue stop`: a stop that finds no worker alive is kept by
                # the broker and stops the next start's worker after one task.
                while any(_cwd_under(p, repo) for p in os.listdir("/proc") if p.isdigit()):
                    time.sleep(1)
        cores.append(effective_cores())
    print(f"\nDVC queue, 4 smoke experiments: -j 1 median {med(times[1]):.1f} s, -j 2 median {med(times[2]):.1f} s, "
          f"speed-up {med(times[1]) / med(times[2]):.2f}x ({rounds} rounds)")
    print(f"effective cores before / after (2.0 = both cores free): {cores[0]} / {cores[1]}")
    return 0


def _cwd_under(pid: str, folder: Path) -> bool:
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return cwd == folder or folder in cwd.parents


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=86400.0, help="simulated seconds per job")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="one round, 60 simulated seconds per job, no Ray: checks it works (the speed-up means nothing)")
    ap.add_argument("--queue", action="store_true", help="time the DVC experiment queue (-j 1 vs -j 2) instead")
    args = ap.parse_args()
    if args.queue:
        return bench_queue(args.rounds)
    if args.quick:  # 2 small jobs, 1 round: what a CI check can afford
        args.rounds, args.duration, args.no_ray = 1, 60.0, True
        SWEEP[:] = ["zone_profile=default,wide", "seed=1", "stage=d92-1", "universe=top10"]
    SWEEP.append(f"stage.duration_s={args.duration:g}")
    names = [n for n in LAUNCHERS if not (n.startswith("ray") and args.no_ray)]
    if "ray" in names:
        try:
            import hydra_plugins.hydra_ray_launcher  # noqa: F401
        except ImportError:
            print("ray: the [ray] extra is not installed, skipped")
            names = [n for n in names if not n.startswith("ray")]
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    walls: dict[str, list[float]] = {n: [] for n in names}
    inner: dict[str, list[float]] = {n: [] for n in names}
    prints: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        repo = temp_checkout(Path(tmp) / "repo")
        cores = [effective_cores()]

        def rounds(group: list[str], fixed_env: dict[str, str] | None = None, address: str = "") -> None:
            for r in range(args.rounds):
                print(f"round {r + 1}: effective cores {effective_cores()}", flush=True)
                for name in group:
                    env, ray_tmp = ray_env(base) if name == "ray" else (fixed_env or base, None)
                    extra = [a.format(address=address) for a in LAUNCHERS[name]]
                    try:
                        wall, summary = run_sweep(repo, extra, env)
                    finally:
                        if ray_tmp:
                            reap(ray_tmp)
                    walls[name].append(wall)
                    inner[name].append(summary["wall_s"])
                    prints[name] = {" ".join(j["overrides"]): j["fingerprint"] for j in summary["jobs"]}
                    ticks.append(summary["jobs"][0]["kpis"]["ticks"])
                    print(f"round {r + 1} {name:<7} {wall:6.2f} s", flush=True)

        ticks: list[int] = []
        rounds([n for n in names if n != "ray-att"])
        if "ray-att" in names:  # its own phase: an idle cluster would slow the others' rounds
            head_env, head_tmp = ray_env(base)
            t0 = time.perf_counter()
            head, address = start_head(head_env)
            print(f"ray head started in {time.perf_counter() - t0:.1f} s", flush=True)
            try:
                rounds(["ray-att"], head_env, address)
            finally:
                stop_head(head)
                reap(head_tmp)
        cores.append(effective_cores())
    med = statistics.median
    same = all(p == prints["basic"] for p in prints.values())
    top = next(a.split("=top")[1] for a in SWEEP if a.startswith("universe=top"))
    print(f"\n{len(prints['basic'])}-job sweep {' '.join(SWEEP)}: {ticks[0]} ticks x top-{top} per job; "
          f"{args.rounds} rounds, 2 cores")
    print(f"{'launcher':<8} {'wall median':>11} {'(min-max)':>15} {'in-sweep median':>15} {'speed-up':>9}")
    for name in names:
        w = walls[name]
        print(f"{name:<8} {med(w):10.2f}s {f'({min(w):.2f}-{max(w):.2f})':>15} {med(inner[name]):14.2f}s "
              f"{med(walls['basic']) / med(w):8.2f}x")
    print(f"same fingerprints on every launcher: {same}")
    print(f"effective cores before / after (2.0 = both cores free): {cores[0]} / {cores[1]}")
    print("target: joblib (2 workers) >= 1.6x the basic launcher")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
