"""An independent oracle for the engine's rules: scripted markets, hand-computed results.

Every expected number below is a literal worked out by hand (the arithmetic is in the
comment next to it), never by calling engine code, and every engine in ENGINES must
produce it. The differential tests (test_engine_equivalence.py) prove the engines agree
with each other; these prove they agree with the rules (SPEC.md section 5 and the
docstrings of src/engine/), so a bug the engines share (a constant, a formula) is caught.

Conventions that keep the arithmetic exact in binary floating point:
- The venue a spread is divided by quotes 128 (a power of two) and every other USD value
  is 128 plus a multiple of 1/8 (or 1/256 for "just past a boundary" cases). So a spread
  of k/8 USD is k/1024 of the price: k * 9.765625 bps, exact. Call 9.765625 bps "1u".
- KRW prices are FX x a USD value (`krw(129.0)` = 129 x 1300 = 167700.0), so KRW / FX
  gives the USD value back exactly.
- Zone bands, TP, SL and the minimum loss are multiples of u, so "exactly at the
  threshold" really is exactly at it (the unit test's 30.00000000000035 never is).
Money (fees, PnL) is not exact in binary (fees are bps * 1e-4); the engine rounds it for
the record (PnL to 0.01 KRW), and the literals are those rounded values.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import pytest

from oracle_market import Q, ScriptedMarket, Tick
from src.config.schema import Profile, RiskConfig, Zone
from src.engine.kernel_run import run_session_kernel
from src.engine.kpi import summarize
from src.engine.loop import EngineParams, run_session
from src.engine.records import SessionResult
from src.engine.zones import Applied
from src.market.tape import BookShape

# THE registry: every engine is checked against every case below. Add new engines here.
ENGINES: dict[str, Callable[..., SessionResult]] = {"reference": run_session, "kernel": run_session_kernel}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> Callable[..., SessionResult]:
    return ENGINES[request.param]


FX = 1300.0
U = 9.765625  # bps of 1/8 USD on 128 USD (1/1024), see the module docstring
BOOK = BookShape(levels=3, step_bps=10.0, growth=2.0)  # sizes s, 2s, 4s at top, +10 bps, +20 bps

# Zones in u: [4u, 10u) = [39.0625, 97.65625) bps, a gap to 12u, then [12u, 40u) = [117.1875, 390.625).
PROFILE = Profile(
    zones=[Zone(lo_bps=39.0625, hi_bps=97.65625, tp_bps=29.296875, sl_bps=19.53125, size_frac=0.5),  # tp 3u, sl 2u
           Zone(lo_bps=117.1875, hi_bps=390.625, tp_bps=58.59375, sl_bps=39.0625, size_frac=1.0)],  # tp 6u, sl 4u
    soft_limit_s=60.0, hard_limit_s=120.0,
    min_loss_bps=20.234375)  # 30 bps round-trip fees - 1u: a 1u capture after fees is exactly "within" it
RISK = RiskConfig(max_notional_usd=2048.0, max_open_positions=20, daily_loss_limit_usd=1e6, min_fill_usd=50.0)


def krw(usd: float, fx: float = FX) -> float:
    """KRW price of a USD value at an FX (exact for the values used here)."""
    return usd * fx


def params(symbols: tuple[str, ...], profile: Profile = PROFILE, usdt_fee: float = 10.0, krw_fee: float = 5.0,
           floor: float = 1.0, **risk: Any) -> EngineParams:
    """Taker fees 10 bps (USDT venue) and 5 bps (KRW venue): 30 bps a round trip on four legs."""
    applied = tuple(Applied(s, "oracle", profile, "fallback") for s in symbols)
    return EngineParams(applied, usdt_fee, krw_fee, floor, replace(RISK, **risk))


def play(engine: Callable[..., SessionResult], symbols: tuple[str, ...], ticks: list[Tick],
         p: EngineParams | None = None, book: BookShape = BOOK) -> SessionResult:
    """Run the script whole and one tick per chunk; both must give the same result."""
    p = p or params(symbols)
    out = []
    for chunk in (None, 1):
        seen: list[dict] = []
        res = engine(ScriptedMarket(symbols, ticks, book, chunk), p, seen.append)
        assert seen == res.trades, "on_trade saw other trades than the result holds"
        out.append(res)
    assert repr(out[0]) == repr(out[1]), "chunking changed the result"
    return out[0]


def exits(res: SessionResult) -> list[tuple[str, float, str, str | None]]:
    return [(t["symbol"], t["exit_t_s"], t["exit_reason"], t["time_limit_kind"]) for t in res.trades]


def kpis(res: SessionResult, symbols: tuple[str, ...], tick_s: float) -> dict[str, Any]:
    return summarize(res, params(symbols).applied, {"sha256": "-"}, res.ticks * tick_s, tick_s)


def _only(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The entries of `actual` that `expected` names: records may gain fields; the oracle pins these."""
    return {k: actual.get(k, "<missing>") for k in expected}


def assert_trades(res: SessionResult, expected: list[dict[str, Any]]) -> None:
    assert len(res.trades) == len(expected)
    assert [_only(t, e) for t, e in zip(res.trades, expected)] == expected


def assert_kpis(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert _only(got, expected) == expected


NO_REJECTIONS = {"outside_zones": 0, "kill_switch": 0, "max_open_positions": 0, "insufficient_depth": 0,
                 "cost_floor": 0}

# Direction +1 quotes (KRW venue rich; USDT flat at 128, so every spread is over 128):
ENTRY = Q(128.0, 128.0, krw(129.0), krw(129.125))  # enter 8u = 78.125 bps: (129 - 128) / 128 * 1e4, zone 0
HOLD0 = Q(128.0, 128.0, krw(128.875), krw(129.0))  # exit spread 8u: captured 0
HOLD1 = Q(128.0, 128.0, krw(128.75), krw(128.875))  # exit spread 7u: captured 1u = 9.765625 bps
FLAT = Q(128.0, 128.0, krw(128.25), krw(128.375))  # entry spread 2u = 19.53 bps: below the zones, no signal


# -- exits ------------------------------------------------------------------------------------

@pytest.mark.parametrize("krw_ask_usd,expected", [
    (128.625 + 1 / 256, []),  # exit spread 5u + 0.3052 bps: captured 3u - 0.3052 < tp 3u: holds
    (128.625, [("BTC", 40.0, "take_profit", None)]),  # exit spread (128.625-128)/128*1e4 = 5u: captured 3u = tp
    (128.625 - 1 / 256, [("BTC", 40.0, "take_profit", None)]),  # captured 3u + 0.3052 bps
])
@pytest.mark.parametrize("wait", [0, 1])  # the exit comes on the tick after the entry, or one later
def test_take_profit_at_and_around_the_threshold(engine, krw_ask_usd: float, expected: list, wait: int) -> None:
    res = play(engine, ("BTC",), [Tick(0.0, FX, (ENTRY,)), *[Tick(20.0, FX, (HOLD0,))] * wait,
                                  Tick(40.0, FX, (Q(128.0, 128.0, krw(128.5), krw(krw_ask_usd)),))])
    assert exits(res) == expected
    assert len(res.open_positions) == 1 - len(expected)


def test_take_profit_trade_record(engine) -> None:
    """The whole record of a round trip at the threshold, fees on all four legs."""
    take = Q(128.0, 128.0, krw(128.5), krw(128.625))  # exit spread 5u: captured 3u = tp
    res = play(engine, ("BTC",), [Tick(0.0, FX, (ENTRY,)), Tick(30.0, FX, (take,))])
    assert_trades(res, [{
        "symbol": "BTC", "direction": "sell_krw_buy_usdt", "profile": "oracle", "zone": "39.0625-97.6562",
        "entry_t_s": 0.0, "exit_t_s": 30.0, "hold_s": 30.0,
        "entry_spread_bps": 78.125, "exit_spread_bps": 48.8281,  # 8u; 5u = 48.828125 rounded to 4 places
        "qty": 8.0, "fill_ratio": 1.0, "notional_usd": 1024.0,  # 2048 * size_frac 0.5 / 128 = 8 coins
        "entry_usdt_px": 128.0, "entry_krw_px": 167700.0,  # buy USDT ask, sell KRW bid
        "exit_usdt_px": 128.0, "exit_krw_px": 167212.5,  # sell USDT bid, buy KRW ask 128.625 x 1300
        "fx_entry": 1300.0, "fx_exit": 1300.0,
        # KRW legs 5 bps: 5e-4 * 8 * (167700 + 167212.5) = 1339.65; USDT legs 10 bps:
        # 1e-3 * 8 * (128 + 128) = 2.048 USDT x 1300 = 2662.4 KRW; 1339.65 + 2662.4 = 4002.05
        "fees_krw": 4002.05, "slippage_krw": 0.0,
        # gross 8 * (167700 - 167212.5) = 3900 KRW, USDT leg 0; 3900 - 4002.05 = -102.05 (TP 3u < 30 bps of fees)
        "pnl_krw": -102.05, "pnl_usd": -0.0785,  # -102.05 / 1300
        "exit_reason": "take_profit", "time_limit_kind": None,
    }])


# Direction -1: KRW venue cheap; the KRW quote divides the spread, so it sits at 128.
@pytest.mark.parametrize("usdt_ask,expected", [
    (129.25 - 1 / 256, []),  # exit spread 10u - 0.3052 bps: widened by less than sl 2u
    (129.25, [("ETH", 40.0, "stop_loss", None)]),  # (129.25 - 128) / 128 * 1e4 = 10u: widened by 2u = sl
    (129.25 + 1 / 256, [("ETH", 40.0, "stop_loss", None)]),
])
@pytest.mark.parametrize("wait", [0, 1])
def test_stop_loss_at_and_around_the_threshold(engine, usdt_ask: float, expected: list, wait: int) -> None:
    enter = Q(129.0, 129.125, krw(127.875), krw(128.0))  # (129 - 128) / 128 * 1e4 = 8u, zone 0
    hold = Q(128.875, 129.0, krw(128.0), krw(128.125))  # exit spread (129 - 128) / 128: 8u, captured 0
    wider = Q(129.125, usdt_ask, krw(128.0), krw(128.125))  # exit: buy USDT ask, sell KRW bid (128)
    res = play(engine, ("ETH",), [Tick(0.0, FX, (enter,)), *[Tick(20.0, FX, (hold,))] * wait,
                                  Tick(40.0, FX, (wider,))])
    assert exits(res) == expected
    if expected:
        t = res.trades[0]
        assert (t["direction"], t["entry_spread_bps"], t["exit_usdt_px"], t["exit_krw_px"]) == \
            ("buy_krw_sell_usdt", 78.125, usdt_ask, 166400.0)
        assert t["qty"] == 7.9379844961  # 2048 * 0.5 / 129 (the USDT bid sold at entry)


@pytest.mark.parametrize("krw_bid_usd,krw_ask_usd,expected", [
    # KRW mid 127.8125 < USDT mid 128: the premium flipped sign. The captured spread
    # (78.125 - (127.875 - 128) / 128 * 1e4 = 9u) also clears tp, but reversal is checked first.
    (127.75, 127.875, "spread_reversal"),
    # KRW mid exactly 128: the premium is 0, not a flip; captured 78.125 - 1u = 7u >= tp 3u.
    (127.875, 128.125, "take_profit"),
])
@pytest.mark.parametrize("wait", [0, 1])
def test_spread_reversal_and_a_zero_premium(engine, krw_bid_usd: float, krw_ask_usd: float, expected: str,
                                            wait: int) -> None:
    res = play(engine, ("BTC",), [Tick(0.0, FX, (ENTRY,)), *[Tick(20.0, FX, (HOLD0,))] * wait,
                                  Tick(40.0, FX, (Q(128.0, 128.0, krw(krw_bid_usd), krw(krw_ask_usd)),))])
    assert exits(res) == [("BTC", 40.0, expected, None)]


def test_soft_then_hard_time_limit_with_the_min_loss_condition(engine) -> None:
    """Soft limit 60 s, hard 120 s, min loss 30 bps fees - 1u; ticks every 30 s.

    The soft exit needs captured - 30 >= -(30 - 1u), i.e. a capture of at least 1u.
    """
    almost = Q(128.0, 128.0, krw(128.75), krw(128.875 + 1 / 256))  # captured 1u - 0.3052 bps: not within
    script = [  # BTC                  ETH             XRP             SOL
        Tick(0.0, FX, (ENTRY, ENTRY, ENTRY, ENTRY)),
        Tick(30.0, FX, (HOLD0, HOLD1, HOLD0, almost)),  # ETH: 1u captured but before the soft limit
        Tick(60.0, FX, (HOLD0, HOLD1, HOLD0, almost)),  # ETH: soft at exactly 60 s
        Tick(90.0, FX, (HOLD0, FLAT, HOLD1, almost)),  # XRP: held back at 60 s (captured 0), soft now
        Tick(120.0, FX, (HOLD0, FLAT, FLAT, almost)),  # BTC and SOL: hard at exactly 120 s
    ]
    res = play(engine, ("BTC", "ETH", "XRP", "SOL"), script)
    assert exits(res) == [("ETH", 60.0, "time_limit", "soft"), ("XRP", 90.0, "time_limit", "soft"),
                          ("BTC", 120.0, "time_limit", "hard"), ("SOL", 120.0, "time_limit", "hard")]
    assert [t["hold_s"] for t in res.trades] == [60.0, 90.0, 120.0, 120.0]
    # ETH: gross 8 * (167700 - 128.875 * 1300 = 167537.5) = 1300; fees 5e-4 * 8 * (167700 + 167537.5)
    # = 1340.95 + 2662.4 (USDT legs, as above) = 4003.35; 1300 - 4003.35 = -2703.35
    assert (res.trades[0]["fees_krw"], res.trades[0]["pnl_krw"]) == (4003.35, -2703.35)
    # BTC: exit buys KRW at 129 x 1300 = 167700, the entry price: gross 0, fees 5e-4 * 8 * 335400 = 1341.6
    # + 2662.4 = 4004.0. SOL: exit at (128.875 + 1/256) x 1300 = 167542.578125: gross 8 * 157.421875 =
    # 1259.375, fees 5e-4 * 8 * 335242.578125 = 1340.97 + 2662.4 = 4003.37, PnL -2743.995
    assert [t["pnl_krw"] for t in res.trades] == [-2703.35, -2703.35, -4004.0, -2744.0]
    assert_kpis(kpis(res, ("BTC", "ETH", "XRP", "SOL"), 30.0), {
        "round_trips": 4, "wins": 0, "losses": 4, "win_rate": 0.0,
        "exit_reasons": {"take_profit": 0, "stop_loss": 0, "time_limit": 4, "spread_reversal": 0},
        "time_limit_kinds": {"soft": 2, "hard": 2},
        "total_pnl_krw": -12154.7, "total_pnl_usd": -9.349769, "fx_rate": 1300.0,  # -12154.7 / 1300 = -9.3497692
        "fees_krw": 16014.07,  # 4003.35 + 4003.35 + 4004.0 + 4003.37
        "slippage_krw": 0.0,
        "max_drawdown_krw": 12154.7,  # equity only falls from 0
        "avg_hold_s": 97.5,  # (60 + 90 + 120 + 120) / 4
        "entry_signals": 4, "entries": 4, "rejections": NO_REJECTIONS, "market_data_updates": 20, "ticks": 5,
        "open_positions_at_end": 0, "unrealized_pnl_krw": 0.0,
    })


def test_a_missing_quote_defers_the_exit_to_the_next_valid_one(engine) -> None:
    """No valid quote at 120 s (the hard limit): the position waits for 150 s; the tick is not an update."""
    res = play(engine, ("BTC",), [Tick(0.0, FX, (ENTRY,)), Tick(120.0, FX, (None,)), Tick(150.0, FX, (HOLD0,))])
    assert exits(res) == [("BTC", 150.0, "time_limit", "hard")]
    assert (res.market_updates, res.ticks) == (2, 3)



def test_kpis_of_a_win_a_loss_and_a_zero(engine) -> None:
    """No fees: BTC takes profit (+3900), ETH stops out (-2600), XRP exits at its entry price
    by the soft limit (0: not a win). Drawdown is measured from the peak (3900 -> 1300)."""
    take = Q(128.0, 128.0, krw(128.5), krw(128.625))  # captured 3u: 8 x (167700 - 167212.5) = +3900
    stop = Q(128.0, 128.0, krw(129.125), krw(129.25))  # widened 2u: 8 x (167700 - 168025) = -2600
    script = [Tick(0.0, FX, (ENTRY, ENTRY, ENTRY)),
              Tick(30.0, FX, (take, stop, HOLD0)),
              Tick(60.0, FX, (FLAT, FLAT, HOLD0))]  # XRP: captured 0 - fees 0 >= -min loss: soft at 60 s
    symbols = ("BTC", "ETH", "XRP")
    res = play(engine, symbols, script, params(symbols, usdt_fee=0.0, krw_fee=0.0))
    assert exits(res) == [("BTC", 30.0, "take_profit", None), ("ETH", 30.0, "stop_loss", None),
                          ("XRP", 60.0, "time_limit", "soft")]
    k = kpis(res, symbols, 30.0)
    per_symbol = {"BTC": {"profile": "oracle", "round_trips": 1, "wins": 1, "pnl_krw": 3900.0},
                  "ETH": {"profile": "oracle", "round_trips": 1, "wins": 0, "pnl_krw": -2600.0},
                  "XRP": {"profile": "oracle", "round_trips": 1, "wins": 0, "pnl_krw": 0.0}}
    assert list(k["per_symbol"]) == list(per_symbol)
    assert {s: _only(k["per_symbol"][s], e) for s, e in per_symbol.items()} == per_symbol
    assert_kpis(k, {
        "round_trips": 3, "wins": 1, "losses": 2, "win_rate": 0.333333,
        "exit_reasons": {"take_profit": 1, "stop_loss": 1, "time_limit": 1, "spread_reversal": 0},
        "time_limit_kinds": {"soft": 1, "hard": 0},
        "total_pnl_krw": 1300.0, "total_pnl_usd": 1.0, "fx_rate": 1300.0, "fees_krw": 0.0, "slippage_krw": 0.0,
        "max_drawdown_krw": 2600.0, "avg_hold_s": 40.0,  # (30 + 30 + 60) / 3
        "entry_signals": 3, "entries": 3, "rejections": NO_REJECTIONS, "market_data_updates": 9, "ticks": 3,
        "open_positions_at_end": 0, "unrealized_pnl_krw": 0.0,
    })

# -- money: fees on four legs, the exit FX, fills from depth -----------------------------------

def test_pnl_at_the_exit_fx_and_kpis(engine) -> None:
    """FX 1300 at entry, 1288 at exit, 1296 at the last tick: PnL in KRW at the exit FX;
    the trade's USD at its exit FX; the session's USD at the last FX (the reported fx_rate)."""
    enter = Q(127.875, 128.0, krw(130.0), krw(130.125))  # (130 - 128) / 128 * 1e4 = 16u = 156.25 bps: zone 1
    converged = Q(128.5, 128.625, krw(128.875, 1288.0), krw(129.0, 1288.0))  # exit spread (129 - 128.5) / 128.5
    quiet = Q(128.0, 128.0, krw(128.25, 1296.0), krw(128.375, 1296.0))  # 2u: no signal
    res = play(engine, ("BTC",), [Tick(0.0, 1300.0, (enter,)), Tick(30.0, 1288.0, (converged,)),
                                  Tick(60.0, 1296.0, (quiet,))])
    assert_trades(res, [{
        "symbol": "BTC", "direction": "sell_krw_buy_usdt", "profile": "oracle", "zone": "117.188-390.625",
        "entry_t_s": 0.0, "exit_t_s": 30.0, "hold_s": 30.0,
        "entry_spread_bps": 156.25, "exit_spread_bps": 38.9105,  # 0.5 / 128.5 * 1e4 = 38.91050...
        "qty": 16.0, "fill_ratio": 1.0, "notional_usd": 2048.0,  # 2048 * size_frac 1.0 / 128
        "entry_usdt_px": 128.0, "entry_krw_px": 169000.0, "exit_usdt_px": 128.5, "exit_krw_px": 166152.0,
        "fx_entry": 1300.0, "fx_exit": 1288.0,
        # KRW legs: 5e-4 * 16 * (169000 + 166152) = 2681.216; USDT legs: 1e-3 * 16 * (128 + 128.5)
        # = 4.104 USDT x 1288 (exit FX) = 5285.952 KRW; together 7967.168
        "fees_krw": 7967.17, "slippage_krw": 0.0,
        # KRW gross 16 * (169000 - 166152) = 45568; USDT gross 16 * (128.5 - 128) = 8 USDT;
        # 45568 - 2681.216 + (8 - 4.104) x 1288 = 47904.832 (at the entry FX 1300 it would be 47951.584)
        "pnl_krw": 47904.83, "pnl_usd": 37.193193,  # 47904.832 / 1288 = 37.1931925...
        "exit_reason": "take_profit", "time_limit_kind": None,
    }])
    assert_kpis(kpis(res, ("BTC",), 30.0), {
        "round_trips": 1, "wins": 1, "losses": 0, "win_rate": 1.0,
        "exit_reasons": {"take_profit": 1, "stop_loss": 0, "time_limit": 0, "spread_reversal": 0},
        "time_limit_kinds": {"soft": 0, "hard": 0},
        "total_pnl_krw": 47904.83, "total_pnl_usd": 36.963603,  # 47904.83 / 1296 (the last FX) = 36.9636034
        "fx_rate": 1296.0, "fees_krw": 7967.17, "slippage_krw": 0.0, "max_drawdown_krw": 0.0, "avg_hold_s": 30.0,
        "entry_signals": 1, "entries": 1, "rejections": NO_REJECTIONS, "market_data_updates": 3, "ticks": 3,
        "open_positions_at_end": 0, "unrealized_pnl_krw": 0.0,
    })


def test_an_open_position_is_marked_at_its_last_quote_and_fx(engine) -> None:
    """Still open at the end: closed on paper at the last valid quote, USDT money at that tick's FX."""
    last = Q(128.0, 128.0, krw(128.875, 1288.0), krw(129.0, 1288.0))  # captured 0 at 30 s: no exit
    res = play(engine, ("BTC",), [Tick(0.0, 1300.0, (ENTRY,)), Tick(30.0, 1288.0, (last,))])
    assert res.trades == [] and len(res.open_positions) == 1
    # KRW gross 8 x (167700 - 129 x 1288 = 166152) = 12384; KRW fees 5e-4 * 8 * 333852 = 1335.408;
    # USDT fees 1e-3 * 8 * 256 = 2.048 USDT x 1288 = 2637.824; 12384 - 1335.408 - 2637.824 = 8410.768
    assert kpis(res, ("BTC",), 30.0)["unrealized_pnl_krw"] == 8410.77

def test_partial_fill_walks_the_book_on_every_leg(engine) -> None:
    """Top sizes 1 (USDT) and 1.5 (KRW) coins: depth 1+2+4 = 7 and 10.5, so 7 of the 16
    coins wanted fill, walking three levels; the exit walks past the KRW book's depth."""
    enter = Q(127.875, 128.0, krw(130.0), krw(130.125), usdt_size=1.0, krw_size=1.5)
    out = Q(128.0, 128.0, krw(128.875, 1288.0), krw(129.0, 1288.0), usdt_size=2.0, krw_size=0.5)
    res = play(engine, ("BTC",), [Tick(0.0, 1300.0, (enter,)), Tick(30.0, 1288.0, (out,))])
    assert_trades(res, [{
        "symbol": "BTC", "direction": "sell_krw_buy_usdt", "profile": "oracle", "zone": "117.188-390.625",
        "entry_t_s": 0.0, "exit_t_s": 30.0, "hold_s": 30.0,
        "entry_spread_bps": 156.25, "exit_spread_bps": 78.125,  # (129 - 128) / 128 * 1e4: captured 8u >= tp 6u
        "qty": 7.0, "fill_ratio": 0.4375, "notional_usd": 897.28,  # 7 / 16; 7 x the entry USDT price
        # buy 7 on USDT asks: 1 @ 128 + 2 @ 128.128 + 4 @ 128.256 = 897.28 -> 128.182857142857 (slip 1.28 USDT)
        "entry_usdt_px": 128.1828571429,
        # sell 7 on KRW bids: 1.5 @ 169000 + 3 @ 168831 + 2.5 @ 168662 = 1181648 -> 168806.857143 (slip 1352 KRW)
        "entry_krw_px": 168806.857143,
        # sell 7 on USDT bids: 2 @ 128 + 4 @ 127.872 + 1 @ 127.744 = 895.232 -> 127.890285714 (slip 0.768 USDT)
        "exit_usdt_px": 127.8902857143,
        # buy 7 on KRW asks from 166152: 0.5 @ top + 1 @ +10 bps + 2 @ +20 bps, the last 3.5 one step further
        # (+30 bps): 83076 + 166318.152 + 332968.608 + 583276.596 = 1165639.356 -> 166519.908 (slip 2575.356)
        "exit_krw_px": 166519.908,
        "fx_entry": 1300.0, "fx_exit": 1288.0,
        # 5e-4 * 7 * (168806.857143 + 166519.908) = 1173.643678; 1e-3 * 7 * (128.182857 + 127.890286)
        # = 1.792512 USDT x 1288 = 2308.755456; sum 3482.399134
        "fees_krw": 3482.4,
        # 1352 + 2575.356 KRW + (1.28 + 0.768) USDT x 1288 (the exit FX, as all USDT money) = 6565.18
        "slippage_krw": 6565.18,
        # KRW gross 7 * (168806.857143 - 166519.908) = 16008.644; USDT gross 895.232 - 897.28 = -2.048;
        # 16008.644 - 1173.643678 + (-2.048 - 1.792512) x 1288 = 9888.420866. The same from the parts:
        # gross at the top of both books 7 x (169000 - 166152) + 7 x (128 - 128) x 1288 = 19936,
        # minus fees 3482.399134, minus slippage 6565.18 = 9888.420866
        "pnl_krw": 9888.42, "pnl_usd": 7.677345,  # 9888.420866 / 1288
        "exit_reason": "take_profit", "time_limit_kind": None,
    }])


def test_the_cost_floor_counts_the_slippage_of_the_whole_walk(engine) -> None:
    """Spread 12u = 117.1875 bps, floor multiplier 1.25. 7 coins walk three levels: USDT 1 @ 128 +
    2 @ 128.128 + 4 @ 128.256 (slippage 1.28 USDT); KRW from 129.5 x 1300 = 168350: 1.5 @ top + 3 @ -10 bps
    + 2.5 @ -20 bps (slippage 168350 x (0.003 + 0.005) = 1346.8 KRW = 1.036 USD); (1.28 + 1.036) / 897.28
    = 25.8113 bps; floor 1.25 x (30 + 2 x 25.8113) = 102.03 <= 117.1875: it enters. (A walk that priced
    the last 4 coins one level further out would put the floor at 125.26 and refuse it.)"""
    book = Q(127.875, 128.0, krw(129.5), krw(129.625), usdt_size=1.0, krw_size=1.5)
    res = play(engine, ("BTC",), [Tick(0.0, FX, (book,))], params(("BTC",), floor=1.25))
    [pos] = res.open_positions
    assert (pos.entry.qty, pos.entry.krw_px, pos.entry.slippage_krw) == (7.0, 168157.6, pytest.approx(1346.8, abs=1e-9))
    assert res.rejections == NO_REJECTIONS


def test_a_flat_book_has_equal_levels(engine) -> None:
    """growth 1: two levels of 2 coins each, depth 4 of the 16 wanted. Buy 4 on USDT asks:
    2 @ 128 + 2 @ 128.128 = 512.256 -> 128.064; sell 4 on KRW bids: 2 @ 169000 + 2 @ 168831 -> 168915.5."""
    book = Q(127.875, 128.0, krw(130.0), krw(130.125), usdt_size=2.0, krw_size=2.0)
    res = play(engine, ("BTC",), [Tick(0.0, FX, (book,))], book=BookShape(levels=2, step_bps=10.0, growth=1.0))
    [pos] = res.open_positions
    assert (pos.entry.qty, pos.target_qty) == (4.0, 16.0)
    assert pos.entry.usdt_px == pytest.approx(128.064, abs=1e-12)
    assert pos.entry.krw_px == pytest.approx(168915.5, abs=1e-9)

def test_insufficient_depth_and_the_min_fill(engine) -> None:
    """min_fill_usd 56: a fill worth exactly 56 USD is taken, 28 USD is refused (either venue short)."""
    zone1 = dict(usdt_bid=127.875, usdt_ask=128.0, krw_bid=krw(130.0), krw_ask=krw(130.125))  # 16u
    script = [Tick(0.0, FX, (Q(**zone1, usdt_size=0.0625),  # depth 0.0625 * 7 = 0.4375 coins x 128 = 56 USD
                             Q(**zone1, usdt_size=0.03125),  # 0.21875 coins x 128 = 28 USD
                             Q(**zone1, krw_size=0.03125)))]  # the KRW venue as shallow
    res = play(engine, ("BTC", "ETH", "XRP"), script, params(("BTC", "ETH", "XRP"), min_fill_usd=56.0))
    assert res.rejections == dict(NO_REJECTIONS, insufficient_depth=2)
    assert res.entry_signals == 3
    [pos] = res.open_positions
    assert (pos.symbol_idx, pos.entry.qty, pos.target_qty) == (0, 0.4375, 16.0)
    # 0.0625 @ 128 + 0.125 @ 128.128 + 0.25 @ 128.256 = 56.08 USDT for 0.4375 coins
    assert pos.entry.usdt_px == pytest.approx(128.18285714285714, abs=1e-12)



def test_an_empty_book_is_insufficient_depth_even_without_a_min_fill(engine) -> None:
    """A size of 0 (allowed in a tick file) leaves nothing to fill: refused, not a 0/0 crash."""
    zone1 = dict(usdt_bid=127.875, usdt_ask=128.0, krw_bid=krw(130.0), krw_ask=krw(130.125))
    script = [Tick(0.0, FX, (Q(**zone1, usdt_size=0.0), Q(**zone1, krw_size=0.0)))]
    res = play(engine, ("BTC", "ETH"), script, params(("BTC", "ETH"), min_fill_usd=0.0))
    assert res.open_positions == [] and res.rejections == dict(NO_REJECTIONS, insufficient_depth=2)

def test_cost_floor_at_and_below_the_threshold(engine) -> None:
    """Fees 1u per leg (9.765625 bps): round trip 4u = 39.0625 bps; floor multiplier 2: 8u = 78.125 bps
    without slippage. Slippage counts twice (entry and an exit assumed alike)."""
    below = Q(128.0, 128.0, krw(129.0 - 1 / 256), krw(129.125))  # 8u - 0.3052 bps: in zone 0, below the floor
    # 16u = 156.25 bps, but 7 coins walk three levels on both venues: slippage 1.28 USDT + (1183000 -
    # 1181310) / 1300 = 1.3 USD over 897.28 USD = 28.7535 bps; floor 2 x (39.0625 + 2 x 28.7535) = 193.14
    thin = Q(127.875, 128.0, krw(130.0), krw(130.125), usdt_size=1.0, krw_size=1.0)
    symbols = ("BTC", "ETH", "XRP")
    res = play(engine, symbols, [Tick(0.0, FX, (ENTRY, below, thin))],
               params(symbols, usdt_fee=U, krw_fee=U, floor=2.0))
    assert [p.symbol_idx for p in res.open_positions] == [0]  # 78.125 is not below 2 x 39.0625
    assert res.rejections == dict(NO_REJECTIONS, cost_floor=2)
    assert res.entry_signals == 3


def test_zone_edges_and_outside_zones(engine) -> None:
    """Bands are [lo, hi): 4u enters zone 0, 10u (its hi) and the gap are outside, 40u too; below 4u no signal."""
    script = [Tick(0.0, FX, (
        Q(128.0, 128.0, krw(128.5), krw(128.625)),  # 4u = 39.0625 = lo of zone 0: enters
        Q(128.0, 128.0, krw(129.25), krw(129.375)),  # 10u = 97.65625 = hi of zone 0: outside
        Q(128.0, 128.0, krw(129.375), krw(129.5)),  # 11u: in the gap
        Q(128.0, 128.0, krw(133.0), krw(133.125)),  # 40u = 390.625 = hi of zone 1: outside
        Q(128.0, 128.0, krw(128.5 - 1 / 256), krw(128.625)),  # 4u - 0.3052 bps: below every zone, no signal
    ))]
    symbols = ("BTC", "ETH", "XRP", "SOL", "DOGE")
    # zone 0's floor: 30 bps of fees < 39.0625, so only the band decides here
    res = play(engine, symbols, script, params(symbols))
    assert [(p.symbol_idx, p.zone_idx, p.entry_spread_bps) for p in res.open_positions] == [(0, 0, 39.0625)]
    assert res.rejections == dict(NO_REJECTIONS, outside_zones=3)
    assert res.entry_signals == 4


# -- risk --------------------------------------------------------------------------------------

def test_max_open_positions_frees_a_slot_on_exit_in_the_same_tick(engine) -> None:
    """Limit 2: XRP is refused at 0 s; at 30 s BTC exits first (rank order), so XRP enters."""
    take = Q(128.0, 128.0, krw(128.5), krw(128.625))  # captured 3u: take profit
    script = [Tick(0.0, FX, (ENTRY, ENTRY, ENTRY)), Tick(30.0, FX, (take, HOLD0, ENTRY))]
    symbols = ("BTC", "ETH", "XRP")
    res = play(engine, symbols, script, params(symbols, max_open_positions=2))
    assert exits(res) == [("BTC", 30.0, "take_profit", None)]
    assert [(p.symbol_idx, p.entry_t_s) for p in res.open_positions] == [(1, 0.0), (2, 30.0)]
    assert res.rejections == dict(NO_REJECTIONS, max_open_positions=1)
    assert res.entry_signals == 4  # three at 0 s, XRP again at 30 s
    # Marked to market by closing on the last quotes: ETH at HOLD0 buys KRW back at 167700 (its entry
    # price): fees 5e-4 * 8 * 335400 = 1341.6 + 2662.4 = -4004.0; XRP at ENTRY buys at 167862.5:
    # 8 * (167700 - 167862.5) = -1300, fees 5e-4 * 8 * 335562.5 = 1342.25 + 2662.4: -5304.65
    assert round(res.unrealized_pnl_krw, 2) == -9308.65


def test_max_notional_sizes_each_zone(engine) -> None:
    """max_notional_usd 2048 x size_frac: 0.5 in zone 0 (8 coins at 128), 1.0 in zone 1 (16 coins)."""
    zone1 = Q(127.875, 128.0, krw(130.0), krw(130.125))
    res = play(engine, ("BTC", "ETH"), [Tick(0.0, FX, (ENTRY, zone1))])
    assert [(p.zone_idx, p.entry.qty, p.target_qty) for p in res.open_positions] == [(0, 8.0, 8.0), (1, 16.0, 16.0)]


@pytest.mark.parametrize("limit_usd,eth_entry_t", [
    (2.0, 86400.0),  # BTC's loss of exactly 2 USD reaches the limit: no entry until the next simulated day
    (2.0078125, 81000.0),  # a limit just beyond the loss: ETH enters at once
])
def test_kill_switch_holds_for_the_simulated_day(engine, limit_usd: float, eth_entry_t: float) -> None:
    """Ticks every 30 min from 22:00 of day 0 to 00:30 of day 1. No fees, so BTC's stop loss
    loses exactly 8 x (167700 - 129.25 x 1300 = 168025) = -2600 KRW = -2 USD at 1300."""
    day = Profile(PROFILE.zones, soft_limit_s=36000.0, hard_limit_s=72000.0, min_loss_bps=0.0)
    stop = Q(128.0, 128.0, krw(129.125), krw(129.25))  # exit spread 10u: widened by sl 2u
    script = [  # BTC          ETH
        Tick(79200.0, FX, (ENTRY, FLAT)),  # 22:00: BTC enters
        Tick(81000.0, FX, (stop, ENTRY)),  # 22:30: BTC stops out first (rank order), then ETH signals
        Tick(82800.0, FX, (FLAT, ENTRY)),  # 23:00: a new hour, the same day
        Tick(84600.0, FX, (FLAT, ENTRY)),
        Tick(86400.0, FX, (FLAT, ENTRY)),  # 00:00 of day 1: the switch resets
        Tick(88200.0, FX, (FLAT, ENTRY)),
    ]
    symbols = ("BTC", "ETH")
    res = play(engine, symbols, script, params(symbols, day, usdt_fee=0.0, krw_fee=0.0, daily_loss_limit_usd=limit_usd))
    assert exits(res) == [("BTC", 81000.0, "stop_loss", None)]
    assert (res.trades[0]["pnl_krw"], res.trades[0]["pnl_usd"]) == (-2600.0, -2.0)
    assert [(p.symbol_idx, p.entry_t_s) for p in res.open_positions] == [(1, eth_entry_t)]
    killed = 3 if eth_entry_t == 86400.0 else 0  # 22:30, 23:00, 23:30
    assert res.rejections == dict(NO_REJECTIONS, kill_switch=killed)
    assert res.entry_signals == 2 + killed  # BTC at 22:00, ETH's refused signals and its entry


def test_kill_switch_counts_the_day_of_the_exit(engine) -> None:
    """A loss booked on day 1 does not block day 0; a day-0 loss is forgotten on day 1, even within the hour."""
    day = Profile(PROFILE.zones, soft_limit_s=36000.0, hard_limit_s=72000.0, min_loss_bps=0.0)
    stop = Q(128.0, 128.0, krw(129.125), krw(129.25))
    script = [
        Tick(84600.0, FX, (ENTRY, FLAT)),  # 23:30 day 0
        Tick(86340.0, FX, (stop, ENTRY)),  # 23:59 day 0: -2 USD, ETH refused
        Tick(86400.0, FX, (FLAT, ENTRY)),  # 00:00 day 1, one minute later: enters
    ]
    symbols = ("BTC", "ETH")
    res = play(engine, symbols, script, params(symbols, day, usdt_fee=0.0, krw_fee=0.0, daily_loss_limit_usd=2.0))
    assert [(p.symbol_idx, p.entry_t_s) for p in res.open_positions] == [(1, 86400.0)]
    assert res.rejections == dict(NO_REJECTIONS, kill_switch=1)
