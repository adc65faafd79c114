"""The engine benchmark runs (quick mode) and its engines agree, so it cannot rot unnoticed."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO, clean_env


@pytest.mark.slow
def test_bench_engine_quick_runs_and_engines_agree() -> None:
    proc = subprocess.run([sys.executable, "benchmarks/bench_engine.py", "--quick"], cwd=REPO, capture_output=True,
                          text=True, env=clean_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for name in ("smoke", "dense 30min"):
        assert re.search(rf"^{name}: kernel [\d.]+ Mst/s, fast \(retired\) [\d.]+ Mst/s -> [\d.]+x.*same trades: yes$",
                         out, re.M), out
    assert re.search(r"^kernel compile, first-ever run \(empty cache\): [\d.]+ s$", out, re.M), out
