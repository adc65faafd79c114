"""One run, from a loaded config: guard -> claim the run folder -> engine -> record -> check."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: pinned run folders are not locked
    fcntl = None  # type: ignore[assignment]

from src.acceptance import gates
from src.config.loader import LoadedConfig
from src.config.schema import Engine
from src.engine import kpi as kpi_mod
from src.engine.loop import EngineParams, run_session
from src.market.registry import build_market
from src.market.session import MarketSession
from src.provenance import guard, inventory
from src.provenance.digests import digest_obj, sha256_file
from src.provenance.fingerprint import config_digest, fingerprint
from src.provenance.gitinfo import git_state
from src.provenance.record import (SCHEMA_VERSION, deterministic_provenance, environment, record_outputs, redact,
                                   utc_now, write_record)
from src.runs.atomic import JsonlAppender, write_json_atomic, write_text_atomic
from src.runs.dvcview import headline_metrics, params_values
from src.runs.iofail import RunLogHandler, describe_os_error, move_aside, settle_overwrite
from src.runs.paths import RunPathError, RunPaths, new_run_id, resolve_run_paths
from src.runs.plotdata import SpreadTap, write_plot_data

log = logging.getLogger(__name__)
# engine=auto runs the kernel from this many symbol-ticks up: below it the reference finishes
# before numba and the cached kernel would have loaded (~0.3 s, +~100 MB RSS).
AUTO_KERNEL_MIN_SYMBOL_TICKS = 200_000
EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_PROVENANCE, EXIT_CRASH, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


@dataclass
class Outcome:
    exit_code: int
    status: str
    paths: RunPaths | None = None
    fingerprint: str | None = None
    kpis: dict[str, Any] | None = None
    acceptance: dict[str, Any] | None = None


class _StopFlag:
    """First SIGINT/SIGTERM asks the engine to stop after the current tick; a second one aborts."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def install(self) -> None:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:
            pass  # not the main thread (e.g. inside a launcher's worker): no handlers

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


_LOCKS: dict[Path, int] = {}  # run folder -> fd holding its lock (pinned run ids), until execute ends


def _lock(paths: RunPaths) -> None:
    """Hold logs/<stage>/.<run_id>.lock: a pinned folder is never replaced or written by two runs at once."""
    if fcntl is None or paths.run_dir in _LOCKS:
        return
    fd = os.open(paths.run_dir.parent / f".{paths.run_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RunPathError(f"run folder {paths.rel(paths.run_dir)} is in use by another run right now: "
                           "wait for it to end, or pick another run.id") from None
    _LOCKS[paths.run_dir] = fd


def release_lock(paths: RunPaths | None) -> None:
    fd = _LOCKS.pop(paths.run_dir, None) if paths is not None else None
    if fd is not None:
        os.close(fd)


def claim_run_dir(root: Path, stage_id: str, run_id: str | None, universe: str, overwrite: bool) -> RunPaths:
    """Create the run folder in its final place; a pinned id replaces its folder only when asked."""
    for _ in range(20):
        paths = resolve_run_paths(root, stage_id, run_id or new_run_id(stage_id, universe))
        paths.run_dir.parent.mkdir(parents=True, exist_ok=True)
        if run_id is not None:
            _lock(paths)  # released when execute ends (or below, when the folder is refused)
        try:
            paths.run_dir.mkdir()
            return paths
        except FileExistsError:
            if run_id is None:
                continue  # a parallel run drew the same suffix in the same second
            if not overwrite:
                release_lock(paths)
                raise RunPathError(f"run folder {paths.rel(paths.run_dir)} exists: pass run.overwrite=true "
                                   "to replace it, or pick another run.id")
            move_aside(paths)  # a real folder under logs/ (resolve_run_paths refuses symlinks)
            paths.run_dir.mkdir()
            return paths
    raise RunPathError("could not find a free run id after 20 tries")


def execute(loaded: LoadedConfig, argv: list[str], purge: dict, t_start: float, t_purge: float,
            out: Callable[[str], None] = print) -> Outcome:
    cfg, root = loaded.cfg, loaded.root
    t0 = time.perf_counter()
    hardlock = guard.check_imports(root)
    if hardlock["violations"]:
        print(f"error: {'; '.join(hardlock['violations'])}", file=sys.stderr)
        return Outcome(EXIT_PROVENANCE, "refused")
    t_hardlock = time.perf_counter() - t0
    engine = cfg.engine
    if engine is Engine.auto:
        big = cfg.stage.n_ticks * len(cfg.universe_specs) >= AUTO_KERNEL_MIN_SYMBOL_TICKS
        engine = Engine.kernel if big else Engine.reference
    warm = _warm_kernel(_market_compiled(cfg)) if engine is not Engine.reference else None

    universe = cfg.universe_specs
    symbols = tuple(s.symbol for s in universe)
    params = EngineParams.from_config(cfg)
    applied = params.applied
    n_ticks = cfg.stage.n_ticks
    stop = _StopFlag()
    try:
        market = build_market(cfg.market, universe, cfg.seed, n_ticks, cfg.stage.tick_s, root)
        plot_symbol = cfg.plots.symbol or symbols[0]
        if plot_symbol not in symbols:
            raise ValueError(f"plots.symbol={plot_symbol!r}: not in the universe ({', '.join(symbols)})")
        stop.install()  # before the folder exists: from here on a signal ends in a recorded `interrupted`
        paths = claim_run_dir(root, cfg.stage.id, cfg.run.id, cfg.universe.name, cfg.run.overwrite)
    except (RunPathError, ValueError) as exc:
        stop.restore()
        print(f"error: {exc}", file=sys.stderr)
        return Outcome(EXIT_USAGE, "refused")
    except OSError as exc:  # logs/ read-only, full, or not a folder: an I/O failure, nothing was run
        stop.restore()
        print(f"error: cannot create the run folder: {describe_os_error(exc, None, root)}", file=sys.stderr)
        return Outcome(EXIT_CRASH, "failed")

    handler = RunLogHandler(paths.run_log, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    meta: dict[str, Any] = {}
    try:
        t1 = time.perf_counter()
        zone_kpi, zone_meta = inventory.zone_evidence(
            root, loaded.choices["zone_profile"], cfg.zone_profile.name, cfg.stage.mode.value,
            {a.symbol: a.profile_name for a in applied}, {a.symbol: a.source for a in applied})
        code = inventory.code_inventory(root)
        data_identity = market.identity()
        cdigest = config_digest(loaded.resolved)
        resolved = dict(loaded.resolved, run=dict(loaded.resolved["run"], id=paths.run_id))
        fp = fingerprint(cdigest, code, zone_kpi["sha256"], data_identity, cfg.seed)
        meta = {
            "schema_version": SCHEMA_VERSION,
            "run_id": paths.run_id,
            "stage_id": paths.stage_id,
            "status": "running",
            "pid": os.getpid(),  # with environment.host, tells a live run from an abandoned one
            "started_at": utc_now(),
            "ended_at": None,
            "error": None,
            "command": {"argv": redact(["python", "-m", "src.run", *argv]), "overrides": redact(list(argv))},
            "paths": {k: paths.rel(getattr(paths, k)) for k in
                      ("run_dir", "kpi_summary", "runtime_meta", "trades", "resolved_config", "run_log")},
            "config": {"digest": cdigest, "choices": loaded.choices, "resolved": redact(resolved),
                       "files": inventory.config_inventory(root, loaded.config_files)},
            "code": {"package": "src", "files": code, "digest": digest_obj({f["path"]: f["xxh3_128"] for f in code}),
                     "entry_module": {"path": "src/run.py", "sha256": sha256_file(root / "src" / "run.py")}},
            "zone_profile": zone_meta,
            "data": {"identity": data_identity, "digest": digest_obj(data_identity),  # content; where: location
                     **({"location": market.location()} if hasattr(market, "location") else {})},
            "seed": cfg.seed,
            "fingerprint": fp,
            "git": git_state(root),
            "environment": environment(),
            "guard": {"purge": purge, "hardlock": hardlock},
        }
        write_text_atomic(paths.resolved_config, yaml.safe_dump(redact(resolved), sort_keys=False))
        write_text_atomic(paths.params, yaml.safe_dump(params_values(redact(resolved), cfg.run.dvc_namespace), sort_keys=False))
        write_record(paths.runtime_meta, meta)
        write_json_atomic(paths.provenance, deterministic_provenance(meta))
        t_record = time.perf_counter() - t1
        log.info("run_start run_id=%s stage=%s fingerprint=%s", paths.run_id, paths.stage_id, fp)

        t2 = time.perf_counter()
        trades = JsonlAppender(paths.trades)
        session = MarketSession(market, cfg, paths, stop)  # live recording, clock=realtime pacing + progress
        res = None
        try:
            tap = SpreadTap(session.market, plot_symbol)
            if engine is Engine.reference:
                res = run_session(tap, params, session.on_trade(trades.append), should_stop=stop)
            else:  # the kernel: each chunk's trades.jsonl lines in one write; dicts only for a progress bar
                from src.engine.kernel_run import run_session_kernel

                if warm is not None:
                    warm.join()

                observer = session.on_trade(_ignore)
                res = run_session_kernel(tap, params, None if observer is _ignore else observer, stop,
                                         write=trades.write_lines)
        finally:
            trades.close()
            session.close(res)
        t_engine = time.perf_counter() - t2

        kpis = kpi_mod.summarize(res, applied, zone_kpi, cfg.stage.duration_s, cfg.stage.tick_s)
        kpis.update(session.kpis())  # market_faults, for live markets and their recordings
        write_json_atomic(paths.kpi_summary, kpis)
        write_json_atomic(paths.metrics, headline_metrics(kpis, cfg.run.dvc_namespace))
        write_plot_data(paths.plots_dir, res.trades, tap)
        final_lock = guard.check_imports(root)
        metrics = gates.build_metrics(kpis, paths.rel(paths.kpi_summary), zone_kpi, final_lock["violations"])
        acceptance = gates.evaluate(loaded.resolved["stage"]["acceptance"], metrics)
        status = "interrupted" if res.interrupted else "completed"
        meta.update(status=status, ended_at=utc_now(), kpis=kpis, acceptance=acceptance,
                    interrupted_by=stop.signal)
        meta["guard"]["hardlock_final"] = final_lock
        meta["engine"] = {"name": engine.value, "configured": cfg.engine.value}
        if engine is not Engine.reference:  # which compiled code ran, and whether this run compiled it
            from src.engine.kernel_run import compile_record

            meta["engine"]["kernel"] = compile_record()
        if session.recorded is not None:
            meta["data"]["recorded"] = session.recorded
        meta["timings"] = {
            "purge_s": round(t_purge, 6), "hardlock_s": round(t_hardlock, 6), "record_s": round(t_record, 6),
            "engine_s": round(t_engine, 6), "total_s": round(time.perf_counter() - t_start, 6),
            "simulated_s_per_wall_s": round(res.ticks * cfg.stage.tick_s / t_engine, 1) if t_engine > 0 else None,
        }
        # Every output is final from here on (files added to the run folder must be written
        # above this line): their digests go into the record, which is written last.
        t3 = time.perf_counter()
        record_outputs(paths.run_dir, meta)
        meta["timings"]["outputs_s"] = round(time.perf_counter() - t3, 6)
        write_record(paths.runtime_meta, meta)
        log.info("run_end status=%s round_trips=%d pnl_krw=%s", status, kpis["round_trips"], kpis["total_pnl_krw"])
    except KeyboardInterrupt:
        _fail(paths, meta, "interrupted", "interrupted by a second signal before the record was complete")
        kept = settle_overwrite(paths, complete=False)
        print(f"interrupted: {paths.rel(paths.run_dir)} (status interrupted)" + (f"; {kept}" if kept else ""),
              file=sys.stderr)
        return Outcome(EXIT_INTERRUPTED, "interrupted", paths)
    except Exception as exc:  # a crash: keep what was recorded, say where the traceback is
        log.error("run_failed %s", traceback.format_exc())
        what = describe_os_error(exc, paths)
        _fail(paths, meta, "failed", what)
        kept = settle_overwrite(paths, complete=False)
        print(f"error: run failed: {what} ({kept or f'traceback in {paths.rel(paths.run_log)}'})", file=sys.stderr)
        return Outcome(EXIT_CRASH, "failed", paths)
    finally:
        stop.restore()
        logging.getLogger().removeHandler(handler)
        handler.close()
        note = settle_overwrite(paths, complete=True)  # a no-op when a failure above put the earlier run back
        if note:
            print(f"warning: {note}", file=sys.stderr)
        release_lock(paths)

    out(f"run: {paths.rel(paths.run_dir)}")
    out(f"status: {status}  fingerprint: {fp}")
    out(f"round_trips: {kpis['round_trips']}  total_pnl_krw: {kpis['total_pnl_krw']}  "
        f"total_pnl_usd: {kpis['total_pnl_usd']}  fx_rate: {kpis['fx_rate']}")
    out(gates.table(acceptance))
    code_ = EXIT_INTERRUPTED if status == "interrupted" else (EXIT_OK if acceptance["passed"] else EXIT_GATE)
    return Outcome(code_, status, paths, fp, kpis, acceptance)


def _market_compiled(cfg: Any) -> bool:
    """Whether the synthetic market will use its compiled block generator (synthetic.py's policy)."""
    from src.config.schema import SyntheticMarketConfig
    from src.market.synthetic import JIT_MIN_SYMBOL_TICKS

    return (isinstance(cfg.market, SyntheticMarketConfig)
            and cfg.stage.n_ticks * len(cfg.universe_specs) >= JIT_MIN_SYMBOL_TICKS)


def _warm_kernel(market_too: bool = False) -> threading.Thread:
    """Load the compiled kernel (numba, LLVM, the cached code) while this thread records provenance
    and builds the market; a failure there surfaces again, normally, when the engine starts.
    market_too: the synthetic market's compiled generator as well (src/market/synth_jit.py)."""
    def run() -> None:
        try:
            from src.engine.kernel_run import warm_up

            warm_up()
            if market_too:  # hook: aot - the ahead-of-time module holds the market's block too
                from src.engine import aot

                if not aot.engine().aot:
                    from src.market import synth_jit

                    synth_jit.warm_up()
        except Exception:  # noqa: BLE001 - re-raised by the engine's own import/call
            log.debug("kernel warm-up failed", exc_info=True)
    thread = threading.Thread(target=run, name="kernel-warm-up", daemon=True)
    thread.start()
    return thread


def _ignore(_trade: dict) -> None:
    pass


def _fail(paths: RunPaths, meta: dict[str, Any], status: str, error: str) -> None:
    """Record a failed or interrupted run; never let this hide the original error."""
    try:
        meta = dict(meta or {"schema_version": SCHEMA_VERSION, "run_id": paths.run_id, "stage_id": paths.stage_id})
        meta.update(status=status, ended_at=utc_now(), error=error)
        record_outputs(paths.run_dir, meta)  # what exists now, so an edit to it is detected too
        write_record(paths.runtime_meta, meta)
    except Exception:  # disk full or similar; the original error matters more
        log.exception("could not record status=%s", status)
