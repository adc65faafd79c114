"""A run named on a command line: a run folder, `<stage>/<run id>`, or a run id under logs/*/."""
from __future__ import annotations

import difflib
from pathlib import Path

from src.catalog import index
from src.runs.paths import LOGS_DIRNAME


class UnknownRun(ValueError):
    """No run folder (or more than one) by that name: the message names close run ids."""


def find_run(root: Path, ref: str) -> Path:
    """The run folder `ref` names; UnknownRun when none or several do."""
    logs = Path(root) / LOGS_DIRNAME
    path = Path(ref)
    for cand in (path if path.is_absolute() else Path.cwd() / path, logs / ref):
        if cand.is_dir() and not cand.is_symlink() and cand.resolve().parent.parent == logs.resolve():
            return cand.resolve()
    if "/" not in ref and ref not in (".", ".."):
        hits = sorted(p for p in logs.glob(f"*/{ref}") if p.is_dir() and p.parent.name[:1].isalnum())
        if len(hits) > 1:
            names = ", ".join(h.relative_to(logs).as_posix() for h in hits)
            raise UnknownRun(f"run id {ref!r} is ambiguous: give one of {names}")
        if hits:
            return hits[0]
    ids = index.using(root, lambda c: [r for (r,) in c.execute("SELECT run_id FROM runs")])
    close = difflib.get_close_matches(ref.rsplit("/", 1)[-1], ids, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise UnknownRun(f"unknown run {ref!r}: not a run folder under {LOGS_DIRNAME}/<stage>/ nor a run id there{hint}")
