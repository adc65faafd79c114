"""src/engine/records.py: the engine's named codes, the trade record's fields, and who takes them from there."""
from __future__ import annotations

import ast
import json
import shutil
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_cli, run_dir_of
from src.config.schema import Profile, Zone
from src.engine import jitcache, records
from src.engine.records import (BELOW_ZONES, DIRECTIONS, EXIT_REASONS, FLOAT_FIELDS, JSONL_KEYS, NO_EXIT, NO_KIND,
                                OUTSIDE_ZONE, REJECTION_REASONS, TIME_LIMIT_KINDS, TRADE_FIELDS, TRADE_KEYS,
                                round_half)
from src.engine.zones import find_zone

ENGINE = REPO / "src" / "engine"


def _imports(path: Path, type_checking: bool = False) -> set[str]:
    """The modules a file imports (at any depth; `if TYPE_CHECKING:` blocks only when asked)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    if not type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip |= {id(n) for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


# ----- the codes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("table, first", [(EXIT_REASONS, 0), (REJECTION_REASONS, 0), (TIME_LIMIT_KINDS, 1)])
def test_each_name_has_the_code_that_indexes_it(table: tuple, first: int) -> None:
    """EXIT_REASONS[STOP_LOSS] == "stop_loss": a constant per name, equal to its index, none shared."""
    codes = [getattr(records, name.upper()) for name in table[first:]]
    assert codes == list(range(first, len(table)))
    assert all(type(c) is int for c in codes)  # plain ints: Numba freezes module-level ints as constants


def test_other_codes_are_distinct_from_the_ones_they_sit_beside() -> None:
    assert NO_EXIT not in range(len(EXIT_REASONS)) and TIME_LIMIT_KINDS[NO_KIND] is None
    assert BELOW_ZONES < 0 and OUTSIDE_ZONE < 0 and BELOW_ZONES != OUTSIDE_ZONE  # never a zone's index
    assert DIRECTIONS == {records.SELL_KRW_BUY_USDT: "sell_krw_buy_usdt", records.BUY_KRW_SELL_USDT: "buy_krw_sell_usdt"}
    assert list(DIRECTIONS) == [1, -1]  # the sign the fills use; +1 first (kernel_run's string table)


def test_the_kernels_record_holds_every_code() -> None:
    from src.engine.kernel import TRADE_DT

    assert set(TRADE_DT.names) == set(TRADE_KEYS) - {"profile"}  # the profile follows from the symbol
    for name, codes in (("exit_reason", range(len(EXIT_REASONS))), ("time_limit_kind", range(len(TIME_LIMIT_KINDS))),
                        ("direction", DIRECTIONS)):
        info = np.iinfo(TRADE_DT[name])
        assert all(info.min <= c <= info.max for c in codes)
    assert [n for n in TRADE_DT.names if TRADE_DT[n] == np.float64] == list(FLOAT_FIELDS)


# ----- find_zone ---------------------------------------------------------------------------------

GAPPY = Profile(zones=[Zone(lo_bps=40.0, hi_bps=70.0, tp_bps=25.0, sl_bps=20.0, size_frac=0.5),
                       Zone(lo_bps=80.0, hi_bps=200.0, tp_bps=45.0, sl_bps=30.0, size_frac=1.0)],
                soft_limit_s=60.0, hard_limit_s=120.0, min_loss_bps=10.0)


@pytest.mark.parametrize("spread, want", [(-5.0, BELOW_ZONES), (39.999, BELOW_ZONES), (40.0, 0), (69.999, 0),
                                          (70.0, OUTSIDE_ZONE), (79.0, OUTSIDE_ZONE), (80.0, 1), (199.9, 1),
                                          (200.0, OUTSIDE_ZONE), (1e6, OUTSIDE_ZONE)])
def test_find_zone_answers_an_index_or_a_named_code(spread: float, want: int) -> None:
    assert find_zone(GAPPY, spread) == want


# ----- the rounding ------------------------------------------------------------------------------

def test_round_half_is_pythons_round_without_negative_zero() -> None:
    assert round_half(0.125, 2) == 0.12 and round_half(0.375, 2) == 0.38  # exact ties go to even
    assert round_half(2.675, 2) == 2.67  # 2.675 is 2.67499999... in binary
    z = round_half(-0.001, 2)
    assert z == 0.0 and np.copysign(1.0, z) == 1.0 and repr(z) == "0.0"
    assert repr(round(-0.001, 2)) == "-0.0"  # what the + 0.0 is there for


# ----- the names the rules spell -----------------------------------------------------------------

def test_the_exit_rules_return_only_names_of_the_table() -> None:
    """exits.py spells its answers out (it is the readable rule); each is a table name (or
    time_limit:<kind>), and every exit reason is one of them."""
    returned = {n.value.value for n in ast.walk(ast.parse((ENGINE / "exits.py").read_text()))
                if isinstance(n, ast.Return) and isinstance(n.value, ast.Constant) and n.value.value is not None}
    assert {r.split(":")[0] for r in returned} == set(EXIT_REASONS)
    assert {r.split(":")[1] for r in returned if ":" in r} == set(TIME_LIMIT_KINDS[1:])


def test_the_reference_rejects_only_with_names_of_the_table() -> None:
    tree = ast.parse((ENGINE / "loop.py").read_text())
    named = {n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
             and [ast.unparse(t) for t in n.targets] == ["reason"] and n.value.value is not None}
    assert named == set(REJECTION_REASONS)


@pytest.mark.parametrize("path", ["src/acceptance/gates.py", "src/runner/plotdata.py", "src/compare/diff.py",
                                  "src/engine/kpi.py", "src/engine/kernel_trades.py"])
def test_readers_take_the_exit_reasons_from_records(path: str) -> None:
    """No copy of the names (a string literal) and no import of the exit-rules module for them."""
    text = (REPO / path).read_text()
    literals = {n.value for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not literals & set(EXIT_REASONS), path
    assert not {m for m in _imports(REPO / path) if m.startswith("src.engine.exits")}, path
    assert "src.engine.records.EXIT_REASONS" in _imports(REPO / path), path


# ----- imports -----------------------------------------------------------------------------------

def test_records_imports_no_engine_module_and_the_engine_has_no_circle() -> None:
    assert not {m for m in _imports(ENGINE / "records.py", type_checking=True) if m.startswith("src.")}
    graph = {p.stem: {m.split(".")[2] for m in _imports(p) if m.startswith("src.engine.") and m.count(".") >= 2
                      and (ENGINE / f"{m.split('.')[2]}.py").exists()} - {p.stem}
             for p in ENGINE.glob("*.py")}
    assert "loop" not in graph["exits"] and "loop" not in graph["kpi"]
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import circle: {' -> '.join((*path, node))}"
        if node not in done:
            for nxt in sorted(graph[node]):
                visit(nxt, (*path, node))
            done.add(node)

    for node in sorted(graph):
        visit(node, ())


def test_the_kernels_cache_key_covers_every_file_it_compiles_from(tmp_path: Path) -> None:
    """The kernel freezes records.py's codes into its machine code: editing them must change the key."""
    kernel_files = ("kernel.py", "kernel_json.py", "records.py")
    sources = {p.resolve() for p in jitcache.KERNEL_SOURCES}
    for name in kernel_files:
        assert (ENGINE / name).resolve() in sources, name
        for m in _imports(ENGINE / name):  # whatever else of src they import is a kernel source too
            if m.startswith("src.") and m != "src.engine.jitcache" and (REPO / f"{m.replace('.', '/')}.py").exists():
                assert (REPO / f"{m.replace('.', '/')}.py").resolve() in sources, (name, m)
    copies = []
    for p in jitcache.KERNEL_SOURCES:
        dest = tmp_path / p.relative_to(REPO)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest)
        copies.append(dest)
    before = jitcache.compute_key(tuple(copies), tmp_path)
    rec = tmp_path / "src/engine/records.py"
    rec.write_text(rec.read_text().replace("NO_EXIT = -1", "NO_EXIT = -9"))
    assert jitcache.compute_key(tuple(copies), tmp_path)["key"] != before["key"]


# ----- the trade record --------------------------------------------------------------------------

def test_trade_fields_are_the_24_keys_and_trades_jsonl_writes_them(repo: Path) -> None:
    """The smoke's trades.jsonl: each line's keys are JSONL_KEYS in that order, every name one of
    the tables', every float rounded to the places the table says."""
    assert len(TRADE_KEYS) == len(set(TRADE_KEYS)) == 24 and JSONL_KEYS == tuple(sorted(TRADE_KEYS))
    proc = run_cli(repo, "stage=d92-5", "engine=reference", "run.id=rec")
    assert proc.returncode == 0, proc.stderr
    lines = (run_dir_of(proc, repo) / "trades.jsonl").read_text().splitlines()
    assert len(lines) > 20
    for line in lines:
        pairs = json.loads(line, object_pairs_hook=list)
        assert tuple(k for k, _ in pairs) == JSONL_KEYS
        t = dict(pairs)
        assert t["exit_reason"] in EXIT_REASONS and t["time_limit_kind"] in TIME_LIMIT_KINDS
        assert t["direction"] in DIRECTIONS.values()
        for f in TRADE_FIELDS:
            if f.places is not None:
                assert round(t[f.name], f.places) == t[f.name], (f.name, t[f.name])


def test_both_engines_build_their_trades_in_the_records_order() -> None:
    from src.config.loader import load_config
    from src.engine.kernel_run import run_session_kernel
    from src.engine.loop import EngineParams, run_session
    from src.market.synthetic import SyntheticMarket

    cfg = load_config(["stage=d92-5"], REPO).cfg
    params = EngineParams.from_config(cfg)
    out = []
    for run in (run_session, run_session_kernel):
        market = SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s)
        seen: list[dict] = []
        run(market, params, seen.append)
        assert seen and all(tuple(t) == TRADE_KEYS for t in seen)
        out.append(seen)
    assert out[0] == out[1]


def test_the_kernels_string_table_prints_every_code_by_its_name() -> None:
    """Every direction x exit reason x time-limit kind, written by the compiled printer: the names
    the tables give (the same bytes json.dumps writes for the dicts)."""
    from src.config.loader import load_config
    from src.engine.kernel import TRADE_DT
    from src.engine.kernel_trades import KernelTrades
    from src.engine.loop import EngineParams

    cfg = load_config([], REPO).cfg
    combos = list(product(DIRECTIONS, range(len(EXIT_REASONS)), range(len(TIME_LIMIT_KINDS))))
    rec = np.zeros(len(combos), dtype=TRADE_DT)
    rec["direction"], rec["exit_reason"], rec["time_limit_kind"] = np.array(combos).T
    rec["symbol"] = np.arange(len(combos)) % 2
    for f in FLOAT_FIELDS:
        rec[f] = 1.5
    trades = KernelTrades(rec, tuple(s.symbol for s in cfg.universe_specs), EngineParams.from_config(cfg))
    lines = bytes(trades.jsonl()).decode().splitlines()
    assert lines == [json.dumps(t, sort_keys=True, ensure_ascii=False) for t in trades.dicts()]
    got = [(t["direction"], t["exit_reason"], t["time_limit_kind"]) for t in map(json.loads, lines)]
    assert got == [(DIRECTIONS[d], EXIT_REASONS[r], TIME_LIMIT_KINDS[k]) for d, r, k in combos]
