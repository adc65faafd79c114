"""Trader KPIs of a session, computed from its trade records and open positions only.

Engine-agnostic: both engines hand `kpi.summarize` the same records (trades.jsonl's
fields, read through a column accessor) and the same open positions, so both get the
same bytes here. Every float is a left-to-right sum (`seq_sum`), then rounded with `_r`;
money sums that must add up exactly (gross = net + fees, the venues' fees) are done in
integer cents. Conventions (docs/kpis.md):

- gross_pnl_krw = total_pnl_krw + fees_krw: before fees, after slippage (the fills'
  prices walk the book, so slippage is inside them).
- Realized equity at time b = the PnL of the round trips that closed before b
  (exit_t_s < b). It is sampled every simulated hour from the session start
  (b = start + k * 3600, k = 0..whole hours) and at the session end.
- sharpe_hourly / sortino_hourly: of the hourly changes of that equity (KRW) over whole
  hours only (the partial last hour is left out), not annualised. Sharpe = mean / sample
  std (n - 1); Sortino = mean / sqrt(sum(min(r, 0)^2) / n) (target 0). Null with fewer
  than 2 hourly changes, or when the deviation is 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from src.engine.records import SessionResult, seq_sum
from src.engine.records import round_half as _r
from src.engine.zones import Applied

HOUR_S = 3600.0


@dataclass(frozen=True)
class VenueFee:
    """A venue's name (the key in costs_by_venue) and the taker fee the engine charged there."""

    name: str
    taker_fee_bps: float


def venue_fees(costs: Any) -> tuple[VenueFee, VenueFee]:
    """(USDT venue, KRW venue) of a costs config (conf/costs/): their names and taker fees."""
    return (VenueFee(costs.usdt_venue.name, costs.usdt_venue.taker_fee_bps),
            VenueFee(costs.krw_venue.name, costs.krw_venue.taker_fee_bps))


def cents(x: float) -> int:
    """A KPI amount already rounded to 0.01 as whole cents (exact: the nearest integer)."""
    return int(round(x * 100.0))


def trader_kpis(col: Callable[[str], list[Any]], res: SessionResult, applied: Sequence[Applied], tick_s: float,
                *, start_t_s: float, net_krw: float, fees_krw: float,
                venues: tuple[VenueFee, VenueFee] | None) -> dict[str, Any]:
    """The trader KPIs (docs/kpis.md); `net_krw` and `fees_krw` are the summary's rounded totals."""
    pnl = col("pnl_krw")
    n = len(pnl)
    won = [x for x in pnl if x > 0]
    lost = [x for x in pnl if not x > 0]  # the summary's `losses`: every round trip that is not a win
    gross_loss = -seq_sum(x for x in pnl if x < 0)
    span = res.ticks * tick_s
    end_t_s = start_t_s + span
    samples = equity_samples(col("exit_t_s"), pnl, start_t_s, end_t_s)
    sharpe, sortino = hourly_ratios([e for _, e in samples[:whole_hours(span) + 1]])
    return {
        "gross_pnl_krw": (cents(net_krw) + cents(fees_krw)) / 100,
        "costs_by_venue": costs_by_venue(col, fees_krw, venues) if venues is not None else None,
        "avg_win_krw": _r(seq_sum(won) / len(won), 2) if won else None,
        "avg_loss_krw": _r(seq_sum(lost) / len(lost), 2) if lost else None,
        "profit_factor": _r(seq_sum(won) / gross_loss, 6) if gross_loss > 0 else None,
        "expectancy_krw": _r(seq_sum(pnl) / n, 2) if n else None,
        "sharpe_hourly": sharpe,
        "sortino_hourly": sortino,
        "max_drawdown": drawdown(col("exit_t_s"), pnl, start_t_s),
        "exposure_share": exposure_share(col("entry_t_s"), col("exit_t_s"),
                                         [p.entry_t_s for p in res.open_positions], end_t_s, span),
        "turnover_usd": turnover_usd(col, res),
        "per_zone": per_zone(col, pnl, applied),
    }


def costs_by_venue(col: Callable[[str], list[Any]], fees_krw: float,
                   venues: tuple[VenueFee, VenueFee]) -> dict[str, dict[str, Any]]:
    """Fees per venue, from each record's qty, prices and exit FX and the venue's fee bps.

    The USDT venue's fees (converted at each trade's exit FX, as the engine does) are summed
    and rounded to the cent; the KRW venue gets fees_krw minus that, in cents, so the two add
    up to fees_krw exactly (the KRW venue also takes the records' rounding, a few cents at
    most). Slippage per venue is not in the records (a record holds its round trip's total):
    null, see slippage_krw for the total.
    """
    usdt, krw = venues
    qty, fx = col("qty"), col("fx_exit")
    usdt_raw = seq_sum(usdt.taker_fee_bps * 1e-4 * q * (a + b) * f
                       for q, a, b, f in zip(qty, col("entry_usdt_px"), col("exit_usdt_px"), fx))
    usdt_c = cents(usdt_raw)
    out: dict[str, dict[str, Any]] = {}
    for name, c in ((usdt.name, usdt_c), (krw.name, cents(fees_krw) - usdt_c)):
        prev = out.get(name)  # both venues under one name: one entry holding both
        total = c + (cents(prev["fees_krw"]) if prev else 0)
        out[name] = {"fees_krw": total / 100, "slippage_krw": None}
    return out


def equity_samples(exit_t: Sequence[float], pnl: Sequence[float], start_t_s: float,
                   end_t_s: float) -> list[tuple[float, float]]:
    """(t_s, realized equity KRW rounded to 0.01) at start + k hours (k = 0..whole hours) and at the end.

    The equity at b holds the round trips with exit_t_s < b (records are in exit order).
    """
    bounds = [start_t_s + k * HOUR_S for k in range(whole_hours(end_t_s - start_t_s) + 1)]
    if end_t_s > bounds[-1]:
        bounds.append(end_t_s)
    out, acc, i = [], 0.0, 0
    for b in bounds:
        while i < len(pnl) and exit_t[i] < b:
            acc += pnl[i]
            i += 1
        out.append((b, _r(acc, 2)))
    return out


def whole_hours(span_s: float) -> int:
    """Whole simulated hours in a session of `span_s` seconds (3600 ticks of 1 s are one hour)."""
    return int(span_s / HOUR_S + 1e-9)


def hourly_ratios(equity: Sequence[float]) -> tuple[float | None, float | None]:
    """(Sharpe, Sortino) of the changes between hourly equity samples (see the module docstring)."""
    r = [b - a for a, b in zip(equity, equity[1:])]
    n = len(r)
    if n < 2:
        return None, None
    mean = seq_sum(r) / n
    sharpe = None
    if max(r) != min(r):
        var = seq_sum((x - mean) * (x - mean) for x in r) / (n - 1)
        sharpe = _r(mean / math.sqrt(var), 6) if var > 0 else None
    down = seq_sum(min(x, 0.0) * min(x, 0.0) for x in r) / n
    sortino = _r(mean / math.sqrt(down), 6) if down > 0 else None
    return sharpe, sortino


def drawdown(exit_t: Sequence[float], pnl: Sequence[float], start_t_s: float) -> dict[str, Any]:
    """The largest fall of realized equity from a running peak (the summary's max_drawdown_krw).

    start_t_s: the last time equity stood at that peak before the trough (the session start
    for the initial 0); trough_t_s: when the fall was deepest; recovery_t_s: the first close
    after the trough that brought equity back to the peak (null: never). No fall: all null.
    """
    equity = peak = max_dd = 0.0
    curve = []
    peak_t, best = start_t_s, None
    for i, (t, x) in enumerate(zip(exit_t, pnl)):
        equity += x
        curve.append(equity)
        if equity >= peak:
            peak, peak_t = equity, t
        if peak - equity > max_dd:
            max_dd = peak - equity
            best = (peak, peak_t, i)
    if best is None:
        return {"krw": 0.0, "start_t_s": None, "trough_t_s": None, "recovery_t_s": None}
    level, t_start, trough = best
    recovery = next((exit_t[j] for j in range(trough + 1, len(curve)) if curve[j] >= level), None)
    return {"krw": _r(max_dd, 2), "start_t_s": t_start, "trough_t_s": exit_t[trough], "recovery_t_s": recovery}


def exposure_share(entry_t: Sequence[float], exit_t: Sequence[float], open_entry_t: Sequence[float],
                   end_t_s: float, span: float) -> float:
    """Share of the simulated time with at least one open position: the union of every
    round trip's [entry, exit) and every still-open position's [entry, end), over the session."""
    if span <= 0:
        return 0.0
    spans = sorted([*zip(entry_t, exit_t), *((t, end_t_s) for t in open_entry_t)])
    covered, lo, hi = [], None, None
    for a, b in spans:
        if hi is None or a > hi:
            if hi is not None:
                covered.append(hi - lo)
            lo, hi = a, b
        elif b > hi:
            hi = b
    if hi is not None:
        covered.append(hi - lo)
    return _r(seq_sum(covered) / span, 6)


def turnover_usd(col: Callable[[str], list[Any]], res: SessionResult) -> float:
    """USD notional of the USDT-venue legs traded: entry + exit of each round trip, entry of
    each still-open position (the KRW venue trades the same quantities: counting it too
    would about double this)."""
    closed = (q * (a + b) for q, a, b in zip(col("qty"), col("entry_usdt_px"), col("exit_usdt_px")))
    still_open = (p.entry.qty * p.entry.usdt_px for p in res.open_positions)
    return _r(seq_sum([*closed, *still_open]), 2)


def per_zone(col: Callable[[str], list[Any]], pnl: Sequence[float],
             applied: Sequence[Applied]) -> dict[str, dict[str, Any]]:
    """{"<profile>/<lo>-<hi>": round_trips, wins, pnl_krw}, every zone of every applied profile."""
    by_zone: dict[str, list[float]] = {}
    for ap in applied:
        for z in ap.profile.zones:
            by_zone.setdefault(f"{ap.profile_name}/{z.lo_bps:g}-{z.hi_bps:g}", [])
    for prof, zone, x in zip(col("profile"), col("zone"), pnl):
        by_zone.setdefault(f"{prof}/{zone}", []).append(x)
    return {k: {"round_trips": len(v), "wins": sum(1 for x in v if x > 0), "pnl_krw": _r(seq_sum(v), 2)}
            for k, v in sorted(by_zone.items())}
