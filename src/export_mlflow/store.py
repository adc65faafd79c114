"""Write payloads into an MLflow tracking store: one MLflow run per (stage id, run id), updated in place.

The MLflow run is found again by our key kept as tags (`paper.stage_id`, `paper.run_id`),
searched with `search_runs`, never by name or position. Re-exporting:
- params: MLflow never changes a logged param. When the stored params disagree with the
  folder's (the pinned `smoke` folder re-run with other inputs: another fingerprint), the
  stored MLflow run describes a run that no longer exists: it is deleted (MLflow keeps it
  in its trash) and a new one made: `replaced`. Params missing from the stored run (an
  export cut short) are added.
- tags are overwritten where they differ; our own `paper.*` tags the folder no longer
  gives are removed.
- metrics are logged (step 0) only when absent or different, so a re-export adds no
  history rows; a changed value is logged with the export time, which makes it the latest.
- artifacts are uploaded when `paper.outputs_sha256` (the digest of the folder's recorded
  files) differs; that tag is written after the upload, so an interrupted upload is redone.
- several MLflow runs with one key (two exports racing) are folded into the oldest.
"""
from __future__ import annotations

import time
from typing import Any

from src.export_mlflow.entities import OUTPUTS_TAG, RUN_ID_TAG, STAGE_TAG, Payload

_TERMINAL = ("FINISHED", "FAILED", "KILLED")


def open_experiment(client: Any, name: str, artifact_location: str | None) -> str:
    """The experiment's id, created (with `artifact_location`) when it does not exist."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, artifact_location=artifact_location)
    if exp.lifecycle_stage != "active":
        raise ValueError(f"experiment {name!r} is deleted in this tracking store: restore it "
                         "(`mlflow experiments restore`) or pass another --experiment")
    return exp.experiment_id


def existing_runs(client: Any, experiment_id: str, stage_id: str) -> dict[str, list[Any]]:
    """{our run id: [MLflow runs carrying it]} for one stage, oldest first."""
    from mlflow.entities import ViewType

    found: dict[str, list[Any]] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.\"{STAGE_TAG}\" = '{stage_id}'",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        for run in page:
            found.setdefault(run.data.tags.get(RUN_ID_TAG, ""), []).append(run)
        token = page.token
        if not token:
            break
    for runs in found.values():
        runs.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id))
    return found


def _conflicts(stored: dict[str, str], params: dict[str, str]) -> bool:
    return any(params.get(k) != v for k, v in stored.items())


def export_run(client: Any, experiment_id: str, p: Payload, found: list[Any]) -> tuple[str, str]:
    """Create or update the MLflow run of `p`; (action, MLflow run id). Action: created,
    replaced, updated or unchanged."""
    from mlflow.entities import Metric, Param, RunTag

    keep = found[0] if found else None
    for extra in found[1:]:
        client.delete_run(extra.info.run_id)
    action = "updated"
    if keep is not None and _conflicts(keep.data.params, p.params):
        client.delete_run(keep.info.run_id)
        keep, action = None, "replaced"
    if keep is None:
        key_tags = {RUN_ID_TAG: p.run_id, STAGE_TAG: p.stage_id}
        run = client.create_run(experiment_id, start_time=p.start_ms, tags=key_tags, run_name=p.run_id)
        run_id, params0, tags0, metrics0, status0, end0 = run.info.run_id, {}, key_tags, {}, None, None
        action = "created" if action != "replaced" else action
    else:
        run_id, params0, tags0 = keep.info.run_id, keep.data.params, keep.data.tags
        metrics0, status0, end0 = keep.data.metrics, keep.info.status, keep.info.end_time
    changed = action != "updated"
    now = int(time.time() * 1000)
    stamp = p.end_ms if action != "updated" and p.end_ms else now
    params = [Param(k, v) for k, v in p.params.items() if k not in params0]
    metrics = [Metric(k, v, stamp, 0) for k, v in p.metrics.items() if metrics0.get(k) != v]
    tags = [RunTag(k, v) for k, v in p.tags.items() if k != OUTPUTS_TAG and tags0.get(k) != v]
    if params or metrics or tags:
        client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        changed = True
    for stale in sorted(k for k in tags0 if k.startswith("paper.") and k not in p.tags):
        client.delete_tag(run_id, stale)
        changed = True
    if tags0.get(OUTPUTS_TAG) != p.tags[OUTPUTS_TAG]:
        client.log_artifacts(run_id, str(p.folder))
        client.set_tag(run_id, OUTPUTS_TAG, p.tags[OUTPUTS_TAG])
        changed = True
    if p.status in _TERMINAL:
        if status0 != p.status or (p.end_ms is not None and end0 != p.end_ms):
            client.set_terminated(run_id, p.status, end_time=p.end_ms)
            changed = True
    elif status0 != p.status:
        client.update_run(run_id, status=p.status)
        changed = True
    return (action if changed else "unchanged"), run_id
