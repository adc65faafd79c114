"""src/compare/diff.py and render.py by hand: what differs between two runs, and how it is shown."""
from __future__ import annotations

import copy
from typing import Any

from src.compare.diff import compare_two, flatten, nondeterministic_groups, summary_row
from src.compare.load import RunRecord
from src.compare.render import grid

OUTPUTS = {"trades.jsonl": "t1", "kpi_summary.json": "k1", "plots/spread.csv": "p1",
           "config.yaml": "c1", "params.yaml": "y1", "provenance.json": "v1", "metrics.json": "m1"}
PROV = {"fingerprint": "fp", "seed": 42,
        "config": {"choices": {"zone_profile": "default", "universe": "top10"},
                   "resolved": {"seed": 42, "costs": {"fees": [10.0, 5.0]}},
                   "files": {"conf/config.yaml": "c"}},
        "code": {"files": {"src/a.py": "a", "src/b.py": "b"}},
        "zone_profile": {"path": "conf/zone_profile/default.yaml", "sha256": "z"},
        "data": {"digest": "d", "identity": {"generator": "synthetic-v2", "seed": 42}}}
KPIS = {"round_trips": 58, "win_rate": 0.51724, "total_pnl_krw": -178206.83,
        "exit_reasons": {"take_profit": 29, "stop_loss": 25, "time_limit": 3, "spread_reversal": 1}}
ACCEPT = {"results": [{"id": "AC-1", "passed": True}, {"id": "AC-2", "passed": True}]}


def run(label: str, *, outputs: dict[str, str] | None = None, state: str = "intact", status: str = "completed",
        kpis: dict[str, Any] | None = None, prov: dict[str, Any] | None = None,
        acceptance: dict[str, Any] | None = None) -> RunRecord:
    meta = {"outputs": {"sha256": dict(OUTPUTS if outputs is None else outputs)},
            "acceptance": copy.deepcopy(ACCEPT if acceptance is None else acceptance), "started_at": "t0"}
    return RunRecord(label=label, source="folder", status=status, kpis=copy.deepcopy(KPIS if kpis is None else kpis),
                     provenance=copy.deepcopy(PROV if prov is None else prov), meta=meta, state=state,
                     problems=["trades.jsonl: changed"] if state == "edited" else [])


def test_flatten_joins_keys_and_list_indexes_with_dots() -> None:
    assert flatten({"a": {"b": 1, "c": [{"d": 2}, 3]}, "e": {}, "f": []}) == \
        {"a.b": 1, "a.c.0.d": 2, "a.c.1": 3, "e": {}, "f": []}


def test_same_inputs_same_results_is_a_clean_pair() -> None:
    r = compare_two(run("a"), run("b"))
    assert r["same_fingerprint"] and r["kpis_equal"] and not r["nondeterminism"]
    assert r["result_files_differ"] == []
    for key in ("config_choices", "config_values", "code_files", "config_files", "kpi_deltas", "acceptance"):
        assert r[key] == [], key
    assert r["zone_profile"] is None and r["data"] is None and r["edited"] == [] and r["not_results"] == []


def test_same_fingerprint_other_result_file_is_nondeterminism() -> None:
    r = compare_two(run("a"), run("b", outputs={**OUTPUTS, "trades.jsonl": "t2"}))
    assert r["result_files_differ"] == ["trades.jsonl"] and r["nondeterminism"]


def test_input_descriptions_do_not_count_as_results() -> None:
    other = {**OUTPUTS, "config.yaml": "c2", "params.yaml": "y2", "provenance.json": "v2", "metrics.json": "m2"}
    r = compare_two(run("a"), run("b", outputs=other))
    assert r["result_files_differ"] == [] and not r["nondeterminism"]


def test_an_interrupted_or_edited_run_is_not_a_result() -> None:
    r = compare_two(run("a"), run("b", status="interrupted", outputs={**OUTPUTS, "trades.jsonl": "t2"}))
    assert not r["nondeterminism"] and r["not_results"] == ["b"]
    r = compare_two(run("a"), run("b", state="edited"))
    assert r["result_files_differ"] is None and not r["nondeterminism"]
    assert r["edited"] == [{"run": "b", "state": "edited", "problems": ["trades.jsonl: changed"]}]
    assert r["b"]["status"] == "edited"  # shown over the recorded `completed`


def test_inputs_that_differ_are_listed_by_key_and_path() -> None:
    pb = copy.deepcopy(PROV)
    pb["fingerprint"] = "fp2"
    pb["config"]["choices"]["zone_profile"] = "wide"
    pb["config"]["resolved"]["costs"]["fees"][1] = 7.5
    pb["code"]["files"] = {"src/a.py": "a2", "src/c.py": "c"}
    pb["zone_profile"] = {"path": "conf/zone_profile/wide.yaml", "sha256": "w"}
    pb["data"] = {"digest": "d2", "identity": {"generator": "synthetic-v2", "seed": 7}}
    r = compare_two(run("a"), run("b", prov=pb))
    assert not r["same_fingerprint"] and not r["nondeterminism"]
    assert r["config_choices"] == [{"key": "zone_profile", "a": "default", "b": "wide"}]
    assert r["config_values"] == [{"key": "costs.fees.1", "a": 5.0, "b": 7.5}]
    assert r["code_files"] == [{"path": "src/a.py", "change": "modified", "a": "a", "b": "a2"},
                               {"path": "src/b.py", "change": "removed", "a": "b", "b": None},
                               {"path": "src/c.py", "change": "added", "a": None, "b": "c"}]
    assert r["zone_profile"] == {"a": {"path": "conf/zone_profile/default.yaml", "sha256": "z"},
                                 "b": {"path": "conf/zone_profile/wide.yaml", "sha256": "w"}}
    assert r["data"] == {"a": "d", "b": "d2", "changed": [{"key": "seed", "a": 42, "b": 7}]}


def test_kpi_deltas_are_b_minus_a_rounded_and_gates_that_changed() -> None:
    kb = copy.deepcopy(KPIS)
    kb.update(round_trips=40, win_rate=0.525, total_pnl_krw=-142833.29)
    kb["exit_reasons"]["take_profit"] = 18
    acc = {"results": [{"id": "AC-1", "passed": True}, {"id": "AC-2", "passed": False}]}
    r = compare_two(run("a"), run("b", kpis=kb, acceptance=acc))
    assert r["kpi_deltas"] == [
        {"kpi": "round_trips", "a": 58, "b": 40, "delta": -18},
        {"kpi": "win_rate", "a": 0.51724, "b": 0.525, "delta": 0.00776},
        {"kpi": "total_pnl_krw", "a": -178206.83, "b": -142833.29, "delta": 35373.54},
        {"kpi": "exit_reasons.take_profit", "a": 29, "b": 18, "delta": -11},
    ]
    assert r["acceptance"] == [{"gate": "AC-2", "a": True, "b": False}]


def test_summary_row_of_a_run() -> None:
    assert summary_row(run("a")) == {
        "run": "a", "status": "completed", "problems": [], "started_at": "t0", "fingerprint": "fp",
        "zone_profile": "default", "universe": "top10", "seed": 42, "round_trips": 58, "win_rate": 0.51724,
        "total_pnl_krw": -178206.83, "tp/sl/tl/sr": "29/25/3/1", "gates": "PASS"}
    failed = summary_row(run("b", acceptance={"results": [{"id": "AC-1", "passed": False}]}))
    assert failed["gates"] == "FAIL"
    assert summary_row(run("c", state="edited"))["gates"] is None


def test_nondeterministic_groups_by_fingerprint() -> None:
    a, b = run("a"), run("b", outputs={**OUTPUTS, "kpi_summary.json": "k2"})
    same = run("c")
    other_fp = run("d", prov={**PROV, "fingerprint": "fp9"}, outputs={**OUTPUTS, "trades.jsonl": "t9"})
    assert nondeterministic_groups([a, same, other_fp]) == []
    assert nondeterministic_groups([a, b, same, other_fp]) == [{"fingerprint": "fp", "variants": [["a", "c"], ["b"]]}]
    assert nondeterministic_groups([a, run("e", state="edited", outputs={**OUTPUTS, "trades.jsonl": "x"})]) == []


def test_grid_as_text_and_markdown() -> None:
    rows = [["a", 0.123456789, None], ["b|c", 58, "x"]]
    assert grid(["run", "win_rate", "gates"], rows, markdown=False) == (
        "run  win_rate  gates\n"
        "---  --------  -----\n"
        "a    0.123457  -\n"
        "b|c  58        x")
    assert grid(["run", "win_rate", "gates"], rows, markdown=True) == (
        "| run | win_rate | gates |\n"
        "|---|---|---|\n"
        "| a | 0.123457 | - |\n"
        "| b\\|c | 58 | x |")
