"""What "differs" and "intact" mean, at the edges tests/mutate_oracle.py's added mutations reached.

src/compare/diff.py (same fingerprint, results, input descriptions, runs read from git),
src/compare/firstdiff.py (1-based lines) and src/provenance/outputs.py (which files a record
digests, the labels of a digest diff, the seal, the fingerprint cross-check), all by hand.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from src.compare.diff import compare_two, nondeterministic_groups, results_differ
from src.compare.firstdiff import first_difference
from src.compare.load import RunRecord
from src.provenance.digests import sha256_and_size
from src.provenance.outputs import diff_digests, output_digests, sealed_text, verify_run

OUTPUTS = {"trades.jsonl": "t1", "kpi_summary.json": "k1", "config.yaml": "c1", "params.yaml": "y1",
           "provenance.json": "v1", "metrics.json": "m1"}
KPIS = {"round_trips": 3, "total_pnl_krw": 1.5}


def run(label: str, *, fp: str | None = "fp", outputs: dict[str, str] | None = None, state: str | None = "intact",
        status: str = "completed", kpis: dict[str, Any] | None = None) -> RunRecord:
    meta = {"outputs": {"sha256": dict(OUTPUTS if outputs is None else outputs)}}
    return RunRecord(label=label, source="folder", status=status, kpis=copy.deepcopy(KPIS if kpis is None else kpis),
                     provenance={"fingerprint": fp}, meta=meta, state=state)


def test_two_runs_without_a_fingerprint_do_not_share_one() -> None:
    r = compare_two(run("a", fp=None), run("b", fp=None, outputs={**OUTPUTS, "trades.jsonl": "t2"}))
    assert (r["same_fingerprint"], r["result_files_differ"], r["nondeterminism"]) == (False, ["trades.jsonl"], False)


def test_an_edited_completed_run_is_not_a_result() -> None:
    r = compare_two(run("a"), run("b", state="edited"))
    assert r["not_results"] == ["b"] and not r["nondeterminism"]


def test_other_input_descriptions_with_the_same_results_are_no_variant() -> None:
    """Runs of one fingerprint whose config.yaml, params.yaml, provenance.json, metrics.json differ
    (another run id) but whose results match are one variant."""
    other = {**OUTPUTS, "config.yaml": "c2", "params.yaml": "y2", "provenance.json": "v2", "metrics.json": "m2"}
    assert nondeterministic_groups([run("a"), run("b", outputs=other)]) == []
    assert nondeterministic_groups([run("a"), run("b", outputs={**other, "trades.jsonl": "t2"})]) == [
        {"fingerprint": "fp", "variants": [["a"], ["b"]]}]


def test_runs_read_from_git_differ_by_their_kpis() -> None:
    """No recorded digests (state None: a revision read from git): the KPIs decide."""
    a, b = run("a", state=None), run("b", state=None, kpis={**KPIS, "round_trips": 4})
    assert results_differ(a, run("c", state=None)) == []
    assert results_differ(a, b) == ["kpi_summary.json"]
    assert compare_two(a, b)["nondeterminism"] is True


def test_the_first_difference_is_on_a_1_based_line() -> None:
    a = b'{"pnl": 1, "qty": 2}\n{"pnl": 3, "qty": 4}\n'
    b = b'{"pnl": 1, "qty": 2}\n{"pnl": 3, "qty": 5}\n'
    assert first_difference("trades.jsonl", a, b) == {"file": "trades.jsonl", "line": 2, "field": "qty", "a": 4, "b": 5}
    assert first_difference("x.txt", b"same\nx\n", b"other\n")["line"] == 1


def test_digest_diff_names_deleted_added_and_changed() -> None:
    assert diff_digests({"x": "1", "y": "2"}, {"y": "3", "z": "4"}) == [("x", "deleted"), ("y", "changed"),
                                                                       ("z", "added")]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_output_is_digested_but_the_record_the_log_and_temp_files(tmp_path: Path) -> None:
    files = {"kpi_summary.json": b"{}\n", ".hidden": b"h", "notes.tmp": b"n", "plots/a.csv": b"a,b\n",
             "runtime_meta.json": b"{}", "run.log": b"log", ".kpi_summary.json.x1y2.tmp": b"partial"}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    os.symlink("kpi_summary.json", tmp_path / "link.json")
    assert output_digests(tmp_path) == {
        ".hidden": _sha(b"h"),  # a hidden file is an output like any other: only `.<name>.<random>.tmp` is not
        "kpi_summary.json": _sha(b"{}\n"),
        "link.json": "symlink:kpi_summary.json",  # a link is never digested as its target
        "notes.tmp": _sha(b"n"),
        "plots/a.csv": _sha(b"a,b\n"),
    }


def _sealed_run(folder: Path, fingerprint: str = "fp1", prov_fingerprint: str = "fp1") -> dict[str, Any]:
    folder.mkdir()
    (folder / "kpi_summary.json").write_text("{}\n")
    (folder / "provenance.json").write_text(json.dumps({"fingerprint": prov_fingerprint}) + "\n")
    meta = {"status": "completed", "fingerprint": fingerprint, "outputs": {"sha256": output_digests(folder)}}
    (folder / "runtime_meta.json").write_text(sealed_text(meta))
    return meta


def test_a_sealed_record_matching_its_files_is_intact_and_an_edit_to_it_is_not(tmp_path: Path) -> None:
    _sealed_run(tmp_path / "r")
    assert verify_run(tmp_path / "r").state == "intact"
    record = tmp_path / "r" / "runtime_meta.json"
    record.write_text(record.read_text().replace('"completed"', '"completeD"'))
    v = verify_run(tmp_path / "r")
    assert (v.state, v.problems) == ("edited", ["runtime_meta.json: its content does not match its seal"])


@pytest.mark.parametrize("prov_fp,state", [("fp1", "intact"), ("fp2", "edited")])
def test_the_record_and_provenance_json_name_the_same_fingerprint(tmp_path: Path, prov_fp: str, state: str) -> None:
    """Even with a seal recomputed and digests that match, a record whose fingerprint is not
    provenance.json's is edited."""
    _sealed_run(tmp_path / "r", prov_fingerprint=prov_fp)
    v = verify_run(tmp_path / "r")
    assert v.state == state
    if state == "edited":
        assert v.problems == ["runtime_meta.json: its fingerprint is not the one in provenance.json"]


def test_a_file_larger_than_one_read_block_is_digested_whole(tmp_path: Path) -> None:
    """Files are read in 1 MiB blocks: the digest and size cover the bytes past the first block."""
    data = b"\x00" * (1 << 20) + b"abc"
    (tmp_path / "big.bin").write_bytes(data)
    assert sha256_and_size(tmp_path / "big.bin") == (hashlib.sha256(data).hexdigest(), 1048579)
