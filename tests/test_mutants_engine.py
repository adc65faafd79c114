"""Oracle cases for rules tests/mutate_oracle.py's added mutations reached and no test pinned.

Hand-computed like tests/test_oracle.py (same scripted quotes and conventions, every engine):
the last valid FX when the last tick has none, the KPI counters that only differ from
round trips when a position is still open or the session was cut short, the fees both
engines take from the composed config (EngineParams.from_config: the taker fee of each venue),
and a spread exactly at a zone's lo at an FX whose reciprocal rounds (the kernel's entry screen).
"""
from __future__ import annotations

import pytest

from conftest import REPO
from oracle_market import Q, Tick
from src.config.loader import load_config
from src.config.schema import Profile, Zone
from src.engine.kpi import summarize
from src.engine.loop import EngineParams
from test_oracle import ENTRY, FX, HOLD0, assert_trades, engine, krw, params, play  # noqa: F401 (engine: fixture)

TAKE = Q(128.0, 128.0, krw(128.5), krw(128.625))  # exit spread 5u: captured 3u = tp (test_oracle's take)


def test_the_last_fx_is_the_last_valid_one(engine) -> None:
    """A last tick with no FX (NaN) does not become the session's FX: the KPIs stay at 1300.
    BTC: no fees, take profit at 30 s: 8 x (167700 - 167212.5) = +3900 KRW = 3.0 USD at 1300."""
    res = play(engine, ("BTC",), [Tick(0.0, FX, (ENTRY,)), Tick(30.0, FX, (TAKE,)),
                                  Tick(60.0, float("nan"), (HOLD0,))], params(("BTC",), usdt_fee=0.0, krw_fee=0.0))
    assert res.last_fx == 1300.0
    assert (res.ticks, res.market_updates) == (3, 2)  # the NaN-FX tick runs but updates nothing
    k = summarize(res, params(("BTC",)).applied, {"sha256": "-"}, 90.0, 30.0)
    assert (k["fx_rate"], k["total_pnl_krw"], k["total_pnl_usd"]) == (1300.0, 3900.0, 3.0)


def test_no_valid_fx_at_all_reports_no_fx_rate(engine) -> None:
    """Every tick without an FX: nothing is decided, and fx_rate is null (AC-4 then fails), not NaN."""
    res = play(engine, ("BTC",), [Tick(0.0, float("nan"), (ENTRY,)), Tick(30.0, float("nan"), (TAKE,))])
    k = summarize(res, params(("BTC",)).applied, {"sha256": "-"}, 60.0, 30.0)
    assert (res.ticks, res.market_updates, res.entry_signals) == (2, 0, 0)
    assert k["fx_rate"] is None and k["total_pnl_usd"] == 0.0


def test_entries_count_the_positions_still_open_and_simulated_time_the_ticks(engine) -> None:
    """BTC and ETH enter at 0 s; BTC takes profit at 30 s, ETH is still open at the end:
    2 entries, 1 round trip, 1 open. Two ticks of 30 s simulate 60 s of a planned 600 s."""
    res = play(engine, ("BTC", "ETH"), [Tick(0.0, FX, (ENTRY, ENTRY)), Tick(30.0, FX, (TAKE, HOLD0))])
    k = summarize(res, params(("BTC", "ETH")).applied, {"sha256": "-"}, 600.0, 30.0)
    assert (k["entries"], k["round_trips"], k["open_positions_at_end"]) == (2, 1, 1)
    assert (k["simulated_s"], k["planned_duration_s"], k["ticks"]) == (60.0, 600.0, 2)
    # BTC with fees 10/5 bps: -102.05 KRW (test_oracle's trade record); no win anywhere
    assert (k["wins"], k["per_symbol"]["BTC"]["wins"], k["per_symbol"]["BTC"]["pnl_krw"]) == (0, 0, -102.05)
    assert (k["per_symbol"]["ETH"]["round_trips"], k["per_symbol"]["ETH"]["pnl_krw"]) == (0, 0.0)


@pytest.mark.parametrize("overrides,usdt,krw_fee", [
    ([], 10.0, 5.0),  # conf/costs/default.yaml: Binance 10 bps, Upbit 5 bps (maker = taker there)
    (["costs.usdt_venue.taker_fee_bps=7", "costs.usdt_venue.maker_fee_bps=2",
      "costs.krw_venue.taker_fee_bps=3", "costs.krw_venue.maker_fee_bps=1"], 7.0, 3.0),
])
def test_the_engines_take_each_venues_taker_fee_from_the_config(overrides: list[str], usdt: float,
                                                               krw_fee: float) -> None:
    """Every fill is a taker order: the USDT venue's taker fee on the USDT legs, the KRW venue's on
    the KRW legs; a round trip pays each twice (20 bps for 7 + 3)."""
    cfg = load_config(["stage=d92-5", *overrides], REPO).cfg
    p = EngineParams.from_config(cfg)
    assert (p.usdt_fee_bps, p.krw_fee_bps, p.round_trip_fee_bps) == (usdt, krw_fee, 2.0 * (usdt + krw_fee))


def test_a_spread_exactly_at_the_first_zone_enters_at_any_fx(engine) -> None:
    """The kernel screens entries without dividing (KRW x 1/FX); 1/FX is rounded, so the screen
    keeps a margin. FX 1000.25: the KRW ask 127.875 x 1000.25 = 127906.96875 (exact) is 127.875 USD
    by division, but 127906.96875 x fl(1/1000.25) = 127.87500000000001. Direction -1 with the
    USDT bid at 128.5: spread (128.5 - 127.875) / 127.875 * 1e4 = 48.87585532746823 bps in float64,
    and the only zone starts exactly there: a signal that enters (8 coins: 2048 x 0.5 / 128.5)."""
    lo = 48.87585532746823
    zone = Zone(lo_bps=lo, hi_bps=390.625, tp_bps=29.296875, sl_bps=19.53125, size_frac=0.5)
    profile = Profile(zones=[zone], soft_limit_s=60.0, hard_limit_s=120.0, min_loss_bps=20.234375)
    fx = 1000.25
    q = Q(128.5, 128.625, 127.75 * fx, 127.875 * fx)
    res = play(engine, ("BTC",), [Tick(0.0, fx, (q,))], params(("BTC",), profile))
    assert [(p.direction, p.entry_spread_bps, p.entry.qty) for p in res.open_positions] == [(-1, lo, 1024.0 / 128.5)]
    assert res.entry_signals == 1


def test_a_buy_krw_sell_usdt_round_trip_record(engine) -> None:
    """Direction -1 (KRW cheap) money, leg by leg. Enter: USDT bid 128 / KRW ask 127 USD:
    (128 - 127) / 127 * 1e4 = 78.740157 bps, zone 0: 2048 x 0.5 / 128 (the USDT bid sold) = 8 coins;
    sell 8 USDT-side at 128, buy 8 KRW-side at 127 x 1300 = 165100. Exit (take profit): USDT ask 127.875,
    KRW bid 127.5 USD: (127.875 - 127.5) / 127.5 * 1e4 = 29.411765 bps, captured 49.33 >= tp 3u;
    buy back USDT at 127.875, sell KRW at 127.5 x 1300 = 165750."""
    enter = Q(128.0, 128.125, krw(126.875), krw(127.0))
    out = Q(127.75, 127.875, krw(127.5), krw(127.625))  # KRW mid 127.5625 < USDT mid 127.8125: no flip for d=-1
    res = play(engine, ("ETH",), [Tick(0.0, FX, (enter,)), Tick(30.0, FX, (out,))])
    assert_trades(res, [{
        "direction": "buy_krw_sell_usdt", "entry_spread_bps": 78.7402, "exit_spread_bps": 29.4118,
        "qty": 8.0, "entry_usdt_px": 128.0, "entry_krw_px": 165100.0, "exit_usdt_px": 127.875,
        "exit_krw_px": 165750.0,
        # KRW legs 5e-4 * 8 * (165100 + 165750) = 1323.4; USDT legs 1e-3 * 8 * (128 + 127.875) = 2.047 USDT
        # x 1300 = 2661.1; together 3984.5
        "fees_krw": 3984.5, "slippage_krw": 0.0,
        # KRW gross -1 x 8 x (165100 - 165750) = +5200; USDT gross -1 x 8 x (127.875 - 128) = +1 USDT;
        # 5200 - 1323.4 + (1 - 2.047) x 1300 = 2515.5 KRW = 1.935 USD
        "pnl_krw": 2515.5, "pnl_usd": 1.935, "exit_reason": "take_profit",
    }])


def test_exits_use_the_positions_own_zone(engine) -> None:
    """A zone-1 position (tp 6u, sl 4u) holds at a capture of 4u and at a widening of 3u, both past
    zone 0's tp 3u / sl 2u; it takes profit at 6u. Entry at 16u (USDT ask 128, KRW bid 130 USD)."""
    enter = Q(127.875, 128.0, krw(130.0), krw(130.125))
    gain4 = Q(128.0, 128.0, krw(129.375), krw(129.5))  # exit spread (129.5 - 128) / 128 = 12u: captured 4u
    loss3 = Q(128.0, 128.0, krw(130.25), krw(130.375))  # 19u: widened by 3u
    gain6 = Q(128.0, 128.0, krw(129.125), krw(129.25))  # 10u: captured 6u = tp of zone 1
    res = play(engine, ("BTC",), [Tick(0.0, FX, (enter,)), Tick(10.0, FX, (gain4,)), Tick(20.0, FX, (loss3,)),
                                  Tick(30.0, FX, (gain6,))])
    assert [(t["exit_t_s"], t["exit_reason"], t["zone"]) for t in res.trades] == [
        (30.0, "take_profit", "117.188-390.625")]


def test_the_kill_switch_nets_the_days_wins_against_its_losses(engine) -> None:
    """No fees, limit 2 USD. At 30 s BTC takes profit (+3900 KRW = +3 USD), then ETH stops out
    (8 x (167700 - 129.25 x 1300) = -2600 KRW = -2 USD, exactly the limit): the day stands at +1 USD,
    so XRP's signal in the same tick enters."""
    stop = Q(128.0, 128.0, krw(129.125), krw(129.25))  # exit spread 10u: widened by sl 2u
    flat = Q(128.0, 128.0, krw(128.25), krw(128.375))
    symbols = ("BTC", "ETH", "XRP")
    res = play(engine, symbols, [Tick(0.0, FX, (ENTRY, ENTRY, flat)), Tick(30.0, FX, (TAKE, stop, ENTRY))],
               params(symbols, usdt_fee=0.0, krw_fee=0.0, daily_loss_limit_usd=2.0))
    assert [(t["symbol"], t["pnl_usd"]) for t in res.trades] == [("BTC", 3.0), ("ETH", -2.0)]
    assert [(p.symbol_idx, p.entry_t_s) for p in res.open_positions] == [(2, 30.0)]
    assert res.rejections["kill_switch"] == 0
