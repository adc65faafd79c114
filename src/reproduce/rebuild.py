"""Rebuild a run's inputs in a temporary git worktree and run it again there.

The worktree is at the recorded commit; the recorded patch is applied, the untracked
files written and the data blobs put where the run read them; then `python -m src.run`
with the recorded overrides (and the recorded run id, so even config.yaml comes out the
same). The worktree is removed whatever happens.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from src.provenance import blobs
from src.provenance.outputs import output_digests
from src.provenance.record import REDACTED
from src.reproduce.source import CannotReproduce, Recorded
from src.runs.paths import LOGS_DIRNAME


@dataclass
class Rerun:
    exit_code: int
    wall_s: float
    run_dir: Path
    outputs: dict[str, str]
    command: list[str]


def _needed(rec: Recorded) -> list[tuple[str, str]]:
    """[(md5, what)] of every blob the rerun reads."""
    out = [(rec.patch["md5"], "the uncommitted patch (patch.diff)")] if rec.patch else []
    out += [(v["md5"], f"untracked file {p}") for p, v in sorted(rec.untracked.items())]
    out += [(d["md5"], f"{d['role']} data {d['path']}") for d in rec.data]
    return out


def ensure_blobs(root: Path, rec: Recorded) -> Path:
    """The DVC cache holding every blob the rerun needs, fetched from the remote when missing."""
    cache = blobs.cache_dir(root)
    needed = _needed(rec)
    if cache is None:
        raise CannotReproduce(f"no .dvc/ folder in {root}: the run's blobs live in a DVC cache")
    if not needed:
        return cache
    lost = blobs.missing(cache, [m for m, _ in needed])
    if lost and rec.dir_md5:
        err = blobs.fetch(root, rec.dir_md5, rec.size, rec.nfiles)
        lost = blobs.missing(cache, lost)
    else:
        err = None
    if lost:
        names = "; ".join(f"blob {m} ({what})" for m, what in needed if m in lost)
        raise CannotReproduce(f"{names}: in neither the DVC cache {cache} nor the remote"
                              + (f" (dvc fetch: {err})" if err else ""))
    return cache


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False)


def _place(src: Path, dest: Path, executable: bool = False) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    os.chmod(dest, 0o755 if executable else 0o644)


def overrides_for(rec: Recorded, data_overrides: list[str]) -> list[str]:
    out = list(rec.overrides)
    bad = [o for o in out if REDACTED in o]
    if bad:
        raise CannotReproduce(f"override {bad[0]!r} was redacted in the record (a secret): it cannot be replayed")
    if not any(o.lstrip("+~").startswith("run.id=") for o in out):
        out.append(f"run.id={rec.run_id}")  # the recorded id: config.yaml and params.yaml name it
    return out + data_overrides


@contextmanager
def worktree(root: Path, commit: str) -> Iterator[Path]:
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise CannotReproduce(f"commit {commit} is not in the repository {root}: fetch it "
                              f"(git fetch <remote> {commit}) or reproduce in a clone that has it")
    tmp = Path(tempfile.mkdtemp(prefix="reproduce-"))
    wt = tmp / "wt"
    try:
        added = _git(root, "worktree", "add", "--detach", "--quiet", str(wt), commit)
        if added.returncode != 0:
            raise CannotReproduce(f"git worktree add at {commit[:10]} failed: {added.stderr.strip()[:300]}")
        yield wt
    finally:
        _git(root, "worktree", "remove", "--force", str(wt))
        shutil.rmtree(tmp, ignore_errors=True)
        _git(root, "worktree", "prune")


def rebuild(wt: Path, rec: Recorded, cache: Path) -> list[str]:
    """Apply the patch, write the untracked files and data; returns the data overrides."""
    if rec.patch:
        applied = _git(wt, "apply", "--binary", "--whitespace=nowarn", str(blobs.object_path(cache, rec.patch["md5"])))
        if applied.returncode != 0:
            raise CannotReproduce(f"the recorded patch does not apply at {rec.commit}: {applied.stderr.strip()[:300]}")
    for rel, v in rec.untracked.items():
        _place(blobs.object_path(cache, v["md5"]), wt / rel, bool(v.get("executable")))
    overrides = []
    for d in rec.data:
        if d["role"] != "replay":
            raise CannotReproduce(f"a live run is not run again (its market is gone): replay its recording "
                                  f"{d['path']} (blob {d['md5']}) with market=replay market.path=...")
        given = Path(d["path"])
        if not given.is_absolute() and ".." not in given.parts:
            _place(blobs.object_path(cache, d["md5"]), wt / given)
        else:  # a path outside the checkout: put the blob inside, point the run at it (a location key)
            dest = wt / ".reproduce-data" / f"{d['md5']}{given.suffix}"
            _place(blobs.object_path(cache, d["md5"]), dest)
            overrides.append(f"market.path={dest.relative_to(wt).as_posix()}")
    return overrides


def run_again(wt: Path, rec: Recorded, data_overrides: list[str]) -> Rerun:
    cmd = [sys.executable, "-m", "src.run", *overrides_for(rec, data_overrides)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CONFIG_CACHE"] = "0"  # the rerun composes conf/ with Hydra: a cache entry is never the evidence
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=wt, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    run_dir = wt / LOGS_DIRNAME / rec.stage_id / rec.run_id
    if proc.returncode not in (0, 1) or not (run_dir / "runtime_meta.json").is_file():
        tail = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise CannotReproduce(f"the rerun at {(rec.commit or '?')[:10]} ended with exit {proc.returncode}: "
                              f"{tail[-1] if tail else 'no output'}")
    return Rerun(proc.returncode, wall, run_dir, output_digests(run_dir), ["python", "-m", "src.run", *cmd[3:]])
