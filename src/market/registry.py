"""Build the market a config asks for, by its `kind`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from src.config.schema import LiveMarketConfig, ReplayMarketConfig, SymbolSpec, SyntheticMarketConfig
from src.market.errors import MarketInputError
from src.market.tape import Market


def build_market(spec: Any, universe: Sequence[SymbolSpec], seed: int, n_ticks: int, tick_s: float,
                 root: Path) -> Market:
    """A Market for `spec` (one of the market/*_schema dataclasses); MarketInputError for bad input."""
    if isinstance(spec, SyntheticMarketConfig):
        from src.market.synthetic import SyntheticMarket
        return SyntheticMarket(spec, universe, seed, n_ticks, tick_s)
    if isinstance(spec, ReplayMarketConfig):  # pyarrow and ccxt are imported only on these paths
        from src.market.replay import ReplayMarket
        return ReplayMarket(spec, universe, n_ticks, tick_s, root)
    if isinstance(spec, LiveMarketConfig):
        from src.market.live import LiveMarket
        return LiveMarket(spec, universe, n_ticks, tick_s)
    raise MarketInputError(f"market.kind={getattr(spec, 'kind', spec)!r}: no such market (available: synthetic, replay, live)")
