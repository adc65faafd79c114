"""The compiled market generator over worker threads (src/market/synth_workers.py): the same
bytes for any number of workers, the price growth chosen over the whole block, and
MARKET_WORKERS read with a user error for a bad value."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, clean_env, run_cli
from src.config.loader import load_config
from src.market import synth_workers
from src.market.errors import MarketInputError
from src.market.synthetic import SyntheticMarket

FIELDS = ("t_s", "fx", "usdt_bid", "usdt_ask", "krw_bid", "krw_ask", "usdt_size", "krw_size")
CASES = {  # fixed and walking FX, pools that must grow, every tick a jump
    "smoke": ["stage=d92-5", "stage.duration_s=8000"],
    "fx-walk": ["stage=d92-5", "stage.duration_s=2000", "market.fx_kind=walk", "market.fx_vol_bps_per_sqrt_s=0.5"],
    "jump-every-tick": ["stage=d92-5", "stage.duration_s=4000", "market.jump_rate_per_hour=4000",
                        "market.depth_noise=6.0"],
}
# 60 s ticks at 65 % a year: a step beyond 1/256 (the Taylor polynomial's bound) is a ~4.3 sigma
# event; in four of these six blocks one worker's five symbols have one and the other's do not
MIXED = ["stage=d92-5", "stage.duration_s=1296000", "stage.tick_s=60", "market.price_vol_annual=0.65"]


def _market(overrides: list[str], compiled: bool, workers: int | None = None) -> SyntheticMarket:
    cfg = load_config(overrides, REPO).cfg
    return SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s,
                           compiled=compiled, workers=workers)


def _bytes(m: SyntheticMarket, chunk: int = 3600) -> dict[str, bytes]:
    parts = list(m.chunks(chunk))
    return {f: b"".join(getattr(c, f).tobytes() for c in parts) for f in FIELDS}


def test_any_number_of_workers_gives_the_numpy_paths_bytes() -> None:
    for name, ov in CASES.items():
        ref = _bytes(_market(ov, compiled=False))
        for workers in (1, 2, 3, 10):
            got = _bytes(_market(ov, compiled=True, workers=workers), 777)
            assert [f for f in FIELDS if got[f] != ref[f]] == [], (name, workers)


def test_the_price_growth_is_chosen_over_the_whole_block_not_per_worker() -> None:
    """A block where one worker's symbols need detmath's exp and the other's fit the Taylor
    polynomial: the Taylor worker runs again with the exp forced, so 1 and 2 workers agree."""
    from src.engine import aot

    eng = aot.engine()
    block, calls = eng.block, []

    def recording(*args):  # (force_exp, result) of every call
        calls.append((float(args[6][6]), block(*args)))
        return calls[-1][1]

    eng.block = recording
    try:
        ref = _bytes(_market(MIXED, compiled=False))
        one = _bytes(_market(MIXED, compiled=True, workers=1))
        growth_one = {r for _, r in calls if r < 0}
        calls.clear()
        two = _bytes(_market(MIXED, compiled=True, workers=2))
    finally:
        eng.block = block
    assert growth_one == {synth_workers.TAYLOR, synth_workers.EXP}  # both kinds of block in this session
    assert (1.0, synth_workers.EXP) in calls  # a forced rerun happened
    assert [f for f in FIELDS if one[f] != ref[f]] == []
    assert [f for f in FIELDS if two[f] != ref[f]] == []


def test_default_workers_follow_cpus_symbols_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(synth_workers.ENV, raising=False)
    monkeypatch.setattr(synth_workers.os, "sched_getaffinity", lambda _pid: set(range(16)))
    assert synth_workers.default_workers(100) == synth_workers.MAX_WORKERS == 4
    assert synth_workers.default_workers(16) == 2  # at least 8 symbols a worker
    assert synth_workers.default_workers(10) == 1
    monkeypatch.setattr(synth_workers.os, "sched_getaffinity", lambda _pid: {0, 1})
    assert synth_workers.default_workers(100) == 2
    monkeypatch.setenv(synth_workers.ENV, "3")
    assert synth_workers.default_workers(100) == 3
    assert synth_workers.default_workers(2) == 2  # never more workers than symbols
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv(synth_workers.ENV, bad)
        with pytest.raises(MarketInputError, match=rf"MARKET_WORKERS='{bad}': expected a whole number"):
            synth_workers.default_workers(100)


def test_a_bad_market_workers_value_is_a_usage_error_through_the_cli(repo: Path) -> None:
    res = run_cli(repo, "stage=d92-5", env=clean_env(**{synth_workers.ENV: "lots"}))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "MARKET_WORKERS='lots'" in lines[-1], res.stderr
    assert "Traceback" not in res.stderr
