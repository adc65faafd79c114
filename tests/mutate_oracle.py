"""Mutation check of the oracle suites: put one realistic bug in at a time, see which tests catch it.

    python tests/mutate_oracle.py                 # every mutation (a few minutes)
    python tests/mutate_oracle.py "kill switch"   # those whose name contains a word

Engine and market mutations run tests/test_oracle.py (kernel mutations also the kernel's
round()/repr() unit tests); gate and stage mutations run tests/test_gates_boundaries.py;
trader-KPI mutations (STATS) run tests/test_kpis_trader.py without its CLI runs.
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
}
# Every rule the reference and the kernel spell twice is also mutated in the kernel alone:
# the oracle must catch a kernel bug by itself, not only when the reference shares it.
for _name, _edits in list(M.items()):
    _kernel = [e for e in _edits if e[0] == KN]
    if _kernel and len(_kernel) < len(_edits):
        M[f"KERNEL ONLY: {_name}"] = _kernel

ORACLE = ["tests/test_oracle.py"]
GATES = ["tests/test_gates_boundaries.py"]
STATS = ["tests/test_kpis_trader.py", "-k", "not cli and not profitability"]
# the kernel's own arithmetic (Python's round() and repr() of floats): unit-tested, not by the oracle
KERNEL_UNITS = ["tests/test_kernel.py::test_py_round_on_ties_and_boundaries",
                "tests/test_kernel.py::test_compiled_float_text_covers_the_trade_values"]


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
        gates = any(p.startswith(("src/acceptance", "conf/")) for p, _, _ in edits)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
                               *(GATES if gates else STATS if any(p == S for p, _, _ in edits) else ORACLE),
                               *(KERNEL_UNITS if any(p in (KN, KR) for p, _, _ in edits) else [])],
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
