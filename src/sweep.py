"""Hydra multirun: `python -m src.run -m zone_profile=default,wide,tight seed=1,2,3 [hydra/launcher=joblib|ray]`.

Hydra's basic sweeper expands the overrides and a launcher runs one job per
combination: `basic` (one after another, in this process), `joblib` (local loky worker
processes, extra `[joblib]`) or `ray` (Ray tasks on a local or attached cluster, extra
`[ray]`). Each job goes through the same loader and `execute` as a single run, so it
runs the import-provenance guard in whatever process it lands in and gets its own run
folder and record. Hydra's output folder is put under logs/_sweeps/<sweep_id>/ with no
.hydra copies; the summary (every job's run folder, fingerprint, status, exit code and
KPIs) is written there at the end. The exit code is the worst job's.

Worker processes find the project as the parent does: loky workers inherit the parent's
sys.path and Ray adds the driver's sys.path to its workers', and `python -m src.run`
puts the repo root first on it. The job takes the repo root from the config source
Hydra composed from (<root>/conf), never from its working folder (a Ray worker's is
the cluster's); the guard then refuses the job if `src` came from anywhere else.
"""
from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from src.exitcodes import ExitCode
from src.runner.interrupt import PROCESS as interrupts
from src.runs.atomic import write_json_atomic, write_text_atomic
from src.runs.paths import LOGS_DIRNAME, RepoRootError, find_repo_root, new_run_id

RAY_INIT = "hydra.launcher.ray.init"


def job(cfg: Any) -> dict[str, Any]:
    """One sweep job (module-level so launchers can pickle it by reference)."""
    from hydra.core.hydra_config import HydraConfig

    t0 = time.perf_counter()
    hc = HydraConfig.get()
    num, overrides = int(hc.job.num), list(hc.overrides.task)
    base = {"job": num, "overrides": overrides, "worker": {"host": socket.gethostname(), "pid": os.getpid()}}
    if interrupts.job_interrupted:  # an earlier job in this process was interrupted: skip the rest
        return dict(base, exit_code=ExitCode.INTERRUPTED, status="skipped", error="an earlier job was interrupted")
    try:
        root = job_root(hc)
    except RepoRootError as exc:
        print(f"error: job {num}: {exc}", file=sys.stderr)
        return dict(base, exit_code=ExitCode.USAGE, status="refused", error=str(exc))

    from src.provenance.purge import purge_bytecode
    # As in src.run: only stdlib-only project modules (this one, exitcodes, interrupt, paths, atomic,
    # purge) come before the purge; the config, engine and record modules are imported after it, from source.
    purge = purge_bytecode(root)
    t_purge = time.perf_counter() - t0
    from src.config.loader import GROUPS, ConfigError, from_composed
    from src.runner.execute import execute

    choices = {k: str(v) for k, v in hc.runtime.choices.items() if k in GROUPS}
    try:  # Hydra hands the task its config with the hydra node already removed
        loaded = from_composed(root, cfg, choices, overrides)
    except ConfigError as exc:
        print(f"error: job {num} ({' '.join(overrides)}): {exc}", file=sys.stderr)
        return dict(base, exit_code=ExitCode.USAGE, status="refused", error=str(exc))
    outcome = execute(loaded, overrides, purge, t_start=t0, t_purge=t_purge, out=lambda s: None)
    interrupts.note_job(outcome.status)
    kpis = None if outcome.kpis is None else {k: v for k, v in outcome.kpis.items() if k != "per_symbol"}
    return dict(
        base,
        exit_code=outcome.exit_code,
        status=outcome.status,
        run_dir=outcome.paths.rel(outcome.paths.run_dir) if outcome.paths else None,
        fingerprint=outcome.fingerprint,
        acceptance_passed=outcome.acceptance["passed"] if outcome.acceptance else None,
        kpis=kpis,
        wall_s=round(time.perf_counter() - t0, 3),
    )


def job_root(hc: Any) -> Path:
    """The repo root of the conf/ this job was composed from (not the worker's cwd)."""
    main = [s for s in hc.runtime.config_sources if s.provider == "main" and s.schema == "file"]
    if main:
        conf = Path(str(main[0].path).removeprefix("file://"))
        if (conf / "config.yaml").is_file():
            return conf.resolve().parent
    return find_repo_root()  # raises RepoRootError with what to do


def launcher_of(overrides: Sequence[str]) -> str:
    """The launcher a sweep's overrides pick (the last `hydra/launcher=` wins; default basic)."""
    name = "basic"
    for o in overrides:
        if o.startswith("hydra/launcher="):
            name = o.split("=", 1)[1]
    return name


def launcher_defaults(launcher: str, overrides: Sequence[str]) -> list[str]:
    """Overrides we add for a launcher, each only if the user did not set that key.

    Ray: no dashboard (a web server and a port nobody asked for); and when attaching to
    a running cluster (`address=...`), no object store size (hydra-ray-launcher sets
    one by default, which makes `ray.init` refuse to attach).
    """
    if launcher != "ray":
        return []
    given = {o.split("=", 1)[0].lstrip("+~"): o.split("=", 1)[1] for o in overrides if "=" in o}
    out = []
    if f"{RAY_INIT}.include_dashboard" not in given:
        out.append(f"++{RAY_INIT}.include_dashboard=false")
    if given.get(f"{RAY_INIT}.address", "null") not in ("null", "") and f"{RAY_INIT}.object_store_memory" not in given:
        out.append(f"++{RAY_INIT}.object_store_memory=null")
    return out


def collect(returns: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Each job's result; a job that raised (the launcher caught it) becomes a crash entry."""
    from hydra.core.utils import JobStatus

    from src.config.loader import one_line

    jobs = []
    for r in (r for batch in returns for r in batch):
        if r.status == JobStatus.COMPLETED:
            jobs.append(r.return_value)
            continue
        exc = r._return_value  # the exception run_job caught
        err = one_line(exc) if isinstance(exc, BaseException) else str(exc)
        num = r.hydra_cfg.hydra.job.num if r.hydra_cfg is not None else len(jobs)
        print(f"error: job {num} crashed: {type(exc).__name__}: {err}", file=sys.stderr)
        jobs.append({"job": num, "overrides": list(r.overrides or []), "exit_code": ExitCode.CRASH,
                     "status": "crashed", "error": f"{type(exc).__name__}: {err}"})
    return sorted(jobs, key=lambda j: j["job"])


def multirun(argv: list[str]) -> int:
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    from src.config.loader import CONFIG_NAME, ConfigError, one_line, register_schemas

    overrides = [a for a in argv if a not in ("-m", "--multirun")]
    try:
        root = find_repo_root()
    except RepoRootError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    try:  # every override takes effect in every job or the sweep is refused before any job runs
        from src.config.loader import check_command_line
        check_command_line(root, overrides, sweep=True)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    launcher = launcher_of(overrides)
    sweep_id = new_run_id("sweep", launcher if re.fullmatch(r"[A-Za-z0-9_]+", launcher) else "multirun")
    sweep_dir = root / LOGS_DIRNAME / "_sweeps" / sweep_id
    hydra_overrides = [
        f"hydra.sweep.dir={sweep_dir.as_posix()}",
        "hydra.sweep.subdir=.",  # jobs write only into their own run folders: no per-job Hydra folder
        "hydra.output_subdir=null", "hydra.job.chdir=false", "hydra/job_logging=none", "hydra/hydra_logging=none",
        *launcher_defaults(launcher, overrides),
    ]
    register_schemas()
    GlobalHydra.instance().clear()
    t0 = time.perf_counter()
    try:
        hydra = Hydra.create_main_hydra2("src.run", create_config_search_path(str(root / "conf")))
        returns = hydra.multirun(CONFIG_NAME, job, hydra_overrides + overrides, with_log_configuration=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        _drop_unused(sweep_dir)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print(f"interrupted: sweep {sweep_dir.relative_to(root).as_posix()} (no summary)", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # Hydra's own composition/override errors
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if isinstance(exc, (HydraException, OmegaConfBaseException)):
            print(f"error: {one_line(exc)}", file=sys.stderr)
            _drop_unused(sweep_dir)
            return ExitCode.USAGE
        raise
    finally:
        GlobalHydra.instance().clear()
        _redact_hydra_copy(sweep_dir / "multirun.yaml")
    return write_summary(collect(returns), argv, launcher, sweep_id, sweep_dir, root, t0)


def write_summary(jobs: list[dict[str, Any]], argv: list[str], launcher: str, sweep_id: str, sweep_dir: Path,
                  root: Path, t0: float) -> int:
    """summary.json in the sweep folder and the table on stdout; returns the worst job's exit code."""
    from src.provenance.record import redact

    for j in jobs:  # the command line as typed may hold a secret: redacted as in runtime_meta.json
        j["overrides"] = redact(j["overrides"])
    codes = [j["exit_code"] for j in jobs]
    summary = {
        "sweep_id": sweep_id,
        "argv": redact(argv),
        "launcher": launcher,
        "driver": {"host": socket.gethostname(), "pid": os.getpid()},
        "wall_s": round(time.perf_counter() - t0, 3),
        "exit_code": max(codes) if codes else ExitCode.OK,
        "jobs": jobs,
    }
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(sweep_dir / "summary.json", summary)
    print_table(summary, sweep_dir.relative_to(root).as_posix())
    return summary["exit_code"]


def _drop_unused(sweep_dir: Path) -> None:
    """A sweep refused before any job ran leaves no folder (Hydra writes multirun.yaml first)."""
    if sweep_dir.is_dir() and {p.name for p in sweep_dir.iterdir()} <= {"multirun.yaml"}:
        (sweep_dir / "multirun.yaml").unlink(missing_ok=True)
        sweep_dir.rmdir()


def _redact_hydra_copy(path: Path) -> None:
    """Hydra's own copy of the sweep config (multirun.yaml) holds the overrides as typed: redact it too."""
    if not path.is_file():
        return
    import yaml

    from src.provenance.record import redact

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    clean = redact(data)
    if clean != data:
        write_text_atomic(path, yaml.safe_dump(clean, sort_keys=False))


def print_table(summary: dict[str, Any], where: str) -> None:
    print(f"sweep: {where}  launcher: {summary['launcher']}  jobs: {len(summary['jobs'])}  "
          f"wall_s: {summary['wall_s']}  exit: {summary['exit_code']}")
    print(f"{'job':>3}  {'exit':>4}  {'status':<11} {'fingerprint':<32}  {'trips':>5}  {'win_rate':>8}  "
          f"{'pnl_krw':>12}  gates  overrides")
    for j in summary["jobs"]:
        k = j.get("kpis") or {}
        gate = {True: "PASS", False: "FAIL", None: "-"}[j.get("acceptance_passed")]
        print(f"{j['job']:>3}  {j['exit_code']:>4}  {j['status']:<11} {str(j.get('fingerprint') or '-'):<32}  "
              f"{k.get('round_trips', '-'):>5}  {k.get('win_rate', '-'):>8}  {k.get('total_pnl_krw', '-'):>12}  "
              f"{gate:<5}  {' '.join(j['overrides'])}")
    print(f"summary: {where}/summary.json")
