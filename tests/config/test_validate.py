"""src/config/validate.py by hand: each value rule at its edge, with the exact message it gives.

The config is the smoke's, composed once by the real loader; each test changes one value on a
deep copy and calls `validate` directly (no CLI), so a rule that breaks fails here by name.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from conftest import REPO
from src.config.loader import load_config
from src.config.schema import RootConfig
from src.config.validate import MAX_TICKS, validate

_BASE = load_config(["stage=d92-5"], REPO).cfg


@pytest.fixture
def cfg() -> RootConfig:
    return copy.deepcopy(_BASE)


def test_the_smoke_config_has_no_problem(cfg: RootConfig) -> None:
    assert validate(cfg) == []


@pytest.mark.parametrize("seed,ok", [(0, True), (2**63 - 1, True), (-1, False), (2**63, False)])
def test_seed_range(cfg: RootConfig, seed: int, ok: bool) -> None:
    cfg.seed = seed
    assert validate(cfg) == ([] if ok else [f"seed={seed}: must be an integer in [0, 2**63)"])


@pytest.mark.parametrize("run_id,ok", [("my-run", True), ("a" * 128, True), ("run.v2_b-3", True),
                                       ("a" * 129, False), ("d92-5\n", False), ("a..b", False), ("../x", False),
                                       ("-x", False), ("a/b", False), ("", False)])
def test_run_id_names_one_folder_under_logs(cfg: RootConfig, run_id: str, ok: bool) -> None:
    cfg.run.id = run_id
    problems = validate(cfg)
    assert problems == [] if ok else problems == [
        f"run.id={run_id!r}: must be 1-128 letters, digits, '.', '_' or '-' starting with a letter or digit, "
        "without '..' or '/' (it names a folder under logs/)"]


def test_stage_durations_must_be_positive_and_hold_a_tick(cfg: RootConfig) -> None:
    cfg.stage.tick_s = 0.0
    assert validate(cfg) == ["stage.tick_s=0.0: must be > 0"]
    cfg.stage.tick_s = 2.0
    cfg.stage.duration_s = 1.0
    assert validate(cfg) == ["stage.duration_s=1.0: must be at least one tick (stage.tick_s=2.0)"]
    cfg.stage.duration_s = 2.0
    assert validate(cfg) == []


def test_numbers_must_be_finite(cfg: RootConfig) -> None:
    cfg.risk.max_notional_usd = float("inf")
    assert validate(cfg) == ["risk.max_notional_usd=inf: must be a finite number"]


def test_fees_between_0_and_1000_bps(cfg: RootConfig) -> None:
    cfg.costs.usdt_venue.taker_fee_bps = -0.5
    cfg.costs.krw_venue.maker_fee_bps = 1000.5
    assert validate(cfg) == ["costs.usdt_venue.taker_fee_bps=-0.5: must be >= 0",
                             "costs.krw_venue.maker_fee_bps=1000.5: must be <= 1000"]
    cfg.costs.usdt_venue.taker_fee_bps, cfg.costs.krw_venue.maker_fee_bps = 0.0, 1000.0
    assert validate(cfg) == []


def test_universe_no_larger_than_the_symbol_list(cfg: RootConfig) -> None:
    n = len(cfg.symbols.ranked)
    cfg.universe.top_n = n
    assert validate(cfg) == []
    cfg.universe.top_n = n + 1
    assert validate(cfg) == [f"universe.top_n={n + 1}: must be between 1 and {n}, the length of symbols.ranked (default)"]


def test_duplicate_symbols(cfg: RootConfig) -> None:
    cfg.symbols.ranked.append(replace(cfg.symbols.ranked[0]))
    assert f"symbols.ranked: duplicate symbols ['{cfg.symbols.ranked[0].symbol}']" in validate(cfg)


def test_zones_ordered_without_overlap_and_tp_positive(cfg: RootConfig) -> None:
    zones = cfg.zone_profile.profiles["major_advisory"].zones
    key = "zone_profile.profiles.major_advisory.zones"
    zones[1].lo_bps = zones[0].hi_bps  # touching is allowed
    assert validate(cfg) == []
    zones[1].lo_bps = zones[0].hi_bps - 0.5
    zones[0].tp_bps = 0.0
    assert validate(cfg) == [f"{key}[0].tp_bps=0.0: must be > 0",
                             f"{key}[1].lo_bps={zones[1].lo_bps!r}: zones must be ordered and not overlap "
                             f"(previous zone ends at {zones[0].hi_bps!r})"]


def test_hard_time_limit_not_before_the_soft_one(cfg: RootConfig) -> None:
    prof = cfg.zone_profile.profiles["alt_strict"]
    prof.hard_limit_s = prof.soft_limit_s
    assert validate(cfg) == []
    prof.hard_limit_s = prof.soft_limit_s - 1
    assert validate(cfg) == [f"zone_profile.profiles.alt_strict.hard_limit_s={prof.hard_limit_s!r}: "
                             f"must be >= soft_limit_s={prof.soft_limit_s!r}"]


def test_a_mapping_must_name_a_defined_profile(cfg: RootConfig) -> None:
    cfg.zone_profile.fallback.strict = "nope"
    assert validate(cfg) == ["zone_profile.fallback.strict='nope': no such profile "
                             "(defined: alt_advisory, alt_strict, major_advisory, major_strict)"]


def test_unmapped_symbols_need_a_fallback(cfg: RootConfig) -> None:
    cfg.zone_profile.fallback = None
    universe = [s.symbol for s in cfg.symbols.ranked[: cfg.universe.top_n]]
    unmapped = [s for s in universe if s not in cfg.zone_profile.symbols]
    assert unmapped, "the smoke relies on the fallback for some symbols"
    assert validate(cfg) == [f"zone_profile (default): symbols {unmapped} have no mapping in zone_profile.symbols "
                             "and zone_profile.fallback is not set: map them or add a fallback"]


def test_a_mapping_for_a_lookalike_symbol_is_refused_with_the_one_meant(cfg: RootConfig) -> None:
    cfg.zone_profile.symbols["ВТС"] = cfg.zone_profile.symbols["BTC"]  # Cyrillic В, Т, С
    (problem,) = validate(cfg, zone_profile_file="conf/zone_profile/default.yaml")
    assert problem.startswith("conf/zone_profile/default.yaml: zone_profile.symbols.'ВТС' is not a symbol of "
                              "conf/symbols/default.yaml (holds U+0412 U+0422 U+0421); did you mean 'BTC'? allowed: BTC,")


def test_at_most_max_ticks_symbol_ticks_per_run(cfg: RootConfig) -> None:
    symbols = cfg.universe.top_n
    cfg.stage.tick_s = 1.0
    cfg.stage.duration_s = float(MAX_TICKS // symbols)
    assert validate(cfg) == []
    cfg.stage.duration_s += 1.0
    ticks = (MAX_TICKS // symbols + 1) * symbols
    assert validate(cfg) == [f"stage.duration_s={cfg.stage.duration_s!r} with {symbols} symbols is {ticks} "
                             f"symbol-ticks: at most {MAX_TICKS} per run"]


def test_every_problem_is_reported_not_only_the_first(cfg: RootConfig) -> None:
    cfg.seed = -1
    cfg.risk.max_open_positions = 0
    cfg.costs.floor_multiplier = -1.0
    assert validate(cfg) == ["seed=-1: must be an integer in [0, 2**63)",
                             "costs.floor_multiplier=-1.0: must be >= 0",
                             "risk.max_open_positions=0: must be >= 1"]
