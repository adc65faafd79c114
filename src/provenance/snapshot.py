"""What a rerun needs, kept by content at the end of a run (`python -m src.reproduce` reads it).

- the commit, and the uncommitted patch ITSELF (`git diff HEAD --binary`, tracked files
  outside logs/ and repro/) and the untracked files under src/ and conf/, as blobs;
- the market data as blobs: a replay file, a live run's recording (quotes.parquet);
- the overrides as typed and the output digests (already in the record).

Blobs go into the repo's DVC cache in DVC's layout (src/provenance/blobs.py), listed in
one `.dir` object per run that also holds `record.json` (this summary, so a fresh clone
can reproduce without the run folder), tracked by `repro/<stage>/<run_id>.dvc`: commit
that file and `dvc push` carries the blobs to the team's remote, `dvc pull` brings them
back. A clean tree with a synthetic market writes three small files.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from src.provenance import blobs
from src.provenance.gitinfo import MANIFEST_DIR
from src.provenance.record import SECRET_KEY, env_secrets
from src.runs.atomic import dumps_deterministic

PATCH_EXCLUDES = ("logs", MANIFEST_DIR, ".dvc")  # run outputs, these manifests, DVC's own folder
UNTRACKED_UNDER = ("src", "conf")
_GITIGNORE = ("# folders of blobs that `dvc pull` (or the run) checks out here; git tracks the .dvc files\n"
              "/*/*/\n")


def _git(root: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise OSError(f"git {' '.join(args[:2])} failed: {proc.stderr.decode(errors='replace').strip()[:200]}")
    return proc.stdout


def _needs_patch(git: dict[str, Any]) -> bool:
    """Whether anything but run outputs and manifests changed (git_state's status, no extra git call)."""
    paths = git.get("changed_paths") or []
    if len(paths) >= 200:
        return True
    return any(p.split("/", 1)[0] not in PATCH_EXCLUDES and not _bytecode(p) for p in paths)


def _bytecode(rel: str) -> bool:
    """Python's caches: never inputs (the run purges them), even where no .gitignore says so."""
    return "__pycache__" in rel.split("/") or rel.endswith((".pyc", ".pyo"))


def _secret_in(data: bytes, secrets: list[str]) -> bool:
    return any(v.encode("utf-8", "surrogateescape") in data for v in secrets)


def collect_sources(root: Path, git: dict[str, Any], cache: Path, entries: dict[str, str]) -> dict[str, Any]:
    """The patch and the untracked files under src/ and conf/, stored as blobs.

    Blobs travel to the team's remote, so nothing secret goes in: an untracked file named like
    a secret, or a patch or file holding the value of a secret-named environment variable (the
    rule src/provenance/record.redact applies to the record), is withheld and listed instead."""
    out: dict[str, Any] = {"commit": git.get("commit"), "patch": None, "untracked": {}, "withheld": []}
    if not git.get("available") or not git.get("commit") or not _needs_patch(git):
        return out
    secrets = env_secrets()
    excludes = [f":(exclude){p}" for p in PATCH_EXCLUDES]
    patch = _git(root, "diff", "HEAD", "--binary", "--full-index", "--no-color", "--no-ext-diff",
                 "--no-renames", "--", ".", *excludes)
    if patch and _secret_in(patch, secrets):
        out["withheld"].append({"path": "patch.diff", "reason": "holds the value of a secret environment variable"})
    elif patch:
        md5, size = blobs.put_bytes(cache, patch)
        entries["patch.diff"] = md5
        out["patch"] = {"md5": md5, "bytes": size}
    listed = _git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", *UNTRACKED_UNDER)
    for rel in sorted(p for p in listed.decode("utf-8", "surrogateescape").split("\0") if p and not _bytecode(p)):
        path = root / rel
        if path.is_symlink() or not path.is_file():
            continue
        if SECRET_KEY.search(path.name):
            out["withheld"].append({"path": rel, "reason": "named like a secret"})
            continue
        data = path.read_bytes()
        if _secret_in(data, secrets):
            out["withheld"].append({"path": rel, "reason": "holds the value of a secret environment variable"})
            continue
        md5, size = blobs.put_bytes(cache, data)
        entries[f"untracked/{rel}"] = md5
        out["untracked"][rel] = {"md5": md5, "bytes": size, "executable": os.access(path, os.X_OK)}
    return out


def collect_data(root: Path, run_dir: Path, meta: dict[str, Any], cache: Path,
                 entries: dict[str, str]) -> list[dict[str, Any]]:
    """Replay files and live recordings by content."""
    data = meta.get("data") or {}
    found: list[tuple[str, Path, str | None, str]] = []
    ident = data.get("identity") or {}
    where = data.get("location") or {}
    if ident.get("kind") == "replay" and where.get("resolved"):
        found.append(("replay", Path(where["resolved"]), ident.get("sha256"), str(where.get("path"))))
    rec = data.get("recorded")
    if isinstance(rec, dict) and rec.get("path"):
        found.append(("recording", root / rec["path"], rec.get("sha256"), rec["path"]))
    out = []
    for role, path, sha256, given in found:
        md5, size = blobs.put_file(cache, path)
        entries[f"data/{md5}{path.suffix}"] = md5
        out.append({"role": role, "path": given, "md5": md5, "sha256": sha256, "bytes": size})
    return out


def keep_for_reproduce(root: Path, stage_id: str, run_id: str, run_dir: Path, meta: dict[str, Any]) -> None:
    """Store the blobs and the manifest; put `meta["reproduce"]`. Never raises for I/O: a run
    whose inputs could not be kept says why in its record (and on stderr, by the caller)."""
    cache = blobs.cache_dir(root)
    if cache is None:
        meta["reproduce"] = {"error": f"no .dvc/ folder in {root}: blobs are kept in the DVC cache (dvc init)"}
        return
    entries: dict[str, str] = {}
    try:
        info = collect_sources(root, meta.get("git") or {}, cache, entries)
        info["data"] = collect_data(root, run_dir, meta, cache, entries)
        info["overrides"] = list((meta.get("command") or {}).get("overrides") or [])
        env = meta.get("environment") or {}
        record = {**info, "run_id": run_id, "stage_id": stage_id, "fingerprint": meta.get("fingerprint"),
                  "outputs": (meta.get("outputs") or {}).get("sha256"),
                  "environment": {k: env.get(k) for k in ("python", "implementation", "platform", "machine",
                                                           "packages")}}
        md5, size = blobs.put_bytes(cache, dumps_deterministic(record).encode("utf-8"))
        entries["record.json"] = md5
        dir_md5 = blobs.put_tree(cache, entries)
        total = size + sum((v or {}).get("bytes", 0) for v in [info["patch"], *info["untracked"].values(),
                                                               *info["data"]])
        manifest = root / MANIFEST_DIR / stage_id / f"{run_id}.dvc"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        ignore = root / MANIFEST_DIR / ".gitignore"
        if not ignore.exists():
            blobs.write_small(ignore, _GITIGNORE)
        _check_out(cache, entries, manifest.parent / run_id)
        blobs.write_small(manifest, blobs.dvc_file_text(dir_md5, total, len(entries), run_id))
        meta["reproduce"] = {**info, "manifest": manifest.relative_to(root).as_posix(), "dir_md5": dir_md5,
                             "size": total, "nfiles": len(entries)}
    except (OSError, subprocess.SubprocessError) as exc:  # a full disk, a git that hangs: the run stands
        meta["reproduce"] = {"error": f"inputs not kept for reproduce: {exc}"}


def _check_out(cache: Path, entries: dict[str, str], folder: Path) -> None:
    """The blob folder in the workspace as hard links to the cache (no copy; `dvc status` stays
    clean); skipped where links are impossible (another device): `dvc checkout` makes it then."""
    if folder.exists():
        _remove(folder)
    try:
        for rel, md5 in entries.items():
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(blobs.object_path(cache, md5), dest)
    except OSError:
        _remove(folder)


def _remove(folder: Path) -> None:
    import shutil  # only here: its import is a cost every clean run would pay

    shutil.rmtree(folder, ignore_errors=True)


def read_record_blob(cache: Path, dir_md5: str) -> dict[str, Any] | None:
    """record.json of a run's blob folder, when the `.dir` object and it are in the cache."""
    tree = blobs.read_tree(cache, dir_md5)
    if tree is None or "record.json" not in tree:
        return None
    try:
        return json.loads(blobs.object_path(cache, tree["record.json"]).read_bytes())
    except FileNotFoundError:
        return None
