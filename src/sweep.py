"""Hydra multirun: `python -m src.run -m zone_profile=default,wide seed=1,2,3 [hydra/launcher=joblib]`.

Hydra's sweeper expands the overrides and its launcher (basic, joblib, ray) runs one
job per combination; each job goes through the same loader and `execute` as a single
run and gets its own run folder and record. Hydra's own output folder is put under
logs/_sweeps/<sweep_id>/ with no .hydra copies; the sweep summary (every job's run
folder, fingerprint, status and KPIs) is written there at the end.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from src.runs.atomic import write_json_atomic
from src.runs.paths import LOGS_DIRNAME, find_repo_root, new_run_id

EXIT_OK, EXIT_GATE, EXIT_USAGE = 0, 1, 2


def job(cfg: Any) -> dict[str, Any]:
    """One sweep job (module-level so launchers can pickle it)."""
    from hydra.core.hydra_config import HydraConfig

    from src.config.loader import GROUPS, ConfigError, from_composed
    from src.provenance.purge import purge_bytecode
    from src.runs.execute import execute

    t0 = time.perf_counter()
    hc = HydraConfig.get()
    main_src = next(s for s in hc.runtime.config_sources if s.provider == "main")
    root = Path(str(main_src.path).removeprefix("file://")).parent  # the folder holding conf/
    choices = {k: str(v) for k, v in hc.runtime.choices.items() if k in GROUPS}
    overrides = list(hc.overrides.task)
    purge = purge_bytecode(root)
    try:  # Hydra hands the task its config with the hydra node already removed
        loaded = from_composed(root, cfg, choices, overrides)
    except ConfigError as exc:
        print(f"error: job {hc.job.num} ({' '.join(overrides)}): {exc}", file=sys.stderr)
        return {"job": hc.job.num, "overrides": overrides, "exit_code": EXIT_USAGE, "status": "refused",
                "error": str(exc)}
    outcome = execute(loaded, overrides, purge, t_start=t0, t_purge=time.perf_counter() - t0,
                      out=lambda s: None)
    return {
        "job": hc.job.num,
        "overrides": overrides,
        "exit_code": outcome.exit_code,
        "status": outcome.status,
        "run_dir": outcome.paths.rel(outcome.paths.run_dir) if outcome.paths else None,
        "fingerprint": outcome.fingerprint,
        "kpis": _headline(outcome.kpis),
        "acceptance_passed": outcome.acceptance["passed"] if outcome.acceptance else None,
    }


def _headline(kpis: dict[str, Any] | None) -> dict[str, Any] | None:
    if kpis is None:
        return None
    keys = ("round_trips", "win_rate", "total_pnl_krw", "total_pnl_usd", "fx_rate", "max_drawdown_krw")
    out = {k: kpis[k] for k in keys}
    out["exit_reasons"] = kpis["exit_reasons"]
    return out


def multirun(argv: list[str]) -> int:
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    from src.config.loader import CONFIG_NAME, ConfigError, one_line, register_schemas

    overrides = [a for a in argv if a not in ("-m", "--multirun")]
    try:
        root = find_repo_root()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sweep_id = new_run_id("sweep", "multirun")
    sweep_dir = root / LOGS_DIRNAME / "_sweeps" / sweep_id
    hydra_overrides = [
        f"hydra.sweep.dir={sweep_dir.as_posix()}",
        "hydra.sweep.subdir=${hydra.job.num}",
        "hydra.output_subdir=null",
        "hydra.job.chdir=false",
        "hydra/job_logging=none",
        "hydra/hydra_logging=none",
    ]
    register_schemas()
    GlobalHydra.instance().clear()
    t0 = time.perf_counter()
    try:
        hydra = Hydra.create_main_hydra2("src.run", create_config_search_path(str(root / "conf")))
        returns = hydra.multirun(CONFIG_NAME, job, hydra_overrides + overrides, with_log_configuration=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # Hydra's own composition/override errors
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if isinstance(exc, (HydraException, OmegaConfBaseException)):
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        raise
    finally:
        GlobalHydra.instance().clear()
    jobs = [r.return_value for batch in returns for r in batch]
    summary = {"sweep_id": sweep_id, "argv": argv, "wall_s": round(time.perf_counter() - t0, 3), "jobs": jobs}
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(sweep_dir / "summary.json", summary)
    print(f"sweep: {sweep_dir.relative_to(root).as_posix()}  jobs: {len(jobs)}")
    print(f"{'job':>3}  {'status':<11} {'fingerprint':<32}  {'trips':>5}  {'pnl_krw':>12}  gates  overrides")
    for j in jobs:
        k = j.get("kpis") or {}
        gate = {True: "PASS", False: "FAIL", None: "-"}[j.get("acceptance_passed")]
        print(f"{j['job']:>3}  {j['status']:<11} {str(j.get('fingerprint')):<32}  {k.get('round_trips', '-'):>5}  "
              f"{k.get('total_pnl_krw', '-'):>12}  {gate:<5}  {' '.join(j['overrides'])}")
    codes = [j["exit_code"] for j in jobs]
    return max(codes) if codes else EXIT_OK
