"""Gate rules at the edges tests/mutate_oracle.py's added mutations reached (src/acceptance).

Operators take exactly the types they are for (a boolean is not a number, a number is not True),
an unknown operator fails its rule, every metric of a rule counts, the provenance facts need
all their parts; and `python -m src.acceptance` (in process, on hand-made sealed run folders)
accepts only an intact completed run and exits with the worst code of several folders.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from src.acceptance.__main__ import main as recheck_main
from src.acceptance.gates import build_metrics, evaluate
from src.provenance.outputs import output_digests, sealed_text

KPI = {"n": 1, "zero": 0, "flag": True, "exit_reasons": {"take_profit": 1, "stop_loss": 0, "time_limit": 1,
                                                          "spread_reversal": 0}}
EVIDENCE = {"path": "conf/zone_profile/default.yaml", "sha256": "x", "profiles_applied": {"BTC": "a"}}


def passed(op: str, metrics: list[str], value: Any = None, *, evidence: Any = EVIDENCE,
           violations: Any = ()) -> bool:
    m = build_metrics(KPI, "logs/s/r/kpi_summary.json", evidence, [] if violations == () else violations)
    return evaluate([{"id": "R", "metrics": metrics, "op": op, "value": value}], m)["passed"]


@pytest.mark.parametrize("metric,ok", [("kpi.flag", True), ("kpi.n", False), ("kpi.zero", False)])
def test_is_true_means_the_boolean_true(metric: str, ok: bool) -> None:
    assert passed("is_true", [metric]) is ok


@pytest.mark.parametrize("metric,op,value,ok", [
    ("kpi.n", "ge", 1, True),
    ("kpi.flag", "ge", 1, False),  # True >= 1 in Python, but a boolean is not a count
    ("kpi.flag", "eq", 1, False),
    ("kpi.n", "eq", True, False),  # nor is a boolean threshold a number
    ("kpi.n", "le", True, False),
    ("kpi.n", "approx", 1, False),  # an unknown operator fails its rule
    ("kpi.n", "GE", 1, False),
])
def test_numeric_operators_take_numbers_only(metric: str, op: str, value: Any, ok: bool) -> None:
    assert passed(op, [metric], value) is ok


@pytest.mark.parametrize("metrics,ok", [
    (["kpi.n", "kpi.zero"], True),
    (["kpi.nope", "kpi.n"], False),  # every metric of a rule must hold, not only the last one
    (["kpi.n", "kpi.nope"], False),
])
def test_a_rule_of_several_metrics_needs_every_one(metrics: list[str], ok: bool) -> None:
    assert passed("present", metrics) is ok


@pytest.mark.parametrize("evidence,ok", [
    (EVIDENCE, True),
    ({k: v for k, v in EVIDENCE.items() if k != "sha256"}, False),
    ({k: v for k, v in EVIDENCE.items() if k != "profiles_applied"}, False),
    (dict(EVIDENCE, profiles_applied={}), False),
    ({k: v for k, v in EVIDENCE.items() if k != "path"}, False),
    (None, False),
])
def test_zone_profile_evidence_needs_path_digest_and_applied_profiles(evidence: Any, ok: bool) -> None:
    assert passed("is_true", ["provenance.zone_profile_evidence"], evidence=evidence) is ok


@pytest.mark.parametrize("violations,ok", [([], True), (["numpy.random"], False), (None, False)])
def test_import_clean_needs_a_recorded_clean_check(violations: Any, ok: bool) -> None:
    """None: the record holds no hardlock check at all, which is not evidence of a clean run."""
    assert passed("is_true", ["provenance.import_clean"], violations=violations) is ok


# -- python -m src.acceptance on hand-made run folders ------------------------------------------

RULES = [{"id": "AC-1", "description": "tp + sl >= 1", "metrics": ["derived.tp_plus_sl"], "op": "ge", "value": 1}]


def make_run(root: Path, run_id: str, *, digests: bool = True, status: str = "completed") -> Path:
    """A run folder as the runner leaves it: kpi_summary.json, then the sealed record naming its digest."""
    run = root / "logs" / "s" / run_id
    run.mkdir(parents=True)
    (run / "kpi_summary.json").write_text(json.dumps(KPI, sort_keys=True) + "\n")
    meta: dict[str, Any] = {"status": status, "config": {"resolved": {"stage": {"acceptance": RULES}}},
                            "guard": {"hardlock_final": {"violations": []}}}
    if digests:
        meta["outputs"] = {"sha256": output_digests(run)}
    (run / "runtime_meta.json").write_text(sealed_text(meta))
    return run


def test_an_intact_completed_run_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert recheck_main([str(make_run(tmp_path, "ok"))]) == 0
    assert "acceptance: PASS" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs", [{"digests": False}, {"status": "interrupted"}])
def test_a_run_not_verified_or_not_completed_is_not_accepted(tmp_path: Path, kwargs: dict) -> None:
    """Its gates pass, but an unverified folder (no output digests) or an interrupted run is not a result."""
    assert recheck_main([str(make_run(tmp_path, "r", **kwargs))]) == 1


def test_the_worst_exit_code_of_several_runs_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = make_run(tmp_path, "good")
    edited = make_run(tmp_path, "edited")
    (edited / "runtime_meta.json").unlink()  # kept its results, lost its record: edited (5)
    missing = tmp_path / "logs" / "s" / "missing"  # not a run folder: usage (2)
    assert recheck_main([str(edited), str(missing), str(good)]) == 5
    assert recheck_main([str(missing), str(good)]) == 2
    assert recheck_main([str(good), str(missing)]) == 2
    capsys.readouterr()
