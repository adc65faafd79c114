"""Gates are data: metric, operator, threshold. Nothing in a rule is ever evaluated as code."""
from __future__ import annotations

from src.acceptance.gates import build_metrics, derived_metrics, evaluate, table

KPI = {"exit_reasons": {"take_profit": 2, "stop_loss": 1, "time_limit": 1, "spread_reversal": 0},
       "total_pnl_krw": -10.0, "total_pnl_usd": -0.0077, "fx_rate": 1300.0}


def test_derived_metrics() -> None:
    d = derived_metrics(KPI)
    assert d == {"tp_plus_sl": 3, "exits_total": 4, "time_limit_share": 0.25}
    assert derived_metrics({"exit_reasons": {}})["time_limit_share"] == 0.0


def _metrics(kpi: dict = KPI, path: str = "logs/d92-5/r/kpi_summary.json") -> dict:
    return build_metrics(kpi, path, {"path": "p", "sha256": "x", "profiles_applied": {"BTC": "a"}}, [])


def test_operators() -> None:
    rules = [
        {"id": "ge", "metrics": ["derived.tp_plus_sl"], "op": "ge", "value": 3},
        {"id": "lt", "metrics": ["derived.time_limit_share"], "op": "lt", "value": 1.0},
        {"id": "under", "metrics": ["paths.kpi_summary"], "op": "under", "value": "logs/d92-5"},
        {"id": "present", "metrics": ["kpi.total_pnl_krw", "kpi.fx_rate"], "op": "present"},
        {"id": "true", "metrics": ["provenance.import_clean", "provenance.zone_profile_evidence"], "op": "is_true"},
    ]
    res = evaluate(rules, _metrics())
    assert res["passed"], res
    assert "acceptance: PASS" in table(res)


def test_failures_and_missing_metrics() -> None:
    rules = [
        {"id": "under", "metrics": ["paths.kpi_summary"], "op": "under", "value": "logs/d92-5"},
        {"id": "missing", "metrics": ["kpi.nope"], "op": "present"},
        {"id": "gt", "metrics": ["kpi.total_pnl_krw"], "op": "gt", "value": 0},
    ]
    res = evaluate(rules, _metrics(path="logs/d77-0/r/kpi_summary.json"))
    assert [r["passed"] for r in res["results"]] == [False, False, False]
    assert not res["passed"] and "FAIL" in table(res)
    # a sibling folder whose name merely starts with the gate's folder is not under it
    assert not evaluate(rules[:1], _metrics(path="logs/d92-5x/r/kpi_summary.json"))["passed"]


def test_rule_text_is_never_executed(tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    rules = [{"id": "evil", "metrics": [evil], "op": "ge", "value": evil}]
    res = evaluate(rules, _metrics())
    assert not res["passed"] and not marker.exists()
