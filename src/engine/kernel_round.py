"""Python's round(x, nd), bit for bit, as Numba functions: the kernel (kernel.py) rounds every
trade value with it (the kill switch sums the rounded pnl_usd) and kernel_json.py prints floats
with it. Exact float arithmetic only: Dekker's product with no fused multiply-add, no `frem`.
"""
from __future__ import annotations

from src.engine import jitcache

jitcache.prepare()  # before numba is imported: the cache folder and key (see jitcache.py)

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

_TWO53 = 9007199254740992.0


@njit(cache=True)
def _two_prod(a: float, b: float) -> tuple[float, float]:
    """a*b exactly as p + e (Dekker, no FMA); no overflow or underflow for the callers' ranges."""
    p = a * b
    t = 134217729.0 * a
    ah = t - (t - a)
    al = a - ah
    t = 134217729.0 * b
    bh = t - (t - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


@njit(cache=True)
def _even(n: float) -> bool:
    """n (a whole float below 2**53) is even; exact, and with no float remainder (LLVM expands
    `frem` with a fused multiply-add on FMA CPUs: exact, but it would blur the no-FMA check)."""
    return np.floor(n * 0.5) * 2.0 == n


@njit(cache=True)
def py_round(x: float, p: float) -> float:
    """Python's round(x, nd) with p = 10.0**nd (0 <= nd <= 15): the correctly rounded decimal
    (half to even), converted back to the nearest float; the sign survives (-0.0)."""
    if not np.isfinite(x):
        return x
    a = abs(x)
    hi = a * p
    if hi >= _TWO53:
        return x  # x is then the nearest float to its own rounding (spacing of x > 1/p)
    if hi < 0.25:
        return np.copysign(0.0, x)
    if hi < 1099511627776.0:  # 2**40: hi is a*p within ulp(hi)/2 <= 2**-13, so unless the fraction is
        n = np.floor(hi)  # within 1e-3 of a tie, it alone says which way a*p rounds (exact: f = hi - n)
        f = hi - n
        if f < 0.499 or f > 0.501:
            return np.copysign((n + 1.0 if f > 0.5 else n) / p, x)
    hi, lo = _two_prod(a, p)  # a*p == hi + lo exactly, |lo| <= ulp(hi)/2
    n = np.floor(hi)
    f = hi - n  # exact
    if hi >= 4503599627370496.0:  # 2**52: hi is an integer, only lo = +-0.5 is a tie
        if lo == 0.5:
            n = n if _even(n) else n + 1.0
        elif lo == -0.5:
            n = n if _even(n) else n - 1.0
    elif f > 0.5 or (f == 0.5 and (lo > 0.0 or (lo == 0.0 and not _even(n)))):
        n += 1.0
    if n >= _TWO53:
        return x
    return np.copysign(n / p, x)
