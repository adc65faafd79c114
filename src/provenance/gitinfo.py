"""Git state of the repo: commit, branch, dirty flag, and a digest of the uncommitted diff."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import xxhash

# Where each run writes the .dvc manifest of its kept inputs (src/provenance/snapshot.py): outputs of
# runs, committed so `dvc push` carries the blobs; never inputs, so they never make a run "dirty".
MANIFEST_DIR = "repro"


_STATUS = ("status", "--porcelain=v2", "--branch", "--untracked-files=normal")


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=20, check=False)


class PendingGitState:
    """git_state with its `git status` started now and read by result(): git works in its own
    process while the caller does something else (the run hashes its source files meanwhile)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._error: Exception | None = None
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                ["git", "-C", str(root), *_STATUS], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            self._proc, self._error = None, exc

    def result(self) -> dict[str, Any]:
        if self._proc is None:
            return {"available": False, "reason": f"git not runnable: {self._error}"}
        try:
            out, err = self._proc.communicate(timeout=20)
        except subprocess.TimeoutExpired as exc:
            self._proc.kill()
            self._proc.communicate()
            return {"available": False, "reason": f"git not runnable: {exc}"}
        return _from_status(self.root, subprocess.CompletedProcess(self._proc.args, self._proc.returncode, out, err))


def git_state(root: Path) -> dict[str, Any]:
    """What git says about `root`; {"available": False, ...} when it is not a git checkout."""
    return PendingGitState(root).result()


def _from_status(root: Path, st: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
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
