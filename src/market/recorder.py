"""Record what the engine consumed to a tick file, so the session replays byte for byte."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from src.market.tape import Market, MarketChunk
from src.market.ticks import TickWriter, slice_chunk
from src.provenance.digests import sha256_file


class RecordingMarket:
    """Passes a market's chunks through and writes them to a Parquet tick file.

    A chunk is written once the engine asks for the next one (it has used all of it);
    the last chunk is written at `close(ticks_used)`, cut to the ticks the engine ran,
    so a session stopped mid-chunk records exactly what it traded on.
    """

    def __init__(self, inner: Market, path: Path, meta: dict[str, Any]) -> None:
        self._inner = inner
        self.symbols, self.book, self.n_ticks = inner.symbols, inner.book, inner.n_ticks
        self.path = Path(path)
        self._writer = TickWriter(self.path, self.symbols, meta)
        self._pending: MarketChunk | None = None
        self._closed = False

    def identity(self) -> dict[str, Any]:
        return self._inner.identity()

    def chunks(self, chunk_ticks: int) -> Iterator[MarketChunk]:
        for chunk in self._inner.chunks(chunk_ticks):
            self._write_pending()
            self._pending = chunk
            yield chunk

    def _write_pending(self, ticks_used: int | None = None) -> None:
        if self._pending is None:
            return
        chunk, self._pending = self._pending, None
        keep = chunk.n if ticks_used is None else max(0, min(chunk.n, ticks_used - self._writer.ticks))
        self._writer.write(chunk if keep == chunk.n else slice_chunk(chunk, 0, keep))

    def close(self, ticks_used: int | None, extra_meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish the file; `ticks_used` None (a crash) keeps every tick handed out."""
        if not self._closed:
            self._closed = True
            self._write_pending(ticks_used)
            self._writer.close(extra_meta)
        h = sha256_file(self.path)
        return {"ticks": self._writer.ticks, "rows": self._writer.rows, "sha256": h}
