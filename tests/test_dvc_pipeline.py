"""`dvc repro smoke` and experiments, run for real by DVC in a temporary git repo."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import clean_env, dvc, git_commit, load_json, run_cli

SMOKE = Path("logs/d92-5/smoke")


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_repro_skip_bytecode_zone_change_and_force(dvc_repo: Path) -> None:
    out = _ok(dvc(dvc_repo, "repro", "smoke"))
    assert "acceptance: PASS" in out
    kpi = load_json(dvc_repo / SMOKE / "kpi_summary.json")
    assert kpi["round_trips"] > 0
    git_commit(dvc_repo, "smoke")

    # a plain run in between, with bytecode writing on, changes nothing DVC depends on
    env = {k: v for k, v in clean_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    assert run_cli(dvc_repo, "stage=d92-5", env=env).returncode == 0
    import compileall
    compileall.compile_dir(str(dvc_repo / "src"), quiet=1)
    assert list((dvc_repo / "src").rglob("*.pyc"))
    assert "didn't change" in _ok(dvc(dvc_repo, "repro", "smoke"))

    # forced rerun of unchanged inputs: dvc.lock byte-identical
    lock = (dvc_repo / "dvc.lock").read_bytes()
    _ok(dvc(dvc_repo, "repro", "smoke", "--force"))
    assert (dvc_repo / "dvc.lock").read_bytes() == lock

    # one value in the zone-profile file: rerun, new value and digest in the record
    zp = dvc_repo / "conf/zone_profile/default.yaml"
    zp.write_text(zp.read_text().replace("tp_bps: 35.0", "tp_bps: 38.0", 1))
    out = _ok(dvc(dvc_repo, "repro", "smoke"))
    assert "Running stage 'smoke'" in out
    meta = load_json(dvc_repo / SMOKE / "runtime_meta.json")
    assert meta["config"]["resolved"]["zone_profile"]["profiles"]["alt_advisory"]["zones"][0]["tp_bps"] == 38.0
    diff = dvc(dvc_repo, "metrics", "diff", "--json")
    _ok(diff)
    changes = json.loads(diff.stdout)[str(SMOKE / "metrics.json")]
    assert "total_pnl_krw" in changes and changes["total_pnl_krw"]["diff"] != 0, changes


@pytest.mark.slow
def test_experiments_show_both_with_params_and_kpis(dvc_repo: Path) -> None:
    _ok(dvc(dvc_repo, "repro", "smoke"))
    git_commit(dvc_repo, "smoke baseline")
    _ok(dvc(dvc_repo, "exp", "run", "smoke", "-n", "seed7", "-S", "smoke.overrides='seed=7'"))
    _ok(dvc(dvc_repo, "exp", "run", "smoke", "-n", "strict", "-S", "smoke.overrides='stage.mode=strict'"))
    show = json.loads(_ok(dvc(dvc_repo, "exp", "show", "--json")))
    names = {}
    for rev in show:
        for exp in rev.get("experiments") or []:
            for r in exp.get("revs") or []:
                names[r.get("name")] = r
    assert {"seed7", "strict"} <= set(names), list(names)
    params = {n: names[n]["data"]["params"]["params.yaml"]["data"]["smoke"]["overrides"] for n in ("seed7", "strict")}
    assert params == {"seed7": "seed=7", "strict": "stage.mode=strict"}
    trips = {n: names[n]["data"]["metrics"][str(SMOKE / "metrics.json")]["data"]["round_trips"]
             for n in ("seed7", "strict")}
    assert all(isinstance(v, int) for v in trips.values()) and trips["seed7"] != trips["strict"]
    # our compare reads experiments by name
    cmp = run_cli(dvc_repo, "seed7", "strict", module="src.compare")
    assert cmp.returncode == 0, cmp.stderr
    assert "seed" in cmp.stdout and "stage.mode" in cmp.stdout
    assert os.path.exists(dvc_repo / "dvc.lock")
