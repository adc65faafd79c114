"""A fresh `git clone` holds the DVC stages' run folders without runtime_meta.json (git-ignored, per
machine) and without trades.jsonl (DVC's cache): they are `committed`, checked against dvc.lock,
the same word and treatment in `src.runs list`, `src.compare`, `src.report` and `src.api.load_runs`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import GIT, clean_env, dvc, git_commit, load_json, run_cli

SMOKE = "logs/d92-5/smoke"


def _json(proc: subprocess.CompletedProcess[str], code: int = 0) -> dict | list:
    assert proc.returncode == code and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _load_runs(clone: Path) -> list[dict]:
    code = ("from src.api import load_runs; f = load_runs(); print(f[[c for c in ('run', 'status', 'state', "
            "'problems', 'fingerprint', 'round_trips', 'gates', 'config.seed') if c in f]].to_json(orient='records'))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True, text=True, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_fresh_clone_lists_dvc_stage_folders_as_committed_not_damaged(dvc_repo: Path, tmp_path: Path) -> None:
    proc = dvc(dvc_repo, "repro", "smoke")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    git_commit(dvc_repo, "smoke")
    clone = tmp_path / "clone"
    subprocess.run([*GIT, "clone", "-q", str(dvc_repo), str(clone)], check=True, capture_output=True)
    run = clone / SMOKE
    assert (run / "kpi_summary.json").is_file() and not (run / "runtime_meta.json").exists()
    assert not (run / "trades.jsonl").exists()  # in DVC's cache, not in git
    kpi, prov = load_json(run / "kpi_summary.json"), load_json(run / "provenance.json")

    [row] = _json(run_cli(clone, "list", "--json", module="src.runs"))
    assert (row["run"], row["status"], row["state"]) == ("smoke", "committed", "committed")
    assert row["fingerprint"] == prov["fingerprint"] and row["round_trips"] == kpi["round_trips"]
    assert row["seed"] == 42 and row["gates"] == "PASS"
    text = run_cli(clone, "list", module="src.runs")
    assert text.returncode == 0 and "committed" in text.stdout and "damaged" not in text.stdout

    pair = _json(run_cli(clone, SMOKE, "HEAD", "--json", module="src.compare"))
    assert pair["a"]["status"] == "committed" and pair["same_fingerprint"] and pair["kpis_equal"]
    assert not pair["nondeterminism"] and not pair["edited"] and pair["not_results"] == []
    assert "no local record" in pair["committed"][0]["problems"][0]
    table = _json(run_cli(clone, "--stage", "d92-5", "--json", module="src.compare"))
    [crow] = table["runs"]
    assert crow["status"] == "committed" and crow["gates"] == "PASS" and crow["problems"] == row["problems"]

    rep = run_cli(clone, SMOKE, "-o", str(tmp_path / "r.html"), module="src.report")
    assert rep.returncode == 0, rep.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'banner info"><b class="run-label">' in page and "committed: no local record" in page
    assert "not a finished result" not in page

    acc = run_cli(clone, SMOKE, module="src.acceptance")
    assert acc.returncode == 0 and "committed: no local record" in acc.stdout and "acceptance: PASS" in acc.stdout

    # src.reproduce: the record's blob, named by the committed manifest (repro/), not "runtime_meta.json: missing"
    rep = run_cli(clone, SMOKE, module="src.reproduce")
    assert rep.returncode == 2 and "named by repro/d92-5/smoke.dvc" in rep.stderr and "DVC cache" in rep.stderr, rep.stderr
    shutil.copytree(dvc_repo / ".dvc/cache", clone / ".dvc/cache")  # as `dvc pull` would bring it
    rep = run_cli(clone, SMOKE, module="src.reproduce", timeout=300)
    assert rep.returncode == 0, rep.stdout[-2000:] + rep.stderr[-2000:]

    [api] = _load_runs(clone)
    assert (api["status"], api["state"], api["problems"]) == ("committed", "committed", row["problems"])
    assert api["fingerprint"] == prov["fingerprint"] and api["config.seed"] == 42

    # an edited file no longer matches dvc.lock: edited, everywhere (the index notices without a record)
    with open(run / "kpi_summary.json", "a", encoding="utf-8") as f:
        f.write(" ")
    [row] = _json(run_cli(clone, "list", "--json", module="src.runs"))
    assert row["status"] == "edited" and "kpi_summary.json: does not match dvc.lock" in row["problems"][0]
    assert run_cli(clone, SMOKE, "HEAD", module="src.compare").returncode == 5
    rep = run_cli(clone, SMOKE, "-o", str(tmp_path / "r2.html"), module="src.report")
    assert rep.returncode == 5 and "kpi_summary.json: does not match dvc.lock" in rep.stderr
    assert _load_runs(clone)[0]["status"] == "edited"
    acc = run_cli(clone, SMOKE, module="src.acceptance")
    assert acc.returncode == 5 and "kpi_summary.json: does not match dvc.lock" in acc.stdout
    subprocess.run([*GIT, "checkout", "--", SMOKE], cwd=clone, check=True)
    assert _json(run_cli(clone, "list", "--json", module="src.runs"))[0]["status"] == "committed"

    # a file dvc.lock does not list (a local run's log): not a committed output, its record was deleted
    (run / "run.log").write_text("local\n", encoding="utf-8")
    [row] = _json(run_cli(clone, "list", "--json", module="src.runs"))
    assert row["status"] == "damaged" and "runtime_meta.json: missing" in row["problems"][0]


def test_the_states_shown_as_a_status_agree() -> None:
    from src.compare.diff import SHOWN_STATES
    from src.runs.__main__ import SHOWN_STATES as LISTED

    assert LISTED == SHOWN_STATES
