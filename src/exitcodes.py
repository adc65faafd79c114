"""The process exit codes of every command (`src.run`, sweeps, `src.acceptance`, `src.compare`).

One table, imported by each CLI; it imports nothing from the project.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # the run completed and every gate passed
    GATE = 1  # a gate failed, or a run is not a completed result
    USAGE = 2  # bad usage, config or input: nothing was run
    PROVENANCE = 3  # import provenance refused: nothing was run
    CRASH = 4  # the run crashed (status failed)
    EDITED = 5  # a run's files do not match its record (re-check, compare)
    INTERRUPTED = 130  # Ctrl-C or SIGTERM (status interrupted, KPIs for what happened)
