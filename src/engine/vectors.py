"""Elementwise twins of the reference engine's scalar functions, for the fast engine.

Each twin performs the scalar function's float64 operations in the same order on numpy
arrays; elementwise IEEE arithmetic rounds exactly like Python floats, so every element
equals what the scalar function returns for it. Where the scalar code branches on a
value, the twin either splits by the branch (direction) or keeps the arithmetic
identical on both paths (see `walk`). Scalar functions that do not branch on values
(`exit_spread_bps`, `mid_premium_bps`, `book.depth`) are fed arrays directly;
`entry_spread_bps` is spelt out with out= buffers, operation for operation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.engine.fills import Legs, Quote, exit_spread_bps, mid_premium_bps
from src.engine.loop import EngineParams, valid_quotes
from src.market.book import depth
from src.market.tape import BookShape, MarketChunk

# What try_entry would conclude at a flat slot if no risk limit blocked it; 0: not worked out.
UNKNOWN, DEPTH, FLOOR, ENTER = 0, 2, 3, 4
_FIELDS = ("usdt_bid", "usdt_ask", "krw_bid", "krw_ask", "usdt_size", "krw_size")


@dataclass(frozen=True)
class Tape:
    """A chunk as float64 arrays (the reference converts every value with float())."""

    n: int
    t: np.ndarray
    fx: np.ndarray
    q: Quote  # fields (n, symbols); fx as (n, 1) to broadcast
    valid: np.ndarray | None  # loop.valid_quotes of the chunk; None: every quote is valid

    @classmethod
    def of(cls, ch: MarketChunk) -> "Tape":
        def f(a: np.ndarray) -> np.ndarray:
            return np.asarray(a, dtype=np.float64)
        fx = f(ch.fx)
        q = Quote(*(f(getattr(ch, k)) for k in _FIELDS), fx[:, None])
        # A sum is NaN if any term is (or on inf - inf): only then is the mask worth building.
        maybe_nan = any(np.isnan(a.sum()) for a in (fx, *(getattr(q, k) for k in _FIELDS)))
        return cls(ch.n, f(ch.t_s), fx, q, valid_quotes(ch) if maybe_nan else None)

    def quote(self, i: int, s: int) -> Quote:
        q = self.q
        return Quote(float(q.usdt_bid[i, s]), float(q.usdt_ask[i, s]), float(q.krw_bid[i, s]),
                     float(q.krw_ask[i, s]), float(q.usdt_size[i, s]), float(q.krw_size[i, s]), float(self.fx[i]))

    def slots(self, keys: np.ndarray, n_sym: int) -> Quote:
        """The quotes of the given slots (key = tick * n_sym + symbol), as flat arrays."""
        return Quote(*(getattr(self.q, k).ravel()[keys] for k in _FIELDS), self.fx[keys // n_sym])


class Zones:
    """Every symbol's zone bands, laid out (zone, symbol); nan pads never compare true."""

    def __init__(self, params: EngineParams, n_sym: int) -> None:
        profiles = [ap.profile for ap in params.applied[:n_sym]]
        n_z = max((len(p.zones) for p in profiles), default=1)
        self.lo, self.hi = np.full((n_z, n_sym), np.nan), np.full((n_z, n_sym), np.nan)
        self.notional = np.full((n_sym, n_z), np.nan)  # max_notional_usd * size_frac, as try_entry has it
        for s, p in enumerate(profiles):
            for z, zone in enumerate(p.zones):
                self.lo[z, s], self.hi[z, s] = zone.lo_bps, zone.hi_bps
                self.notional[s, z] = params.risk.max_notional_usd * zone.size_frac
        self._buf_shape: tuple[int, ...] | None = None
        self._buf: list[np.ndarray] = []

    def _buffers(self, shape: tuple[int, ...]) -> list[np.ndarray]:
        if self._buf_shape != shape:
            self._buf_shape = shape
            self._buf = [np.empty(shape) for _ in range(3)] + [np.empty(shape, dtype=bool) for _ in range(2)]
        return self._buf

    def signals(self, tp: Tape) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Slots where try_entry finds a signal (find_zone != -1), in key order, with their
        zone (-2: outside the bands), direction (True: +1) and spread -- try_entry's first lines."""
        q, n_sym = tp.q, self.lo.shape[1]
        up, down, tmp, go_up, low = self._buffers(q.usdt_bid.shape)
        # entry_spread_bps(q, +1) and (q, -1), operation for operation, into reused buffers:
        # fresh multi-MB temporaries per chunk cost more in page faults than the arithmetic.
        np.divide(q.krw_bid, q.fx, out=up)
        np.subtract(up, q.usdt_ask, out=up)
        np.divide(up, q.usdt_ask, out=up)
        np.multiply(up, 1e4, out=up)
        np.divide(q.krw_ask, q.fx, out=tmp)
        np.subtract(q.usdt_bid, tmp, out=down)
        np.divide(down, tmp, out=down)
        np.multiply(down, 1e4, out=down)
        np.greater_equal(up, down, out=go_up)
        np.copyto(down, up, where=go_up)  # spread: up if up >= down else down, as try_entry picks
        spread = down
        np.less(spread, self.lo[0], out=low)
        np.logical_not(low, out=low)
        if tp.valid is not None:
            np.logical_and(low, tp.valid, out=low)  # a slot without a valid quote sits the tick out
        keys = np.flatnonzero(low)
        si = keys % n_sym
        sp = spread.ravel()[keys]
        zi = np.full(keys.size, -2)
        for z in range(self.lo.shape[0] - 1, -1, -1):  # backwards: the first matching zone wins
            zi[(self.lo[z, si] <= sp) & (sp < self.hi[z, si])] = z
        return keys, zi, go_up.ravel()[keys], sp


def walk(top: np.ndarray, size: np.ndarray, qty: np.ndarray, side: int, book: BookShape) -> np.ndarray:
    """`book.walk` elementwise. After the fill completes `take` is 0.0, and adding 0.0 leaves
    `cost` unchanged, so running every level equals the scalar early return."""
    remaining, cost = qty.copy(), np.zeros_like(qty)
    for i in range(book.levels):
        take = np.where(size < remaining, size, remaining)
        cost += take * top * (1.0 + side * i * book.step_bps * 1e-4)
        remaining -= take
        size = size * book.growth
    cost += remaining * top * (1.0 + side * book.levels * book.step_bps * 1e-4)
    return cost / qty


def open_legs(q: Quote, qty: np.ndarray, d: int, book: BookShape) -> Legs:
    """`fills.fill_legs(q, qty, d, opening=True, book)` elementwise, for one direction d."""
    usdt_side, krw_side = d, -d
    usdt_top = q.usdt_ask if usdt_side > 0 else q.usdt_bid
    krw_top = q.krw_ask if krw_side > 0 else q.krw_bid
    usdt_px = walk(usdt_top, q.usdt_size, qty, usdt_side, book)
    krw_px = walk(krw_top, q.krw_size, qty, krw_side, book)
    return Legs(qty, usdt_px, krw_px, qty * (usdt_px - usdt_top) * usdt_side, qty * (krw_px - krw_top) * krw_side)


def entry_class(c: Quote, s: np.ndarray, zi: np.ndarray, go_up: np.ndarray, spread: np.ndarray, zones: Zones,
                params: EngineParams, book: BookShape) -> np.ndarray:
    """try_entry's depth and cost-floor verdicts (DEPTH, FLOOR, ENTER) for slots inside a zone."""
    out = np.full(s.size, UNKNOWN, dtype=np.int8)
    for d in (1, -1):
        m = np.flatnonzero(go_up if d > 0 else ~go_up)
        cd = Quote(*(getattr(c, k)[m] for k in _FIELDS), c.fx[m])
        ref_px = cd.usdt_ask if d > 0 else cd.usdt_bid
        target = zones.notional[s[m], zi[m]] / ref_px
        qty = np.minimum(np.minimum(target, depth(cd.usdt_size, book)), depth(cd.krw_size, book))
        shallow = (qty <= 0.0) | (qty * ref_px < params.risk.min_fill_usd)
        legs = open_legs(cd, qty, d, book)
        slip_bps = (legs.slippage_usdt + legs.slippage_krw / cd.fx) / (qty * legs.usdt_px) * 1e4
        floor_bps = params.round_trip_fee_bps + 2.0 * slip_bps
        out[m] = np.where(shallow, DEPTH, np.where(spread[m] < params.floor_multiplier * floor_bps, FLOOR, ENTER))
    return out


def first_exit(tp: Tape, s: int, a: int, b: int, entry_spread: float, entry_t: float, d: int, sl_bps: float,
               tp_bps: float, hard_s: float, soft_s: float, fee_bps: float, min_loss_bps: float) -> int:
    """Index of the first tick in [a, b) where `exits.exit_reason` returns a reason, or -1."""
    q = tp.q
    col = Quote(q.usdt_bid[a:b, s], q.usdt_ask[a:b, s], q.krw_bid[a:b, s], q.krw_ask[a:b, s],
                None, None, tp.fx[a:b])  # type: ignore[arg-type]
    captured = entry_spread - exit_spread_bps(col, d)
    hold = tp.t[a:b] - entry_t
    hit = ((-captured >= sl_bps) | (mid_premium_bps(col) * d < 0.0) | (captured >= tp_bps) | (hold >= hard_s)
           | ((hold >= soft_s) & (captured - fee_bps >= -min_loss_bps)))
    if tp.valid is not None:
        hit &= tp.valid[a:b, s]  # no exit check without a valid quote
    j = int(hit.argmax())
    return a + j if hit[j] else -1
