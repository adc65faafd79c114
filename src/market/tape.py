"""The engine's view of the market: chunks of top-of-book quotes on a regular tick grid."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import numpy as np


@dataclass(frozen=True)
class BookShape:
    """Depth beyond the top: level i sits i*step_bps further out with top_size*growth**i."""

    levels: int
    step_bps: float
    growth: float


@dataclass(frozen=True)
class MarketChunk:
    """Quotes for ticks [start, start+n) of every symbol. Arrays are (n,) or (n, symbols).

    Prices: usdt_* in USDT per coin, krw_* in KRW per coin; sizes: top-of-book size in
    coins (same on bid and ask of a venue); fx in KRW per USD (USDT taken as 1 USD).
    """

    start: int
    t_s: np.ndarray
    fx: np.ndarray
    usdt_bid: np.ndarray
    usdt_ask: np.ndarray
    krw_bid: np.ndarray
    krw_ask: np.ndarray
    usdt_size: np.ndarray
    krw_size: np.ndarray

    @property
    def n(self) -> int:
        return int(self.t_s.shape[0])


class Market(Protocol):
    symbols: tuple[str, ...]
    book: BookShape
    n_ticks: int

    def chunks(self, chunk_ticks: int) -> Iterator[MarketChunk]: ...

    def identity(self) -> dict[str, Any]: ...
