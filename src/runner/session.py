"""What a run puts between its market and the engine: recording, real-time pacing, progress.

With the default synthetic market and simulated clock this is a pass-through, so the
smoke pays nothing for it (no pyarrow, ccxt or rich import).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from src.config.schema import ClockKind, LiveMarketConfig, RootConfig
from src.market.tape import Market
from src.runs.paths import RunPaths

log = logging.getLogger(__name__)


class MarketSession:
    """Wraps the run's market; `close(res)` finishes the recording and says what to add to the record."""

    def __init__(self, market: Market, cfg: RootConfig, paths: RunPaths, should_stop: Callable[[], bool]) -> None:
        self._source = market
        self.market: Any = market
        self._paced: Any = None
        self._recorder: Any = None
        self.recorded: dict[str, Any] | None = None  # the recording's path, digest, ticks, rows
        self.faults: dict[str, Any] | None = None
        if isinstance(cfg.market, LiveMarketConfig) and cfg.market.record:
            from src.market.recorder import RecordingMarket

            self._quotes_rel = paths.rel(paths.quotes)
            self._recorder = self.market = RecordingMarket(self.market, paths.quotes, market.recording_meta())
        if cfg.clock is ClockKind.realtime:
            from src.market.clock import PacedMarket, Progress, RealtimeClock, progress_wanted

            progress = Progress(market.n_ticks, cfg.stage.tick_s, progress_wanted(), cfg.market.kind)
            self._paced = self.market = PacedMarket(self.market, RealtimeClock(cfg.stage.tick_s, should_stop),
                                                    progress)

    def on_trade(self, sink: Callable[[dict], None]) -> Callable[[dict], None]:
        """`sink`, also feeding the progress bar when there is one."""
        if self._paced is None:
            return sink
        progress = self._paced.progress

        def both(trade: dict) -> None:
            sink(trade)
            progress.on_trade(trade)
        return both

    def close(self, res: Any) -> None:
        """After the engine: mark a paced stop as an interruption, close the market and the recording.

        `res` is the engine's SessionResult, or None when the engine raised.
        """
        try:
            if self._paced is not None:
                self._paced.progress.close()
                if self._paced.stopped and res is not None:
                    res.interrupted = True
        finally:
            closer = getattr(self._source, "close", None)
            if closer is not None:
                closer()
            faults = getattr(self._source, "faults", None)
            self.faults = faults() if faults is not None else None
            if self._recorder is not None:
                extra = {"market_faults": self.faults} if self.faults is not None else {}
                info = self._recorder.close(None if res is None else res.ticks, extra)
                self.recorded = {"path": self._quotes_rel, **info}
                log.info("recorded path=%s ticks=%d sha256=%s", self._quotes_rel, info["ticks"], info["sha256"])

    def kpis(self) -> dict[str, Any]:
        """KPIs a market adds: its fault counters, if it keeps any (live, or a replayed live recording)."""
        return {} if self.faults is None else {"market_faults": self.faults}
