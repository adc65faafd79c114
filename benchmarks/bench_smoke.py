"""End-to-end smoke timing: `python -m src.run stage=d92-5`, median of N fresh processes.

Prints wall time, CPU and peak RSS per run, then where the time went, step by step, from
the timings the run itself records in runtime_meta.json: purge, config (composing it,
importing the runner), hardlock, record (the inputs' descriptions), engine (of which market:
making the chunks), kpis, plots, outputs + reproduce (digests, blobs), the rest of the run's
clock (gates, the final record, and the steps an older revision did not record), and what
lies outside it (interpreter start-up, the run index row, exit). One unmeasured warm-up run
first (it builds the ahead-of-time kernel module when absent; --quick skips it). Runs in a
temporary copy of the repo, made to look like a clone, so logs/ stays clean.

    python benchmarks/bench_smoke.py [--runs 5] [--stage longrun-24h]
    python benchmarks/bench_smoke.py --against main     # the same runs from a git revision, taking turns
    python benchmarks/bench_smoke.py --quick      # one run: a check that it works (CI)
    python benchmarks/bench_smoke.py --stage longrun-24h --aot-vs-jit   # the compiled engine's two ways

--against REV: a second checkout made from REV's src/ and conf/ (`git archive`), its runs
alternating with this tree's, so both see the same machine load: figures side by side.
--aot-vs-jit: the same runs taking turns with the ahead-of-time module (src/engine/aot.py, no
numba) and with numba's JIT (KERNEL_AOT=0, its cached code), wall and peak RSS side by side.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _repo import GIT, REPO, temp_checkout  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

# (label, runtime_meta timings keys summed); "outside" is computed: wall - total_s
STEPS = (("purge", ("purge_s",)), ("config", ("config_s",)), ("hardlock", ("hardlock_s",)),
         ("record", ("record_s",)), ("engine", ("engine_s",)), ("  market", ("market_s",)),
         ("kpis", ("kpis_s",)), ("plots", ("plots_s",)), ("outputs+reproduce", ("outputs_s", "reproduce_s")))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--stage", default="d92-5")
    ap.add_argument("--against", metavar="REV", help="also time REV's src/ and conf/, taking turns")
    ap.add_argument("--quick", action="store_true", help="one run: checks the benchmark works, in seconds")
    ap.add_argument("--aot-vs-jit", action="store_true", help="ahead-of-time module vs numba's JIT, taking turns")
    args = ap.parse_args()
    if args.quick:
        args.runs = 1
    if args.aot_vs_jit:
        return aot_vs_jit(args.stage, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": _as_cloned(temp_checkout(Path(tmp) / "repo"))}
        if args.against:
            trees[args.against] = _as_cloned(_checkout_rev(args.against, Path(tmp) / "rev"))
        first = next(iter(trees.values()))
        for name, repo in trees.items():  # builds the ahead-of-time module when absent: not timed
            if args.quick:
                break
            if repo is not first and (first / ".cache").is_dir():  # reused when the kernel's key matches
                shutil.copytree(first / ".cache", repo / ".cache", symlinks=True)
            t0 = time.perf_counter()
            if (repo / "src" / "engine" / "build.py").is_file():  # the set-up step (README): the run loads it
                subprocess.run([sys.executable, "-m", "src.engine.build"], cwd=repo, check=True,
                               stdout=subprocess.DEVNULL)
            _run(repo, args.stage, "warmup", None)
            print(f"warm-up run ({name}): {time.perf_counter() - t0:.2f} s")
        rows: dict[str, list[tuple[float, float, dict, float]]] = {name: [] for name in trees}
        for i in range(args.runs):
            for name, repo in trees.items():
                rows[name].append(_run(repo, args.stage, f"bench{i}", None))
    for name, rs in rows.items():
        _print_block(args.stage, name, rs, len(trees) > 1)
    if len(trees) > 1:
        _print_side_by_side(rows)
    return 0


def _checkout_rev(rev: str, dest: Path) -> Path:
    """A temporary git checkout of REV's src/ and conf/ (as temp_checkout makes of the working tree)."""
    data = subprocess.run([*GIT, "-C", str(REPO), "archive", "--format=tar", rev, "src", "conf"],
                          capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    (dest / "logs").mkdir()
    (dest / "logs/.gitkeep").touch()
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*GIT, "commit", "-qm", f"bench {rev}"], cwd=dest, check=True)
    return dest


def _as_cloned(repo: Path) -> Path:
    """Give a temporary checkout what a clone has beside src/ and conf/: the .gitignore (so logs/,
    bytecode and the kernel cache leave the tree clean) and DVC's config (runs keep their inputs
    in DVC's cache), committed."""
    for item in (".gitignore", ".dvcignore", ".dvc/config", ".dvc/.gitignore"):
        if (REPO / item).is_file():
            (repo / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / item, repo / item)
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "as cloned"], cwd=repo, check=True)
    return repo


def _step_s(t: dict, keys: tuple[str, ...]) -> float | None:
    """Sum of the keys' seconds; None when a run of an older revision did not record one."""
    return sum(t[k] for k in keys) if all(k in t for k in keys) else None


def _steps(rs: list[tuple[float, float, dict, float]]) -> dict[str, float | None]:
    """Median seconds of each step (None: not recorded), and `outside`: wall - the run's own total."""
    med = statistics.median
    out: dict[str, float | None] = {}
    for label, keys in STEPS:
        vals = [_step_s(r[2]["timings"], keys) for r in rs]
        out[label] = med(vals) if None not in vals else None  # type: ignore[type-var]
    # the run's clock not covered above (an older revision records fewer steps: theirs land here)
    out["rest of the run's clock"] = med(r[2]["timings"]["total_s"] - sum(
        v for label, keys in STEPS if not label.startswith(" ") and (v := _step_s(r[2]["timings"], keys)) is not None)
        for r in rs)
    out["outside the run's clock"] = med(r[0] - r[2]["timings"]["total_s"] for r in rs)
    return out


def _print_block(stage: str, name: str, rs: list[tuple[float, float, dict, float]], named: bool) -> None:
    med = statistics.median
    walls = [r[0] for r in rs]
    t = [r[2]["timings"] for r in rs]
    ident = rs[0][2].get("data", {}).get("identity", {})  # a generated market names its ticks and symbols
    symbol_ticks = ident.get("n_ticks", 0) * len(ident.get("symbols", []))
    print(f"stage {stage}, {len(rs)} runs, each in a fresh process" + (f" ({name})" if named else ""))
    print(f"end-to-end wall      median {med(walls):.3f} s   (min {min(walls):.3f}, max {max(walls):.3f})   "
          "target <= 2 s (smoke), <= 0.6 s (longrun-24h)")
    print(f"process CPU (u+s)    median {med(r[3] for r in rs):.3f} s   (less sensitive than wall to other jobs)")
    print(f"peak RSS             median {med(r[1] for r in rs):.0f} MB")
    if symbol_ticks:
        print(f"whole process        median {symbol_ticks / med(walls) / 1e6:.2f} M symbol-ticks/s")
    print(f"guard (purge+lock)   median {med(x['purge_s'] + x['hardlock_s'] for x in t) * 1000:.1f} ms")
    print(f"provenance record    median {med(x['record_s'] for x in t) * 1000:.1f} ms")
    print(f"guard + record       median {med(x['purge_s'] + x['hardlock_s'] + x['record_s'] for x in t) * 1000:.1f} ms"
          "   target <= 100 ms")
    print(f"engine               median {med(x['engine_s'] for x in t) * 1000:.1f} ms")
    print(f"simulated s / wall s median {med(x['simulated_s_per_wall_s'] for x in t):,.0f}x of engine time "
          "(the original ran at 1x)")
    print("where the time goes (median ms; market is part of engine):")
    for label, v in _steps(rs).items():
        print(f"  {label:<24}{'-' if v is None else f'{v * 1000:.1f}':>9}")


def _print_side_by_side(rows: dict[str, list[tuple[float, float, dict, float]]]) -> None:
    med = statistics.median
    names = list(rows)
    steps = {n: _steps(rows[n]) for n in names}
    print("side by side (median ms; runs taking turns)")
    print(f"  {'':<24}" + "".join(f"{n:>14}" for n in names))
    print(f"  {'end-to-end wall':<24}" + "".join(f"{med(r[0] for r in rows[n]) * 1000:>14.1f}" for n in names))
    print(f"  {'process CPU (u+s)':<24}" + "".join(f"{med(r[3] for r in rows[n]) * 1000:>14.1f}" for n in names))
    print(f"  {'peak RSS (MB)':<24}" + "".join(f"{med(r[1] for r in rows[n]):>14.0f}" for n in names))
    for label in steps[names[0]]:
        print(f"  {label:<24}" + "".join(f"{'-' if steps[n][label] is None else f'{steps[n][label] * 1000:.1f}':>14}"
                                          for n in names))


def _run(repo: Path, stage: str, run_id: str, aot: bool | None) -> tuple[float, float, dict, float]:
    """(wall s, peak RSS MB, runtime_meta, CPU s: user + system) of one `python -m src.run` in a fresh process.
    The command is the user's own (`python -m src.run stage=S`, no run.id: a run.id override would
    make every run's command line, and so its config cache key, new); run_id names the run in errors.
    aot: KERNEL_AOT=1 or 0; None leaves the environment as it is."""
    env = dict(os.environ) if aot is None else {**os.environ, "KERNEL_AOT": "1" if aot else "0"}
    stage_dir = repo / "logs" / stage
    before = {p.name for p in stage_dir.iterdir()} if stage_dir.is_dir() else set()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "src.run", f"stage={stage}"], cwd=repo,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    cpu = usage.ru_utime + usage.ru_stime
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"run {run_id} failed: {err[-2000:]}")
    new = [p for p in stage_dir.iterdir() if p.name not in before and (p / "runtime_meta.json").is_file()]
    if len(new) != 1:
        raise SystemExit(f"run {run_id}: expected one new run folder in {stage_dir}, found {len(new)}")
    meta = json.loads((new[0] / "runtime_meta.json").read_text())
    return wall, usage.ru_maxrss / 1024.0, meta, cpu


def aot_vs_jit(stage: str, runs: int) -> int:
    med = statistics.median
    with tempfile.TemporaryDirectory() as tmp:
        repo = temp_checkout(Path(tmp) / "repo")
        for aot in (True, False):  # load (or build) each once before timing
            _run(repo, stage, f"prime{int(aot)}", aot)
        rows: dict[str, list[tuple[float, float, dict, float]]] = {"aot": [], "jit": []}
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
