"""Seeded synthetic two-venue market: same seed and parameters, same ticks, in any chunking.

Per symbol: a GBM USD reference price; a Binance-style USDT book at that price; an
Upbit-style KRW book at price * FX * (1 + premium); the premium (bps) is an
Ornstein-Uhlenbeck process around a per-symbol mean, with Bernoulli (per tick) jumps;
lognormal top-of-book depth per venue and tick.

Bit-identical on every CPU: the only floating-point operations are + - * / and sqrt
(IEEE 754 rounds them alike everywhere); exp and log come from `detmath`, normal
variates from `ziggurat`, both built from those operations. Random words come from
numpy's PCG64 (integer arithmetic), one generator per (seed, symbol, stream), so a
symbol's path does not depend on which other symbols are in the universe. Ticks are
generated in fixed blocks of BLOCK ticks (the last one in full too) and handed out in
whatever chunks the engine asks for, so a tick's values depend only on (seed, parameters,
symbol, tick index): not on the chunking, nor on the session's length.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import asdict
from typing import Any, Iterator, Sequence

import numpy as np

from src.config.schema import FxKind, SymbolSpec, SyntheticMarketConfig
from src.market import detmath
from src.market.synth_workers import BlockWorkers, default_workers
from src.market.tape import BookShape, MarketChunk
from src.market.ziggurat import RetryPool, fast_path, fix, normals, rank_within, tables, words_of

GENERATOR = "synthetic-v2"
SECONDS_PER_YEAR = 365.0 * 86400.0
BLOCK = 3600  # ticks generated at a time (= the engines' chunk, so chunks are views)
_SCAN = 60  # the OU recursion runs in sub-blocks of this many ticks (BLOCK % _SCAN == 0)
_POOL = 512  # retry draws per symbol and block taken up front (about 300 are used)

# Stream ids: one generator each, so adding a stream never shifts another.
_MAIN, _RETRY, _START = 0, 1, 6
JIT_MIN_SYMBOL_TICKS = 200_000  # compiled generator from this size up (= engine auto's kernel threshold)
_ROWS = 900  # ticks per slice for the normals and exp: small work arrays, low peak memory
# A block takes, from each symbol's main stream, BLOCK words for the price, then BLOCK for
# the premium shock, the jump draw, the USDT depth, the KRW depth (drawn in this order);
# a jump's size takes its word from the symbol's retry stream.


def _rng(seed: int, key: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8")), stream])


def _growth(steps: np.ndarray) -> np.ndarray:
    """e**steps; for the small per-tick log returns a degree-5 Taylor polynomial (error
    below 1e-18 relative for |x| <= 1/256), else `detmath.exp`."""
    if steps.size and not (steps.min() >= -1.0 / 256.0 and steps.max() <= 1.0 / 256.0):
        return detmath.exp(steps)
    q = steps * (1.0 / 120.0)
    for c in (1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0):
        q += c
        q *= steps
    q += 1.0
    return q


class SyntheticMarket:
    """Generates `n_ticks` ticks of `tick_s` seconds for `symbols` (ranked, rank 1 first)."""

    def __init__(self, spec: SyntheticMarketConfig, symbols: Sequence[SymbolSpec], seed: int,
                 n_ticks: int, tick_s: float, compiled: bool | None = None, workers: int | None = None) -> None:
        """compiled: the Numba block generator (synth_jit.py, same bits) or numpy; None picks
        Numba from JIT_MIN_SYMBOL_TICKS symbol-ticks up (below, numba's import costs more).
        workers: threads of the compiled generator (None: synth_workers.default_workers); no
        effect on the ticks."""
        self.compiled = n_ticks * len(symbols) >= JIT_MIN_SYMBOL_TICKS if compiled is None else compiled
        self.workers = default_workers(len(symbols)) if workers is None else workers
        self.spec = spec
        self.seed = seed
        self.n_ticks = n_ticks
        self.tick_s = tick_s
        self.symbols = tuple(s.symbol for s in symbols)
        self.book = BookShape(spec.book_levels, spec.level_step_bps, spec.level_growth)
        ranks = range(1, len(symbols) + 1)
        spread_f = np.array([detmath.pow_s(float(r), spec.half_spread_rank_exp) for r in ranks])
        depth_f = np.array([detmath.pow_s(float(r), -spec.depth_rank_exp) for r in ranks])
        self._usd0 = np.array([s.usd_price for s in symbols], dtype=np.float64)
        self._usdt_half = spec.usdt_half_spread_bps * spread_f * 1e-4
        self._krw_half = spec.krw_half_spread_bps * spread_f * 1e-4
        self._depth_usd = spec.depth_usd * depth_f
        u, z = np.zeros(len(symbols)), np.zeros(len(symbols))
        for i, s in enumerate(self.symbols):
            g = _rng(seed, s, _START)
            u[i], z[i] = normals(words_of(g.bit_generator.random_raw(1)), 1, RetryPool([g], 0))
        # Mean premium in [-max/4, max]: the KRW venue usually trades rich.
        self._premium_mean = spec.premium_mean_max_bps * (1.25 / (1.0 + detmath.exp(-u)) - 0.25)
        self._premium0 = self._premium_mean + spec.premium_sd_bps * z

    def identity(self) -> dict[str, Any]:
        """What makes these ticks: generator version, seed, parameters, grid."""
        spec = {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(self.spec).items()}
        return {"kind": "synthetic", "generator": GENERATOR, "seed": self.seed, "params": spec,
                "symbols": list(self.symbols), "n_ticks": self.n_ticks, "tick_s": self.tick_s}

    def chunks(self, chunk_ticks: int) -> Iterator[MarketChunk]:
        blocks = self._blocks_jit() if self.compiled else self._blocks()
        block: dict[str, np.ndarray] = {}
        off = BLOCK  # ticks of `block` already handed out
        for start in range(0, self.n_ticks, chunk_ticks):
            n = min(chunk_ticks, self.n_ticks - start)
            parts: list[dict[str, np.ndarray]] = []
            while n > sum(p["fx"].shape[0] for p in parts):
                if off == BLOCK:
                    block, off = next(blocks), 0
                k = min(n - sum(p["fx"].shape[0] for p in parts), BLOCK - off)
                parts.append({f: a[off: off + k] for f, a in block.items()})
                off += k
            cols = parts[0] if len(parts) == 1 else {f: np.concatenate([p[f] for p in parts]) for f in parts[0]}
            yield MarketChunk(start=start, t_s=(start + np.arange(n)) * self.tick_s, **cols)

    def _consts(self) -> dict[str, Any]:
        """Per-session constants of the block generator (both paths)."""
        spec, dt = self.spec, self.tick_s
        sigma = spec.price_vol_annual * math.sqrt(dt / SECONDS_PER_YEAR)
        a = detmath.pow_s(0.5, dt / spec.premium_half_life_s)  # exp(-ln 2 * dt / half-life)
        jump_p = spec.jump_rate_per_hour * dt / 3600.0
        apow = np.empty(_SCAN)  # a**(k+1), by repeated multiplication
        acc = 1.0
        for k in range(_SCAN):
            acc *= a
            apow[k] = acc
        noise = spec.depth_noise
        return {"sigma": sigma, "a": a, "innov_sd": spec.premium_sd_bps * math.sqrt(1.0 - a * a),
                "jump_thr": round(jump_p * 4294967296.0),  # P(word < thr) = jump_p, to 2**-32
                "apow": apow, "fx_sd": spec.fx_vol_bps_per_sqrt_s * 1e-4 * math.sqrt(dt), "noise": noise,
                "log_shift": -0.5 * noise * noise}

    def _blocks(self) -> Iterator[dict[str, np.ndarray]]:
        spec, n_sym, g_len = self.spec, len(self.symbols), BLOCK
        main = [_rng(self.seed, s, _MAIN) for s in self.symbols]
        retry = [_rng(self.seed, s, _RETRY) for s in self.symbols]
        fx_main, fx_retry = _rng(self.seed, "__FX__", _MAIN), _rng(self.seed, "__FX__", _RETRY)
        k = self._consts()
        sigma, a, innov_sd, jump_thr, apow = k["sigma"], k["a"], k["innov_sd"], k["jump_thr"], k["apow"]
        usd = self._usd0.copy()
        y = self._premium0 - self._premium_mean  # the premium's deviation from its mean
        fx_now = spec.fx_krw_per_usd
        fx_sd, noise, log_shift = k["fx_sd"], k["noise"], k["log_shift"]
        while True:
            pool = RetryPool(retry, _POOL)
            # Price: GBM as a running product of per-tick growth factors, carried across blocks.
            steps = _normals(_words(main, g_len), pool)
            steps *= sigma
            steps -= 0.5 * sigma * sigma
            px = _growth(steps)
            del steps
            px[0] *= usd
            np.multiply.accumulate(px, axis=0, out=px)
            usd = px[-1].copy()
            # Premium: y_t = a*y_{t-1} + e_t, e = shock + jump; premium = mean + y.
            e = _normals(_words(main, g_len), pool)
            e *= innov_sd
            jump_words = _words(main, g_len)
            jumps = np.flatnonzero(jump_words < jump_thr) if jump_thr < 4294967296 else np.arange(e.size)
            del jump_words
            if jumps.size:
                owner = jumps % n_sym
                counts = np.bincount(owner, minlength=n_sym)
                fresh, first = pool.take(counts)
                jz = normals(fresh[owner, first[owner] + rank_within(owner, counts)], owner, pool)
                e.reshape(-1)[jumps] += spec.jump_sd_bps * jz
            y, premium = _ou(e, y, a, apow)
            del e
            premium += self._premium_mean
            fx, fx_now = _fx_block(spec, fx_main, fx_retry, fx_now, fx_sd, g_len)
            premium *= 1e-4
            premium += 1.0
            krw_mid = px * fx[:, None]
            krw_mid *= premium
            sizes = []
            for _venue in ("usdt", "krw"):
                size = _normals(_words(main, g_len), pool)
                size *= noise
                size += log_shift
                for r0 in range(0, g_len, _ROWS):
                    size[r0: r0 + _ROWS] = detmath.exp(size[r0: r0 + _ROWS])
                size *= self._depth_usd
                size /= px
                sizes.append(size)
            yield {"fx": fx, "usdt_bid": px * (1.0 - self._usdt_half), "usdt_ask": px * (1.0 + self._usdt_half),
                   "krw_bid": krw_mid * (1.0 - self._krw_half), "krw_ask": krw_mid * (1.0 + self._krw_half),
                   "usdt_size": sizes[0], "krw_size": sizes[1]}

    def _blocks_jit(self) -> Iterator[dict[str, np.ndarray]]:
        """The same blocks from the compiled generator (synth_jit.block): same words, same bits,
        its symbols split over worker threads (synth_workers.py; any split gives these bits)."""
        from src.engine import aot  # the ahead-of-time module (no numba), or synth_jit's @njit block

        eng = aot.engine()
        block = eng.block

        spec, n_sym, g_len = self.spec, len(self.symbols), BLOCK
        main = [_rng(self.seed, s, _MAIN) for s in self.symbols]
        retry = [_rng(self.seed, s, _RETRY) for s in self.symbols]
        fx_main, fx_retry = _rng(self.seed, "__FX__", _MAIN), _rng(self.seed, "__FX__", _RETRY)
        k = self._consts()
        p = np.array([k["sigma"], 0.5 * k["sigma"] * k["sigma"], k["innov_sd"], spec.jump_sd_bps, k["noise"],
                      k["log_shift"], 0.0])  # p[6] = 0: the kernel chooses the price growth
        sym = np.zeros((n_sym, 8))
        sym[:, 0], sym[:, 1], sym[:, 2] = self._usd0, self._premium0 - self._premium_mean, self._premium_mean
        sym[:, 3], sym[:, 4], sym[:, 5] = self._usdt_half, self._krw_half, self._depth_usd
        jump_thr = min(k["jump_thr"], 1 << 32)  # every word is below 2**32: all jump, as the numpy path
        fx_now = spec.fx_krw_per_usd
        tabs = (*tables(), *detmath.jit_tables())
        run = BlockWorkers(block, main, retry, sym, g_len, _POOL, self.workers, eng.draw)
        try:
            while True:
                fx, fx_now = _fx_block(spec, fx_main, fx_retry, fx_now, k["fx_sd"], g_len)
                out = run((tabs, jump_thr, k["apow"], fx), p)
                sym[:, 0], sym[:, 1] = sym[:, 6], sym[:, 7]
                yield {"fx": fx, "usdt_bid": out[0], "usdt_ask": out[1], "krw_bid": out[2], "krw_ask": out[3],
                       "usdt_size": out[4], "krw_size": out[5]}
        finally:
            run.close()


def _fx_block(spec: SyntheticMarketConfig, fx_main: np.random.Generator, fx_retry: np.random.Generator,
              fx_now: float, fx_sd: float, g_len: int) -> tuple[np.ndarray, float]:
    """A block's KRW per USD (a GBM walk, or fixed) and the rate it ends at."""
    if spec.fx_kind is not FxKind.walk:
        return np.full(g_len, spec.fx_krw_per_usd), fx_now
    fpool = RetryPool([fx_retry], 0)
    fz = normals(words_of(fx_main.bit_generator.random_raw((g_len + 1) // 2))[:g_len], 1, fpool)
    fx = _growth(fz * fx_sd)
    fx[0] *= fx_now
    np.multiply.accumulate(fx, out=fx)
    return fx, float(fx[-1])


def _words(main: list[np.random.Generator], g_len: int) -> np.ndarray:
    """The next g_len words of every symbol's main stream, as a (g_len, symbols) array."""
    raw = np.empty((len(main), g_len // 2), dtype=np.uint64)
    for s, g in enumerate(main):
        raw[s] = g.bit_generator.random_raw(g_len // 2)
    return np.ascontiguousarray(words_of(raw).reshape(len(main), g_len).T)


def _normals(words: np.ndarray, pool: RetryPool) -> np.ndarray:
    """`ziggurat.normals` of a (ticks, symbols) array: the fast path _ROWS ticks at a time
    (small work arrays), the retries of the whole array at once (fewer rounds)."""
    out = np.empty(words.shape)
    n_sym = words.shape[1]
    bad = []
    for r0 in range(0, words.shape[0], _ROWS):
        out[r0: r0 + _ROWS], b = fast_path(words[r0: r0 + _ROWS])
        bad.append(b + r0 * n_sym)
    idx = np.concatenate(bad) if bad else np.empty(0, dtype=np.intp)
    if idx.size:
        out.reshape(-1)[idx] = fix(words.reshape(-1)[idx], idx % n_sym, pool)
    return out


def _ou(e: np.ndarray, y0: np.ndarray, a: float, apow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """y_t = a*y_{t-1} + e_t over the rows of e (time), from y0; returns (last y, all y).

    In sub-blocks of _SCAN ticks: z (the recursion from 0 within each sub-block, all
    sub-blocks at once), then each sub-block's start (sequential, one row per sub-block),
    then y = z + a**(k+1) * start. The same recursion, rounded in another order.
    """
    n, n_sym = e.shape
    nb = n // _SCAN
    e3 = e.reshape(nb, _SCAN, n_sym)
    z = np.empty_like(e3)
    z[:, 0] = e3[:, 0]
    for k in range(1, _SCAN):
        np.multiply(z[:, k - 1], a, out=z[:, k])
        z[:, k] += e3[:, k]
    starts = np.empty((nb, n_sym))
    cur = y0
    a_scan = float(apow[-1])
    for b in range(nb):
        starts[b] = cur
        cur = a_scan * cur + z[b, -1]
    y = apow[None, :, None] * starts[:, None, :]
    y += z
    return cur, y.reshape(n, n_sym)
