"""Spreads, fills and the PnL of a round trip across the USDT and KRW venues.

Direction +1: the KRW venue is rich, so enter by selling on KRW and buying on USDT, and
exit by buying back on KRW and selling on USDT. Direction -1 is the mirror image.
A spread is in bps of the USDT-side price, after converting KRW at the tick's FX;
positive means the position's premium is still there to capture.
"""
from __future__ import annotations

from dataclasses import dataclass

from src.engine.records import Legs
from src.market.book import walk
from src.market.tape import BookShape


@dataclass(frozen=True)
class Quote:
    """One symbol at one tick: top of both books (see MarketChunk for units)."""

    usdt_bid: float
    usdt_ask: float
    krw_bid: float
    krw_ask: float
    usdt_size: float
    krw_size: float
    fx: float


def entry_spread_bps(q: Quote, d: int) -> float:
    if d > 0:
        return (q.krw_bid / q.fx - q.usdt_ask) / q.usdt_ask * 1e4
    krw_usd = q.krw_ask / q.fx
    return (q.usdt_bid - krw_usd) / krw_usd * 1e4


def exit_spread_bps(q: Quote, d: int) -> float:
    """The premium still open if the position were closed at the top of book now."""
    if d > 0:
        return (q.krw_ask / q.fx - q.usdt_bid) / q.usdt_bid * 1e4
    krw_usd = q.krw_bid / q.fx
    return (q.usdt_ask - krw_usd) / krw_usd * 1e4


def mid_premium_bps(q: Quote) -> float:
    usdt_mid = 0.5 * (q.usdt_bid + q.usdt_ask)
    return (0.5 * (q.krw_bid + q.krw_ask) / q.fx - usdt_mid) / usdt_mid * 1e4


def fill_legs(q: Quote, qty: float, d: int, opening: bool, book: BookShape) -> Legs:
    """Take `qty` on both venues. Opening d=+1 buys USDT-side and sells KRW-side."""
    usdt_side = d if opening else -d  # +1 buy on asks, -1 sell on bids
    krw_side = -usdt_side
    usdt_top, usdt_size = (q.usdt_ask if usdt_side > 0 else q.usdt_bid), q.usdt_size
    krw_top, krw_size = (q.krw_ask if krw_side > 0 else q.krw_bid), q.krw_size
    usdt_px = walk(usdt_top, usdt_size, qty, usdt_side, book)
    krw_px = walk(krw_top, krw_size, qty, krw_side, book)
    return Legs(
        qty=qty,
        usdt_px=usdt_px,
        krw_px=krw_px,
        slippage_usdt=qty * (usdt_px - usdt_top) * usdt_side,
        slippage_krw=qty * (krw_px - krw_top) * krw_side,
    )


@dataclass(frozen=True)
class RoundTrip:
    """Money of a closed round trip. PnL already contains slippage and fees."""

    fees_krw: float
    slippage_krw: float
    pnl_krw: float
    pnl_usd: float


def settle(entry: Legs, exit_: Legs, d: int, fx_entry: float, fx_exit: float,
           usdt_fee_bps: float, krw_fee_bps: float) -> RoundTrip:
    """PnL in KRW at the exit FX; USD = KRW / exit FX. Fees are taker fees on all four legs.

    Every USDT amount of the round trip (both legs' prices, fees and slippage) converts at
    the exit FX, so PnL = gross at top of book - fees - slippage holds in KRW. `fx_entry`
    is the position's record (trades.jsonl) and does not enter the money.
    """
    qty = entry.qty
    krw_gross = d * qty * (entry.krw_px - exit_.krw_px)
    usdt_gross = d * qty * (exit_.usdt_px - entry.usdt_px)
    krw_fees = krw_fee_bps * 1e-4 * qty * (entry.krw_px + exit_.krw_px)
    usdt_fees = usdt_fee_bps * 1e-4 * qty * (entry.usdt_px + exit_.usdt_px)
    pnl_krw = krw_gross - krw_fees + (usdt_gross - usdt_fees) * fx_exit
    return RoundTrip(
        fees_krw=krw_fees + usdt_fees * fx_exit,
        slippage_krw=entry.slippage_krw + exit_.slippage_krw
        + entry.slippage_usdt * fx_exit + exit_.slippage_usdt * fx_exit,  # (same float ops as at one FX)
        pnl_krw=pnl_krw,
        pnl_usd=pnl_krw / fx_exit,
    )
