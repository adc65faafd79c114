"""Golden run: the default smoke's KPIs are pinned exactly.

If this fails after a deliberate change to the engine, market or defaults, regenerate
with `python -m src.run stage=d92-5 run.id=golden run.overwrite=true`, copy
logs/d92-5/golden/kpi_summary.json to tests/golden/d92-5_kpi_summary.json and the
trades.jsonl sha256 to tests/golden/d92-5_trades.sha256, and explain why in the commit.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import run_cli

GOLDEN = Path(__file__).parent / "golden"


def test_default_smoke_matches_golden(repo: Path) -> None:
    proc = run_cli(repo, "stage=d92-5", "run.id=golden")
    assert proc.returncode == 0, proc.stderr
    run_dir = repo / "logs/d92-5/golden"
    assert (run_dir / "kpi_summary.json").read_text() == (GOLDEN / "d92-5_kpi_summary.json").read_text()
    digest = hashlib.sha256((run_dir / "trades.jsonl").read_bytes()).hexdigest()
    assert digest == (GOLDEN / "d92-5_trades.sha256").read_text().strip()
