"""Parallel runs in one repo copy: distinct folders, whole files, correct records, safe purges.

All processes run with bytecode writing on (PYTHONDONTWRITEBYTECODE unset, as on a
user's machine), so each one's purge deletes the __pycache__ folders its neighbours are
writing and reading at that moment; the test process purges in a loop on top of that.
Equal inputs must give equal fingerprints and byte-equal deterministic files; each
record's code digests must match the files on disk. Pinned run ids: one winner, the
others refused in one line -- including with run.overwrite=true, which must never let
two runs write one folder.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
import xxhash

from conftest import copy_repo, load_json
from src.provenance.purge import purge_bytecode
from src.provenance.record import deterministic_provenance
from stress.helpers import assert_clean_user_error, bytecode_env, check_run_files, leftover_temp_files, run_folders

SUITE = "parallel runs"
DETERMINISTIC = ("kpi_summary.json", "trades.jsonl", "provenance.json", "plots/equity.csv",
                 "plots/exit_reasons.csv", "plots/spread.csv", "plots/marks.csv")


def _start(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "src.run", *args], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=bytecode_env())


class Purger:
    """Purges the repo's bytecode caches in a loop from the test process, while runs import."""

    def __init__(self, repo: Path) -> None:
        self.repo, self.n, self.errors = repo, 0, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                purge_bytecode(self.repo)
                self.n += 1
            except Exception as exc:  # pragma: no cover - reported by the test
                self.errors.append(repr(exc))
            time.sleep(0.005)

    def __enter__(self) -> "Purger":
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def _code_digests_match(repo: Path, meta: dict) -> None:
    for f in meta["code"]["files"]:
        assert xxhash.xxh3_128_hexdigest((repo / f["path"]).read_bytes()) == f["xxh3_128"], f["path"]


def test_four_runs_at_once(tmp_path: Path, figures) -> None:
    repo = copy_repo(tmp_path / "repo")
    check_parallel_jobs(repo, {"smoke": [["stage=d92-5"]] * 3, "seed7": [["stage=d92-5", "seed=7"]]}, figures)


@pytest.mark.slow
def test_sixteen_runs_at_once(tmp_path: Path, figures) -> None:
    repo = copy_repo(tmp_path / "repo")
    check_parallel_jobs(repo, {"smoke": [["stage=d92-5"]] * 12, "seed7": [["stage=d92-5", "seed=7"]] * 4}, figures)


def check_parallel_jobs(repo: Path, groups: dict[str, list[list[str]]], figures) -> None:
    """Start every job of every group at once; check folders, files, records and fingerprints."""
    n = sum(len(v) for v in groups.values())
    figures.add(SUITE, "runs started at once", n)
    with Purger(repo) as purger:
        procs = [(g, _start(repo, *args)) for g, jobs in groups.items() for args in jobs]
        results = [(g, p, *p.communicate(timeout=300)) for g, p in procs]
    assert not purger.errors, purger.errors
    dirs: dict[str, list[Path]] = defaultdict(list)
    for g, p, out, err in results:
        assert p.returncode == 0, (g, p.returncode, out[-1000:], err[-2000:])
        assert err == "", err  # no neighbour's purge broke an import, nothing was refused
        line = next(ln for ln in out.splitlines() if ln.startswith("run: "))
        dirs[g].append(repo / line.split(" ", 1)[1])
    every = [d for ds in dirs.values() for d in ds]
    collisions = len(every) - len(set(every))
    figures.add(SUITE, "collisions", collisions)
    assert collisions == 0 and sorted(every) == run_folders(repo)
    corrupted = 0
    for g, ds in dirs.items():
        fps = set()
        for d in ds:
            meta = check_run_files(d)
            assert meta is not None
            ok = (meta["status"] == "completed" and meta["run_id"] == d.name and not leftover_temp_files(d)
                  and meta["guard"]["hardlock"]["violations"] == []
                  and meta["guard"]["hardlock_final"]["violations"] == []
                  and load_json(d / "provenance.json") == json.loads(json.dumps(deterministic_provenance(meta))))
            corrupted += not ok
            _code_digests_match(repo, meta)
            fps.add(meta["fingerprint"])
        assert len(fps) == 1, (g, fps)  # equal inputs, equal fingerprints
        for rel in DETERMINISTIC:
            assert len({(d / rel).read_bytes() for d in ds}) == 1, (g, rel)
    figures.add(SUITE, "corrupted files", corrupted)
    assert corrupted == 0
    fingerprints = {load_json(ds[0] / "runtime_meta.json")["fingerprint"] for ds in dirs.values()}
    assert len(fingerprints) == len(dirs)  # different inputs, different fingerprints
    figures.add(SUITE, "runs with a correct record", n)
    figures.add(SUITE, "purges by the test process meanwhile", purger.n)


@pytest.mark.slow
def test_same_pinned_id_at_once_one_winner(tmp_path: Path, figures) -> None:
    repo = copy_repo(tmp_path / "repo")
    procs = [_start(repo, "run.id=pinned") for _ in range(4)]
    results = [(p, *p.communicate(timeout=120)) for p in procs]
    winners = [r for r in results if r[0].returncode == 0]
    assert len(winners) == 1, [(p.returncode, err) for p, _o, err in results]
    for p, out, err in results:
        if p.returncode != 0:
            assert_clean_user_error(subprocess.CompletedProcess(p.args, p.returncode, out, err), 2)
            assert "logs/d92-5/pinned" in err
    meta = check_run_files(repo / "logs/d92-5/pinned")
    assert meta["status"] == "completed" and run_folders(repo) == [repo / "logs/d92-5/pinned"]
    figures.add(SUITE, "pinned-id races: one winner, the rest refused")


def test_overwrite_never_lets_two_runs_write_one_folder(tmp_path: Path, figures) -> None:
    """A runs seed 1 into a pinned folder; B asks to overwrite it while A writes: B is refused.

    Without the lock, B deleted A's folder and both wrote into the new one: A's KPIs and
    record beside B's trades, config and provenance, and both exited 0.
    """
    repo = copy_repo(tmp_path / "repo")
    # the reference engine keeps A writing for several seconds (the fast one can finish
    # this session before B has even composed its config, and then B may rightly replace it)
    a = _start(repo, "run.id=shared", "run.overwrite=true", "seed=1", "universe=top100", "stage.duration_s=28800",
               "engine=reference")
    meta = repo / "logs/d92-5/shared/runtime_meta.json"
    end = time.time() + 60
    while not meta.exists() and a.poll() is None and time.time() < end:
        time.sleep(0.001)
    b = _start(repo, "run.id=shared", "run.overwrite=true", "seed=2")
    out_b, err_b = b.communicate(timeout=120)
    out_a, err_a = a.communicate(timeout=120)
    assert a.returncode == 0, err_a
    assert_clean_user_error(subprocess.CompletedProcess(b.args, b.returncode, out_b, err_b), 2, "in use")
    run = repo / "logs/d92-5/shared"
    rec = check_run_files(run)
    assert rec["seed"] == 1 and load_json(run / "provenance.json")["seed"] == 1
    assert load_json(run / "kpi_summary.json")["round_trips"] == len((run / "trades.jsonl").read_text().splitlines())
    # once A is done, the folder may be replaced as asked
    again = _start(repo, "run.id=shared", "run.overwrite=true", "seed=2")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert check_run_files(run)["seed"] == 2
    figures.add(SUITE, "overwrite races: the running folder kept whole")


@pytest.mark.slow
def test_joblib_sweep_of_sixteen_jobs(tmp_path: Path, figures) -> None:
    """`-m hydra/launcher=joblib` with 16 jobs in pairs of equal inputs: pairs share a fingerprint."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    repo = copy_repo(tmp_path / "repo")
    proc = subprocess.run([sys.executable, "-m", "src.run", "-m", "hydra/launcher=joblib",
                           "seed=1,2,3,4,5,6,7,8", "zone_profile=default,default"],
                          cwd=repo, capture_output=True, text=True, env=bytecode_env(), timeout=600)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    summary = load_json(next((repo / "logs/_sweeps").glob("*/summary.json")))
    jobs = summary["jobs"]
    figures.add(SUITE, "joblib sweep jobs", len(jobs))
    assert len(jobs) == 16 and all(j["status"] == "completed" for j in jobs)
    dirs = [repo / j["run_dir"] for j in jobs]
    collisions = len(dirs) - len(set(dirs))
    figures.add(SUITE, "collisions", collisions)
    assert collisions == 0 and sorted(dirs) == run_folders(repo)
    by_seed: dict[str, set[str]] = defaultdict(set)
    for j, d in zip(jobs, dirs):
        meta = check_run_files(d)
        assert meta["status"] == "completed" and meta["fingerprint"] == j["fingerprint"]
        assert meta["guard"]["hardlock"]["violations"] == [] and not leftover_temp_files(d)
        _code_digests_match(repo, meta)
        by_seed[next(o for o in j["overrides"] if o.startswith("seed="))].add(j["fingerprint"])
    assert len(by_seed) == 8 and all(len(v) == 1 for v in by_seed.values())
    assert len(set().union(*by_seed.values())) == 8
    figures.add(SUITE, "runs with a correct record", len(jobs))
