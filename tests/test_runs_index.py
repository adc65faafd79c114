"""The run index and `python -m src.runs`: every run indexes itself, list/filters/sort, notes and
tags outside the fingerprint, gc, rebuilds, and `src.compare --last N` reading only N folders."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import clean_env, load_json, run_cli, run_dir_of

STAGE = "logs/d92-5"


def _run(repo: Path, *extra: str) -> Path:
    proc = run_cli(repo, "stage=d92-5", *extra)
    assert proc.returncode in (0, 1), proc.stderr
    return run_dir_of(proc, repo)


def _runs(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(repo, *args, module="src.runs")


def _list(repo: Path, *args: str) -> list[dict]:
    proc = _runs(repo, "list", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _rows(repo: Path) -> dict[str, tuple]:
    """The index file as the runs left it (no refresh): run id -> (status, fingerprint, seed)."""
    con = sqlite3.connect(repo / "logs/.runs.sqlite")
    try:
        return {r: (s, f, seed) for r, s, f, seed in con.execute("SELECT run_id, status, fingerprint, seed FROM runs")}
    finally:
        con.close()


def test_each_run_indexes_itself_and_list_filters_and_sorts(repo: Path) -> None:
    dirs = {seed: _run(repo, f"seed={seed}") for seed in (3, 1, 2)}
    rows = _rows(repo)  # written by the runs themselves, before any reader refreshed the index
    for seed, d in dirs.items():
        meta = load_json(d / "runtime_meta.json")
        assert rows[d.name] == ("completed", meta["fingerprint"], seed)
    got = _list(repo, "--where", "seed=2")
    assert [r["run"] for r in got] == [dirs[2].name]
    kpi = load_json(dirs[2] / "kpi_summary.json")
    assert got[0]["round_trips"] == kpi["round_trips"] and got[0]["total_pnl_krw"] == kpi["total_pnl_krw"]
    rates = {s: load_json(d / "kpi_summary.json")["win_rate"] for s, d in dirs.items()}
    lo = sorted(rates.values())[0]
    got = _list(repo, "--where", f"kpi.win_rate>{lo}", "--sort", "-seed")
    assert [r["seed"] for r in got] == sorted((s for s in rates if rates[s] > lo), reverse=True)
    assert all(r["kpi.win_rate"] == rates[r["seed"]] for r in got)
    assert [r["seed"] for r in _list(repo, "--sort", "seed", "--limit", "2")] == [1, 2]
    assert [r["run"] for r in _list(repo)] == [dirs[s].name for s in (2, 1, 3)]  # newest first
    assert [r["seed"] for r in _list(repo, "--where", "zone_profile.name=default", "--where", "seed<=2",
                                     "--where", "status=completed", "--sort", "seed")] == [1, 2]
    table = _runs(repo, "list", "--stage", "d92-5")
    assert table.returncode == 0 and dirs[1].name in table.stdout and "3 runs" in table.stdout
    assert _list(repo, "--stage", "d92-1") == []


def test_bad_keys_operators_and_runs_are_usage_errors(repo: Path) -> None:
    d = _run(repo, "seed=1")
    cases = {("list", "--where", "sed=7"): "did you mean seed?",
             ("list", "--where", "kpi.winrate>0.5"): "did you mean kpi.win_rate?",
             ("list", "--where", "seed=>7"): "expected KEY OP VALUE",
             ("list", "--where", "seed"): "expected KEY OP VALUE",
             ("list", "--where", "seed>true"): "needs a number or a text",
             ("list", "--sort", "-kpi.nope"): "unknown key 'kpi.nope'",
             ("note", d.name[:-1], "x"): f"did you mean {d.name}?",
             ("tag", d.name, "bad tag"): "tag 'bad tag' is not allowed",
             ("note", d.name, "  "): "a note needs some text"}
    for args, msg in cases.items():
        proc = _runs(repo, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and msg in lines[0], (args, proc.stderr)
    assert not (d.parent / f".{d.name}.notes.jsonl").exists()


def test_notes_and_tags_change_neither_fingerprint_nor_verification(repo: Path) -> None:
    plain = _run(repo, "seed=5", "run.id=plain")
    noted = _run(repo, "seed=5", "run.id=noted", "run.note='first try, wide zones'")
    assert load_json(noted / "runtime_meta.json")["fingerprint"] == load_json(plain / "runtime_meta.json")["fingerprint"]
    for name in ("provenance.json", "params.yaml", "kpi_summary.json", "trades.jsonl"):
        assert (noted / name).read_bytes() == (plain / name).read_bytes(), name
    assert _runs(repo, "note", "noted", "second look: fees dominate").returncode == 0
    assert _runs(repo, "tag", "logs/d92-5/noted", "keep").returncode == 0
    assert _runs(repo, "tag", "noted", "best").returncode == 0
    assert _runs(repo, "untag", "d92-5/noted", "keep").returncode == 0
    row = _list(repo, "--where", "tags=best")
    assert [r["run"] for r in row] == ["noted"]
    assert row[0]["notes"] == ["first try, wide zones", "second look: fees dominate"] and row[0]["tags"] == ["best"]
    assert [r["run"] for r in _list(repo, "--where", "notes~fees")] == ["noted"]
    check = run_cli(repo, str(noted), module="src.acceptance")  # re-check: the folder still matches its record
    assert check.returncode == 0, check.stdout + check.stderr
    cmp = run_cli(repo, "plain", "noted", "--json", module="src.compare")
    assert cmp.returncode == 0, cmp.stderr
    rep = json.loads(cmp.stdout)
    assert rep["same_fingerprint"] and rep["result_files_differ"] == [] and rep["edited"] == []


def test_index_is_rebuilt_when_missing_corrupt_or_stale(repo: Path) -> None:
    a, b = _run(repo, "seed=1"), _run(repo, "seed=2")
    index = repo / "logs/.runs.sqlite"
    index.unlink()
    assert {r["run"] for r in _list(repo)} == {a.name, b.name}
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.write_bytes(b"this is not a database" * 100)
    assert {r["run"] for r in _list(repo)} == {a.name, b.name}
    subprocess.run(["cp", "-a", str(b), str(b.parent / "copied")], check=True)  # added behind its back
    subprocess.run(["rm", "-r", str(a)], check=True)  # removed behind its back
    got = {r["run"]: r for r in _list(repo)}
    assert set(got) == {b.name, "copied"} and got["copied"]["seed"] == 2
    meta = b / "runtime_meta.json"  # a record edited behind its back: re-read, and its broken seal shows
    meta.write_text(meta.read_text().replace('"status": "completed"', '"status": "failed"'))
    got = {r["run"]: r for r in _list(repo)}
    assert got[b.name]["status"] == "edited" and got[b.name]["state"] == "edited"


def test_gc_keeps_pinned_tagged_and_last_n_and_is_a_dry_run_by_default(repo: Path) -> None:
    old = [_run(repo, f"seed={s}") for s in (1, 2, 3)]
    pinned = _run(repo, "seed=4", "run.id=pinned")
    newest = _run(repo, "seed=5")
    assert _runs(repo, "tag", old[1].name, "keep").returncode == 0
    dry = _runs(repo, "gc", "--keep-last", "1")
    assert dry.returncode == 0, dry.stderr
    assert f"would delete: logs/d92-5/{old[0].name}" in dry.stdout and f"would delete: logs/d92-5/{old[2].name}" in dry.stdout
    assert "would delete 2 run folders" in dry.stdout and all(d.is_dir() for d in old)
    done = _runs(repo, "gc", "--keep-last", "1", "--yes")
    assert done.returncode == 0 and "deleted 2 run folders" in done.stdout, done.stdout + done.stderr
    assert not old[0].exists() and not old[2].exists() and old[1].is_dir() and pinned.is_dir() and newest.is_dir()
    assert set(_rows(repo)) == {old[1].name, pinned.name, newest.name}  # gc dropped the rows itself
    assert not list((repo / STAGE).glob(".gc-*"))
    assert "would delete 0 run folders" in _runs(repo, "gc", "--keep-last", "1").stdout


def test_compare_last_reads_only_the_last_n_runs(repo: Path) -> None:
    oldest, mid, new = (_run(repo, f"seed={s}") for s in (1, 2, 3))
    (oldest / "kpi_summary.json").write_text("{ not json")  # damaged: a reader that opens it says so
    everything = run_cli(repo, "--stage", "d92-5", "--json", module="src.compare")
    assert everything.returncode == 5 and oldest.name in everything.stdout
    last = run_cli(repo, "--stage", "d92-5", "--last", "2", "--json", module="src.compare")
    assert last.returncode == 0, last.stdout + last.stderr
    assert [r["run"] for r in json.loads(last.stdout)["runs"]] == [mid.name, new.name]
    assert oldest.name not in last.stdout


def test_parallel_runs_and_an_interrupted_run_index_themselves(repo: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "src.run", "stage=d92-5", f"seed={s}", f"run.id=par{s}"],
                              cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
             for s in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode in (0, 1), err
    cc = subprocess.Popen([sys.executable, "-m", "src.run", "stage=d92-5", "clock=realtime", "run.id=cc"], cwd=repo,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    log = repo / STAGE / "cc/run.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.exists() and "run_start" in log.read_text()):
        time.sleep(0.1)
    cc.send_signal(signal.SIGINT)
    _, err = cc.communicate(timeout=60)
    assert cc.returncode == 130, err
    rows = _rows(repo)
    assert {f"par{s}" for s in range(4)} <= set(rows) and all(rows[f"par{s}"][0] == "completed" for s in range(4))
    assert rows["cc"][0] == "interrupted"
