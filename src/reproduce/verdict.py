"""The verdict: the rerun's outputs against the recorded digests (and the run folder's files).

"The same run" is decided by src/provenance/outputs.differing_results, the function
`src.compare` uses: the result files, by SHA-256; input descriptions (config.yaml,
params.yaml, provenance.json, metrics.json) that differ are reported beside it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from src.compare.firstdiff import first_difference
from src.provenance.outputs import INPUT_DESCRIPTIONS, diff_digests, differing_results
from src.provenance.record import environment
from src.reproduce.source import Recorded


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def judge(rec: Recorded, rerun_dir: Path, rerun: dict[str, str]) -> dict[str, Any]:
    recorded = rec.outputs or {}
    differing = differing_results(recorded, rerun) or []
    changes = dict(diff_digests(recorded, rerun))
    descriptions = [p for p in changes if p in INPUT_DESCRIPTIONS]
    diffs: list[dict[str, Any]] = []
    for p in differing:
        kept = None
        if rec.run_dir is not None:  # the original bytes, when the folder still holds them unchanged
            raw = _read(rec.run_dir / p)
            if raw is not None and hashlib.sha256(raw).hexdigest() == recorded.get(p):
                kept = raw
        d = first_difference(p, kept, _read(rerun_dir / p))
        d.update(change=changes[p], recorded_sha256=recorded.get(p), rerun_sha256=rerun.get(p))
        diffs.append(d)
    # An output edited in the folder after the run: not what the run wrote, nor what a rerun writes.
    if rec.run_dir is not None and rec.run_dir.is_dir():
        for p in sorted(set(recorded) - set(differing) - set(INPUT_DESCRIPTIONS)):
            raw = _read(rec.run_dir / p)
            if raw is not None and hashlib.sha256(raw).hexdigest() != rerun.get(p):
                d = first_difference(p, raw, _read(rerun_dir / p))
                d.update(change="edited in the run folder", recorded_sha256=recorded.get(p),
                         rerun_sha256=rerun.get(p))
                diffs.append(d)
    diffs.sort(key=lambda d: d["file"])
    return {"verdict": "differs" if diffs else "reproduced", "differences": diffs,
            "input_descriptions_differ": descriptions, "outputs_compared": len(recorded)}


def environment_now() -> dict[str, Any]:
    """This interpreter's environment as the record writes it, without what never compares (host, executable)."""
    env = environment()
    return {k: env[k] for k in ("python", "implementation", "platform", "machine", "packages")}


def environment_diff(recorded: dict[str, Any]) -> list[dict[str, Any]]:
    """[{key, recorded, now}] for python, implementation, platform, machine and key packages."""
    now = environment_now()
    out = []
    for key in ("python", "implementation", "platform", "machine"):
        if key in recorded and recorded.get(key) != now[key]:
            out.append({"key": key, "recorded": recorded.get(key), "now": now[key]})
    rec_pk = recorded.get("packages") or {}
    for pkg in sorted(set(rec_pk) | set(now["packages"])):
        if pkg in rec_pk and rec_pk.get(pkg) != now["packages"].get(pkg):
            out.append({"key": pkg, "recorded": rec_pk.get(pkg), "now": now["packages"].get(pkg)})
    return out
