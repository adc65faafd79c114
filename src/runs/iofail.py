"""How a run survives failing disks: one-line I/O errors, a best-effort run log, and an
overwrite that keeps the earlier run until the new one is complete (moved aside, put back
on failure)."""
from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
from pathlib import Path

from src.runs.paths import RunPaths


def move_aside(paths: RunPaths) -> Path:
    """Rename the earlier run to a hidden sibling (`logs/<stage>/.<run_id>.replaced-<hex>`): one
    rename, so it stays whole whatever it holds (an undeletable file, a full disk). Returns it."""
    aside = paths.run_dir.parent / f".{paths.run_id}.replaced-{secrets.token_hex(3)}"
    os.rename(paths.run_dir, aside)
    return aside


def settle_overwrite(paths: RunPaths, aside: Path, complete: bool) -> str | None:
    """After an overwrite: drop the earlier run (moved `aside`) if this one is complete, else put it back.

    Returns a sentence for the user when something could not be done (never raises).
    """
    rel = paths.rel
    if complete:
        try:
            shutil.rmtree(aside)
        except OSError as exc:
            return f"the earlier run moved aside to {rel(aside)} could not be deleted ({describe_os_error(exc, paths)})"
        return None
    failed = paths.run_dir.parent / f".{paths.run_id}.failed-{secrets.token_hex(3)}"
    try:
        if paths.run_dir.exists():
            os.rename(paths.run_dir, failed)  # kept for its run.log; hidden, so never listed as a run
        os.rename(aside, paths.run_dir)
    except OSError as exc:
        return (f"the earlier run is kept in {rel(aside)} ({describe_os_error(exc, paths)}); "
                f"traceback in {rel(paths.run_log)}")
    return (f"the earlier run in {rel(paths.run_dir)} was kept; this attempt is in {rel(failed)}, "
            f"traceback in {rel(failed / paths.run_log.name)}")


def describe_os_error(exc: BaseException, paths: RunPaths | None, root: Path | None = None) -> str:
    """`<path>: <strerror> (<ERRNO>)` for an OSError naming a file, else `<Type>: <message>`."""
    if isinstance(exc, OSError) and exc.filename is not None:
        name = str(exc.filename)
        base = paths.root if paths is not None else root
        if base is not None:
            try:
                name = Path(name).resolve().relative_to(Path(base).resolve()).as_posix()
            except (ValueError, OSError):
                pass
        code = errno.errorcode.get(exc.errno or 0, exc.errno)
        return f"{name}: {exc.strerror or exc} ({code})"
    return f"{type(exc).__name__}: {exc}"


class RunLogHandler(logging.FileHandler):
    """run.log is best effort: a full disk or a read-only folder never prints a logging traceback
    (the failure that matters is reported once, by the write that needed to succeed)."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass

    def close(self) -> None:
        try:
            super().close()
        except OSError:
            pass
