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
    t = meta["timings"]
    assert set(t) == {"purge_s", "config_s", "hardlock_s", "record_s", "engine_s", "market_s", "kpis_s", "plots_s",
                      "total_s", "simulated_s_per_wall_s", "outputs_s", "reproduce_s", "reproduce_cpu_s"}
    assert 0 < t["market_s"] < t["engine_s"] and t["config_s"] > 0 and t["plots_s"] > 0 and t["kpis_s"] > 0
    steps = sum(t[k] for k in ("purge_s", "config_s", "hardlock_s", "record_s", "engine_s", "kpis_s", "plots_s"))
    assert steps < t["total_s"]
    assert meta["engine"] == {"name": "reference", "configured": "auto"}
    assert final_hardlock(meta) == meta["guard"]["hardlock_final"] and recorded_outputs(meta)


# ----- the run path's fast writers: same bytes as the plain formulas ------------------------------

def _fmt_rows(*fields: object) -> bytes:
    """The plain formula csv_rows stands for: every value through _fmt, row by row."""
    from src.runner.plotdata import _fmt

    n = next(len(f) for f in fields if not isinstance(f, str))
    return "".join("".join(f if isinstance(f, str) else _fmt(float(f[i])) for f in fields)  # type: ignore[index]
                   for i in range(n)).encode()


def test_plot_numbers_are_written_as_fmt_writes_them_hand_checked() -> None:
    import numpy as np

    from src.runner.plotdata import csv_rows

    cases = [  # (value, what `f"{x:.6f}"` with trailing zeros and point stripped gives; NaN: empty)
        (0.1 + 0.2, "0.3"), (-0.0, "-0"), (0.0, "0"), (1e-7, "0"), (-1e-7, "-0"), (2.0, "2"), (-17.0, "-17"),
        (1e20, "100000000000000000000"), (86399.0, "86399"), (123.4567894, "123.456789"),
        (-21.346807, "-21.346807"),
        (0.0078125, "0.007812"),  # an exact tie: to even
        (0.0234375, "0.023438"),  # an exact tie: to even (up)
        (2.5e-06, "0.000003"),  # 2.5000000000000001e-06: above the tie, though x * 1e6 rounds to 2.5 exactly
        (3.5e-06, "0.000003"),  # 3.4999999999999999e-06: below it, though x * 1e6 is 3.5
        (1.25e-05, "0.000013"), (7407801371851.415, "7407801371851.415039"),  # x * 1e6 above 2**52: _fmt
        (4503599627.370496, "4503599627.370496"), (4503599627.3704967, "4503599627.370497"),
        (float("inf"), "inf"), (float("-inf"), "-inf"), (float("nan"), ""), (5e-324, "0"), (-5e-324, "-0"),
        (999999.9999995, "999999.999999"), (0.9999996, "1"), (-9.9999999, "-10"), (0.5, "0.5"),
        (1e15 + 0.25, "1000000000000000.25"),
    ]
    x = np.array([v for v, _ in cases])
    want = "".join(f"{s},{s}|\n" for _, s in cases).encode()
    assert csv_rows(x, ",", x, "|\n") == want
    assert want == _fmt_rows(x, ",", x, "|\n")  # the hand-checked strings are _fmt's


def test_plot_numbers_match_fmt_over_random_floats_of_every_magnitude() -> None:
    import numpy as np

    from src.runner.plotdata import csv_rows

    rng = np.random.default_rng(12)
    bits = rng.integers(0, 2**63, 4000, dtype=np.int64).view(np.float64)  # any bit pattern, NaNs and infs too
    scaled = rng.normal(0, 1, 4000) * 10.0 ** rng.integers(-9, 17, 4000)
    ties = (rng.integers(0, 10**9, 4000) + 0.5) / 1e6 * rng.choice([-1, 1], 4000)  # near a rounding tie
    near = np.nextafter(ties, np.where(rng.random(4000) < 0.5, -np.inf, np.inf))
    ints = rng.integers(-10**6, 10**6, 4000).astype(np.float64)
    for a in (bits, -bits, scaled, ties, near, ints):
        b = np.roll(a, 7)
        assert csv_rows(a, ",", b, ",BTC\n") == _fmt_rows(a, ",", b, ",BTC\n")


def test_plot_files_of_the_dvc_stages_are_the_locked_bytes(repo: Path) -> None:
    """The smoke and longrun DVC stages run through the CLI write the files dvc.lock holds, byte
    for byte (provenance.json aside: it holds the code's digest, which every commit changes)."""
    import hashlib

    import yaml

    lock = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.lock").read_text())["stages"]
    for stage, args in (("smoke", ["stage=d92-5", "run.id=smoke"]),
                        ("longrun", ["stage=d92-1", "run.id=longrun", "run.dvc_namespace=longrun"])):
        proc = run_cli(repo, *args)
        assert proc.returncode == 0, proc.stderr
        outs = [o for o in lock[stage]["outs"] if not o["path"].endswith("provenance.json")]
        assert {o["path"].rsplit("/", 1)[-1] for o in outs} >= {"spread.csv", "marks.csv", "equity.csv",
                                                                 "params.yaml", "kpi_summary.json"}
        for o in outs:
            got = hashlib.md5((repo / o["path"]).read_bytes()).hexdigest()
            assert got == o["md5"], o["path"]


@pytest.mark.slow
def test_longrun_24h_plot_files_are_todays_bytes(repo: Path) -> None:
    """The 24-hour top-100 session's plot files, pinned (SHA-256 of the files main wrote before the
    array formatter): 86,400 spread rows through csv_rows."""
    import hashlib

    proc = run_cli(repo, "stage=longrun-24h", "run.id=pin", timeout=600)
    assert proc.returncode == 0, proc.stderr
    want = {"equity.csv": "0395ff783c8279cd3f26fd548d579d3ef82b693207111ea1f9c318d98bc0e045",
            "equity_trades.csv": "59e296bdd1ce821f7cef93e59586d45d9878f880b2156780f16ac41e8c42327e",
            "exit_reasons.csv": "f06c6a89f3ef79b704ca6537042fae1000cb9dd917553a6217ce898bd711ffc8",
            "marks.csv": "c6c7047c885c5a0729e84db1a9ace1fd119332c1e0f51adddf0c96814be37878",
            "spread.csv": "59af7e3aba24c3a8c7e7c79bbe80c524a44b171fecb4dd8ef3890adeb9f90753"}
    plots = repo / "logs/longrun-24h/pin/plots"
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in plots.iterdir()} == want


def test_config_yaml_is_pyyamls_text_for_every_stage_and_libyaml_writes_it() -> None:
    import yaml

    from src.config.loader import load_config
    from src.runner.dvcview import params_values
    from src.runs.atomic import _libyaml_safe, dumps_yaml

    root = Path(__file__).resolve().parents[1]
    stages = sorted(p.stem for p in (root / "conf/stage").glob("*.yaml"))
    assert len(stages) >= 5
    for stage in stages:
        resolved = load_config([f"stage={stage}"], root).resolved
        for doc in (resolved, params_values(resolved, "longrun")):
            assert _libyaml_safe(doc), stage  # the fast path is the one taken
            assert dumps_yaml(doc) == yaml.safe_dump(doc, sort_keys=False), stage


def test_yaml_shapes_libyaml_writes_differently_take_pyyamls_emitter() -> None:
    import yaml

    from src.runs.atomic import _libyaml_safe, dumps_yaml

    long_key = {"!=:P0G{ =Wo)dg8TK{Zg 5J|+P _!qk~ 6&Dx?H MdIj b#I+S ( /O6! ^2nP|ClD/Q7,> *rs5cRa` UVR`:<UAKOyJ  "
                "Z!ukI@>I1AJ>;_efZzcU^eCm{s-X": 1}  # found by a random search: libyaml wraps it, PyYAML writes `? `
    escaped = {"k": "+\u2713\r8wf\"\rVY@M\xe9qc!3 " * 6}
    tabbed = {"k": ["a\tb " * 30]}
    for doc in (long_key, escaped, tabbed):
        assert not _libyaml_safe(doc)
        assert dumps_yaml(doc) == yaml.safe_dump(doc, sort_keys=False)
    assert yaml.dump(long_key, Dumper=yaml.CSafeDumper, sort_keys=False) != yaml.safe_dump(long_key, sort_keys=False)
    assert yaml.dump(escaped, Dumper=yaml.CSafeDumper, sort_keys=False) != yaml.safe_dump(escaped, sort_keys=False)
    ok = {"a": [1, 2.5, None, True, "x y" * 50, {"b": "1e3", "c": "yes", "d": ""}], "e": {}, "f": []}
    assert _libyaml_safe(ok) and dumps_yaml(ok) == yaml.safe_dump(ok, sort_keys=False)
    assert _libyaml_safe({0: {"a": 1}, 1: {"a": 2}}) and not _libyaml_safe({1.5: "a"}) and not _libyaml_safe({True: 1})
    assert not _libyaml_safe({"a": (1, 2)}) and not _libyaml_safe({"k" * 65: 1}) and not _libyaml_safe({"k": "\x7f"})


def test_dumps_yaml_takes_libyaml_for_a_resolved_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from src.runs.atomic import dumps_yaml

    used = []

    class Counting(yaml.CSafeDumper):  # type: ignore[misc, name-defined]
        def __init__(self, *args: object, **kwargs: object) -> None:
            used.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(yaml, "CSafeDumper", Counting)
    doc = {"stage": {"id": "d92-5", "acceptance": [{"metric": "x", "op": "<", "value": 1.0}]}, "seed": 42}
    assert dumps_yaml(doc) == yaml.safe_dump(doc, sort_keys=False) and used == [1]
    assert dumps_yaml({"k": "\u2713"}) == yaml.safe_dump({"k": "\u2713"}, sort_keys=False) and used == [1]


def test_write_all_atomic_replaces_each_file_or_none_and_leaves_no_temp(tmp_path: Path) -> None:
    from src.runs.atomic import json_file, write_all_atomic

    a, b = tmp_path / "a.csv", tmp_path / "b.json"
    a.write_text("old a")
    write_all_atomic([(a, b"new a\n"), json_file(b, {"z": 1, "a": [0.5]})])
    assert a.read_bytes() == b"new a\n" and b.read_text() == '{\n  "a": [\n    0.5\n  ],\n  "z": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.json"]
    missing = tmp_path / "no-such-folder" / "c.csv"
    with pytest.raises(OSError) as err:  # the second file cannot be made: the first is not replaced either
        write_all_atomic([(a, b"newer a"), (missing, b"c")])
    assert "no-such-folder" in str(err.value)
    assert a.read_bytes() == b"new a\n" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.json"]
    write_all_atomic([])
