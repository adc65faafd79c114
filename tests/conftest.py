"""Shared fixtures: a temporary copy of the repo, and helpers to run the real CLI in it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COPY_ITEMS = ("src", "conf", "pyproject.toml", "params.yaml", "dvc.yaml", "README.md", "benchmarks", ".cache",
              ".dvc/config", ".dvc/.gitignore", ".dvc/plots", ".dvcignore", ".gitignore")


def copy_repo(dest: Path) -> Path:
    """Copy the project (sources and config, no logs/.venv/.git) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in COPY_ITEMS:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    (dest / "logs").mkdir(exist_ok=True)
    return dest


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh copy of the repo in a temp folder; CLI runs happen inside it."""
    return copy_repo(tmp_path / "repo")


def clean_env(**extra: str) -> dict[str, str]:
    """Environment for subprocess runs: no PYTHONPATH leaking in, deterministic hashing off."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(extra)
    return env


def run_cli(repo: Path, *args: str, module: str = "src.run", env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m <module> args...` with cwd=repo, as a user would type it."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=repo, capture_output=True, text=True,
                          env=env or clean_env(), timeout=timeout)


def run_dir_of(proc: subprocess.CompletedProcess[str], repo: Path) -> Path:
    """The run folder a `src.run` invocation printed (`run: logs/...`)."""
    for line in proc.stdout.splitlines():
        if line.startswith("run: "):
            return repo / line.split(" ", 1)[1].strip()
    raise AssertionError(f"no 'run:' line in output:\n{proc.stdout}\n{proc.stderr}")


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "commit.gpgsign=false"]


def git_commit(repo: Path, message: str) -> None:
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True, capture_output=True)
    subprocess.run([*GIT, "commit", "-qm", message], cwd=repo, check=True, capture_output=True)


def dvc_env(tmp: Path) -> dict[str, str]:
    """DVC as a user runs it: the venv's python first on PATH, no analytics, caches in tmp."""
    bindir = str(Path(sys.executable).parent)
    return clean_env(PATH=bindir + os.pathsep + os.environ.get("PATH", ""), DVC_NO_ANALYTICS="1",
                     DVC_SITE_CACHE_DIR=str(tmp / "dvc-site-cache"), GIT_AUTHOR_NAME="test",
                     GIT_AUTHOR_EMAIL="test@localhost", GIT_COMMITTER_NAME="test",
                     GIT_COMMITTER_EMAIL="test@localhost")


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """A temp git repo holding a copy of the project with its DVC setup, committed."""
    repo = copy_repo(tmp_path / "repo")
    (repo / "logs" / ".gitkeep").touch()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    git_commit(repo, "project")
    return repo


def dvc(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "dvc"
    return subprocess.run([str(exe), *args], cwd=repo, capture_output=True, text=True, timeout=timeout,
                          env=dvc_env(repo.parent))
