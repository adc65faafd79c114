"""The process exit codes of every command (`src.run`, sweeps, `src.acceptance`, `src.compare`).

One table, imported by each CLI; it imports nothing from the project. Also `cli`, the one way
each CLI's `__main__` exits: quietly when its output is cut off (`... | head -1`).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import NoReturn


class ExitCode(IntEnum):
    OK = 0  # the run completed and every gate passed
    GATE = 1  # a gate failed, or a run is not a completed result
    USAGE = 2  # bad usage, config or input: nothing was run
    PROVENANCE = 3  # import provenance refused: nothing was run
    CRASH = 4  # the run crashed (status failed)
    EDITED = 5  # a run's files do not match its record (re-check, compare)
    INTERRUPTED = 130  # Ctrl-C or SIGTERM (status interrupted, KPIs for what happened)


def stdout_gone() -> None:
    """The reader of stdout stopped reading: point fd 1 at /dev/null, so that what is still
    buffered, and the interpreter's last flush, go nowhere instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (closed, replaced): nothing to redirect
        pass


def exit_with(code: int | str | None) -> NoReturn:
    """sys.exit(code) after flushing stdout; a reader gone by then changes nothing (same code, no traceback)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_gone()
    except (OSError, ValueError, AttributeError):
        pass
    sys.exit(code)


def cli(main: Callable[[], int | None]) -> NoReturn:
    """`sys.exit(main())` for a CLI's `__main__`. Output piped into a reader that stops early
    (`| head -1`) ends quietly: a BrokenPipeError while main() writes exits OK (the reader has
    what it wanted); one at the final flush keeps main()'s own exit code."""
    try:
        code: int | str | None = main()
    except SystemExit as exc:  # argparse's --help / usage errors, a sys.exit inside main
        code = exc.code
    except BrokenPipeError:
        stdout_gone()
        code = ExitCode.OK
    exit_with(code)
