"""The compare command explains what differs between runs, and flags nondeterminism."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

from conftest import load_json, run_cli
from src.provenance.record import write_record
from test_record_integrity import reseal

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
    edited = _compare(repo, "x", "y")  # an edit behind the record's back is not nondeterminism
    assert edited.returncode == 5 and "NONDETERMINISM" not in edited.stdout and "EDITED" in edited.stdout
    reseal(y)  # as if the run itself had written these KPIs
    proc = _compare(repo, "x", "y")
    assert proc.returncode == 1 and "NONDETERMINISM" in proc.stdout
    table = _compare(repo, "--stage", "d92-5")
    assert table.returncode == 1 and "NONDETERMINISM" in table.stdout


def _non_utf8(p: Path) -> None:
    p.write_bytes(b"\xff\xfe" + p.read_bytes())


def _as_list(p: Path) -> None:
    p.write_text(json.dumps([load_json(p)]))


def _retype(key: str, value: object) -> Callable[[Path], None]:
    def edit(p: Path) -> None:
        doc = load_json(p)
        doc[key] = value
        p.write_text(json.dumps(doc))
    return edit


def _drop(key: str) -> Callable[[Path], None]:
    def edit(p: Path) -> None:
        doc = load_json(p)
        del doc[key]
        p.write_text(json.dumps(doc))
    return edit


DAMAGES = {
    "kpi not utf-8": ("kpi_summary.json", _non_utf8),
    "record not utf-8": ("runtime_meta.json", _non_utf8),
    "provenance not utf-8": ("provenance.json", _non_utf8),
    "record not json": ("runtime_meta.json", lambda p: p.write_text("{not json")),
    "kpi a list": ("kpi_summary.json", _as_list),
    "provenance a list": ("provenance.json", _as_list),
    "record a list": ("runtime_meta.json", _as_list),
    "record status a number": ("runtime_meta.json", _retype("status", 5)),
    "record acceptance a list": ("runtime_meta.json", _retype("acceptance", [1, 2])),
    "record results not gates": ("runtime_meta.json", _retype("acceptance", {"results": [1, "x"]})),
    "provenance config a list": ("provenance.json", _retype("config", [1])),
    "provenance code a string": ("provenance.json", _retype("code", "x")),
    "kpi exit reasons a list": ("kpi_summary.json", _retype("exit_reasons", [1, 2])),
    "record without config": ("runtime_meta.json", _drop("config")),
    "provenance without fingerprint": ("provenance.json", _drop("fingerprint")),
    "kpi without exit reasons": ("kpi_summary.json", _drop("exit_reasons")),
}


def test_damaged_runs_are_listed_and_the_table_stands(repo: Path) -> None:
    """Each damaged folder is one row `damaged`/`edited` with its reason; the good runs stay as they are."""
    _run(repo, "good")
    _run(repo, "good2", "seed=7")
    for i, (name, (rel, damage)) in enumerate(sorted(DAMAGES.items())):
        run = repo / f"logs/d92-5/bad{i:02d}"
        shutil.copytree(repo / "logs/d92-5/good", run)
        damage(run / rel)
    (repo / "logs/d92-5/stray").mkdir()
    (repo / "logs/d92-5/stray/notes.txt").write_text("not a run\n")
    full = _compare(repo, "--stage", "d92-5", "--json")
    assert full.returncode == 5 and "Traceback" not in full.stderr, full.stderr
    rows = {r["run"]: r for r in json.loads(full.stdout)["runs"]}
    assert len(rows) == len(DAMAGES) + 3
    assert rows["good"]["status"] == rows["good2"]["status"] == "completed" and rows["good2"]["seed"] == 7
    assert rows["good"]["gates"] == "PASS" and rows["good"]["round_trips"] == load_json(
        repo / "logs/d92-5/good/kpi_summary.json")["round_trips"]
    for i, (name, (rel, _)) in enumerate(sorted(DAMAGES.items())):
        row = rows[f"bad{i:02d}"]
        assert row["status"] in ("damaged", "edited") and row["gates"] is None, (name, row)
        assert any(rel in p for p in row["problems"]), (name, row["problems"])
    assert rows["stray"]["status"] == "damaged"
    text = _compare(repo, "--stage", "d92-5")
    assert text.returncode == 5 and "damaged: bad" in text.stdout and "good2" in text.stdout
    md = _compare(repo, "--stage", "d92-5", "--markdown")
    assert md.returncode == 5 and "| good2 | completed |" in md.stdout
    for i in range(len(DAMAGES)):
        pair = _compare(repo, "good", f"bad{i:02d}")
        assert pair.returncode == 5 and "Traceback" not in pair.stderr and "good" in pair.stdout, pair.stderr


def test_table_of_runs_and_abandoned(repo: Path) -> None:
    for i in range(3):
        _run(repo, f"r{i}", f"seed={i}")
    ghost = repo / "logs/d92-5/ghost"
    ghost.mkdir()
    meta = load_json(repo / "logs/d92-5/r0/runtime_meta.json")
    meta.update(status="running", pid=2**22 + 12345, ended_at=None)  # no such process
    meta.pop("outputs")  # as a record written at the start of a run: sealed, no output digests yet
    write_record(ghost / "runtime_meta.json", meta)
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
