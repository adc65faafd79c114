"""`from src.api import load_runs, load_trades`: runs in pandas, served from the run index."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from conftest import load_json, run_cli

pd = pytest.importorskip("pandas")


def _plain(v):
    """NaN (pandas' missing) as None; numpy scalars as Python numbers."""
    if isinstance(v, float) and math.isnan(v):
        return None
    return v.item() if hasattr(v, "item") else v


def test_load_runs_over_a_sweep_equals_compare_json_row_for_row(repo: Path) -> None:
    from src.api import load_runs, load_trades

    sweep = run_cli(repo, "-m", "stage=d92-5", "seed=1,2,3", "zone_profile=default,wide", timeout=300)
    assert sweep.returncode in (0, 1), sweep.stderr
    cmp = run_cli(repo, "--stage", "d92-5", "--json", module="src.compare")
    assert cmp.returncode == 0, cmp.stderr
    expected = json.loads(cmp.stdout)["runs"]
    df = load_runs(stage="d92-5", root=repo)
    assert len(df) == len(expected) == 6
    for want, (_, row) in zip(expected, df.iterrows()):
        got = {k: _plain(row[k]) for k in ("run", "status", "problems", "started_at", "fingerprint", "zone_profile",
                                           "universe", "seed", "round_trips", "win_rate", "total_pnl_krw", "gates")}
        got["tp/sl/tl/sr"] = row["exits"]
        assert got == want
    # flattened config and KPIs, one column each, the values of each run's own files
    for _, row in df.iterrows():
        folder = repo / row["folder"]
        kpi = load_json(folder / "kpi_summary.json")
        resolved = load_json(folder / "runtime_meta.json")["config"]["resolved"]
        assert row["config.seed"] == resolved["seed"] == row["seed"]
        assert row["config.zone_profile.name"] == resolved["zone_profile"]["name"]
        assert row["kpi.exit_reasons.take_profit"] == kpi["exit_reasons"]["take_profit"]
        assert row["kpi.fees_krw"] == kpi["fees_krw"]
    picked = load_runs(where=["seed=2", "zone_profile.name=wide"], root=repo)
    assert list(picked["config.seed"]) == [2] and list(picked["zone_profile"]) == ["wide"]
    assert list(load_runs(where={"seed": 3}, root=repo)["seed"]) == [3, 3]
    trades = load_trades(picked, root=repo)
    lines = (repo / picked["folder"].iloc[0] / "trades.jsonl").read_text().splitlines()
    assert len(trades) == len(lines) and set(trades["run"]) == {picked["run"].iloc[0]}
    assert trades["pnl_krw"].sum() == pytest.approx(sum(json.loads(x)["pnl_krw"] for x in lines))
    assert len(load_trades([picked["run"].iloc[0]], root=repo)) == len(lines)


def test_without_pandas_the_error_names_the_extra(repo: Path) -> None:
    code = ("import sys; sys.modules['pandas'] = None\n"
            "from src.api import load_runs\n"
            "try:\n    load_runs()\nexcept ImportError as e:\n    print(e)\n")
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "pip install '.[analysis]'" in proc.stdout
    assert "analysis = [" in (repo / "pyproject.toml").read_text() and '"pandas' in (repo / "pyproject.toml").read_text()
