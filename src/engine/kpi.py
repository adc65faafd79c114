"""KPIs of a session, from its round trips and counters. No volatile fact goes in here."""
from __future__ import annotations

from typing import Any, Callable

from src.engine.records import EXIT_REASONS, SessionResult, seq_sum
from src.engine.records import round_half as _r  # short: the KPI table below rounds every value
from src.engine.stats import VenueFee, trader_kpis
from src.engine.zones import Applied


def summarize(res: SessionResult, applied: tuple[Applied, ...], zone_evidence: dict[str, Any],
              duration_s: float, tick_s: float, *, start_t_s: float = 0.0,
              venues: tuple[VenueFee, VenueFee] | None = None) -> dict[str, Any]:
    """KPI summary: counts, PnL (KRW, and USD at the reported FX), costs, risk, per symbol, and
    the trader KPIs of src/engine/stats.py (start_t_s: the first tick's time; venues: the USDT
    and KRW venues' names and taker fees, for costs_by_venue, null without them)."""
    col = _columns(res.trades)
    pnl = col("pnl_krw")
    pnl_krw = seq_sum(pnl)
    fx = res.last_fx
    wins = sum(1 for x in pnl if x > 0)
    exits = {k: 0 for k in EXIT_REASONS}
    for r in col("exit_reason"):
        exits[r] += 1
    equity = peak = max_dd = 0.0
    for x in pnl:
        equity += x
        peak = max(peak, equity)
        max_dd = max(max_dd, peak - equity)
    by_symbol: dict[str, list[float]] = {ap.symbol: [] for ap in applied}
    for sym, x in zip(col("symbol"), pnl):
        mine = by_symbol.get(sym)
        if mine is not None:
            mine.append(x)
    per_symbol: dict[str, dict[str, Any]] = {}
    for ap in applied:
        mine = by_symbol[ap.symbol]
        per_symbol[ap.symbol] = {
            "profile": ap.profile_name,
            "round_trips": len(mine),
            "wins": sum(1 for x in mine if x > 0),
            "pnl_krw": _r(seq_sum(mine), 2),
        }
    kinds = col("time_limit_kind")
    n = len(pnl)
    out = {
        "round_trips": n,
        "wins": wins,
        "losses": n - wins,
        "win_rate": _r(wins / n, 6) if n else 0.0,
        "exit_reasons": exits,
        "time_limit_kinds": {
            "soft": sum(1 for k in kinds if k == "soft"),
            "hard": sum(1 for k in kinds if k == "hard"),
        },
        "total_pnl_krw": _r(pnl_krw, 2),
        "total_pnl_usd": _r(pnl_krw / fx, 6) if n else 0.0,
        "fx_rate": _r(fx, 6) if res.ticks and fx == fx else None,  # None: no tick (with a valid FX) ran
        "fees_krw": _r(seq_sum(col("fees_krw")), 2),
        "slippage_krw": _r(seq_sum(col("slippage_krw")), 2),
        "max_drawdown_krw": _r(max_dd, 2),
        "avg_hold_s": _r(seq_sum(col("hold_s")) / n, 6) if n else 0.0,
        "entry_signals": res.entry_signals,
        "entries": n + len(res.open_positions),
        "rejections": dict(res.rejections),
        "market_data_updates": res.market_updates,
        "ticks": res.ticks,
        "simulated_s": _r(res.ticks * tick_s, 6),
        "planned_duration_s": duration_s,
        "open_positions_at_end": len(res.open_positions),
        "unrealized_pnl_krw": _r(res.unrealized_pnl_krw, 2),
        "per_symbol": per_symbol,
        "zone_profile_digest": zone_evidence["sha256"],
        "zone_profiles_loaded": zone_evidence,
    }
    out.update(trader_kpis(col, res, applied, tick_s, start_t_s=start_t_s, net_krw=out["total_pnl_krw"],
                           fees_krw=out["fees_krw"], venues=venues))
    return out


def _columns(trades: Any) -> Callable[[str], list[Any]]:
    """Field `name` of every trade, in order: from the kernel's records or the reference's dicts."""
    if hasattr(trades, "column"):
        return trades.column
    return lambda name: [t[name] for t in trades]
