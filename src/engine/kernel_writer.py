"""trades.jsonl written while the kernel runs: one worker thread formats and writes each
chunk's lines (kernel_trades.KernelTrades.jsonl) while the compiled kernel, which releases the
GIL, runs the next chunk."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Protocol


class ChunkLines(Protocol):
    """What is written of a chunk's trades (kernel_trades.KernelTrades): its trades.jsonl lines."""

    def jsonl(self) -> bytes | memoryview: ...


class ChunkWriter:
    """trades.jsonl of each chunk, formatted and written by one worker thread while the kernel
    (which releases the GIL) runs the next chunk: the same bytes, in the same order, one chunk
    at a time, none after a failed one; `wait` raises the worker's error (e.g. a full disk) in
    the caller's thread. The first chunk is held until a second comes: a one-chunk session
    (the smoke) writes in the caller's thread and starts no thread."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.write = write
        self.pool: ThreadPoolExecutor | None = None
        self.pending: list[Future] = []
        self.held: ChunkLines | None = None
        self.failed = False

    def _job(self, part: ChunkLines) -> None:
        if self.failed:
            return
        try:
            self.write(part.jsonl())
        except BaseException:
            self.failed = True
            raise

    def submit(self, part: ChunkLines) -> None:
        self.wait()
        if self.pool is None and self.held is None:
            self.held = part
            return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="trades-jsonl")
        parts = ([self.held] if self.held is not None else []) + [part]
        self.held = None
        self.pending = [self.pool.submit(self._job, p) for p in parts]

    def wait(self) -> None:
        pending, self.pending = self.pending, []
        for f in pending:
            f.result()

    def finish(self) -> None:
        """Everything written (or the first error raised)."""
        self.wait()
        held, self.held = self.held, None
        if held is not None:
            self._job(held)

    def close(self) -> None:
        """After an error elsewhere: the chunks run so far still written, as far as they go."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        held, self.held = self.held, None
        if held is not None and not self.failed:
            try:
                self._job(held)
            except Exception:  # the error already on its way is the one to report
                pass
