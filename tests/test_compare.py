"""The compare command explains what differs between runs, and flags nondeterminism."""
from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import load_json, run_cli

KEY = "zone_profile.profiles.alt_advisory.zones.0.tp_bps"


def _run(repo: Path, run_id: str, *extra: str) -> Path:
    proc = run_cli(repo, "stage=d92-5", f"run.id={run_id}", *extra)
    assert proc.returncode in (0, 1), proc.stderr
    return repo / "logs/d92-5" / run_id


def _compare(repo: Path, *args: str):
    return run_cli(repo, *args, module="src.compare")


def test_names_the_changed_value_and_file_and_kpi_deltas(repo: Path) -> None:
    _run(repo, "base")
    zp = repo / "conf/zone_profile/default.yaml"
    zp.write_text(zp.read_text().replace("tp_bps: 35.0", "tp_bps: 39.5", 1))
    exits = repo / "src/engine/exits.py"
    exits.write_text(exits.read_text().replace("    hold = t - pos.entry_t_s\n", "    hold = t - pos.entry_t_s  # held\n"))
    _run(repo, "changed")
    proc = _compare(repo, "base", "changed", "--json")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert [c["key"] for c in rep["config_values"]] == [KEY]
    assert rep["config_values"][0]["a"] == 35.0 and rep["config_values"][0]["b"] == 39.5
    assert [f["path"] for f in rep["code_files"]] == ["src/engine/exits.py"]
    assert [f["path"] for f in rep["config_files"]] == ["conf/zone_profile/default.yaml"]
    assert rep["zone_profile"]["a"]["sha256"] != rep["zone_profile"]["b"]["sha256"]
    assert rep["data"] is None and not rep["same_fingerprint"]
    base, changed = (load_json(repo / f"logs/d92-5/{r}/kpi_summary.json") for r in ("base", "changed"))
    deltas = {d["kpi"]: d for d in rep["kpi_deltas"]}
    if base["total_pnl_krw"] != changed["total_pnl_krw"]:
        assert deltas["total_pnl_krw"]["delta"] == round(changed["total_pnl_krw"] - base["total_pnl_krw"], 6)
    text = _compare(repo, "base", "changed").stdout
    assert KEY in text and "src/engine/exits.py" in text and "KPI deltas" in text
    md = _compare(repo, "base", "changed", "--markdown").stdout
    assert "### Config values that differ (1)" in md and f"| {KEY} | 35 | 39.5 |" in md


def test_same_inputs_same_fingerprint_and_kpis(repo: Path) -> None:
    _run(repo, "x")
    _run(repo, "y")
    proc = _compare(repo, "logs/d92-5/x", "y", "--json")
    assert proc.returncode == 0
    rep = json.loads(proc.stdout)
    assert rep["same_fingerprint"] and rep["kpis_equal"] and not rep["nondeterminism"]
    assert rep["config_values"] == [] and rep["code_files"] == [] and rep["kpi_deltas"] == []


def test_same_fingerprint_different_kpis_is_nondeterminism(repo: Path) -> None:
    _run(repo, "x")
    y = _run(repo, "y")
    kpi = load_json(y / "kpi_summary.json")
    kpi["round_trips"] += 1
    (y / "kpi_summary.json").write_text(json.dumps(kpi))
    proc = _compare(repo, "x", "y")
    assert proc.returncode == 1 and "NONDETERMINISM" in proc.stdout
    table = _compare(repo, "--stage", "d92-5")
    assert table.returncode == 1 and "NONDETERMINISM" in table.stdout


def test_table_of_runs_and_abandoned(repo: Path) -> None:
    for i in range(3):
        _run(repo, f"r{i}", f"seed={i}")
    ghost = repo / "logs/d92-5/ghost"
    ghost.mkdir()
    meta = load_json(repo / "logs/d92-5/r0/runtime_meta.json")
    meta.update(status="running", pid=2**22 + 12345, ended_at=None)  # no such process
    (ghost / "runtime_meta.json").write_text(json.dumps(meta))
    proc = _compare(repo, "--stage", "d92-5", "--last", "3")
    assert proc.returncode == 0, proc.stderr
    assert "3 runs" in proc.stdout
    full = _compare(repo, "--stage", "d92-5", "--json")
    rows = {r["run"]: r for r in json.loads(full.stdout)["runs"]}
    assert rows["ghost"]["status"] == "abandoned" and rows["r1"]["seed"] == 1
    assert "abandoned" in _compare(repo, "--stage", "d92-5").stdout
    md = _compare(repo, "--stage", "d92-5", "--markdown").stdout
    assert md.startswith("| run | status |")


def test_unknown_run_is_a_usage_error(repo: Path) -> None:
    proc = _compare(repo, "nope", "nada")
    assert proc.returncode == 2 and "nope" in proc.stderr and "Traceback" not in proc.stderr
    assert _compare(repo, "only-one").returncode == 2
    assert os.path.isdir(repo / "logs")
