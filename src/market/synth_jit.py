"""The synthetic market's block generator compiled with Numba: the same bits as the numpy path.

`block()` computes one BLOCK of ticks for a run of symbols with exactly the float64 operations
of synthetic.py / ziggurat.py / detmath.py, in the same order per element: ziggurat normals (fast
path, then Marsaglia & Tsang's fix in rounds of three retry words per pending variate, a retry
pool per symbol with the same refill sizes), the GBM growth (Taylor polynomial or detmath exp,
decided over the whole block), the running product, jumps, the OU recursion in sub-blocks,
premium, books and lognormal depth. Only + - * / and table look-ups, no libm call (rint by
adding and subtracting 1.5 * 2**52; frexp is exact). No fastmath, so LLVM contracts no
multiply-add into an FMA (tests check the machine code); error_model="numpy" (x/0 is inf/nan).

Random words are drawn by the caller (numpy's PCG64); a block that would need more retry words
than were handed in returns the symbol and the pool size it needs: the caller draws them and runs
the block again (the kernel changes no input). Cached by src/engine/jitcache.py (its key covers
this file); imported only when a market is big enough (synthetic.py).
"""
from __future__ import annotations

import math

from src.engine import jitcache

jitcache.prepare()  # before numba is imported: the cache folder and key (see jitcache.py)

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

_OPTS = {"cache": True, "error_model": "numpy", "fastmath": False, "nogil": True}
_U32 = 1.0 / 4294967296.0
_R = 3.6541528853610088  # ziggurat tail start (ziggurat._R)
_RND = 6755399441055744.0  # 1.5 * 2**52: (y + _RND) - _RND = rint(y) for |y| < 2**51 (round to nearest)


@njit(**_OPTS)
def taylor5(v: float) -> float:
    """e**v by its degree-5 Taylor polynomial in Horner form (|v| small), in detmath's order."""
    return ((((v * (1.0 / 120.0) + 1.0 / 24.0) * v + 1.0 / 6.0) * v + 0.5) * v + 1.0) * v + 1.0


@njit(**_OPTS)
def exp_core(x: float, tf: np.ndarray, p2: np.ndarray, c: np.ndarray) -> float:
    """detmath.exp for |x| <= 708. c = (inv, hi, lo); tf = 2**(j/256); p2[m + 1022] = 2**m."""
    kf = x * c[0]
    kf += _RND  # |kf| < 2**51: rounds to an integer, ties to even (np.rint's bits, without libm's rint call)
    kf -= _RND
    r = x - kf * c[1]
    r -= kf * c[2]
    q = taylor5(r)
    ki = np.int64(kf)
    return (tf[ki & 255] * p2[(ki >> 8) + 1022]) * q  # the product of the two is exact (normal range)


@njit(**_OPTS)
def exp1(x: float, tf: np.ndarray, p2: np.ndarray, c: np.ndarray) -> float:
    """detmath.exp of one value, edges included."""
    if x != x:
        return np.nan
    if x >= -708.0 and x <= 708.0:
        return exp_core(x, tf, p2, c)
    if x > 709.782712893384:
        return np.inf
    if x < -745.1332191019412:
        return 0.0
    h = exp_core(x * 0.5, tf, p2, c)
    return h * h


@njit(**_OPTS)
def log1(x: float, c: np.ndarray) -> float:
    """detmath.log of one positive finite value. c[3], c[4] = ln2 hi, lo."""
    m, e = math.frexp(x)
    if m < 0.7071067811865476:
        m = m * 2.0
        e -= 1
    ef = np.float64(e)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    acc = 1.0 / 25.0
    for k in range(11, -1, -1):
        acc = acc * s2 + 1.0 / (2 * k + 1)
    return ef * c[3] + (2.0 * s * acc + ef * c[4])


@njit(**_OPTS)
def _take(s: int, n: int, ptr: np.ndarray, cap: np.ndarray, have: np.ndarray) -> int:
    """RetryPool.take for one symbol: the start column, or -1 when more words must be drawn
    first (cap[s] then holds the pool size the numpy path would have drawn)."""
    need = ptr[s] + n
    if need > cap[s]:
        cap[s] += 2 * ((need - cap[s] + 65) // 2)
        if cap[s] > have[s]:
            return -1
    start = ptr[s]
    ptr[s] = need
    return start


@njit(**_OPTS)
def _fix(s: int, pos: np.ndarray, cur: np.ndarray, n: int, out: np.ndarray, rw: np.ndarray, ptr: np.ndarray,
         cap: np.ndarray, have: np.ndarray, kt: np.ndarray, wt: np.ndarray, ft: np.ndarray, tf: np.ndarray,
         p2: np.ndarray, c: np.ndarray) -> bool:
    """ziggurat._fix for symbol s: out[pos[i]] for the n rejected words cur[i], in rounds."""
    while n > 0:
        start = _take(s, 3 * n, ptr, cap, have)
        if start < 0:
            return False
        m = 0
        for i in range(n):
            col = start + 3 * i
            u1 = (np.float64(rw[s, col]) + 0.5) * _U32
            w = cur[i]
            j = w & 511
            layer = j & 255
            if layer == 0:
                u2 = (np.float64(rw[s, col + 1]) + 0.5) * _U32
                xt = -log1(u1, c) / _R
                yt = -log1(u2, c)
                if yt + yt >= xt * xt:
                    out[pos[i]] = (-1.0 if j >= 256 else 1.0) * (_R + xt)
                    continue
            else:
                x = np.float64(w >> 9) * wt[j]
                if ft[layer] + u1 * (ft[layer - 1] - ft[layer]) < exp1(-0.5 * x * x, tf, p2, c):
                    out[pos[i]] = x
                    continue
                fw = np.int64(rw[s, col + 2])
                fj = fw & 511
                fm = fw >> 9
                if fm < kt[fj]:
                    out[pos[i]] = np.float64(fm) * wt[fj]
                    continue
                w = fw
            pos[m] = pos[i]
            cur[m] = w
            m += 1
        n = m
    return True


@njit(**_OPTS)
def _normals(s: int, words: np.ndarray, out: np.ndarray, pos: np.ndarray, cur: np.ndarray, rw: np.ndarray,
             ptr: np.ndarray, cap: np.ndarray, have: np.ndarray, kt: np.ndarray, wt: np.ndarray, ft: np.ndarray,
             tf: np.ndarray, p2: np.ndarray, c: np.ndarray) -> bool:
    """ziggurat.normals of one symbol's words (fast path, then the fix in word order)."""
    n = 0
    for t in range(words.shape[0]):
        w = np.int64(words[t])
        j = w & 511
        mag = w >> 9
        if mag >= kt[j]:
            pos[n] = t
            cur[n] = w
            n += 1
        else:
            out[t] = wt[j] * np.float64(mag)
    return _fix(s, pos, cur, n, out, rw, ptr, cap, have, kt, wt, ft, tf, p2, c)


@njit(**_OPTS)
def block(mw: np.ndarray, rw: np.ndarray, have: np.ndarray, cap: np.ndarray, pool0: int, tabs: tuple,
          p: np.ndarray, jump_thr: int, apow: np.ndarray, sym: np.ndarray, fx: np.ndarray, work: np.ndarray,
          out: np.ndarray) -> int:
    """One block for the symbols given (pools start with pool0 words). mw[s]: the symbol's 5*B main
    words (price, premium, jump, usdt depth, krw depth); rw[s]: its first have[s] retry words; sym[s] =
    (usd, y, premium mean, usdt half, krw half, depth usd); p = (sigma, 0.5*sigma*sigma, innov_sd,
    jump_sd, noise, log_shift, force_exp). Writes out[f, t, s] (f: usdt bid/ask, krw bid/ask, usdt/krw
    size; out may be a worker's columns of a wider array) and the carried usd, y to sym[s, 6:8].
    Returns -1 (price growth by the Taylor polynomial: every step within 1/256), -2 (detmath exp: a
    step beyond, or force_exp != 0; synth_workers.py reruns the -1 workers of such a block with it, so
    the bits never depend on the split), or the first symbol whose pool must grow to cap[s] words
    (then nothing is final). work: (4, symbols, B) symbol-major scratch: price, premium, depths."""
    kt, wt, ft, tf, p2, c = tabs
    n_sym = mw.shape[0]
    b = fx.shape[0]
    ptr = np.zeros(n_sym, np.int64)
    cap[:] = pool0  # the numpy path's prefill, in words
    pos = np.empty(b, np.int64)
    cur = np.empty(b, np.int64)
    col = np.empty(b)
    z = np.empty(b)
    px = work[0]
    taylor = p[6] == 0.0  # p[6] != 0: detmath exp whatever the steps (another worker's symbols needed it)
    for s in range(n_sym):  # price normals of every symbol first: the growth is chosen over the block
        if not _normals(s, mw[s, 0:b], col, pos, cur, rw, ptr, cap, have, kt, wt, ft, tf, p2, c):
            return s
        for t in range(b):
            v = col[t] * p[0]
            v -= p[1]
            px[s, t] = v
            if not (v >= -1.0 / 256.0 and v <= 1.0 / 256.0):
                taylor = False
    scan = apow.shape[0]
    a = apow[0]
    a_scan = apow[scan - 1]
    for s in range(n_sym):
        prev = sym[s, 0]  # the running product (prev * q == q * prev: the same bits either way)
        if taylor:
            for t in range(b):
                prev *= taylor5(px[s, t])
                px[s, t] = prev
        else:
            for t in range(b):
                prev *= exp1(px[s, t], tf, p2, c)
                px[s, t] = prev
        sym[s, 6] = prev
        # premium shock, then jumps (sizes from the retry pool), then the OU recursion
        if not _normals(s, mw[s, b:2 * b], col, pos, cur, rw, ptr, cap, have, kt, wt, ft, tf, p2, c):
            return s
        for t in range(b):
            col[t] *= p[2]
        n_j = 0
        for t in range(b):
            if np.int64(mw[s, 2 * b + t]) < jump_thr:
                pos[n_j] = t
                n_j += 1
        if n_j:
            start = _take(s, n_j, ptr, cap, have)
            if start < 0:
                return s
            n_bad = 0
            for i in range(n_j):
                w = np.int64(rw[s, start + i])
                j = w & 511
                mag = w >> 9
                if mag >= kt[j]:
                    cur[n_bad] = w
                    z[n_bad] = np.float64(pos[i])  # the tick, kept while pos is reused by the fix
                    n_bad += 1
                else:
                    col[pos[i]] += p[3] * (wt[j] * np.float64(mag))
            if n_bad:
                bad_pos = np.arange(n_bad)
                jz = np.empty(n_bad)
                ticks = z[:n_bad].copy()
                if not _fix(s, bad_pos, cur, n_bad, jz, rw, ptr, cap, have, kt, wt, ft, tf, p2, c):
                    return s
                for i in range(n_bad):
                    col[np.int64(ticks[i])] += p[3] * jz[i]
        y = sym[s, 1]
        for b0 in range(0, b, scan):  # synthetic._ou: z within each sub-block (every sub-block's
            z[b0] = col[b0]  # k-th tick at once: independent recursions, no latency chain)
        for k in range(1, scan):
            for b0 in range(0, b, scan):
                v = z[b0 + k - 1] * a
                v += col[b0 + k]
                z[b0 + k] = v
        for b0 in range(0, b, scan):  # then each sub-block's start, in order
            for k in range(scan):
                v = apow[k] * y
                v += z[b0 + k]
                col[b0 + k] = v
            y = a_scan * y + z[b0 + scan - 1]
        sym[s, 7] = y
        pm = sym[s, 2]
        for t in range(b):  # the premium factor 1 + (mean + y) * 1e-4
            v = col[t] + pm
            v *= 1e-4
            v += 1.0
            work[1, s, t] = v
        for f in range(2):  # depth: usdt, then krw; the lognormal factor exp(noise*z - noise**2/2)
            d = work[2 + f, s]
            if not _normals(s, mw[s, (3 + f) * b:(4 + f) * b], d, pos, cur, rw, ptr, cap, have, kt,
                            wt, ft, tf, p2, c):
                return s
            inside = True
            for t in range(b):
                v = d[t] * p[4]
                v += p[5]
                d[t] = v
                inside &= v >= -708.0 and v <= 708.0
            dep = sym[s, 5]  # depth in USD = depth_usd * the lognormal factor
            if inside:  # branch-free: LLVM may vectorise it (the same IEEE operations per element)
                for t in range(b):
                    d[t] = exp_core(d[t], tf, p2, c) * dep
            else:
                for t in range(b):
                    d[t] = exp1(d[t], tf, p2, c) * dep
    # books and depth, tick by tick: the outputs are written in their (tick, symbol) order and
    # the symbol-major work read across (8 ticks share a cache line)
    half = np.empty((4, n_sym))  # the spread factors, once per symbol
    for s in range(n_sym):
        half[0, s], half[1, s], half[2, s], half[3, s] = 1.0 - sym[s, 3], 1.0 + sym[s, 3], 1.0 - sym[s, 4], 1.0 + sym[s, 4]
    for t in range(b):
        ft_ = fx[t]
        for s in range(n_sym):
            x = px[s, t]
            mid = x * ft_
            mid *= work[1, s, t]
            out[0, t, s] = x * half[0, s]
            out[1, t, s] = x * half[1, s]
            out[2, t, s] = mid * half[2, s]
            out[3, t, s] = mid * half[3, s]
            out[4, t, s] = work[2, s, t] / x
            out[5, t, s] = work[3, s, t] / x
    return -1 if taylor else -2


def warm_up() -> None:
    """Load (the first time ever, compile) `block` with tiny inputs of the real types, so a
    run can do it in a thread while it records provenance (src/runner/engines.py)."""
    from src.market import detmath, pcg_jit, ziggurat

    pcg_jit.warm_up()  # the workers' compiled PCG64 words too

    b, n = 60, 1
    words = np.arange(5 * b * n, dtype=np.uint32).reshape(n, 5 * b) * np.uint32(2654435761)
    rw = (np.arange(1024 * n, dtype=np.uint32) * np.uint32(2246822519)).reshape(n, 1024)
    sym = np.ones((n, 8))
    out = np.empty((6, b, n + 1))[:, :, :n]  # a worker's columns: the block is typed for views ("A" layout)
    block(words, rw, np.full(n, 1024, dtype=np.int64), np.empty(n, dtype=np.int64), 1024,
          (*ziggurat.tables(), *detmath.jit_tables()), np.full(7, 1e-3), 1 << 20, np.full(b, 0.5), sym,
          np.ones(b), np.empty((4, n, b)), out)
