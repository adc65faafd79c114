"""Every benchmark under benchmarks/ runs in its --quick mode and prints its figures.

benchmarks/README.md documents `python benchmarks/<b>.py`; a benchmark that crashes (as bench_engine.py
once did with a NameError) is a broken documented command. Each runs as a user types it, from a
copy of the repo (the benchmarks make their own temporary checkouts from there).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, clean_env, copy_repo

NUM = r"\d[\d,]*(?:\.\d+)?"
# benchmark -> lines its output must hold (one regex each: the figure with its number)
FIGURES = {
    "bench_smoke.py": [rf"end-to-end wall\s+median {NUM} s", rf"guard \+ record\s+median {NUM} ms",
                       rf"simulated s / wall s median {NUM}x"],
    # its table's layout belongs to the engine work; a row of figures is what must come out
    "bench_engine.py": [rf"^\S.*\s{NUM}\s+{NUM}"],
    "bench_replay.py": [rf"throughput: {NUM} M symbol-ticks/s", rf"peak RSS: {NUM} MB",
                        rf"build \(open \+ validate \+ sha256\) {NUM} s"],
    "bench_dvc_compare.py": [rf"dvc repro smoke, nothing changed\s+median {NUM} s",
                             rf"compare two runs \(process wall\)\s+median {NUM} s",
                             rf"made 10 small runs in-process in {NUM} s",
                             rf"compare table of .* median {NUM} s"],
    "bench_sweep.py": [rf"^basic\s+{NUM}s", rf"^joblib\s+{NUM}s .* {NUM}x$",
                       r"same fingerprints on every launcher: True"],
    "bench_market.py": [rf"^synthetic-v1\s+{NUM}", rf"^synthetic-v2\s+{NUM}", rf"v2 / v1 speed: {NUM}x"],
    "bench_reproduce.py": [rf"reproduce / smoke\s+{NUM}x", rf"keeping inputs \(clean tree\)\s+median {NUM} ms",
                           rf"keeping inputs, CPU time\s+median {NUM} ms"],
    "bench_report.py": [rf"^1 smoke run\s+{NUM} s\s+<= 1 s\s+{NUM} KB", rf"^20 smoke runs\s+{NUM} s\s+<= 3 s\s+{NUM} KB",
                        rf"^24-hour top-100 run\s+{NUM} s\s+{NUM} KB\s+< 2 MB"],
    "bench_runs.py": [rf"src\.runs list over {NUM} runs \(process wall\)\s+median {NUM} s",
                      rf"load_runs\(\) over {NUM} runs \({NUM} columns\)\s+median {NUM} s",
                      rf"compare --stage d92-5 --last 20 \(process wall\)\s+median {NUM} s.*vs the whole stage"],
}
BENCHES = sorted(p.name for p in (REPO / "benchmarks").glob("bench_*.py"))


def test_every_benchmark_has_a_quick_case() -> None:
    assert len(BENCHES) >= 5 and set(BENCHES) <= set(FIGURES), sorted(set(BENCHES) - set(FIGURES))
    for name in BENCHES:
        assert "--quick" in (REPO / "benchmarks" / name).read_text(encoding="utf-8"), name


SLOW = {"bench_dvc_compare.py", "bench_sweep.py", "bench_market.py", "bench_reproduce.py",
        "bench_report.py", "bench_runs.py"}  # 5-60 s each on a shared 2-core machine


@pytest.mark.parametrize("bench", [pytest.param(b, marks=pytest.mark.slow) if b in SLOW else b for b in BENCHES])
def test_benchmark_quick_mode_runs_and_prints_its_figures(bench: str, tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    bindir = str(Path(sys.executable).parent)
    env = clean_env(DVC_NO_ANALYTICS="1", PATH=bindir + ":" + clean_env().get("PATH", ""))
    proc = subprocess.run([sys.executable, f"benchmarks/{bench}", "--quick"], cwd=repo, capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    for figure in FIGURES[bench]:
        assert re.search(figure, proc.stdout, flags=re.M), (figure, proc.stdout[-3000:])
