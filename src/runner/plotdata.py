"""Plot data of a run (deterministic CSV): equity curve, exit-reason mix, one symbol's spread.

equity.csv holds the realized equity sampled per simulated hour (src/engine/stats.py, the
samples sharpe_hourly uses); equity_trades.csv steps at every round trip's close.

The spread series is taken from the chunks the engine consumed (a tap on the market),
so it works for any market kind and costs no second pass over the data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from src.engine.records import EXIT_REASONS
from src.engine.stats import equity_samples
from src.market.tape import Market, MarketChunk
from src.runs.atomic import write_text_atomic


class SpreadTap:
    """Wraps a Market; records the mid premium (bps) of one symbol for every tick consumed."""

    def __init__(self, market: Market, symbol: str) -> None:
        self._market = market
        self.symbol = symbol
        self._idx = market.symbols.index(symbol)
        self.t_s: list[np.ndarray] = []
        self.premium_bps: list[np.ndarray] = []

    @property
    def first_t_s(self) -> float:
        """Time of the session's first tick (0.0 before any): where its simulated hours start."""
        return float(self.t_s[0][0]) if self.t_s and self.t_s[0].size else 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._market, name)

    def chunks(self, chunk_ticks: int) -> Iterator[MarketChunk]:
        s = self._idx
        for c in self._market.chunks(chunk_ticks):
            usdt_mid = 0.5 * (c.usdt_bid[:, s] + c.usdt_ask[:, s])
            krw_usd = 0.5 * (c.krw_bid[:, s] + c.krw_ask[:, s]) / c.fx
            self.t_s.append(np.asarray(c.t_s, dtype=np.float64))
            self.premium_bps.append((krw_usd - usdt_mid) / usdt_mid * 1e4)
            yield c


def _fmt(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") if x == x else ""


def write_plot_data(plots_dir: Path, trades: list[dict], tap: SpreadTap, simulated_s: float = 0.0) -> dict[str, str]:
    """Write the CSVs; returns {name: path relative to the run folder}. simulated_s: ticks x tick_s."""
    plots_dir.mkdir(exist_ok=True)
    start = tap.first_t_s
    hourly = equity_samples([t["exit_t_s"] for t in trades], [t["pnl_krw"] for t in trades], start, start + simulated_s)
    write_text_atomic(plots_dir / "equity.csv", "t_s,equity_krw\n" + "".join(f"{_fmt(t)},{_fmt(e)}\n" for t, e in hourly))
    equity = ["t_s,equity_krw,trade", "0,0,0"]
    total = 0.0
    for i, t in enumerate(sorted(trades, key=lambda t: (t["exit_t_s"], t["symbol"]))):
        total += t["pnl_krw"]
        equity.append(f"{_fmt(t['exit_t_s'])},{_fmt(round(total, 2) + 0.0)},{i + 1}")
    write_text_atomic(plots_dir / "equity_trades.csv", "\n".join(equity) + "\n")

    counts = {k: 0 for k in EXIT_REASONS}
    for t in trades:
        counts[t["exit_reason"]] += 1
    mix = ["exit_reason,count"] + [f"{k},{counts[k]}" for k in EXIT_REASONS]
    write_text_atomic(plots_dir / "exit_reasons.csv", "\n".join(mix) + "\n")

    ts = np.concatenate(tap.t_s) if tap.t_s else np.empty(0)
    prem = np.concatenate(tap.premium_bps) if tap.premium_bps else np.empty(0)
    rows = ["t_s,premium_bps,symbol"] + [f"{_fmt(a)},{_fmt(b)},{tap.symbol}" for a, b in zip(ts.tolist(), prem.tolist())]
    write_text_atomic(plots_dir / "spread.csv", "\n".join(rows) + "\n")

    at = {float(a): float(b) for a, b in zip(ts.tolist(), prem.tolist())}
    marks = ["t_s,premium_bps,mark"]
    for t in trades:
        if t["symbol"] != tap.symbol:
            continue
        marks.append(f"{_fmt(t['entry_t_s'])},{_fmt(at.get(t['entry_t_s'], float('nan')))},entry")
        marks.append(f"{_fmt(t['exit_t_s'])},{_fmt(at.get(t['exit_t_s'], float('nan')))},exit:{t['exit_reason']}")
    write_text_atomic(plots_dir / "marks.csv", "\n".join(marks) + "\n")
    return {n: f"plots/{n}.csv" for n in ("equity", "equity_trades", "exit_reasons", "spread", "marks")}
