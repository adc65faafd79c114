"""The compiled block generator run over worker threads: each worker owns a contiguous run of
symbols (its generators, random words, retry pool and scratch) and writes its columns of
the block; the bits never depend on how many workers there are.

Symbols are independent (one PCG64 per (seed, symbol, stream), a retry pool per symbol),
except for one choice made over the whole block: the price growth takes the Taylor
polynomial only when every symbol's every step is within 1/256 (synth_jit.block). Each
worker reports which it took; when they differ, the Taylor workers run again with the
exp forced (their inputs are unchanged; in practice steps are ~30 sigma from the bound and
this never happens). The words are drawn in the workers too, by compiled code (`draw`,
src/market/pcg_jit.py: numpy's PCG64 words exactly, from each generator's state read once and
carried across blocks, about twice as fast as `random_raw`); it and the block release the GIL,
so two workers use two cores.

MARKET_WORKERS=N sets the number of workers (1: everything in the caller's thread); the
default is one per available CPU, at most MAX_WORKERS, with at least
MIN_SYMBOLS_PER_WORKER symbols each.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np

from src.market.errors import MarketInputError
from src.market.ziggurat import words_of

ENV = "MARKET_WORKERS"
MAX_WORKERS = 4
MIN_SYMBOLS_PER_WORKER = 8
TAYLOR, EXP = -1, -2  # what synth_jit.block returns when it is done (the growth it took)


def default_workers(n_sym: int) -> int:
    """Workers for n_sym symbols: MARKET_WORKERS, else CPUs (capped) with enough symbols each."""
    raw = os.environ.get(ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise MarketInputError(f"{ENV}={raw!r}: expected a whole number of worker threads >= 1")
        return min(int(raw), max(n_sym, 1))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, MAX_WORKERS, n_sym // MIN_SYMBOLS_PER_WORKER))


def pcg_states(gens: Sequence[np.random.Generator]) -> np.ndarray:
    """(len(gens), 4) uint64: each PCG64 generator's (state hi, lo, inc hi, lo), what pcg_jit.draw
    goes on from (the generator objects are not advanced: the workers own the streams from here)."""
    st = np.empty((len(gens), 4), dtype=np.uint64)
    mask = (1 << 64) - 1
    for i, g in enumerate(gens):
        d = g.bit_generator.state
        if d["bit_generator"] != "PCG64":
            raise ValueError(f"generator {i}: bit generator {d['bit_generator']!r}, expected 'PCG64'")
        s, inc = d["state"]["state"], d["state"]["inc"]
        st[i] = (s >> 64, s & mask, inc >> 64, inc & mask)
    return st


class _Share:
    """One worker's symbols [s0, s1): their streams' states, words, pool counters and scratch."""

    def __init__(self, s0: int, s1: int, main: Sequence[np.random.Generator], retry: Sequence[np.random.Generator],
                 sym: np.ndarray, g_len: int, pool: int, draw: Callable[..., None]) -> None:
        n = s1 - s0
        self.s0, self.s1, self.pool, self.g_len, self.words = s0, s1, pool, g_len, draw
        self.main, self.retry = pcg_states(main[s0:s1]), pcg_states(retry[s0:s1])
        self.sym = sym[s0:s1]  # a view: the kernel writes the carried usd, y of these symbols
        self.mw64 = np.empty((n, 5 * g_len // 2), dtype=np.uint64)  # reused by every block
        self.rw64 = np.empty((n, pool), dtype=np.uint64)
        self.rw = words_of(self.rw64)
        self.mw = words_of(self.mw64)
        self.have = np.empty(n, dtype=np.int64)
        self.cap = np.empty(n, dtype=np.int64)
        self.work = np.empty((4, n, g_len))  # the kernel's scratch

    def draw(self) -> None:
        """This block's words: price, premium, jump, usdt depth, krw depth (main), the retry pool."""
        self.words(self.main, self.mw64, 5 * self.g_len // 2)
        self.words(self.retry, self.rw64, self.pool)
        self.mw, self.rw = words_of(self.mw64), words_of(self.rw64)  # views (copies on a big-endian machine)
        self.have[:] = 2 * self.pool

    def run(self, block: Callable[..., int], fixed: tuple[Any, ...], p: np.ndarray, out: np.ndarray) -> int:
        """The kernel over these symbols, drawing more retry words for a symbol whose pool must grow
        (as the numpy path's pool would have), until it is done; returns TAYLOR or EXP."""
        tabs, jump_thr, apow, fx = fixed
        cols = out[:, :, self.s0:self.s1]
        while (short := block(self.mw, self.rw, self.have, self.cap, 2 * self.pool, tabs, p, jump_thr, apow,
                              self.sym, fx, self.work, cols)) >= 0:
            need = int(self.cap[short])
            if need > self.rw.shape[1]:
                grown = np.zeros((self.rw.shape[0], need), np.uint32)
                grown[:, : self.rw.shape[1]] = self.rw
                self.rw = grown
            extra = np.empty((1, (need - int(self.have[short])) // 2), dtype=np.uint64)
            self.words(self.retry[short: short + 1], extra, extra.shape[1])  # a view: advances the state
            self.rw[short, self.have[short]: need] = words_of(extra[0])
            self.have[short] = need
        assert np.array_equal(self.cap, self.have), "retry streams out of step with the numpy path"
        return short

    def step(self, block: Callable[..., int], fixed: tuple[Any, ...], p: np.ndarray, out: np.ndarray) -> int:
        self.draw()
        return self.run(block, fixed, p, out)


class BlockWorkers:
    """Runs `block` for every symbol of a block, split over `workers` threads (the caller's
    thread is one of them), each drawing its symbols' words with `draw` (pcg_jit.draw's
    signature). close() stops the threads."""

    def __init__(self, block: Callable[..., int], main: Sequence[np.random.Generator],
                 retry: Sequence[np.random.Generator], sym: np.ndarray, g_len: int, pool: int, workers: int,
                 draw: Callable[..., None]) -> None:
        n_sym = len(main)
        workers = max(1, min(workers, n_sym))
        bounds = [n_sym * i // workers for i in range(workers + 1)]
        self.block, self.g_len, self.n_sym = block, g_len, n_sym
        self.shares = [_Share(a, b, main, retry, sym, g_len, pool, draw) for a, b in zip(bounds, bounds[1:])]
        self.pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="market") if workers > 1 else None

    def __call__(self, fixed: tuple[Any, ...], p: np.ndarray) -> np.ndarray:
        """One block: out[f, t, s] (synth_jit.block's fields); p[6] must be 0 (the growth is chosen here)."""
        out = np.empty((6, self.g_len, self.n_sym))
        codes = self._each(self.shares, "step", fixed, p, out)
        if EXP in codes and TAYLOR in codes:  # the growth is chosen over the whole block: exp for all
            forced = p.copy()
            forced[6] = 1.0
            again = [sh for sh, c in zip(self.shares, codes) if c == TAYLOR]
            assert all(c == EXP for c in self._each(again, "run", fixed, forced, out))
        return out

    def _each(self, shares: list[_Share], method: str, *args: Any) -> list[int]:
        """getattr(share, method)(block, *args) for every share: the first here, the rest in the pool."""
        futures = [self.pool.submit(getattr(sh, method), self.block, *args) for sh in shares[1:]] \
            if self.pool is not None else []
        first = [getattr(sh, method)(self.block, *args) for sh in shares[:1 if futures else len(shares)]]
        return first + [f.result() for f in futures]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
