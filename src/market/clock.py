"""Real-time pacing of a market (clock=realtime) and its progress bar.

The engine runs in simulated time; pacing only decides *when* each tick is handed to it:
tick k is due k * tick_s after the first. Waits are sliced so a stop request (Ctrl-C,
SIGTERM: the run's stop flag) ends them within `poll_s`.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Iterator

from src.market.tape import Market, MarketChunk
from src.market.ticks import slice_chunk


class RealtimeClock:
    """Wall-clock schedule of ticks; `wait_tick` returns False when asked to stop."""

    def __init__(self, tick_s: float, should_stop: Callable[[], bool], poll_s: float = 0.05,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.tick_s, self.should_stop, self.poll_s = tick_s, should_stop, poll_s
        self._now, self._sleep = now, sleep
        self.t0: float | None = None
        self.late_ticks = 0  # ticks handed out more than one tick after they were due

    def elapsed(self) -> float:
        return 0.0 if self.t0 is None else self._now() - self.t0

    def wait_tick(self, k: int) -> bool:
        if self.t0 is None:
            self.t0 = self._now()
        due = self.t0 + k * self.tick_s
        while True:
            if self.should_stop():
                return False
            left = due - self._now()
            if left <= 0:
                break
            self._sleep(min(left, self.poll_s))
        if self._now() - due > self.tick_s:
            self.late_ticks += 1
        return True


class PacedMarket:
    """Hands out one tick per chunk, each when the clock says it is due."""

    def __init__(self, inner: Market, clock: RealtimeClock, progress: "Progress") -> None:
        self._inner, self.clock, self.progress = inner, clock, progress
        self.symbols, self.book, self.n_ticks = inner.symbols, inner.book, inner.n_ticks
        self.stopped = False  # the stop flag ended the session before the market ran out

    def identity(self) -> dict[str, Any]:
        return self._inner.identity()

    def chunks(self, chunk_ticks: int) -> Iterator[MarketChunk]:
        # A live market polls when asked for its next chunk, so ask only once the tick is due.
        source = iter(self._inner.chunks(chunk_ticks))
        buf: MarketChunk | None = None
        i = k = 0
        while k < self.n_ticks:
            self.progress.update(k, self.clock.elapsed())
            if not self.clock.wait_tick(k):
                self.stopped = True
                return
            if buf is None or i >= buf.n:
                buf, i = next(source, None), 0
                if buf is None:
                    return
            yield slice_chunk(buf, i, i + 1)
            i += 1
            k += 1
        self.progress.update(k, self.clock.elapsed())


def progress_wanted() -> bool:
    """A bar only for a person watching: stdout is a terminal and no CI variable is set."""
    return sys.stdout.isatty() and not os.environ.get("CI")


class Progress:
    """Elapsed and remaining time, ticks, trades and realized PnL; silent unless `enabled`."""

    def __init__(self, total_ticks: int, tick_s: float, enabled: bool, label: str = "realtime") -> None:
        self.total, self.tick_s = total_ticks, tick_s
        self.trades, self.pnl_krw = 0, 0.0
        self._bar: Any = None
        self._task: Any = None
        if enabled:
            from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            self._bar = Bar(TextColumn("[bold]{task.description}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total} ticks"), TimeElapsedColumn(),
                            TextColumn("left {task.fields[left]}  trades {task.fields[trades]}  "
                                       "PnL {task.fields[pnl]} KRW"), transient=True)
            self._task = self._bar.add_task(label, total=total_ticks, left=_hms(total_ticks * tick_s),
                                            trades=0, pnl="0")
            self._bar.start()

    def on_trade(self, trade: dict) -> None:
        self.trades += 1
        self.pnl_krw += float(trade["pnl_krw"])

    def update(self, ticks_done: int, elapsed_s: float) -> None:
        if self._bar is not None:
            left = max(0.0, self.total * self.tick_s - elapsed_s)
            self._bar.update(self._task, completed=ticks_done, left=_hms(left), trades=self.trades,
                             pnl=f"{self.pnl_krw:,.0f}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
