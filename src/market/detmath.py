"""exp and log from + - * / and sqrt only, so every CPU rounds them alike.

numpy picks SIMD kernels for `np.exp`/`np.log`/`np.power` by CPU (AVX-512, AVX2 or
baseline give different last bits), and glibc's libm picks FMA variants of exp, log and
pow by CPU. Elementwise + - * / and sqrt are correctly rounded by IEEE 754 wherever they
run, as are rint, comparisons, integer operations and conversions of integers below 2**53,
so the functions here give the same bits on every machine. Accuracy is about 1 ulp
(a few ulp for `log`), far inside anything the market model can notice.

exp: x = k*ln2/256 + r (|r| <= ln2/512), exp(x) = 2**(k//256) * 2**((k%256)/256) * e**r with
e**r from its degree-5 Taylor polynomial (truncation error < 1e-19 relative) and the 256
table values computed with Python's decimal module (software arithmetic) at 40 digits.
log: x = 2**e * m with sqrt(1/2) <= m < sqrt(2), log m = 2*atanh((m-1)/(m+1)) by its series.
"""
from __future__ import annotations

import decimal
import math

import numpy as np

_N = 256  # table size of exp
_CTX = decimal.Context(prec=40)
_LN2 = decimal.Decimal("0.6931471805599453094172321214581765680755")


def _tables() -> tuple[np.ndarray, float, float, float, float, float]:
    g = decimal.Decimal(2)
    for _ in range(8):  # 2**(1/256) by eight square roots (correctly rounded in decimal)
        g = _CTX.sqrt(g)
    p, vals = decimal.Decimal(1), []
    for _ in range(_N):
        vals.append(float(p))  # 2**(j/256) in [1, 2), correctly rounded from 40 digits
        p = _CTX.multiply(p, g)
    # exponent field 1023 and the mantissa, less (j << 44): exp() adds k << 44 back (k = 256*m + j)
    bits = np.array(vals).view(np.int64) - (np.arange(_N, dtype=np.int64) << 44)
    step = _CTX.divide(_LN2, decimal.Decimal(_N))
    hi = float(step)
    hi = math.ldexp(math.floor(math.ldexp(hi, 40)), -40)  # k*hi is exact for |k| < 2**20
    lo = float(_CTX.subtract(step, decimal.Decimal(hi)))
    inv = float(_CTX.divide(decimal.Decimal(_N), _LN2))
    ln2_hi = math.ldexp(math.floor(math.ldexp(float(_LN2), 32)), -32)  # e*ln2_hi exact for |e| < 2**20
    ln2_lo = float(_CTX.subtract(_LN2, decimal.Decimal(ln2_hi)))
    return bits, inv, hi, lo, ln2_hi, ln2_lo


_TBITS, _INV, _HI, _LO, _LN2_HI, _LN2_LO = _tables()
_C = (1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0)  # e**r, highest power first
_SAFE = 708.0  # beyond |x| = 708 the result can leave the normal range: the slow path


def exp(x: np.ndarray) -> np.ndarray:
    """Elementwise e**x of a float64 array (new array); inf/nan/overflow/underflow as np.exp."""
    x = np.asarray(x, dtype=np.float64)
    if x.size and not (x.min() >= -_SAFE and x.max() <= _SAFE):  # also true when any is nan
        return _exp_edges(x)
    kf = np.multiply(x, _INV)
    np.rint(kf, out=kf)
    r = np.multiply(kf, _HI)
    np.subtract(x, r, out=r)
    q = np.multiply(kf, _LO)
    r -= q
    np.multiply(r, _C[0], out=q)
    for c in _C[1:-1]:
        q += c
        q *= r
    q += _C[-1]
    del r
    ki = kf.astype(np.int64)
    del kf
    out = np.bitwise_and(ki, _N - 1)
    np.take(_TBITS, out, out=out, mode="clip")  # clip: unbuffered; indices are < 256
    np.left_shift(ki, 44, out=ki)
    out += ki  # adds k//256 to the exponent field; (k%256)<<44 was taken out of the table
    del ki
    res = out.view(np.float64)
    res *= q
    return res


def _exp_edges(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    ok = np.abs(x) <= _SAFE
    out[ok] = exp(x[ok])
    big, small = x > _SAFE, x < -_SAFE
    out[big & (x > 709.782712893384)] = np.inf
    out[small & (x < -745.1332191019412)] = 0.0
    out[np.isnan(x)] = np.nan
    mid = (big & (x <= 709.782712893384)) | (small & (x >= -745.1332191019412))
    if mid.any():  # exp(x/2)**2 stays exact enough; ldexp would round a subnormal once more
        h = exp(x[mid] * 0.5)
        out[mid] = h * h
    return out


def log(x: np.ndarray) -> np.ndarray:
    """Elementwise natural log of a float64 array of positive finite values."""
    x = np.asarray(x, dtype=np.float64)
    m, e = np.frexp(x)  # exact: x = m * 2**e, 0.5 <= m < 1
    low = m < 0.7071067811865476
    m = np.where(low, m * 2.0, m)  # exact
    e = (e - low).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    acc = np.full_like(s, 1.0 / 25.0)
    for k in range(11, -1, -1):
        acc = acc * s2 + 1.0 / (2 * k + 1)
    return e * _LN2_HI + (2.0 * s * acc + e * _LN2_LO)


_TFLOAT = (_TBITS + (np.arange(_N, dtype=np.int64) << 44)).view(np.float64).tolist()  # 2**(j/256)


def jit_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(2**(j/256) for j < 256, 2**m at m + 1022 for -1022 <= m <= 1023, (inv, hi, lo, ln2_hi,
    ln2_lo)): what synth_jit's exp1/log1 compute these functions from."""
    p2 = np.array([math.ldexp(1.0, m) for m in range(-1022, 1024)])
    return np.array(_TFLOAT), p2, np.array([_INV, _HI, _LO, _LN2_HI, _LN2_LO])


def exp_s(x: float) -> float:
    """e**x of one float, in plain Python floats (same bits as `exp` of a one-element array)."""
    if not -_SAFE <= x <= _SAFE:
        return float(exp(np.array([x]))[0])
    k = round(x * _INV)  # round half to even, as np.rint
    kf = float(k)
    r = x - kf * _HI
    r -= kf * _LO
    q = r * _C[0]
    for c in _C[1:-1]:
        q += c
        q *= r
    q += _C[-1]
    return math.ldexp(_TFLOAT[k & (_N - 1)], k >> 8) * q


def log_s(x: float) -> float:
    """Natural log of one positive finite float (same bits as `log` of a one-element array)."""
    if not (x > 0.0 and x < math.inf):
        raise ValueError(f"log_s({x!r}): defined here for positive finite values only")
    m, e = math.frexp(x)
    if m < 0.7071067811865476:
        m, e = m * 2.0, e - 1
    ef = float(e)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    acc = 1.0 / 25.0
    for k in range(11, -1, -1):
        acc = acc * s2 + 1.0 / (2 * k + 1)
    return ef * _LN2_HI + (2.0 * s * acc + ef * _LN2_LO)


def pow_s(base: float, e: float) -> float:
    """base**e for base > 0, as exp(e * log(base)) (exact 1.0 for e == 0, base for e == 1)."""
    if e == 0.0:
        return 1.0
    if e == 1.0:
        return base
    return exp_s(e * log_s(base))
