"""A DVC stage's committed run folder: outputs that git (and DVC) restored without their record.

`dvc repro` runs `python -m src.run ... run.id=smoke` into a pinned folder (logs/<stage>/smoke/);
git tracks its deterministic files (kpi_summary.json, provenance.json, params.yaml, metrics.json,
plots/) and DVC's cache holds trades.jsonl, but runtime_meta.json (times, host, the machine's
paths) is git-ignored: it stays on the machine that ran the stage. In a fresh clone such a folder
is not damaged; it has no local record. Its seal is then dvc.lock, which DVC writes only after
the stage's command succeeded (`src.run` exits 0: completed, every gate passed) and which holds
the MD5 of every output: a folder whose files dvc.lock lists, each present file matching, is
`committed`; a listed file that differs makes it `edited`. A folder holding files dvc.lock does
not list (a local run's run.log, config.yaml) is not a committed output: its record was deleted.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import yaml

from src.provenance.outputs import Verification
from src.runs.paths import RUN_FILE_NAMES

LOCK_NAME = "dvc.lock"
STATE = "committed"  # src.compare, src.report, src.runs list and src.api.load_runs show this word
NOTE = ("no local record: a DVC stage's output committed in git (runtime_meta.json, per machine, is "
        f"not in git: `dvc repro` remakes it here); its files match {LOCK_NAME}")
_IGNORED = (".gitignore",)  # DVC's own file beside its outputs
_CACHED = (RUN_FILE_NAMES["trades"],)  # in DVC's cache, not in git: absent until `dvc pull`/`dvc checkout`


def _md5(path: str) -> str:
    h = hashlib.md5()  # noqa: S324 - DVC's content hash, compared, not trusted for security
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def lock_outputs(root: Path, run_dir: Path) -> dict[str, str] | None:
    """{path relative to the run folder: md5} of the outputs dvc.lock lists in `run_dir`; None
    when dvc.lock is absent, unreadable or lists nothing there."""
    try:
        rel = Path(run_dir).resolve().relative_to(Path(root).resolve()).as_posix() + "/"
        lock = yaml.safe_load((Path(root) / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    stages = lock.get("stages") if isinstance(lock, dict) else None
    out: dict[str, str] = {}
    for stage in (stages.values() if isinstance(stages, dict) else ()):
        for o in (stage.get("outs") or []) if isinstance(stage, dict) else ():
            path, md5 = (o.get("path"), o.get("md5")) if isinstance(o, dict) else (None, None)
            if isinstance(path, str) and isinstance(md5, str) and path.startswith(rel):
                out[path[len(rel):]] = md5
    return out or None


def _present(run_dir: Path) -> set[str]:
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(run_dir):
        base = Path(dirpath).relative_to(run_dir).as_posix()
        found.update(n if base == "." else f"{base}/{n}" for n in filenames
                     if n not in _IGNORED and not (n.startswith(".") and n.endswith(".tmp")))  # a cut-off atomic write
    return found


def check(root: Path, run_dir: Path) -> Verification | None:
    """`committed` (every present file matches dvc.lock) or `edited` (naming the files); None when
    the folder is not a DVC stage's committed output (no dvc.lock entry, or files it does not list)."""
    outs = lock_outputs(root, run_dir)
    if outs is None:
        return None
    present = _present(run_dir)
    if present - set(outs):
        return None
    problems = []
    for rel, md5 in sorted(outs.items()):
        if rel not in present:
            if rel not in _CACHED:
                problems.append(f"{rel}: deleted (listed in {LOCK_NAME})")
        elif _md5(os.path.join(run_dir, rel)) != md5:
            problems.append(f"{rel}: does not match {LOCK_NAME} (edited, or from another commit: "
                            "`git checkout` / `dvc checkout` restores it)")
    if problems:
        return Verification("edited", problems)
    return Verification(STATE, [NOTE])
