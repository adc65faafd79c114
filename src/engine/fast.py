"""The fast engine: the reference loop's strategy, vectorised over ticks and symbols per chunk.

A slot is one (tick, symbol) visit of the reference loop; its key, tick * n_symbols +
symbol, is the reference's visiting order. Per chunk, numpy works out for every slot what
does not depend on open positions: entry spread, direction, zone, and what depth and the
cost floor would say ("class"). The path-dependent rest -- which symbols hold a position,
max_open_positions across symbols, the daily kill switch -- is an event loop over the few
slots where that state changes: entries (class-4 slots of flat symbols while no limit
blocks) and exits (found by scanning one symbol's column from its entry). Signals and
rejections of all other slots are then counted in bulk against that state timeline.

Why it equals `loop.run_session` (tests/test_engine_equivalence.py checks it):
- vectorised formulas are the scalar ones (often the very same functions, fed arrays)
  with the same float64 operations in the same order, and elementwise IEEE arithmetic
  rounds exactly as Python floats do;
- every value that reaches a trade, a Position or the kill switch comes from the
  reference's own scalar functions (try_entry, exit_reason, close_position,
  mark_to_market) at the slot the event loop found; the vectorised class and exit scan
  only say where to look, and an assert fails if the scalar code disagrees;
- `should_stop` is called once before each tick and `on_trade` at the same points as in
  the reference, so interruptions cut the session at the same slot.
Memory stays flat: one market chunk and its per-slot temporaries at a time.
"""
from __future__ import annotations

import heapq
from bisect import bisect_right
from dataclasses import dataclass
from typing import Callable

import numpy as np

from src.engine.exits import exit_reason
from src.engine.fills import Legs, Quote, entry_spread_bps, exit_spread_bps, mid_premium_bps
from src.engine.loop import (CHUNK_TICKS, SECONDS_PER_DAY, EngineParams, Position, SessionResult,
                             close_position, mark_to_market, try_entry)
from src.market.book import depth
from src.market.tape import BookShape, Market, MarketChunk

# What the reference's try_entry would conclude at a flat slot if no risk limit blocked it.
_OUTSIDE, _DEPTH, _FLOOR, _ENTER = 1, 2, 3, 4
_FIRST_SCAN = 32  # ticks in a position's first exit scan; doubles until an exit or the chunk end
_NEVER = 1 << 62  # a key past every chunk


@dataclass(frozen=True)
class _Tape:
    """A chunk as float64 arrays (the reference converts every value with float())."""

    n: int
    t: np.ndarray
    fx: np.ndarray
    q: Quote  # fields (n, symbols); fx as (n, 1) to broadcast

    @classmethod
    def of(cls, ch: MarketChunk) -> "_Tape":
        f = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
        fx = f(ch.fx)
        return cls(ch.n, f(ch.t_s), fx, Quote(f(ch.usdt_bid), f(ch.usdt_ask), f(ch.krw_bid), f(ch.krw_ask),
                                              f(ch.usdt_size), f(ch.krw_size), fx[:, None]))

    def quote(self, i: int, s: int) -> Quote:
        q = self.q
        return Quote(float(q.usdt_bid[i, s]), float(q.usdt_ask[i, s]), float(q.krw_bid[i, s]),
                     float(q.krw_ask[i, s]), float(q.usdt_size[i, s]), float(q.krw_size[i, s]), float(self.fx[i]))


def _walk(top: np.ndarray, size: np.ndarray, qty: np.ndarray, side: int, book: BookShape) -> np.ndarray:
    """`book.walk` elementwise. Once filled, `take` is 0 and adding 0.0 leaves `cost` exact."""
    remaining, cost = qty.copy(), np.zeros_like(qty)
    for i in range(book.levels):
        take = np.where(size < remaining, size, remaining)
        cost += take * top * (1.0 + side * i * book.step_bps * 1e-4)
        remaining -= take
        size = size * book.growth
    cost += remaining * top * (1.0 + side * book.levels * book.step_bps * 1e-4)
    return cost / qty


def _open_legs(q: Quote, qty: np.ndarray, d: int, book: BookShape) -> Legs:
    """`fills.fill_legs(q, qty, d, opening=True, book)` elementwise, for one direction d."""
    usdt_side, krw_side = d, -d
    usdt_top = q.usdt_ask if usdt_side > 0 else q.usdt_bid
    krw_top = q.krw_ask if krw_side > 0 else q.krw_bid
    usdt_px = _walk(usdt_top, q.usdt_size, qty, usdt_side, book)
    krw_px = _walk(krw_top, q.krw_size, qty, krw_side, book)
    return Legs(qty, usdt_px, krw_px, qty * (usdt_px - usdt_top) * usdt_side, qty * (krw_px - krw_top) * krw_side)


class _Plan:
    """Per-session constants laid out per symbol; nan pads never compare true."""

    def __init__(self, params: EngineParams, n_sym: int) -> None:
        profiles = [ap.profile for ap in params.applied[:n_sym]]
        n_z = max((len(p.zones) for p in profiles), default=1)
        self.zone_lo, self.zone_hi = np.full((n_z, n_sym), np.nan), np.full((n_z, n_sym), np.nan)
        self.notional = np.full((n_sym, n_z), np.nan)  # max_notional_usd * size_frac, as try_entry has it
        for s, p in enumerate(profiles):
            for z, zone in enumerate(p.zones):
                self.zone_lo[z, s], self.zone_hi[z, s] = zone.lo_bps, zone.hi_bps
                self.notional[s, z] = params.risk.max_notional_usd * zone.size_frac


def _classify(tp: _Tape, plan: _Plan, params: EngineParams, book: BookShape) -> tuple[np.ndarray, np.ndarray]:
    """(sorted keys of signal slots, their class): try_entry's verdicts without the risk limits."""
    q, n_sym = tp.q, plan.notional.shape[0]
    up, down = entry_spread_bps(q, +1), entry_spread_bps(q, -1)
    go_up = up >= down
    spread = np.where(go_up, up, down)
    keys = np.flatnonzero(~(spread < plan.zone_lo[0]))  # find_zone != -1: a signal
    ti, si = np.divmod(keys, n_sym)
    sp, go_up = spread.ravel()[keys], go_up.ravel()[keys]
    zi = np.full(keys.size, -2)
    for z in range(plan.zone_lo.shape[0] - 1, -1, -1):  # backwards: the first matching zone wins
        zi[(plan.zone_lo[z, si] <= sp) & (sp < plan.zone_hi[z, si])] = z
    cls = np.full(keys.size, _OUTSIDE, dtype=np.int8)
    for d in (1, -1):
        m = np.flatnonzero((zi >= 0) & (go_up if d > 0 else ~go_up))
        k, s = keys[m], si[m]
        c = Quote(*(getattr(q, f).ravel()[k] for f in ("usdt_bid", "usdt_ask", "krw_bid", "krw_ask",
                                                       "usdt_size", "krw_size")), tp.fx[ti[m]])
        ref_px = c.usdt_ask if d > 0 else c.usdt_bid
        target = plan.notional[s, zi[m]] / ref_px
        qty = np.minimum(np.minimum(target, depth(c.usdt_size, book)), depth(c.krw_size, book))
        shallow = qty * ref_px < params.risk.min_fill_usd
        legs = _open_legs(c, qty, d, book)
        slip_bps = (legs.slippage_usdt + legs.slippage_krw / c.fx) / (qty * legs.usdt_px) * 1e4
        floor_bps = params.round_trip_fee_bps + 2.0 * slip_bps
        below = sp[m] < params.floor_multiplier * floor_bps
        cls[m] = np.where(shallow, _DEPTH, np.where(below, _FLOOR, _ENTER))
    return keys, cls


def run_session_fast(market: Market, params: EngineParams, on_trade: Callable[[dict], None],
                     should_stop: Callable[[], bool] = lambda: False) -> SessionResult:
    """Same contract and, for every input, the same result as `loop.run_session`."""
    return _Session(market, params, on_trade, should_stop).run()


class _Session:
    def __init__(self, market: Market, params: EngineParams, on_trade: Callable[[dict], None],
                 should_stop: Callable[[], bool]) -> None:
        self.market, self.params, self.on_trade, self.should_stop = market, params, on_trade, should_stop
        self.book, self.symbols, self.n_sym = market.book, market.symbols, len(market.symbols)
        self.plan = _Plan(params, self.n_sym)
        self.res = SessionResult()
        self.scratch = SessionResult()  # try_entry's counters for re-checked entries: already counted
        self.open: dict[int, Position] = {}
        self.day_pnl: dict[int, float] = {}
        self.last_exit: tuple[int, float] = (-_NEVER, 0.0)  # (day, that day's PnL) after the latest exit
        self.last: tuple[_Tape, int] | None = None  # the last tick run, for the mark to market

    def run(self) -> SessionResult:
        res = self.res
        with np.errstate(all="ignore"):
            for chunk in self.market.chunks(CHUNK_TICKS):
                if self._chunk(_Tape.of(chunk)):
                    res.interrupted = True
                    break
        res.open_positions = [self.open[s] for s in sorted(self.open)]
        res.unrealized_pnl_krw = sum(mark_to_market(p, self.last[0].quote(self.last[1], p.symbol_idx),
                                                    self.params, self.book) for p in res.open_positions)
        return res

    def _chunk(self, tp: _Tape) -> bool:
        """Run one chunk; True if `should_stop` cut it short."""
        n, n_sym, p, res = tp.n, self.n_sym, self.params, self.res
        days = self._days(tp.t)
        self.day_starts = [j for j in range(1, n) if days[j] != days[j - 1]]
        self.checked = 0
        stop_tick = None
        if n_sym:
            keys, cls = _classify(tp, self.plan, p, self.book)
            k4 = keys[cls == _ENTER]
            per_sym = np.split(k4[np.argsort(k4 % n_sym, kind="stable")],
                               np.cumsum(np.bincount(k4 % n_sym, minlength=n_sym))[:-1])
            self.cands = [a.tolist() for a in per_sym]
            self.heap: list[tuple[int, int]] = []
            self.exit_key: dict[int, int] = {}
            since = dict.fromkeys(self.open, 0)  # symbol -> first tick of this chunk it is not flat
            busy: list[tuple[int, int, int]] = []
            events = [(-1, len(self.open), *self.last_exit)]  # (key, open positions, day, day PnL) after it
            entries = 0
            for s, pos in self.open.items():
                self._schedule_exit(tp, pos, s, 0)
            for s in range(n_sym):
                if s not in self.open:
                    self._push_next(s, -1)
            while self.heap:
                k, s = heapq.heappop(self.heap)
                i = k // n_sym
                if not self._advance(i):
                    stop_tick = self.checked
                    break
                if s in self.open:
                    self._exit(tp, k, i, s, days[i])
                    busy.append((s, since.pop(s), i))
                    events.append((k, len(self.open), *self.last_exit))
                elif self._blocked(days[i]):
                    nxt = min(self.exit_key.values(), default=_NEVER)
                    self._push_next(s, min(nxt, self._next_day(i) * n_sym - 1))
                else:
                    self._enter(tp, k, i, s)
                    entries += 1
                    since[s] = i + 1
                    events.append((k, len(self.open), *self.last_exit))
            busy.extend((s, a, n - 1) for s, a in since.items())
        if stop_tick is None and not self._advance(n - 1):
            stop_tick = self.checked
        ran = n if stop_tick is None else stop_tick
        if n_sym:
            self._count(keys, cls, ran, n, busy, events, days, entries)
        res.ticks += ran
        res.market_updates += ran * n_sym
        if ran:
            res.last_fx = float(tp.fx[ran - 1])
            self.last = (tp, ran - 1)
        return stop_tick is not None

    def _advance(self, i: int) -> bool:
        """Ask `should_stop` before each tick up to i, as the reference does; False: stop before tick self.checked."""
        while self.checked <= i:
            if self.should_stop():
                return False
            self.checked += 1
        return True

    def _days(self, t: np.ndarray) -> list[int]:
        first, last = int(float(t[0]) // SECONDS_PER_DAY), int(float(t[-1]) // SECONDS_PER_DAY)
        if first == last:
            return [first] * len(t)
        return [int(x // SECONDS_PER_DAY) for x in t.tolist()]

    def _next_day(self, i: int) -> int:
        """First tick after i on another day (the kill switch resets there), or never."""
        j = bisect_right(self.day_starts, i)
        return self.day_starts[j] if j < len(self.day_starts) else _NEVER // self.n_sym

    def _blocked(self, day: int) -> bool:
        risk = self.params.risk
        return self.day_pnl.get(day, 0.0) <= -risk.daily_loss_limit_usd or len(self.open) >= risk.max_open_positions

    def _push_next(self, s: int, after: int) -> None:
        """Schedule symbol s's next enterable slot with a key > after."""
        c = self.cands[s]
        j = bisect_right(c, after)
        if j < len(c):
            heapq.heappush(self.heap, (c[j], s))

    def _enter(self, tp: _Tape, k: int, i: int, s: int) -> None:
        t = float(tp.t[i])
        pos = try_entry(self.scratch, tp.quote(i, s), s, t, self.params.applied[s], self.params, self.book,
                        len(self.open), False)
        assert pos is not None, f"fast engine: slot {k} classed enterable, try_entry refused it"
        self.open[s] = pos
        self._schedule_exit(tp, pos, s, i + 1)

    def _exit(self, tp: _Tape, k: int, i: int, s: int, day: int) -> None:
        pos, ap, t = self.open.pop(s), self.params.applied[s], float(tp.t[i])
        del self.exit_key[s]
        q = tp.quote(i, s)
        reason = exit_reason(pos, q, t, ap.profile, self.params.round_trip_fee_bps)
        assert reason is not None, f"fast engine: exit scan found slot {k}, exit_reason did not"
        trade = close_position(pos, q, t, reason, self.params, self.book, self.symbols[s], ap.profile_name)
        self.day_pnl[day] = self.day_pnl.get(day, 0.0) + trade["pnl_usd"]
        self.last_exit = (day, self.day_pnl[day])
        self.res.trades.append(trade)
        self.on_trade(trade)
        self._push_next(s, k)

    def _schedule_exit(self, tp: _Tape, pos: Position, s: int, start: int) -> None:
        """`exits.exit_reason` over s's column from tick `start`; the first hit becomes an exit event."""
        profile = self.params.applied[s].profile
        zone, d, fee = profile.zones[pos.zone_idx], pos.direction, self.params.round_trip_fee_bps
        a, w, q = start, _FIRST_SCAN, tp.q
        while a < tp.n:
            b = min(tp.n, a + w)
            col = Quote(q.usdt_bid[a:b, s], q.usdt_ask[a:b, s], q.krw_bid[a:b, s], q.krw_ask[a:b, s],
                        None, None, tp.fx[a:b])  # type: ignore[arg-type]
            captured = pos.entry_spread_bps - exit_spread_bps(col, d)
            hold = tp.t[a:b] - pos.entry_t_s
            hit = ((-captured >= zone.sl_bps) | (mid_premium_bps(col) * d < 0.0) | (captured >= zone.tp_bps)
                   | (hold >= profile.hard_limit_s)
                   | ((hold >= profile.soft_limit_s) & (captured - fee >= -profile.min_loss_bps)))
            j = int(hit.argmax())
            if hit[j]:
                key = (a + j) * self.n_sym + s
                self.exit_key[s] = key
                heapq.heappush(self.heap, (key, s))
                return
            a, w = b, 2 * w

    def _count(self, keys: np.ndarray, cls: np.ndarray, ran: int, n: int, busy: list[tuple[int, int, int]],
               events: list[tuple[int, int, int, float]], days: list[int], entries: int) -> None:
        """Signals and rejections of the flat slots run in this chunk, from the state timeline."""
        n_sym, risk, rej = self.n_sym, self.params.risk, self.res.rejections
        m = int(np.searchsorted(keys, ran * n_sym))
        keys, cls = keys[:m], cls[:m]
        held = np.zeros((n, n_sym), dtype=bool)
        for s, a, b in busy:
            held[a:b + 1, s] = True
        flat = ~held.ravel()[keys]
        keys, cls = keys[flat], cls[flat]
        self.res.entry_signals += int(keys.size)
        rej["outside_zones"] += int(np.count_nonzero(cls == _OUTSIDE))
        gated = cls != _OUTSIDE
        keys, cls = keys[gated], cls[gated]
        ev_key, ev_open, ev_day, ev_pnl = (np.array(c) for c in zip(*events))
        e = np.searchsorted(ev_key, keys, side="left") - 1  # the last event before each slot
        slot_day = np.array(days)[keys // n_sym]
        killed = np.where(ev_day[e] == slot_day, ev_pnl[e], 0.0) <= -risk.daily_loss_limit_usd
        full = ~killed & (ev_open[e] >= risk.max_open_positions)
        free = ~killed & ~full
        rej["kill_switch"] += int(np.count_nonzero(killed))
        rej["max_open_positions"] += int(np.count_nonzero(full))
        rej["insufficient_depth"] += int(np.count_nonzero(free & (cls == _DEPTH)))
        rej["cost_floor"] += int(np.count_nonzero(free & (cls == _FLOOR)))
        assert int(np.count_nonzero(free & (cls == _ENTER))) == entries, "fast engine: entry count mismatch"
