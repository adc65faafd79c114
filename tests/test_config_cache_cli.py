"""The config cache through the real CLI (`python -m src.run`): a hit gives the same bytes as
Hydra, does not import Hydra, and every change to the inputs or damage to an entry sends the
run back to Hydra; errors are the same with or without entries. (Its parts: tests/config/.)"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import clean_env, load_json, run_cli, run_dir_of

ARGS = ("stage=d92-5", "run.id=cc", "run.overwrite=true")  # one folder, replaced by each run
VOLATILE = {"runtime_meta.json", "run.log"}  # times, hosts, the cache's own note


def _fresh(repo: Path) -> Path:
    shutil.rmtree(repo / ".cache" / "config", ignore_errors=True)  # the copy brought the checkout's entries
    return repo / ".cache" / "config"


def _run(repo: Path, *args: str, **env: str) -> tuple[dict[str, bytes], dict]:
    proc = run_cli(repo, *(args or ARGS), env=clean_env(**env))
    assert proc.returncode == 0, proc.stderr
    run_dir = run_dir_of(proc, repo)
    files = {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*"))
             if p.is_file() and p.name not in VOLATILE}
    return files, load_json(run_dir / "runtime_meta.json")


def _no_cache_env() -> dict[str, str]:
    return {"CONFIG_CACHE": "0"}


def test_hit_and_miss_give_identical_outputs_and_a_hit_skips_hydra(repo: Path) -> None:
    folder = _fresh(repo)
    miss, meta_miss = _run(repo)
    src = meta_miss["config"]["source"]
    assert src["via"] == "hydra" and src["cache"]["stored"] is True and src["hydra_core"]
    key = src["cache"]["key"]
    assert [p.name for p in folder.iterdir()] == [f"{key}.json"]
    hit, meta_hit = _run(repo)
    assert meta_hit["config"]["source"] == {"via": "cache", "key": key, "entry": f".cache/config/{key}.json",
                                            "hydra_core": src["hydra_core"], "omegaconf": src["omegaconf"]}
    off, meta_off = _run(repo, **_no_cache_env())
    assert meta_off["config"]["source"]["cache"] == {"disabled": "CONFIG_CACHE=0"}
    for name in ("kpi_summary.json", "trades.jsonl", "config.yaml", "params.yaml", "provenance.json", "metrics.json"):
        assert name in miss
    assert miss == hit == off  # every deterministic output, byte for byte
    assert meta_miss["fingerprint"] == meta_hit["fingerprint"] == meta_off["fingerprint"]
    for m in (meta_miss, meta_hit, meta_off):  # the record's config section holds the same values too
        assert m["config"]["resolved"] == meta_miss["config"]["resolved"]
        assert m["config"]["files"] == meta_miss["config"]["files"] and m["config"]["digest"]
    assert meta_hit["guard"]["hardlock"]["violations"] == [] and meta_hit["guard"]["hardlock_final"]["violations"] == []
    imported = {f["path"] for f in meta_hit["code"]["files"] if f["imported"]}
    assert "src/config/cache.py" in imported and "src/config/hydra_app.py" not in imported
    assert "src/config/hydra_app.py" in {f["path"] for f in meta_miss["code"]["files"] if f["imported"]}

    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "src.run", *ARGS], cwd=repo,
                           capture_output=True, text=True, env=clean_env(), timeout=120)
    assert timed.returncode == 0, timed.stderr
    modules = {line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines() if line.startswith("import time:")}
    assert "src.config.cache" in modules
    assert not {m for m in modules if m.split(".")[0] in ("hydra", "omegaconf", "hydra_plugins")}


def test_a_conf_edit_with_the_same_size_and_mtime_is_composed_again(repo: Path) -> None:
    _fresh(repo)
    _, first = _run(repo)
    f = repo / "conf" / "config.yaml"
    st, text = f.stat(), f.read_text()
    assert "seed: 42" in text
    f.write_text(text.replace("seed: 42", "seed: 43"))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (f.stat().st_size, f.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    files, meta = _run(repo)
    assert meta["config"]["source"]["via"] == "hydra" and meta["seed"] == 43
    assert b"seed: 43" in files["config.yaml"] and meta["fingerprint"] != first["fingerprint"]
    # the edit back: the first entry is still there and serves the run
    f.write_text(text)
    _, back = _run(repo)
    assert back["config"]["source"]["via"] == "cache" and back["fingerprint"] == first["fingerprint"]


def test_a_new_override_is_a_new_key(repo: Path) -> None:
    _fresh(repo)
    _, first = _run(repo)
    _, other = _run(repo, *ARGS, "seed=7")
    assert other["config"]["source"]["via"] == "hydra" and other["seed"] == 7
    assert other["config"]["source"]["cache"]["key"] != first["config"]["source"]["cache"]["key"]
    _, reordered = _run(repo, "seed=7", *ARGS)  # the override list exactly as given
    assert reordered["config"]["source"]["via"] == "hydra" and reordered["fingerprint"] == other["fingerprint"]
    _, again = _run(repo, *ARGS, "seed=7")
    assert again["config"]["source"]["via"] == "cache" and again["fingerprint"] == other["fingerprint"]


def test_a_tampered_entry_is_ignored_and_rewritten(repo: Path) -> None:
    folder = _fresh(repo)
    files, first = _run(repo)
    entry = folder / f"{first['config']['source']['cache']['key']}.json"
    good = entry.read_bytes()
    head, _, body = good.partition(b"\n")
    entry.write_bytes(head + b"\n" + body.replace(b'"seed": 42', b'"seed": 41'))  # digest not updated
    assert entry.read_bytes() != good
    again, meta = _run(repo)
    assert meta["config"]["source"]["via"] == "hydra" and meta["config"]["source"]["cache"]["stored"] is True
    assert again == files and entry.read_bytes() == good
    entry.write_bytes(good[:100])  # truncated
    _, meta = _run(repo)
    assert meta["config"]["source"]["via"] == "hydra" and entry.read_bytes() == good
    header = json.loads(head)  # a foreign version, digest updated: still not this run's inputs
    foreign = body.replace(json.dumps(first["config"]["source"]["omegaconf"]).encode(), b'"0.0.1"')
    header["sha256"] = hashlib.sha256(foreign).hexdigest()
    entry.write_bytes(json.dumps(header).encode() + b"\n" + foreign)
    _, meta = _run(repo)
    assert meta["config"]["source"]["via"] == "hydra" and entry.read_bytes() == good


def test_a_config_using_an_environment_variable_is_not_cached(repo: Path) -> None:
    folder = _fresh(repo)
    args = (*ARGS, "run.note=${oc.env:CC_NOTE}")
    one, meta = _run(repo, *args, CC_NOTE="first")
    assert meta["config"]["source"]["cache"]["skipped"].startswith("uses resolver oc.env")
    assert not folder.exists() or not list(folder.iterdir())
    two, meta = _run(repo, *args, CC_NOTE="second")
    assert meta["config"]["source"]["via"] == "hydra" and meta["config"]["resolved"]["run"]["note"] == "second"
    assert b"note: first" in one["config.yaml"] and b"note: second" in two["config.yaml"]


def test_flags_stay_on_hydras_path(repo: Path) -> None:
    _fresh(repo)
    _run(repo)
    proc = run_cli(repo, "--run", *ARGS)
    assert proc.returncode == 0, proc.stderr
    meta = load_json(run_dir_of(proc, repo) / "runtime_meta.json")
    assert meta["config"]["source"]["via"] == "hydra"
    shown = run_cli(repo, "--cfg", "job", *ARGS)
    assert shown.returncode == 0 and "seed: 42" in shown.stdout


def _error(repo: Path, *args: str, **env: str) -> tuple[int, str, str]:
    proc = run_cli(repo, *args, env=clean_env(**env))
    return proc.returncode, proc.stdout, proc.stderr


def test_errors_are_the_same_with_or_without_entries(repo: Path) -> None:
    _fresh(repo)
    typo = (*ARGS, "stage.durration_s=5")
    cold = _error(repo, *typo)
    _run(repo)  # entries exist now
    _run(repo, *ARGS, "seed=7")
    assert cold[0] == 2 and cold[2].startswith("error: ") and cold[2].count("\n") == 1 and "duration_s" in cold[2]
    assert _error(repo, *typo) == cold == _error(repo, *typo, CONFIG_CACHE="0")
    bad_value = (*ARGS, "risk.max_open_positions=0")
    assert _error(repo, *bad_value)[0] == 2 and _error(repo, *bad_value) == _error(repo, *bad_value, CONFIG_CACHE="0")
    # an edit that puts a typo into a conf file: caught on the next run, although the run before was cached
    f = repo / "conf" / "stage" / "d92-5.yaml"
    st, text = f.stat(), f.read_text()
    assert "duration_s:" in text
    f.write_text(text.replace("duration_s:", "durat1on_s:"))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    edited = _error(repo, *ARGS)
    assert edited[0] == 2 and "durat1on_s" in edited[2] and edited[2].count("\n") == 1
    assert edited == _error(repo, *ARGS, CONFIG_CACHE="0")
    f.write_text(text.replace("duration_s: 600", "duration_s: [600"))  # malformed YAML
    broken = _error(repo, *ARGS)
    assert broken[0] == 2 and broken == _error(repo, *ARGS, CONFIG_CACHE="0")
    f.write_text(text)
    _, meta = _run(repo)
    assert meta["config"]["source"]["via"] == "cache"  # the first entry again: the errors left nothing behind
