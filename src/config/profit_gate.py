"""The optional profitability gate: `stage.profit_gate_krw=X` adds rule PNL-1, total_pnl_krw > X.

Off (null) in every preset. When set, the rule is added to the stage's acceptance list of
both the typed and the resolved config, so the run's record holds it like any declared
rule and `python -m src.acceptance` / `python -m src.compare` re-check it from the record.
"""
from __future__ import annotations

from typing import Any

from src.config.schema import AcceptanceRule, Op, RootConfig

RULE_ID = "PNL-1"


def profit_rule(value: float) -> dict[str, Any]:
    """Rule PNL-1 as data: total_pnl_krw strictly above `value` KRW."""
    return {"id": RULE_ID, "description": f"total_pnl_krw > {value!r} KRW (profitability gate, stage.profit_gate_krw)",
            "metrics": ["kpi.total_pnl_krw"], "op": Op.gt.value, "value": value}


def add_profit_gate(typed: RootConfig, resolved: dict[str, Any]) -> None:
    """Append PNL-1 to the stage's rules when stage.profit_gate_krw is set (validate() checked it)."""
    value = typed.stage.profit_gate_krw
    if value is None:
        return
    rule = profit_rule(value)
    resolved["stage"]["acceptance"].append(rule)
    typed.stage.acceptance.append(AcceptanceRule(rule["id"], rule["description"], list(rule["metrics"]), Op.gt, value))
