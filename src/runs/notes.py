"""Notes and tags of a run, kept beside its folder and outside everything the run's record seals.

`logs/<stage>/.<run_id>.notes.jsonl`: one JSON object per line, appended a whole line at a
time (no lock needed between two users noting at once): {"note": text, "at": utc},
{"tag": name, "at": utc} or {"untag": name, "at": utc}. The file lies outside the run folder,
so the output digests (src/provenance/outputs.py) never see it: a note or a tag cannot make a
run `edited`, and never changes its fingerprint. A note given at run time (`run.note=...`)
lives in the run's resolved config (the `run` section, outside the config digest) and is
listed first.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from src.runs.atomic import JsonlAppender

SUFFIX = ".notes.jsonl"
TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def sidecar(run_dir: Path) -> Path:
    """The notes file of a run folder: a hidden file in its stage folder."""
    return run_dir.parent / f".{run_dir.name}{SUFFIX}"


@dataclass
class Annotations:
    notes: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def read(run_dir: Path, run_note: Any = None) -> Annotations:
    """Notes (the run-time note first) and the tags currently set; unreadable lines are skipped."""
    out = Annotations([run_note] if isinstance(run_note, str) and run_note else [], [])
    try:
        lines = sidecar(run_dir).read_bytes().decode("utf-8", "replace").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not isinstance(ev, dict):
            continue
        if isinstance(ev.get("note"), str):
            out.notes.append(ev["note"])
        elif isinstance(ev.get("tag"), str) and ev["tag"] not in out.tags:
            out.tags.append(ev["tag"])
        elif isinstance(ev.get("untag"), str) and ev["untag"] in out.tags:
            out.tags.remove(ev["untag"])
    return out


def check_tag(name: str) -> str:
    if not TAG_RE.fullmatch(name):
        raise ValueError(f"tag {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def append(run_dir: Path, kind: str, value: str) -> None:
    """Add one event (kind: note, tag or untag) to the run's notes file."""
    assert kind in ("note", "tag", "untag"), kind
    appender = JsonlAppender(sidecar(run_dir))
    try:
        appender.append({kind: value, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    finally:
        appender.close()
