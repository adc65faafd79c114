"""Engine pieces on hand-made inputs: book walk, spreads, settlement, exits, zones, KPIs."""
from __future__ import annotations

import math

import pytest

from src.config.schema import Mode, Profile, SymbolMapping, Zone, ZoneProfileConfig
from src.engine.exits import exit_reason
from src.engine.fills import Quote, entry_spread_bps, exit_spread_bps, fill_legs, mid_premium_bps, settle
from src.engine.records import Position
from src.engine.zones import apply_profiles, find_zone
from src.market.book import depth, walk
from src.market.tape import BookShape

BOOK = BookShape(levels=3, step_bps=10.0, growth=2.0)  # sizes 1, 2, 4 at +0, +10, +20 bps


def test_walk_inside_top_level_has_no_slippage() -> None:
    assert walk(100.0, 1.0, 0.5, +1, BOOK) == 100.0


def test_walk_across_levels_volume_weighted() -> None:
    # buy 2: 1 @ 100, 1 @ 100.1
    assert walk(100.0, 1.0, 2.0, +1, BOOK) == pytest.approx(100.05)
    # sell 3: 1 @ 100, 2 @ 99.9
    assert walk(100.0, 1.0, 3.0, -1, BOOK) == pytest.approx((100.0 + 2 * 99.9) / 3)


def test_walk_beyond_depth_fills_one_step_out() -> None:
    assert depth(1.0, BOOK) == 7.0
    px = walk(100.0, 1.0, 8.0, +1, BOOK)
    assert px == pytest.approx((100 + 2 * 100.1 + 4 * 100.2 + 1 * 100.3) / 8)


Q = Quote(usdt_bid=99.99, usdt_ask=100.01, krw_bid=131_300.0, krw_ask=131_350.0, usdt_size=10.0,
          krw_size=10.0, fx=1300.0)  # KRW mid ~101.02 USD: KRW venue rich by ~100 bps


def test_spreads_and_direction() -> None:
    up = entry_spread_bps(Q, +1)
    assert up == pytest.approx((131_300 / 1300 - 100.01) / 100.01 * 1e4)
    assert up > 0 > entry_spread_bps(Q, -1)
    assert exit_spread_bps(Q, +1) > up  # closing crosses both books again
    assert mid_premium_bps(Q) > 0


def test_round_trip_pnl_is_captured_spread_minus_fees() -> None:
    entry = fill_legs(Q, 1.0, +1, True, BOOK)
    assert (entry.usdt_px, entry.krw_px) == (100.01, 131_300.0)  # buy USDT ask, sell KRW bid
    converged = Quote(99.99, 100.01, 130_000.0, 130_050.0, 10.0, 10.0, 1300.0)
    exit_ = fill_legs(converged, 1.0, +1, False, BOOK)
    assert (exit_.usdt_px, exit_.krw_px) == (99.99, 130_050.0)  # sell USDT bid, buy KRW ask
    rt = settle(entry, exit_, +1, 1300.0, 1300.0, usdt_fee_bps=10.0, krw_fee_bps=5.0)
    gross = (131_300 - 130_050) + (99.99 - 100.01) * 1300
    fees = 5e-4 * (131_300 + 130_050) + 10e-4 * (100.01 + 99.99) * 1300
    assert rt.pnl_krw == pytest.approx(gross - fees)
    assert rt.pnl_usd == pytest.approx(rt.pnl_krw / 1300)
    assert rt.fees_krw == pytest.approx(fees) and rt.slippage_krw == 0.0


def test_partial_depth_costs_slippage() -> None:
    thin = Quote(99.99, 100.01, 131_300.0, 131_350.0, 0.5, 0.5, 1300.0)
    legs = fill_legs(thin, 1.0, +1, True, BOOK)
    assert legs.slippage_usdt > 0 and legs.slippage_krw > 0


PROFILE = Profile(zones=[Zone(40, 70, 30, 30), Zone(80, 120, 45, 40)], soft_limit_s=100,
                  hard_limit_s=200, min_loss_bps=10)


def test_find_zone_bands_and_gaps() -> None:
    assert find_zone(PROFILE, 39.9) == -1
    assert find_zone(PROFILE, 40) == 0 and find_zone(PROFILE, 69.99) == 0
    assert find_zone(PROFILE, 75) == -2  # the gap
    assert find_zone(PROFILE, 80) == 1 and find_zone(PROFILE, 500) == -2


def _pos(entry_spread: float, t0: float = 0.0) -> Position:
    legs = fill_legs(Q, 1.0, +1, True, BOOK)
    return Position(0, +1, 0, t0, entry_spread, legs, 1300.0, 1.0)


def _quote_with_exit_spread(bps: float, premium_sign: int = +1) -> Quote:
    """A quote whose direction-+1 exit spread is `bps` (mid premium positive unless told)."""
    usdt_bid, usdt_ask = 99.99, 100.01
    krw_ask = (bps / 1e4 * usdt_bid + usdt_bid) * 1300.0
    krw_bid = krw_ask - 1.0 if premium_sign > 0 else 0.5 * 99.0 * 1300
    return Quote(usdt_bid, usdt_ask, krw_bid, krw_ask, 10.0, 10.0, 1300.0)


@pytest.mark.parametrize("now_bps,t,expected", [
    (85.0, 10, "stop_loss"),            # widened by 35 >= sl 30
    (20.0, 10, "take_profit"),          # converged by 30 >= tp 30
    (45.0, 10, None),                   # nothing yet
    (45.0, 150, "time_limit:soft"),     # after soft: captured 5 - fees 30 = -25 < -10: not yet
    (45.0, 200, "time_limit:hard"),
])
def test_exit_rules(now_bps: float, t: float, expected: str | None) -> None:
    pos = _pos(50.0)
    q = _quote_with_exit_spread(now_bps)
    got = exit_reason(pos, q, t, PROFILE, round_trip_fee_bps=30.0)
    if expected == "time_limit:soft":
        assert got is None  # the minimum-loss condition holds the soft exit back
        assert exit_reason(pos, q, t, PROFILE, round_trip_fee_bps=10.0) == "time_limit:soft"
    else:
        assert got == expected


def test_spread_reversal_when_premium_flips_sign() -> None:
    q = Quote(99.99, 100.01, 99.0 * 1300, 99.1 * 1300, 10.0, 10.0, 1300.0)  # KRW now cheap
    assert mid_premium_bps(q) < 0
    # reversal is checked before take profit: a jump across zero is a reversal
    assert exit_reason(_pos(50.0), q, 1, PROFILE, 30.0) == "spread_reversal"
    wide_tp = Profile(zones=[Zone(40, 70, 500, 500)], soft_limit_s=100, hard_limit_s=200, min_loss_bps=10)
    assert exit_reason(_pos(50.0), q, 1, wide_tp, 30.0) == "spread_reversal"


def test_profiles_by_mode_and_fallback() -> None:
    zp = ZoneProfileConfig(name="t", profiles={"a": PROFILE, "b": PROFILE},
                           symbols={"BTC": SymbolMapping(strict="a", advisory="b")},
                           fallback=SymbolMapping(strict="b", advisory="a"))
    strict = apply_profiles(zp, ("BTC", "XRP"), Mode.strict)
    adv = apply_profiles(zp, ("BTC", "XRP"), Mode.advisory)
    assert [(x.profile_name, x.source) for x in strict] == [("a", "symbol"), ("b", "fallback")]
    assert [x.profile_name for x in adv] == ["b", "a"]
    assert not math.isnan(PROFILE.zones[0].lo_bps)


def test_seq_sum_adds_left_to_right_on_every_python() -> None:
    # 1e16 + 1.0 rounds back to 1e16 (the spacing there is 2.0): sequential gives 0.0; the
    # builtin sum() of Python 3.12+ compensates and gives 1.0, so results would depend on Python.
    from src.engine.records import seq_sum
    assert seq_sum([1e16, 1.0, -1e16]) == 0.0
    assert seq_sum([0.1, 0.2, 0.3]) == (0.1 + 0.2) + 0.3
    assert seq_sum([]) == 0


def test_float_totals_never_use_the_builtin_sum() -> None:
    """KPI and result totals go through seq_sum; the builtin only counts (sum(1 for ...))."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "src" / "engine"
    for name in ("kpi.py", "loop.py", "kernel_run.py", "kernel_trades.py", "records.py"):
        for node in ast.walk(ast.parse((root / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "sum":
                arg = ast.unparse(node.args[0])
                integers = arg.startswith("(1 for ") or "len" in arg or "cache_" in arg  # counts, sizes
                assert integers, f"{name}:{node.lineno}: builtin sum() of {arg}: use seq_sum for floats"
