"""The compiled engine: the reference loop's rules as Numba functions over arrays.

Same rules, same float64 operations in the same order as loop.py, exits.py, fills.py,
zones.py and market/book.py (those stay the specification; tests/test_engine_equivalence.py
proves this equal to them byte for byte). No fastmath and no FMA: Numba leaves LLVM's
fp-contract off unless fastmath is asked for, and a test checks the machine code has
no fused multiply-add. Errors behave like Python's (error_model="python": a division by
zero raises). Python's round() is reproduced exactly (`py_round`, kernel_round.py), because the
kill switch sums the trades' rounded pnl_usd.

Layout (vectorbt's way): one state per session in a few arrays, trades appended to a
record array of TRADE_DT; the thin Python layer in kernel_run.py feeds chunks, asks
`should_stop` and grows buffers, and kernel_trades.py serialises the records once. The
codes (exit and rejection reasons, zone, direction) and the trade's fields are records.py's.
"""
from __future__ import annotations

from src.engine import jitcache

jitcache.prepare()  # before numba is imported: the cache folder and key (see jitcache.py)

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

# exit reasons, time-limit kinds, rejection counters, zone and direction codes: ints Numba freezes
from src.engine.records import (BUY_KRW_SELL_USDT, COST_FLOOR, HARD, INSUFFICIENT_DEPTH, KILL_SWITCH,  # noqa: E402
                                MAX_OPEN_POSITIONS, NO_EXIT, NO_KIND, OUTSIDE_ZONE, OUTSIDE_ZONES, SELL_KRW_BUY_USDT,
                                SOFT, SPREAD_REVERSAL, STOP_LOSS, TAKE_PROFIT, TIME_LIMIT)

# Python's round() bit for bit (kernel_round.py; kernel_json.py prints floats with it too)
from src.engine.kernel_round import py_round  # noqa: E402,F401

# the state, params and position layouts and the trade record (kernel_layout.py: no numba there, so the
# Python layer and the ahead-of-time build (aot.py) read them without importing numba)
from src.engine.kernel_layout import (DEPTH_DEN, DEPTH_NUM, FLOOR_MULT, GROWTH, KRW_FEE, LEVELS,  # noqa: E402,F401
                                      LOSS_LIMIT, MAX_OPEN, MIN_FILL, N_DAYS, N_OPEN, N_TRADES, NOTIONAL,
                                      P_FX, P_KRW, P_QTY, P_SLIP_KRW, P_SLIP_USDT, P_SPREAD, P_T, P_TARGET,
                                      P_USDT, RT_FEE, SIGNALS, STEP, TICKS, TRADE_DT, UPDATES, USDT_FEE)

@njit(cache=True)
def _walk(top: float, size: float, qty: float, side: int, prm: np.ndarray) -> float:
    """book.walk: volume-weighted price of taking qty; side +1 buys (asks), -1 sells (bids)."""
    levels = int(prm[LEVELS])
    step = prm[STEP]
    remaining = qty
    cost = 0.0
    for i in range(levels):
        take = size if size < remaining else remaining
        cost += take * top * (1.0 + (side * i) * step * 1e-4)
        remaining -= take
        if remaining <= 0.0:
            return cost / qty
        size *= prm[GROWTH]
    cost += remaining * top * (1.0 + (side * levels) * step * 1e-4)
    return cost / qty


@njit(cache=True)
def _depth(top_size: float, prm: np.ndarray) -> float:
    if prm[GROWTH] == 1.0:
        return top_size * int(prm[LEVELS])
    return top_size * prm[DEPTH_NUM] / prm[DEPTH_DEN]


@njit(cache=True)
def _fill(ub: float, ua: float, kb: float, ka: float, us: float, ks: float, qty: float, d: int, opening: bool,
          prm: np.ndarray) -> tuple[float, float, float, float]:
    """fills.fill_legs: (usdt_px, krw_px, slippage_usdt, slippage_krw)."""
    usdt_side = d if opening else -d
    krw_side = -usdt_side
    usdt_top = ua if usdt_side > 0 else ub
    krw_top = ka if krw_side > 0 else kb
    usdt_px = _walk(usdt_top, us, qty, usdt_side, prm)
    krw_px = _walk(krw_top, ks, qty, krw_side, prm)
    return usdt_px, krw_px, qty * (usdt_px - usdt_top) * usdt_side, qty * (krw_px - krw_top) * krw_side


@njit(cache=True)
def _exit_spread(ub: float, ua: float, kb: float, ka: float, fx: float, d: int) -> float:
    if d > 0:
        return (ka / fx - ub) / ub * 1e4
    krw_usd = kb / fx
    return (ua - krw_usd) / krw_usd * 1e4


@njit(cache=True)
def _day_slot(day: int, keys: np.ndarray, st: np.ndarray) -> int:
    for j in range(st[N_DAYS]):
        if keys[j] == day:
            return j
    return -1


@njit(cache=True, nogil=True)
def run_ticks(i0: int, i1: int, t_s: np.ndarray, day_a: np.ndarray, fx_a: np.ndarray, ub_a: np.ndarray,
              ua_a: np.ndarray, kb_a: np.ndarray, ka_a: np.ndarray, us_a: np.ndarray, ks_a: np.ndarray, prm: np.ndarray,
              zones: np.ndarray, n_zones: np.ndarray, limits: np.ndarray, st: np.ndarray, rej: np.ndarray,
              last_fx: np.ndarray, pos_i: np.ndarray, pos_f: np.ndarray, last_q: np.ndarray,
              day_keys: np.ndarray, day_pnl: np.ndarray, trades: np.ndarray, one_trade_tick: bool) -> int:
    """Run ticks [i0, i1) of a chunk, as loop.run_session does; returns the next tick to run
    (i1; earlier when `trades` has no room left for a full tick of exits, or, with
    `one_trade_tick`, right after the first tick that closed a trade).

    day_a[i] = int(t_s[i] // 86400.0), worked out by numpy (floor_divide is Python's //);
    zones[s, z] = (lo, hi, tp, sl, size_frac); limits[s] = (soft_s, hard_s, min_loss_bps);
    pos_i[s] = (open, direction, zone); pos_f[s] = P_*; last_q[s]: the last valid quote of
    an open position's symbol (ub, ua, kb, ka, us, ks, fx), for the closing mark to market.
    """
    n_sym = ub_a.shape[1]
    cap = trades.shape[0]
    rt_fee = prm[RT_FEE]
    cur_day, cur_slot = -(1 << 62), -1
    screen = np.empty(n_sym)  # the first zone's lo as a fraction, for the no-division screen (NaN: none)
    for s in range(n_sym):
        lo = zones[s, 0, 0]
        screen[s] = lo * 1e-4 if -1e4 <= lo <= 1e4 else np.nan
    for i in range(i0, i1):
        n_before = st[N_TRADES]
        if n_before + n_sym > cap:
            return i
        t = t_s[i]
        fx = fx_a[i]
        day = day_a[i]
        if day != cur_day:
            cur_day, cur_slot = day, _day_slot(day, day_keys, st)
        fx_ok = fx == fx
        ifx = 1.0 / fx if fx_ok and fx != 0.0 else 0.0  # the screen's; 0.0 turns it off for the tick
        updates = 0
        for s in range(n_sym):
            ub, ua, kb, ka, us, ks = ub_a[i, s], ua_a[i, s], kb_a[i, s], ka_a[i, s], us_a[i, s], ks_a[i, s]
            if not (fx_ok and ub == ub and ua == ua and kb == kb and ka == ka and us == us and ks == ks):
                continue  # no valid quote: the symbol sits the tick out
            updates += 1
            if pos_i[s, 0]:
                d, zi = pos_i[s, 1], pos_i[s, 2]
                now = _exit_spread(ub, ua, kb, ka, fx, d)
                captured = pos_f[s, P_SPREAD] - now
                usdt_mid = 0.5 * (ub + ua)
                reason, kind = NO_EXIT, NO_KIND
                if -captured >= zones[s, zi, 3]:
                    reason = STOP_LOSS
                elif (0.5 * (kb + ka) / fx - usdt_mid) / usdt_mid * 1e4 * d < 0.0:
                    reason = SPREAD_REVERSAL
                elif captured >= zones[s, zi, 2]:
                    reason = TAKE_PROFIT
                else:
                    hold = t - pos_f[s, P_T]
                    if hold >= limits[s, 1]:
                        reason, kind = TIME_LIMIT, HARD
                    elif hold >= limits[s, 0] and captured - rt_fee >= -limits[s, 2]:
                        reason, kind = TIME_LIMIT, SOFT
                if reason == NO_EXIT:
                    last_q[s, 0], last_q[s, 1], last_q[s, 2], last_q[s, 3] = ub, ua, kb, ka
                    last_q[s, 4], last_q[s, 5], last_q[s, 6] = us, ks, fx
                    continue
                pnl_usd = _close(trades[st[N_TRADES]], s, d, zi, reason, kind, t, now, ub, ua, kb, ka, us, ks, fx,
                                 pos_f[s], prm)
                st[N_TRADES] += 1
                pos_i[s, 0] = 0
                st[N_OPEN] -= 1
                if cur_slot < 0:
                    cur_slot = st[N_DAYS]
                    day_keys[cur_slot] = day
                    day_pnl[cur_slot] = 0.0
                    st[N_DAYS] += 1
                day_pnl[cur_slot] = day_pnl[cur_slot] + pnl_usd
                continue
            # entry check (loop.try_entry). First a screen without divisions: when both spreads
            # are below the first zone by far more than any rounding (1e-12 relative, with prices
            # in a range where nothing overflows or underflows), the exact test below would say
            # "not a signal" too; anything else goes to the exact test.
            lo_f = screen[s]
            fa, fk = kb * ifx, ka * ifx
            if (1e-100 < ua < 1e100 and 1e-100 < fk < 1e100 and abs(fa) < 1e100 and abs(ub) < 1e100
                    and (fa - ua) + 1e-12 * (abs(fa) + ua) < ua * lo_f
                    and (ub - fk) + 1e-12 * (abs(ub) + fk) < fk * lo_f):
                continue
            up = (kb / fx - ua) / ua * 1e4
            krw_usd = ka / fx
            down = (ub - krw_usd) / krw_usd * 1e4
            if up >= down:
                d, spread = SELL_KRW_BUY_USDT, up
            else:
                d, spread = BUY_KRW_SELL_USDT, down
            if spread < zones[s, 0, 0]:
                continue  # below the first zone: not a signal
            zi = OUTSIDE_ZONE
            for z in range(n_zones[s]):
                if zones[s, z, 0] <= spread < zones[s, z, 1]:
                    zi = z
                    break
            st[SIGNALS] += 1
            if zi == OUTSIDE_ZONE:
                rej[OUTSIDE_ZONES] += 1
                continue
            killed = (day_pnl[cur_slot] if cur_slot >= 0 else 0.0) <= -prm[LOSS_LIMIT]
            if killed:
                rej[KILL_SWITCH] += 1
                continue
            if st[N_OPEN] >= prm[MAX_OPEN]:
                rej[MAX_OPEN_POSITIONS] += 1
                continue
            ref_px = ua if d > 0 else ub
            target = prm[NOTIONAL] * zones[s, zi, 4] / ref_px
            qty = target
            du = _depth(us, prm)
            if du < qty:
                qty = du
            dk = _depth(ks, prm)
            if dk < qty:
                qty = dk
            if qty <= 0.0 or qty * ref_px < prm[MIN_FILL]:  # nothing to fill even when min_fill_usd=0
                rej[INSUFFICIENT_DEPTH] += 1
                continue
            usdt_px, krw_px, slip_usdt, slip_krw = _fill(ub, ua, kb, ka, us, ks, qty, d, True, prm)
            slip_bps = (slip_usdt + slip_krw / fx) / (qty * usdt_px) * 1e4
            floor_bps = rt_fee + 2.0 * slip_bps
            if spread < prm[FLOOR_MULT] * floor_bps:
                rej[COST_FLOOR] += 1
                continue
            pos_i[s, 0], pos_i[s, 1], pos_i[s, 2] = 1, d, zi
            pf = pos_f[s]
            pf[P_T], pf[P_SPREAD], pf[P_QTY], pf[P_USDT], pf[P_KRW] = t, spread, qty, usdt_px, krw_px
            pf[P_SLIP_USDT], pf[P_SLIP_KRW], pf[P_FX], pf[P_TARGET] = slip_usdt, slip_krw, fx, target
            st[N_OPEN] += 1
            last_q[s, 0], last_q[s, 1], last_q[s, 2], last_q[s, 3] = ub, ua, kb, ka
            last_q[s, 4], last_q[s, 5], last_q[s, 6] = us, ks, fx
        st[TICKS] += 1
        st[UPDATES] += updates
        if fx_ok:
            last_fx[0] = fx
        if one_trade_tick and st[N_TRADES] > n_before:
            return i + 1
    return i1


@njit(cache=True)
def _settle(pf: np.ndarray, d: int, x_usdt: float, x_krw: float, x_slip_usdt: float, x_slip_krw: float,
            fx_exit: float, prm: np.ndarray) -> tuple[float, float, float, float]:
    """fills.settle: (fees_krw, slippage_krw, pnl_krw, pnl_usd), PnL in KRW at the exit FX."""
    qty = pf[P_QTY]
    krw_gross = d * qty * (pf[P_KRW] - x_krw)
    usdt_gross = d * qty * (x_usdt - pf[P_USDT])
    krw_fees = prm[KRW_FEE] * 1e-4 * qty * (pf[P_KRW] + x_krw)
    usdt_fees = prm[USDT_FEE] * 1e-4 * qty * (pf[P_USDT] + x_usdt)
    pnl_krw = krw_gross - krw_fees + (usdt_gross - usdt_fees) * fx_exit
    fees = krw_fees + usdt_fees * fx_exit
    slip = pf[P_SLIP_KRW] + x_slip_krw + pf[P_SLIP_USDT] * fx_exit + x_slip_usdt * fx_exit
    return fees, slip, pnl_krw, pnl_krw / fx_exit


@njit(cache=True)
def _close(rec, s: int, d: int, zi: int, reason: int, kind: int, t: float, now: float, ub: float, ua: float,
           kb: float, ka: float, us: float, ks: float, fx: float, pf: np.ndarray, prm: np.ndarray) -> float:
    """loop.close_position into one TRADE_DT record; returns its (rounded) pnl_usd."""
    qty = pf[P_QTY]
    x_usdt, x_krw, x_su, x_sk = _fill(ub, ua, kb, ka, us, ks, qty, d, False, prm)
    fees, slip, pnl_krw, pnl_usd = _settle(pf, d, x_usdt, x_krw, x_su, x_sk, fx, prm)
    rec.symbol, rec.direction, rec.zone = s, d, zi
    rec.exit_reason, rec.time_limit_kind = reason, kind
    rec.entry_t_s, rec.exit_t_s, rec.hold_s = pf[P_T], t, t - pf[P_T]
    rec.entry_spread_bps = py_round(pf[P_SPREAD], 1e4) + 0.0
    rec.exit_spread_bps = py_round(now, 1e4)
    rec.qty = py_round(qty, 1e10) + 0.0
    rec.fill_ratio = py_round(qty / pf[P_TARGET], 1e6) + 0.0
    rec.notional_usd = py_round(qty * pf[P_USDT], 1e6) + 0.0
    rec.entry_usdt_px = py_round(pf[P_USDT], 1e10) + 0.0
    rec.entry_krw_px = py_round(pf[P_KRW], 1e6) + 0.0
    rec.exit_usdt_px = py_round(x_usdt, 1e10) + 0.0
    rec.exit_krw_px = py_round(x_krw, 1e6) + 0.0
    rec.fx_entry = py_round(pf[P_FX], 1e6) + 0.0
    rec.fx_exit = py_round(fx, 1e6) + 0.0
    rec.fees_krw = py_round(fees, 1e2) + 0.0
    rec.slippage_krw = py_round(slip, 1e2) + 0.0
    rec.pnl_krw = py_round(pnl_krw, 1e2) + 0.0
    pnl_usd_r = py_round(pnl_usd, 1e6) + 0.0
    rec.pnl_usd = pnl_usd_r
    return pnl_usd_r


@njit(cache=True)
def mark_to_market(pf: np.ndarray, d: int, q: np.ndarray, prm: np.ndarray) -> float:
    """loop.mark_to_market: PnL in KRW of closing the position at quote q now."""
    x_usdt, x_krw, x_su, x_sk = _fill(q[0], q[1], q[2], q[3], q[4], q[5], pf[P_QTY], d, False, prm)
    return _settle(pf, d, x_usdt, x_krw, x_su, x_sk, q[6], prm)[2]
