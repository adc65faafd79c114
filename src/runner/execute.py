"""One run, from a loaded config: guard -> open the run -> start the record -> engine -> finish the record -> report."""
from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from src.acceptance import gates
from src.config.loader import LoadedConfig
from src.config.schema import Engine
from src.engine import kpi as kpi_mod
from src.engine.loop import EngineParams, SessionResult, run_session
from src.engine.stats import venue_fees
from src.exitcodes import ExitCode
from src.market.errors import MarketInputError
from src.market.registry import build_market
from src.market.tape import Market
from src.provenance import guard, inventory
from src.provenance.fingerprint import config_digest, fingerprint
from src.provenance.gitinfo import PendingGitState
from src.provenance.record import (build_meta, deterministic_provenance, failed_meta, finish_meta, record_file,
                                   record_outputs, redact, write_record)
from src.catalog.index import index_run
from src.runner.dvcview import headline_metrics, params_values
from src.runner.engines import choose_engine, warm_kernel
from src.runner.interrupt import PROCESS as interrupts
from src.runner.plotdata import SpreadTap, write_plot_data
from src.runner.session import MarketSession
from src.runs.atomic import JsonlAppender, dumps_yaml, json_file, write_all_atomic
from src.runs.claim import RunClaim, claim_run_dir
from src.runs.iofail import RunLogHandler, describe_os_error
from src.runs.paths import RunPathError, RunPaths

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    exit_code: int
    status: str
    paths: RunPaths | None = None
    fingerprint: str | None = None
    kpis: dict[str, Any] | None = None
    acceptance: dict[str, Any] | None = None


@dataclass
class _Run:
    """What the steps of one run hand each other."""

    loaded: LoadedConfig
    engine: Engine
    warm: threading.Thread | None  # the kernel loading in the background (kernel runs)
    params: EngineParams
    market: Market
    plot_symbol: str
    claim: RunClaim
    timings: dict[str, float]  # seconds: purge_s, hardlock_s, then each step's
    meta: dict[str, Any] = field(default_factory=dict)  # runtime_meta.json, as recorded so far
    zone_kpi: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    res: SessionResult | None = None
    recorded: dict[str, Any] | None = None  # a live market's recording (path, digest, ticks, rows)
    kpis: dict[str, Any] = field(default_factory=dict)
    acceptance: dict[str, Any] = field(default_factory=dict)

    @property
    def paths(self) -> RunPaths:
        return self.claim.paths


def execute(loaded: LoadedConfig, argv: list[str], purge: dict, t_start: float, t_purge: float,
            out: Callable[[str], None] = print) -> Outcome:
    t0 = time.perf_counter()
    hardlock = guard.check_imports(loaded.root)
    if hardlock["violations"]:
        print(f"error: {'; '.join(hardlock['violations'])}", file=sys.stderr)
        return Outcome(ExitCode.PROVENANCE, "refused")
    # config_s: from the purge's end to here (composing the config, importing the runner)
    timings = {"purge_s": t_purge, "config_s": t0 - t_start - t_purge, "hardlock_s": time.perf_counter() - t0}
    run = open_run(loaded, timings)
    if isinstance(run, Outcome):
        return run
    try:
        with _run_log(run.paths):
            try:
                start_record(run, argv, purge, hardlock)
                run_engine(run)
                finish_record(run, t_start)
            except KeyboardInterrupt:
                return _ended_early(run, "interrupted", "interrupted by a second signal before the record was complete")
            except Exception as exc:  # a crash: keep what was recorded, say where the traceback is
                log.error("run_failed %s", traceback.format_exc())
                return _ended_early(run, "failed", describe_os_error(exc, run.paths))
    finally:
        interrupts.end_run()
        note = run.claim.settle(complete=True)  # a no-op when a failure above put the earlier run back
        if note:
            print(f"warning: {note}", file=sys.stderr)
        index_run(run.loaded.root, run.paths.run_dir)  # its row in the run index (never raises)
        run.claim.release()
    return report(run, out)


def open_run(loaded: LoadedConfig, timings: dict[str, float]) -> _Run | Outcome:
    """Build the market and claim the run folder; bad input is refused (exit 2) before any folder exists."""
    cfg, root = loaded.cfg, loaded.root
    engine, market_jit = choose_engine(cfg)
    if engine is not Engine.reference or market_jit:  # hook: aotsetup: no compiled module -> JIT, build at exit
        from src.engine import aot  # hook: aotsetup

        aot.defer_build()  # hook: aotsetup
    warm = warm_kernel(market_jit) if engine is not Engine.reference else None
    symbols = tuple(s.symbol for s in cfg.universe_specs)
    params = EngineParams.from_config(cfg)
    try:
        market = build_market(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s, root)
    except MarketInputError as exc:
        return _refused(str(exc))
    except Exception as exc:  # an I/O failure (one line), or a bug in a market's code (its traceback too)
        if not isinstance(exc, OSError):
            traceback.print_exc()
        print(f"error: run failed: the market could not be built: {describe_os_error(exc, None, root)}",
              file=sys.stderr)
        return Outcome(ExitCode.CRASH, "failed")  # nothing was run: no folder, no record
    plot_symbol = cfg.plots.symbol or symbols[0]
    if plot_symbol not in symbols:
        return _refused(f"plots.symbol={plot_symbol!r}: not in the universe ({', '.join(symbols)})")
    interrupts.start_run()  # before the folder exists: from here on a signal ends in a recorded `interrupted`
    try:
        claim = claim_run_dir(root, cfg.stage.id, cfg.run.id, cfg.universe.name, cfg.run.overwrite)
    except RunPathError as exc:
        interrupts.end_run()
        return _refused(str(exc))
    except OSError as exc:  # logs/ read-only, full, or not a folder: an I/O failure, nothing was run
        interrupts.end_run()
        print(f"error: cannot create the run folder: {describe_os_error(exc, None, root)}", file=sys.stderr)
        return Outcome(ExitCode.CRASH, "failed")
    return _Run(loaded, engine, warm, params, market, plot_symbol, claim, timings)


def _refused(msg: str) -> Outcome:
    print(f"error: {msg}", file=sys.stderr)
    return Outcome(ExitCode.USAGE, "refused")


@contextmanager
def _run_log(paths: RunPaths) -> Iterator[None]:
    """The root logger also writes into the run folder's run.log while the run lasts."""
    handler = RunLogHandler(paths.run_log, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def start_record(run: _Run, argv: list[str], purge: dict, hardlock: dict) -> None:
    """Write the inputs' descriptions and the record (status `running`) before the engine starts."""
    t1 = time.perf_counter()
    loaded, cfg, paths, root = run.loaded, run.loaded.cfg, run.paths, run.loaded.root
    git = PendingGitState(root)  # `git status` runs while the source files are hashed below
    applied = run.params.applied
    run.zone_kpi, zone_meta = inventory.zone_evidence(
        root, loaded.choices["zone_profile"], cfg.zone_profile.name, cfg.stage.mode.value,
        {a.symbol: a.profile_name for a in applied}, {a.symbol: a.source for a in applied})
    code = inventory.code_inventory(root)
    data_identity = run.market.identity()
    cdigest = config_digest(loaded.resolved)
    resolved = dict(loaded.resolved, run=dict(loaded.resolved["run"], id=paths.run_id))
    run.fingerprint = fingerprint(cdigest, code, run.zone_kpi["sha256"], data_identity, cfg.seed)
    config = {"digest": cdigest, "choices": loaded.choices, "resolved": resolved,
              "files": inventory.config_inventory(root, loaded.config_files)}
    config["source"] = loaded.source  # hook: cfgcache (composed by Hydra or read from the config cache)
    run.meta = build_meta(paths=paths, argv=argv, config=config, code=code, zone_profile=zone_meta,
                          data_identity=data_identity, data_location=_location(run.market), seed=cfg.seed,
                          fingerprint=run.fingerprint, purge=purge, hardlock=hardlock, git=git.result())
    shown = redact(resolved)
    write_all_atomic([(paths.resolved_config, dumps_yaml(shown).encode("utf-8")),
                      (paths.params, dumps_yaml(params_values(shown, cfg.run.dvc_namespace)).encode("utf-8")),
                      record_file(paths.runtime_meta, run.meta),
                      json_file(paths.provenance, deterministic_provenance(run.meta))])
    run.timings["record_s"] = time.perf_counter() - t1
    log.info("run_start run_id=%s stage=%s fingerprint=%s", paths.run_id, paths.stage_id, run.fingerprint)


def _location(market: Market) -> Any:
    """Where a market's data came from (files and their paths), or None for generated data."""
    return market.location() if hasattr(market, "location") else None


def run_engine(run: _Run) -> None:
    """The engine over the market, trades appended to trades.jsonl as they close; KPIs and plot data."""
    t2 = time.perf_counter()
    cfg, paths = run.loaded.cfg, run.paths
    trades = JsonlAppender(paths.trades)
    session = MarketSession(run.market, cfg, paths, interrupts.should_stop)  # recording, realtime pacing
    res = None
    try:
        tap = SpreadTap(session.market, run.plot_symbol)
        if run.engine is Engine.reference:
            res = run_session(tap, run.params, session.on_trade(trades.append), should_stop=interrupts.should_stop)
        else:  # the kernel: each chunk's trades.jsonl lines in one write; dicts only for a progress bar
            from src.engine.kernel_run import run_session_kernel

            if run.warm is not None:
                run.warm.join()
            observer = session.on_trade(_ignore)
            res = run_session_kernel(tap, run.params, None if observer is _ignore else observer,
                                     interrupts.should_stop, write=trades.write_lines)
    finally:
        trades.close()
        session.close(res)
    t3 = time.perf_counter()
    run.timings.update(engine_s=t3 - t2, market_s=tap.market_s)
    run.res = res
    run.kpis = kpi_mod.summarize(res, run.params.applied, run.zone_kpi, cfg.stage.duration_s, cfg.stage.tick_s,
                                 start_t_s=tap.first_t_s, venues=venue_fees(cfg.costs))
    run.kpis.update(session.kpis())  # market_faults, for live markets and their recordings
    write_all_atomic([json_file(paths.kpi_summary, run.kpis),
                      json_file(paths.metrics, headline_metrics(run.kpis, cfg.run.dvc_namespace))])
    t4 = time.perf_counter()
    write_plot_data(paths.plots_dir, res.trades, tap, res.ticks * cfg.stage.tick_s)
    run.timings.update(kpis_s=t4 - t3, plots_s=time.perf_counter() - t4)
    run.recorded = session.recorded


def _ignore(_trade: dict) -> None:
    pass


def finish_record(run: _Run, t_start: float) -> None:
    """Gates, then the record: status, KPIs, acceptance, timings and (last) every output's digest."""
    cfg, paths, root = run.loaded.cfg, run.paths, run.loaded.root
    final_lock = guard.check_imports(root)
    metrics = gates.build_metrics(run.kpis, paths.rel(paths.kpi_summary), run.zone_kpi, final_lock["violations"])
    run.acceptance = gates.evaluate(run.loaded.resolved["stage"]["acceptance"], metrics)
    engine: dict[str, Any] = {"name": run.engine.value, "configured": cfg.engine.value}
    if run.engine is not Engine.reference:  # which compiled code ran, and whether this run compiled it
        from src.engine.kernel_run import compile_record

        engine["kernel"] = compile_record()
    assert run.res is not None
    finish_meta(run.meta, status=_status(run), kpis=run.kpis, acceptance=run.acceptance,
                interrupted_by=interrupts.run_signal, hardlock_final=final_lock, engine=engine,
                recorded=run.recorded)
    t, res = run.timings, run.res
    run.meta["timings"] = {
        **{k: round(t[k], 6) for k in ("purge_s", "config_s", "hardlock_s", "record_s", "engine_s", "market_s",
                                         "kpis_s", "plots_s")},
        "total_s": round(time.perf_counter() - t_start, 6),
        "simulated_s_per_wall_s": (round(res.ticks * cfg.stage.tick_s / t["engine_s"], 1)
                                   if t["engine_s"] > 0 else None),
    }
    # Every output is final from here on (files added to the run folder must be written
    # above this line): their digests go into the record, which is written last.
    t3 = time.perf_counter()
    record_outputs(paths.run_dir, run.meta)
    run.meta["timings"]["outputs_s"] = round(time.perf_counter() - t3, 6)
    _keep_for_reproduce(run)
    write_record(paths.runtime_meta, run.meta)
    log.info("run_end status=%s round_trips=%d pnl_krw=%s", _status(run), run.kpis["round_trips"],
             run.kpis["total_pnl_krw"])


def _keep_for_reproduce(run: _Run) -> None:
    """The patch, untracked files and market data as blobs in DVC's cache (src/provenance/snapshot.py)."""
    from src.provenance.snapshot import keep_for_reproduce

    t, c = time.perf_counter(), time.process_time()
    paths = run.paths
    keep_for_reproduce(run.loaded.root, paths.stage_id, paths.run_id, paths.run_dir, run.meta)
    run.meta["timings"].update(reproduce_s=round(time.perf_counter() - t, 6),
                               reproduce_cpu_s=round(time.process_time() - c, 6))
    if "error" in run.meta["reproduce"]:
        print(f"warning: {run.meta['reproduce']['error']}", file=sys.stderr)


def _status(run: _Run) -> str:
    return "interrupted" if run.res is not None and run.res.interrupted else "completed"


def _ended_early(run: _Run, status: str, error: str) -> Outcome:
    """Record a failed or interrupted run, put back the run it replaced, and say so in one line."""
    paths = run.paths
    try:
        meta = failed_meta(run.meta, paths, status, error)
        record_outputs(paths.run_dir, meta)  # what exists now, so an edit to it is detected too
        write_record(paths.runtime_meta, meta)
    except Exception:  # disk full or similar; the original error matters more
        log.exception("could not record status=%s", status)
    kept = run.claim.settle(complete=False)
    if status == "interrupted":
        print(f"interrupted: {paths.rel(paths.run_dir)} (status interrupted)" + (f"; {kept}" if kept else ""),
              file=sys.stderr)
        return Outcome(ExitCode.INTERRUPTED, "interrupted", paths)
    print(f"error: run failed: {error} ({kept or f'traceback in {paths.rel(paths.run_log)}'})", file=sys.stderr)
    return Outcome(ExitCode.CRASH, "failed", paths)


def report(run: _Run, out: Callable[[str], None]) -> Outcome:
    """Print the run's summary; the exit code: interrupted, else whether every gate passed."""
    paths, kpis, status = run.paths, run.kpis, _status(run)
    out(f"run: {paths.rel(paths.run_dir)}")
    out(f"status: {status}  fingerprint: {run.fingerprint}")
    out(f"round_trips: {kpis['round_trips']}  total_pnl_krw: {kpis['total_pnl_krw']}  "
        f"total_pnl_usd: {kpis['total_pnl_usd']}  fx_rate: {kpis['fx_rate']}")
    out(gates.table(run.acceptance))
    code = (ExitCode.INTERRUPTED if status == "interrupted"
            else ExitCode.OK if run.acceptance["passed"] else ExitCode.GATE)
    return Outcome(code, status, paths, run.fingerprint, kpis, run.acceptance)
