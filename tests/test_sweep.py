"""Hydra multirun on the basic, joblib and Ray launchers, run for real in a temp copy of the repo.

Every job gets its own run folder and record; the launchers agree on every job's
fingerprint, KPIs and trades; the guard runs (and refuses) inside worker processes;
bad overrides are exit 2 with a one-line error. Ray tests are slow: they start a local
cluster confined to loopback and a private temp folder, and always take it down.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO, clean_env, load_json, run_cli
from src.sweep import launcher_defaults, launcher_of

SMALL = ("zone_profile=default,wide,tight", "seed=1,2", "stage.duration_s=60")


def need_launcher(name: str) -> None:
    """Skip without the launcher's extra, except in CI, which must install and test it."""
    try:
        __import__(f"hydra_plugins.hydra_{name}_launcher")
        __import__(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install the [{name}] extra: pip install '.[{name}]'")
        pytest.skip(f"the [{name}] extra is not installed: pip install '.[{name}]'")


def sweep(repo: Path, *args: str, env: dict[str, str] | None = None,
          timeout: float = 600) -> tuple[subprocess.CompletedProcess[str], dict]:
    """`python -m src.run -m args...`; returns the process and its summary.json."""
    proc = run_cli(repo, "-m", *args, env=env, timeout=timeout)
    m = re.search(r"^summary: (\S+)$", proc.stdout, flags=re.M)
    assert m, f"no summary line (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc, load_json(repo / m.group(1))


def by_overrides(summary: dict) -> dict[str, dict]:
    return {" ".join(j["overrides"]): j for j in summary["jobs"]}


def check_jobs(repo: Path, summary: dict, n: int) -> None:
    """n completed jobs, each in its own run folder with a clean guard record from its own process."""
    jobs = summary["jobs"]
    assert len(jobs) == n and sorted(j["job"] for j in jobs) == list(range(n))
    assert len({j["run_dir"] for j in jobs}) == n
    for j in jobs:
        assert j["status"] == "completed" and j["exit_code"] == 0, j
        run = repo / j["run_dir"]
        for f in ("provenance.json", "runtime_meta.json", "kpi_summary.json", "trades.jsonl", "config.yaml"):
            assert (run / f).is_file(), run / f
        meta = load_json(run / "runtime_meta.json")
        assert meta["fingerprint"] == j["fingerprint"] == load_json(run / "provenance.json")["fingerprint"]
        assert meta["pid"] == j["worker"]["pid"]
        for lock in (meta["guard"]["hardlock"], meta["guard"]["hardlock_final"]):
            assert lock["violations"] == [] and lock["modules_checked"] > 10
            assert Path(lock["root"]) == repo.resolve()
        kpis = load_json(run / "kpi_summary.json")
        assert j["kpis"] == {k: v for k, v in kpis.items() if k != "per_symbol"}
    # every job wrote its own row into the run index, from whatever process it ran in (parallel writers)
    con = sqlite3.connect(repo / "logs/.runs.sqlite")
    rows = dict(con.execute("SELECT folder, status || ' ' || fingerprint FROM runs"))
    con.close()
    assert all(rows.get(j["run_dir"]) == f"completed {j['fingerprint']}" for j in jobs), (rows, jobs)


def assert_same_results(repo: Path, a: dict, b: dict) -> None:
    """Job by job (matched on overrides): same fingerprint, KPIs and trades, different folders."""
    ja, jb = by_overrides(a), by_overrides(b)
    assert ja.keys() == jb.keys()
    for key in ja:
        x, y = ja[key], jb[key]
        assert x["run_dir"] != y["run_dir"]
        assert (x["fingerprint"], x["kpis"]) == (y["fingerprint"], y["kpis"]), key
        for f in ("kpi_summary.json", "trades.jsonl", "provenance.json"):
            assert (repo / x["run_dir"] / f).read_bytes() == (repo / y["run_dir"] / f).read_bytes(), (key, f)
    assert len({j["fingerprint"] for j in ja.values()}) == len(ja)  # the sweep really varied something


def test_basic_and_joblib_launchers_agree(repo: Path) -> None:
    need_launcher("joblib")
    proc, basic = sweep(repo, *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert basic["launcher"] == "basic" and basic["exit_code"] == 0
    check_jobs(repo, basic, 6)
    assert {j["worker"]["pid"] for j in basic["jobs"]} == {basic["driver"]["pid"]}  # in the driver itself

    proc, par = sweep(repo, *SMALL, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert proc.returncode == 0, proc.stderr
    assert par["launcher"] == "joblib"
    check_jobs(repo, par, 6)
    pids = {j["worker"]["pid"] for j in par["jobs"]}
    assert par["driver"]["pid"] not in pids and 1 <= len(pids) <= 2  # loky worker processes
    assert_same_results(repo, basic, par)

    # the printed table lists every job with its fingerprint
    for j in par["jobs"]:
        assert re.search(rf"^\s*{j['job']}\s+0\s+completed\s+{j['fingerprint']}\s", proc.stdout, flags=re.M)
    # Hydra's sweep folder holds only its multirun.yaml and our summary
    sweep_dir = repo / "logs/_sweeps"
    for d in sweep_dir.iterdir():
        assert sorted(p.name for p in d.iterdir()) == ["multirun.yaml", "summary.json"]


@pytest.mark.parametrize("launcher, bad, says", [
    ("basic", "zone_profile=default,nope", "no option 'zone_profile/nope'"),
    ("basic", "seed=1,x", "seed=x"),
    ("basic", "nosuchkey=1,2", "nosuchkey"),
    ("joblib", "zone_profile=default,nope", "no option 'zone_profile/nope'"),
])
def test_bad_override_is_exit_2_one_line_nothing_run(repo: Path, launcher: str, bad: str, says: str) -> None:
    """Hydra composes every job's config in the driver before launching any, whatever the launcher."""
    if launcher == "joblib":
        need_launcher("joblib")
    proc = run_cli(repo, "-m", bad, "stage.duration_s=60", f"hydra/launcher={launcher}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], proc.stderr
    assert not (repo / "logs/d92-5").exists()  # Hydra checks every job's overrides before launching any


def test_bad_value_refuses_its_job_and_exit_is_the_worst(repo: Path) -> None:
    """A value the loader refuses (exit 2) only in some jobs: those are refused, the rest run."""
    proc, summary = sweep(repo, "stage.duration_s=-5,3,60")
    codes = {j["overrides"][0]: (j["exit_code"], j["status"]) for j in summary["jobs"]}
    assert codes == {"stage.duration_s=-5": (2, "refused"), "stage.duration_s=3": (1, "completed"),
                     "stage.duration_s=60": (0, "completed")}
    assert proc.returncode == summary["exit_code"] == 2
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: job 0 (stage.duration_s=-5):") and "> 0" in err[0]

    proc, summary = sweep(repo, "stage.duration_s=3,60")  # 3 simulated seconds: no trade, AC-1 fails
    assert proc.returncode == summary["exit_code"] == 1


def test_guard_refuses_inside_joblib_workers(repo: Path) -> None:
    """A link out of the repo in the package tree: every job, in every worker, is refused (exit 3).

    (A file Python would import instead of a source, e.g. a stray .pyc, is refused before the
    sweep starts: tests/test_code_provenance.py.)"""
    need_launcher("joblib")
    outside = repo.parent / "outside.json"
    outside.write_text("{}")
    (repo / "src/engine/ghost.json").symlink_to(outside)
    proc, summary = sweep(repo, "seed=1,2", "stage.duration_s=60", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert proc.returncode == summary["exit_code"] == 3
    assert [(j["exit_code"], j["status"]) for j in summary["jobs"]] == [(3, "refused")] * 2
    assert all(j["worker"]["pid"] != summary["driver"]["pid"] for j in summary["jobs"])
    assert "ghost.json" in proc.stderr
    assert not (repo / "logs/d92-5").exists()


def test_basic_sweep_imports_no_launcher_engine(repo: Path) -> None:
    """Ray (and joblib) are imported only by their launcher's path."""
    code = ("import sys; from src.run import main; rc = main(['-m', 'seed=1', 'stage.duration_s=60']); "
            "print('LOADED', [m for m in ('ray', 'joblib', 'loky', 'cloudpickle') if m in sys.modules]); "
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=clean_env(),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout


def test_launcher_defaults() -> None:
    assert launcher_of(["seed=1,2"]) == "basic"
    assert launcher_of(["hydra/launcher=joblib", "hydra/launcher=ray"]) == "ray"
    assert launcher_defaults("joblib", []) == []
    assert launcher_defaults("ray", []) == ["++hydra.launcher.ray.init.include_dashboard=false"]
    assert launcher_defaults("ray", ["+hydra.launcher.ray.init.include_dashboard=true",
                                     "hydra.launcher.ray.init.address=auto"]) == [
        "++hydra.launcher.ray.init.object_store_memory=null"]
    assert launcher_defaults("ray", ["hydra.launcher.ray.init.address=auto",
                                     "++hydra.launcher.ray.init.object_store_memory=100000000"]) == [
        "++hydra.launcher.ray.init.include_dashboard=false"]


def test_a_job_that_raised_is_a_crash_entry() -> None:
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf

    from src.sweep import collect

    ok = JobReturn(overrides=["seed=1"], status=JobStatus.COMPLETED, _return_value={"job": 0, "exit_code": 0})
    bad = JobReturn(overrides=["seed=2"], status=JobStatus.FAILED, _return_value=RuntimeError("disk full"),
                    hydra_cfg=OmegaConf.create({"hydra": {"job": {"num": 1}}}))
    assert collect([[bad, ok]]) == [
        {"job": 0, "exit_code": 0},
        {"job": 1, "overrides": ["seed=2"], "exit_code": 4, "status": "crashed", "error": "RuntimeError: disk full"}]


# --- Ray -----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_with_env(marker: bytes) -> list[int]:
    """Pids of this machine's processes whose environment holds `marker` (our private RAY_TMPDIR)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                if marker in Path(f"/proc/{d}/environ").read_bytes().split(b"\0"):
                    pids.append(int(d))
            except OSError:
                pass
    return pids


@contextmanager
def ray_sandbox() -> Iterator[dict[str, str]]:
    """Environment for Ray confined to this test; afterwards no process started under it survives.

    Ray's socket paths must fit in 107 bytes, so its temp folder is short (not tmp_path).
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes Ray use 127.0.0.1 rather than the
    machine's network address; RAY_AUTH_MODE=disabled keeps it from writing a token.
    """
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    env = clean_env(RAY_TMPDIR=tmp, RAY_AUTH_MODE="disabled", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
                    RAY_USAGE_STATS_ENABLED="0")

    def cleanup() -> list[int]:
        marker = f"RAY_TMPDIR={tmp}".encode()
        deadline = time.monotonic() + 20
        while (left := _processes_with_env(marker)) and time.monotonic() < deadline:
            time.sleep(0.5)  # a driver's own local cluster shuts down as the driver exits
        for pid in _processes_with_env(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        return left

    try:
        yield env
    except BaseException:
        cleanup()  # the test's own failure is the one to report
        raise
    left = cleanup()
    assert not left, f"Ray processes outlived the test and were killed: {left}"


@contextmanager
def ray_cluster(env: dict[str, str]) -> Iterator[str]:
    """A local Ray head (`ray start --head --block`), stopped by signalling that process only."""
    need_launcher("ray")
    port = _free_port()
    log = Path(env["RAY_TMPDIR"]) / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}",
             "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false",
             "--disable-usage-stats"],  # its files go under RAY_TMPDIR, where `address=auto` looks
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text(errors="replace"):
            assert head.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)  # `--block` then stops every Ray process it started (~2 s)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)


@pytest.mark.slow
def test_ray_launcher_on_a_local_cluster_matches_basic(repo: Path) -> None:
    need_launcher("ray")
    proc, basic = sweep(repo, *SMALL)
    assert proc.returncode == 0, proc.stderr
    with ray_sandbox() as env, ray_cluster(env) as address:
        t0 = time.perf_counter()
        proc, ray = sweep(repo, *SMALL, "hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}", env=env)
        wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert ray["launcher"] == "ray"
    check_jobs(repo, ray, 6)
    assert ray["driver"]["pid"] not in {j["worker"]["pid"] for j in ray["jobs"]}  # Ray worker processes
    assert_same_results(repo, basic, ray)
    print(f"ray sweep (attached, 6 jobs): {wall:.1f} s")


@pytest.mark.slow
def test_readme_sweep_commands(repo: Path) -> None:
    """Every sweep command of docs/sweeps.md, as written (tests/test_readme.py's COVERED_BY points
    here for every `python -m src.run -m` line of any page)."""
    import docpages
    cmds = [c.command for c in docpages.commands("python -m src.run -m", page_list=[Path("docs/sweeps.md")])]
    assert any("hydra/launcher=joblib" in c for c in cmds) and any("hydra/launcher=ray" in c for c in cmds)
    need_launcher("joblib")
    need_launcher("ray")
    for cmd in cmds:
        with ray_sandbox() as env:
            if "ray.init.address=auto" in cmd:  # the documented attach example: a cluster to attach to
                with ray_cluster(env):
                    proc, summary = sweep(repo, *shlex.split(cmd)[4:], env=env)
            else:
                proc, summary = sweep(repo, *shlex.split(cmd)[4:], env=env)
        assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-3000:]}"
        assert summary["jobs"] and all(j["status"] == "completed" for j in summary["jobs"]), cmd
