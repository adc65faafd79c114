"""Checks shared by the stress suites: clean user errors, intact run files, byte snapshots."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from conftest import clean_env

STATUSES = ("running", "completed", "interrupted", "failed")


def bytecode_env(**extra: str) -> dict[str, str]:
    """A user's environment: bytecode writing on (this machine sets PYTHONDONTWRITEBYTECODE)."""
    env = clean_env(**extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def assert_clean_user_error(proc: subprocess.CompletedProcess[str], code: int = 2, needle: str | None = None) -> str:
    """Exit `code`, exactly one line on stderr starting with `error: `, no traceback; returns the line."""
    err = proc.stderr.strip()
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert err.startswith("error: ") and "\n" not in err, err
    if needle is not None:
        assert needle in err, (needle, err)
    return err


def run_folders(repo: Path) -> list[Path]:
    """Every logs/<stage>/<run> folder (sweep folders under logs/_sweeps excluded)."""
    logs = repo / "logs"
    return sorted(p for s in logs.iterdir() if s.is_dir() and s.name != "_sweeps"
                  for p in s.iterdir() if p.is_dir()) if logs.is_dir() else []


def statuses(repo: Path) -> list[str]:
    out = []
    for run in run_folders(repo):
        meta = run / "runtime_meta.json"
        out.append(json.loads(meta.read_text())["status"] if meta.exists() else "no record")
    return out


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `folder` (symlinks not followed)."""
    out = {}
    for dirpath, _dirs, files in os.walk(folder):
        for f in files:
            p = Path(dirpath, f)
            out[p.relative_to(folder).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def check_run_files(run_dir: Path) -> dict[str, Any] | None:
    """Assert that what a run left is whole; return its runtime_meta (None if it has none).

    Every *.json parses; trades.jsonl holds whole JSON lines only; every plots/*.csv is
    whole (a header, rows of its width, a final newline); no file is empty but trades.jsonl
    and run.log.
    """
    for p in run_dir.rglob("*.json"):
        json.loads(p.read_text(encoding="utf-8"))  # raises on a torn file
    trades = run_dir / "trades.jsonl"
    if trades.exists():
        data = trades.read_bytes()
        assert data == b"" or data.endswith(b"\n"), f"{trades}: last line is cut"
        for line in data.decode("utf-8").splitlines():
            json.loads(line)
    for p in run_dir.glob("plots/*.csv"):
        text = p.read_text(encoding="utf-8")
        assert text.endswith("\n"), f"{p}: cut"
        rows = list(csv.reader(io.StringIO(text)))
        assert rows and all(len(r) == len(rows[0]) for r in rows), f"{p}: ragged rows"
    for p in run_dir.rglob("*"):
        if p.is_file() and p.name not in ("trades.jsonl", "run.log") and not p.name.endswith(".tmp"):
            assert p.stat().st_size > 0, f"{p}: empty"
    meta = run_dir / "runtime_meta.json"
    if not meta.exists():
        return None
    rec = json.loads(meta.read_text(encoding="utf-8"))
    assert rec["status"] in STATUSES, rec["status"]
    return rec


def leftover_temp_files(run_dir: Path) -> list[str]:
    """Temp files of the atomic writer (`.<name>.<random>.tmp`) left in a run folder."""
    return sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob(".*.tmp"))
