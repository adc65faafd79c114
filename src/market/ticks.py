"""The tick table: the one schema of recorded top-of-book quotes (a Parquet file).

One row per (tick, symbol, venue):

| column   | Arrow type                  | meaning |
| -------- | --------------------------- | ------- |
| t_s      | float64, not null           | tick time, simulated seconds from the session start; ticks are stage.tick_s apart and rows are sorted by it |
| ts_ms    | int64, nullable             | the quote's exchange time (receipt time if the venue sends none), ms since the Unix epoch; null for generated data |
| symbol   | string (dictionary allowed) | base coin, e.g. BTC: exactly the run's universe, every symbol at every tick |
| venue    | string (dictionary allowed) | `usdt` (the coin/USDT book, e.g. Binance) or `krw` (the coin/KRW book, e.g. Upbit); both at every tick |
| bid, ask | float64                     | best bid and ask in the venue's quote currency (USDT or KRW per coin); > 0 and bid <= ask |
| bid_size, ask_size | float64           | coins at the best bid and ask; >= 0 |
| fx       | float64                     | KRW per USD (USDT taken as 1 USD) at the tick; the same on every row of the tick |

No valid quote (a live venue down or its quote older than the allowed age): bid, ask,
bid_size and ask_size are all null on that row; fx null: no FX at the tick. The engine
gets NaN there and skips the symbol for the tick (src/engine/loop.py, `valid_quotes`).
Rows of a tick may come in any order; writers here use universe order, usdt before krw.
The engine models one size per venue, so a replay takes min(bid_size, ask_size).

File metadata (Parquet key-value `paper_runs.ticks`, JSON): format `ticks-v1`, tick_s,
symbols, venues {usdt: exchange, krw: exchange}, book {levels, step_bps, growth} (the
depth assumed beyond the top), source (identity of what produced the file) and, for live
recordings, market_faults. pyarrow is imported here only, and only by the code paths
that read or write these files (the synthetic smoke never pays for it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from src.market.tape import BookShape, MarketChunk

FORMAT = "ticks-v1"
META_KEY = "paper_runs.ticks"
VENUES = ("usdt", "krw")
PRICE_COLUMNS = ("bid", "ask", "bid_size", "ask_size")
# column -> Arrow type names accepted on read ("dictionary" means dictionary<string>)
COLUMN_TYPES: dict[str, tuple[str, ...]] = {
    "t_s": ("double",),
    "ts_ms": ("int64",),
    "symbol": ("string", "large_string", "dictionary"),
    "venue": ("string", "large_string", "dictionary"),
    "bid": ("double",),
    "ask": ("double",),
    "bid_size": ("double",),
    "ask_size": ("double",),
    "fx": ("double",),
}
COLUMNS = tuple(COLUMN_TYPES)


@dataclass(frozen=True)
class QuoteChunk(MarketChunk):
    """A MarketChunk that also keeps what the engine does not use but a recording should.

    Arrays (n, symbols), NaN where unknown: bid and ask sizes per venue (the engine's
    usdt_size/krw_size are their minimum) and each venue's quote time in ms since the epoch.
    """

    usdt_bid_size: np.ndarray
    usdt_ask_size: np.ndarray
    krw_bid_size: np.ndarray
    krw_ask_size: np.ndarray
    usdt_ts_ms: np.ndarray
    krw_ts_ms: np.ndarray


def slice_chunk(chunk: MarketChunk, a: int, b: int) -> MarketChunk:
    """Ticks [a, b) of a chunk, of the same class."""
    kw = {f.name: getattr(chunk, f.name)[a:b] for f in fields(chunk) if f.name != "start"}
    return type(chunk)(start=chunk.start + a, **kw)


def book_meta(book: BookShape) -> dict[str, Any]:
    return {"levels": book.levels, "step_bps": book.step_bps, "growth": book.growth}


def arrow_schema() -> Any:
    import pyarrow as pa

    label = pa.dictionary(pa.int32(), pa.string())
    return pa.schema([("t_s", pa.float64()), ("ts_ms", pa.int64()), ("symbol", label), ("venue", label),
                      ("bid", pa.float64()), ("ask", pa.float64()), ("bid_size", pa.float64()),
                      ("ask_size", pa.float64()), ("fx", pa.float64())])


def chunk_table(chunk: MarketChunk, symbols: Sequence[str]) -> Any:
    """The chunk as tick-table rows: per tick, symbols in order, usdt then krw."""
    import pyarrow as pa

    n, n_sym = chunk.n, len(symbols)
    rich = isinstance(chunk, QuoteChunk)

    def both(usdt: np.ndarray, krw: np.ndarray) -> np.ndarray:  # (n, S) x 2 -> rows
        return np.stack([np.asarray(usdt, np.float64), np.asarray(krw, np.float64)], axis=2).reshape(-1)

    bid, ask = both(chunk.usdt_bid, chunk.krw_bid), both(chunk.usdt_ask, chunk.krw_ask)
    if rich:
        bid_size = both(chunk.usdt_bid_size, chunk.krw_bid_size)
        ask_size = both(chunk.usdt_ask_size, chunk.krw_ask_size)
        ts = both(chunk.usdt_ts_ms, chunk.krw_ts_ms)
    else:
        bid_size = ask_size = both(chunk.usdt_size, chunk.krw_size)
        ts = np.full(bid.shape, np.nan)
    void = np.isnan(bid) | np.isnan(ask) | np.isnan(bid_size) | np.isnan(ask_size)
    fx = np.repeat(np.asarray(chunk.fx, np.float64), 2 * n_sym)
    ts_null = np.isnan(ts)
    sym_idx = np.tile(np.repeat(np.arange(n_sym, dtype=np.int32), 2), n)
    venue_idx = np.tile(np.arange(2, dtype=np.int32), n * n_sym)
    cols = {
        "t_s": pa.array(np.repeat(np.asarray(chunk.t_s, np.float64), 2 * n_sym)),
        "ts_ms": pa.array(np.where(ts_null, 0, ts).astype(np.int64), mask=ts_null),
        "symbol": pa.DictionaryArray.from_arrays(pa.array(sym_idx), pa.array(list(symbols), pa.string())),
        "venue": pa.DictionaryArray.from_arrays(pa.array(venue_idx), pa.array(list(VENUES), pa.string())),
        "bid": pa.array(bid, mask=void),
        "ask": pa.array(ask, mask=void),
        "bid_size": pa.array(bid_size, mask=void),
        "ask_size": pa.array(ask_size, mask=void),
        "fx": pa.array(fx, mask=np.isnan(fx)),
    }
    return pa.table(cols, schema=arrow_schema())


class TickWriter:
    """Appends chunks to a Parquet tick file; `close` writes the footer (with `meta`)."""

    def __init__(self, path: Path, symbols: Sequence[str], meta: dict[str, Any], row_group_ticks: int = 3600) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.symbols = tuple(symbols)
        self.meta = dict(meta, format=FORMAT, symbols=list(self.symbols))
        self.rows = 0
        self.ticks = 0
        self._pending: list[Any] = []
        self._pending_ticks = 0
        self._row_group_ticks = row_group_ticks
        self._writer = pq.ParquetWriter(self.path, arrow_schema(), compression="snappy",
                                        use_dictionary=["symbol", "venue"])

    def write(self, chunk: MarketChunk) -> None:
        if chunk.n == 0:
            return
        self._pending.append(chunk_table(chunk, self.symbols))
        self._pending_ticks += chunk.n
        self.ticks += chunk.n
        if self._pending_ticks >= self._row_group_ticks:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            import pyarrow as pa

            table = pa.concat_tables(self._pending)
            self._writer.write_table(table)
            self.rows += table.num_rows
        self._pending, self._pending_ticks = [], 0

    def close(self, extra_meta: dict[str, Any] | None = None) -> None:
        self._flush()
        meta = dict(self.meta, ticks=self.ticks, rows=self.rows, **(extra_meta or {}))
        self._writer.add_key_value_metadata({META_KEY: json.dumps(meta, sort_keys=True)})
        self._writer.close()


def read_meta(raw: dict[bytes, bytes] | None) -> dict[str, Any] | None:
    """Our metadata from a Parquet footer's key-value pairs, or None if the file has none."""
    if not raw or META_KEY.encode() not in raw:
        return None
    try:
        meta = json.loads(raw[META_KEY.encode()])
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None
