"""trades.jsonl lines from the kernel's records, compiled: the bytes json.dumps would write.

A float is printed as Python's repr() does, for the values where that is provably a
plain decimal: for the smallest k with round(v, k) == v (exactly, `kernel_round.py_round`), if
the spacing of floats at v is below 10**-k, the k-decimal D nearest to v is the only
decimal of at most k places that reads back as v, so repr(v) is D with its trailing
zeros dropped (positional as repr is between 1e-4 and 1e16). Any other value (and a
NaN or infinity, which json refuses) marks its line for the Python fallback
(json.dumps of the dict), so the output is the reference's for every input.
"""
from __future__ import annotations

from src.engine import jitcache

jitcache.prepare()

import math  # noqa: E402

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from src.engine.kernel_round import _even, _two_prod, py_round  # noqa: E402

_POW10 = np.array([10.0**k for k in range(23)])  # exact floats up to 1e22


@njit(cache=True, inline="always")
def _put(out: np.ndarray, pos: int, src: np.ndarray, a: int, b: int) -> int:
    for j in range(a, b):
        out[pos] = src[j]
        pos += 1
    return pos


_U10 = np.uint64(10)
_U0 = np.uint64(0)


@njit(cache=True, inline="always")
def _n_digits(n: np.uint64) -> int:
    k = 1
    while n >= _U10:
        n //= _U10
        k += 1
    return k


@njit(cache=True, inline="always")
def _digits(out: np.ndarray, pos: int, n: int, width: int) -> int:
    """n (>= 0) in decimal, zero-padded to at least `width` digits."""
    u = np.uint64(n)  # unsigned: division by 10 without Python's floor-division fix-ups
    k = max(_n_digits(u), width)
    for j in range(pos + k - 1, pos - 1, -1):
        out[j] = np.uint8(48 + (u % _U10))
        u //= _U10
    return pos + k


_P10U = np.array([10**i for i in range(20)], dtype=np.uint64)


@njit(cache=True, inline="always")
def _fixed(out: np.ndarray, pos: int, n: int, k: int) -> int:
    """n * 10**-k positionally, as repr: at least one digit each side of the point, no trailing zeros.

    One pass of divisions by 10 (the digit count comes from comparisons): each digit lands at
    its place; the fraction's trailing zeros are written too but left past the returned end."""
    u = np.uint64(n)
    nd = 1
    while nd < 20 and u >= _P10U[nd]:
        nd += 1
    digits = max(nd, k + 1)
    w = digits - k  # digits before the point
    z = 0  # trailing zeros of the fraction
    trailing = True
    for j in range(digits - 1, -1, -1):
        d = u % _U10
        u //= _U10
        if j < w:
            out[pos + j] = np.uint8(48 + d)
        else:
            out[pos + j + 1] = np.uint8(48 + d)
            if trailing:
                if d == _U0:
                    z += 1
                else:
                    trailing = False
    out[pos + w] = 46  # '.'
    if z == k:
        out[pos + w + 1] = 48
        return pos + w + 2
    return pos + w + 1 + (k - z)


@njit(cache=True, inline="always")
def _shortest(a: float, pow10: np.ndarray, hint: int) -> tuple[int, int]:
    """(n, k): the decimal n * 10**-k that repr(a) prints (a > 0 finite); k = -1 if unsure.

    For k = 0, 1, ...: n is the k-place decimal nearest to a (a*10**k exactly as hi + lo);
    the first that reads back as a is the shortest, and the nearest of its length.
    `hint` (the places a value was rounded to) is tried first: if the float spacing at a
    is below 10**-hint and the hint-place decimal reads back as a, it is the only decimal
    of at most that many places that does, so it is repr's (trailing zeros dropped later).
    """
    m, e = math.frexp(a)
    ulp = math.ldexp(1.0, e - 53)
    p = pow10[hint]
    if ulp * p < 1.0:
        hi, lo = _two_prod(a, p)
        if hi < 4503599627370496.0:
            n0 = np.rint(hi)
            r = (hi - n0) + lo
            n = n0 + (1.0 if r > 0.5 else (-1.0 if r < -0.5 else 0.0))
            if n / p == a:
                return int(n), hint
    for k in range(pow10.shape[0]):
        p = pow10[k]
        hi, lo = _two_prod(a, p)
        if hi < 4503599627370496.0:  # 2**52: n and n / p are exact float operations
            n0 = np.rint(hi)
            r = (hi - n0) + lo
            if r == 0.5 or r == -0.5:
                if p * ulp < 1.0:
                    continue  # neither of the two nearest decimals reads back as a
                return 0, -1  # two nearest decimals that may: leave it to Python
            n = n0 + (1.0 if r > 0.5 else (-1.0 if r < -0.5 else 0.0))
            if n / p == a:
                return int(n), k
        elif hi < 4.0e18:  # hi is an integer; the nearest n is hi + rint(lo), off by delta exactly
            rl = np.rint(lo)
            delta = lo - rl  # a*p - n
            half = p * ulp * 0.5  # half the float spacing at a, times p (exact)
            if delta == 0.5 or delta == -0.5:
                if half < 0.5:
                    continue
                return 0, -1
            if m == 0.5 and delta > 0.0:
                half *= 0.5  # below a power of two the spacing halves
            if abs(delta) < half or (abs(delta) == half and _even(math.ldexp(m, 53))):
                return int(hi) + int(rl), k
        else:
            return 0, -1
    return 0, -1


@njit(cache=True, inline="always")
def put_float(out: np.ndarray, pos: int, v: float, pow10: np.ndarray, hint: int) -> int:
    """Write repr(v) at pos; returns the new position, or -1 when only Python can say."""
    if not np.isfinite(v):
        return -1
    if v < 0.0 or (v == 0.0 and np.copysign(1.0, v) < 0.0):
        out[pos] = 45  # '-'
        pos += 1
    a = abs(v)
    if a == 0.0:
        out[pos], out[pos + 1], out[pos + 2] = 48, 46, 48  # 0.0
        return pos + 3
    if a >= 1e16:
        return -1
    n, k = _shortest(a, pow10, hint)
    if k < 0:
        return -1
    if a >= 1e-4:  # positional, as repr prints it
        return _fixed(out, pos, n, k)
    while n % 10 == 0:  # scientific: d[.ddd]e-XX
        n //= 10
        k -= 1
    n_dig, m = 1, n
    while m >= 10:
        m //= 10
        n_dig += 1
    exp = n_dig - 1 - k
    end = _digits(out, pos + 1, n, 0)  # all digits, then move the first one before a '.'
    out[pos] = out[pos + 1]
    if n_dig > 1:
        out[pos + 1] = 46
    else:
        end = pos + 1
    out[end], out[end + 1] = 101, 45  # 'e-'
    return _digits(out, end + 2, -exp, 2)


@njit(cache=True, nogil=True)
def format_lines(vals: np.ndarray, hints: np.ndarray, kinds: np.ndarray, sidx: np.ndarray, tab: np.ndarray,
                 tab_off: np.ndarray, keys: np.ndarray, key_off: np.ndarray, out: np.ndarray, ends: np.ndarray) -> int:
    """One JSON line per trade into `out`; ends[i] = end of line i, or -1 (line left to Python).

    Field f of the line: key bytes keys[key_off[f]:key_off[f+1]], then, if kinds[f] >= 0, the
    float vals[i, kinds[f]] (rounded to hints[kinds[f]] places, a guess), else the string
    table entry sidx[i, -kinds[f] - 1].
    """
    pow10 = _POW10
    pos = 0
    n_f = kinds.shape[0]
    for i in range(vals.shape[0]):
        start = pos
        ok = True
        for f in range(n_f):
            pos = _put(out, pos, keys, key_off[f], key_off[f + 1])
            kf = kinds[f]
            if kf >= 0:
                pos = put_float(out, pos, vals[i, kf], pow10, hints[kf])
                if pos < 0:
                    ok = False
                    break
            else:
                j = sidx[i, -kf - 1]
                pos = _put(out, pos, tab, tab_off[j], tab_off[j + 1])
        if ok:
            pos = _put(out, pos, keys, key_off[n_f], key_off[n_f + 1])
            ends[i] = pos
        else:
            pos = start
            ends[i] = -1
    return pos
