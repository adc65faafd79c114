"""Standard normal variates from 32-bit random words, vectorised, with no libm call.

Marsaglia & Tsang's ziggurat (J. Stat. Softw. 5(8), 2000) with 256 layers, as numpy's
float32 sampler lays out a word: bits 0-7 pick the layer, bit 8 the sign, bits 9-31 the
23-bit magnitude. About 98.5 % of words land inside their layer's rectangle and cost a
multiply; the rest (wedges and the tail beyond r = 3.654) take further words from a
per-symbol retry pool, in a fixed order, with `detmath.exp`/`log` deciding. The tables are
built with `detmath` too, so every CPU gets the same variates for the same words.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from src.market import detmath

_R = 3.6541528853610088  # start of the tail for 256 layers
_V = 0.00492867323399  # area of each layer
_M = float(1 << 23)


@lru_cache(maxsize=1)
def tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k, w, f): magnitude bounds (int64), widths per unit magnitude and densities, 512
    entries each: index = layer + 256*sign, the width carrying the sign."""
    k, w, f = [0] * 256, [0.0] * 256, [0.0] * 256
    dn = tn = _R
    fr = detmath.exp_s(-0.5 * dn * dn)
    q = _V / fr
    k[0], k[1] = int(math.floor(dn / q * _M)), 0
    w[0], w[255] = q / _M, dn / _M
    f[0], f[255] = 1.0, fr
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * detmath.log_s(_V / dn + detmath.exp_s(-0.5 * dn * dn)))
        k[i + 1] = int(math.floor(dn / tn * _M))
        tn = dn
        f[i] = detmath.exp_s(-0.5 * dn * dn)
        w[i] = dn / _M
    kk = np.array(k + k, dtype=np.int64)
    ww = np.array(w + [-x for x in w], dtype=np.float64)
    ff = np.array(f + f, dtype=np.float64)
    return kk, ww, ff


def _uniform(u: np.ndarray) -> np.ndarray:
    """(0, 1) from 32-bit words, exact: (u + 0.5) / 2**32."""
    return (u.astype(np.float64) + 0.5) * (1.0 / 4294967296.0)


class RetryPool:
    """Fresh 32-bit words per symbol from that symbol's own generator, handed out in order.

    `prefill` raw 64-bit draws per symbol are taken up front (one call each); a symbol that
    needs more draws more from its own generator only, so how many words one symbol uses
    never moves another symbol's stream.
    """

    def __init__(self, rngs: list[np.random.Generator], prefill: int) -> None:
        self.rngs = rngs
        n = len(rngs)
        self.buf = np.zeros((n, 2 * prefill), dtype=np.uint32)
        for s, g in enumerate(rngs):
            if prefill:
                self.buf[s] = words_of(g.bit_generator.random_raw(prefill))
        self.cap = np.full(n, 2 * prefill, dtype=np.int64)
        self.ptr = np.zeros(n, dtype=np.int64)

    def take(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reserve counts[s] words for each symbol s: (buffer, start column per symbol)."""
        need = self.ptr.copy()
        need[: counts.size] += counts
        short = np.flatnonzero(need > self.cap)
        if short.size:
            extra = (need[short] - self.cap[short] + 65) // 2  # raw draws each short symbol takes
            width = int((self.cap[short] + 2 * extra).max())
            if width > self.buf.shape[1]:
                self.buf = np.concatenate([self.buf, np.zeros((self.buf.shape[0], width - self.buf.shape[1]),
                                                              dtype=np.uint32)], axis=1)
            for s, x in zip(short.tolist(), extra.tolist()):
                self.buf[s, self.cap[s]: self.cap[s] + 2 * x] = words_of(self.rngs[s].bit_generator.random_raw(x))
                self.cap[s] += 2 * x
        start, self.ptr = self.ptr, need
        return self.buf, start


def rank_within(owner: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """For each element, how many earlier elements have the same owner (counts = bincount)."""
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order = np.argsort(owner, kind="stable")
    rank = np.empty(owner.size, dtype=np.intp)
    rank[order] = np.arange(owner.size) - first[owner[order]]
    return rank


def words_of(raw: np.ndarray) -> np.ndarray:
    """uint32 words of uint64 draws, low half first, on any byte order."""
    return raw.astype("<u8", copy=False).view("<u4")


def normals(words: np.ndarray, owner: int | np.ndarray, pool: RetryPool) -> np.ndarray:
    """float64 normals, one per uint32 word of `words` (any shape).

    `owner`: each word's symbol, as an array of words' shape, or an int S when the last axis
    of `words` is the symbol (owner = flat index % S). Retries are served per symbol in the
    order the rejected words appear in `words` (C order), so a symbol's variates depend only
    on its own words and its own retry stream.
    """
    out, bad = fast_path(words)
    if bad.size:
        own = bad % owner if isinstance(owner, int) else np.asarray(owner).reshape(-1)[bad]
        out.reshape(-1)[bad] = fix(words.reshape(-1)[bad], own, pool)
    return out


def fast_path(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The variates of words that land in their layer's rectangle, and the flat indices of
    the others (their values are left to `fix`)."""
    kt, wt, _ = tables()
    n = words.size
    flat_w = words.reshape(-1)
    ju, ji, mag, flag = _scratch(n)
    out = np.empty(words.shape)
    flat = out.reshape(-1)
    np.bitwise_and(flat_w, 511, out=ju)
    ji[...] = ju
    np.right_shift(flat_w, 9, out=ju)
    mag[...] = ju
    np.take(_ktf(), ji, out=flat, mode="clip")  # clip: unbuffered; indices are < 512
    bad = np.flatnonzero(np.greater_equal(mag, flat, out=flag))
    np.take(wt, ji, out=flat, mode="clip")
    flat *= mag
    return out, bad


def fix(w: np.ndarray, own: np.ndarray, pool: RetryPool) -> np.ndarray:
    """The variates of the words `fast_path` left out (owners `own`), in their order."""
    kt, wt, ft = tables()
    return _fix(w, own, pool, kt, wt, ft)


_SCRATCH: dict[int, tuple[np.ndarray, ...]] = {}


def _scratch(n: int) -> tuple[np.ndarray, ...]:
    """Work arrays reused across calls of one size (fresh multi-MB arrays cost page faults)."""
    if n not in _SCRATCH:
        if len(_SCRATCH) > 2:
            _SCRATCH.clear()
        _SCRATCH[n] = (np.empty(n, np.uint32), np.empty(n, np.intp), np.empty(n), np.empty(n, bool))
    return _SCRATCH[n]


@lru_cache(maxsize=1)
def _ktf() -> np.ndarray:
    return tables()[0].astype(np.float64)  # magnitude bounds as floats (exact: < 2**23)


def _fix(w: np.ndarray, own: np.ndarray, pool: RetryPool, kt: np.ndarray,
         wt: np.ndarray, ft: np.ndarray) -> np.ndarray:
    """Marsaglia & Tsang's `nfix` for the rejected words, vectorised round by round; each
    pending variate takes three words per round (two uniforms and a fresh word)."""
    res = np.empty(w.size)
    todo = np.arange(w.size)
    word = w.astype(np.int64)
    n_sym = int(own.max()) + 1
    while todo.size:
        counts = np.bincount(own[todo], minlength=n_sym)
        fresh, start = pool.take(3 * counts)
        s = own[todo]
        col = start[s] + 3 * rank_within(s, counts)
        u1 = _uniform(fresh[s, col])
        u2 = _uniform(fresh[s, col + 1])
        nw = fresh[s, col + 2].astype(np.int64)
        cur = word[todo]
        j = cur & 511
        layer = j & 255
        x = (cur >> 9).astype(np.float64) * wt[j]
        done = np.zeros(todo.size, dtype=bool)
        val = np.zeros(todo.size)
        tail = layer == 0
        if tail.any():  # x = -log(u1)/r, y = -log(u2); accept when 2y >= x*x; value r + x
            xt = -detmath.log(u1[tail]) / _R
            yt = -detmath.log(u2[tail])
            ok = yt + yt >= xt * xt
            sign = np.where(j[tail] >= 256, -1.0, 1.0)
            idx = np.flatnonzero(tail)
            done[idx[ok]] = True
            val[idx[ok]] = sign[ok] * (_R + xt[ok])
        wedge = ~tail
        if wedge.any():
            xw = x[wedge]
            lw = layer[wedge]
            ok = ft[lw] + u1[wedge] * (ft[lw - 1] - ft[lw]) < detmath.exp(-0.5 * xw * xw)
            idx = np.flatnonzero(wedge)
            done[idx[ok]] = True
            val[idx[ok]] = xw[ok]
            # a failed wedge starts over with a fresh word; it may land in a rectangle at once
            again = idx[~ok]
            fw = nw[again]
            fj = fw & 511
            fm = fw >> 9
            inside = fm < kt[fj]
            done[again[inside]] = True
            val[again[inside]] = fm[inside].astype(np.float64) * wt[fj[inside]]
            word[todo[again[~inside]]] = fw[~inside]
        res[todo[done]] = val[done]
        todo = todo[~done]
    return res
