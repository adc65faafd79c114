"""The fast engine: the reference loop's strategy, vectorised over ticks and symbols per chunk.

A slot is one (tick, symbol) visit of the reference loop; its key, tick * n_symbols +
symbol, is the reference's visiting order. Per chunk, numpy finds the slots where the
reference's try_entry sees a signal, with their zone (`vectors.Zones.signals`). The
path-dependent part -- which symbols hold a position, max_open_positions across symbols,
the daily kill switch -- runs as an event loop, in key order, over the few slots where
that state can change: entries and exits, plus day starts (the kill switch resets).
Everything else is counted in bulk afterwards against the resulting state timeline.

- Entries: a flat symbol waits on its next enterable slot (depth and cost floor pass),
  worked out by numpy for a block of ticks when the loop first needs it; a symbol met
  while a risk limit blocks entries is parked until an exit or a day start unblocks.
  So a session spent under the kill switch costs no per-slot work at all.
- Exits: on entry, numpy scans the symbol's column for the first tick where exit_reason
  fires (`vectors.first_exit`).

Why it equals `loop.run_session` (tests/test_engine_equivalence.py checks it):
vectorised formulas are the scalar ones with the same float64 operations in the same
order (see vectors.py); every value that reaches a trade, a Position or the kill switch
comes from the reference's own scalar functions (try_entry, exit_reason,
close_position, mark_to_market) at the slot the event loop found, and an assert fails if
they disagree with the vectorised verdict; `should_stop` is called once before each tick
and `on_trade` in the same order relative to it, so interruptions cut at the same slot.
Memory stays flat: one market chunk and its temporaries at a time.
"""
from __future__ import annotations

import heapq
from bisect import bisect_right
from typing import Callable

import numpy as np

from src.engine import vectors as vec
from src.engine.exits import exit_reason
from src.engine.fills import Quote
from src.engine.loop import (CHUNK_TICKS, SECONDS_PER_DAY, EngineParams, Position, SessionResult,
                             close_position, mark_to_market, try_entry)
from src.market.tape import Market

_BLOCK_SLOTS = 16384  # slots per lazily classified block of ticks
_FIRST_SCAN = 32  # ticks in a position's first exit scan; doubles until an exit or the chunk end
_DAY = -1  # the symbol slot of a day-start event: sorts before the day's first slot


def run_session_fast(market: Market, params: EngineParams, on_trade: Callable[[dict], None],
                     should_stop: Callable[[], bool] = lambda: False) -> SessionResult:
    """Same contract and, for every input, the same result as `loop.run_session`."""
    return _Session(market, params, on_trade, should_stop).run()


class _Session:
    def __init__(self, market: Market, params: EngineParams, on_trade: Callable[[dict], None],
                 should_stop: Callable[[], bool]) -> None:
        self.market, self.params, self.on_trade, self.should_stop = market, params, on_trade, should_stop
        self.book, self.symbols, self.n_sym = market.book, market.symbols, len(market.symbols)
        self.zones = vec.Zones(params, self.n_sym)
        self.block = max(1, _BLOCK_SLOTS // max(self.n_sym, 1))  # ticks per block
        self.res = SessionResult()
        self.scratch = SessionResult()  # try_entry's counters when re-checking an entry: counted in bulk
        self.open: dict[int, Position] = {}
        self.day_pnl: dict[int, float] = {}
        self.last_exit: tuple[int, float] = (-(1 << 62), 0.0)  # (day, that day's PnL) after the latest exit
        self.mtm_quote: dict[int, Quote] = {}  # an open symbol's last valid quote, for the mark to market

    def run(self) -> SessionResult:
        res = self.res
        with np.errstate(all="ignore"):
            for chunk in self.market.chunks(CHUNK_TICKS):
                if self._chunk(vec.Tape.of(chunk)):
                    res.interrupted = True
                    break
        res.open_positions = [self.open[s] for s in sorted(self.open)]
        res.unrealized_pnl_krw = sum(mark_to_market(p, self.mtm_quote[p.symbol_idx], self.params, self.book)
                                     for p in res.open_positions)
        return res

    def _chunk(self, tp: vec.Tape) -> bool:
        """Run one chunk; True if `should_stop` cut it short."""
        n, n_sym, res = tp.n, self.n_sym, self.res
        self.tp, self.checked, stop_tick = tp, 0, None
        self.days = self._days(tp.t)
        if n_sym:
            self._prepare(tp)
            since = dict.fromkeys(self.open, 0)  # symbol -> its first tick of this chunk not flat
            busy: list[tuple[int, int, int]] = []  # (symbol, first, last tick) not flat
            events = [(-1, len(self.open), *self.last_exit)]  # (key, open positions, day, day PnL) after
            entries = 0
            for s, pos in self.open.items():
                self._schedule_exit(pos, s, 0)
            if self.days[0] != self.days[-1]:
                for j in range(1, n):
                    if self.days[j] != self.days[j - 1]:
                        heapq.heappush(self.heap, (j * n_sym, _DAY))
            self.parked = [s for s in range(n_sym) if s not in self.open]
            self._unpark(-1, self.days[0])
            while self.heap:
                k, s = heapq.heappop(self.heap)
                i = k // n_sym
                if not self._advance(i):
                    stop_tick = self.checked
                    break
                if s == _DAY:
                    self._unpark(k - 1, self.days[i])
                elif s in self.open:
                    self._exit(k, i, s)
                    busy.append((s, since.pop(s), i))
                    events.append((k, len(self.open), *self.last_exit))
                    self._unpark(k, self.days[i])
                elif self._blocked(self.days[i]):
                    self.parked.append(s)
                elif self._verdict(k, i) == vec.ENTER:
                    self._enter(k, i, s)
                    entries += 1
                    since[s] = i + 1
                    events.append((k, len(self.open), *self.last_exit))
                else:
                    self._push_next(s, k)
            busy.extend((s, a, n - 1) for s, a in since.items())
        if stop_tick is None and not self._advance(n - 1):
            stop_tick = self.checked
        ran = n if stop_tick is None else stop_tick
        if n_sym:
            self._count(ran, busy, events, entries)
        res.ticks += ran
        self._last_quotes(ran)
        return stop_tick is not None

    def _last_quotes(self, ran: int) -> None:
        """What the reference carries from tick to tick: market updates, last FX, last valid quotes."""
        tp, res = self.tp, self.res
        if tp.valid is None:
            res.market_updates += ran * self.n_sym
            last = {s: ran - 1 for s in self.open} if ran else {}
            fx_at = ran - 1
        else:
            res.market_updates += int(np.count_nonzero(tp.valid[:ran]))
            last = {}
            for s in self.open:
                col = np.flatnonzero(tp.valid[:ran, s])
                if col.size:
                    last[s] = int(col[-1])
            fx_ok = np.flatnonzero(~np.isnan(tp.fx[:ran]))  # the reference keeps the last FX that is not NaN
            fx_at = int(fx_ok[-1]) if fx_ok.size else -1
        if fx_at >= 0:
            res.last_fx = float(tp.fx[fx_at])
        for s, i in last.items():
            self.mtm_quote[s] = tp.quote(i, s)

    def _prepare(self, tp: vec.Tape) -> None:
        """The chunk's signals; enterable slots are worked out later, a block at a time."""
        keys, zi, go_up, spread = self.zones.signals(tp)
        self.outside = keys[zi == -2]
        g = zi >= 0  # "gated": the slots try_entry takes to the risk limits, depth and cost floor
        self.g_keys, self.g_zi, self.g_up, self.g_spread = keys[g], zi[g], go_up[g], spread[g]
        self.g_cls = np.zeros(self.g_keys.size, dtype=np.int8)  # vec.UNKNOWN until its block is worked out
        self.g_by_sym: dict[int, list[int]] = {}
        self.g_grid: np.ndarray | None = None
        self.enterable: list[list[int]] = [[] for _ in range(self.n_sym)]  # in classified blocks
        self.frontier = 0  # ticks before it: classified, or never needed
        self.heap: list[tuple[int, int]] = []
        self.exit_key: dict[int, int] = {}

    def _advance(self, i: int) -> bool:
        """Ask `should_stop` before each tick up to i, as the reference does; False: stop before tick self.checked."""
        while self.checked <= i:
            if self.should_stop():
                return False
            self.checked += 1
        return True

    @staticmethod
    def _days(t: np.ndarray) -> list[int]:
        first, last = int(float(t[0]) // SECONDS_PER_DAY), int(float(t[-1]) // SECONDS_PER_DAY)
        if first == last:
            return [first] * len(t)
        return [int(x // SECONDS_PER_DAY) for x in t.tolist()]

    def _blocked(self, day: int) -> bool:
        risk = self.params.risk
        return self.day_pnl.get(day, 0.0) <= -risk.daily_loss_limit_usd or len(self.open) >= risk.max_open_positions

    def _unpark(self, after: int, day: int) -> None:
        """After a state change (or at the chunk start): if entries are possible, parked symbols wait again."""
        if self.parked and not self._blocked(day):
            for s in self.parked:
                self._push_next(s, after)
            self.parked = []

    def _gated(self, s: int) -> list[int]:
        """Keys of symbol s's gated slots in this chunk (built on first use)."""
        keys = self.g_by_sym.get(s)
        if keys is None:
            if self.g_grid is None:
                self.g_grid = np.zeros(self.tp.n * self.n_sym, dtype=bool)
                self.g_grid[self.g_keys] = True
            column = np.flatnonzero(self.g_grid.reshape(self.tp.n, self.n_sym)[:, s])
            keys = self.g_by_sym[s] = (column * self.n_sym + s).tolist()
        return keys

    def _push_next(self, s: int, after: int) -> None:
        """Wait on symbol s's next slot after key `after` that may enter: an enterable one among
        the classified blocks, else its first gated slot past them (classified when reached)."""
        c = self.enterable[s]
        j = bisect_right(c, after)
        if j < len(c):
            heapq.heappush(self.heap, (c[j], s))
            return
        g = self._gated(s)
        j = bisect_right(g, max(after, self.frontier * self.n_sym - 1))
        if j < len(g):
            heapq.heappush(self.heap, (g[j], s))

    def _verdict(self, k: int, i: int) -> int:
        """try_entry's verdict at gated slot k, unblocked: classify its block first if needed."""
        if i >= self.frontier:
            self._classify_block(i)
        j = int(np.searchsorted(self.g_keys, k))
        return int(self.g_cls[j])

    def _classify_block(self, i: int) -> None:
        """Work out the enterable slots of the block of ticks holding tick i (earlier unclassified
        blocks are never needed again: the loop has passed them)."""
        n_sym, b0 = self.n_sym, i - i % self.block
        b1 = min(self.tp.n, b0 + self.block)
        lo, hi = np.searchsorted(self.g_keys, [b0 * n_sym, b1 * n_sym])
        keys = self.g_keys[lo:hi]
        cls = vec.entry_class(self.tp.slots(keys, n_sym), keys % n_sym, self.g_zi[lo:hi], self.g_up[lo:hi],
                              self.g_spread[lo:hi], self.zones, self.params, self.book)
        self.g_cls[lo:hi] = cls
        k4 = keys[cls == vec.ENTER]
        s4 = k4 % n_sym
        order = np.argsort(s4, kind="stable")
        k4, s4 = k4[order], s4[order]
        for part in np.split(k4, np.flatnonzero(np.diff(s4)) + 1):
            if part.size:
                self.enterable[int(part[0] % n_sym)].extend(part.tolist())
        self.frontier = b1

    def _enter(self, k: int, i: int, s: int) -> None:
        t = float(self.tp.t[i])
        pos = try_entry(self.scratch, self.tp.quote(i, s), s, t, self.params.applied[s], self.params, self.book,
                        len(self.open), False)
        assert pos is not None, f"fast engine: slot {k} classed enterable, try_entry refused it"
        self.open[s] = pos
        self._schedule_exit(pos, s, i + 1)

    def _exit(self, k: int, i: int, s: int) -> None:
        pos, ap, t, day = self.open.pop(s), self.params.applied[s], float(self.tp.t[i]), self.days[i]
        del self.exit_key[s]
        q = self.tp.quote(i, s)
        reason = exit_reason(pos, q, t, ap.profile, self.params.round_trip_fee_bps)
        assert reason is not None, f"fast engine: exit scan found slot {k}, exit_reason did not"
        trade = close_position(pos, q, t, reason, self.params, self.book, self.symbols[s], ap.profile_name)
        self.day_pnl[day] = self.day_pnl.get(day, 0.0) + trade["pnl_usd"]
        self.last_exit = (day, self.day_pnl[day])
        self.res.trades.append(trade)
        self.on_trade(trade)
        self._push_next(s, k)

    def _schedule_exit(self, pos: Position, s: int, start: int) -> None:
        """The position's exit becomes an event if it falls in this chunk (else a later chunk scans on)."""
        i = self._exit_tick(pos, s, start)
        if i >= 0:
            self.exit_key[s] = i * self.n_sym + s
            heapq.heappush(self.heap, (i * self.n_sym + s, s))

    def _exit_tick(self, pos: Position, s: int, a: int) -> int:
        """The first tick from `a` where exit_reason fires for the position, or -1."""
        tp, profile, fee = self.tp, self.params.applied[s].profile, self.params.round_trip_fee_bps
        if a < tp.n and (tp.valid is None or tp.valid[a, s]) \
                and exit_reason(pos, tp.quote(a, s), float(tp.t[a]), profile, fee) is not None:
            return a  # many exits come on the next tick: the scalar rule is cheaper than a scan there
        zone, a, w = profile.zones[pos.zone_idx], a + 1, _FIRST_SCAN
        while a < tp.n:
            b = min(tp.n, a + w)
            i = vec.first_exit(tp, s, a, b, pos.entry_spread_bps, pos.entry_t_s, pos.direction, zone.sl_bps,
                               zone.tp_bps, profile.hard_limit_s, profile.soft_limit_s, fee, profile.min_loss_bps)
            if i >= 0:
                return i
            a, w = b, 2 * w
        return -1

    def _count(self, ran: int, busy: list[tuple[int, int, int]], events: list[tuple[int, int, int, float]],
               entries: int) -> None:
        """Signals and rejections of the flat slots run in this chunk, from the state timeline."""
        n_sym, risk, rej, end = self.n_sym, self.params.risk, self.res.rejections, ran * self.n_sym
        outside = self.outside[: int(np.searchsorted(self.outside, end))]
        m = int(np.searchsorted(self.g_keys, end))
        keys, cls = self.g_keys[:m], self.g_cls[:m]
        if busy:
            held = np.zeros((self.tp.n, n_sym), dtype=bool)
            for s, a, b in busy:
                held[a:b + 1, s] = True
            outside = outside[~held.ravel()[outside]]
            flat = ~held.ravel()[keys]
            keys, cls = keys[flat], cls[flat]
        self.res.entry_signals += int(outside.size + keys.size)
        rej["outside_zones"] += int(outside.size)
        ev_key, ev_open, ev_day, ev_pnl = (np.array(c) for c in zip(*events))
        e = np.searchsorted(ev_key, keys, side="left") - 1  # the last event before each slot
        killed = np.where(ev_day[e] == np.array(self.days)[keys // n_sym], ev_pnl[e], 0.0) \
            <= -risk.daily_loss_limit_usd
        full = ~killed & (ev_open[e] >= risk.max_open_positions)
        free = ~killed & ~full
        rej["kill_switch"] += int(np.count_nonzero(killed))
        rej["max_open_positions"] += int(np.count_nonzero(full))
        rej["insufficient_depth"] += int(np.count_nonzero(free & (cls == vec.DEPTH)))
        rej["cost_floor"] += int(np.count_nonzero(free & (cls == vec.FLOOR)))
        assert not np.any(free & (cls == vec.UNKNOWN)), "fast engine: an unblocked flat slot was never classified"
        assert int(np.count_nonzero(free & (cls == vec.ENTER))) == entries, "fast engine: entry count mismatch"
