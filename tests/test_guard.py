"""The guard: bytecode purge (safe) and the import-provenance hardlock (refuses to run)."""
from __future__ import annotations

import os
import py_compile
import shutil
from pathlib import Path

from conftest import clean_env, copy_repo, run_cli
from src.provenance.purge import purge_bytecode


def _refused(proc, *needles: str) -> None:
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("error: import provenance") or "error:" in err
    for n in needles:
        assert n in err, err
    assert "Traceback" not in err


def _no_runs(repo: Path) -> None:
    assert not list((repo / "logs").rglob("runtime_meta.json"))


def test_symlinked_package_from_another_checkout_is_refused(tmp_path: Path) -> None:
    here = copy_repo(tmp_path / "here")
    other = copy_repo(tmp_path / "other")
    shutil.rmtree(here / "src")
    (here / "src").symlink_to(other / "src", target_is_directory=True)
    proc = run_cli(here, "stage=d92-5")
    _refused(proc, "symlink", str(other / "src"))
    _no_runs(here)


def test_another_checkout_ahead_on_sys_path_is_refused(tmp_path: Path) -> None:
    """PYTHONSAFEPATH drops the cwd from sys.path, so PYTHONPATH's checkout wins the import."""
    here = copy_repo(tmp_path / "here")
    other = copy_repo(tmp_path / "other")
    proc = run_cli(here, "stage=d92-5", env=clean_env(PYTHONPATH=str(other), PYTHONSAFEPATH="1"))
    _refused(proc, "outside the repo root", str(other))
    _no_runs(here)
    _no_runs(other)


def test_sourceless_module_is_refused(repo: Path) -> None:
    src = repo / "src/engine/exits.py"
    py_compile.compile(str(src), cfile=str(src.with_suffix(".pyc")), doraise=True)
    src.unlink()
    proc = run_cli(repo, "stage=d92-5")
    _refused(proc, "sourceless bytecode", "exits.pyc")
    _no_runs(repo)


def test_stray_pyc_beside_source_is_refused(repo: Path) -> None:
    src = repo / "src/engine/fills.py"
    py_compile.compile(str(src), cfile=str(repo / "src/engine/old_fills.pyc"), doraise=True)
    proc = run_cli(repo, "stage=d92-5")
    _refused(proc, "old_fills.pyc")


def test_namespace_package_is_refused(repo: Path) -> None:
    (repo / "src/__init__.py").unlink()
    proc = run_cli(repo, "stage=d92-5")
    _refused(proc, "namespace package")


def test_split_package_is_refused(tmp_path: Path) -> None:
    here = copy_repo(tmp_path / "here")
    extra = tmp_path / "extra"
    (extra / "src").mkdir(parents=True)
    (extra / "src/extra_mod.py").write_text("X = 1\n")
    (here / "src/__init__.py").unlink()
    proc = run_cli(here, "stage=d92-5", env=clean_env(PYTHONPATH=str(extra)))
    _refused(proc)
    assert str(extra / "src") in proc.stderr or "namespace" in proc.stderr


def test_purge_never_follows_symlinks_out(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    outside = tmp_path / "outside"
    (outside / "__pycache__").mkdir(parents=True)
    keep = outside / "__pycache__" / "precious.pyc"
    keep.write_bytes(b"not yours")
    (repo / "src" / "linked").symlink_to(outside, target_is_directory=True)
    (repo / "src" / "__pycache__").symlink_to(outside / "__pycache__", target_is_directory=True)
    real_cache = repo / "src" / "engine" / "__pycache__"
    real_cache.mkdir()
    (real_cache / "loop.cpython-311.pyc").write_bytes(b"stale")
    report = purge_bytecode(repo)
    assert keep.read_bytes() == b"not yours"
    assert not real_cache.exists()
    assert "src/linked" in report["skipped_symlinks"]
    # a symlinked cache is unlinked as a link (Python would load bytecode through it), its target kept
    assert report["unlinked_cache_links"] == ["src/__pycache__"] and not (repo / "src" / "__pycache__").exists()


def test_purge_tolerates_a_vanishing_cache(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    cache = repo / "src" / "__pycache__"
    cache.mkdir()
    for i in range(50):
        (cache / f"m{i}.pyc").write_bytes(b"x")
    # two purges racing over the same tree both succeed
    import threading
    errors: list[BaseException] = []

    def go() -> None:
        try:
            purge_bytecode(repo)
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not cache.exists()


def test_run_from_outside_the_repo_is_a_usage_error(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "src.run"], cwd=elsewhere, capture_output=True, text=True,
                          env=clean_env(PYTHONPATH=str(repo)))
    assert proc.returncode == 2 and "conf/config.yaml" in proc.stderr
    assert not os.listdir(elsewhere)
