"""`python -m src.run` end to end in a temp copy of the repo: outputs, determinism, errors."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import load_json, run_cli, run_dir_of


def test_smoke_passes_and_writes_in_place(repo: Path) -> None:
    proc = run_cli(repo, "stage=d92-5")
    assert proc.returncode == 0, proc.stderr
    run_dir = run_dir_of(proc, repo)
    assert run_dir.parent == repo / "logs" / "d92-5"
    assert run_dir.name.startswith("d92-5-top10-")
    for name in ("kpi_summary.json", "runtime_meta.json", "trades.jsonl", "config.yaml", "run.log"):
        assert (run_dir / name).is_file(), name
    assert "acceptance: PASS" in proc.stdout and "AC-1" in proc.stdout
    kpi = load_json(run_dir / "kpi_summary.json")
    assert set(kpi["exit_reasons"]) == {"take_profit", "stop_loss", "time_limit", "spread_reversal"}
    assert kpi["exit_reasons"]["take_profit"] >= 1 and kpi["exit_reasons"]["stop_loss"] >= 1
    assert kpi["total_pnl_usd"] == pytest.approx(kpi["total_pnl_krw"] / kpi["fx_rate"], abs=1e-5)
    assert kpi["zone_profiles_loaded"]["path"] == "conf/zone_profile/default.yaml"
    assert set(kpi["zone_profiles_loaded"]["profiles_applied"]) == set(kpi["per_symbol"])
    meta = load_json(run_dir / "runtime_meta.json")
    assert meta["status"] == "completed" and meta["run_id"] == run_dir.name
    assert meta["acceptance"]["passed"] is True
    assert meta["zone_profile"]["mtime_ns"] > 0 and len(meta["zone_profile"]["sha256"]) == 64
    imported = {f["path"] for f in meta["code"]["files"] if f["imported"]}
    assert {"src/run.py", "src/engine/loop.py", "src/market/synthetic.py"} <= imported
    assert all(len(f["xxh3_128"]) == 32 for f in meta["code"]["files"])
    assert meta["guard"]["hardlock"]["violations"] == []
    lines = (run_dir / "trades.jsonl").read_text().splitlines()
    assert len(lines) == kpi["round_trips"]
    # nothing volatile in the deterministic files
    for name in ("kpi_summary.json", "trades.jsonl"):
        text = (run_dir / name).read_text()
        assert run_dir.name not in text and meta["environment"]["host"] not in text


def _run(repo: Path, run_id: str, *extra: str) -> tuple[Path, dict]:
    proc = run_cli(repo, "stage=d92-5", f"run.id={run_id}", *extra)
    assert proc.returncode in (0, 1), proc.stderr
    run_dir = repo / "logs" / "d92-5" / run_id
    return run_dir, load_json(run_dir / "runtime_meta.json")


def test_same_inputs_same_bytes_and_changes_change_the_fingerprint(repo: Path) -> None:
    a, meta_a = _run(repo, "a")
    b, meta_b = _run(repo, "b")
    assert meta_a["fingerprint"] == meta_b["fingerprint"]
    for name in ("kpi_summary.json", "trades.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name

    _, meta_seed = _run(repo, "seed", "seed=43")
    assert meta_seed["fingerprint"] != meta_a["fingerprint"]

    zp = repo / "conf/zone_profile/default.yaml"
    time.sleep(0.01)
    zp.write_text(zp.read_text().replace("tp_bps: 35.0", "tp_bps: 36.0", 1))
    _, meta_zone = _run(repo, "zone")
    assert meta_zone["fingerprint"] != meta_a["fingerprint"]
    assert meta_zone["zone_profile"]["sha256"] != meta_a["zone_profile"]["sha256"]
    assert meta_zone["zone_profile"]["mtime_ns"] != meta_a["zone_profile"]["mtime_ns"]

    engine = repo / "src/engine/exits.py"
    engine.write_text(engine.read_text() + "\n# a comment is a line of engine code too\n")
    _, meta_code = _run(repo, "code")
    assert meta_code["fingerprint"] != meta_zone["fingerprint"]

    def digest(meta: dict, path: str) -> str:
        return next(f["xxh3_128"] for f in meta["code"]["files"] if f["path"] == path)

    assert digest(meta_code, "src/engine/exits.py") != digest(meta_zone, "src/engine/exits.py")
    assert digest(meta_code, "src/engine/loop.py") == digest(meta_zone, "src/engine/loop.py")


BAD_CLI = [
    ["universe=top7"],
    ["stage.duration_s=0"],
    ["costs.usdt_venue.taker_fee_bps=-5"],
    ["zone_profile.profiles.alt_advisory.zones.0.tp_bps=0"],
    ["universe.top_n=1000"],
    ["zone_profile.fallback=null"],
    ["run.id=../../outside"],
    ["stage.id=.."],
    ["--frobnicate"],
]


@pytest.mark.parametrize("args", BAD_CLI, ids=[" ".join(a) for a in BAD_CLI])
def test_bad_input_exit_2_one_line_no_run_folder(repo: Path, args: list[str]) -> None:
    proc = run_cli(repo, *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert not any(p.name == "runtime_meta.json" for p in (repo / "logs").rglob("*"))
    assert not (repo.parent / "outside").exists()


def test_malformed_zone_profile_file_cli(repo: Path) -> None:
    (repo / "conf/zone_profile/broken.yaml").write_text("name: broken\nprofiles: [1, 2\n")
    proc = run_cli(repo, "zone_profile=broken")
    assert proc.returncode == 2 and "broken" in proc.stderr, proc.stderr


def test_pinned_run_id_is_not_silently_replaced(repo: Path) -> None:
    first, meta = _run(repo, "pinned")
    proc = run_cli(repo, "stage=d92-5", "run.id=pinned")
    assert proc.returncode == 2 and "run.overwrite=true" in proc.stderr
    assert load_json(first / "runtime_meta.json")["started_at"] == meta["started_at"]
    again = run_cli(repo, "stage=d92-5", "run.id=pinned", "run.overwrite=true")
    assert again.returncode == 0, again.stderr
    assert load_json(first / "runtime_meta.json")["started_at"] != meta["started_at"]


def test_gate_failure_exits_1_and_recheck_agrees(repo: Path) -> None:
    # a cost floor 100x the round-trip cost rejects every entry: no exits, AC-1 fails
    proc = run_cli(repo, "run.id=nogo", "costs.floor_multiplier=100")
    assert proc.returncode == 1, proc.stderr
    assert "AC-1  FAIL" in proc.stdout
    meta = load_json(repo / "logs/d92-5/nogo/runtime_meta.json")
    assert meta["status"] == "completed" and meta["acceptance"]["passed"] is False
    check = run_cli(repo, "logs/d92-5/nogo", module="src.acceptance")
    assert check.returncode == 1 and "AC-1  FAIL" in check.stdout


def test_recheck_detects_a_tampered_kpi_file(repo: Path) -> None:
    run_dir, _ = _run(repo, "tamper")
    assert run_cli(repo, "logs/d92-5/tamper", module="src.acceptance").returncode == 0
    kpi = load_json(run_dir / "kpi_summary.json")
    del kpi["fx_rate"]
    (run_dir / "kpi_summary.json").write_text(__import__("json").dumps(kpi))
    check = run_cli(repo, "logs/d92-5/tamper", module="src.acceptance")
    assert check.returncode == 5 and "edited: kpi_summary.json" in check.stdout and "PASS" not in check.stdout


def test_bytecode_purge_runs_with_bytecode_writing_on(repo: Path) -> None:
    """With writing on, a run purges the caches other imports wrote and writes none itself (only
    the `src` package's own, which Python imports before src/run.py can say so)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    subprocess.run([sys.executable, "-c", "import src.runner.execute"], cwd=repo, env=env, check=True)
    caches = list((repo / "src").rglob("__pycache__"))
    assert len(caches) > 5, "a plain import with bytecode writing on leaves caches behind"
    first = run_cli(repo, "run.id=bc1", env=env)
    meta = load_json(repo / "logs/d92-5/bc1/runtime_meta.json")
    assert first.returncode == 0 and meta["guard"]["purge"]["removed_dirs"] >= len(caches) - 2
    assert [p.relative_to(repo).as_posix() for p in (repo / "src").rglob("*.pyc")] in (
        [], [f"src/__pycache__/__init__.{sys.implementation.cache_tag}.pyc"])
