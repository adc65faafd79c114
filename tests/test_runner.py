"""The orchestration layer's own rules: market errors, the run-folder claim, interrupts, exit codes,
the record's layout (src/runner/, src/runs/claim.py, src/exitcodes.py, src/provenance/record.py)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from conftest import load_json, run_cli
from src.exitcodes import ExitCode
from src.provenance.record import (acceptance_rules, build_meta, deterministic_provenance, failed_meta,
                                   final_hardlock, recorded_outputs, run_process, started_at)
from src.runner.interrupt import Interrupts, reraise_if_interrupted
from src.runs.claim import claim_run_dir
from src.runs.paths import RUN_FILE_NAMES, RunPathError, resolve_run_paths, run_files
from stress.helpers import assert_clean_user_error, run_folders

INJECT = '''

def _injected(self, *args, **kwargs):  # injected by tests/test_runner.py
    {body}


SyntheticMarket.__init__ = _injected
'''


def _break_market(repo: Path, body: str) -> None:
    with open(repo / "src/market/synthetic.py", "a", encoding="utf-8") as fh:
        fh.write(INJECT.format(body=body))


def test_a_bug_in_market_code_is_a_crash_not_a_usage_error(repo: Path) -> None:
    """A plain ValueError from a market's code is a bug: exit 4 with its traceback, never `error:` exit 2."""
    _break_market(repo, 'raise ValueError("injected bug in the market code")')
    proc = run_cli(repo, "run.id=bug")
    assert proc.returncode == ExitCode.CRASH == 4, (proc.stdout, proc.stderr)
    assert "Traceback" in proc.stderr and "injected bug in the market code" in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: run failed: the market could not be built: ValueError: injected"), last
    assert run_folders(repo) == []


def test_a_market_that_cannot_read_its_input_says_so_in_one_line(repo: Path) -> None:
    _break_market(repo, 'raise OSError(5, "Input/output error", "data/ticks.parquet")')
    proc = run_cli(repo, "run.id=eio")
    assert proc.returncode == ExitCode.CRASH and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == ("error: run failed: the market could not be built: "
                                   "data/ticks.parquet: Input/output error (EIO)")
    assert run_folders(repo) == []


def test_bad_market_input_is_a_usage_error(repo: Path) -> None:
    """MarketInputError (bad input found while the market is built): one line, exit 2, no folder."""
    _break_market(repo, 'from src.market.errors import MarketInputError\n'
                        '    raise MarketInputError("market.x=1: injected bad input: use 2")')
    proc = run_cli(repo, "run.id=bad")
    assert_clean_user_error(proc, 2, "market.x=1: injected bad input: use 2")
    assert run_folders(repo) == []


def test_a_held_claim_refuses_a_second_one_until_released(tmp_path: Path) -> None:
    first = claim_run_dir(tmp_path, "d92-5", "pinned", "top10", overwrite=False)
    assert first.paths.run_dir.is_dir() and (tmp_path / "logs/d92-5/.pinned.lock").is_file()
    with pytest.raises(RunPathError, match="in use by another run"):
        claim_run_dir(tmp_path, "d92-5", "pinned", "top10", overwrite=True)
    first.release()
    first.release()  # idempotent
    with pytest.raises(RunPathError, match="exists: pass run.overwrite=true"):
        claim_run_dir(tmp_path, "d92-5", "pinned", "top10", overwrite=False)
    again = claim_run_dir(tmp_path, "d92-5", "pinned", "top10", overwrite=True)  # the refusal released its lock
    again.release()


def test_an_overwrite_keeps_the_earlier_run_until_settled(tmp_path: Path) -> None:
    first = claim_run_dir(tmp_path, "s", "r", "u", overwrite=False)
    (first.paths.run_dir / "kpi_summary.json").write_text("{}")
    first.release()
    failed = claim_run_dir(tmp_path, "s", "r", "u", overwrite=True)
    assert not (failed.paths.run_dir / "kpi_summary.json").exists()  # a fresh folder; the earlier one aside
    note = failed.settle(complete=False)
    assert "the earlier run in logs/s/r was kept" in note
    assert (tmp_path / "logs/s/r/kpi_summary.json").read_text() == "{}"
    assert failed.settle(complete=False) is None  # settled once
    failed.release()
    done = claim_run_dir(tmp_path, "s", "r", "u", overwrite=True)
    assert done.settle(complete=True) is None and not (tmp_path / "logs/s/r/kpi_summary.json").exists()
    assert [p.name for p in (tmp_path / "logs/s").iterdir() if ".replaced-" in p.name] == []
    done.release()


def test_ad_hoc_ids_never_lock(tmp_path: Path) -> None:
    a = claim_run_dir(tmp_path, "s", None, "top10", overwrite=False)
    b = claim_run_dir(tmp_path, "s", None, "top10", overwrite=False)
    assert a.paths.run_dir != b.paths.run_dir and not list((tmp_path / "logs/s").glob(".*.lock"))


def test_first_signal_asks_to_stop_second_aborts_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    stop = Interrupts()
    stop.start_run()
    try:
        assert not stop.should_stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.should_stop() and stop.run_signal == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert stop.run_signal == "SIGTERM"  # the first signal is the one recorded
    finally:
        stop.end_run()
    assert signal.getsignal(signal.SIGTERM) is before
    stop.start_run()  # a second run in the same process starts with no stop request
    stop.end_run()
    assert not stop.should_stop()


def test_a_sweep_process_skips_jobs_after_an_interrupted_one() -> None:
    state = Interrupts()
    state.note_job("completed")
    assert not state.job_interrupted
    state.note_job("interrupted")
    assert state.job_interrupted


def test_an_interrupt_anywhere_in_the_chain_is_an_interrupt() -> None:
    try:
        try:
            raise KeyboardInterrupt
        finally:
            None.flags  # type: ignore[attr-defined]  # what a half-built node does in its `finally`
    except AttributeError as exc:
        inner = exc
    wrapped = TypeError("config error")
    wrapped.__cause__ = inner
    with pytest.raises(KeyboardInterrupt):
        reraise_if_interrupted(wrapped)
    reraise_if_interrupted(TypeError("a plain error"))  # no interrupt: nothing raised


def test_exit_codes_are_the_documented_numbers() -> None:
    assert {c.name: int(c) for c in ExitCode} == {"OK": 0, "GATE": 1, "USAGE": 2, "PROVENANCE": 3, "CRASH": 4,
                                                  "EDITED": 5, "INTERRUPTED": 130}


def test_run_files_of_a_folder_match_the_resolver(tmp_path: Path) -> None:
    made = resolve_run_paths(tmp_path, "d92-5", "x")
    read = run_files(made.run_dir)
    assert read == made
    assert {getattr(made, k).name for k in RUN_FILE_NAMES} == set(RUN_FILE_NAMES.values())


def _meta(tmp_path: Path) -> dict:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/run.py").write_text("print(1)\n")
    paths = resolve_run_paths(tmp_path, "d92-5", "r1")
    config = {"digest": "cd", "choices": {"stage": "d92-5"},
              "resolved": {"run": {"id": "r1"}, "api_key": "k", "stage": {"acceptance": {"rules": []}}},
              "files": [{"path": "conf/config.yaml", "xxh3_128": "c1"}]}
    return build_meta(paths=paths, argv=["seed=1", "+api_key=abc"], config=config,
                      code=[{"path": "src/run.py", "xxh3_128": "a1"}],
                      zone_profile={"path": "z", "name": "n", "sha256": "s", "mode": "m", "profiles_applied": {},
                                    "mtime_ns": 1},
                      data_identity={"generator": "g", "seed": 1}, data_location=None, seed=1, fingerprint="fp",
                      purge={}, hardlock={"violations": []})


def test_the_record_layout_is_written_and_read_by_one_module(tmp_path: Path) -> None:
    meta = _meta(tmp_path)
    assert meta["status"] == "running" and meta["paths"]["run_dir"] == "logs/d92-5/r1"
    assert meta["command"]["argv"][:3] == ["python", "-m", "src.run"]
    assert meta["command"]["overrides"] == ["seed=1", "+api_key=***redacted***"]
    assert meta["config"]["resolved"]["api_key"] == "***redacted***" and "location" not in meta["data"]
    assert meta["code"]["entry_module"]["path"] == "src/run.py"
    assert acceptance_rules(meta) == {"rules": []} and final_hardlock(meta) == {"violations": []}
    assert recorded_outputs(meta) is None and run_process(meta) == (meta["environment"]["host"], os.getpid())
    prov = deterministic_provenance(meta)
    assert prov["fingerprint"] == "fp" and prov["code"]["files"] == {"src/run.py": "a1"}
    assert "mtime_ns" not in prov["zone_profile"] and "started_at" not in prov
    failed = failed_meta(meta, resolve_run_paths(tmp_path, "d92-5", "r1"), "failed", "boom")
    assert failed["status"] == "failed" and failed["error"] == "boom" and meta["status"] == "running"


def test_record_accessors_survive_hand_edited_records() -> None:
    odd = {"guard": "x", "outputs": [], "pid": "12", "environment": None, "started_at": 5}
    assert final_hardlock(odd) == {} and recorded_outputs(odd) is None
    assert run_process(odd) == (None, None) and started_at(odd) is None
    with pytest.raises((KeyError, TypeError)):
        acceptance_rules({"config": {"resolved": None}})
    assert final_hardlock({"guard": {"hardlock": {"violations": ["v"]}}}) == {"violations": ["v"]}


def test_a_run_records_its_layout_through_the_cli(repo: Path) -> None:
    proc = run_cli(repo, "run.id=lay")
    assert proc.returncode == 0, proc.stderr
    meta = load_json(repo / "logs/d92-5/lay/runtime_meta.json")
    assert set(meta) == {"schema_version", "run_id", "stage_id", "status", "pid", "started_at", "ended_at", "error",
                         "command", "paths", "config", "code", "zone_profile", "data", "seed", "fingerprint", "git",
                         "environment", "guard", "kpis", "acceptance", "interrupted_by", "engine", "timings",
                         "outputs", "reproduce", "seal"}
    assert meta["status"] == "completed" and meta["interrupted_by"] is None
    assert set(meta["timings"]) == {"purge_s", "hardlock_s", "record_s", "engine_s", "total_s",
                                    "simulated_s_per_wall_s", "outputs_s", "reproduce_s", "reproduce_cpu_s"}
    assert meta["engine"] == {"name": "reference", "configured": "auto"}
    assert final_hardlock(meta) == meta["guard"]["hardlock_final"] and recorded_outputs(meta)
