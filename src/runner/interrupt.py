"""Every Ctrl-C / SIGTERM rule of a run, in one place: one object owns the process's signal state.

Why each rule is there:

- **Start-up** (`src/run.py`, until the run folder exists). Ctrl-C is Python's own
  KeyboardInterrupt, but remembered (`sigint_seen`): an interrupt that lands inside
  Hydra/OmegaConf can surface as some other error raised from a half-updated object (a
  `finally` that fails), and must still end as an interrupt, never as a config error or a
  traceback. The config loader unwraps such a chain itself (`reraise_if_interrupted`, a pure
  function, so the config layer may import this stdlib-only module); `src/run.py` turns
  whatever is left (`sigint_seen`) into the same exit. Nothing was run, so the exit is one
  line and 130 (`exit_before_run`), through `os._exit`: runpy may still see the interrupt
  and turn a `sys.exit` into a SIGINT death (-2) instead of the documented 130.
- **The run** (`execute`, from just before the folder is claimed to the end of the record).
  The first SIGINT/SIGTERM asks the engine to stop after the current tick (`should_stop`,
  polled by the engine and the real-time clock): the run ends `interrupted` with KPIs for what
  happened. A second one aborts at once (KeyboardInterrupt), which execute still records as
  `interrupted`. Handlers are installed before the folder exists, so a signal during the claim
  ends in a record, not in a folder holding only run.log. Off the main thread (a launcher's
  worker) no handler can be installed: the launcher's own handling applies.
- **Sweeps.** A process whose job was interrupted skips its later jobs (`job_interrupted`).
- **After the run is reported**, `src/run.py` blocks SIGINT until it exits: a Ctrl-C then
  could only race Python's shutdown and end the process as a SIGINT death instead of with
  the run's exit code.

Imports nothing but the standard library and `src.exitcodes`.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Any, NoReturn

from src.exitcodes import ExitCode

BEFORE_RUN_MESSAGE = "interrupted before the run started: nothing was run"


class Interrupts:
    """The process's interrupt state: start-up Ctrl-C seen, the running run's stop signal, a
    sweep job interrupted. Signal handlers are process-wide, so there is one (`PROCESS`)."""

    def __init__(self) -> None:
        self.sigint_seen = False  # a Ctrl-C arrived during start-up (before the run's handlers)
        self.run_signal: str | None = None  # the first signal that asked the running run to stop
        self.job_interrupted = False  # a sweep job in this process ended interrupted
        self._old: dict[int, Any] = {}

    # -- start-up --------------------------------------------------------------------------
    def remember_sigint(self) -> None:
        """Ctrl-C raises KeyboardInterrupt (Python's own behaviour), and is remembered."""
        signal.signal(signal.SIGINT, self._startup_handler)

    def _startup_handler(self, _signum: int, _frame: object) -> None:
        self.sigint_seen = True
        raise KeyboardInterrupt

    # -- the run ---------------------------------------------------------------------------
    def should_stop(self) -> bool:
        """Polled by the engine: a first SIGINT/SIGTERM arrived."""
        return self.run_signal is not None

    def start_run(self) -> None:
        """Install the run's handlers (main thread only; elsewhere a no-op)."""
        self.run_signal = None
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._run_handler)
        except ValueError:
            pass  # not the main thread (e.g. inside a launcher's worker): no handlers

    def _run_handler(self, signum: int, _frame: Any) -> None:
        if self.run_signal is not None:
            raise KeyboardInterrupt
        self.run_signal = signal.Signals(signum).name

    def end_run(self) -> None:
        """Put back the handlers that were there before `start_run`."""
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    # -- sweeps ----------------------------------------------------------------------------
    def note_job(self, status: str) -> None:
        if status == "interrupted":
            self.job_interrupted = True


PROCESS = Interrupts()


def reraise_if_interrupted(exc: BaseException) -> None:
    """Raise KeyboardInterrupt if one is anywhere in `exc`'s cause/context chain."""
    todo, seen = [exc], set()
    while todo:
        cur = todo.pop()
        if isinstance(cur, KeyboardInterrupt):
            raise KeyboardInterrupt from exc
        if id(cur) not in seen:
            seen.add(id(cur))
            todo += [e for e in (cur.__cause__, cur.__context__) if e is not None]


def exit_before_run() -> NoReturn:
    """One line and exit 130: interrupted before the run folder existed (nothing was run)."""
    print(BEFORE_RUN_MESSAGE, file=sys.stderr, flush=True)
    try:
        sys.stdout.flush()
    except OSError:  # stdout piped into a reader that is gone: the line above is what matters
        pass
    os._exit(ExitCode.INTERRUPTED)
