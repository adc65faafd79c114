"""What `python -m src.reproduce RUN` names: the recorded inputs and outputs of one run.

RUN is a run folder (only runtime_meta.json needs to be left), a run id (a folder under
logs/*/, else its manifest repro/*/<id>.dvc), or a git revision / DVC experiment (the DVC
stage's pinned run: repro/<stage>/<dvc stage>.dvc as committed there).
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from src.provenance import blobs
from src.provenance.outputs import read_record, seal_state
from src.provenance.snapshot import MANIFEST_DIR, read_record_blob
from src.runs.paths import LOGS_DIRNAME


class CannotReproduce(Exception):
    """Something a rerun needs is missing: names exactly what (exit 2)."""


@dataclass
class Recorded:
    label: str
    run_id: str
    stage_id: str
    commit: str | None
    overrides: list[str]
    outputs: dict[str, str] | None
    environment: dict[str, Any]
    patch: dict[str, Any] | None
    untracked: dict[str, dict[str, Any]]
    data: list[dict[str, Any]]
    dir_md5: str | None
    size: int = 0
    nfiles: int = 0
    run_dir: Path | None = None  # the run folder, when it still exists
    source: str = "folder"
    withheld: list[dict[str, Any]] = field(default_factory=list)  # secret-like inputs never stored


def _from(label: str, rec: dict[str, Any], run_dir: Path | None, source: str,
          dir_info: dict[str, Any] | None = None) -> Recorded:
    d = dir_info or rec
    out = Recorded(label, rec.get("run_id", ""), rec.get("stage_id", ""), rec.get("commit"),
                    list(rec.get("overrides") or []), rec.get("outputs"), rec.get("environment") or {},
                    rec.get("patch"), rec.get("untracked") or {}, rec.get("data") or [], d.get("dir_md5"),
                    int(d.get("size") or 0), int(d.get("nfiles") or 0), run_dir, source)
    out.withheld = list(rec.get("withheld") or [])
    return out


def from_folder(run_dir: Path, label: str) -> Recorded:
    try:
        meta, raw = read_record(run_dir)
    except ValueError as exc:
        raise CannotReproduce(f"{label}: {exc}") from None
    sealed = seal_state(raw)
    if sealed is not True:
        why = "has no seal" if sealed is None else "does not match its seal (edited)"
        raise CannotReproduce(f"{label}: runtime_meta.json {why}: its digests are not evidence of what "
                              "the run wrote")
    keep = meta.get("reproduce")
    if not isinstance(keep, dict):
        raise CannotReproduce(f"{label}: runtime_meta.json has no `reproduce` section: the run was made by a "
                              "version that did not keep its inputs (patch, untracked files, data)")
    if "error" in keep:
        raise CannotReproduce(f"{label}: {keep['error']}")
    env = meta.get("environment") or {}
    rec = {**keep, "run_id": meta.get("run_id"), "stage_id": meta.get("stage_id"),
           "outputs": (meta.get("outputs") or {}).get("sha256"), "environment": env}
    return _from(label, rec, run_dir, "folder")


def _dir_info(text: str, where: str) -> dict[str, Any]:
    try:
        out = (yaml.safe_load(text) or {}).get("outs")[0]
        return {"dir_md5": blobs.read_dvc_file(text), "size": int(out.get("size") or 0),
                "nfiles": int(out.get("nfiles") or 0)}
    except (yaml.YAMLError, AttributeError, TypeError, IndexError, ValueError):
        raise CannotReproduce(f"{where}: not a .dvc file of a run's blobs") from None


def from_manifest(root: Path, text: str, where: str, label: str, source: str) -> Recorded:
    """A run known only by its manifest: record.json from the blob folder (fetched if not cached)."""
    info = _dir_info(text, where)
    cache = blobs.cache_dir(root)
    if cache is None or not info["dir_md5"]:
        raise CannotReproduce(f"{where}: no DVC cache in {root} (dvc init) or no .dir object named")
    rec = read_record_blob(cache, info["dir_md5"])
    if rec is None:
        err = blobs.fetch(root, info["dir_md5"], info["size"], info["nfiles"])
        rec = read_record_blob(cache, info["dir_md5"])
        if rec is None:
            raise CannotReproduce(f"{label}: the run's record (blob folder {info['dir_md5']} named by {where}) is "
                                  f"in neither the DVC cache {cache} nor the remote ({err or 'dvc fetch found it in no remote'})")
    return _from(label, rec, None, source, info)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def from_revision(root: Path, ref: str, dvc_stage: str) -> Recorded:
    from src.compare.load import RunNotFound, resolve_rev  # the revision / experiment resolver compare uses

    try:
        sha = resolve_rev(root, ref)
    except RunNotFound as exc:
        raise CannotReproduce(str(exc)) from None
    if sha is None:
        raise LookupError(f"{ref!r}: not a run folder, a run id, a git revision or a DVC experiment name")
    try:
        stage = (yaml.safe_load(_git(root, "show", f"{sha}:params.yaml").stdout) or {})[dvc_stage]["stage"]
    except (yaml.YAMLError, KeyError, TypeError):
        raise CannotReproduce(f"{ref!r} ({sha[:10]}): params.yaml has no {dvc_stage}.stage") from None
    rel = f"{MANIFEST_DIR}/{stage}/{dvc_stage}.dvc"
    shown = _git(root, "show", f"{sha}:{rel}")
    if shown.returncode != 0:
        raise CannotReproduce(f"{ref!r} ({sha[:10]}): no {rel} committed there: the inputs of that run were "
                              f"not committed (git add {MANIFEST_DIR}/ after the run, then dvc push)")
    return from_manifest(root, shown.stdout, f"{ref}:{rel}", ref, f"git:{sha}")


def _folder(root: Path, run_dir: Path, label: str) -> Recorded:  # hook: leftover
    """A run folder; a DVC stage's folder as a fresh clone holds it has no record (git-ignored, per
    machine): its committed manifest (repro/<stage>/<run id>.dvc) names the record's blob instead."""
    manifest = root / MANIFEST_DIR / run_dir.parent.name / f"{run_dir.name}.dvc"
    if not (run_dir / "runtime_meta.json").exists() and manifest.is_file():
        return from_manifest(root, manifest.read_text(encoding="utf-8"), manifest.relative_to(root).as_posix(),
                             label, "manifest")
    return from_folder(run_dir, label)


def resolve(root: Path, ref: str, dvc_stage: str = "smoke") -> Recorded:
    path = Path(ref)
    if path.is_dir():
        return _folder(root, path.resolve(), ref)
    if "/" not in ref and ref not in (".", ".."):
        logs = root / LOGS_DIRNAME
        hits = sorted(p for p in logs.glob(f"*/{ref}") if p.is_dir()) if logs.is_dir() else []
        manifests = sorted((root / MANIFEST_DIR).glob(f"*/{ref}.dvc"))
        if len(hits) > 1 or (not hits and len(manifests) > 1):
            found = hits or manifests
            raise LookupError(f"run id {ref!r} is ambiguous: {', '.join(p.relative_to(root).as_posix() for p in found)}")
        if hits:
            return _folder(root, hits[0], ref)
        if manifests:
            m = manifests[0]
            return from_manifest(root, m.read_text(encoding="utf-8"), m.relative_to(root).as_posix(), ref, "manifest")
    return from_revision(root, ref, dvc_stage)
