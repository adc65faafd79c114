"""The reference engine: a plain event loop over ticks and symbols, in simulated time.

Per tick, symbols are visited in universe rank order. A symbol with an open position is
checked for an exit (and may not re-enter in the same tick); one without is checked for
an entry. Everything is deterministic: no wall clock, no hashing order, seeded market.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from src.config.schema import RiskConfig, RootConfig
from src.engine.exits import exit_reason
from src.engine.fills import Quote, entry_spread_bps, exit_spread_bps, fill_legs, settle
from src.engine.records import (BELOW_ZONES, BUY_KRW_SELL_USDT, DIRECTIONS, OUTSIDE_ZONE, SELL_KRW_BUY_USDT, Position,
                                SessionResult, round_half, seq_sum)
from src.engine.zones import Applied, apply_profiles, find_zone
from src.market.book import depth
from src.market.tape import Market, MarketChunk

CHUNK_TICKS = 3600
SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class EngineParams:
    applied: tuple[Applied, ...]  # one per market symbol, same order
    usdt_fee_bps: float
    krw_fee_bps: float
    floor_multiplier: float
    risk: RiskConfig

    @classmethod
    def from_config(cls, cfg: RootConfig) -> EngineParams:
        """Profiles per universe symbol (by the stage's mode), taker fees, cost floor, risk."""
        symbols = tuple(s.symbol for s in cfg.universe_specs)
        return cls(tuple(apply_profiles(cfg.zone_profile, symbols, cfg.stage.mode)),
                   cfg.costs.usdt_venue.taker_fee_bps, cfg.costs.krw_venue.taker_fee_bps,
                   cfg.costs.floor_multiplier, cfg.risk)

    @property
    def round_trip_fee_bps(self) -> float:
        return 2.0 * (self.usdt_fee_bps + self.krw_fee_bps)


def run_session(market: Market, params: EngineParams, on_trade: Callable[[dict], None],
                should_stop: Callable[[], bool] = lambda: False) -> SessionResult:
    """Run the whole session; each closed round trip goes to `on_trade` as it happens."""
    res = SessionResult()
    book, symbols = market.book, market.symbols
    open_: dict[int, Position] = {}
    day_pnl_usd: dict[int, float] = {}
    last_valid: list[Quote | None] = [None] * len(symbols)  # per symbol, for the closing mark to market
    for chunk in market.chunks(CHUNK_TICKS):
        valid = valid_quotes(chunk)
        for i in range(chunk.n):
            if should_stop():
                res.interrupted = True
                break
            t, fx = float(chunk.t_s[i]), float(chunk.fx[i])
            day = int(t // SECONDS_PER_DAY)
            quotes = [Quote(float(chunk.usdt_bid[i, s]), float(chunk.usdt_ask[i, s]),
                            float(chunk.krw_bid[i, s]), float(chunk.krw_ask[i, s]),
                            float(chunk.usdt_size[i, s]), float(chunk.krw_size[i, s]), fx)
                      for s in range(len(symbols))]
            for s, q in enumerate(quotes):
                if not valid[i, s]:
                    continue  # no valid quote (live venue down or stale): nothing is decided on it
                last_valid[s] = q
                ap = params.applied[s]
                pos = open_.get(s)
                if pos is not None:
                    reason = exit_reason(pos, q, t, ap.profile, params.round_trip_fee_bps)
                    if reason is not None:
                        trade = close_position(pos, q, t, reason, params, book, symbols[s], ap.profile_name)
                        del open_[s]
                        day_pnl_usd[day] = day_pnl_usd.get(day, 0.0) + trade["pnl_usd"]
                        res.trades.append(trade)
                        on_trade(trade)
                    continue
                killed = day_pnl_usd.get(day, 0.0) <= -params.risk.daily_loss_limit_usd
                pos = try_entry(res, q, s, t, ap, params, book, len(open_), killed)
                if pos is not None:
                    open_[s] = pos
            res.ticks += 1
            res.market_updates += int(valid[i].sum())
            if fx == fx:
                res.last_fx = fx
        if res.interrupted:
            break
    res.open_positions = [open_[s] for s in sorted(open_)]
    res.unrealized_pnl_krw = seq_sum(mark_to_market(p, last_valid[p.symbol_idx], params, book)  # type: ignore[arg-type]
                                     for p in res.open_positions)
    return res


def valid_quotes(chunk: MarketChunk) -> np.ndarray:
    """(n, symbols) bool: the symbol has a quote to act on at the tick.

    NaN in any of its prices or sizes, or in the tick's FX, means "no valid quote" (a
    live venue that failed or whose quote is older than its allowed age). Such a symbol
    sits the tick out: no exit check, no entry check, no signal, not a market update;
    an open position stays open and is marked to market on its last valid quote.
    """
    ok = ~np.isnan(np.asarray(chunk.fx, dtype=np.float64))[:, None]
    for a in (chunk.usdt_bid, chunk.usdt_ask, chunk.krw_bid, chunk.krw_ask, chunk.usdt_size, chunk.krw_size):
        ok = ok & ~np.isnan(np.asarray(a, dtype=np.float64))
    return ok


def try_entry(res: SessionResult, q: Quote, s: int, t: float, ap: Applied, params: EngineParams,
              book, n_open: int, killed: bool) -> Position | None:
    """Open a position if the spread clears its zone, the risk limits and the cost floor."""
    up, down = entry_spread_bps(q, +1), entry_spread_bps(q, -1)
    d, spread = (SELL_KRW_BUY_USDT, up) if up >= down else (BUY_KRW_SELL_USDT, down)
    zi = find_zone(ap.profile, spread)
    if zi == BELOW_ZONES:
        return None  # below the zone threshold: not a signal
    res.entry_signals += 1
    reason = None
    if zi == OUTSIDE_ZONE:
        reason = "outside_zones"
    elif killed:
        reason = "kill_switch"
    elif n_open >= params.risk.max_open_positions:
        reason = "max_open_positions"
    if reason is None:
        zone = ap.profile.zones[zi]
        ref_px = q.usdt_ask if d > 0 else q.usdt_bid
        target = params.risk.max_notional_usd * zone.size_frac / ref_px
        qty = min(target, depth(q.usdt_size, book), depth(q.krw_size, book))
        if qty <= 0.0 or qty * ref_px < params.risk.min_fill_usd:  # nothing to fill even when min_fill_usd=0
            reason = "insufficient_depth"
        else:
            legs = fill_legs(q, qty, d, True, book)
            slip_bps = (legs.slippage_usdt + legs.slippage_krw / q.fx) / (qty * legs.usdt_px) * 1e4
            floor_bps = params.round_trip_fee_bps + 2.0 * slip_bps  # exit assumed to slip alike
            if spread < params.floor_multiplier * floor_bps:
                reason = "cost_floor"
            else:
                return Position(s, d, zi, t, spread, legs, q.fx, target)
    res.rejections[reason] += 1
    return None


def mark_to_market(pos: Position, q: Quote, params: EngineParams, book) -> float:
    exit_ = fill_legs(q, pos.entry.qty, pos.direction, False, book)
    return settle(pos.entry, exit_, pos.direction, pos.fx_entry, q.fx,
                  params.usdt_fee_bps, params.krw_fee_bps).pnl_krw


def close_position(pos: Position, q: Quote, t: float, reason: str, params: EngineParams, book,
                   symbol: str, profile_name: str) -> dict:
    """Fill the exit legs and describe the round trip as one trades.jsonl record."""
    exit_ = fill_legs(q, pos.entry.qty, pos.direction, False, book)
    rt = settle(pos.entry, exit_, pos.direction, pos.fx_entry, q.fx, params.usdt_fee_bps, params.krw_fee_bps)
    zone = params.applied[pos.symbol_idx].profile.zones[pos.zone_idx]
    kind, time_kind = reason, None
    if reason.startswith("time_limit"):
        kind, time_kind = "time_limit", reason.split(":")[1]
    return {
        "symbol": symbol,
        "direction": DIRECTIONS[pos.direction],
        "profile": profile_name,
        "zone": f"{zone.lo_bps:g}-{zone.hi_bps:g}",
        "entry_t_s": pos.entry_t_s,
        "exit_t_s": t,
        "hold_s": t - pos.entry_t_s,
        "entry_spread_bps": round_half(pos.entry_spread_bps, 4),
        "exit_spread_bps": round(exit_spread_bps(q, pos.direction), 4),
        "qty": round_half(pos.entry.qty, 10),
        "fill_ratio": round_half(pos.entry.qty / pos.target_qty, 6),
        "notional_usd": round_half(pos.entry.qty * pos.entry.usdt_px, 6),
        "entry_usdt_px": round_half(pos.entry.usdt_px, 10),
        "entry_krw_px": round_half(pos.entry.krw_px, 6),
        "exit_usdt_px": round_half(exit_.usdt_px, 10),
        "exit_krw_px": round_half(exit_.krw_px, 6),
        "fx_entry": round_half(pos.fx_entry, 6),
        "fx_exit": round_half(q.fx, 6),
        "fees_krw": round_half(rt.fees_krw, 2),
        "slippage_krw": round_half(rt.slippage_krw, 2),
        "pnl_krw": round_half(rt.pnl_krw, 2),
        "pnl_usd": round_half(rt.pnl_usd, 6),
        "exit_reason": kind,
        "time_limit_kind": time_kind,
    }
