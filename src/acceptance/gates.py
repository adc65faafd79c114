"""Evaluate acceptance rules against a run's metrics and print them as a table."""
from __future__ import annotations

import operator
from pathlib import PurePosixPath
from typing import Any

from src.engine.records import EXIT_REASONS, STOP_LOSS, TAKE_PROFIT, TIME_LIMIT

_MISSING = object()
_NUMERIC = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt, "eq": operator.eq,
            "ne": operator.ne}


def _compare(op: str, actual: Any, value: Any) -> bool:
    if op == "present":
        return actual is not None
    if op == "is_true":
        return actual is True
    if op == "under":  # lexically: a path with ".." in it (logs/d92-5/../x) names somewhere else
        parent, path = PurePosixPath(str(value)), PurePosixPath(str(actual))
        return isinstance(actual, str) and ".." not in path.parts and parent in path.parents
    if not isinstance(actual, (int, float)) or isinstance(actual, bool):
        return False
    # Rules are data: an unknown op or a threshold that is not a number (a hand-edited record
    # re-checked by `python -m src.acceptance`) fails the rule; nothing is looked up or run.
    if op not in _NUMERIC or not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return _NUMERIC[op](actual, value)


def derived_metrics(kpi: dict[str, Any]) -> dict[str, Any]:
    """Metrics computed from KPIs that the seed's gates ask for."""
    exits = kpi.get("exit_reasons") or {}
    total = sum(exits.get(k, 0) for k in EXIT_REASONS)
    return {
        "tp_plus_sl": exits.get(EXIT_REASONS[TAKE_PROFIT], 0) + exits.get(EXIT_REASONS[STOP_LOSS], 0),
        "exits_total": total,
        "time_limit_share": (exits.get(EXIT_REASONS[TIME_LIMIT], 0) / total) if total else 0.0,
    }


def build_metrics(kpi: dict[str, Any], kpi_path: str, zone_evidence: dict[str, Any] | None,
                  import_violations: list[str] | None) -> dict[str, Any]:
    """The namespaces rules may name: kpi.*, derived.*, paths.*, provenance.*."""
    ze = zone_evidence or {}
    return {
        "kpi": kpi,
        "derived": derived_metrics(kpi),
        "paths": {"kpi_summary": kpi_path},
        "provenance": {
            "zone_profile_evidence": bool(ze.get("path") and ze.get("sha256") and ze.get("profiles_applied")),
            "import_clean": import_violations == [],
        },
    }


def lookup(metrics: dict[str, Any], dotted: str) -> Any:
    cur: Any = metrics
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def evaluate(rules: list[dict[str, Any]], metrics: dict[str, Any]) -> dict[str, Any]:
    """{passed: bool, results: [{id, description, op, value, actual, passed}]}."""
    results = []
    for rule in rules:
        actuals = {}
        ok = True
        for m in rule["metrics"]:
            actual = lookup(metrics, m)
            actuals[m] = None if actual is _MISSING else actual
            ok = ok and actual is not _MISSING and _compare(rule["op"], actual, rule.get("value"))
        results.append({"id": rule["id"], "description": rule.get("description", ""), "op": rule["op"],
                        "value": rule.get("value"), "actual": actuals, "passed": ok})
    return {"passed": all(r["passed"] for r in results), "results": results}


def table(acceptance: dict[str, Any]) -> str:
    """A plain-text table of gate results, one row per rule."""
    rows = [("gate", "result", "actual", "rule")]
    for r in acceptance["results"]:
        actual = ", ".join(f"{k}={_fmt(v)}" for k, v in r["actual"].items())
        rule = f"{r['op']} {r['value']}" if r["value"] is not None else r["op"]
        rows.append((r["id"], "PASS" if r["passed"] else "FAIL", actual, f"{rule}  ({r['description']})"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3] for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"acceptance: {'PASS' if acceptance['passed'] else 'FAIL'}")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
