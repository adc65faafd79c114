"""`python -m src.runs gc`: which run folders may go, and removing them atomically.

Kept: pinned folders (a run id given with run.id, e.g. DVC's `smoke`), tagged runs, runs
still running, and the last N runs of each stage (by start time). The rest is listed (dry
run, the default) or, with --yes, each folder is renamed aside (`logs/<stage>/.gc-<id>-<hex>`,
one rename: readers see the folder or nothing) and then removed, with its notes file, and
its index row dropped.
"""
from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from src.runs import notes as notes_mod


def plan(rows: list[dict[str, Any]], keep_last: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(rows to delete, oldest first; {folder: why kept} for the rest)."""
    kept: dict[str, str] = {}
    by_stage: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_stage.setdefault(r["stage"], []).append(r)
    doomed = []
    for stage, runs in sorted(by_stage.items()):
        runs.sort(key=lambda r: (r["started_at"] or "", r["run"]))
        recent = {r["folder"] for r in runs[len(runs) - keep_last:]} if keep_last > 0 else set()
        for r in runs:
            if r["pinned"]:
                kept[r["folder"]] = "pinned run id"
            elif r["tags"]:
                kept[r["folder"]] = f"tagged {', '.join(r['tags'])}"
            elif r["status"] == "running":
                kept[r["folder"]] = "running"
            elif r["folder"] in recent:
                kept[r["folder"]] = f"among the last {keep_last} of {stage}"
            else:
                doomed.append(r)
    return doomed, kept


def remove(root: Path, folder: str) -> None:
    """Rename the run folder aside in one step, then delete it and its notes file."""
    run_dir = Path(root) / folder
    aside = run_dir.parent / f".gc-{run_dir.name}-{secrets.token_hex(3)}"
    os.rename(run_dir, aside)
    shutil.rmtree(aside)
    for extra in (notes_mod.sidecar(run_dir), run_dir.parent / f".{run_dir.name}.lock"):
        try:
            extra.unlink()
        except FileNotFoundError:
            pass
