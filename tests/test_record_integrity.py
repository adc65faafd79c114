"""A run's record holds the SHA-256 of every output; acceptance and compare verify it (issue 10, 3 and 8).

An edit to any output (or to the record) is reported `edited`, naming the file, exit 5,
and a re-check never prints PASS; output files get the mode the user's umask gives.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from conftest import clean_env, load_json, run_cli
from src.provenance.outputs import output_digests
from src.provenance.record import write_record

EDITED = 5


def _run(repo: Path, run_id: str, *extra: str) -> Path:
    proc = run_cli(repo, "stage=d92-5", f"run.id={run_id}", *extra)
    assert proc.returncode in (0, 1), proc.stderr
    return repo / "logs/d92-5" / run_id


def _recheck(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(repo, *args, module="src.acceptance")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reseal(run_dir: Path) -> None:
    """Rewrite a run's record as the run itself would have: digests of what is there now, sealed.

    Stands for a nondeterministic engine that recorded honestly what it wrote."""
    meta = load_json(run_dir / "runtime_meta.json")
    meta["outputs"] = {"sha256": output_digests(run_dir)}
    write_record(run_dir / "runtime_meta.json", meta)


def test_record_holds_the_sha256_of_every_output_file(repo: Path) -> None:
    # a new output file written by any module before the record is covered without being listed
    plots = repo / "src/runner/plotdata.py"
    text = plots.read_text()
    anchor = '    return {n: f"plots/{n}.csv"'
    assert anchor in text
    extra = '    write_text_atomic(plots_dir / "extra.csv", "a,b\\n1,2\\n")\n'
    plots.write_text(text.replace(anchor, extra + anchor, 1))
    run_dir = _run(repo, "all")
    recorded = load_json(run_dir / "runtime_meta.json")["outputs"]["sha256"]
    on_disk = {p.relative_to(run_dir).as_posix(): _sha(p) for p in run_dir.rglob("*") if p.is_file()
               and p.name not in ("runtime_meta.json", "run.log")}
    assert recorded == on_disk
    for name in ("kpi_summary.json", "trades.jsonl", "config.yaml", "provenance.json", "plots/equity.csv",
                 "plots/spread.csv", "plots/extra.csv"):
        assert name in recorded, name
    check = _recheck(repo, "logs/d92-5/all")
    assert check.returncode == 0 and "acceptance: PASS" in check.stdout, check.stdout + check.stderr


def test_edited_kpi_of_a_gate_failed_run_never_passes(repo: Path) -> None:
    run_dir = _run(repo, "nogo", "costs.floor_multiplier=100")  # no entries: AC-1 fails
    assert _recheck(repo, "logs/d92-5/nogo").returncode == 1
    kpi = load_json(run_dir / "kpi_summary.json")
    kpi["exit_reasons"]["take_profit"] = kpi["round_trips"] = 3
    (run_dir / "kpi_summary.json").write_text(json.dumps(kpi, indent=2, sort_keys=True) + "\n")
    check = _recheck(repo, "logs/d92-5/nogo")
    assert check.returncode == EDITED, check.stdout + check.stderr
    assert "edited" in check.stdout and "kpi_summary.json" in check.stdout
    assert "PASS" not in check.stdout and "Traceback" not in check.stderr
    as_json = json.loads(_recheck(repo, "logs/d92-5/nogo", "--json").stdout)
    assert as_json["logs/d92-5/nogo"]["state"] == "edited" and not as_json["logs/d92-5/nogo"]["passed"]


def _set(rel: str, key: str, value: object) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        doc = load_json(run / rel)
        doc[key] = value
        (run / rel).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return edit


def _truncate_trades(run: Path) -> None:
    lines = (run / "trades.jsonl").read_text().splitlines(keepends=True)
    (run / "trades.jsonl").write_text("".join(lines[:-1]))


def _symlink_copy(run: Path) -> None:
    kpi = run / "kpi_summary.json"
    twin = run.parent / "twin.json"
    shutil.copy2(kpi, twin)
    kpi.unlink()
    kpi.symlink_to(twin)  # same bytes, through a link


def _unseal(run: Path) -> None:
    meta = load_json(run / "runtime_meta.json")
    del meta["seal"]
    (run / "runtime_meta.json").write_text(json.dumps(meta))


def _fingerprint_everywhere(run: Path) -> None:
    """The fingerprint changed in the record and in provenance.json alike."""
    for rel in ("runtime_meta.json", "provenance.json"):
        _set(rel, "fingerprint", "0" * 32)(run)


def _provenance_then_reseal(run: Path) -> None:
    """provenance.json names another fingerprint and the record's digests are recomputed:
    only the cross-check (the record's fingerprint against provenance.json's) can tell."""
    _set("provenance.json", "fingerprint", "0" * 32)(run)
    reseal(run)


EDITS: dict[str, tuple[Callable[[Path], None], str]] = {
    "provenance fingerprint, record resealed": (_provenance_then_reseal, "provenance.json"),
    "kpi value": (_set("kpi_summary.json", "total_pnl_krw", 1.0), "kpi_summary.json"),
    "trades truncated": (_truncate_trades, "trades.jsonl"),
    "trades appended": (lambda r: (r / "trades.jsonl").open("a").write('{"qty": 1}\n'), "trades.jsonl"),
    "plot deleted": (lambda r: (r / "plots/spread.csv").unlink(), "plots/spread.csv"),
    "file added": (lambda r: (r / "notes.txt").write_text("hi\n"), "notes.txt"),
    "config edited": (lambda r: (r / "config.yaml").write_text((r / "config.yaml").read_text() + "# x\n"),
                      "config.yaml"),
    "provenance fingerprint": (_set("provenance.json", "fingerprint", "0" * 32), "provenance.json"),
    "record status": (_set("runtime_meta.json", "status", "failed"), "runtime_meta.json"),
    "record fingerprint": (_set("runtime_meta.json", "fingerprint", "0" * 32), "runtime_meta.json"),
    "record acceptance": (_set("runtime_meta.json", "acceptance", {"passed": True, "results": []}),
                          "runtime_meta.json"),
    "record unsealed": (_unseal, "runtime_meta.json"),
    "record deleted": (lambda r: (r / "runtime_meta.json").unlink(), "runtime_meta.json"),
    "record status in place": (lambda r: (r / "runtime_meta.json").write_text(
        (r / "runtime_meta.json").read_text().replace('"status": "completed"', '"status": "failed"')),
        "runtime_meta.json"),
    "record re-serialised": (lambda r: (r / "runtime_meta.json").write_text(
        json.dumps(load_json(r / "runtime_meta.json"))), "runtime_meta.json"),
    "fingerprint in both": (_fingerprint_everywhere, "runtime_meta.json"),
    "same bytes via symlink": (_symlink_copy, "kpi_summary.json"),
}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import copy_repo
    repo = copy_repo(tmp_path_factory.mktemp("integrity") / "repo")
    _run(repo, "base")
    _run(repo, "twin")
    return repo


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_every_kind_of_edit_is_reported_edited(base_run: Path, edit: str) -> None:
    repo = base_run
    name = f"e-{edit.replace(' ', '-')}"
    run = repo / "logs/d92-5" / name
    shutil.copytree(repo / "logs/d92-5/base", run, symlinks=True)
    assert _recheck(repo, f"logs/d92-5/{name}").returncode == 0  # a copy is still the same run
    fn, named = EDITS[edit]
    fn(run)
    check = _recheck(repo, f"logs/d92-5/{name}")
    assert check.returncode == EDITED, (edit, check.stdout, check.stderr)
    assert named in check.stdout and "PASS" not in check.stdout, check.stdout
    pair = run_cli(repo, "twin", name, "--json", module="src.compare")
    assert pair.returncode == EDITED and "Traceback" not in pair.stderr, pair.stderr
    rep = json.loads(pair.stdout)
    assert rep["b"]["status"] in ("edited", "damaged") and not rep["nondeterminism"]
    assert any(named in p for p in rep["b"]["problems"]), rep["b"]
    shutil.rmtree(run)
    (repo / "logs/d92-5/twin.json").unlink(missing_ok=True)


def test_same_fingerprint_different_trades_is_nondeterminism(repo: Path) -> None:
    """Equal KPIs are not enough: the digests of every result file are compared."""
    _run(repo, "x")
    y = _run(repo, "y")
    lines = (y / "trades.jsonl").read_text().splitlines(keepends=True)
    trade = json.loads(lines[0])
    trade["qty"] = trade["qty"] * (1 + 1e-12)  # a last-bit difference, as another CPU would give
    lines[0] = json.dumps(trade, sort_keys=True) + "\n"
    (y / "trades.jsonl").write_text("".join(lines))
    reseal(y)
    pair = run_cli(repo, "x", "y", "--json", module="src.compare")
    assert pair.returncode == 1, pair.stdout + pair.stderr
    rep = json.loads(pair.stdout)
    assert rep["same_fingerprint"] and rep["kpis_equal"] and rep["nondeterminism"]
    assert rep["result_files_differ"] == ["trades.jsonl"]
    assert "NONDETERMINISM" in run_cli(repo, "x", "y", module="src.compare").stdout
    table = run_cli(repo, "--stage", "d92-5", module="src.compare")
    assert table.returncode == 1 and "NONDETERMINISM" in table.stdout


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_output_files_get_the_users_umask(repo: Path, umask: int) -> None:
    proc = subprocess.run([sys.executable, "-m", "src.run", "run.id=m"], cwd=repo, capture_output=True, text=True,
                          env=clean_env(), preexec_fn=lambda: os.umask(umask), timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_dir = repo / "logs/d92-5/m"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {"kpi_summary.json", "config.yaml", "runtime_meta.json", "provenance.json", "trades.jsonl",
            "equity.csv"} <= {p.name for p in files}
    for p in files:
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, (p.name, oct(p.stat().st_mode))
    for d in [run_dir, *(p for p in run_dir.rglob("*") if p.is_dir())]:
        assert d.stat().st_mode & 0o777 == 0o777 & ~umask, (d.name, oct(d.stat().st_mode))
