"""Replay of a recorded tick table (Parquet, schema in `ticks.py`), streamed in batches.

The whole file is validated when the market is built, before a run folder exists, so a
bad file is a usage error (exit 2) naming the file, the row and the problem; the
replay itself re-reads it batch by batch (memory stays flat) through the same checks
(`replay_rows.py`: reading and checking the rows; this module: the market built on them).
Its identity is the file's content (SHA-256), never its name: equal files give equal
fingerprints however the path is spelled or linked; the path is recorded beside it.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

from src.config.schema import ReplayMarketConfig, SymbolSpec
from src.market import ticks
from src.provenance.digests import sha256_and_size
from src.market.replay_rows import Block, ReplayError, TickRows, open_parquet
from src.market.tape import BookShape, MarketChunk

log = logging.getLogger(__name__)
BATCH_TICKS = 3600
_FIELDS = ("usdt_bid", "usdt_ask", "krw_bid", "krw_ask", "usdt_size", "krw_size")
__all__ = ["BATCH_TICKS", "ReplayError", "ReplayMarket"]


class ReplayMarket:
    """Plays the first `n_ticks` ticks of a validated tick file (fewer if the file is shorter)."""

    def __init__(self, spec: ReplayMarketConfig, universe: Sequence[SymbolSpec], n_ticks: int, tick_s: float,
                 root: Path) -> None:
        self.symbols = tuple(s.symbol for s in universe)
        self.tick_s = tick_s
        self.label = f"market.path={spec.path}"
        path = Path(spec.path).expanduser()
        self.path = path if path.is_absolute() else Path(root) / path
        if not self.path.is_file():
            raise ReplayError(f"{self.label}: no such file ({self.path}): give a Parquet tick file, e.g. "
                              "logs/<stage>/<run>/quotes.parquet or one from `python -m src.market.export`")
        pf = self._open()
        self._check_columns(pf.schema_arrow)
        self.meta = ticks.read_meta(pf.metadata.metadata) or {}
        if "tick_s" in self.meta and abs(float(self.meta["tick_s"]) - tick_s) > 1e-9 * max(1.0, tick_s):
            raise ReplayError(f"{self.label}: recorded at tick_s={self.meta['tick_s']}, but stage.tick_s={tick_s}: "
                              f"replay with stage.tick_s={self.meta['tick_s']}")
        file_symbols = self.meta.get("symbols")
        if isinstance(file_symbols, list) and file_symbols != list(self.symbols):
            raise ReplayError(f"{self.label}: the file holds {', '.join(map(str, file_symbols))} but the run's universe "
                              f"is {', '.join(self.symbols)}: pick the matching universe (e.g. "
                              f"universe.top_n={len(file_symbols)}) or another file")
        self.book = self._book(spec)
        self.rows_in_file = pf.metadata.num_rows
        self.ticks_in_file = sum(b.t.size for b in self._blocks())
        if self.ticks_in_file == 0:
            raise ReplayError(f"{self.label}: the file has no ticks")
        if self.ticks_in_file < n_ticks:
            log.warning("replay_short file=%s ticks=%d planned=%d: replaying the whole file",
                        self.path, self.ticks_in_file, n_ticks)
        self.n_ticks = min(n_ticks, self.ticks_in_file)
        self.sha256, self.size = sha256_and_size(self.path)

    def identity(self) -> dict[str, Any]:
        """The file's content digest and what part of it is played; never its name (see `location`)."""
        return {"kind": "replay", "format": ticks.FORMAT,
                "sha256": self.sha256, "bytes": self.size, "rows": self.rows_in_file,
                "ticks_in_file": self.ticks_in_file, "n_ticks": self.n_ticks, "tick_s": self.tick_s,
                "symbols": list(self.symbols), "source": self.meta.get("source")}

    def location(self) -> dict[str, Any]:
        """Where the file was read: recorded beside the identity, outside the fingerprint."""
        return {"path": self.label.split("=", 1)[1], "resolved": os.path.realpath(self.path)}

    def faults(self) -> dict[str, Any] | None:
        """A live recording's fault counters (part of its data); None for other files."""
        return self.meta.get("market_faults")

    def chunks(self, chunk_ticks: int) -> Iterator[MarketChunk]:
        done = 0
        for b in self._blocks(chunk_ticks):
            for a in range(0, b.t.size, chunk_ticks):
                k = min(chunk_ticks, b.t.size - a, self.n_ticks - done)
                if k <= 0:
                    return
                sl = slice(a, a + k)
                yield MarketChunk(start=done, t_s=b.t[sl], fx=b.fx[sl], **{f: b.q[f][sl] for f in _FIELDS})
                done += k

    # -- reading and checking -------------------------------------------------------------

    def _check_columns(self, schema: Any) -> None:
        import pyarrow as pa

        missing = [c for c in ticks.COLUMNS if c not in schema.names]
        if missing:
            raise ReplayError(f"{self.label}: missing column(s) {', '.join(missing)} (a tick file has "
                              f"{', '.join(ticks.COLUMNS)}; see src/market/ticks.py)")
        for col, allowed in ticks.COLUMN_TYPES.items():
            t = schema.field(col).type
            name = "dictionary" if pa.types.is_dictionary(t) and pa.types.is_string(t.value_type) else str(t)
            if name not in allowed:
                raise ReplayError(f"{self.label}: column {col!r} has type {t}: must be {' or '.join(allowed)}")

    def _book(self, spec: ReplayMarketConfig) -> BookShape:
        file_book = self.meta.get("book") or {}
        levels = spec.book_levels if spec.book_levels is not None else file_book.get("levels")
        step = spec.level_step_bps if spec.level_step_bps is not None else file_book.get("step_bps")
        growth = spec.level_growth if spec.level_growth is not None else file_book.get("growth")
        if levels is None or step is None or growth is None:
            raise ReplayError(f"{self.label}: the file has no book metadata: set market.book_levels, "
                              "market.level_step_bps and market.level_growth (the depth assumed beyond the top)")
        return BookShape(int(levels), float(step), float(growth))

    def _blocks(self, batch_ticks: int = BATCH_TICKS) -> Iterator[Block]:
        """Complete, checked ticks in file order, about `batch_ticks` at a time (replay_rows.py)."""
        return TickRows(self.path, self.label, self.symbols, self.tick_s).blocks(batch_ticks)

    def _open(self) -> Any:
        return open_parquet(self.path, self.label)
