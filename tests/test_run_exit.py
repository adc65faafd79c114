"""What a run does after its record is written: the index row without fsync, and an exit without
the interpreter's teardown that still joins threads, runs atexit handlers and flushes its output."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from src.catalog import index
from conftest import clean_env, run_cli, run_dir_of

SITE = '''
import atexit, pathlib, threading, time
OUT = pathlib.Path({out!r})

def _late():  # a non-daemon thread that works on once the main thread is done: the exit waits for it
    threading.main_thread().join()
    time.sleep(0.2)
    (OUT / "thread").write_text("joined")

threading.Thread(target=_late).start()
atexit.register(lambda: (OUT / "atexit").write_text("ran"))


class _Teardown:  # freed by the interpreter's teardown only
    def __del__(self):
        (OUT / "teardown").write_text("ran")


_KEEP = _Teardown()
'''


def test_a_run_exits_without_teardown_but_joins_threads_runs_atexit_and_flushes(repo: Path, tmp_path: Path) -> None:
    site, out = tmp_path / "site", tmp_path / "out"
    site.mkdir()
    out.mkdir()
    (site / "sitecustomize.py").write_text(SITE.format(out=str(out)))
    proc = run_cli(repo, "stage=d92-5", env=clean_env(PYTHONPATH=str(site)))
    assert proc.returncode == 0, proc.stderr
    assert run_dir_of(proc, repo).is_dir()
    assert proc.stdout.rstrip().splitlines()[-1].strip(), "the report (its last line, the gates table) was flushed"
    assert (out / "thread").read_text() == "joined"
    assert (out / "atexit").read_text() == "ran"
    assert not (out / "teardown").exists(), "the interpreter's teardown ran: the run exited the slow way"


def test_a_failed_gate_keeps_its_exit_code(repo: Path) -> None:
    """Exit 1 through the fast exit: src.run's _exit_now hands on main()'s code."""
    proc = run_cli(repo, "stage=d92-5", "stage.acceptance.0.value=1000000000")
    assert proc.returncode == 1, proc.stderr
    assert "AC-1" in proc.stdout


def _sync_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = index.upsert

    def spy(conn: sqlite3.Connection, root: Path, run_dir: Path) -> None:
        seen.append(conn.execute("PRAGMA synchronous").fetchone()[0])
        real(conn, root, run_dir)

    monkeypatch.setattr(index, "upsert", spy)
    return seen


def test_index_run_commits_without_fsync_other_writers_keep_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "logs" / "st" / "st-run"
    run_dir.mkdir(parents=True)
    seen = _sync_seen(monkeypatch)
    index.index_run(tmp_path, run_dir)
    assert seen == [0]  # OFF: the row is a copy of the folder, rebuilt when lost
    rows = index.using(tmp_path, lambda c: c.execute("SELECT run_id FROM runs").fetchall(), refreshed=False)
    assert rows == [("st-run",)]
    index.using(tmp_path, lambda c: index.upsert(c, tmp_path, run_dir), refreshed=False)
    assert seen == [0, 2]  # FULL, SQLite's default, for every other writer


def test_a_profiled_run_still_writes_its_profile(repo: Path, tmp_path: Path) -> None:
    """cProfile writes its file after the module returns: under a profiler the run exits the ordinary way."""
    out = tmp_path / "run.prof"
    proc = run_cli(repo, "-o", str(out), "-m", "src.run", "stage=d92-5", module="cProfile")
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.stat().st_size > 0


def test_a_run_does_not_import_importlib_metadata(repo: Path) -> None:
    """Package versions are read without importlib.metadata (src/provenance/versions.py): ~10 ms of
    imports every run would pay. (A first run composes its config with Hydra, which imports it.)"""
    assert run_cli(repo, "stage=d92-5").returncode == 0  # fills the config cache
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "src.run", "stage=d92-5"], cwd=repo,
                          capture_output=True, text=True, env=clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert {"src.runner.execute", "src.provenance.record", "src.provenance.versions"} <= imported
    assert "hydra" not in imported  # the config came from the cache
    assert "importlib.metadata" not in imported
