"""Mutation check of the oracle suites: put one realistic bug in at a time, see which tests catch it.

    python tests/mutate_oracle.py                 # every mutation (a few minutes)
    python tests/mutate_oracle.py "kill switch"   # those whose name contains a word

Engine and market mutations run tests/test_oracle.py, test_engine_units.py and
test_mutants_engine.py (kernel mutations also the kernel's round()/repr() unit tests); gate,
recheck and stage mutations run tests/test_gates_boundaries.py, test_acceptance.py and
test_mutants_gates.py; trader-KPI mutations (STATS) run tests/test_kpis_trader.py without its
CLI runs; compare and output-digest mutations tests/compare/test_diff.py and
test_mutants_compare.py; config-bound mutations tests/config/test_validate.py and
test_mutants_config.py (tests_for() below). Kernel mutations need the JIT to see the edit:
`KERNEL_AOT=0 python tests/mutate_oracle.py ...` (the ahead-of-time build would be redone per mutant).
Each mutation is a list of exact (file, old, new) edits -- the same bug in both engines
where they spell a rule twice, and again in the kernel alone ("KERNEL ONLY": a bug in
src/engine/kernel.py's own twin of a rule, which the oracle must catch by itself). Files are restored after each run,
even on Ctrl-C. Run from the repo root on a clean tree. Not collected by pytest.

Bytecode is off for the runs: an edit that keeps a file's size within the same
second (">=" -> "> ") would otherwise run the stale .pyc of the previous mutation.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

E, KN, L, F, B, Z, G = ("src/engine/exits.py", "src/engine/kernel.py", "src/engine/loop.py",
                        "src/engine/fills.py", "src/market/book.py", "src/engine/zones.py", "src/acceptance/gates.py")
K, KR, S = "src/engine/kpi.py", "src/engine/kernel_run.py", "src/engine/stats.py"
GM, CD, PO = "src/acceptance/__main__.py", "src/compare/diff.py", "src/provenance/outputs.py"
FD, V = "src/compare/firstdiff.py", "src/config/validate.py"
M: dict[str, list[tuple[str, str, str]]] = {
    'tp >= -> > (exits+kernel)': [
        (E, 'if captured >= zone.tp_bps', 'if captured > zone.tp_bps'),
        (KN, 'elif captured >= zones[s, zi, 2]:', 'elif captured > zones[s, zi, 2]:'),
    ],
    'sl >= -> > (exits+kernel)': [
        (E, '-captured >= zone.sl_bps', '-captured > zone.sl_bps'),
        (KN, 'if -captured >= zones[s, zi, 3]:', 'if -captured > zones[s, zi, 3]:'),
    ],
    'hard limit >= -> > (off by one tick)': [
        (E, 'hold >= profile.hard_limit_s', 'hold > profile.hard_limit_s'),
        (KN, 'if hold >= limits[s, 1]:', 'if hold > limits[s, 1]:'),
    ],
    'soft limit >= -> >': [
        (E, 'hold >= profile.soft_limit_s', 'hold > profile.soft_limit_s'),
        (KN, 'elif hold >= limits[s, 0] and', 'elif hold > limits[s, 0] and'),
    ],
    'min loss >= -> >': [
        (E, 'round_trip_fee_bps >= -profile.min_loss_bps', 'round_trip_fee_bps > -profile.min_loss_bps'),
        (KN, 'captured - rt_fee >= -limits[s, 2]', 'captured - rt_fee > -limits[s, 2]'),
    ],
    'min loss ignores fees': [
        (E, 'captured - round_trip_fee_bps >= -profile.min_loss_bps', 'captured >= -profile.min_loss_bps'),
        (KN, 'captured - rt_fee >= -limits[s, 2]', 'captured >= -limits[s, 2]'),
    ],
    'reversal < 0 -> <= 0': [
        (E, 'pos.direction < 0.0', 'pos.direction <= 0.0'),
        (KN, '/ usdt_mid * 1e4 * d < 0.0:', '/ usdt_mid * 1e4 * d <= 0.0:'),
    ],
    'reversal checked after TP': [
        (E, '    if mid_premium_bps(q) * pos.direction < 0.0:\n        return "spread_reversal"\n'
            '    if captured >= zone.tp_bps:\n        return "take_profit"\n',
         '    if captured >= zone.tp_bps:\n        return "take_profit"\n'
         '    if mid_premium_bps(q) * pos.direction < 0.0:\n        return "spread_reversal"\n'),
        (KN, '                elif (0.5 * (kb + ka) / fx - usdt_mid) / usdt_mid * 1e4 * d < 0.0:\n'
             '                    reason = SPREAD_REVERSAL\n'
             '                elif captured >= zones[s, zi, 2]:\n                    reason = TAKE_PROFIT\n',
         '                elif captured >= zones[s, zi, 2]:\n                    reason = TAKE_PROFIT\n'
         '                elif (0.5 * (kb + ka) / fx - usdt_mid) / usdt_mid * 1e4 * d < 0.0:\n'
         '                    reason = SPREAD_REVERSAL\n'),
    ],
    'entry FX instead of exit FX (PnL)': [
        (F, '(usdt_gross - usdt_fees) * fx_exit', '(usdt_gross - usdt_fees) * fx_entry'),
        (KN, '(usdt_gross - usdt_fees) * fx_exit', '(usdt_gross - usdt_fees) * pf[P_FX]'),
    ],
    'entry FX for pnl_usd': [
        (F, 'pnl_usd=pnl_krw / fx_exit', 'pnl_usd=pnl_krw / fx_entry'),
        (KN, 'pnl_krw, pnl_krw / fx_exit', 'pnl_krw, pnl_krw / pf[P_FX]'),
    ],
    'entry FX for entry slippage (the old code)': [
        (F, 'entry.slippage_usdt * fx_exit', 'entry.slippage_usdt * fx_entry'),
        (KN, 'pf[P_SLIP_USDT] * fx_exit', 'pf[P_SLIP_USDT] * pf[P_FX]'),
    ],
    'kill switch resets hourly': [
        (L, 'SECONDS_PER_DAY = 86400.0', 'SECONDS_PER_DAY = 3600.0'),  # the kernel's days use it too
    ],
    'kill switch <= -> <': [
        (L, 'killed = day_pnl_usd.get(day, 0.0) <= -params.risk.daily_loss_limit_usd',
         'killed = day_pnl_usd.get(day, 0.0) < -params.risk.daily_loss_limit_usd'),
        (KN, 'else 0.0) <= -prm[LOSS_LIMIT]', 'else 0.0) < -prm[LOSS_LIMIT]'),
    ],
    'kill switch never resets (session PnL)': [
        (L, 'killed = day_pnl_usd.get(day, 0.0) <=', 'killed = sum(day_pnl_usd.values()) <='),
        (KN, 'killed = (day_pnl[cur_slot] if cur_slot >= 0 else 0.0) <=', 'killed = day_pnl[:st[N_DAYS]].sum() <='),
    ],
    'fee on three legs (KRW exit leg)': [
        (F, 'krw_fee_bps * 1e-4 * qty * (entry.krw_px + exit_.krw_px)', 'krw_fee_bps * 1e-4 * qty * entry.krw_px'),
        (KN, 'prm[KRW_FEE] * 1e-4 * qty * (pf[P_KRW] + x_krw)', 'prm[KRW_FEE] * 1e-4 * qty * pf[P_KRW]'),
    ],
    'fee on three legs (USDT exit leg)': [
        (F, 'usdt_fee_bps * 1e-4 * qty * (entry.usdt_px + exit_.usdt_px)', 'usdt_fee_bps * 1e-4 * qty * entry.usdt_px'),
        (KN, 'prm[USDT_FEE] * 1e-4 * qty * (pf[P_USDT] + x_usdt)', 'prm[USDT_FEE] * 1e-4 * qty * pf[P_USDT]'),
    ],
    'depth walk skips the last level': [
        (B, '    for i in range(book.levels):\n        take = size',
         '    for i in range(book.levels - 1):\n        take = size'),
        (KN, '    for i in range(levels):\n        take = size', '    for i in range(levels - 1):\n        take = size'),
    ],
    'depth walk prices level i at i+1': [
        (B, '(1.0 + side * i * book.step_bps * 1e-4)', '(1.0 + side * (i + 1) * book.step_bps * 1e-4)'),
        (KN, '(1.0 + (side * i) * step * 1e-4)', '(1.0 + (side * (i + 1)) * step * 1e-4)'),
    ],
    'no refill beyond the book': [
        (B, 'cost += remaining * top_price * (1.0 + side * book.levels * book.step_bps * 1e-4)',
         'cost += remaining * top_price * (1.0 + side * (book.levels - 1) * book.step_bps * 1e-4)'),
        (KN, 'cost += remaining * top * (1.0 + (side * levels) * step * 1e-4)',
         'cost += remaining * top * (1.0 + (side * (levels - 1)) * step * 1e-4)'),
    ],
    'depth() one level short': [
        (B, '    for _ in range(book.levels):\n        p *= book.growth',
         '    for _ in range(book.levels - 1):\n        p *= book.growth'),  # the kernel's depth uses it too
    ],
    'max open >= -> >': [
        (L, 'n_open >= params.risk.max_open_positions', 'n_open > params.risk.max_open_positions'),
        (KN, 'if st[N_OPEN] >= prm[MAX_OPEN]:', 'if st[N_OPEN] > prm[MAX_OPEN]:'),
    ],
    'min fill < -> <=': [
        (L, 'qty * ref_px < params.risk.min_fill_usd', 'qty * ref_px <= params.risk.min_fill_usd'),
        (KN, 'qty * ref_px < prm[MIN_FILL]', 'qty * ref_px <= prm[MIN_FILL]'),
    ],
    'empty book filled (qty 0 not refused)': [
        (L, 'if qty <= 0.0 or qty * ref_px < params.risk.min_fill_usd:', 'if qty * ref_px < params.risk.min_fill_usd:'),
        (KN, 'if qty <= 0.0 or qty * ref_px < prm[MIN_FILL]:', 'if qty * ref_px < prm[MIN_FILL]:'),
    ],
    'cost floor < -> <=': [
        (L, 'if spread < params.floor_multiplier * floor_bps', 'if spread <= params.floor_multiplier * floor_bps'),
        (KN, 'if spread < prm[FLOOR_MULT] * floor_bps:', 'if spread <= prm[FLOOR_MULT] * floor_bps:'),
    ],
    'cost floor counts slippage once': [
        (L, 'params.round_trip_fee_bps + 2.0 * slip_bps', 'params.round_trip_fee_bps + slip_bps'),
        (KN, 'rt_fee + 2.0 * slip_bps', 'rt_fee + slip_bps'),
    ],
    'round trip fee counts two legs': [
        (L, 'return 2.0 * (self.usdt_fee_bps + self.krw_fee_bps)', 'return self.usdt_fee_bps + self.krw_fee_bps'),
    ],
    'notional ignores size_frac': [
        (L, 'params.risk.max_notional_usd * zone.size_frac / ref_px', 'params.risk.max_notional_usd / ref_px'),
        (KN, 'prm[NOTIONAL] * zones[s, zi, 4] / ref_px', 'prm[NOTIONAL] / ref_px'),
    ],
    'zone hi inclusive': [
        (Z, 'if z.lo_bps <= spread_bps < z.hi_bps:', 'if z.lo_bps <= spread_bps <= z.hi_bps:'),
        (KN, 'if zones[s, z, 0] <= spread < zones[s, z, 1]:', 'if zones[s, z, 0] <= spread <= zones[s, z, 1]:'),
    ],
    'zone lo exclusive': [
        (Z, 'if z.lo_bps <= spread_bps < z.hi_bps:', 'if z.lo_bps < spread_bps < z.hi_bps:'),
        (KN, 'if zones[s, z, 0] <= spread < zones[s, z, 1]:', 'if zones[s, z, 0] < spread < zones[s, z, 1]:'),
    ],
    're-entry in the exit tick': [
        (L, '                        on_trade(trade)\n                    continue\n',
         '                        on_trade(trade)\n'),
        (KN, '                day_pnl[cur_slot] = day_pnl[cur_slot] + pnl_usd\n                continue\n',
         '                day_pnl[cur_slot] = day_pnl[cur_slot] + pnl_usd\n'),
    ],
    'kpi usd at the first fx': [
        (K, 'fx = res.last_fx', "fx = col('fx_entry')[0] if pnl else res.last_fx"),
    ],
    'AC-2 lt as <=': [
        (G, '"lt": operator.lt', '"lt": operator.le'),
    ],
    'AC-2 op le in the shipped stage': [
        ('conf/stage/d92-5.yaml', '      op: lt\n      value: 1.0', '      op: le\n      value: 1.0'),
    ],
    'AC-1 ge as >': [
        (G, '"ge": operator.ge', '"ge": operator.gt'),
    ],
    'under: prefix match': [
        (G, 'return isinstance(actual, str) and ".." not in path.parts and parent in path.parents',
         'return isinstance(actual, str) and str(actual).startswith(str(value))'),
    ],
    "under: '..' allowed again": [
        (G, 'return isinstance(actual, str) and ".." not in path.parts and parent in path.parents',
         'return isinstance(actual, str) and parent in path.parents'),
    ],
    'present: falsy counts as missing': [
        (G, 'return actual is not None', 'return bool(actual)'),
    ],
    'time_limit share over tp+sl only': [
        (G, '"time_limit_share": (exits.get(EXIT_REASONS[TIME_LIMIT], 0) / total) if total else 0.0',
         '"time_limit_share": (exits.get(EXIT_REASONS[TIME_LIMIT], 0) / max(total, 1)) '
         'if exits.get(EXIT_REASONS[TAKE_PROFIT], 0) else 0.0'),
    ],
    'entry spread d=-1 on the KRW bid': [
        (F, '    krw_usd = q.krw_ask / q.fx\n    return (q.usdt_bid - krw_usd)',
         '    krw_usd = q.krw_bid / q.fx\n    return (q.usdt_bid - krw_usd)'),
        (KN, '            krw_usd = ka / fx\n            down', '            krw_usd = kb / fx\n            down'),
    ],
    'exit spread d=+1 over the USDT ask': [
        (F, 'return (q.krw_ask / q.fx - q.usdt_bid) / q.usdt_bid * 1e4',
         'return (q.krw_ask / q.fx - q.usdt_ask) / q.usdt_ask * 1e4'),
        (KN, 'return (ka / fx - ub) / ub * 1e4', 'return (ka / fx - ua) / ua * 1e4'),
    ],
    'exit spread d=-1 on the KRW ask': [
        (F, '    krw_usd = q.krw_bid / q.fx\n    return (q.usdt_ask - krw_usd)',
         '    krw_usd = q.krw_ask / q.fx\n    return (q.usdt_ask - krw_usd)'),
        (KN, '    krw_usd = kb / fx\n    return (ua - krw_usd)', '    krw_usd = ka / fx\n    return (ua - krw_usd)'),
    ],
    'mid premium from the KRW bid': [
        (F, '0.5 * (q.krw_bid + q.krw_ask) / q.fx', 'q.krw_bid / q.fx'),
        (KN, '(0.5 * (kb + ka) / fx - usdt_mid)', '(kb / fx - usdt_mid)'),
    ],
    'a zero PnL counts as a win': [
        (K, 'wins = sum(1 for x in pnl if x > 0)', 'wins = sum(1 for x in pnl if x >= 0)'),
    ],
    'drawdown from zero, not the peak': [
        (K, 'max_dd = max(max_dd, peak - equity)', 'max_dd = max(max_dd, -equity)'),
    ],
    'kill switch adds KRW, not USD': [
        (L, 'day_pnl_usd[day] = day_pnl_usd.get(day, 0.0) + trade["pnl_usd"]',
         'day_pnl_usd[day] = day_pnl_usd.get(day, 0.0) + trade["pnl_krw"]'),
        (KN, '    return pnl_usd_r\n', '    return rec.pnl_krw\n'),
    ],
    'exit legs filled as an entry': [
        (L, '    exit_ = fill_legs(q, pos.entry.qty, pos.direction, False, book)\n    rt = settle',
         '    exit_ = fill_legs(q, pos.entry.qty, pos.direction, True, book)\n    rt = settle'),
        (KN, '_fill(ub, ua, kb, ka, us, ks, qty, d, False, prm)', '_fill(ub, ua, kb, ka, us, ks, qty, d, True, prm)'),
    ],
    'mark to market at the entry FX': [
        (L, '    return settle(pos.entry, exit_, pos.direction, pos.fx_entry, q.fx,',
         '    return settle(pos.entry, exit_, pos.direction, pos.fx_entry, pos.fx_entry,'),
        (KN, 'return _settle(pf, d, x_usdt, x_krw, x_su, x_sk, q[6], prm)[2]',
         'return _settle(pf, d, x_usdt, x_krw, x_su, x_sk, pf[P_FX], prm)[2]'),
    ],
    'time_limit share without reversals': [
        (G, 'total = sum(exits.get(k, 0) for k in EXIT_REASONS)',
         'total = sum(exits.get(k, 0) for k in EXIT_REASONS if k != "spread_reversal")'),
    ],
    'hold measured from the previous tick': [
        (E, 'hold = t - pos.entry_t_s', 'hold = t - pos.entry_t_s + 30.0'),
        (KN, 'hold = t - pos_f[s, P_T]', 'hold = t - pos_f[s, P_T] + 30.0'),
    ],
    'depth() of a flat book one level short': [
        (B, 'return top_size * book.levels', 'return top_size * (book.levels - 1)'),
        (KN, 'return top_size * int(prm[LEVELS])', 'return top_size * (int(prm[LEVELS]) - 1)'),
    ],
    'KERNEL ONLY: days are hours': [
        (KR, 'days = np.floor_divide(t, SECONDS_PER_DAY)', 'days = np.floor_divide(t, 3600.0)'),
    ],
    'KERNEL ONLY: a day slot per chunk, not per day': [
        (KN, '            cur_day, cur_slot = day, _day_slot(day, day_keys, st)',
         '            cur_day, cur_slot = day, -1'),
    ],
    'KERNEL ONLY: round half up': [
        ("src/engine/kernel_round.py",  # hook: aotsetup (py_round moved out of kernel.py)
         "elif f > 0.5 or (f == 0.5 and (lo > 0.0 or (lo == 0.0 and not _even(n)))):",
         "elif f >= 0.5:"),
    ],
    'KERNEL ONLY: last valid quote not kept for the mark': [
        (KN, '                if reason == NO_EXIT:\n'
             '                    last_q[s, 0], last_q[s, 1], last_q[s, 2], last_q[s, 3] = ub, ua, kb, ka\n',
         '                if reason == NO_EXIT:\n'
             '                    last_q[s, 0], last_q[s, 1], last_q[s, 2], last_q[s, 3] = ub, ua, kb, kb\n'),
    ],
    # trader KPIs (src/engine/stats.py): tests/test_kpis_trader.py, without its CLI runs
    'STATS: exposure sums overlapping positions twice': [(S, 'if hi is None or a > hi:', 'if True:')],
    'STATS: Sharpe with the population std': [(S, '/ (n - 1)', '/ n')],
    'STATS: Sortino over the losing hours only': [
        (S, 'for x in r) / n\n', 'for x in r) / sum(1 for x in r if x < 0)\n')],
    'STATS: the partial last hour in the ratios': [(S, 'samples[:whole_hours(span) + 1]', 'samples')],
    'STATS: a close at the sample time counts before it': [(S, 'exit_t[i] < b', 'exit_t[i] <= b')],
    'STATS: hours counted from t=0, not the first tick': [
        (S, 'equity_samples(col("exit_t_s"), pnl, start_t_s, end_t_s)', 'equity_samples(col("exit_t_s"), pnl, 0.0, end_t_s)')],
    'STATS: drawdown starts at the first touch of the peak': [(S, 'if equity >= peak:', 'if equity > peak:')],
    'STATS: recovery looked for before the trough': [(S, 'range(trough + 1, len(curve))', 'range(len(curve))')],
    'STATS: average loss over losing trades only': [(S, 'if not x > 0]', 'if x < 0]')],
    'STATS: profit factor counts zeros': [(S, 'gross_loss = -seq_sum(x for x in pnl if x < 0)',
                                           'gross_loss = -seq_sum(x for x in pnl if x <= 0) or 1.0')],
    'STATS: turnover without the exit legs': [(S, 'q * (a + b) for q, a, b', 'q * a for q, a, b')],
    'STATS: turnover without the open positions': [(S, '[*closed, *still_open]', '[*closed]')],
    'STATS: USDT venue fees left in USDT': [(S, '* (a + b) * f', '* (a + b)')],
    'STATS: gross = net - fees': [(S, 'cents(net_krw) + cents(fees_krw)', 'cents(net_krw) - cents(fees_krw)')],
    'STATS: per-zone wins count zeros': [(S, '"wins": sum(1 for x in v if x > 0)', '"wins": sum(1 for x in v if x >= 0)')],
    # -- added by the "mutants" pass (issue 12 item 4): rules the list above did not reach --------
    'last FX taken from a tick whose FX is missing': [
        (L, '            if fx == fx:\n                res.last_fx = fx\n', '            res.last_fx = fx\n'),
        (KN, '        if fx_ok:\n            last_fx[0] = fx\n', '        if True:\n            last_fx[0] = fx\n'),
    ],
    'entry spread d=+1 over the USDT bid': [
        (F, 'return (q.krw_bid / q.fx - q.usdt_ask) / q.usdt_ask * 1e4',
         'return (q.krw_bid / q.fx - q.usdt_bid) / q.usdt_bid * 1e4'),
        (KN, 'up = (kb / fx - ua) / ua * 1e4', 'up = (kb / fx - ub) / ub * 1e4'),
    ],
    'USDT slippage of a sell counted negative': [
        (F, 'slippage_usdt=qty * (usdt_px - usdt_top) * usdt_side', 'slippage_usdt=qty * (usdt_px - usdt_top)'),
        (KN, 'qty * (usdt_px - usdt_top) * usdt_side', 'qty * (usdt_px - usdt_top)'),
    ],
    'USDT legs charged the KRW venue fee': [
        (F, 'usdt_fees = usdt_fee_bps * 1e-4', 'usdt_fees = krw_fee_bps * 1e-4'),
        (KN, 'usdt_fees = prm[USDT_FEE] * 1e-4', 'usdt_fees = prm[KRW_FEE] * 1e-4'),
    ],
    'soft limit without the min-loss condition': [
        (E, 'hold >= profile.soft_limit_s and captured - round_trip_fee_bps >= -profile.min_loss_bps',
         'hold >= profile.soft_limit_s'),
        (KN, 'elif hold >= limits[s, 0] and captured - rt_fee >= -limits[s, 2]:', 'elif hold >= limits[s, 0]:'),
    ],
    'below the first zone at its lo (< -> <=)': [
        (Z, 'if spread_bps < zones[0].lo_bps:', 'if spread_bps <= zones[0].lo_bps:'),
        (KN, 'if spread < zones[s, 0, 0]:', 'if spread <= zones[s, 0, 0]:'),
    ],
    'exit rules read the first zone': [
        (E, 'zone = profile.zones[pos.zone_idx]', 'zone = profile.zones[0]'),
        (KN, 'if -captured >= zones[s, zi, 3]:', 'if -captured >= zones[s, 0, 3]:'),
        (KN, 'elif captured >= zones[s, zi, 2]:', 'elif captured >= zones[s, 0, 2]:'),
    ],
    'KRW gross without the direction': [
        (F, 'krw_gross = d * qty * (entry.krw_px - exit_.krw_px)', 'krw_gross = qty * (entry.krw_px - exit_.krw_px)'),
        (KN, 'krw_gross = d * qty * (pf[P_KRW] - x_krw)', 'krw_gross = qty * (pf[P_KRW] - x_krw)'),
    ],
    'USDT gross without the direction': [
        (F, 'usdt_gross = d * qty * (exit_.usdt_px - entry.usdt_px)', 'usdt_gross = qty * (exit_.usdt_px - entry.usdt_px)'),
        (KN, 'usdt_gross = d * qty * (x_usdt - pf[P_USDT])', 'usdt_gross = qty * (x_usdt - pf[P_USDT])'),
    ],
    "kill switch: a day's wins do not offset its losses": [
        (L, 'day_pnl_usd[day] = day_pnl_usd.get(day, 0.0) + trade["pnl_usd"]',
         'day_pnl_usd[day] = day_pnl_usd.get(day, 0.0) + min(trade["pnl_usd"], 0.0)'),
        (KN, 'day_pnl[cur_slot] = day_pnl[cur_slot] + pnl_usd\n', 'day_pnl[cur_slot] = day_pnl[cur_slot] + min(pnl_usd, 0.0)\n'),
    ],
    # the config's fees and profiles as both engines get them (EngineParams.from_config, apply_profiles)
    'from_config: the maker fee instead of the taker fee': [
        (L, 'cfg.costs.usdt_venue.taker_fee_bps, cfg.costs.krw_venue.taker_fee_bps',
         'cfg.costs.usdt_venue.maker_fee_bps, cfg.costs.krw_venue.maker_fee_bps'),
    ],
    "from_config: the venues' fees swapped": [
        (L, 'cfg.costs.usdt_venue.taker_fee_bps, cfg.costs.krw_venue.taker_fee_bps',
         'cfg.costs.krw_venue.taker_fee_bps, cfg.costs.usdt_venue.taker_fee_bps'),
    ],
    'profiles: always the strict mapping': [(Z, 'name = getattr(mapping, mode.value)', 'name = mapping.strict')],
    'kernel params: the venues swapped': [
        (KR, 'prm[kn.USDT_FEE], prm[kn.KRW_FEE], prm[kn.RT_FEE] = params.usdt_fee_bps, params.krw_fee_bps,',
         'prm[kn.USDT_FEE], prm[kn.KRW_FEE], prm[kn.RT_FEE] = params.krw_fee_bps, params.usdt_fee_bps,'),
    ],
    'KERNEL ONLY: the entry screen without its rounding margin': [
        (KN, 'and (fa - ua) + 1e-12 * (abs(fa) + ua) < ua * lo_f', 'and (fa - ua) < ua * lo_f'),
        (KN, 'and (ub - fk) + 1e-12 * (abs(ub) + fk) < fk * lo_f', 'and (ub - fk) < fk * lo_f'),
    ],
    'KERNEL ONLY: the d=-1 screen scaled by the USDT ask': [
        (KN, 'and (ub - fk) + 1e-12 * (abs(ub) + fk) < fk * lo_f', 'and (ub - fk) + 1e-12 * (abs(ub) + fk) < ua * lo_f')],
    'KERNEL ONLY: a closed position keeps its slot': [(KN, '                st[N_OPEN] -= 1\n', '')],
    'records: round_half keeps a negative zero': [
        ('src/engine/records.py', '    return round(x, places) + 0.0\n', '    return round(x, places)\n')],
    'kpi entries without the open positions': [(K, '"entries": n + len(res.open_positions)', '"entries": n')],
    'kpi simulated_s is the planned duration': [
        (K, '"simulated_s": _r(res.ticks * tick_s, 6)', '"simulated_s": duration_s')],
    'kpi fx_rate of a session with no valid FX': [
        (K, '"fx_rate": _r(fx, 6) if res.ticks and fx == fx else None', '"fx_rate": _r(fx, 6) if res.ticks else None')],
    'kpi per-symbol wins count zeros': [
        (K, '"wins": sum(1 for x in mine if x > 0)', '"wins": sum(1 for x in mine if x >= 0)')],
    # gates (src/acceptance): tests/test_gates_boundaries.py and test_mutants_gates.py
    'is_true: any truthy value': [(G, 'return actual is True', 'return bool(actual)')],
    'numeric ops take a boolean actual': [
        (G, 'if not isinstance(actual, (int, float)) or isinstance(actual, bool):',
         'if not isinstance(actual, (int, float)):')],
    'numeric ops take a boolean threshold': [
        (G, 'not isinstance(value, (int, float)) or isinstance(value, bool):', 'not isinstance(value, (int, float)):')],
    'an unknown op passes': [
        (G, 'isinstance(value, bool):\n        return False\n', 'isinstance(value, bool):\n        return op not in _NUMERIC\n')],
    'zone evidence: the path alone': [
        (G, 'bool(ze.get("path") and ze.get("sha256") and ze.get("profiles_applied"))', 'bool(ze.get("path"))')],
    'import_clean when no hardlock was recorded': [
        (G, '"import_clean": import_violations == []', '"import_clean": not import_violations')],
    'a rule of several metrics checks only the last': [
        (G, 'ok = ok and actual is not _MISSING and', 'ok = actual is not _MISSING and')],
    'tp_plus_sl counts time limits': [
        (G, 'exits.get(EXIT_REASONS[TAKE_PROFIT], 0) + exits.get(EXIT_REASONS[STOP_LOSS], 0)',
         'exits.get(EXIT_REASONS[TAKE_PROFIT], 0) + exits.get(EXIT_REASONS[TIME_LIMIT], 0)')],
    'recheck: an unverified run is accepted': [
        (GM, 'complete = res["status"] == "completed" and ver.state == "intact"', 'complete = res["status"] == "completed"')],
    'recheck: the last run decides the exit code': [(GM, 'code = max(code, one, key=_WORST.index)', 'code = one')],
    # compare and the output digests: tests/compare/test_diff.py and test_mutants_compare.py
    'compare: two runs without a fingerprint share one': [
        (CD, 'same_fp = a.fingerprint is not None and a.fingerprint == b.fingerprint',
         'same_fp = a.fingerprint == b.fingerprint')],
    'compare: nondeterminism between non-results': [
        (CD, '"nondeterminism": same_fp and bool(differing) and _is_result(a) and _is_result(b)',
         '"nondeterminism": same_fp and bool(differing)')],
    'compare: an edited completed run is a result': [
        (CD, 'return run.status == "completed" and run.state not in UNTRUSTED', 'return run.status == "completed"')],
    'compare: added and removed files swapped': [
        (CD, 'change = "added" if path not in a else "removed" if path not in b else "modified"',
         'change = "removed" if path not in a else "added" if path not in b else "modified"')],
    'compare: groups count input descriptions': [
        (CD, 'for p, d in r.outputs.items() if p not in INPUT_DESCRIPTIONS', 'for p, d in r.outputs.items()')],
    'compare: kpi delta a - b': [(CD, 'd = vb - va if', 'd = va - vb if')],
    'compare: the KPIs of runs read from git never differ': [
        (CD, 'return [] if kpi_canonical(a.kpis) == kpi_canonical(b.kpis) else ["kpi_summary.json"]', 'return []')],
    'firstdiff: lines counted from 0': [(FD, 'out["line"] = i + 1', 'out["line"] = i')],
    'outputs: input descriptions count as results': [
        (PO, 'keep = lambda d: {k: v for k, v in d.items() if k not in INPUT_DESCRIPTIONS}', 'keep = lambda d: d')],
    'outputs: deleted and added swapped': [
        (PO, 'out.append((path, "deleted" if b is None else "added" if a is None else "changed"))',
         'out.append((path, "added" if b is None else "deleted" if a is None else "changed"))')],
    'outputs: a hidden file is not digested': [
        (PO, 'return name.startswith(".") and name.endswith(".tmp")', 'return name.startswith(".") or name.endswith(".tmp")')],
    'outputs: run.log digested': [
        (PO, 'NOT_DIGESTED = (RECORD_NAME, RUN_FILE_NAMES["run_log"])', 'NOT_DIGESTED = (RECORD_NAME,)')],
    'outputs: the seal is not checked': [
        (PO, '    if not state:\n        return Verification("edited"', '    if False:\n        return Verification("edited"')],
    'outputs: the fingerprint cross-check skipped': [
        (PO, '    if _PROVENANCE not in recorded:\n        return []', '    if True:\n        return []')],
    'outputs: a symlink digested as its target': [(PO, '    if entry.is_symlink():\n', '    if False:\n')],
    'fingerprint: the seed left out': [('src/provenance/fingerprint.py', '        "seed": seed,\n', '')],
    'fingerprint: the engine choice counts': [
        ('src/provenance/fingerprint.py', 'VOLATILE_CONFIG_KEYS = ("run", "engine", "clock")', 'VOLATILE_CONFIG_KEYS = ("run", "clock")')],
    'digests: SHA-256 of the first MiB only': [
        ('src/provenance/digests.py', '        while block := fh.read(1 << 20):\n', '        if block := fh.read(1 << 20):\n')],
    'KERNEL ONLY: the entry screen reads lo in percent': [(KN, 'screen[s] = lo * 1e-4 if', 'screen[s] = lo * 1e-2 if')],
    # config validation (src/config/validate.py): tests/config/test_validate.py and test_mutants_config.py
    'validate: a number equal to its upper bound refused': [
        (V, 'if hi is not None and value > hi:', 'if hi is not None and value >= hi:')],
    'validate: size_frac 0 allowed': [(V, 'z.size_frac, lo=0, hi=1, lo_open=True)', 'z.size_frac, lo=0, hi=1)')],
    'validate: size_frac above 1 allowed': [
        (V, 'z.size_frac, lo=0, hi=1, lo_open=True)', 'z.size_frac, lo=0, lo_open=True)')],
    'validate: sl_bps 0 allowed': [
        (V, '_num(p, f"{zk}.sl_bps", z.sl_bps, lo=0, lo_open=True)', '_num(p, f"{zk}.sl_bps", z.sl_bps, lo=0)')],
    'validate: hi_bps equal to lo_bps allowed': [
        (V, '_num(p, f"{zk}.hi_bps", z.hi_bps, lo=z.lo_bps, lo_open=True)', '_num(p, f"{zk}.hi_bps", z.hi_bps, lo=z.lo_bps)')],
    'validate: touching zones refused': [
        (V, 'if prev_hi is not None and z.lo_bps < prev_hi:', 'if prev_hi is not None and z.lo_bps <= prev_hi:')],
    'validate: hard limit equal to soft refused': [
        (V, 'if prof.hard_limit_s < prof.soft_limit_s:', 'if prof.hard_limit_s <= prof.soft_limit_s:')],
    'validate: hard limit 0 allowed': [
        (V, '_num(p, f"{key}.hard_limit_s", prof.hard_limit_s, lo=0, lo_open=True)',
         '_num(p, f"{key}.hard_limit_s", prof.hard_limit_s, lo=0)')],
    'validate: max_open_positions 0 allowed': [(V, 'if r.max_open_positions < 1:', 'if r.max_open_positions < 0:')],
    'validate: daily loss limit 0 allowed': [
        (V, '"risk.daily_loss_limit_usd", r.daily_loss_limit_usd, lo=0, lo_open=True)',
         '"risk.daily_loss_limit_usd", r.daily_loss_limit_usd, lo=0)')],
    'validate: min_fill_usd 0 refused': [
        (V, '_num(p, "risk.min_fill_usd", r.min_fill_usd, lo=0)', '_num(p, "risk.min_fill_usd", r.min_fill_usd, lo=0, lo_open=True)')],
    'validate: floor multiplier unbounded below': [
        (V, '_num(p, "costs.floor_multiplier", cfg.costs.floor_multiplier, lo=0)',
         '_num(p, "costs.floor_multiplier", cfg.costs.floor_multiplier)')],
    'validate: max notional 0 allowed': [
        (V, '"risk.max_notional_usd", r.max_notional_usd, lo=0, lo_open=True)', '"risk.max_notional_usd", r.max_notional_usd, lo=0)')],
    'validate: maker fee unchecked': [(V, 'for fee in ("taker_fee_bps", "maker_fee_bps"):', 'for fee in ("taker_fee_bps",):')],
    'validate: exactly MAX_TICKS refused': [(V, 'if ticks > MAX_TICKS:', 'if ticks >= MAX_TICKS:')],
    'validate: 51 book levels allowed': [(V, '    if not 1 <= m.book_levels <= 50:', '    if not 1 <= m.book_levels <= 51:')],
    'validate: a boolean threshold accepted': [
        (V, 'if not isinstance(rule.value, (int, float)) or isinstance(rule.value, bool):',
         'if not isinstance(rule.value, (int, float)):')],
    'validate: a duration of exactly one tick refused': [
        (V, 'if not p and st.duration_s < st.tick_s:', 'if not p and st.duration_s <= st.tick_s:')],
    'validate: top_n 0 allowed': [(V, 'if cfg.universe.top_n < 1 or', 'if cfg.universe.top_n < 0 or')],
    'validate: min_loss_bps unchecked': [(V, '        _num(p, f"{key}.min_loss_bps", prof.min_loss_bps, lo=0)\n', '')],
    'validate: lo_bps may be negative': [(V, '_num(p, f"{zk}.lo_bps", z.lo_bps, lo=0)', '_num(p, f"{zk}.lo_bps", z.lo_bps)')],
}
# Every rule the reference and the kernel spell twice is also mutated in the kernel alone:
# the oracle must catch a kernel bug by itself, not only when the reference shares it.
for _name, _edits in list(M.items()):
    _kernel = [e for e in _edits if e[0] == KN]
    if _kernel and len(_kernel) < len(_edits):
        M[f"KERNEL ONLY: {_name}"] = _kernel

ORACLE = ["tests/test_oracle.py", "tests/test_engine_units.py", "tests/test_mutants_engine.py"]
GATES = ["tests/test_gates_boundaries.py", "tests/test_acceptance.py", "tests/test_mutants_gates.py"]
COMPARE = ["tests/compare/test_diff.py", "tests/provenance", "tests/test_mutants_compare.py"]
VALIDATE = ["tests/config/test_validate.py", "tests/test_mutants_config.py"]
STATS = ["tests/test_kpis_trader.py", "-k", "not cli and not profitability"]
# the kernel's own arithmetic (Python's round() and repr() of floats): unit-tested, not by the oracle
RECORD_UNITS = ["tests/test_engine_records.py::test_round_half_is_pythons_round_without_negative_zero"]
KERNEL_UNITS = ["tests/test_kernel.py::test_py_round_on_ties_and_boundaries",
                "tests/test_kernel.py::test_compiled_float_text_covers_the_trade_values"]


def tests_for(edits: list[tuple[str, str, str]]) -> list[str]:
    """The suites that own the edited files' rules (test files not yet written are left out)."""
    paths = [p for p, _, _ in edits]
    if any(p.startswith(("src/acceptance", "conf/")) for p in paths):
        chosen = GATES
    elif S in paths:
        chosen = STATS
    elif any(p.startswith(("src/compare", "src/provenance")) for p in paths):
        chosen = COMPARE
    elif V in paths:
        chosen = VALIDATE
    else:
        chosen = ORACLE
    return [a for a in chosen if not a.startswith("tests/") or Path(a.split("::")[0]).exists()]


def run(name: str, edits: list[tuple[str, str, str]]) -> list[str]:
    """Apply the edits, run the relevant tests, restore; the names of the failing tests."""
    originals: dict[str, str] = {}
    try:
        for path, old, new in edits:
            p = Path(path)
            originals.setdefault(path, p.read_text())
            text = p.read_text()
            assert text.count(old) == 1, f"{name}: {path}: {old!r} found {text.count(old)} times"
            p.write_text(text.replace(old, new))
        for cache in [*Path("src").rglob("__pycache__"), *Path("tests").rglob("__pycache__")]:
            shutil.rmtree(cache, ignore_errors=True)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
                               *tests_for(edits),
                               *(KERNEL_UNITS if any(p in (KN, KR) for p, _, _ in edits) else []),
                               *(RECORD_UNITS if any(p == "src/engine/records.py" for p, _, _ in edits) else [])],
                              capture_output=True, text=True, env=env)
        return sorted({line.split(" ")[1].split("[")[0].split("::")[-1] for line in proc.stdout.splitlines()
                       if line.startswith(("FAILED", "ERROR"))})
    finally:
        for path, text in originals.items():
            Path(path).write_text(text)


def main(words: list[str]) -> int:
    missed = 0
    for name, edits in M.items():
        if words and not any(w in name for w in words):
            continue
        failed = run(name, edits)
        missed += not failed
        print(f"{'CAUGHT' if failed else 'MISSED'}  {name}: {', '.join(failed)}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
