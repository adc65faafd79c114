"""Scripted markets for the oracle tests: explicit quotes, tick by tick, fed to any engine.

A script is a list of ticks; each tick has its time, its FX and one quote per symbol
(None: no valid quote at that tick). Nothing here knows the engine's rules: it only
lays the quotes out as the `Market` protocol's chunks (src/market/tape.py).
`replay_script()` loads tests/data/make_oracle_replay.py, the scripted replay file's writer.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Sequence

import numpy as np

from src.market.tape import BookShape, MarketChunk

_FIELDS = ("usdt_bid", "usdt_ask", "krw_bid", "krw_ask", "usdt_size", "krw_size")


@dataclass(frozen=True)
class Q:
    """One symbol's top of book at one tick: USDT per coin, KRW per coin, sizes in coins."""

    usdt_bid: float
    usdt_ask: float
    krw_bid: float
    krw_ask: float
    usdt_size: float = 100.0
    krw_size: float = 100.0


@dataclass(frozen=True)
class Tick:
    t_s: float
    fx: float
    quotes: tuple[Q | None, ...]


class ScriptedMarket:
    """The `Market` of a script; `chunk_ticks` (if set) overrides the engine's chunk size,
    so the same script can be played whole or one tick per chunk."""

    def __init__(self, symbols: Sequence[str], ticks: Sequence[Tick], book: BookShape,
                 chunk_ticks: int | None = None) -> None:
        self.symbols = tuple(symbols)
        self.book = book
        self.n_ticks = len(ticks)
        self._chunk = chunk_ticks
        n, s = len(ticks), len(self.symbols)
        self.t = np.array([k.t_s for k in ticks], dtype=np.float64)
        self.fx = np.array([k.fx for k in ticks], dtype=np.float64)
        self.q = {f: np.full((n, s), np.nan) for f in _FIELDS}
        for i, k in enumerate(ticks):
            assert len(k.quotes) == s, f"tick {i}: {len(k.quotes)} quotes for {s} symbols"
            for j, q in enumerate(k.quotes):
                if q is not None:
                    for f in _FIELDS:
                        self.q[f][i, j] = getattr(q, f)

    def chunks(self, chunk_ticks: int) -> Iterator[MarketChunk]:
        step = self._chunk or chunk_ticks
        for a in range(0, self.n_ticks, step):
            b = min(self.n_ticks, a + step)
            yield MarketChunk(start=a, t_s=self.t[a:b], fx=self.fx[a:b], **{f: self.q[f][a:b] for f in _FIELDS})

    def identity(self) -> dict[str, Any]:
        return {"kind": "scripted", "ticks": self.n_ticks}


def replay_script() -> ModuleType:
    """tests/data/make_oracle_replay.py as a module (tests/ is not a package)."""
    path = Path(__file__).parent / "data" / "make_oracle_replay.py"
    spec = importlib.util.spec_from_file_location("make_oracle_replay", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
