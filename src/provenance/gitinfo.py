"""Git state of the repo: commit, branch, dirty flag, and a digest of the uncommitted diff."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import xxhash

# Where each run writes the .dvc manifest of its kept inputs (src/provenance/snapshot.py): outputs of
# runs, committed so `dvc push` carries the blobs; never inputs, so they never make a run "dirty".
MANIFEST_DIR = "repro"


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=20, check=False)


def git_state(root: Path) -> dict[str, Any]:
    """What git says about `root`; {"available": False, ...} when it is not a git checkout."""
    try:
        st = _git(root, "status", "--porcelain=v2", "--branch", "--untracked-files=normal")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"available": False, "reason": f"git not runnable: {exc}"}
    if st.returncode != 0:
        return {"available": False, "reason": st.stderr.decode(errors="replace").strip()[:200]}
    commit = branch = None
    changed: list[str] = []
    for line in st.stdout.decode(errors="replace").splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2]
            commit = None if commit == "(initial)" else commit
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2]
        elif line and not line.startswith("#"):
            path = line.rsplit(" ", 1)[-1] if line[0] in "12u" else line[2:]
            if not path.startswith(MANIFEST_DIR + "/"):
                changed.append(path)
    diff_digest = None
    if changed and commit:
        diff = _git(root, "diff", "HEAD", "--no-color", "--no-ext-diff")
        diff_digest = xxhash.xxh3_128_hexdigest(diff.stdout)
    return {
        "available": True,
        "commit": commit,
        "branch": None if branch == "(detached)" else branch,
        "dirty": bool(changed),
        "changed_paths": sorted(changed)[:200],
        "diff_xxh3_128": diff_digest,
    }
