"""The loader: defaults compose, stage presets override, bad values fail naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from src.config.loader import ConfigError, load_config
from src.config.schema import Mode, SyntheticMarketConfig

from conftest import REPO


def test_default_smoke_composes_typed() -> None:
    loaded = load_config(["stage=d92-5"], REPO)
    cfg = loaded.cfg
    assert cfg.stage.id == "d92-5" and cfg.stage.duration_s == 600.0 and cfg.stage.mode is Mode.advisory
    assert cfg.universe.top_n == 10
    assert isinstance(cfg.market, SyntheticMarketConfig)
    assert loaded.choices["zone_profile"] == "default"
    assert "conf/zone_profile/default.yaml" in loaded.config_files


@pytest.mark.parametrize("stage,duration,top_n,mode", [
    ("d92-5", 600.0, 10, Mode.advisory),
    ("d92-1", 3600.0, 10, Mode.advisory),
    ("d77-0", 1800.0, 20, Mode.strict),
])
def test_stage_presets_override_groups(stage: str, duration: float, top_n: int, mode: Mode) -> None:
    cfg = load_config([f"stage={stage}"], REPO).cfg
    assert (cfg.stage.id, cfg.stage.duration_s, cfg.universe.top_n, cfg.stage.mode) == (stage, duration, top_n, mode)
    ac3 = next(r for r in cfg.stage.acceptance if r.id == "AC-3")
    assert ac3.value == f"logs/{stage}"


def test_command_line_beats_stage_preset() -> None:
    cfg = load_config(["stage=d77-0", "universe=top50", "stage.mode=advisory"], REPO).cfg
    assert cfg.universe.top_n == 50 and cfg.stage.mode is Mode.advisory


BAD = [
    (["universe=top7"], "universe/top7"),
    (["stage=nope"], "stage/nope"),
    (["costs.usdt_venue.taker_fee_bps=abc"], "costs.usdt_venue.taker_fee_bps"),
    (["costs.krw_venue.taker_fee_bps=-1"], "costs.krw_venue.taker_fee_bps"),
    (["zone_profile.profiles.alt_advisory.zones.0.tp_bps=0"], "zone_profile.profiles.alt_advisory.zones[0].tp_bps"),
    (["zone_profile.profiles.alt_advisory.zones.1.lo_bps=60"], "must be ordered and not overlap"),
    (["universe.top_n=101"], "universe.top_n=101"),
    (["universe.top_n=0"], "universe.top_n=0"),
    (["stage.duration_s=0"], "stage.duration_s"),
    (["stage.tick_s=-1"], "stage.tick_s"),
    (["stage.mode=yolo"], "stage.mode"),
    (["seed=-3"], "seed=-3"),
    (["seed=1.5"], "seed"),
    (["foo=1"], "foo"),
    (["costs.krw_venue.bogus=1"], "bogus"),
    (["run.id=../escape"], "run.id"),
    (["stage.id=../../etc"], "stage.id"),
    (["run.id=a/b"], "run.id"),
    (["zone_profile.fallback=null"], "no mapping"),
    (["zone_profile.symbols.BTC.advisory=ghost"], "ghost"),
    (["risk.max_open_positions=0"], "risk.max_open_positions"),
    (["market.fx_krw_per_usd=0"], "market.fx_krw_per_usd"),
    (["market.premium_half_life_s=0"], "market.premium_half_life_s"),
    (["zone_profile.profiles.major_advisory.hard_limit_s=10"], "hard_limit_s"),
]


@pytest.mark.parametrize("overrides,needle", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_config_names_the_problem(overrides: list[str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides, REPO)
    msg = str(info.value)
    assert needle in msg, msg
    assert "\n" not in msg


def test_malformed_zone_profile_file(tmp_path: Path) -> None:
    from conftest import copy_repo
    repo = copy_repo(tmp_path / "r")
    (repo / "conf/zone_profile/broken.yaml").write_text("name: broken\nprofiles:\n  p: {zones: 7}\n")
    with pytest.raises(ConfigError) as info:
        load_config(["zone_profile=broken"], repo)
    assert "zones" in str(info.value)


def test_no_conf_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="conf/config.yaml"):
        load_config([], tmp_path)
