"""Issue 13/14 figures: the run index over many runs (`src.runs list`, `load_runs`, `compare --last 20`).

In a temporary git checkout, a few real small runs are made (10 simulated seconds each), then
cloned into N run folders that look like a long seed sweep: every clone has its own run id,
start time and seed (a new provenance.json and a re-sealed record whose output digests match),
its other files hard-linked to its template's. Then, each as a user types it:

    python benchmarks/bench_runs.py [--runs 10000]
    python benchmarks/bench_runs.py --quick   # 300 runs, one timing each: a check that it works (CI)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _repo import REPO, temp_checkout  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

sys.path.insert(0, str(REPO))
from src.provenance.outputs import sealed_text  # noqa: E402
from src.runs.atomic import dumps_deterministic  # noqa: E402


def make_templates(repo: Path, n: int) -> list[Path]:
    code = f"""
import time
from pathlib import Path
from src.config.loader import compose_config, from_composed
from src.provenance.purge import purge_bytecode
from src.runner.execute import execute
root = Path('.').resolve()
overrides = ['stage=d92-5', 'stage.duration_s=10']
cfg, choices = compose_config(root, overrides)
purge = purge_bytecode(root)
for seed in range({n}):
    cfg.seed = seed
    loaded = from_composed(root, cfg, choices, overrides + [f'seed={{seed}}'])
    out = execute(loaded, loaded.overrides, purge, t_start=time.perf_counter(), t_purge=0.0, out=lambda s: None)
    assert out.status == 'completed', out
    print(out.paths.run_dir)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"template runs failed:\n{proc.stdout}\n{proc.stderr}")
    return [Path(line) for line in proc.stdout.split()]


def clone(templates: list[Path], n: int) -> None:
    """n run folders beside the templates, as a seed sweep would leave them."""
    stage = templates[0].parent
    loaded = [(t, json.loads((t / "runtime_meta.json").read_text()), json.loads((t / "provenance.json").read_text()))
              for t in templates]
    for i in range(n):
        tpl, meta, prov = loaded[i % len(loaded)]
        run_id = f"d92-5-top10-20261201T{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}Z-{i:06x}"
        folder = stage / run_id
        folder.mkdir()
        for entry in tpl.rglob("*"):
            rel = entry.relative_to(tpl)
            if entry.is_dir():
                (folder / rel).mkdir(exist_ok=True)
            elif rel.as_posix() not in ("runtime_meta.json", "provenance.json"):
                os.link(entry, folder / rel)
        seed = 100_000 + i
        p = dict(prov, seed=seed, config=dict(prov["config"], resolved=dict(prov["config"]["resolved"], seed=seed)))
        text = dumps_deterministic(p)
        (folder / "provenance.json").write_text(text)
        m = dict(meta, run_id=run_id, seed=seed, started_at=f"2026-12-01T00:00:00.{i:06d}+00:00")
        m["config"] = dict(meta["config"], resolved=dict(meta["config"]["resolved"], seed=seed))
        m["outputs"] = {"sha256": dict(meta["outputs"]["sha256"],
                                       **{"provenance.json": hashlib.sha256(text.encode()).hexdigest()})}
        (folder / "runtime_meta.json").write_text(sealed_text(m))


# as on a user's machine: bytecode is cached (this machine sets PYTHONDONTWRITEBYTECODE=1)
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}


CPU: list[float] = []  # CPU seconds (user + sys) of each timed process: the machine may be shared


def timed(cmd: list[str], cwd: Path, n: int, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    walls, cpus, out = [], [], ""
    for _ in range(n):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=ENV)
        walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        out = proc.stdout
        if proc.returncode not in ok:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr}")
    CPU.append(statistics.median(cpus))
    return statistics.median(walls), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="300 runs, one timing each")
    args = ap.parse_args()
    n, reps = (300, 1) if args.quick else (args.runs, 3)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        repo = temp_checkout(Path(tmp) / "repo")
        t0 = time.perf_counter()
        templates = make_templates(repo, 5 if args.quick else 20)
        clone(templates, n)
        (repo / "logs/.runs.sqlite").unlink()  # the templates indexed themselves; build from the folders
        total = n + len(templates)
        print(f"synthesized {n:,} run folders (+{len(templates)} real runs) in {time.perf_counter() - t0:.1f} s")
        build, _ = timed([py, "-m", "src.runs", "list", "--limit", "1"], repo, 1)
        print(f"index built from {total:,} folders (first list)   {build:.2f} s")
        lst, out = timed([py, "-m", "src.runs", "list"], repo, reps)
        assert f"{total} runs" in out, out[-300:]
        print(f"src.runs list over {total:,} runs (process wall)  median {lst:.3f} s   (target <= 1 s; "
              f"CPU {CPU[-1]:.3f} s)")
        flt, _ = timed([py, "-m", "src.runs", "list", "--where", "seed>=100100", "--where", "kpi.win_rate>0.4",
                        "--sort", "-kpi.total_pnl_krw", "--json"], repo, reps)
        print(f"src.runs list --where x2 --sort --json            median {flt:.3f} s   (CPU {CPU[-1]:.3f} s)")
        code = ("import time; import pandas; from src.api import load_runs; t=time.perf_counter(); c=time.process_time(); "
                "df=load_runs(); print(time.perf_counter()-t, time.process_time()-c, df.shape[0], df.shape[1])")
        calls, cpu = [], []
        for _ in range(reps):
            _, out = timed([py, "-c", code], repo, 1)
            secs, cpu_s, rows, cols = out.split()
            calls.append(float(secs))
            cpu.append(float(cpu_s))
        print(f"load_runs() over {int(rows):,} runs ({int(cols)} columns)  median {statistics.median(calls):.3f} s"
              f"   (target <= 1 s; CPU {statistics.median(cpu):.3f} s)")
        last, _ = timed([py, "-m", "src.compare", "--stage", "d92-5", "--last", "20", "--json"], repo, reps)
        whole, _ = timed([py, "-m", "src.compare", "--stage", "d92-5", "--json"], repo, 1)
        print(f"compare --stage d92-5 --last 20 (process wall)    median {last:.3f} s (CPU {CPU[-2]:.3f} s)   "
              f"vs the whole stage ({total:,} runs read and verified) {whole:.2f} s")


if __name__ == "__main__":
    main()
