"""A temporary git checkout of the project for benchmarks (shared by the bench_* scripts)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]


def temp_checkout(dest: Path, items: tuple[str, ...] = ("src", "conf")) -> Path:
    """Copy `items` of the project into `dest`, with an empty logs/, and commit them:
    runs record git state, as they do in a user's checkout."""
    dest.mkdir(parents=True)
    for item in items:
        src, dst = REPO / item, dest / item
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    (dest / "logs").mkdir(exist_ok=True)
    (dest / "logs/.gitkeep").touch()
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*GIT, "commit", "-qm", "bench"], cwd=dest, check=True)
    return dest
