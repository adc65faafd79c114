"""The kernel engine's Python layer: chunks in, `should_stop` asked, records out, JSONL once.

`run_session_kernel` has `loop.run_session`'s contract and, for every input, its result
(tests/test_engine_equivalence.py). The compiled kernel (kernel.py, imported lazily, so
numba loads only on this path) runs a chunk at a time; `should_stop` is asked before each
tick in the reference's order relative to `on_trade`: a chunk runs first, then the ticks
it ran are confirmed one `should_stop()` each; a True rolls the state back to the chunk's
start and reruns up to that tick. With `on_trade`, the kernel returns after each tick that
closed a trade, so on_trade calls fall between the same `should_stop` calls as in the
reference. Trades stay in a TRADE_DT record array (kernel_trades.KernelTrades reads them);
`write` receives each chunk's trades.jsonl lines as one bytes string (the same bytes
JsonlAppender writes).
"""
from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from src.engine import kernel_trades
from src.engine.kernel_trades import KernelTrades
from src.engine.kernel_writer import ChunkWriter
from src.engine.loop import CHUNK_TICKS, SECONDS_PER_DAY, EngineParams
from src.engine.records import REJECTION_REASONS, Legs, Position, SessionResult, seq_sum
from src.market.book import growth_pow
from src.market.tape import Market


def _k() -> Any:
    """The layouts and compiled entry points: the ahead-of-time module (no numba) or the @njit ones."""
    from src.engine import aot

    return aot.engine()


_WARM: dict[str, float] = {}


def _never() -> bool:
    """The default `should_stop`: never; the kernel knows it and skips the per-tick calls."""
    return False


def warm_up() -> None:
    """Load (or, the first time ever, compile) every compiled function with tiny inputs of the
    real types, so none of that lands inside the session. Safe to run in a thread."""
    t0 = time.perf_counter()
    _warm(_k())
    _WARM.setdefault("warm_up_s", time.perf_counter() - t0)


def warm_jit() -> None:
    """The @njit functions themselves, typed with the real argument types (aot_build.py's signatures)."""
    from src.engine import kernel, kernel_json

    _warm(SimpleNamespace(**vars(kernel), format_lines=kernel_json.format_lines))


def _warm(kn: Any) -> None:
    f1, i1, z = np.zeros(1), np.zeros(1, dtype=np.int64), _ro(np.full((1, 1), np.nan))  # no valid quote
    trades = np.zeros(4, dtype=kn.TRADE_DT)
    kn.run_ticks(0, 1, _ro(f1), i1, _ro(f1), z, z, z, z, z, z, np.zeros(13), np.zeros((1, 1, 5)), i1, np.zeros((1, 3)),
                 np.zeros(6, dtype=np.int64), np.zeros(5, dtype=np.int64), np.full(1, np.nan),
                 np.zeros((1, 3), dtype=np.int64), np.zeros((1, 9)), np.zeros((1, 7)), i1, f1, trades, False)
    kn.mark_to_market(np.ones(9), 1, np.ones(7), np.ones(13))
    kernel_trades.warm_up(kn.format_lines)


def compile_record() -> dict[str, Any]:
    """The kernel's cache key (jitcache.py) and how many of its functions this process compiled
    (cache misses) rather than loaded from `.cache/numba/<key>/` (cache hits). With the
    ahead-of-time module (aot.py): its key, path and SHA-256; one miss if this process built it."""
    from src.engine import aot

    rec = aot.record()
    if rec.get("used"):
        return {"cache": aot.key(), "aot": rec, "cache_hits": 0 if rec["built"] else 1,
                "cache_misses": 1 if rec["built"] else 0, "load_s": round(_WARM.get("warm_up_s", 0.0), 6)}
    from src.engine import jitcache, kernel, kernel_json

    hits = misses = 0
    for mod in (kernel, kernel_json):
        for obj in vars(mod).values():
            stats = getattr(obj, "stats", None)
            if stats is not None and hasattr(stats, "cache_hits"):
                hits += sum(stats.cache_hits.values())
                misses += sum(stats.cache_misses.values())
    return {"cache": jitcache.cache_key(), "aot": rec, "cache_hits": hits, "cache_misses": misses,
            "load_s": round(_WARM.get("warm_up_s", 0.0), 6)}


def run_session_kernel(market: Market, params: EngineParams, on_trade: Callable[[dict], None] | None,
                       should_stop: Callable[[], bool] = _never,
                       write: Callable[[bytes], None] | None = None) -> SessionResult:
    """Same contract and, for every input, the same result as `loop.run_session`.

    on_trade: called with each trade's dict, between the same should_stop calls as in the
    reference (None: no dicts are built); write: called once per chunk with its trades.jsonl
    lines (bytes), when given.
    """
    kn = _k()
    symbols = market.symbols
    n_sym = len(symbols)
    prm, zones, n_zones, limits = _params(params, market, n_sym)
    st = np.zeros(6, dtype=np.int64)
    rej = np.zeros(len(REJECTION_REASONS), dtype=np.int64)
    last_fx = np.full(1, np.nan)
    pos_i = np.zeros((n_sym, 3), dtype=np.int64)
    pos_f = np.zeros((n_sym, 9))
    last_q = np.zeros((n_sym, 7))
    trades = np.zeros(max(64, 4 * n_sym), dtype=kn.TRADE_DT)
    base = KernelTrades(trades[:0], symbols, params)
    writer = ChunkWriter(write) if write is not None else None
    box = [trades]
    try:
        interrupted = _run_chunks(kn, market, n_sym, should_stop, on_trade, writer, base, prm, zones, n_zones,
                                  limits, st, rej, last_fx, pos_i, pos_f, last_q, box)
        if writer is not None:
            writer.finish()
    finally:
        if writer is not None:
            writer.close()
    trades = box[0]
    return _result(kn, trades[:int(st[kn.N_TRADES])].copy(), st, rej, last_fx, pos_i, pos_f, last_q, prm, symbols,
                   params, interrupted)


def _run_chunks(kn: Any, market: Market, n_sym: int, should_stop: Callable[[], bool],
                on_trade: Callable[[dict], None] | None, writer: ChunkWriter | None, base: KernelTrades,
                prm: np.ndarray, zones: np.ndarray, n_zones: np.ndarray, limits: np.ndarray, st: np.ndarray,
                rej: np.ndarray, last_fx: np.ndarray, pos_i: np.ndarray, pos_f: np.ndarray, last_q: np.ndarray,
                box: list[np.ndarray]) -> bool:
    """The session's chunks through the kernel; box[0] is the trade buffer (grown here). True if interrupted."""
    day_keys, day_pnl = np.zeros(16, dtype=np.int64), np.zeros(16)
    trades = box[0]
    one_tick = on_trade is not None
    interrupted = False
    for chunk in market.chunks(CHUNK_TICKS):
        n = chunk.n
        arrays = [_ro(a) for a in
                  (chunk.t_s, chunk.fx, chunk.usdt_bid, chunk.usdt_ask, chunk.krw_bid, chunk.krw_ask,
                   chunk.usdt_size, chunk.krw_size)]
        if arrays[2].ndim != 2 or arrays[2].shape[1] != n_sym:
            arrays[2:] = [_ro(a.reshape(n, n_sym)) for a in arrays[2:]]
        arrays.insert(1, _days(arrays[0]))
        if day_keys.shape[0] < st[kn.N_DAYS] + n + 1:
            day_keys = np.resize(day_keys, int(st[kn.N_DAYS]) + n + 16)
            day_pnl = np.resize(day_pnl, day_keys.shape[0])
        written = int(st[kn.N_TRADES])
        i = 0
        while i < n:
            state = (st.copy(), rej.copy(), last_fx.copy(), pos_i.copy(), pos_f.copy(), last_q.copy(),
                     day_keys.copy(), day_pnl.copy())
            if st[kn.N_TRADES] + n_sym > trades.shape[0]:
                trades = box[0] = _grown(trades, int(st[kn.N_TRADES]), 2 * trades.shape[0] + n_sym)
            first = int(st[kn.N_TRADES])
            j = kn.run_ticks(i, n, *arrays, prm, zones, n_zones, limits, st, rej, last_fx, pos_i, pos_f, last_q,
                             day_keys, day_pnl, trades, one_tick)
            stop_at = None if should_stop is _never else next((m for m in range(i, j) if should_stop()), None)
            if stop_at is not None:  # roll back to the segment's start and run up to the stop
                for dst, src in zip((st, rej, last_fx, pos_i, pos_f, last_q, day_keys, day_pnl), state):
                    dst[...] = src
                kn.run_ticks(i, stop_at, *arrays, prm, zones, n_zones, limits, st, rej, last_fx, pos_i, pos_f,
                             last_q, day_keys, day_pnl, trades, False)
                interrupted = True
                break
            if one_tick and st[kn.N_TRADES] > first:
                new = base.part(trades[first:int(st[kn.N_TRADES])])
                for d in new.dicts():
                    on_trade(d)  # type: ignore[misc]
            if j == i and st[kn.N_TRADES] + n_sym <= trades.shape[0]:
                raise AssertionError("kernel made no progress")
            i = j
        if writer is not None and st[kn.N_TRADES] > written:
            writer.submit(base.part(trades[written:int(st[kn.N_TRADES])]))
        if interrupted:
            break
    return interrupted


def _grown(trades: np.ndarray, n: int, size: int) -> np.ndarray:
    """A bigger record buffer holding the first n records."""
    new = np.zeros(size, dtype=trades.dtype)
    new[:n] = trades[:n]
    return new


def _ro(a: Any) -> np.ndarray:
    """A C-contiguous float64 read-only view: every market gives the kernel the same array types,
    so one compiled (and cached) signature serves them all."""
    v = np.ascontiguousarray(a, dtype=np.float64).view()
    v.flags.writeable = False
    return v


def _days(t: np.ndarray) -> np.ndarray:
    """int(t // SECONDS_PER_DAY) per tick, as the reference computes it (numpy's floor_divide of
    floats is Python's //, fmod-based and exact)."""
    days = np.floor_divide(t, SECONDS_PER_DAY)
    if not np.isfinite(days).all():
        for x in t.tolist():
            int(x // SECONDS_PER_DAY)  # raises as the reference does (a NaN or infinite time)
    if (np.abs(days) >= 2.0**62).any():  # ~4e17 years: beyond int64 (the reference's ints are unbounded)
        raise ValueError(f"tick time {float(np.abs(t).max())!r} s is too large for the kernel engine")
    return days.astype(np.int64)


def _params(params: EngineParams, market: Market, n_sym: int) -> tuple[np.ndarray, ...]:
    """EngineParams and the book as the kernel's arrays (values exactly as the reference uses them)."""
    kn, book, risk = _k(), market.book, params.risk
    prm = np.zeros(13)
    prm[kn.USDT_FEE], prm[kn.KRW_FEE], prm[kn.RT_FEE] = params.usdt_fee_bps, params.krw_fee_bps, \
        params.round_trip_fee_bps
    prm[kn.FLOOR_MULT], prm[kn.NOTIONAL], prm[kn.MAX_OPEN] = params.floor_multiplier, risk.max_notional_usd, \
        risk.max_open_positions
    prm[kn.LOSS_LIMIT], prm[kn.MIN_FILL] = risk.daily_loss_limit_usd, risk.min_fill_usd
    prm[kn.LEVELS], prm[kn.STEP], prm[kn.GROWTH] = book.levels, book.step_bps, book.growth
    if book.growth != 1.0:  # book.depth's growth_pow, evaluated by Python as the reference does
        prm[kn.DEPTH_NUM], prm[kn.DEPTH_DEN] = growth_pow(book) - 1.0, book.growth - 1.0
    n_z = max((len(ap.profile.zones) for ap in params.applied[:n_sym]), default=1)
    zones = np.full((n_sym, n_z, 5), np.nan)
    n_zones = np.zeros(n_sym, dtype=np.int64)
    limits = np.zeros((n_sym, 3))
    for s, ap in enumerate(params.applied[:n_sym]):
        p = ap.profile
        n_zones[s] = len(p.zones)
        for z, zone in enumerate(p.zones):
            zones[s, z] = (zone.lo_bps, zone.hi_bps, zone.tp_bps, zone.sl_bps, zone.size_frac)
        limits[s] = (p.soft_limit_s, p.hard_limit_s, p.min_loss_bps)
    return prm, zones, n_zones, limits


def _result(kn: Any, rec: np.ndarray, st: np.ndarray, rej: np.ndarray, last_fx: np.ndarray, pos_i: np.ndarray,
            pos_f: np.ndarray, last_q: np.ndarray, prm: np.ndarray, symbols: tuple[str, ...],
            params: EngineParams, interrupted: bool) -> SessionResult:
    res = SessionResult(interrupted=interrupted)
    res.trades = KernelTrades(rec, symbols, params)  # type: ignore[assignment]
    res.entry_signals, res.market_updates, res.ticks = int(st[kn.SIGNALS]), int(st[kn.UPDATES]), int(st[kn.TICKS])
    res.rejections = {r: int(c) for r, c in zip(REJECTION_REASONS, rej.tolist())}
    res.last_fx = float(last_fx[0])
    marks = []
    for s in np.flatnonzero(pos_i[:, 0]).tolist():
        f = pos_f[s].tolist()
        res.open_positions.append(Position(s, int(pos_i[s, 1]), int(pos_i[s, 2]), f[kn.P_T], f[kn.P_SPREAD],
                                           Legs(f[kn.P_QTY], f[kn.P_USDT], f[kn.P_KRW], f[kn.P_SLIP_USDT],
                                                f[kn.P_SLIP_KRW]), f[kn.P_FX], f[kn.P_TARGET]))
        marks.append(float(kn.mark_to_market(pos_f[s], int(pos_i[s, 1]), last_q[s], prm)))
    res.unrealized_pnl_krw = seq_sum(marks)
    return res
