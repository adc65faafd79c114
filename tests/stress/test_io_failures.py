"""Failing disks (issue 10, finding 6): every I/O failure is exit 4 and one line naming the path
and the error; trades.jsonl keeps whole lines; an overwrite keeps the earlier run until the
new one is complete.

Disks are made to fail three ways: a file size limit in the child (RLIMIT_FSIZE, SIGXFSZ
ignored: writes past it get EFBIG, as on a filesystem with a small file limit), a small
tmpfs mounted on logs/ (real ENOSPC at every point of the run, and a read-only mount for
EROFS), and `chattr +i` (an undeletable file, a folder nothing can be created in: EPERM,
which chmod cannot give to root). The last two need root and skip elsewhere.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from conftest import clean_env, run_cli
from stress.helpers import check_run_files, leftover_temp_files, snapshot
from src.provenance.outputs import verify_run


def _cli(repo: Path, *args: str, preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "src.run", *args], cwd=repo, capture_output=True, text=True,
                          env=clean_env(), preexec_fn=preexec, timeout=120)


def _fsize(limit: int) -> Callable[[], None]:
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def _io_failure_line(proc: subprocess.CompletedProcess[str], errors: tuple[str, ...]) -> str:
    """Exit 4, one stderr line starting `error: `, naming a path under logs/ and the error; no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == 4, (proc.returncode, proc.stdout[-1500:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "Logging error" not in proc.stderr, proc.stderr
    assert err.startswith("error: ") and "\n" not in err, err
    assert "logs/d92-5" in err and any(e in err for e in errors), err
    return err


def _whole(run_dir: Path) -> None:
    if run_dir.exists():
        check_run_files(run_dir)
        assert leftover_temp_files(run_dir) == []


def _file_sizes(repo: Path) -> dict[str, int]:
    proc = _cli(repo, "run.id=sizes")
    assert proc.returncode == 0, proc.stderr
    run = repo / "logs/d92-5/sizes"
    return {p.relative_to(run).as_posix(): p.stat().st_size for p in run.rglob("*") if p.is_file()}


def test_file_size_limit_at_each_record_write_is_exit_4_one_line(repo: Path) -> None:
    """Limits just under the largest files: the config, the first and the final record fail in turn."""
    sizes = _file_sizes(repo)
    final_record = sizes["runtime_meta.json"]
    hit = set()
    for limit in sorted({sizes["config.yaml"] - 1, final_record // 2, final_record - 1}):
        proc = _cli(repo, f"run.id=fs{limit}", preexec=_fsize(limit))
        err = _io_failure_line(proc, ("File too large (EFBIG)",))
        hit.add(err.split(": ")[2].split("/")[-1])
        _whole(repo / f"logs/d92-5/fs{limit}")
    assert {"config.yaml", "runtime_meta.json"} <= hit, hit


@pytest.mark.parametrize("engine", ["reference", "kernel"])  # line by line; a chunk's lines at once
def test_trades_that_hit_the_size_limit_keep_whole_lines(repo: Path, engine: str) -> None:
    """A longer stage makes trades.jsonl the largest file: it fails mid-line and is cut back."""
    sizes = _file_sizes(repo)
    limit = max(v for k, v in sizes.items() if k != "trades.jsonl") + 1
    # 60 simulated minutes write many times the smoke's trades; everything else stays under `limit`
    proc = _cli(repo, "run.id=tr", "stage.duration_s=3600", f"engine={engine}", preexec=_fsize(limit + 50_000))
    err = _io_failure_line(proc, ("File too large",))
    assert "logs/d92-5/tr/trades.jsonl" in err, err
    trades = (repo / "logs/d92-5/tr/trades.jsonl").read_bytes()
    assert len(trades) <= limit + 50_000 and (trades.endswith(b"\n") or not trades)  # whole lines, or none
    assert engine == "kernel" or trades  # the reference writes line by line: those before the limit stay
    _whole(repo / "logs/d92-5/tr")
    meta = json.loads((repo / "logs/d92-5/tr/runtime_meta.json").read_text())
    assert meta["status"] == "failed" and "trades.jsonl" in meta["error"]
    assert verify_run(repo / "logs/d92-5/tr").state == "intact"  # the failed run's files are recorded too


def _mount_tmpfs(where: Path, options: str) -> bool:
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return proc.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True, check=False)


@pytest.fixture
def tmpfs_logs(repo: Path):
    """Mount a tmpfs of a given size on logs/ (skips where mount is not allowed)."""
    logs = repo / "logs"
    mounted: list[bool] = []

    def mount(options: str) -> None:
        if mounted and mounted[-1]:
            _umount(logs)
        ok = _mount_tmpfs(logs, options)
        if not ok:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted.append(ok)

    yield mount
    if mounted and mounted[-1]:
        _umount(logs)


@pytest.mark.slow
def test_full_disk_at_every_point_of_a_run(repo: Path, tmpfs_logs) -> None:
    """A disk one page larger each time, up to what a run needs: every failure is exit 4 and one
    line naming the file; files stay whole; the config, record, trades, KPI and plot writes all fail once."""
    tmpfs_logs("size=4m")
    sizes = _file_sizes(repo)
    need_kb = sum(-(-s // 4096) * 4 for s in sizes.values()) + 64  # pages, the record's temp copy, folders
    failed_at = set()
    for size_kb in range(4, need_kb + 4, 4):
        tmpfs_logs(f"size={size_kb}k")
        proc = _cli(repo, f"run.id=full{size_kb}")
        if proc.returncode == 4:
            err = _io_failure_line(proc, ("No space left on device (ENOSPC)",))
            failed_at.add(err.split(": ")[2].split("/", 3)[-1])
        else:
            assert proc.returncode == 0, proc.stderr
        _whole(repo / f"logs/d92-5/full{size_kb}")
    assert {"config.yaml", "runtime_meta.json", "trades.jsonl", "kpi_summary.json"} <= failed_at, failed_at
    assert any(p.startswith("plots/") for p in failed_at), failed_at


def test_read_only_logs_is_exit_4_one_line(repo: Path, tmpfs_logs) -> None:
    tmpfs_logs("size=1m,ro")
    proc = _cli(repo, "run.id=ro")
    err = proc.stderr.strip()
    assert proc.returncode == 4 and "Traceback" not in proc.stderr, proc.stderr
    assert err.startswith("error: ") and "\n" not in err and "logs/d92-5" in err and "(EROFS)" in err, err


def _chattr(flag: str, path: Path) -> bool:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_logs_nothing_can_be_created_in_is_exit_4_one_line(repo: Path) -> None:
    stage = repo / "logs/d92-5"
    stage.mkdir(parents=True)
    if not _chattr("+i", stage):
        pytest.skip("chattr +i is not available on this filesystem")
    try:
        proc = _cli(repo, "run.id=imm")
    finally:
        _chattr("-i", stage)
    err = proc.stderr.strip()
    assert proc.returncode == 4 and "Traceback" not in proc.stderr, proc.stderr
    assert err.startswith("error: ") and "\n" not in err and "logs/d92-5" in err and "EPERM" in err, err


def test_overwrite_keeps_the_earlier_run_until_the_new_one_is_complete(repo: Path) -> None:
    first = _cli(repo, "run.id=ow")
    assert first.returncode == 0, first.stderr
    run = repo / "logs/d92-5/ow"
    pinned = run / "notes.txt"
    pinned.write_text("a file nobody can delete\n")
    if not _chattr("+i", pinned):
        pytest.skip("chattr +i is not available on this filesystem")
    try:
        before = snapshot(run)
        size = (run / "runtime_meta.json").stat().st_size
        # the new run fails at its final record: the earlier run is back, byte for byte
        proc = _cli(repo, "run.id=ow", "run.overwrite=true", preexec=_fsize(size - 1))
        err = _io_failure_line(proc, ("File too large",))
        assert "earlier run in logs/d92-5/ow was kept" in err, err
        assert snapshot(run) == before
        assert verify_run(run).state == "edited"  # notes.txt was added after the run: the record says so
        # a complete new run replaces it; the undeletable file stays behind in a hidden sibling
        proc = _cli(repo, "run.id=ow", "run.overwrite=true", "seed=7")
        assert proc.returncode in (0, 1), proc.stderr
        assert "Traceback" not in proc.stderr and "could not be deleted" in proc.stderr
        assert verify_run(run).state == "intact" and not pinned.exists()
        assert "seed: 7" in (run / "config.yaml").read_text()
        listed = run_cli(repo, "--stage", "d92-5", "--json", module="src.compare")
        assert [r["run"] for r in json.loads(listed.stdout)["runs"]] == ["ow"], listed.stdout
    finally:
        for p in (repo / "logs/d92-5").glob(".ow.*/notes.txt"):
            _chattr("-i", p)
        _chattr("-i", pinned)
    leftovers = [p for p in (repo / "logs/d92-5").iterdir() if p.name.startswith(".ow.") and p.is_dir()]
    for p in leftovers:
        shutil.rmtree(p)
