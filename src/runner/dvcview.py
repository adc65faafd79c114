"""What DVC shows of a run: its config values as a params file, its headline KPIs as metrics.

Both files are written for every run (the run folder layout is uniform); dvc.yaml declares
the DVC stages' copies, so `dvc params diff` / `dvc exp show` name each changed value and
a trader's dozen numbers instead of one opaque override string and ~170 KPI columns.

`dvc exp show` prefixes a column with its file (`logs/d92-5/smoke/metrics.json:round_trips`)
only when two declared files hold the same name, which leaves room for ~3 columns in a
160-column terminal. So a run given `run.dvc_namespace` (dvc.yaml: the longrun's, `longrun`)
nests both files under that key (`longrun.seed`, `longrun.round_trips`) and the smoke's
names stay unique and bare (`seed`, `zone_profile.name`, `round_trips`).
"""
from __future__ import annotations

from typing import Any

from src.provenance.fingerprint import VOLATILE_CONFIG_KEYS

# kpi_summary.json key -> metrics.json key; exits and rejections are added below.
HEADLINE_KPIS = ("round_trips", "win_rate", "gross_pnl_krw", "total_pnl_krw", "total_pnl_usd", "fees_krw",
                 "slippage_krw", "max_drawdown_krw")


def _indexed(obj: Any) -> Any:
    """Lists become {index: item} so DVC (which flattens dicts only) names `zones.0.tp_bps`."""
    if isinstance(obj, dict):
        return {k: _indexed(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return {i: _indexed(v) for i, v in enumerate(obj)}
    return obj


def _nested(obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    return {namespace: obj} if namespace else obj


def params_values(resolved: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """The resolved config values that decide a result (the fingerprint's keys), lists indexed,
    under `namespace` when given."""
    return _nested(_indexed({k: v for k, v in resolved.items() if k not in VOLATILE_CONFIG_KEYS}), namespace)


def headline_metrics(kpis: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """About a dozen numbers a trader scans, under `namespace` when given; per-symbol figures and
    evidence stay in kpi_summary.json."""
    out: dict[str, Any] = {k: kpis[k] for k in HEADLINE_KPIS}
    out["exits"] = dict(kpis["exit_reasons"])
    out["rejections"] = sum(kpis["rejections"].values())
    return _nested(out, namespace)
