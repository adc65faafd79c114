"""What one run folder becomes in MLflow: params, metrics and tags within MLflow's rules.

Pure: imports no MLflow (tests hold the keys and values it makes against MLflow's own
validators). Conventions (docs/mlflow.md):
- params: the resolved config (runtime_meta.json `config.resolved`) flattened with dots,
  list items by index (`stage.acceptance.0.id`); values as the config spells them in
  JSON (`null`, `true`, `1.0`, strings bare); `{}`/`[]` for an empty map or list.
- metrics: every number (not a boolean) of kpi_summary.json, flattened the same way
  (`exit_reasons.take_profit`, `per_symbol.BTC.pnl_krw`).
- tags: `paper.*` for our facts, MLflow's own names where MLflow has one (git commit and
  branch, the run's note).
- keys: MLflow accepts letters, digits, `_ - . / space` (and `:` except on Windows, so
  not here), at most 250 characters, and no path tricks (`a//b`, `../x`). A key outside
  that gets every other character replaced by `_` and a `_<8 hex of its SHA-256>` tail,
  so two keys never collapse into one.
- values: a param longer than 6,000 characters (tag: 8,000) is cut with a marker naming
  its full length; the tag `paper.params_truncated` lists the cut keys, whose full
  values are in the run's artifacts (config.yaml, provenance.json).
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

KEY_LIMIT = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
PARAM_VALUE_LIMIT = 6000  # MAX_PARAM_VAL_LENGTH in MLflow 3 (500 in MLflow 1)
TAG_VALUE_LIMIT = 8000  # MAX_TAG_VAL_LENGTH
_NOT_KEY = re.compile(r"[^\w./ -]")  # MLflow's name charset without ':' (refused by Windows servers)
TRUNCATED_TAG = "paper.params_truncated"
OUTPUTS_TAG = "paper.outputs_sha256"  # written last, after the artifacts: their upload is complete
RUN_ID_TAG, STAGE_TAG = "paper.run_id", "paper.stage_id"
# our run status -> MLflow's RunStatus name
MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED",
                 "abandoned": "KILLED", "running": "RUNNING"}


def _path_problem(key: str) -> bool:
    """MLflow's path_not_unique: the key must be its own normalised relative path."""
    norm = posixpath.normpath(key)
    return norm != key or norm == "." or norm.startswith("..") or norm.startswith("/")


def mlflow_key(raw: str) -> str:
    """`raw` if MLflow accepts it as a param/metric/tag key, else a safe, distinct spelling."""
    key = _NOT_KEY.sub("_", raw)
    if _path_problem(key):
        key = key.replace("/", "_")
        if _path_problem(key):  # "", ".", "..x"
            key = "_" + key
    if key == raw and len(key) <= KEY_LIMIT:
        return key
    tail = "_" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return key[:KEY_LIMIT - len(tail)] + tail  # a cut prefix of a clean path + "_hex" is still clean


def flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf) pairs; list items by index; an empty map or list is a leaf."""
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            yield from flatten(v, f"{prefix}{k}.")
    elif isinstance(obj, list) and obj:
        for i, v in enumerate(obj):
            yield from flatten(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], obj


def param_value(v: Any) -> str:
    """A config leaf as the config's JSON spells it (strings bare)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return v if isinstance(v, str) else repr(v)


def clip(value: str, limit: int) -> tuple[str, bool]:
    """`value` cut to `limit` characters with a marker saying so; (value, was it cut)."""
    if len(value) <= limit:
        return value, False
    marker = f"...[cut: {len(value)} characters; full value in the run's artifacts]"
    return value[:limit - len(marker)] + marker, True


def _keyed(pairs: Iterator[tuple[str, Any]], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    raw_of: dict[str, str] = {}
    for raw, v in pairs:
        key = mlflow_key(raw)
        if key in out:  # pragma: no cover - needs a raw key spelled like another's hashed form
            raise ValueError(f"{what} keys {raw_of[key]!r} and {raw!r} both map to MLflow key {key!r}")
        out[key], raw_of[key] = v, raw
    return out


def params_of(resolved: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """({key: value}, [keys cut to PARAM_VALUE_LIMIT])."""
    params, cut = {}, []
    for key, v in _keyed(flatten(resolved), "param").items():
        params[key], was_cut = clip(param_value(v), PARAM_VALUE_LIMIT)
        if was_cut:
            cut.append(key)
    return params, cut


def metrics_of(kpis: dict[str, Any]) -> dict[str, float]:
    """Every number of the KPI file (booleans, strings and nulls are not metrics)."""
    leaves = ((k, v) for k, v in flatten(kpis) if isinstance(v, (int, float)) and not isinstance(v, bool))
    return {k: float(v) for k, v in _keyed(leaves, "metric").items()}


def _ms(iso: Any) -> int | None:
    if not isinstance(iso, str):
        return None
    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1000)
    except ValueError:
        return None


def notes_of(meta: dict[str, Any], resolved: dict[str, Any]) -> str | None:
    """The run's note: `notes` in the record (a string or list of strings), else `run.note`."""
    notes = meta.get("notes", meta.get("note"))
    if isinstance(notes, list):
        notes = "\n".join(str(n) for n in notes)
    if not notes:
        notes = (resolved.get("run") or {}).get("note") if isinstance(resolved.get("run"), dict) else None
    return str(notes) if notes else None


@dataclass
class Payload:
    """One run as MLflow will hold it; `folder` is uploaded as the run's artifacts."""

    stage_id: str
    run_id: str
    folder: Path
    status: str  # MLflow RunStatus name
    start_ms: int | None
    end_ms: int | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _outputs_digest(outputs: dict[str, str] | None, meta: dict[str, Any]) -> str:
    """One digest of the folder's files: the recorded outputs and the record itself (its seal
    changes with every write, e.g. a pinned folder re-run with the same inputs)."""
    basis = f"{meta.get('seal')}:{sorted((outputs or {}).items())!r}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


def payload_of(folder: Path, state: str, status: str, meta: dict[str, Any], kpis: dict[str, Any] | None,
               prov: dict[str, Any] | None, outputs: dict[str, str] | None, run_dir_rel: str) -> Payload:
    """Build the payload of a verified run folder (state intact or incomplete)."""
    prov = prov or {}
    config = prov.get("config") if isinstance(prov.get("config"), dict) else {}
    # the whole resolved config as recorded (with run, clock and engine), else provenance.json's
    # result-deciding part
    resolved = (meta.get("config") or {}).get("resolved") or config.get("resolved") or {}
    params, cut = params_of(resolved)
    git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
    acc = meta.get("acceptance") if isinstance(meta.get("acceptance"), dict) else {}
    passed = acc.get("passed")
    tags: dict[str, Any] = {
        RUN_ID_TAG: meta.get("run_id") or folder.name,
        STAGE_TAG: meta.get("stage_id") or folder.parent.name,
        "paper.fingerprint": meta.get("fingerprint") or prov.get("fingerprint"),
        "paper.status": status,
        "paper.state": state,  # intact (verified against its record) or incomplete (no outputs recorded)
        "paper.gate": None if passed is None else ("pass" if passed else "fail"),
        "paper.run_dir": run_dir_rel,
        "paper.dirty": None if not git.get("available") else ("true" if git.get("dirty") else "false"),
        "paper.git.diff_xxh3_128": git.get("diff_xxh3_128"),
        "mlflow.source.git.commit": git.get("commit"),
        "mlflow.source.git.branch": git.get("branch"),
        "mlflow.note.content": notes_of(meta, resolved),  # MLflow's UI shows it as the run's description
        TRUNCATED_TAG: ",".join(cut) or None,
        OUTPUTS_TAG: _outputs_digest(outputs, meta),
    }
    for group, choice in sorted((config.get("choices") or {}).items()):
        tags[mlflow_key(f"paper.choice.{group}")] = choice
    for r in acc.get("results") or []:
        if isinstance(r, dict) and isinstance(r.get("id"), str):
            tags[mlflow_key(f"paper.gate.{r['id']}")] = "pass" if r.get("passed") else "fail"
    clean = {k: clip(str(v), TAG_VALUE_LIMIT)[0] for k, v in tags.items() if v is not None}
    return Payload(stage_id=clean[STAGE_TAG], run_id=clean[RUN_ID_TAG], folder=folder,
                   status=MLFLOW_STATUS.get(status, "FAILED"), start_ms=_ms(meta.get("started_at")),
                   end_ms=_ms(meta.get("ended_at")), params=params, metrics=metrics_of(kpis or {}), tags=clean)
