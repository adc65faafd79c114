"""Mutation check of the oracle suites: put one realistic bug in at a time, see which tests catch it.

    python tests/mutate_oracle.py                 # every mutation (a few minutes)
    python tests/mutate_oracle.py "kill switch"   # those whose name contains a word

Engine and market mutations run tests/test_oracle.py; gate and stage mutations run
tests/test_gates_boundaries.py. Each mutation is a list of exact (file, old, new)
edits -- the same bug in both engines where they spell a rule twice ("FAST ONLY":
a bug in the fast engine's own twin of a rule). Files are restored after each run,
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

E, V, L, F, B, Z, G = ("src/engine/exits.py", "src/engine/vectors.py", "src/engine/loop.py", "src/engine/fills.py",
                       "src/market/book.py", "src/engine/zones.py", "src/acceptance/gates.py")
K, FA = "src/engine/kpi.py", "src/engine/fast.py"
M: dict[str, list[tuple[str, str, str]]] = {
    'tp >= -> > (exits+vectors)': [
        (E, 'if captured >= zone.tp_bps', 'if captured > zone.tp_bps'),
        (V, '(captured >= tp_bps)', '(captured > tp_bps)'),
    ],
    'sl >= -> > (exits+vectors)': [
        (E, '-captured >= zone.sl_bps', '-captured > zone.sl_bps'),
        (V, '(-captured >= sl_bps)', '(-captured > sl_bps)'),
    ],
    'hard limit >= -> > (off by one tick)': [
        (E, 'hold >= profile.hard_limit_s', 'hold > profile.hard_limit_s'),
        (V, '(hold >= hard_s)', '(hold > hard_s)'),
    ],
    'soft limit >= -> >': [
        (E, 'hold >= profile.soft_limit_s', 'hold > profile.soft_limit_s'),
        (V, '((hold >= soft_s)', '((hold > soft_s)'),
    ],
    'min loss >= -> >': [
        (E, 'round_trip_fee_bps >= -profile.min_loss_bps', 'round_trip_fee_bps > -profile.min_loss_bps'),
        (V, '(captured - fee_bps >= -min_loss_bps)', '(captured - fee_bps > -min_loss_bps)'),
    ],
    'min loss ignores fees': [
        (E, 'captured - round_trip_fee_bps >= -profile.min_loss_bps', 'captured >= -profile.min_loss_bps'),
        (V, '(captured - fee_bps >= -min_loss_bps)', '(captured >= -min_loss_bps)'),
    ],
    'reversal < 0 -> <= 0': [
        (E, 'pos.direction < 0.0', 'pos.direction <= 0.0'),
        (V, '(mid_premium_bps(col) * d < 0.0)', '(mid_premium_bps(col) * d <= 0.0)'),
    ],
    'reversal checked after TP': [
        (E, '    if mid_premium_bps(q) * pos.direction < 0.0:\n        return "spread_reversal"\n'
            '    if captured >= zone.tp_bps:\n        return "take_profit"\n',
         '    if captured >= zone.tp_bps:\n        return "take_profit"\n'
         '    if mid_premium_bps(q) * pos.direction < 0.0:\n        return "spread_reversal"\n'),
    ],
    'entry FX instead of exit FX (PnL)': [
        (F, '(usdt_gross - usdt_fees) * fx_exit', '(usdt_gross - usdt_fees) * fx_entry'),
    ],
    'entry FX for pnl_usd': [
        (F, 'pnl_usd=pnl_krw / fx_exit', 'pnl_usd=pnl_krw / fx_entry'),
    ],
    'entry FX for entry slippage (the old code)': [
        (F, 'entry.slippage_usdt * fx_exit', 'entry.slippage_usdt * fx_entry'),
    ],
    'kill switch resets hourly': [
        (L, 'SECONDS_PER_DAY = 86400.0', 'SECONDS_PER_DAY = 3600.0'),
    ],
    'kill switch <= -> <': [
        (L, 'killed = day_pnl_usd.get(day, 0.0) <= -params.risk.daily_loss_limit_usd',
         'killed = day_pnl_usd.get(day, 0.0) < -params.risk.daily_loss_limit_usd'),
        (FA, 'self.day_pnl.get(day, 0.0) <= -risk.daily_loss_limit_usd',
         'self.day_pnl.get(day, 0.0) < -risk.daily_loss_limit_usd'),
        (FA, 'ev_pnl[e], 0.0) \\\n            <= -risk', 'ev_pnl[e], 0.0) \\\n            < -risk'),
    ],
    'kill switch never resets (session PnL)': [
        (L, 'killed = day_pnl_usd.get(day, 0.0) <=', 'killed = sum(day_pnl_usd.values()) <='),
    ],
    'fee on three legs (KRW exit leg)': [
        (F, 'krw_fee_bps * 1e-4 * qty * (entry.krw_px + exit_.krw_px)', 'krw_fee_bps * 1e-4 * qty * entry.krw_px'),
    ],
    'fee on three legs (USDT exit leg)': [
        (F, 'usdt_fee_bps * 1e-4 * qty * (entry.usdt_px + exit_.usdt_px)', 'usdt_fee_bps * 1e-4 * qty * entry.usdt_px'),
    ],
    'depth walk skips the last level': [
        (B, '    for i in range(book.levels):\n        take = size',
         '    for i in range(book.levels - 1):\n        take = size'),
        (V, '    for i in range(book.levels):\n        take = np',
         '    for i in range(book.levels - 1):\n        take = np'),
    ],
    'depth walk prices level i at i+1': [
        (B, '(1.0 + side * i * book.step_bps * 1e-4)', '(1.0 + side * (i + 1) * book.step_bps * 1e-4)'),
        (V, '(1.0 + side * i * book.step_bps * 1e-4)', '(1.0 + side * (i + 1) * book.step_bps * 1e-4)'),
    ],
    'no refill beyond the book': [
        (B, 'cost += remaining * top_price * (1.0 + side * book.levels * book.step_bps * 1e-4)',
         'cost += remaining * top_price * (1.0 + side * (book.levels - 1) * book.step_bps * 1e-4)'),
        (V, 'cost += remaining * top * (1.0 + side * book.levels * book.step_bps * 1e-4)',
         'cost += remaining * top * (1.0 + side * (book.levels - 1) * book.step_bps * 1e-4)'),
    ],
    'depth() one level short': [
        (B, '(book.growth**book.levels - 1.0)', '(book.growth**(book.levels - 1) - 1.0)'),
    ],
    'max open >= -> >': [
        (L, 'n_open >= params.risk.max_open_positions', 'n_open > params.risk.max_open_positions'),
        (FA, 'len(self.open) >= risk.max_open_positions', 'len(self.open) > risk.max_open_positions'),
        (FA, '(ev_open[e] >= risk.max_open_positions)', '(ev_open[e] > risk.max_open_positions)'),
    ],
    'min fill < -> <=': [
        (L, 'if qty * ref_px < params.risk.min_fill_usd', 'if qty * ref_px <= params.risk.min_fill_usd'),
        (V, 'shallow = qty * ref_px < params.risk.min_fill_usd', 'shallow = qty * ref_px <= params.risk.min_fill_usd'),
    ],
    'cost floor < -> <=': [
        (L, 'if spread < params.floor_multiplier * floor_bps', 'if spread <= params.floor_multiplier * floor_bps'),
        (V, 'np.where(spread[m] < params.floor_multiplier * floor_bps',
         'np.where(spread[m] <= params.floor_multiplier * floor_bps'),
    ],
    'cost floor counts slippage once': [
        (L, 'params.round_trip_fee_bps + 2.0 * slip_bps', 'params.round_trip_fee_bps + slip_bps'),
        (V, 'params.round_trip_fee_bps + 2.0 * slip_bps', 'params.round_trip_fee_bps + slip_bps'),
    ],
    'round trip fee counts two legs': [
        (L, 'return 2.0 * (self.usdt_fee_bps + self.krw_fee_bps)', 'return self.usdt_fee_bps + self.krw_fee_bps'),
    ],
    'notional ignores size_frac': [
        (L, 'params.risk.max_notional_usd * zone.size_frac / ref_px', 'params.risk.max_notional_usd / ref_px'),
        (V, 'params.risk.max_notional_usd * zone.size_frac', 'params.risk.max_notional_usd'),
    ],
    'zone hi inclusive': [
        (Z, 'if z.lo_bps <= spread_bps < z.hi_bps:', 'if z.lo_bps <= spread_bps <= z.hi_bps:'),
        (V, '& (sp < self.hi[z, si])', '& (sp <= self.hi[z, si])'),
    ],
    'zone lo exclusive': [
        (Z, 'if z.lo_bps <= spread_bps < z.hi_bps:', 'if z.lo_bps < spread_bps < z.hi_bps:'),
        (V, '(self.lo[z, si] <= sp)', '(self.lo[z, si] < sp)'),
    ],
    're-entry in the exit tick': [
        (L, '                        on_trade(trade)\n                    continue\n',
         '                        on_trade(trade)\n'),
    ],
    'kpi usd at the first fx': [
        (K, 'fx = res.last_fx', "fx = res.trades[0]['fx_entry'] if trades else res.last_fx"),
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
        (G, '"time_limit_share": (exits.get("time_limit", 0) / total) if total else 0.0',
         '"time_limit_share": (exits.get("time_limit", 0) / max(total, 1)) if exits.get("take_profit", 0) else 0.0'),
    ],
    'entry spread d=-1 on the KRW bid': [
        (F, '    krw_usd = q.krw_ask / q.fx\n    return (q.usdt_bid - krw_usd)',
         '    krw_usd = q.krw_bid / q.fx\n    return (q.usdt_bid - krw_usd)'),
        (V, 'np.divide(q.krw_ask, q.fx, out=tmp)', 'np.divide(q.krw_bid, q.fx, out=tmp)'),
    ],
    'exit spread d=+1 over the USDT ask': [
        (F, 'return (q.krw_ask / q.fx - q.usdt_bid) / q.usdt_bid * 1e4',
         'return (q.krw_ask / q.fx - q.usdt_ask) / q.usdt_ask * 1e4'),
    ],
    'exit spread d=-1 on the KRW ask': [
        (F, '    krw_usd = q.krw_bid / q.fx\n    return (q.usdt_ask - krw_usd)',
         '    krw_usd = q.krw_ask / q.fx\n    return (q.usdt_ask - krw_usd)'),
    ],
    'mid premium from the KRW bid': [
        (F, '0.5 * (q.krw_bid + q.krw_ask) / q.fx', 'q.krw_bid / q.fx'),
    ],
    'a zero PnL counts as a win': [
        (K, 'wins = sum(1 for t in trades if t["pnl_krw"] > 0)', 'wins = sum(1 for t in trades if t["pnl_krw"] >= 0)'),
    ],
    'drawdown from zero, not the peak': [
        (K, 'max_dd = max(max_dd, peak - equity)', 'max_dd = max(max_dd, -equity)'),
    ],
    'kill switch adds KRW, not USD': [
        (L, 'day_pnl_usd[day] = day_pnl_usd.get(day, 0.0) + trade["pnl_usd"]',
         'day_pnl_usd[day] = day_pnl_usd.get(day, 0.0) + trade["pnl_krw"]'),
        (FA, 'self.day_pnl[day] = self.day_pnl.get(day, 0.0) + trade["pnl_usd"]',
         'self.day_pnl[day] = self.day_pnl.get(day, 0.0) + trade["pnl_krw"]'),
    ],
    'exit legs filled as an entry': [
        (L, '    exit_ = fill_legs(q, pos.entry.qty, pos.direction, False, book)\n    rt = settle',
         '    exit_ = fill_legs(q, pos.entry.qty, pos.direction, True, book)\n    rt = settle'),
    ],
    'mark to market at the entry FX': [
        (L, '    return settle(pos.entry, exit_, pos.direction, pos.fx_entry, q.fx,',
         '    return settle(pos.entry, exit_, pos.direction, pos.fx_entry, pos.fx_entry,'),
    ],
    'time_limit share without reversals': [
        (G, 'total = sum(exits.get(k, 0) for k in EXIT_REASONS)',
         'total = sum(exits.get(k, 0) for k in EXIT_REASONS if k != "spread_reversal")'),
    ],
    'hold measured from the previous tick': [
        (E, 'hold = t - pos.entry_t_s', 'hold = t - pos.entry_t_s + 30.0'),
    ],
    'FAST ONLY: _blocked kill switch <': [
        (FA, 'self.day_pnl.get(day, 0.0) <= -risk.daily_loss_limit_usd',
         'self.day_pnl.get(day, 0.0) < -risk.daily_loss_limit_usd'),
    ],
    'FAST ONLY: counted kill switch <': [
        (FA, 'ev_pnl[e], 0.0) \\\n            <= -risk', 'ev_pnl[e], 0.0) \\\n            < -risk'),
    ],
    'FAST ONLY: days are hours': [
        (FA, 'return [int(x // SECONDS_PER_DAY) for x in t.tolist()]', 'return [int(x // 3600.0) for x in t.tolist()]'),
    ],
    'FAST ONLY: first_exit hard >': [
        (V, '(hold >= hard_s)', '(hold > hard_s)'),
    ],
    'FAST ONLY: first_exit tp >': [
        (V, '(captured >= tp_bps)', '(captured > tp_bps)'),
    ],
    'FAST ONLY: walk skips the last level': [
        (V, '    for i in range(book.levels):\n        take = np',
         '    for i in range(book.levels - 1):\n        take = np'),
    ],
    'FAST ONLY: max open blocks at >': [
        (FA, 'len(self.open) >= risk.max_open_positions', 'len(self.open) > risk.max_open_positions'),
    ],
    'FAST ONLY: count full at >': [
        (FA, '(ev_open[e] >= risk.max_open_positions)', '(ev_open[e] > risk.max_open_positions)'),
    ],
    'FAST ONLY: floor <=': [
        (V, 'np.where(spread[m] < params.floor_multiplier * floor_bps',
         'np.where(spread[m] <= params.floor_multiplier * floor_bps'),
    ],
    'FAST ONLY: min fill <=': [
        (V, 'shallow = qty * ref_px < params.risk.min_fill_usd', 'shallow = qty * ref_px <= params.risk.min_fill_usd'),
    ],
    'FAST ONLY: zone hi inclusive': [
        (V, '& (sp < self.hi[z, si])', '& (sp <= self.hi[z, si])'),
    ],
    'depth() of a flat book one level short': [
        (B, 'return top_size * book.levels', 'return top_size * (book.levels - 1)'),
    ],
    'empty book filled (qty 0 not refused)': [
        (L, 'if qty <= 0.0 or qty * ref_px < params.risk.min_fill_usd:', 'if qty * ref_px < params.risk.min_fill_usd:'),
    ],
}

ORACLE = ["tests/test_oracle.py"]
GATES = ["tests/test_gates_boundaries.py"]


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
                               *(GATES if gates else ORACLE)], capture_output=True, text=True, env=env)
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
