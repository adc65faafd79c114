"""DVC's experiment queue with two workers, and the default remote, run for real in temp git repos.

Queue workers are detached daemons: the test stops them (`dvc queue stop`), waits for
every process working in its temp repo to exit, and kills (by pid) any that do not, so
nothing outlives it even when an assertion fails.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from conftest import dvc, dvc_env

SMOKE = Path("logs/d92-5/smoke")
KPI = str(SMOKE / "metrics.json")  # the headline KPIs: the DVC metric


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def processes_in(folder: Path) -> list[int]:
    """Pids of processes whose working folder is `folder` or below (DVC's workers and runs there)."""
    folder = folder.resolve()
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                cwd = Path(os.readlink(f"/proc/{d}/cwd"))
            except OSError:
                continue
            if cwd == folder or folder in cwd.parents:
                pids.append(int(d))
    return pids


@contextmanager
def queue_workers_stopped(repo: Path, grace_s: float = 120) -> Iterator[None]:
    """On the way out: stop the queue's workers, wait for them, kill whatever is left."""
    def cleanup() -> list[int]:
        if processes_in(repo):  # a stop that finds no worker alive would linger in the broker
            dvc_to_file(repo, repo.parent / "queue-stop.log", "queue", "stop", "--kill")
        deadline = time.monotonic() + grace_s
        while (left := processes_in(repo)) and time.monotonic() < deadline:
            time.sleep(1)
        for pid in processes_in(repo):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left

    try:
        yield
    except BaseException:
        cleanup()  # the test's own failure is the one to report
        raise
    left = cleanup()
    assert not left, f"DVC queue processes outlived `dvc queue stop` by {grace_s} s and were killed: {left}"


def dvc_to_file(repo: Path, log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A dvc command whose output goes to a file, not a pipe: `dvc queue start` forks daemon
    workers that inherit its stdout, so a captured pipe would stay open until they exit."""
    exe = Path(sys.executable).parent / "dvc"
    with open(log, "w") as out:
        proc = subprocess.run([str(exe), *args], cwd=repo, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT, env=dvc_env(repo.parent), timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, log.read_text(errors="replace"), "")


def queue_status(repo: Path) -> dict[str, str]:
    """{experiment name: status} from `dvc queue status`."""
    out = _ok(dvc(repo, "queue", "status"))
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^[0-9a-f]{7}\s+(\S+)\s+.*?\s(Queued|Running|Success|Failed)\s*$", out, flags=re.M)}


def experiments(show: list) -> dict[str, dict]:
    named = {}
    for rev in show:
        for exp in rev.get("experiments") or []:
            for r in exp.get("revs") or []:
                named[r.get("name")] = r["data"]
    return named


@pytest.mark.slow
def test_queue_runs_variants_two_at_a_time_and_exp_show_lists_them(dvc_repo: Path) -> None:
    _ok(dvc(dvc_repo, "repro", "smoke"))
    subprocess.run(["git", "add", "-A"], cwd=dvc_repo, check=True, env=dvc_env(dvc_repo.parent))
    subprocess.run(["git", "commit", "-qm", "baseline"], cwd=dvc_repo, check=True, env=dvc_env(dvc_repo.parent))
    seeds = (1, 2, 3, 4)
    for n in seeds:
        _ok(dvc(dvc_repo, "exp", "run", "--queue", "smoke", "-n", f"seed{n}", "-S", f"smoke.overrides='seed={n}'"))
    assert set(queue_status(dvc_repo).values()) == {"Queued"}

    with queue_workers_stopped(dvc_repo):
        t0 = time.perf_counter()
        start = dvc_to_file(dvc_repo, dvc_repo.parent / "queue-start.log", "queue", "start", "-j", "2")
        assert start.returncode == 0 and "Started '2' new" in start.stdout, start.stdout
        most_running, deadline = 0, time.monotonic() + 600
        while True:
            status = queue_status(dvc_repo)
            most_running = max(most_running, sum(s == "Running" for s in status.values()))
            if not any(s in ("Queued", "Running") for s in status.values()):
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        wall = time.perf_counter() - t0
    print(f"queue: {len(seeds)} experiments, -j 2: {wall:.1f} s")
    assert status == {f"seed{n}": "Success" for n in seeds}, status
    assert most_running == 2, f"never saw two experiments running at once (max {most_running})"

    show = json.loads(_ok(dvc(dvc_repo, "exp", "show", "--json")))
    exps = experiments(show)
    assert {f"seed{n}" for n in seeds} <= exps.keys(), list(exps)
    trips = {}
    for n in seeds:
        data = exps[f"seed{n}"]
        assert data["params"]["params.yaml"]["data"]["smoke"]["overrides"] == f"seed={n}"
        kpis = data["metrics"][KPI]["data"]
        assert {"round_trips", "total_pnl_krw", "total_pnl_usd", "exits"} <= kpis.keys()
        trips[n] = (kpis["round_trips"], kpis["total_pnl_krw"])
    assert len(set(trips.values())) == len(seeds), trips  # each ran its own seed
    # the table a user reads lists them too
    csv = _ok(dvc(dvc_repo, "exp", "show", "--no-pager", "--only-changed", "--csv"))  # as in docs/dvc.md
    assert all(f"seed{n}," in csv for n in seeds)
    header = [h.rsplit(":", 1)[-1] for h in csv.splitlines()[0].split(",")]  # file prefix when names clash
    assert {"seed", "round_trips", "smoke.overrides"} <= set(header), header


@pytest.mark.slow
def test_default_remote_push_drop_cache_pull_in_a_fresh_clone(dvc_repo: Path, tmp_path: Path) -> None:
    """The committed default remote works in a fresh clone with no setup at all."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(dvc_repo), str(clone)], check=True, env=dvc_env(tmp_path))
    remote = clone / ".dvc-remote"
    listed = _ok(dvc(clone, "remote", "list"))
    assert listed.split()[:3] == ["local", str(remote), "(default)"], listed
    _ok(dvc(clone, "repro", "smoke"))
    cached = clone / SMOKE / "trades.jsonl"  # the smoke's output in the DVC cache
    plain = [clone / SMOKE / f for f in ("kpi_summary.json", "provenance.json")]  # git-tracked (cache: false)
    before = {p: p.read_bytes() for p in [cached, *plain]}
    assert before[cached], "the smoke made no trades: nothing to push"

    out = _ok(dvc(clone, "push", "smoke"))
    assert "1 file pushed" in out, out
    assert len([p for p in remote.rglob("*") if p.is_file()]) >= 1
    git_status = subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=clone, capture_output=True,
                                text=True, check=True).stdout
    assert ".dvc-remote" not in git_status  # git-ignored

    assert "in sync" in _ok(dvc(clone, "status", "--cloud", "smoke"))

    shutil.rmtree(clone / ".dvc" / "cache")
    cached.unlink()
    assert "not in cache" in _ok(dvc(clone, "status", "smoke"))
    out = _ok(dvc(clone, "pull", "smoke"))  # plain `dvc pull` also wants longrun's outputs, never made here
    assert "1 file added" in out, out
    assert {p: p.read_bytes() for p in before} == before
    assert (clone / ".dvc" / "cache").is_dir()
    assert "up to date" in _ok(dvc(clone, "status", "smoke"))
    assert "Everything is up to date" in _ok(dvc(clone, "push", "smoke"))
