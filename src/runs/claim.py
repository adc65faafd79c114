"""Claiming a run folder: made in its final place, and (a pinned run id) locked while the run lasts.

The lock is `logs/<stage>/.<run_id>.lock`, held with flock by the claim object that owns its
file descriptor: a pinned folder is never replaced or written by two runs at once, and the
lock goes when the process does (a killed run leaves no stale lock).
"""
from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: pinned run folders are not locked
    fcntl = None  # type: ignore[assignment]

from src.runs.iofail import move_aside, settle_overwrite
from src.runs.paths import RunPathError, RunPaths, new_run_id, resolve_run_paths


class RunClaim:
    """A run folder this process made: holds the lock of its pinned id (if any) until `release`,
    and the earlier run it replaces (run.overwrite), kept aside until `settle`."""

    def __init__(self, paths: RunPaths, lock_fd: int | None = None) -> None:
        self.paths = paths
        self._fd = lock_fd
        self._aside: Path | None = None

    def settle(self, complete: bool) -> str | None:
        """Drop the earlier run if this one is complete, else put it back (once; a no-op after).
        Returns a sentence for the user when something could not be done (never raises)."""
        aside, self._aside = self._aside, None
        return None if aside is None else settle_overwrite(self.paths, aside, complete)

    def release(self) -> None:
        """Give the lock back (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _lock(paths: RunPaths) -> int | None:
    """The fd holding logs/<stage>/.<run_id>.lock, or RunPathError when another run holds it."""
    if fcntl is None:
        return None
    fd = os.open(paths.run_dir.parent / f".{paths.run_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RunPathError(f"run folder {paths.rel(paths.run_dir)} is in use by another run right now: "
                           "wait for it to end, or pick another run.id") from None
    return fd


def claim_run_dir(root: Path, stage_id: str, run_id: str | None, universe: str, overwrite: bool) -> RunClaim:
    """Create the run folder in its final place; a pinned id replaces its folder only when asked."""
    for _ in range(20):
        paths = resolve_run_paths(root, stage_id, run_id or new_run_id(stage_id, universe))
        paths.run_dir.parent.mkdir(parents=True, exist_ok=True)
        # a pinned id is locked first, and released when the run ends (or here, when refused)
        claim = RunClaim(paths, _lock(paths) if run_id is not None else None)
        try:
            if _make_folder(claim, pinned=run_id is not None, overwrite=overwrite):
                return claim
        except BaseException:
            claim.release()
            raise
    raise RunPathError("could not find a free run id after 20 tries")


def _make_folder(claim: RunClaim, *, pinned: bool, overwrite: bool) -> bool:
    """Make the run folder; False when an ad-hoc id was drawn by a parallel run in the same second."""
    paths = claim.paths
    try:
        paths.run_dir.mkdir()
        return True
    except FileExistsError:
        if not pinned:
            return False
        if not overwrite:
            raise RunPathError(f"run folder {paths.rel(paths.run_dir)} exists: pass run.overwrite=true "
                               "to replace it, or pick another run.id") from None
    claim._aside = move_aside(paths)  # a real folder under logs/ (resolve_run_paths refuses symlinks)
    paths.run_dir.mkdir()
    return True
