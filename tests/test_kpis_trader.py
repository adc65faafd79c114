"""Trader KPIs (src/engine/stats.py) against hand-computed values, for every engine.

The scripted session uses test_oracle.py's conventions (USDT at 128, spreads in units of
u = 1/1024 of the price, KRW = FX x a USD value), so every number below is exact; the
arithmetic is in the comments. Fees are 0 in the session (PnL = captured spread x qty),
and the fee split is checked on its own records.
"""
from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import load_json, run_cli
from oracle_market import Q, ScriptedMarket, Tick
from src.config.schema import Profile, RiskConfig, Zone
from src.engine import stats
from src.engine.kernel_run import run_session_kernel
from src.engine.kpi import summarize
from src.engine.loop import EngineParams, SessionResult, run_session
from src.engine.stats import VenueFee
from src.engine.zones import Applied
from src.market.tape import BookShape

ENGINES: dict[str, Callable[..., SessionResult]] = {"reference": run_session, "kernel": run_session_kernel}
FX = 1300.0
BOOK = BookShape(levels=3, step_bps=10.0, growth=2.0)
PROFILE = Profile(  # test_oracle.PROFILE: zone 0 = [4u, 10u) tp 3u sl 2u size 0.5; zone 1 = [12u, 40u) tp 6u sl 4u size 1
    zones=[Zone(lo_bps=39.0625, hi_bps=97.65625, tp_bps=29.296875, sl_bps=19.53125, size_frac=0.5),
           Zone(lo_bps=117.1875, hi_bps=390.625, tp_bps=58.59375, sl_bps=39.0625, size_frac=1.0)],
    soft_limit_s=60.0, hard_limit_s=120.0, min_loss_bps=20.234375)
RISK = RiskConfig(max_notional_usd=2048.0, max_open_positions=20, daily_loss_limit_usd=1e9, min_fill_usd=50.0)
VENUES = (VenueFee("binance", 0.0), VenueFee("upbit", 0.0))
SYMBOLS = ("BTC", "ETH")


def krw(usd: float) -> float:
    return usd * FX


# BTC trades zone 0 (8u, qty 2048 x 0.5 / 128 = 8); ETH zone 1 (16u, qty 2048 / 128 = 16)
ENTER0 = Q(128.0, 128.0, krw(129.0), krw(129.125))  # (129 - 128) / 128 = 8u: buy USDT 128, sell KRW 167700
TAKE0 = Q(128.0, 128.0, krw(128.5), krw(128.625))  # exit spread 5u, captured 3u: 8 x (167700 - 167212.5) = +3900
STOP0 = Q(128.0, 128.0, krw(129.125), krw(129.25))  # exit spread 10u, widened 2u: 8 x (167700 - 168025) = -2600
ENTER1 = Q(127.875, 128.0, krw(130.0), krw(130.125))  # 16u: buy USDT 128, sell KRW 169000
TAKE1 = Q(128.0, 128.0, krw(129.0), krw(129.25))  # exit spread 10u, captured 6u: 16 x (169000 - 168025) = +15600
STOP1 = Q(128.0, 128.0, krw(130.25), krw(130.5))  # exit spread 20u, widened 4u: 16 x (169000 - 169650) = -10400
FLAT = Q(128.0, 128.0, krw(128.25), krw(128.375))  # 2u: no signal
TICK_S = 1800.0


def script(t0: float = 0.0) -> list[Tick]:
    """Seven ticks 30 min apart: 3.5 simulated hours (3 whole), positions overlap at 7200-9000."""
    rows = [(ENTER0, FLAT),  # 0      BTC in
            (TAKE0, ENTER1),  # 1800  BTC +3900 out; ETH in
            (ENTER0, STOP1),  # 3600  BTC in; ETH -10400 out
            (STOP0, FLAT),  # 5400    BTC -2600 out
            (ENTER0, ENTER1),  # 7200 both in
            (TAKE0, TAKE1),  # 9000   BTC +3900, ETH +15600 out
            (ENTER0, FLAT)]  # 10800  BTC in, still open at the end (12600)
    return [Tick(t0 + i * TICK_S, FX, qs) for i, qs in enumerate(rows)]


def engine_params(usdt_fee: float = 0.0, krw_fee: float = 0.0) -> EngineParams:
    return EngineParams(tuple(Applied(s, "oracle", PROFILE, "fallback") for s in SYMBOLS), usdt_fee, krw_fee, 1.0, RISK)


def session_kpis(engine: str, t0: float = 0.0) -> dict[str, Any]:
    res = ENGINES[engine](ScriptedMarket(SYMBOLS, script(t0), BOOK), engine_params(), lambda t: None)
    return summarize(res, engine_params().applied, {"sha256": "-"}, 7 * TICK_S, TICK_S, start_t_s=t0, venues=VENUES)


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def test_the_session_is_the_scripted_one(engine: str) -> None:
    res = ENGINES[engine](ScriptedMarket(SYMBOLS, script(), BOOK), engine_params(), lambda t: None)
    assert [(t["symbol"], t["exit_t_s"], t["exit_reason"], t["pnl_krw"]) for t in res.trades] == [
        ("BTC", 1800.0, "take_profit", 3900.0), ("ETH", 3600.0, "stop_loss", -10400.0),
        ("BTC", 5400.0, "stop_loss", -2600.0), ("BTC", 9000.0, "take_profit", 3900.0),
        ("ETH", 9000.0, "take_profit", 15600.0)]
    assert [(p.symbol_idx, p.entry_t_s) for p in res.open_positions] == [(0, 10800.0)]


def test_trader_kpis_by_hand(engine: str) -> None:
    k = session_kpis(engine)
    assert k["total_pnl_krw"] == 10400.0  # 3900 - 10400 - 2600 + 3900 + 15600
    assert k["gross_pnl_krw"] == 10400.0  # no fees: gross = net
    assert k["avg_win_krw"] == 7800.0  # (3900 + 3900 + 15600) / 3
    assert k["avg_loss_krw"] == -6500.0  # (-10400 - 2600) / 2
    assert k["profit_factor"] == 1.8  # 23400 / 13000
    assert k["expectancy_krw"] == 2080.0  # 10400 / 5
    # Hourly realized equity (closes before the sample): 0 @0, 3900 @3600, -9100 @7200, 10400 @10800.
    # Changes 1300 x (3, -10, 15): mean 1300 x 8/3; sample variance 1300^2 x (1 + 1444 + 1369) / 9 / 2
    # = 1300^2 x 469/3; Sharpe = (8/3) / sqrt(469/3) = 8 / sqrt(1407) = 0.2132764...
    assert k["sharpe_hourly"] == 0.213276
    # Sortino: downside deviation sqrt(13000^2 / 3); (1300 x 8/3) / (13000 / sqrt 3) = 0.8 sqrt(3) / 3 = 0.4618802...
    assert k["sortino_hourly"] == 0.46188
    # Equity after each close: 3900 (peak, t=1800), -6500, -9100 (trough, 5400), -5200, 10400 (9000: back over 3900)
    assert k["max_drawdown"] == {"krw": 13000.0, "start_t_s": 1800.0, "trough_t_s": 5400.0, "recovery_t_s": 9000.0}
    assert k["max_drawdown"]["krw"] == k["max_drawdown_krw"]
    # Open: [0,1800) [1800,3600) [3600,5400) [7200,9000) twice (overlapping) [10800,12600) (still open):
    # 5400 + 1800 + 1800 = 9000 of 12600 s
    assert k["exposure_share"] == 0.714286
    # USDT legs: BTC 3 x 8 x (128 + 128) = 6144, ETH 2 x 16 x 256 = 8192, the open BTC's entry 8 x 128 = 1024
    assert k["turnover_usd"] == 15360.0
    assert k["per_zone"] == {"oracle/117.188-390.625": {"round_trips": 2, "wins": 1, "pnl_krw": 5200.0},
                             "oracle/39.0625-97.6562": {"round_trips": 3, "wins": 2, "pnl_krw": 5200.0}}
    assert k["costs_by_venue"] == {"binance": {"fees_krw": 0.0, "slippage_krw": None},
                                   "upbit": {"fees_krw": 0.0, "slippage_krw": None}}


def test_both_engines_give_the_same_kpis() -> None:
    assert json.dumps(session_kpis("reference"), sort_keys=True) == json.dumps(session_kpis("kernel"), sort_keys=True)


def test_hours_count_from_the_first_tick(engine: str) -> None:
    """The same session starting at t=2000 s: the same hourly figures, times shifted by 2000
    (hours counted from t=0 would sample 0, -6500, -9100 at 3600, 7200, 10800)."""
    k = session_kpis(engine, t0=2000.0)
    assert (k["sharpe_hourly"], k["sortino_hourly"], k["exposure_share"]) == (0.213276, 0.46188, 0.714286)
    assert k["max_drawdown"] == {"krw": 13000.0, "start_t_s": 3800.0, "trough_t_s": 7400.0, "recovery_t_s": 11000.0}


def test_equity_samples_and_the_partial_last_hour() -> None:
    exit_t, pnl = [1800.0, 3600.0, 5400.0, 9000.0, 9000.0], [3900.0, -10400.0, -2600.0, 3900.0, 15600.0]
    # a close exactly at a sample time counts in the next hour; the end (12600) is sampled too
    assert stats.equity_samples(exit_t, pnl, 0.0, 12600.0) == [
        (0.0, 0.0), (3600.0, 3900.0), (7200.0, -9100.0), (10800.0, 10400.0), (12600.0, 10400.0)]
    assert stats.equity_samples([], [], 50.0, 650.0) == [(50.0, 0.0), (650.0, 0.0)]  # the smoke: 10 minutes
    assert stats.equity_samples([10.0], [5.0], 0.0, 7200.0) == [(0.0, 0.0), (3600.0, 5.0), (7200.0, 5.0)]


@pytest.mark.parametrize("equity,expected", [
    ([0.0, 10.0], (None, None)),  # one hourly change: no deviation
    ([0.0, 10.0, 20.0], (None, None)),  # equal changes: zero variance, no loss
    ([0.0, -10.0, -20.0], (None, -1.0)),  # equal losses: no variance; downside sqrt(200 / 2) = 10, mean -10
    ([0.0, 10.0, 30.0], (2.12132, None)),  # changes 10, 20: mean 15 / sample std 7.0710678 = 2.1213203; no loss
    ([0.0, 30.0, 20.0], (0.353553, 1.414214)),  # 30, -10: mean 10 / sqrt((20^2 + 20^2) / 1); 10 / sqrt(100 / 2)
])
def test_hourly_ratio_conventions(equity: list[float], expected: tuple[Any, Any]) -> None:
    assert stats.hourly_ratios(equity) == expected


@pytest.mark.parametrize("exit_t,pnl,expected", [
    ([], [], {"krw": 0.0, "start_t_s": None, "trough_t_s": None, "recovery_t_s": None}),
    ([10.0, 20.0], [5.0, 1.0], {"krw": 0.0, "start_t_s": None, "trough_t_s": None, "recovery_t_s": None}),
    # falls from the start's 0 and never comes back
    ([10.0, 20.0], [-5.0, 2.0], {"krw": 5.0, "start_t_s": 0.0, "trough_t_s": 10.0, "recovery_t_s": None}),
    # back at the peak exactly (30: recovered), then a deeper fall from that later peak
    ([10.0, 20.0, 30.0, 40.0, 50.0], [4.0, -2.0, 2.0, -3.0, 3.0],
     {"krw": 3.0, "start_t_s": 30.0, "trough_t_s": 40.0, "recovery_t_s": 50.0}),
    # one loss: the first close of the peak, and recovery at the first close back at it
    ([10.0, 20.0, 30.0], [4.0, -1.0, 1.0], {"krw": 1.0, "start_t_s": 10.0, "trough_t_s": 20.0, "recovery_t_s": 30.0}),
])
def test_drawdown_start_trough_recovery(exit_t: list[float], pnl: list[float], expected: dict) -> None:
    assert stats.drawdown(exit_t, pnl, 0.0) == expected


def test_per_zone_lists_every_zone_of_the_applied_profiles() -> None:
    recs = [("oracle", "39.0625-97.6562", 10.0), ("oracle", "39.0625-97.6562", 0.0), ("other", "1-2", -4.0)]
    cols = {"profile": [r[0] for r in recs], "zone": [r[1] for r in recs]}
    applied = (Applied("BTC", "oracle", PROFILE, "fallback"),)
    assert stats.per_zone(cols.__getitem__, [r[2] for r in recs], applied) == {
        "oracle/117.188-390.625": {"round_trips": 0, "wins": 0, "pnl_krw": 0.0},  # never traded: still listed
        "oracle/39.0625-97.6562": {"round_trips": 2, "wins": 1, "pnl_krw": 10.0},  # a zero is not a win
        "other/1-2": {"round_trips": 1, "wins": 0, "pnl_krw": -4.0}}


def test_exposure_counts_overlaps_once() -> None:
    # [0,10) and [5,20) overlap -> [0,20); [20,30) touches it -> [0,30); an open one [90,100): 40 of 100
    assert stats.exposure_share([0.0, 5.0, 20.0], [10.0, 20.0, 30.0], [90.0], 100.0, 100.0) == 0.4
    assert stats.exposure_share([], [], [], 0.0, 0.0) == 0.0


def test_profit_factor_and_averages_edge_cases() -> None:
    def kp(pnl: list[float]) -> dict[str, Any]:
        recs = [{"pnl_krw": x, "exit_t_s": float(i), "entry_t_s": float(i), "qty": 1.0, "entry_usdt_px": 1.0,
                 "exit_usdt_px": 1.0, "fx_exit": 1300.0, "profile": "p", "zone": "1-2"} for i, x in enumerate(pnl)]
        return stats.trader_kpis(lambda n: [r[n] for r in recs], SessionResult(ticks=10), (), 1.0, start_t_s=0.0,
                                 net_krw=sum(pnl), fees_krw=0.0, venues=None)

    one_loss = kp([30.0, -10.0, 20.0])
    assert (one_loss["profit_factor"], one_loss["avg_win_krw"], one_loss["avg_loss_krw"]) == (5.0, 25.0, -10.0)
    no_loss = kp([30.0, 20.0])
    assert (no_loss["profit_factor"], no_loss["avg_loss_krw"]) == (None, None)  # nothing lost: no factor
    zero = kp([30.0, 0.0])  # a zero is not a win (the summary's `losses`), but loses nothing
    assert (zero["profit_factor"], zero["avg_loss_krw"], zero["avg_win_krw"]) == (None, 0.0, 30.0)
    none = kp([])
    assert (none["expectancy_krw"], none["avg_win_krw"], none["profit_factor"], none["costs_by_venue"]) == \
        (None, None, None, None)
    assert kp([-5.0])["profit_factor"] == 0.0


def test_fees_by_venue_add_up_to_the_recorded_fees() -> None:
    """USDT venue: 10 bps x 1 x (0.5 + 0.626) USDT x FX 1000 = 1.126 -> 1.13; KRW venue: 5 bps x
    (1126 + 1126) = 1.126, which rounded alone (1.13) would make 2.26, but the record's fees are
    round(2.252, 2) = 2.25: the KRW venue gets 2.25 - 1.13 = 1.12."""
    rec = {"qty": 1.0, "entry_usdt_px": 0.5, "exit_usdt_px": 0.626, "fx_exit": 1000.0, "entry_krw_px": 1126.0,
           "exit_krw_px": 1126.0, "fees_krw": 2.25}
    venues = (VenueFee("binance", 10.0), VenueFee("upbit", 5.0))
    got = stats.costs_by_venue(lambda n: [rec[n]], 2.25, venues)
    assert got == {"binance": {"fees_krw": 1.13, "slippage_krw": None}, "upbit": {"fees_krw": 1.12, "slippage_krw": None}}
    assert Decimal(repr(got["binance"]["fees_krw"])) + Decimal(repr(got["upbit"]["fees_krw"])) == Decimal("2.25")
    same = stats.costs_by_venue(lambda n: [rec[n]], 2.25, (VenueFee("x", 10.0), VenueFee("x", 5.0)))
    assert same == {"x": {"fees_krw": 2.25, "slippage_krw": None}}  # one venue under both names: all of it


def test_fees_by_venue_of_a_trade_with_fees(engine: str) -> None:
    """test_oracle's take-profit record: KRW legs 5e-4 x 8 x (167700 + 167212.5) = 1339.65, USDT legs
    1e-3 x 8 x 256 = 2.048 USDT x 1300 = 2662.4; fees 4002.05, PnL -102.05, gross 3900."""
    p = engine_params(usdt_fee=10.0, krw_fee=5.0)
    res = ENGINES[engine](ScriptedMarket(("BTC",), [Tick(0.0, FX, (ENTER0,)), Tick(30.0, FX, (TAKE0,))], BOOK),
                          replace(p, applied=p.applied[:1]), lambda t: None)
    k = summarize(res, p.applied[:1], {"sha256": "-"}, 60.0, 30.0,
                  venues=(VenueFee("binance", 10.0), VenueFee("upbit", 5.0)))
    assert (k["fees_krw"], k["total_pnl_krw"], k["gross_pnl_krw"]) == (4002.05, -102.05, 3900.0)
    assert k["costs_by_venue"] == {"binance": {"fees_krw": 2662.4, "slippage_krw": None},
                                   "upbit": {"fees_krw": 1339.65, "slippage_krw": None}}
    assert k["turnover_usd"] == 2048.0 and k["exposure_share"] == 0.5  # [0, 30) of 60 s


# -- through the CLI -------------------------------------------------------------------------

def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_cli_equity_csv_is_the_hourly_realized_equity(repo: Path) -> None:
    """Two simulated hours: equity.csv's rows recomputed from trades.jsonl, and the KPIs from equity.csv."""
    proc = run_cli(repo, "stage=d92-5", "stage.duration_s=7200", "run.id=eq", "universe=top20")
    assert proc.returncode in (0, 1), proc.stderr
    run_dir = repo / "logs/d92-5/eq"
    kpi = load_json(run_dir / "kpi_summary.json")
    trades = [json.loads(line) for line in (run_dir / "trades.jsonl").read_text().splitlines()]
    rows = _csv(run_dir / "plots/equity.csv")
    assert [float(r["t_s"]) for r in rows] == [0.0, 3600.0, 7200.0]
    for r in rows:
        closed = [Decimal(repr(t["pnl_krw"])) for t in trades if t["exit_t_s"] < float(r["t_s"])]
        assert Decimal(r["equity_krw"]) == sum(closed, Decimal(0)), r
    assert Decimal(rows[-1]["equity_krw"]) == Decimal(repr(kpi["total_pnl_krw"]))
    changes = [float(b["equity_krw"]) - float(a["equity_krw"]) for a, b in zip(rows, rows[1:])]
    assert kpi["sharpe_hourly"] == round(statistics.mean(changes) / statistics.stdev(changes), 6)
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in changes) / len(changes))
    assert kpi["sortino_hourly"] == (round(statistics.mean(changes) / down, 6) if down else None)
    steps = _csv(run_dir / "plots/equity_trades.csv")  # a step at every close
    assert len(steps) == len(trades) + 1 and float(steps[-1]["equity_krw"]) == kpi["total_pnl_krw"]
    venues = kpi["costs_by_venue"]
    assert sorted(venues) == ["binance", "upbit"]
    assert sum(Decimal(repr(v["fees_krw"])) for v in venues.values()) == Decimal(repr(kpi["fees_krw"]))
    assert Decimal(repr(kpi["gross_pnl_krw"])) == Decimal(repr(kpi["total_pnl_krw"])) + Decimal(repr(kpi["fees_krw"]))
    assert sum(z["round_trips"] for z in kpi["per_zone"].values()) == kpi["round_trips"]
    assert kpi["turnover_usd"] > 0 and 0 < kpi["exposure_share"] <= 1


def _gate_run(repo: Path, run_id: str, *over: str) -> tuple[int, str]:
    proc = run_cli(repo, "stage=d92-5", f"run.id={run_id}", *over)
    return proc.returncode, proc.stdout + proc.stderr


def test_profitability_gate_at_its_boundary(repo: Path) -> None:
    code, out = _gate_run(repo, "off")
    assert code == 0 and "PNL-1" not in out  # off in the smoke
    total = load_json(repo / "logs/d92-5/off/kpi_summary.json")["total_pnl_krw"]
    assert total < 0  # the smoke loses money and still passes its gates
    code, out = _gate_run(repo, "at", f"stage.profit_gate_krw={total!r}")
    assert code == 1 and "PNL-1  FAIL" in out, out  # total_pnl_krw > total: not strictly above
    code, out = _gate_run(repo, "below", f"stage.profit_gate_krw={round(total - 0.01, 2)!r}")
    assert code == 0 and "PNL-1  PASS" in out, out
    code, out = _gate_run(repo, "zero", "stage.profit_gate_krw=0")
    assert code == 1 and "PNL-1  FAIL" in out, out
    rules = load_json(repo / "logs/d92-5/at/runtime_meta.json")["config"]["resolved"]["stage"]["acceptance"]
    assert rules[-1] == {"id": "PNL-1", "description": f"total_pnl_krw > {total!r} KRW (profitability gate, "
                         "stage.profit_gate_krw)", "metrics": ["kpi.total_pnl_krw"], "op": "gt", "value": total}
    for run_id, want in (("at", 1), ("below", 0)):  # re-checked from the record
        assert run_cli(repo, f"logs/d92-5/{run_id}", module="src.acceptance").returncode == want


@pytest.mark.parametrize("value,message", [
    ("nan", "stage.profit_gate_krw=nan: must be a finite number"),
    ("inf", "stage.profit_gate_krw=inf: must be a finite number"),
])
def test_profitability_gate_value_is_checked(repo: Path, value: str, message: str) -> None:
    proc = run_cli(repo, "stage=d92-5", f"stage.profit_gate_krw={value}")
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {message}"), proc.stderr


def test_profitability_gate_id_clash_is_refused(repo: Path) -> None:
    proc = run_cli(repo, "stage=d92-5", "stage.profit_gate_krw=0", "stage.acceptance.0.id=PNL-1")
    assert proc.returncode == 2 and "stage.acceptance already has a rule with id PNL-1" in proc.stderr, proc.stderr


def test_compare_shows_the_trader_kpi_deltas(repo: Path) -> None:
    for run_id, seed in (("s1", "1"), ("s2", "2")):
        assert run_cli(repo, "stage=d92-5", f"run.id={run_id}", f"seed={seed}").returncode in (0, 1)
    proc = run_cli(repo, "logs/d92-5/s1", "logs/d92-5/s2", "--json", module="src.compare")
    assert proc.returncode == 0, proc.stderr
    deltas = {d["kpi"]: d for d in json.loads(proc.stdout)["kpi_deltas"]}
    a, b = (load_json(repo / f"logs/d92-5/{r}/kpi_summary.json") for r in ("s1", "s2"))
    for key in ("gross_pnl_krw", "profit_factor", "expectancy_krw", "turnover_usd"):
        assert deltas[key] == {"kpi": key, "a": a[key], "b": b[key], "delta": round(b[key] - a[key], 6)}
    assert "sharpe_hourly" not in deltas  # null in both 10-minute runs: no difference
