"""Replay market: the tick schema round trip, validation of bad files, NaN quotes in the engine."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO, load_json, run_cli, run_dir_of
from src.config.loader import load_config
from src.config.schema import ReplayMarketConfig
from src.engine.kernel_run import run_session_kernel
from src.engine.loop import EngineParams, run_session, valid_quotes
from src.market import replay as replay_mod
from src.market.export import export
from src.market.registry import build_market
from src.market.replay import ReplayError, ReplayMarket
from src.market.tape import MarketChunk

FIELDS = ("t_s", "fx", "usdt_bid", "usdt_ask", "krw_bid", "krw_ask", "usdt_size", "krw_size")
STAGE = ("stage=d92-5", "universe.top_n=3", "stage.duration_s=120")


def _cfg(*overrides: str):  # noqa: ANN202
    """STAGE with `overrides` on top (a key given twice is refused, so theirs replaces STAGE's)."""
    keys = {o.split("=", 1)[0] for o in overrides}
    return load_config([*(s for s in STAGE if s.split("=", 1)[0] not in keys), *overrides], REPO).cfg


def _synthetic(cfg):  # noqa: ANN001, ANN202
    n = int(cfg.stage.duration_s / cfg.stage.tick_s)
    return build_market(cfg.market, cfg.symbols.ranked[: cfg.universe.top_n], cfg.seed, n, cfg.stage.tick_s, REPO)


def _replay(cfg, path: Path, **spec) -> ReplayMarket:  # noqa: ANN001
    n = int(cfg.stage.duration_s / cfg.stage.tick_s)
    return ReplayMarket(ReplayMarketConfig(path=str(path), **spec), cfg.symbols.ranked[: cfg.universe.top_n], n,
                        cfg.stage.tick_s, REPO)


def _concat(market, chunk_ticks: int = 3600) -> dict[str, np.ndarray]:  # noqa: ANN001
    chunks = list(market.chunks(chunk_ticks))
    return {f: np.concatenate([getattr(c, f) for c in chunks]) for f in FIELDS}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = _cfg()
    path = tmp_path_factory.mktemp("ticks") / "synthetic.parquet"
    export(_synthetic(cfg), path, cfg.stage.tick_s, {"usdt": "synthetic:binance", "krw": "synthetic:upbit"})
    return path


def test_replay_gives_the_exported_ticks_exactly(exported: Path) -> None:
    cfg = _cfg()
    a, b = _concat(_synthetic(cfg)), _concat(_replay(cfg, exported), 7)
    for f in FIELDS:
        assert np.array_equal(a[f], b[f]), f
    market = _replay(cfg, exported)
    assert market.book == _synthetic(cfg).book  # from the file's metadata
    ident = market.identity()
    assert ident["sha256"] == hashlib.sha256(exported.read_bytes()).hexdigest()
    assert ident["kind"] == "replay" and ident["ticks_in_file"] == 120 and ident["source"]["kind"] == "synthetic"
    assert market.faults() is None


def test_schema_is_the_documented_one(exported: Path) -> None:
    pf = pq.ParquetFile(exported)
    assert pf.schema_arrow.names == ["t_s", "ts_ms", "symbol", "venue", "bid", "ask", "bid_size", "ask_size", "fx"]
    meta = json.loads(pf.metadata.metadata[b"paper_runs.ticks"])
    assert meta["format"] == "ticks-v1" and meta["tick_s"] == 1.0 and meta["symbols"] == ["BTC", "ETH", "XRP"]
    assert meta["book"] == {"levels": 5, "step_bps": 2.0, "growth": 1.5}


def test_row_order_within_a_tick_plain_strings_and_batch_edges_do_not_matter(
        exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg()
    t = pq.read_table(exported)
    rng = np.random.default_rng(0)
    order = np.concatenate([6 * i + rng.permutation(6) for i in range(t.num_rows // 6)])
    shuffled = t.take(pa.array(order))
    shuffled = shuffled.set_column(2, "symbol", shuffled.column("symbol").cast(pa.string()))
    shuffled = shuffled.set_column(3, "venue", shuffled.column("venue").cast(pa.string()))
    path = tmp_path / "shuffled.parquet"
    pq.write_table(shuffled.replace_schema_metadata(None), path, row_group_size=50)
    monkeypatch.setattr(replay_mod, "BATCH_TICKS", 4)  # batches end mid-tick
    a = _concat(_replay(cfg, exported))
    b = _concat(_replay(cfg, path, book_levels=5, level_step_bps=2.0, level_growth=1.5), 5)
    for f in FIELDS:
        assert np.array_equal(a[f], b[f]), f


def test_a_shorter_stage_plays_the_head_of_the_file(exported: Path) -> None:
    cfg = _cfg("stage.duration_s=30")
    market = _replay(cfg, exported)
    assert market.n_ticks == 30 and sum(c.n for c in market.chunks(7)) == 30


# -- bad files --------------------------------------------------------------------------------

def _mutate(col: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[pa.Table], pa.Table]:
    def go(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index(col)
        return t.set_column(i, col, pa.array(fn(t.column(col).to_numpy().copy()), t.schema.field(col).type))
    return go


def _setv(col: str, row: int, value: float) -> Callable[[pa.Table], pa.Table]:
    def fn(a: np.ndarray) -> np.ndarray:
        a[row] = value
        return a
    return _mutate(col, fn)


def _drop_row(row: int) -> Callable[[pa.Table], pa.Table]:
    return lambda t: pa.concat_tables([t.slice(0, row), t.slice(row + 1)])


def _swap_rows(a: int, b: int) -> Callable[[pa.Table], pa.Table]:
    def go(t: pa.Table) -> pa.Table:
        idx = np.arange(t.num_rows)
        idx[a], idx[b] = b, a
        return t.take(pa.array(idx))
    return go


def _retype(col: str, typ: pa.DataType) -> Callable[[pa.Table], pa.Table]:
    def go(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index(col)
        return t.set_column(i, col, t.column(col).cast(typ))
    return go


def _nullify(cols: tuple[str, ...], row: int) -> Callable[[pa.Table], pa.Table]:
    def go(t: pa.Table) -> pa.Table:
        for col in cols:
            i = t.schema.get_field_index(col)
            v = t.column(col).to_pylist()
            v[row] = None
            t = t.set_column(i, col, pa.array(v, t.schema.field(col).type))
        return t
    return go


def _rename_symbol(row: int, name: str) -> Callable[[pa.Table], pa.Table]:
    def go(t: pa.Table) -> pa.Table:
        v = t.column("symbol").cast(pa.string()).to_pylist()
        v[row] = name
        return t.set_column(2, "symbol", pa.array(v, pa.string()))
    return go


# 6 rows per tick: BTC usdt, BTC krw, ETH usdt, ETH krw, XRP usdt, XRP krw (row 13: tick 2, BTC krw).
BAD = {
    "unsorted": (_swap_rows(6, 12), ["row 7", "t_s=1.0 is earlier than the row before", "sorted by t_s"]),
    "negative price": (_setv("bid", 13, -5.0), ["row 13", "bid=-5.0", "prices must be finite and > 0"]),
    "zero price": (_setv("ask", 8, 0.0), ["row 8", "ask=0.0", "> 0"]),
    "negative size": (_setv("ask_size", 3, -1.0), ["row 3", "ask_size=-1.0", ">= 0"]),
    "NaN instead of null": (_setv("bid", 4, float("nan")), ["row 4", "bid=nan", "write null"]),
    "crossed book": (_setv("bid", 2, 1e9), ["row 2", "crossed"]),
    "missing venue": (_drop_row(7), ["rows 6-10", "has no krw row for BTC", "one usdt and one krw row"]),
    "duplicate row": (lambda t: pa.concat_tables([t.slice(0, 8), t.slice(7, 1), t.slice(8)]),
                      ["has 2 krw row", "BTC"]),
    "unknown symbol": (_rename_symbol(9, "FOO"), ["row 9", "symbol='FOO'", "not in the run's universe"]),
    "wrong column type": (_retype("bid", pa.string()), ["column 'bid' has type string", "must be double"]),
    "missing column": (lambda t: t.drop_columns(["fx"]), ["missing column(s) fx"]),
    "partial null": (_nullify(("bid",), 5), ["row 5", "bid, ask, bid_size and ask_size are all null"]),
    "fx differs in a tick": (_setv("fx", 20, 1301.0), ["row 20", "fx=1301.0", "one FX per tick"]),
    "off the grid": (_mutate("t_s", lambda a: np.where(a >= 10.0, a + 0.5, a)),
                     ["row 60", "t_s=10.5", "off the tick grid", "expected 10.0"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_names_file_row_and_problem(case: str, exported: Path, tmp_path: Path) -> None:
    fix, expected = BAD[case]
    t = pq.read_table(exported)
    path = tmp_path / "bad.parquet"
    pq.write_table(fix(t).replace_schema_metadata(None), path)
    with pytest.raises(ReplayError) as err:
        _replay(_cfg(), path, book_levels=5, level_step_bps=2.0, level_growth=1.5)
    msg = str(err.value)
    assert "\n" not in msg and f"market.path={path}" in msg
    for part in expected:
        assert part in msg, (part, msg)


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_truncated_file(cut: float, exported: Path, tmp_path: Path) -> None:
    data = exported.read_bytes()
    path = tmp_path / "cut.parquet"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ReplayError, match="not a readable Parquet file.*truncated or corrupt"):
        _replay(_cfg(), path)


def test_corrupt_pages(exported: Path, tmp_path: Path) -> None:
    data = bytearray(exported.read_bytes())
    data[1000:9000] = bytes(8000)  # the footer is intact, column pages are not
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(bytes(data))
    with pytest.raises(ReplayError, match=f"market.path={path}"):
        _replay(_cfg(), path)


def test_other_refusals(exported: Path, tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="no such file"):
        _replay(_cfg(), tmp_path / "absent.parquet")
    with pytest.raises(ReplayError, match=r"recorded at tick_s=1.0, but stage.tick_s=0.5"):
        _replay(_cfg("stage.tick_s=0.5"), exported)
    with pytest.raises(ReplayError, match=r"holds BTC, ETH, XRP but the run's universe is BTC, ETH, XRP, SOL.*"
                                          r"universe.top_n=3"):
        _replay(_cfg("universe.top_n=5"), exported)
    plain = tmp_path / "nometa.parquet"
    pq.write_table(pq.read_table(exported).replace_schema_metadata(None), plain)
    with pytest.raises(ReplayError, match="no book metadata: set market.book_levels"):
        _replay(_cfg(), plain)


# -- the engine and "no valid quote" ------------------------------------------------------------

class _Tape:
    """A market from arrays; quotes NaN where `holes` says."""

    def __init__(self, base, holes: np.ndarray, fx_holes: np.ndarray) -> None:  # noqa: ANN001
        self.symbols, self.book, self.n_ticks = base.symbols, base.book, base.n_ticks
        self._data = _concat(base)
        for f in FIELDS[2:]:
            self._data[f] = np.where(holes, np.nan, self._data[f])
        self._data["fx"] = np.where(fx_holes, np.nan, self._data["fx"])

    def identity(self) -> dict:
        return {}

    def chunks(self, chunk_ticks: int):  # noqa: ANN201
        for a in range(0, self.n_ticks, chunk_ticks):
            b = min(self.n_ticks, a + chunk_ticks)
            yield MarketChunk(start=a, **{f: v[a:b] for f, v in self._data.items()})


def _params(cfg) -> EngineParams:  # noqa: ANN001
    return EngineParams.from_config(cfg)


def _holes(n: int, n_sym: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    holes = rng.random((n, n_sym)) < 0.2
    holes[40:70] = True  # a venue outage: every symbol without a quote for 30 ticks
    fx_holes = np.zeros(n, dtype=bool)
    fx_holes[90:95] = True
    fx_holes[-1] = True  # the session ends on a tick without FX
    return holes, fx_holes


def test_reference_engine_skips_symbols_without_a_valid_quote() -> None:
    cfg = _cfg("stage.duration_s=600")
    base = _synthetic(cfg)
    holes, fx_holes = _holes(base.n_ticks, len(base.symbols))
    tape = _Tape(base, holes, fx_holes)
    trades: list[dict] = []
    res = run_session(tape, _params(cfg), trades.append)
    usable = ~holes & ~fx_holes[:, None]
    assert res.market_updates == int(usable.sum())
    assert res.last_fx == 1300.0  # the last tick's FX is NaN: the last valid one is kept
    assert res.ticks == base.n_ticks and trades and math.isfinite(res.unrealized_pnl_krw)
    sym = {s: i for i, s in enumerate(base.symbols)}
    for t in trades:  # no decision is ever taken on a tick without a valid quote
        for key in ("entry_t_s", "exit_t_s"):
            assert usable[int(t[key]), sym[t["symbol"]]], (key, t)
        assert all(math.isfinite(v) for v in (t["pnl_krw"], t["fx_exit"], t["exit_usdt_px"]))
    full = run_session(base, _params(cfg), lambda _t: None)
    assert full.market_updates == base.n_ticks * len(base.symbols)
    chunk = next(iter(tape.chunks(100)))
    assert valid_quotes(chunk).shape == (100, 3) and not valid_quotes(chunk)[40:70].any()


def test_kernel_engine_mirrors_the_reference_on_missing_quotes() -> None:
    cfg = _cfg("stage.duration_s=600")
    base = _synthetic(cfg)
    holes, fx_holes = _holes(base.n_ticks, len(base.symbols), seed=2)
    ref, fast = [], []
    a = run_session(_Tape(base, holes, fx_holes), _params(cfg), ref.append)
    b = run_session_kernel(_Tape(base, holes, fx_holes), _params(cfg), fast.append)
    assert json.dumps(ref, sort_keys=True) == json.dumps(fast, sort_keys=True)
    for f in ("entry_signals", "rejections", "market_updates", "ticks", "last_fx", "unrealized_pnl_krw"):
        assert getattr(a, f) == getattr(b, f), f


# -- the CLI ----------------------------------------------------------------------------------

def _bad_cli(repo: Path, case: str) -> None:
    fix, _ = BAD[case]
    src_file = repo / "data" / "good.parquet"
    if not src_file.exists():
        cfg = _cfg()
        export(_synthetic(cfg), src_file, cfg.stage.tick_s, {"usdt": "x", "krw": "y"})
    bad = repo / "data" / f"{case.replace(' ', '_')}.parquet"
    t = pq.read_table(src_file)
    pq.write_table(fix(t), bad)
    before = sorted((repo / "logs").rglob("*"))
    proc = run_cli(repo, *STAGE, "market=replay", f"market.path=data/{bad.name}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: market.path=data/") and bad.name in err, err
    assert sorted((repo / "logs").rglob("*")) == before  # no run folder, nothing claiming success
    assert "run:" not in proc.stdout


def test_bad_file_cli_exit_2_and_no_run(repo: Path) -> None:
    _bad_cli(repo, "unsorted")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["negative price", "missing venue", "wrong column type"])
def test_bad_files_cli(repo: Path, case: str) -> None:
    _bad_cli(repo, case)


@pytest.mark.slow
def test_truncated_file_cli(repo: Path) -> None:
    cfg = _cfg()
    path = repo / "data" / "t.parquet"
    export(_synthetic(cfg), path, cfg.stage.tick_s, {"usdt": "x", "krw": "y"})
    path.write_bytes(path.read_bytes()[:5000])
    proc = run_cli(repo, *STAGE, "market=replay", "market.path=data/t.parquet")
    assert proc.returncode == 2 and "truncated or corrupt" in proc.stderr and not list((repo / "logs").iterdir())


@pytest.mark.slow
def test_synthetic_export_replays_to_the_same_kpis(repo: Path) -> None:
    """CLI: export -> replay gives the synthetic run's trades and KPIs; only the data identity differs."""
    proc = run_cli(repo, "data/smoke.parquet", "stage=d92-5", module="src.market.export")
    assert proc.returncode == 0, proc.stderr
    syn = run_cli(repo, "stage=d92-5", "run.id=syn")
    rep = run_cli(repo, "stage=d92-5", "run.id=rep", "market=replay", "market.path=data/smoke.parquet")
    assert syn.returncode == 0 and rep.returncode == 0, rep.stderr
    a, b = run_dir_of(syn, repo), run_dir_of(rep, repo)
    for name in ("kpi_summary.json", "trades.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    meta_a, meta_b = load_json(a / "runtime_meta.json"), load_json(b / "runtime_meta.json")
    assert meta_a["fingerprint"] != meta_b["fingerprint"]
    assert meta_b["data"]["identity"]["sha256"] == hashlib.sha256((repo / "data/smoke.parquet").read_bytes()).hexdigest()
    assert "market_faults" not in load_json(b / "kpi_summary.json")


@pytest.mark.slow
def test_readme_market_data_commands(repo: Path) -> None:
    """docs/market-data.md's export and replay commands, as written (live and paced ones need the
    internet or ten minutes: tests/test_market_live.py covers them against a local server)."""
    import shlex

    import docpages
    section = docpages.section(docpages.read("docs/market-data.md"), "## Replay, live, record → replay")
    block = docpages.blocks(section, ("sh",))[0]
    ran = 0
    for line in block.splitlines():
        cmd = line.split("  #")[0].strip()
        if not cmd.startswith("python -m") or "market=live" in cmd or "clock=realtime" in cmd or "<run_id>" in cmd:
            continue
        args = shlex.split(cmd)
        proc = run_cli(repo, *args[3:], module=args[2])
        assert proc.returncode in (0, 1), f"{cmd}: {proc.stderr}"
        ran += 1
    assert ran == 2
