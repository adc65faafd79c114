"""What differs between two runs, and a one-row summary of many."""
from __future__ import annotations

import json
from typing import Any

from src.acceptance import gates
from src.compare.load import RunRecord
from src.engine.records import EXIT_REASONS
from src.provenance.outputs import INPUT_DESCRIPTIONS, differing_results

UNTRUSTED = ("edited", "damaged")  # states whose files are not what the run wrote
# shown as the status, with the reason: untrusted, or a DVC stage's committed output without a local
# record (src/compare/committed.py; a result, checked against dvc.lock)  # hook: leftover
SHOWN_STATES = (*UNTRUSTED, "committed")

KPI_FIELDS = ("round_trips", "wins", "losses", "win_rate", "total_pnl_krw", "total_pnl_usd", "fx_rate",
              "fees_krw", "slippage_krw", "max_drawdown_krw", "avg_hold_s", "entry_signals", "entries",
              "market_data_updates", "open_positions_at_end", "unrealized_pnl_krw",
              # hook: kpis -- trader KPIs (docs/kpis.md); runs recorded before them show None
              "gross_pnl_krw", "avg_win_krw", "avg_loss_krw", "profit_factor", "expectancy_krw", "sharpe_hourly",
              "sortino_hourly", "exposure_share", "turnover_usd")


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}, 'l': [x]} -> {'a.b': 1, 'l.0': x}; leaves stay as they are."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict) and obj:
        for k in obj:
            out.update(flatten(obj[k], f"{prefix}{k}."))
    elif isinstance(obj, list) and obj:
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = obj
    return out


def _changed(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    keys = sorted(set(a) | set(b))
    return [{"key": k, "a": a.get(k), "b": b.get(k)} for k in keys if a.get(k) != b.get(k)]


def _files(a: dict[str, str], b: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for path in sorted(set(a) | set(b)):
        if a.get(path) != b.get(path):
            change = "added" if path not in a else "removed" if path not in b else "modified"
            out.append({"path": path, "change": change, "a": a.get(path), "b": b.get(path)})
    return out


def acceptance_of(run: RunRecord) -> dict[str, bool] | None:
    """Gate results: as recorded, or re-evaluated from the recorded rules and KPIs."""
    if run.meta.get("acceptance"):
        return {r["id"]: r.get("passed") is True for r in run.meta["acceptance"]["results"]}
    if run.kpis is None or run.provenance is None:
        return None
    try:
        rules = run.provenance["config"]["resolved"]["stage"]["acceptance"]
        metrics = gates.build_metrics(run.kpis, run.kpi_path or "", run.kpis.get("zone_profiles_loaded"), [])
        return {r["id"]: r["passed"] for r in gates.evaluate(rules, metrics)["results"]}
    except (KeyError, TypeError, AttributeError, ValueError):  # rules a hand edit broke: no verdict
        return None


def kpi_canonical(kpis: dict[str, Any] | None) -> str:
    return json.dumps(kpis, sort_keys=True, separators=(",", ":"))


def shown_status(run: RunRecord) -> str:
    """`edited` / `damaged` over whatever the record says: such a record is not evidence;
    `committed` for a DVC stage's output that has no record here."""
    return run.state if run.state in SHOWN_STATES else run.status


def results_differ(a: RunRecord, b: RunRecord) -> list[str]:
    """What differs between two runs' results: the digests of every result file when both runs
    are verified (src/provenance/outputs.differing_results), else their KPIs (runs read from git)."""
    files = differing_results(a.outputs, b.outputs)
    if files is not None:
        return files
    return [] if kpi_canonical(a.kpis) == kpi_canonical(b.kpis) else ["kpi_summary.json"]


def _is_result(run: RunRecord) -> bool:
    """Completed and trusted: an interrupted, abandoned, edited or damaged run is not a result."""
    return run.status == "completed" and run.state not in UNTRUSTED


def compare_two(a: RunRecord, b: RunRecord) -> dict[str, Any]:
    pa, pb = a.provenance or {}, b.provenance or {}
    ka, kb = a.kpis or {}, b.kpis or {}
    same_fp = a.fingerprint is not None and a.fingerprint == b.fingerprint
    kpis_equal = kpi_canonical(a.kpis) == kpi_canonical(b.kpis)
    trusted = a.state not in UNTRUSTED and b.state not in UNTRUSTED
    differing = results_differ(a, b) if trusted else None  # an edited run's files are not its results
    deltas = []
    for f in KPI_FIELDS + tuple(f"exit_reasons.{k}" for k in EXIT_REASONS):
        va, vb = flatten(ka).get(f), flatten(kb).get(f)
        if va != vb:
            d = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
            deltas.append({"kpi": f, "a": va, "b": vb, "delta": round(d, 6) if isinstance(d, float) else d})
    acc_a, acc_b = ((acceptance_of(r) if r.state not in UNTRUSTED else None) or {} for r in (a, b))
    za, zb = pa.get("zone_profile") or {}, pb.get("zone_profile") or {}
    da, db = (pa.get("data") or {}), (pb.get("data") or {})
    return {
        "a": _side(a),
        "b": _side(b),
        "same_fingerprint": same_fp,
        "kpis_equal": kpis_equal,
        "result_files_differ": differing,
        # only between results: an interrupted or abandoned run stops short of the same inputs'
        # outputs, and an edited or damaged one is not what ran
        "nondeterminism": same_fp and bool(differing) and _is_result(a) and _is_result(b),
        "not_results": [r.label for r in (a, b) if not _is_result(r)],
        "edited": [{"run": r.label, "state": r.state, "problems": r.problems} for r in (a, b) if r.state in UNTRUSTED],
        "committed": [{"run": r.label, "problems": r.problems} for r in (a, b) if r.state == "committed"],
        "config_choices": _changed((pa.get("config") or {}).get("choices") or {}, (pb.get("config") or {}).get("choices") or {}),
        "config_values": _changed(flatten((pa.get("config") or {}).get("resolved") or {}),
                                  flatten((pb.get("config") or {}).get("resolved") or {})),
        "code_files": _files((pa.get("code") or {}).get("files") or {}, (pb.get("code") or {}).get("files") or {}),
        "config_files": _files((pa.get("config") or {}).get("files") or {}, (pb.get("config") or {}).get("files") or {}),
        "zone_profile": None if (za.get("path"), za.get("sha256")) == (zb.get("path"), zb.get("sha256")) else
        {"a": {"path": za.get("path"), "sha256": za.get("sha256")}, "b": {"path": zb.get("path"), "sha256": zb.get("sha256")}},
        "data": None if da.get("digest") == db.get("digest") else
        {"a": da.get("digest"), "b": db.get("digest"),
         "changed": _changed(flatten(da.get("identity") or {}), flatten(db.get("identity") or {}))},
        "kpi_deltas": deltas,
        "acceptance": [{"gate": g, "a": acc_a.get(g), "b": acc_b.get(g)} for g in sorted(set(acc_a) | set(acc_b))
                       if acc_a.get(g) != acc_b.get(g)],
    }


def _side(r: RunRecord) -> dict[str, Any]:
    return {"label": r.label, "source": r.source, "status": shown_status(r), "fingerprint": r.fingerprint,
            "state": r.state, "problems": r.problems}


def summary_row(run: RunRecord) -> dict[str, Any]:
    k = run.kpis or {}
    ex = k.get("exit_reasons") or {}
    choices = ((run.provenance or {}).get("config") or {}).get("choices") or {}
    acc = acceptance_of(run) if run.state not in UNTRUSTED else None
    return {
        "run": run.label,
        "status": shown_status(run),
        "problems": run.problems if run.state in SHOWN_STATES else [],
        "started_at": run.meta.get("started_at"),
        "fingerprint": run.fingerprint,
        "zone_profile": choices.get("zone_profile"),
        "universe": choices.get("universe"),
        "seed": (run.provenance or {}).get("seed"),
        "round_trips": k.get("round_trips"),
        "win_rate": k.get("win_rate"),
        "total_pnl_krw": k.get("total_pnl_krw"),
        "tp/sl/tl/sr": "/".join(str(ex.get(x, "-")) for x in EXIT_REASONS) if ex else None,
        "gates": None if acc is None else ("PASS" if all(acc.values()) else "FAIL"),
    }


def nondeterministic_groups(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """Completed, trusted runs that share a fingerprint but not their result files (by digest,
    when every run of the group is verified; else by KPIs)."""
    by_fp: dict[str, list[RunRecord]] = {}
    for r in runs:
        if r.fingerprint and r.kpis is not None and _is_result(r):
            by_fp.setdefault(r.fingerprint, []).append(r)
    out = []
    for fp, group in sorted(by_fp.items()):
        digests = all(r.outputs is not None for r in group)
        variants: dict[str, list[str]] = {}
        for r in group:
            key = (json.dumps(sorted((p, d) for p, d in r.outputs.items() if p not in INPUT_DESCRIPTIONS))
                   if digests and r.outputs is not None else kpi_canonical(r.kpis))
            variants.setdefault(key, []).append(r.label)
        if len(variants) > 1:
            out.append({"fingerprint": fp, "variants": sorted(variants.values())})
    return out
