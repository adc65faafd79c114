"""src/config/validate.py's bounds at their edges, the ones tests/mutate_oracle.py's added mutations
reached: each value just inside (no problem) and at or just past the edge (exactly one problem,
naming the key, the value and what is allowed). Same set-up as tests/config/test_validate.py.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from conftest import REPO
from src.config.loader import load_config
from src.config.schema import RootConfig
from src.config.validate import validate

_BASE = load_config(["stage=d92-5"], REPO).cfg
ZONES = "zone_profile.profiles.major_advisory.zones"
PROF = "zone_profile.profiles.alt_strict"


def _zone(i: int, field: str, value: float) -> Callable[[RootConfig], None]:
    return lambda c: setattr(c.zone_profile.profiles["major_advisory"].zones[i], field, value)


def _prof(field: str, value: float) -> Callable[[RootConfig], None]:
    return lambda c: setattr(c.zone_profile.profiles["alt_strict"], field, value)


def _set(path: str, value: Any) -> Callable[[RootConfig], None]:
    def apply(c: RootConfig) -> None:
        *parents, last = path.split(".")
        obj: Any = c
        for p in parents:
            obj = getattr(obj, p)
        setattr(obj, last, value)
    return apply


def _hard_and_soft(value: float) -> Callable[[RootConfig], None]:
    def apply(c: RootConfig) -> None:
        prof = c.zone_profile.profiles["alt_strict"]
        prof.soft_limit_s = prof.hard_limit_s = value
    return apply


def _rule_value(value: Any) -> Callable[[RootConfig], None]:
    return lambda c: setattr(c.stage.acceptance[0], "value", value)


CASES: list[tuple[str, Callable[[RootConfig], None], str | None]] = [
    ("size_frac 1", _zone(0, "size_frac", 1.0), None),
    ("size_frac 0", _zone(0, "size_frac", 0.0), f"{ZONES}[0].size_frac=0.0: must be > 0"),
    ("size_frac 1.5", _zone(0, "size_frac", 1.5), f"{ZONES}[0].size_frac=1.5: must be <= 1"),
    ("sl_bps 0", _zone(0, "sl_bps", 0.0), f"{ZONES}[0].sl_bps=0.0: must be > 0"),
    ("lo_bps -1", _zone(0, "lo_bps", -1.0), f"{ZONES}[0].lo_bps=-1.0: must be >= 0"),
    ("lo_bps 0", _zone(0, "lo_bps", 0.0), None),
    ("min_loss_bps -1", _prof("min_loss_bps", -1.0), f"{PROF}.min_loss_bps=-1.0: must be >= 0"),
    ("min_loss_bps 0", _prof("min_loss_bps", 0.0), None),
    ("hard limit 0", _hard_and_soft(0.0), f"{PROF}.hard_limit_s=0.0: must be > 0"),
    ("hard limit = soft", _hard_and_soft(30.0), None),
    ("daily loss limit 0", _set("risk.daily_loss_limit_usd", 0.0), "risk.daily_loss_limit_usd=0.0: must be > 0"),
    ("max notional 0", _set("risk.max_notional_usd", 0.0), "risk.max_notional_usd=0.0: must be > 0"),
    ("min fill 0", _set("risk.min_fill_usd", 0.0), None),
    ("max open 1", _set("risk.max_open_positions", 1), None),
    ("max open 0", _set("risk.max_open_positions", 0), "risk.max_open_positions=0: must be >= 1"),
    ("floor multiplier 0", _set("costs.floor_multiplier", 0.0), None),
    ("floor multiplier -0.5", _set("costs.floor_multiplier", -0.5), "costs.floor_multiplier=-0.5: must be >= 0"),
    ("usdt maker fee -1", _set("costs.usdt_venue.maker_fee_bps", -1.0),
     "costs.usdt_venue.maker_fee_bps=-1.0: must be >= 0"),
    ("usdt taker fee 1000", _set("costs.usdt_venue.taker_fee_bps", 1000.0), None),
    ("book levels 50", _set("market.book_levels", 50), None),
    ("book levels 51", _set("market.book_levels", 51), "market.book_levels=51: must be between 1 and 50"),
    ("book levels 0", _set("market.book_levels", 0), "market.book_levels=0: must be between 1 and 50"),
    ("top_n 0", _set("universe.top_n", 0), None),  # message checked below (it names the symbol list)
    ("threshold 2", _rule_value(2), None),
    ("threshold True", _rule_value(True), "stage.acceptance[0] (AC-1).value=True: op ge needs a number"),
]


@pytest.mark.parametrize("change,expected", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_a_bound_at_its_edge(change: Callable[[RootConfig], None], expected: str | None) -> None:
    cfg = copy.deepcopy(_BASE)
    change(cfg)
    problems = validate(cfg)
    if cfg.universe.top_n == 0:
        n = len(cfg.symbols.ranked)
        expected = f"universe.top_n=0: must be between 1 and {n}, the length of symbols.ranked (default)"
    assert problems == ([] if expected is None else [expected])


def test_hi_bps_must_be_above_lo_bps() -> None:
    cfg = copy.deepcopy(_BASE)
    z = cfg.zone_profile.profiles["major_advisory"].zones[0]
    z.hi_bps = z.lo_bps
    assert validate(cfg) == [f"{ZONES}[0].hi_bps={z.hi_bps!r}: must be > {z.lo_bps:g}"]
    z.hi_bps = z.lo_bps + 0.5
    assert validate(cfg) == []
