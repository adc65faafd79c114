"""Second golden run: a scripted replay through the real CLI, pinned byte for byte.

Unlike the smoke golden (tests/test_golden.py) it does not depend on the synthetic market
generator: the quotes come from tests/data/oracle_replay.parquet, written by
tests/data/make_oracle_replay.py with exact arithmetic. The script makes the run meet
every rule: a moving FX, rejections of every reason, soft and hard time limits, the kill
switch tripping on day 0 and resetting at midnight, fills that walk the book.

If this fails after a deliberate change to the engine, the default zone profile, the
costs or the KPI format: run the command in `ARGS` (from the repo root, with
`run.id=oracle-replay run.overwrite=true`), copy logs/d92-5/oracle-replay/kpi_summary.json
to tests/golden/oracle-replay_kpi_summary.json and the trades.jsonl sha256 to
tests/golden/oracle-replay_trades.sha256, and explain why in the commit.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from oracle_market import replay_script

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
DATA = HERE / "data" / "oracle_replay.parquet"
ARGS = ("stage=d92-5", "market=replay", "market.path=tests/data/oracle_replay.parquet", "universe.top_n=3",
        "stage.tick_s=60", "stage.duration_s=3600", "risk.max_open_positions=2", "risk.daily_loss_limit_usd=30")
# Every engine a user can choose must give the golden bytes (add new `engine=` choices here).
CLI_ENGINES = ("kernel", "reference")


def test_committed_replay_file_is_what_the_script_writes() -> None:
    """The file is data, but reviewable: its rows and metadata are the script's, value for value."""
    expected = replay_script().table()
    got = pq.read_table(DATA)
    assert got.schema.metadata == expected.schema.metadata
    assert got.cast(expected.schema).equals(expected)


@pytest.mark.parametrize("engine", CLI_ENGINES)
def test_scripted_replay_matches_golden(repo: Path, engine: str) -> None:
    (repo / "tests/data").mkdir(parents=True)
    shutil.copy(DATA, repo / "tests/data" / DATA.name)
    proc = run_cli(repo, *ARGS, f"engine={engine}", "run.id=oracle-replay")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = repo / "logs/d92-5/oracle-replay"
    kpi_text = (run_dir / "kpi_summary.json").read_text()
    # What the script is for: if a regenerated golden lost one of these, the scenario no longer tests it.
    kpi = json.loads(kpi_text)
    assert all(n > 0 for n in kpi["rejections"].values()), kpi["rejections"]
    assert kpi["rejections"]["kill_switch"] > 0 and kpi["time_limit_kinds"] == {"soft": 1, "hard": 3}
    assert all(kpi["exit_reasons"][r] > 0 for r in ("take_profit", "stop_loss", "spread_reversal"))
    trades = [json.loads(line) for line in (run_dir / "trades.jsonl").read_text().splitlines()]
    assert any(t["fx_entry"] != t["fx_exit"] for t in trades) and kpi["slippage_krw"] > 0
    assert kpi["market_data_updates"] == 60 * 3 - 1  # one missing XRP quote
    assert kpi_text == (GOLDEN / "oracle-replay_kpi_summary.json").read_text()
    digest = hashlib.sha256((run_dir / "trades.jsonl").read_bytes()).hexdigest()
    assert digest == (GOLDEN / "oracle-replay_trades.sha256").read_text().strip()
