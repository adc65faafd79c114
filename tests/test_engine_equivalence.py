"""Differential tests: the compiled kernel equals the reference engine, byte for byte.

Hypothesis draws whole sessions -- universe size, duration, tick, mode, zone bands and
exits, fees, floor multiplier, risk limits (tight max_open_positions, small daily loss
limits so the kill switch fires, shallow books so fills are partial or refused), FX
walk, odd chunkings and clock offsets across midnight, missing quotes (NaN),
interruptions -- and runs both
engines on the same market. Equal means: the same trades.jsonl lines in the same order
of on_trade calls, the same trades.jsonl bytes from the kernel's compiled writer as
JsonlAppender writes for the reference's dicts, the same repr() of the SessionResult
(repr shows every float exactly and would show a numpy scalar leaking in) and the same
KPI summary. The kernel runs twice per case: with on_trade (it then stops after every
tick that closed a trade) and, when the stop rule does not watch trades, without (one
kernel call per chunk, rolled back when should_stop cuts it).

The default suite is derandomised so CI always runs the same few hundred cases; set
HYPOTHESIS_RANDOM=1 to explore new ones. Larger cases are marked slow.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, load_json, run_cli, run_dir_of
from src.config.loader import load_config
from src.config.schema import (FxKind, Mode, Profile, RiskConfig, RootConfig, SymbolMapping, Zone,
                               ZoneProfileConfig)
from src.engine.kernel_run import run_session_kernel
from src.engine.kpi import summarize
from src.engine.loop import EngineParams, run_session
from src.engine.records import EXIT_REASONS, REJECTION_REASONS, SessionResult
from src.engine.zones import apply_profiles
from src.market.synthetic import SyntheticMarket
from src.market.tape import BookShape, Market, MarketChunk

CASES = settings(max_examples=int(os.environ.get("ENGINE_EQ_EXAMPLES", "150")), deadline=None,
                 derandomize=not os.environ.get("HYPOTHESIS_RANDOM"), print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SMALL = settings(CASES, max_examples=max(1, CASES.max_examples // 3))
SEEN: Counter[str] = Counter()  # exit reasons, time-limit kinds and rejections met by generated cases


@lru_cache(maxsize=1)
def base() -> RootConfig:
    """The repo's default config, composed once through the real loader."""
    return load_config([], REPO).cfg


@dataclass
class Case:
    market: Market
    params: EngineParams
    duration_s: float
    tick_s: float


def _f(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def zones(draw: st.DrawFn) -> list[Zone]:
    lo, out = draw(_f(0.0, 80.0)), []
    for _ in range(draw(st.integers(1, 4))):
        lo += draw(st.sampled_from([0.0, 0.0, 3.0, 25.0]))  # a gap: spreads there are outside_zones
        hi = lo + draw(_f(0.5, 150.0))
        out.append(Zone(lo, hi, draw(_f(0.5, 90.0)), draw(_f(0.5, 90.0)), draw(_f(0.05, 1.0))))
        lo = hi
    return out


@st.composite
def profiles(draw: st.DrawFn, duration_s: float) -> Profile:
    soft = draw(_f(0.0, 0.6)) * duration_s
    return Profile(draw(zones()), soft, soft + draw(_f(0.0, 0.6)) * duration_s + 1e-3, draw(_f(0.0, 60.0)))


@st.composite
def cases(draw: st.DrawFn, max_slots: int = 1500) -> Case:
    cfg = base()
    n_sym = draw(st.integers(1, 8))
    tick_s = draw(st.sampled_from([0.5, 1.0, 1.0, 2.0, 5.0, 60.0, 900.0]))
    n_ticks = draw(st.integers(1, max_slots // n_sym))
    duration_s = n_ticks * tick_s
    fx_walk = draw(st.booleans())
    market_cfg = replace(
        cfg.market, fx_kind=FxKind.walk if fx_walk else FxKind.fixed,
        fx_vol_bps_per_sqrt_s=draw(_f(0.0, 5.0)) if fx_walk else 0.0,
        price_vol_annual=draw(_f(0.0, 3.0)), premium_mean_max_bps=draw(_f(0.0, 120.0)),
        premium_sd_bps=draw(_f(0.0, 120.0)), premium_half_life_s=draw(_f(2.0, 900.0)),
        jump_rate_per_hour=draw(_f(0.0, 200.0)), jump_sd_bps=draw(_f(0.0, 150.0)),
        usdt_half_spread_bps=draw(_f(0.0, 5.0)), krw_half_spread_bps=draw(_f(0.0, 10.0)),
        depth_usd=draw(st.sampled_from([30.0, 200.0, 1500.0, 12000.0, 1e6])), depth_noise=draw(_f(0.0, 1.5)),
        book_levels=draw(st.integers(1, 6)), level_step_bps=draw(_f(0.0, 20.0)),
        level_growth=draw(st.sampled_from([1.0, 0.5, 1.5, 2.0])))
    ranked = cfg.symbols.ranked[:n_sym]
    symbols = tuple(s.symbol for s in ranked)
    names = ("p0", "p1", "p2")
    zp = ZoneProfileConfig(
        name="generated", profiles={n: draw(profiles(duration_s)) for n in names},
        symbols={s: SymbolMapping(draw(st.sampled_from(names)), draw(st.sampled_from(names)))
                 for s in symbols if draw(st.booleans())},
        fallback=SymbolMapping(draw(st.sampled_from(names)), draw(st.sampled_from(names))))
    applied = tuple(apply_profiles(zp, symbols, draw(st.sampled_from(list(Mode)))))
    risk = RiskConfig(max_notional_usd=draw(st.sampled_from([100.0, 2000.0, 25000.0])) * draw(_f(0.5, 2.0)),
                      max_open_positions=draw(st.integers(1, 6)),
                      daily_loss_limit_usd=draw(st.sampled_from([0.5, 5.0, 50.0, 1e4])),
                      min_fill_usd=draw(st.sampled_from([0.0, 10.0, 50.0, 500.0])))
    params = EngineParams(applied, draw(_f(0.0, 25.0)), draw(_f(0.0, 25.0)), draw(_f(0.0, 3.0)), risk)
    market = SyntheticMarket(market_cfg, ranked, draw(st.integers(0, 2**32)), n_ticks, tick_s)
    return Case(market, params, duration_s, tick_s)


class Rechunked:
    """The same ticks cut into chunks of the given sizes, the clock shifted by `t_offset_s`,
    and optionally with holes: NaN in a random field of a share of slots and in the FX of a
    share of ticks (a live venue down or stale: loop.valid_quotes)."""

    def __init__(self, inner: Market, sizes: list[int], t_offset_s: float, holes: float = 0.0,
                 seed: int = 0) -> None:
        self.inner, self.sizes, self.t_offset_s, self.holes, self.seed = inner, sizes, t_offset_s, holes, seed
        self.symbols, self.book, self.n_ticks = inner.symbols, inner.book, inner.n_ticks

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def chunks(self, chunk_ticks: int):  # noqa: ANN201 - the requested size is ignored on purpose
        whole = next(iter(self.inner.chunks(self.inner.n_ticks)))
        fields = ("usdt_bid", "usdt_ask", "krw_bid", "krw_ask", "usdt_size", "krw_size")
        arrays = [whole.fx.copy(), *(getattr(whole, f).copy() for f in fields)]
        if self.holes:
            rng = np.random.default_rng(self.seed)
            arrays[0][rng.random(whole.n) < self.holes / 4] = np.nan
            field = rng.integers(1, len(arrays), size=arrays[1].shape)
            hole = rng.random(arrays[1].shape) < self.holes
            for f in range(1, len(arrays)):
                arrays[f][hole & (field == f)] = np.nan
        a, j = 0, 0
        while a < whole.n:
            b = min(whole.n, a + self.sizes[j % len(self.sizes)])
            yield MarketChunk(a, whole.t_s[a:b] + self.t_offset_s, *(x[a:b] for x in arrays))
            a, j = b, j + 1


def jsonl(trades: list[dict]) -> bytes:
    """What JsonlAppender writes for these dicts (the reference's trades.jsonl)."""
    return b"".join(json.dumps(t, sort_keys=True, ensure_ascii=False, allow_nan=False).encode() + b"\n"
                    for t in trades)


def run_both(case: Case, make_stop: Callable[[list[dict]], Callable[[], bool]] | None = None,
             stop_watches_trades: bool = False) -> None:
    """Run both engines; assert identical trade lines and bytes, on_trade order, result and KPIs."""
    outs = []
    runs = [("reference", True), ("kernel", True)] + ([] if stop_watches_trades else [("kernel", False)])
    for engine, dicts in runs:
        seen: list[dict] = []
        written: list[bytes] = []
        stop = make_stop(seen) if make_stop else (lambda: False)
        if engine == "reference":
            res = run_session(case.market, case.params, seen.append, stop)
            data = jsonl(seen)
        else:
            res = run_session_kernel(case.market, case.params, seen.append if dicts else None, stop, written.append)
            data = b"".join(written)
            assert data == jsonl(list(res.trades))
        lines = [json.dumps(t, sort_keys=True, allow_nan=False) for t in (seen if dicts else res.trades)]
        kpis = summarize(res, case.params.applied, {"sha256": "-"}, case.duration_s, case.tick_s)
        outs.append((lines, repr(res), json.dumps(kpis, sort_keys=True), data, not dicts or seen == res.trades))
    ref = outs[0]
    for out in outs[1:]:
        assert out[4], "on_trade calls differ from SessionResult.trades"
        assert out[0] == ref[0]
        assert out[3] == ref[3], "trades.jsonl bytes differ"
        assert out[1] == ref[1]
        assert out[2] == ref[2]
    kpis = json.loads(ref[2])
    for group, prefix in (("exit_reasons", "exit"), ("time_limit_kinds", "time_limit"), ("rejections", "rejection")):
        for reason, n in kpis[group].items():
            SEEN[f"{prefix}:{reason}"] += n
    SEEN["cases"] += 1
    SEEN["interrupted"] += "interrupted=True" in ref[1]


@CASES
@given(cases())
def test_engines_equal_on_generated_sessions(case: Case) -> None:
    run_both(case)


@SMALL
@given(cases(), st.lists(st.integers(1, 400), min_size=1, max_size=4),
       st.sampled_from([0.0, 86400.0 - 300.0, 86400.0 - 7.5, 3 * 86400.0 - 1000.0]))
def test_engines_equal_across_chunkings_and_midnight(case: Case, sizes: list[int], t_offset_s: float) -> None:
    run_both(replace(case, market=Rechunked(case.market, sizes, t_offset_s)))


@SMALL
@given(cases(), st.lists(st.integers(1, 400), min_size=1, max_size=3), st.sampled_from([0.01, 0.1, 0.5, 0.95]),
       st.integers(0, 2**32))
def test_engines_equal_with_missing_quotes(case: Case, sizes: list[int], holes: float, seed: int) -> None:
    run_both(replace(case, market=Rechunked(case.market, sizes, 0.0, holes, seed)))


@SMALL
@given(cases(), st.integers(0, 1600), st.booleans())
def test_engines_equal_when_interrupted(case: Case, after_calls: int, on_first_trade: bool) -> None:
    def make_stop(seen: list[dict]) -> Callable[[], bool]:
        calls = [0]

        def stop() -> bool:
            calls[0] += 1
            return bool(seen) if on_first_trade else calls[0] > after_calls
        return stop
    run_both(case, make_stop, stop_watches_trades=on_first_trade)


def test_generated_cases_cover_every_exit_and_rejection_reason() -> None:
    """The generated cases above must exercise every branch of the strategy (runs them if alone)."""
    if SEEN["cases"] < 50:  # run on its own (e.g. -k): generate the cases here
        test_engines_equal_on_generated_sessions()
    wanted = ([f"exit:{r}" for r in EXIT_REASONS] + ["time_limit:soft", "time_limit:hard"]
              + [f"rejection:{r}" for r in REJECTION_REASONS])
    missing = [w for w in wanted if SEEN[w] == 0]
    assert not missing, f"generated cases never hit {missing}: widen the strategies ({dict(SEEN)})"


# ----- larger cases: the default config's markets, many chunks and days -----------------------


def _loaded_case(overrides: list[str]) -> Case:
    cfg = load_config(overrides, REPO).cfg
    params = EngineParams.from_config(cfg)
    market = SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s)
    return Case(market, params, cfg.stage.duration_s, cfg.stage.tick_s)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ["stage=d92-1", "universe=top50"],
    ["stage=d77-0", "seed=7", "risk.daily_loss_limit_usd=300", "risk.max_open_positions=4"],
    ["stage=d92-5", "universe=top20", "stage.duration_s=259200", "stage.tick_s=20", "market.fx_kind=walk",
     "market.fx_vol_bps_per_sqrt_s=0.5", "risk.daily_loss_limit_usd=400", "costs=bnb_discount"],
    ["stage=d92-5", "universe=top100", "stage.duration_s=7200", "risk.max_open_positions=50",
     "risk.daily_loss_limit_usd=1e9", "market.depth_usd=800", "costs.floor_multiplier=1.6"],
])
def test_engines_equal_on_large_sessions(overrides: list[str]) -> None:
    run_both(_loaded_case(overrides))


@pytest.mark.slow
def test_cli_runs_with_either_engine_are_byte_identical(repo: Path) -> None:
    dirs = {}
    for engine, run_id in (("reference", "x"), ("kernel", "y")):
        proc = run_cli(repo, "stage=d92-5", f"engine={engine}", f"run.id={run_id}")
        assert proc.returncode == 0, proc.stderr
        dirs[engine] = run_dir_of(proc, repo)
    ref, fst = dirs["reference"], dirs["kernel"]
    for name in ("kpi_summary.json", "trades.jsonl"):
        assert (fst / name).read_bytes() == (ref / name).read_bytes(), name
    assert (ref / "trades.jsonl").read_bytes()  # the smoke trades: not vacuously equal
    meta_ref, meta_fast = load_json(ref / "runtime_meta.json"), load_json(fst / "runtime_meta.json")
    assert meta_fast["fingerprint"] == meta_ref["fingerprint"]
    assert (meta_ref["config"]["resolved"]["engine"], meta_fast["config"]["resolved"]["engine"]) == \
        ("reference", "kernel")
