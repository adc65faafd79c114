"""`python -m src.runs`, `src.compare --last` and `src.api.load_runs` where the run index or a notes
file cannot be written: readers list every run from an index built in memory; writers fail with
one `error:` line naming the file (exit 4), never a traceback."""
from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import run_cli, run_dir_of


def _runs(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(repo, *args, module="src.runs")


def _smoke(repo: Path, run_id: str) -> Path:
    proc = run_cli(repo, "stage=d92-5", f"run.id={run_id}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run_dir_of(proc, repo)


def test_an_index_that_cannot_be_opened_is_built_in_memory(repo: Path) -> None:
    _smoke(repo, "A")
    index = repo / "logs/.runs.sqlite"
    for p in repo.glob("logs/.runs.sqlite*"):
        p.unlink()
    index.mkdir()  # SQLite cannot open it (as in a read-only logs/), nor may it be deleted
    proc = _runs(repo, "list", "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    [row] = json.loads(proc.stdout)
    assert (row["run"], row["status"], row["state"]) == ("A", "completed", "intact")
    last = run_cli(repo, "--stage", "d92-5", "--last", "1", "--json", module="src.compare")
    assert last.returncode == 0 and [r["run"] for r in json.loads(last.stdout)["runs"]] == ["A"], last.stderr
    assert index.is_dir() and not any(index.iterdir())  # nothing written in its place

    (repo / "logs/d92-5/.A.notes.jsonl").mkdir()  # the notes file cannot be written
    proc = _runs(repo, "tag", "A", "keep")
    assert proc.returncode == 4 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and ".A.notes.jsonl" in proc.stderr


def test_a_read_only_logs_folder(repo: Path) -> None:
    """The real thing where this machine allows a read-only bind mount (root in a container)."""
    run = _smoke(repo, "A")
    logs = repo / "logs"
    if subprocess.run(["mount", "--bind", "-o", "ro", str(logs), str(logs)], capture_output=True).returncode:
        pytest.skip("no read-only bind mount here (needs root)")
    try:
        probe = logs / f".probe-{uuid.uuid4().hex}"
        with pytest.raises(OSError):
            probe.write_text("x")
        proc = _runs(repo, "list", "--json")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert [(r["run"], r["status"]) for r in json.loads(proc.stdout)] == [("A", "completed")]
        proc = _runs(repo, "note", "A", "hello")
        assert proc.returncode == 4 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
        proc = _runs(repo, "gc", "--keep-last", "0", "--yes")  # A is pinned: nothing to delete, nothing fails
        assert proc.returncode == 0 and "deleted 0 run folders" in proc.stdout, proc.stderr
    finally:
        subprocess.run(["umount", str(logs)], check=True)
    assert (run / "runtime_meta.json").is_file()
