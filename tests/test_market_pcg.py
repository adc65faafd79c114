"""The market's PCG64 words drawn by compiled code (src/market/pcg_jit.py `draw`, and the same in
the ahead-of-time module) are numpy's `random_raw` words, call after call, for any number of
streams (four at a time and the rest one by one), and a plain-integer PCG XSL-RR 128/64."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from src.market.synth_workers import pcg_states

M64 = (1 << 64) - 1
MULT = 0x2360ED051FC65DA44385DF649FCCF645  # PCG's default 128-bit multiplier (numpy's pcg64.h)


def _oracle(state: int, inc: int, n: int) -> tuple[list[int], int]:
    """n words of PCG XSL-RR 128/64 in Python integers: step, then the output of the new state."""
    out = []
    for _ in range(n):
        state = (state * MULT + inc) & ((1 << 128) - 1)
        hi, lo = state >> 64, state & M64
        x, r = hi ^ lo, hi >> 58
        out.append(((x >> r) | (x << (64 - r))) & M64)
    return out, state


def _draws() -> dict[str, object]:
    from src.engine import aot
    from src.market import pcg_jit

    eng = aot.engine()
    assert eng.aot  # the ahead-of-time module's draw, beside the JIT's
    return {"aot": eng.draw, "jit": pcg_jit.draw}


def _gens(n: int, seed: int = 42) -> list[np.random.Generator]:
    # as synthetic._rng: one generator per (seed, symbol, stream)
    return [np.random.default_rng([seed, zlib.crc32(f"SYM{i}".encode()), i % 2]) for i in range(n)]


@pytest.mark.parametrize("n_streams", [1, 3, 4, 5, 9])
def test_compiled_words_are_numpys_across_calls(n_streams: int) -> None:
    for name, draw in _draws().items():
        ref, mine = _gens(n_streams), _gens(n_streams)
        st = pcg_states(mine)
        for n in (9000, 1, 0, 512, 7, 33):  # a block's main words, a pool, odd top-ups: the state carries on
            out = np.zeros((n_streams, n), dtype=np.uint64)
            draw(st, out, n)
            want = np.stack([g.bit_generator.random_raw(n) for g in ref]) if n else out
            assert np.array_equal(out, want), (name, n_streams, n)
        assert [int(x) for x in st[:, 0]] == [g.bit_generator.state["state"]["state"] >> 64 for g in ref]
        assert [int(x) for x in st[:, 1]] == [g.bit_generator.state["state"]["state"] & M64 for g in ref]


def test_one_stream_of_many_advances_alone() -> None:
    """synth_workers tops up one symbol's retry pool through a one-row view of the states."""
    for name, draw in _draws().items():
        ref = _gens(6, seed=7)
        st = pcg_states(_gens(6, seed=7))
        out = np.empty((1, 65), dtype=np.uint64)
        draw(st[4:5], out, 65)
        assert np.array_equal(out[0], ref[4].bit_generator.random_raw(65)), name
        full = np.empty((6, 10), dtype=np.uint64)
        draw(st, full, 10)
        want = [g.bit_generator.random_raw(10) for g in ref]
        assert all(np.array_equal(full[s], want[s]) for s in range(6)), name


@pytest.mark.parametrize("state,inc", [
    (0, 1),  # first word: state 1, hi ^ lo = 1, no rotation
    ((1 << 128) - 1, (1 << 128) - 1),  # every add carries from the low word
    (M64, 1),  # low word all ones: the carry out of the low half
    ((0xFC << 120) | 12345, (0x5DEECE66D << 64) | M64),  # big rotations (hi >> 58 near 63)
    (0x0123456789ABCDEF0011223344556677, 0xDEADBEEFCAFEBABE0000000000000001),
])
def test_words_match_the_integer_oracle_and_numpy_at_the_edges(state: int, inc: int) -> None:
    want, end = _oracle(state, inc, 300)
    g = np.random.default_rng(0)
    g.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc},
                             "has_uint32": 0, "uinteger": 0}
    assert [int(x) for x in g.bit_generator.random_raw(300)] == want  # the oracle is numpy's PCG64
    if state == 0 and inc == 1:
        assert want[0] == 1
    for name, draw in _draws().items():
        st = np.array([[state >> 64, state & M64, inc >> 64, inc & M64]] * 5, dtype=np.uint64)
        out = np.empty((5, 300), dtype=np.uint64)
        draw(st, out, 300)
        for s in range(5):  # the four interleaved streams and the one after them
            assert [int(x) for x in out[s]] == want, (name, s)
            assert (int(st[s, 0]) << 64) | int(st[s, 1]) == end and (int(st[s, 2]) << 64) | int(st[s, 3]) == inc


def test_states_refuse_another_bit_generator() -> None:
    with pytest.raises(ValueError, match="generator 1: bit generator 'MT19937', expected 'PCG64'"):
        pcg_states([np.random.default_rng(1), np.random.Generator(np.random.MT19937(1))])
