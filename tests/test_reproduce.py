"""`python -m src.reproduce`: runs made again from their record, with real git and DVC in temp repos.

Blobs are written by the run in DVC's cache layout without DVC; the first test proves the
bytes are DVC's own (against `dvc add`), the clone test that `dvc push` / `dvc pull` move them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import GIT, clean_env, dvc, dvc_env, git_commit, load_json, run_cli

STAGE = "d92-5"


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture
def git_repo(dvc_repo: Path) -> Path:
    """The project in a committed git repo whose DVC cache is git-ignored (copy_repo copies the
    project's .dvc/.gitignore), as in a real checkout."""
    assert "/cache" in (dvc_repo / ".dvc" / ".gitignore").read_text().split()
    return dvc_repo


def _run(repo: Path, *overrides: str) -> Path:
    proc = run_cli(repo, f"stage={STAGE}", *overrides)
    _ok(proc)
    return repo / "logs" / STAGE / next(o.split("=", 1)[1] for o in overrides if o.startswith("run.id="))


def _export(repo: Path, dest: str, *overrides: str) -> None:
    """A Parquet tick file of the smoke's synthetic market (src.market.export)."""
    _ok(run_cli(repo, dest, f"stage={STAGE}", *overrides, module="src.market.export"))


def _reproduce(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(repo, *args, "--json", module="src.reproduce", env=env or dvc_env(repo.parent), timeout=300)


def _report(proc: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(proc.stdout)


def _worktrees(repo: Path) -> list[str]:
    out = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if ln.startswith("worktree ")]


def _cache_object(repo: Path, md5: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def test_blob_folder_is_what_dvc_add_writes(tmp_path: Path) -> None:
    """Our .dir object, its MD5 and the .dvc file are byte for byte those of `dvc add`."""
    from src.provenance import blobs

    repo = tmp_path / "r"
    (repo / "x" / "run" / "untracked" / "src").mkdir(parents=True)
    files = {"patch.diff": b"diff --git a/x b/x\n", "untracked/src/a.py": b"A = 1\n",
             "data/q.parquet": bytes(range(256)) * 3, "record.json": b"{}\n", "a-b": b"sorts before a/"}
    (repo / "x" / "run" / "data").mkdir()
    for rel, data in files.items():
        (repo / "x" / "run" / rel).write_bytes(data)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _ok(dvc(repo, "init", "-q"))
    _ok(dvc(repo, "add", "x/run"))
    theirs = (repo / "x" / "run.dvc").read_text()
    ours_cache = tmp_path / "ours"
    entries = {rel: blobs.put_bytes(ours_cache, data)[0] for rel, data in files.items()}
    dir_md5 = blobs.put_tree(ours_cache, entries)
    assert blobs.dvc_file_text(dir_md5, sum(map(len, files.values())), len(files), "run") == theirs
    for obj in (ours_cache / "files").rglob("*"):
        if obj.is_file():
            twin = repo / ".dvc" / "cache" / obj.relative_to(ours_cache)
            assert twin.read_bytes() == obj.read_bytes(), obj
    assert blobs.read_dvc_file(theirs) == dir_md5 and blobs.read_tree(ours_cache, dir_md5) == entries
    # cache.dir from .dvc/config.local wins over .dvc/config and is relative to .dvc/
    (repo / ".dvc" / "config.local").write_text("[cache]\n    dir = ../elsewhere\n")
    assert blobs.cache_dir(repo) == (repo / "elsewhere").resolve()
    assert blobs.cache_dir(tmp_path) is None


_PLANT_CACHE = """
import importlib.util, os, sys

class _Plant:  # finds nothing (every module still loads from its source); notices one import
    def find_spec(self, name, path=None, target=None):
        if name == "src.provenance.snapshot":
            pyc = importlib.util.cache_from_source(os.path.join({src!r}, "engine", "kpi.py"))
            os.makedirs(os.path.dirname(pyc), exist_ok=True)
            with open(pyc, "wb") as f:
                f.write(importlib.util.MAGIC_NUMBER + bytes(12))
        return None

sys.meta_path.insert(0, _Plant())
"""


# hook: imports (the planted cache above)
def test_dirty_tree_run_reproduced_after_revert_and_new_commits(git_repo: Path) -> None:
    repo = git_repo
    (repo / "conf" / "table.bin").write_bytes(bytes(range(256)))
    git_commit(repo, "a binary file")
    (repo / "conf" / "table.bin").write_bytes(bytes(range(255, -1, -1)) + b"\x00\xff")  # binary-safe patch
    kpi_py = repo / "src" / "engine" / "kpi.py"
    kpi_py.write_text(kpi_py.read_text() + "\n# an uncommitted edit\n")
    (repo / "src" / "scratch_helper.py").write_text("HELPER = 'untracked'\n")
    (repo / "conf" / "notes.yaml").write_text("note: untracked config file\n")
    # no ignore rule for bytecode, and bytecode written: caches are still never kept as inputs
    ignore = repo / ".gitignore"
    ignore.write_text("".join(ln for ln in ignore.read_text().splitlines(keepends=True)
                              if ln.strip() not in ("__pycache__/", "*.pyc")))
    # secrets never go into blobs (they travel to the team's remote): withheld and listed
    secret = "Zq8sK2mP4xR7tV1w"
    (repo / "conf" / "credentials.yaml").write_text("upbit: untracked\n")
    (repo / "src" / "keys_note.txt").write_text(f"key {secret}\n")
    env = {k: v for k, v in clean_env(UPBIT_SECRET_KEY=secret).items() if k != "PYTHONDONTWRITEBYTECODE"}
    # hook: imports -- a run writes no bytecode itself (src/run.py); another process's import may, while
    # it runs: a sitecustomize writes a cache into src/ as the run starts keeping its inputs
    site = repo.parent / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_PLANT_CACHE.format(src=str(repo / "src")))
    _ok(run_cli(repo, f"stage={STAGE}", "run.id=dirty", env=dict(env, PYTHONPATH=str(site))))
    run_dir = repo / "logs" / STAGE / "dirty"
    assert list((repo / "src").rglob("*.pyc")), "no bytecode in src/: the case is not exercised"
    meta = load_json(run_dir / "runtime_meta.json")
    keep = meta["reproduce"]
    assert keep["commit"] == meta["git"]["commit"] and keep["patch"]["bytes"] > 0
    assert sorted(keep["untracked"]) == ["conf/notes.yaml", "src/scratch_helper.py"]
    assert keep["withheld"] == [{"path": "conf/credentials.yaml", "reason": "named like a secret"},
                                {"path": "src/keys_note.txt",
                                 "reason": "holds the value of a secret environment variable"}]
    assert not any(secret.encode() in p.read_bytes() for p in (repo / ".dvc" / "cache").rglob("*") if p.is_file())
    patch = _cache_object(repo, keep["patch"]["md5"]).read_bytes()
    assert b"+# an uncommitted edit" in patch and b"logs/" not in patch and b"GIT binary patch" in patch
    assert hashlib.md5(patch).hexdigest() == keep["patch"]["md5"]
    assert (repo / keep["manifest"]).read_text().startswith(f"outs:\n- md5: {keep['dir_md5']}\n")
    assert meta["timings"]["reproduce_s"] < 1.0

    # the tree is cleaned and moves on by two commits; the folder keeps only its record
    subprocess.run(["git", "checkout", "--", "src", "conf", ".gitignore"], cwd=repo, check=True)
    (repo / "src" / "scratch_helper.py").unlink()
    for p in ("conf/notes.yaml", "conf/credentials.yaml", "src/keys_note.txt"):
        (repo / p).unlink()
    for n in (1, 2):
        (repo / f"later{n}.txt").write_text(str(n))
        git_commit(repo, f"later {n}")
    for p in run_dir.rglob("*"):
        if p.is_file() and p.name != "runtime_meta.json":
            p.unlink()
    proc = _reproduce(repo, "dirty")
    _ok(proc)
    rep = _report(proc)
    assert rep["verdict"] == "reproduced" and rep["differences"] == [] and rep["outputs_compared"] >= 8, rep
    assert rep["commit"] == keep["commit"] and rep["untracked"] == ["conf/notes.yaml", "src/scratch_helper.py"]
    assert rep["environment"] == []  # same interpreter and packages
    assert [w["path"] for w in rep["withheld"]] == ["conf/credentials.yaml", "src/keys_note.txt"]
    assert len(_worktrees(repo)) == 1  # the temporary worktree is gone
    text = run_cli(repo, "logs/d92-5/dirty", module="src.reproduce", env=dvc_env(repo.parent), timeout=300)
    assert text.returncode == 0 and text.stdout.startswith("reproduced: logs/d92-5/dirty"), text.stdout


def test_missing_blob_and_unknown_commit_cannot_reproduce(git_repo: Path) -> None:
    repo = git_repo
    (repo / "src" / "engine" / "kpi.py").write_text((repo / "src" / "engine" / "kpi.py").read_text() + "\n# edit\n")
    run_dir = _run(repo, "run.id=lost")
    keep = load_json(run_dir / "runtime_meta.json")["reproduce"]
    blob = _cache_object(repo, keep["patch"]["md5"])
    blob.unlink()  # in no remote either: the default remote was never pushed to
    proc = _reproduce(repo, "lost")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    rep = _report(proc)
    assert rep["verdict"] == "cannot reproduce"
    assert f"blob {keep['patch']['md5']} (the uncommitted patch (patch.diff))" in rep["missing"]
    assert "neither the DVC cache" in rep["missing"]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot reproduce lost:") and keep["patch"]["md5"] in err[0]
    assert len(_worktrees(repo)) == 1

    # a commit this repository does not have (history rewritten, or another clone's)
    meta_p = run_dir / "runtime_meta.json"
    from src.provenance.outputs import sealed_text

    meta = load_json(meta_p)
    meta["reproduce"]["commit"] = "0" * 40
    meta["reproduce"]["patch"] = None
    meta["environment"]["packages"]["numpy"] = "1.0.0"  # recorded with another numpy
    os.chmod(meta_p, 0o644)
    meta_p.write_text(sealed_text(meta))
    proc = _reproduce(repo, "lost")
    assert proc.returncode == 2 and f"commit {'0' * 40} is not in the repository" in _report(proc)["missing"]
    assert {"key": "numpy", "recorded": "1.0.0", "now": np.__version__} in _report(proc)["environment"]
    # a record edited without its seal is not evidence: nothing is run
    meta_p.write_text(meta_p.read_text().replace('"run_id": "lost"', '"run_id": "lost2"'))
    proc = _reproduce(repo, "lost")
    assert proc.returncode == 2 and "does not match its seal" in _report(proc)["missing"]


def test_first_difference_names_line_and_field() -> None:
    from src.compare.firstdiff import first_difference

    a = b'{"k": 1, "t": 0.5}\n{"k": 2, "reason": "take_profit"}\n'
    d = first_difference("trades.jsonl", a, a.replace(b"take_profit", b"stop_loss"))
    assert (d["line"], d["field"], d["a"], d["b"]) == (2, "reason", "take_profit", "stop_loss")
    d = first_difference("kpi_summary.json", b'{\n  "a": 1,\n  "x": {"y": [1, 2]}\n}\n',
                         b'{\n  "a": 1,\n  "x": {"y": [1, 3]}\n}\n')
    assert (d["line"], d["field"], d["a"], d["b"]) == (3, "x.y.1", 2, 3)
    d = first_difference("plots/spread.csv", b"t_s,premium_bps\n0,1.5\n1,2.5\n", b"t_s,premium_bps\n0,1.5\n1,2.6\n")
    assert (d["line"], d["field"], d["a"], d["b"]) == (3, "premium_bps", "2.5", "2.6")
    d = first_difference("config.yaml", b"seed: 1\nrun: x\n", b"seed: 1\nrun: y\n")
    assert (d["line"], d["field"]) == (2, "run")
    d = first_difference("trades.jsonl", b'{"k": 1}\n', b'{"k": 1}\n{"k": 2}\n')
    assert (d["line"], d["a"], d["b"]) == (2, None, '{"k": 2}')
    assert first_difference("x.json", None, b"{}")["line"] is None


def test_only_changes_outside_outputs_and_manifests_cost_a_git_diff() -> None:
    from src.provenance.snapshot import _needs_patch

    assert not _needs_patch({"changed_paths": ["logs/d92-5/smoke/kpi_summary.json", "repro/", ".dvc/cache/"]})
    assert _needs_patch({"changed_paths": ["logs/x", "src/engine/kpi.py"]})
    assert _needs_patch({"changed_paths": ["dvc.lock"]})
    assert _needs_patch({"changed_paths": ["logs/x"] * 200})  # status lists at most 200: cannot tell
    assert not _needs_patch({"changed_paths": ["src/__pycache__/", "src/engine/__pycache__/kpi.cpython-311.pyc"]})


@pytest.mark.slow
def test_edited_output_and_changed_data_differ(git_repo: Path, tmp_path: Path) -> None:
    repo = git_repo
    _export(repo, "data/ticks.parquet")
    run_dir = _run(repo, "market=replay", "market.path=data/ticks.parquet", "run.id=rep")

    # an output edited after the run: the first differing line and field are named
    trades = run_dir / "trades.jsonl"
    lines = trades.read_text().splitlines()
    first = json.loads(lines[0])
    first["fees_krw"] = first["fees_krw"] + 1
    lines[0] = json.dumps(first, sort_keys=True)
    os.chmod(trades, 0o644)
    trades.write_text("\n".join(lines) + "\n")
    proc = _reproduce(repo, "rep")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    d = _report(proc)["differences"][0]
    assert (d["file"], d["line"], d["field"], d["change"]) == ("trades.jsonl", 1, "fees_krw", "edited in the run folder")
    assert d["b"] == first["fees_krw"] - 1

    # a changed dependency: the data the record points at is not the data the run read
    keep = load_json(run_dir / "runtime_meta.json")["reproduce"]
    md5 = keep["data"][0]["md5"]
    _export(repo, str(tmp_path / "other.parquet"), "seed=7")
    obj = _cache_object(repo, md5)
    os.chmod(obj, 0o644)
    shutil.copyfile(tmp_path / "other.parquet", obj)
    os.chmod(trades, 0o644)
    trades.write_text("\n".join([json.dumps(dict(first, fees_krw=first["fees_krw"] - 1), sort_keys=True)]
                                + lines[1:]) + "\n")  # the folder as the run wrote it again
    proc = _reproduce(repo, "rep")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rep = _report(proc)
    files = [x["file"] for x in rep["differences"]]
    assert "kpi_summary.json" in files and "trades.jsonl" in files, files
    first_diff = rep["differences"][0]
    assert first_diff["line"] is not None and first_diff["field"] is not None, first_diff
    assert "provenance.json" in rep["input_descriptions_differ"]  # the data identity changed
    text = run_cli(repo, "rep", module="src.reproduce", env=dvc_env(repo.parent), timeout=300)
    assert text.returncode == 1 and text.stdout.startswith("differs: rep") and " line " in text.stdout


@pytest.mark.slow
def test_replay_run_after_its_parquet_is_gone_and_in_a_fresh_clone_after_dvc_pull(git_repo: Path,
                                                                                    tmp_path: Path) -> None:
    repo = git_repo
    remote = tmp_path / "team-remote"
    _ok(dvc(repo, "remote", "add", "-f", "-d", "team", str(remote)))
    _export(repo, "data/ticks.parquet")
    run_dir = _run(repo, "market=replay", "market.path=data/ticks.parquet", "run.id=rep")
    keep = load_json(run_dir / "runtime_meta.json")["reproduce"]
    assert keep["data"][0]["role"] == "replay" and keep["data"][0]["path"] == "data/ticks.parquet"
    (repo / "data" / "ticks.parquet").unlink()
    _ok(_reproduce(repo, "rep"))

    out = _ok(dvc(repo, "push", keep["manifest"]))
    assert "3 files pushed" in out, out  # the .dir object, the parquet, record.json
    subprocess.run([*GIT, "add", "repro", ".dvc/config"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "run rep's inputs"], cwd=repo, check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    assert not (clone / ".dvc" / "cache").exists() and not (clone / "logs" / STAGE / "rep").exists()
    # before the pull: reproduce fetches what it needs from the remote itself
    proc = _reproduce(clone, "rep", env=dvc_env(tmp_path))
    _ok(proc)
    assert _report(proc)["verdict"] == "reproduced"
    shutil.rmtree(clone / ".dvc" / "cache")
    _ok(dvc(clone, "pull", keep["manifest"]))
    assert (clone / "repro" / STAGE / "rep" / "record.json").is_file()
    proc = _reproduce(clone, "rep", env=dvc_env(tmp_path))
    _ok(proc)
    rep = _report(proc)
    assert rep["verdict"] == "reproduced" and rep["source"] == "manifest" and rep["data"][0]["path"] == "data/ticks.parquet"
    # gone from cache and remote: cannot reproduce, naming the blob folder
    shutil.rmtree(clone / ".dvc" / "cache")
    shutil.rmtree(remote)
    proc = _reproduce(clone, "rep", env=dvc_env(tmp_path))
    assert proc.returncode == 2 and keep["dir_md5"] in _report(proc)["missing"]


@pytest.mark.slow
def test_dvc_stage_run_reproduced_from_a_git_revision(git_repo: Path) -> None:
    repo = git_repo
    _ok(dvc(repo, "repro", "smoke"))
    git_commit(repo, "smoke")
    (repo / "later.txt").write_text("x")
    git_commit(repo, "later")
    proc = _reproduce(repo, "HEAD~1")
    _ok(proc)
    rep = _report(proc)
    assert rep["verdict"] == "reproduced" and rep["source"].startswith("git:") and rep["run_id"] == "smoke"
    proc = _reproduce(repo, "HEAD~2")  # before the smoke ran: nothing recorded there
    assert proc.returncode == 2 and "repro/d92-5/smoke.dvc committed there" in _report(proc)["missing"]
    # a DVC experiment, by name (its params.yaml change is part of the recorded patch)
    _ok(dvc(repo, "exp", "run", "smoke", "-n", "seed7", "-S", "smoke.overrides='seed=7'"))
    proc = _reproduce(repo, "seed7")
    _ok(proc)
    rep = _report(proc)
    assert rep["verdict"] == "reproduced" and "seed=7" in rep["rerun"]["command"], rep


def test_verdict_uses_the_same_run_function_compare_uses(tmp_path: Path) -> None:
    """Input descriptions may differ (reported), result files may not; an output edited in the
    folder differs from the rerun even when the rerun matches the record."""
    from src.reproduce.source import Recorded
    from src.reproduce.verdict import judge

    def folder(name: str, files: dict[str, bytes]) -> Path:
        d = tmp_path / name
        for rel, data in files.items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_bytes(data)
        return d

    sha = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    orig = {"trades.jsonl": b'{"fees_krw": 1.0}\n', "config.yaml": b"run:\n  id: a\n", "kpi_summary.json": b'{"n": 1}\n'}
    recorded = {k: sha(v) for k, v in orig.items()}
    rec = Recorded("a", "a", "s", "c" * 40, [], recorded, {}, None, {}, [], None, run_dir=folder("run", orig))
    rerun = dict(orig, **{"config.yaml": b"run:\n  id: b\n"})
    v = judge(rec, folder("rerun1", rerun), {k: sha(b) for k, b in rerun.items()})
    assert v["verdict"] == "reproduced" and v["input_descriptions_differ"] == ["config.yaml"]
    rerun = dict(orig, **{"trades.jsonl": b'{"fees_krw": 2.0}\n'})
    v = judge(rec, folder("rerun2", rerun), {k: sha(b) for k, b in rerun.items()})
    assert v["verdict"] == "differs"
    assert [(d["file"], d["line"], d["field"], d["a"], d["b"], d["change"]) for d in v["differences"]] == [
        ("trades.jsonl", 1, "fees_krw", 1.0, 2.0, "changed")]
    (rec.run_dir / "kpi_summary.json").write_bytes(b'{"n": 2}\n')  # edited after the run
    v = judge(rec, folder("rerun3", orig), recorded)
    assert [(d["file"], d["field"], d["a"], d["b"], d["change"]) for d in v["differences"]] == [
        ("kpi_summary.json", "n", 2, 1, "edited in the run folder")]
    (rec.run_dir / "kpi_summary.json").unlink()  # deleted from the folder: the record still decides
    assert judge(rec, folder("rerun4", orig), recorded)["verdict"] == "reproduced"


def test_a_run_outside_a_dvc_repo_says_its_inputs_were_not_kept(repo: Path) -> None:
    shutil.rmtree(repo / ".dvc")
    proc = run_cli(repo, f"stage={STAGE}", "run.id=nodvc")
    assert proc.returncode == 0, proc.stderr
    assert "warning: no .dvc/ folder in" in proc.stderr  # the run stands, and says what it could not keep
    assert "dvc init" in load_json(repo / "logs" / STAGE / "nodvc" / "runtime_meta.json")["reproduce"]["error"]
    proc = _reproduce(repo, "nodvc")
    assert proc.returncode == 2 and "no .dvc/ folder" in _report(proc)["missing"]
    assert not (repo / "repro").exists()


def test_a_run_from_a_forged_config_cache_entry_does_not_reproduce(git_repo: Path) -> None:
    """The config cache (src/config/cache.py) is a speed-up, never evidence: a run that read an
    entry re-sealed with other values records those values; its rerun composes conf/ with Hydra
    (CONFIG_CACHE=0) and so differs. The same run from an honest entry reproduces."""
    repo = git_repo
    shutil.rmtree(repo / ".cache" / "config", ignore_errors=True)
    _run(repo, "run.id=honest", "run.overwrite=true")  # composed by Hydra, stored
    honest = _run(repo, "run.id=honest", "run.overwrite=true")  # the same command line: read from the entry
    meta = load_json(honest / "runtime_meta.json")
    assert meta["config"]["source"]["via"] == "cache"
    rep = _report(_reproduce(repo, "honest"))
    assert rep["verdict"] == "reproduced", rep

    _run(repo, "run.id=forged", "run.overwrite=true")  # other overrides: its own entry
    entry = next(p for p in (repo / ".cache" / "config").glob("*.json")
                 if '"run.id=forged"' in p.read_text())
    head, _, body = entry.read_bytes().partition(b"\n")
    obj = json.loads(body)
    obj["resolved"]["seed"] = obj["resolved"]["seed"] + 1  # a valid value, re-sealed
    body = json.dumps(obj).encode()
    header = json.loads(head)
    header["sha256"] = hashlib.sha256(body).hexdigest()
    entry.write_bytes(json.dumps(header).encode() + b"\n" + body)
    forged = _run(repo, "run.id=forged", "run.overwrite=true")
    meta = load_json(forged / "runtime_meta.json")
    assert meta["config"]["source"]["via"] == "cache"
    assert meta["config"]["resolved"]["seed"] == obj["resolved"]["seed"]  # the record says what ran
    proc = _reproduce(repo, "forged")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert _report(proc)["verdict"] != "reproduced"
