"""numpy's PCG64 words drawn in compiled code: exactly `Generator.bit_generator.random_raw`'s.

numpy's PCG64 is PCG XSL-RR 128/64 (O'Neill 2014; numpy/random/src/pcg64/pcg64.h): a 128-bit LCG,
state = state * MULT + inc (mod 2**128), each word the output of the NEW state,
rotr64(hi ^ lo, hi >> 58). A stream's state and increment are read once from numpy's
generator (`bit_generator.state`, seeded by SeedSequence as before; synth_workers.pcg_states)
and kept as four uint64 (state hi, state lo, inc hi, inc lo); `draw` advances them in place, so
the next call goes on where this one stopped, as the numpy object would. Integer arithmetic only (uint64, wrapping);
the high word of the 64x64 product is one 128-bit multiply in LLVM IR (x86-64: one `mul`).

Four streams are stepped together: each stream's steps form a chain of dependent multiplies,
four independent chains keep the multiplier busy. Releases the GIL (nogil), built ahead of time
with synth_jit's block (src/engine/aot_build.py), cached by jitcache (its key covers this file).
"""
from __future__ import annotations

from src.engine import jitcache

jitcache.prepare()  # before numba is imported: the cache folder and key (see jitcache.py)

import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import njit, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

_OPTS = {"cache": True, "error_model": "numpy", "fastmath": False, "nogil": True}
MULT = (2549297995355413924 << 64) + 4865540595714422341  # PCG_DEFAULT_MULTIPLIER_128
_MH = np.uint64(MULT >> 64)
_ML = np.uint64(MULT & 0xFFFFFFFFFFFFFFFF)
_58 = np.uint64(58)
_63 = np.uint64(63)
_1 = np.uint64(1)
_0 = np.uint64(0)


@intrinsic
def _mulhi(typingctx, a, b):  # type: ignore[no-untyped-def]
    """The high 64 bits of the 128-bit product of two uint64."""
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        wide = ir.IntType(128)
        prod = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(prod, ir.Constant(wide, 64)), ir.IntType(64))

    return sig, codegen


@njit(**_OPTS)
def _rotr(hi: np.uint64, lo: np.uint64) -> np.uint64:
    """XSL-RR output of a 128-bit state: rotr64(hi ^ lo, hi >> 58)."""
    x = hi ^ lo
    r = hi >> _58
    return (x >> r) | (x << ((_0 - r) & _63))


@njit(**_OPTS)
def _step_hi(hi: np.uint64, lo: np.uint64, ih: np.uint64, new_lo: np.uint64, il: np.uint64) -> np.uint64:
    """The high word of state * MULT + inc (new_lo is the low word; its carry is new_lo < inc lo)."""
    return _mulhi(lo, _ML) + lo * _MH + hi * _ML + ih + (_1 if new_lo < il else _0)


@njit(**_OPTS)
def draw(st: np.ndarray, out: np.ndarray, n: int) -> None:
    """out[s, :n] = the next n words of stream s, for every row s of st (hi, lo, inc hi, inc lo),
    which it advances. Four streams at a time, then the rest one by one."""
    n_st = st.shape[0]
    s = 0
    while s + 4 <= n_st:
        h0, l0, a0, b0 = st[s, 0], st[s, 1], st[s, 2], st[s, 3]
        h1, l1, a1, b1 = st[s + 1, 0], st[s + 1, 1], st[s + 1, 2], st[s + 1, 3]
        h2, l2, a2, b2 = st[s + 2, 0], st[s + 2, 1], st[s + 2, 2], st[s + 2, 3]
        h3, l3, a3, b3 = st[s + 3, 0], st[s + 3, 1], st[s + 3, 2], st[s + 3, 3]
        for t in range(n):
            n0 = l0 * _ML + b0
            n1 = l1 * _ML + b1
            n2 = l2 * _ML + b2
            n3 = l3 * _ML + b3
            h0 = _step_hi(h0, l0, a0, n0, b0)
            h1 = _step_hi(h1, l1, a1, n1, b1)
            h2 = _step_hi(h2, l2, a2, n2, b2)
            h3 = _step_hi(h3, l3, a3, n3, b3)
            l0, l1, l2, l3 = n0, n1, n2, n3
            out[s, t] = _rotr(h0, l0)
            out[s + 1, t] = _rotr(h1, l1)
            out[s + 2, t] = _rotr(h2, l2)
            out[s + 3, t] = _rotr(h3, l3)
        st[s, 0], st[s, 1] = h0, l0
        st[s + 1, 0], st[s + 1, 1] = h1, l1
        st[s + 2, 0], st[s + 2, 1] = h2, l2
        st[s + 3, 0], st[s + 3, 1] = h3, l3
        s += 4
    while s < n_st:
        h, lo, a, b = st[s, 0], st[s, 1], st[s, 2], st[s, 3]
        for t in range(n):
            nl = lo * _ML + b
            h = _step_hi(h, lo, a, nl, b)
            lo = nl
            out[s, t] = _rotr(h, lo)
        st[s, 0], st[s, 1] = h, lo
        s += 1


def warm_up() -> None:
    """Load (the first time ever, compile) `draw` with the real argument types."""
    st = np.array([[0, 1, 0, 1]] * 5, dtype=np.uint64)
    draw(st, np.empty((5, 3), dtype=np.uint64), 3)
