"""The filter and sort rules of `python -m src.runs list --where/--sort` and `load_runs(where=...)`."""
from __future__ import annotations

import pytest

from src.catalog.query import Cond, Key, holds, select


def _c(op: str, raw: str, value: object) -> Cond:
    return Cond(Key("k", "config", "k"), op, raw, value)


@pytest.mark.parametrize("v, op, raw, value, want", [
    (7, "=", "7", 7, True), (7.0, "=", "7", 7, True), (7, "=", "8", 8, False), (7, "!=", "8", 8, True),
    (7, "!=", "7", 7, False), ("default", "=", "default", "default", True), ("wide", "=", "default", "default", False),
    (0.5, ">", "0.5", 0.5, False), (0.51, ">", "0.5", 0.5, True), (0.5, ">=", "0.5", 0.5, True),
    (0.49, "<", "0.5", 0.5, True), (0.5, "<", "0.5", 0.5, False), (0.5, "<=", "0.5", 0.5, True),
    (None, ">", "0", 0, False), (None, "<", "0", 0, False), (None, "=", "null", None, True), (0, "=", "null", None, False),
    ("b", ">", "a", "a", True), ("7", ">", "5", 5, False),  # a text is never ordered against a number
    (True, "=", "true", True, True), (1, "=", "true", True, False), (False, "=", "true", True, False),
    (["best", "keep"], "=", "best", "best", True), (["keep"], "=", "best", "best", False),
    (["fees eat it"], "~", "fees", "fees", True), (["x"], "~", "fees", "fees", False), ("top100", "~", "10", 10, True),
    (["best"], "!=", "best", "best", False),
])
def test_holds(v: object, op: str, raw: str, value: object, want: bool) -> None:
    assert holds(v, _c(op, raw, value)) is want


def test_select_filters_then_sorts_with_missing_values_last_both_ways() -> None:
    k = Key("k", "config", "k")
    rows = [{"k": 2, "n": "a"}, {"k": None, "n": "b"}, {"k": 10, "n": "c"}, {"k": 1, "n": "d"}, {"k": 5, "n": "e"}]
    up = select(rows, [], [(k, False)])
    assert [r["n"] for r in up] == ["d", "a", "e", "c", "b"]
    down = select(rows, [], [(k, True)])
    assert [r["n"] for r in down] == ["c", "e", "a", "d", "b"]
    kept = select(rows, [_c(">", "1", 1), _c("<", "10", 10)], [(k, True)])
    assert [r["n"] for r in kept] == ["e", "a"]
    n = Key("n", "column", "n")
    tie = [{"k": 1, "n": "b"}, {"k": 0, "n": "a"}, {"k": 1, "n": "a"}]
    assert [(r["k"], r["n"]) for r in select(tie, [], [(k, True), (n, False)])] == [(1, "a"), (1, "b"), (0, "a")]
