"""One run folder read into a run-index row (src/catalog/index.py keeps the rows).

The row holds what `src.compare` shows for the run (src.compare.diff.summary_row of the folder
read with src.compare.load.read_folder, the record's seal checked but not every output's digest),
the KPIs flattened (numbers only), notes and tags, whether its id was pinned, the record's
mtime, size and SHA-256, and the `stamp` the index compares to know when to read it again.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from array import array
from pathlib import Path
from typing import Any

from src.runs import notes as notes_mod


def adhoc_re(stage: str) -> re.Pattern[str]:
    """src.runs.paths.new_run_id's shape: any other id was pinned (run.id given)."""
    return re.compile(rf"{re.escape(stage)}-.+-\d{{8}}T\d{{6}}Z-[0-9a-f]{{6}}")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def file_stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def stamp(meta: tuple[int, int] | None, notes: tuple[int, int] | None) -> str:
    """What refresh compares: the record's and the notes file's mtime and size."""
    return f"{meta}|{notes}"


def record_stat(folder: str, lock: tuple[int, int] | None) -> Any:
    """The record's mtime and size; for a folder without one (a DVC stage's committed output,
    src/compare/committed.py), those of the folder (a file added or removed), of the files it is
    read from and of dvc.lock, its seal: a `git checkout` or `dvc pull` changes them."""
    st = file_stat(f"{folder}/runtime_meta.json")
    if st is not None:
        return st
    read = ("kpi_summary.json", "provenance.json", "trades.jsonl")
    return ("no record", file_stat(folder), *(file_stat(f"{folder}/{n}") for n in read), lock)


def folder_row(root: Path, run_dir: Path, conn: sqlite3.Connection) -> dict[str, Any]:
    """Read one run folder into an index row (and its config groups into blobs)."""
    from src.compare.diff import flatten, summary_row
    from src.compare.load import RunNotFound, damaged, read_folder

    meta_st = file_stat(os.path.join(run_dir, "runtime_meta.json"))
    notes_st = file_stat(str(notes_mod.sidecar(run_dir)))
    rec_st = record_stat(str(run_dir), file_stat(str(Path(root) / "dvc.lock")))
    try:
        rec = read_folder(run_dir, root, verify=False)
    except RunNotFound as exc:
        rec = damaged(run_dir.name, str(exc).replace(f"{run_dir}: ", "", 1))
    summ = summary_row(rec)
    summ["exits"] = summ.pop("tp/sl/tl/sr")
    summ["state"], summ["ended_at"] = rec.state, rec.meta.get("ended_at")
    resolved = (rec.meta.get("config") or {}).get("resolved") if rec.state != "damaged" else None
    if rec.state == "committed":  # no record here: the resolved config of its provenance.json
        resolved = ((rec.provenance or {}).get("config") or {}).get("resolved")
    run_sec = resolved.get("run") if isinstance(resolved, dict) and isinstance(resolved.get("run"), dict) else {}
    groups: dict[str, str] = {}
    for group, value in (resolved.items() if isinstance(resolved, dict) else ()):
        if group == "run":  # its id is the row's; its note is a note
            value = {k: v for k, v in value.items() if k not in ("id", "note")} if isinstance(value, dict) else value
        flat = json.dumps(flatten({group: value}), sort_keys=True, separators=(",", ":"))
        groups[group] = d = digest(flat)
        conn.execute("INSERT OR IGNORE INTO blobs VALUES (?, ?)", (d, flat))
        conn.execute("INSERT OR IGNORE INTO groups VALUES (?)", (group,))
    kpis = {k: v for k, v in flatten(rec.kpis).items() if isinstance(v, (int, float)) and not isinstance(v, bool)} \
        if rec.kpis else {}
    # the same numbers as float64 bytes per run, keys and which were ints once (src.api reads them as a block)
    layout = json.dumps({"keys": list(kpis), "ints": [k for k, v in kpis.items() if isinstance(v, int)]})
    conn.execute("INSERT OR IGNORE INTO blobs VALUES (?, ?)", (lay := digest(layout), layout))
    ann = notes_mod.read(run_dir, run_sec.get("note"))
    try:
        meta_sha = hashlib.sha256((run_dir / "runtime_meta.json").read_bytes()).hexdigest()
    except OSError:
        meta_sha = None
    stage = run_dir.parent.name
    row = dict(summ, stage=stage, run_id=run_dir.name, folder=run_dir.relative_to(root).as_posix(),
               problems=json.dumps(summ["problems"]), pinned=int(not adhoc_re(stage).fullmatch(run_dir.name)),
               notes=json.dumps(ann.notes), tags=json.dumps(ann.tags), config=json.dumps(groups, sort_keys=True),
               kpi_layout=lay, kpi_values=array("d", kpis.values()).tobytes(),
               meta_sha256=meta_sha, meta_mtime_ns=meta_st and meta_st[0], meta_size=meta_st and meta_st[1],
               stamp=stamp(rec_st, notes_st))
    return row
