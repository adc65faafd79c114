"""Every override takes effect or is refused: exit 2, one `error:` line, no run folder.

Through the real CLI (`python -m src.run` in a temp copy of the repo): keys no schema
defines, whatever the prefix and at any depth; deletions of schema keys; options that do
not exist; zone-profile mappings for symbols the symbol list lacks; ids with a final
newline; the same in sweeps, before any job runs. In process, the general property over
every key of the schemas.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, load_json, run_cli, run_dir_of
from src.config.loader import ConfigError, load_config
from src.config.overrides import _schema_paths
from src.runs.paths import RunPathError, check_id
from stress.helpers import assert_clean_user_error, run_folders


def refused(repo: Path, *args: str, needle: str | None = None) -> str:
    """Run the CLI, assert a clean refusal and that nothing was left under logs/."""
    err = assert_clean_user_error(run_cli(repo, *args), 2, needle)
    assert run_folders(repo) == [], run_folders(repo)
    assert [p for p in (repo / "logs").rglob("*") if p.name != "_sweeps"] == []
    return err


def no_plus_hint(err: str, arg: str) -> None:
    """The message after the echoed override never tells the user to add a '+'."""
    rest = err.split(arg, 1)[1] if arg in err else err
    assert "+" not in rest, err


# -- keys no schema defines: refused whatever the prefix, at any depth --------------------------

TYPOS = [  # override, the hint the error must give
    ("zone_profle=wide", "did you mean zone_profile=wide?"),
    ("+zone_profle=wide", "did you mean zone_profile=wide?"),
    ("++zone_profle=wide", "did you mean zone_profile=wide?"),
    ("stage.duraton_s=60", "did you mean stage.duration_s=60?"),
    ("+stage.duraton_s=60", "did you mean stage.duration_s=60?"),
    ("++stage.duraton_s=60", "did you mean stage.duration_s=60?"),
    ("+costs.fee=1", "costs has no key 'fee'"),
    ("++costs.fee=1", "costs has no key 'fee'"),
    ("++costs.usdt_venue.taker_fee=1", "did you mean costs.usdt_venue.taker_fee_bps=1?"),
    ("+zone_profile.profiles.x.y=1", "has no key 'y'"),
    ("++zone_profile.profiles.major_strict.zones.0.tp=1", "did you mean zone_profile.profiles.major_strict.zones.0.tp_bps=1?"),
    ("+stage.acceptance.0.foo=1", "stage.acceptance.0 has no key 'foo'"),
    ("++risk.max_notional=1", "did you mean risk.max_notional_usd=1?"),
    ("duration_s=60", "did you mean stage.duration_s=60?"),
    ("market.krw_venue=upbit", "market (SyntheticMarketConfig) has no key 'krw_venue'"),
    ("++market.krw_venue=upbit", "market=synthetic"),
    ("market=replay ++market.depth_usd=1", "market (market=replay) has no key 'depth_usd'"),
    ("seed.x=1", "seed is a single value"),
]


@pytest.mark.parametrize("arg,hint", TYPOS, ids=[a for a, _ in TYPOS])
def test_key_no_schema_defines_is_refused(repo: Path, arg: str, hint: str) -> None:
    *before, arg = arg.split(" ")
    err = refused(repo, *before, arg, "stage.duration_s=60" if "duration" not in arg else "seed=1", needle=hint)
    no_plus_hint(err, arg)


def test_a_refused_key_never_reaches_the_record(repo: Path) -> None:
    """What main did: `+zone_profle=wide` ran the default profile and recorded `zone_profle: wide`."""
    refused(repo, "+zone_profle=wide", needle="zone_profle")
    proc = run_cli(repo, "zone_profile=wide", "stage.duration_s=60")
    assert proc.returncode in (0, 1), proc.stderr
    run = run_dir_of(proc, repo)
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert "zone_profle" not in recorded and recorded["zone_profile"]["name"] == "wide"


# -- deletions: only map entries ---------------------------------------------------------------

DELETIONS = ["~seed", "~seed=42", "~run.id", "~run", "~stage.duration_s", "~stage.acceptance.0",
             "~zone_profile.fallback", "~market.fx_krw_per_usd", "~risk", "~stage", "~zone_profile",
             "~costs.usdt_venue.taker_fee_bps"]


@pytest.mark.parametrize("arg", DELETIONS)
def test_deleting_what_a_run_needs_is_refused(repo: Path, arg: str) -> None:
    err = refused(repo, arg, "stage.duration_s=60")
    assert "cannot be removed" in err, err


def test_deleting_a_map_entry_takes_effect(repo: Path) -> None:
    proc = run_cli(repo, "~zone_profile.symbols.ETH", "stage.duration_s=60")
    assert proc.returncode in (0, 1), proc.stderr
    recorded = yaml.safe_load((run_dir_of(proc, repo) / "config.yaml").read_text())
    assert sorted(recorded["zone_profile"]["symbols"]) == ["BTC"]


# -- group options -----------------------------------------------------------------------------

OPTIONS = [
    ("zone_profile=wdie", "did you mean zone_profile=wide?"),
    ("zone_profile=Wide", "did you mean zone_profile=wide?"),
    ("universe=top11", "available options in 'universe': top10, top100, top20, top50"),
    ("stage=d92-6", "'stage/d92-6'"),
    ("market=live_schema", "available options in 'market': live, replay, synthetic"),
    ("stage=../config", "'stage/../config'"),
    ("+zone_profile=wide", "zone_profile=<default|tight|wide>"),
    ("zone_profile@x=wide", "zone_profile=<default|tight|wide>"),
]


@pytest.mark.parametrize("arg,hint", OPTIONS, ids=[a for a, _ in OPTIONS])
def test_missing_group_option_is_refused_with_the_options(repo: Path, arg: str, hint: str) -> None:
    err = refused(repo, arg, "stage.duration_s=60", needle=hint)
    no_plus_hint(err, arg)


@pytest.mark.parametrize("args,needle", [
    (("seed=1", "seed=2"), "seed is given twice"),
    (("hydra.job.chdir=true",), "sweeps only"),
    (("hydra/launcher=joblib",), "sweeps only"),
    (("+hydra.callbacks.mark._target_=x.Mark",), "hydra.callbacks (mark)"),
    (("hydra/callbacks=mark",), "hydra.callbacks (mark)"),
])
def test_overrides_without_effect_on_a_single_run(repo: Path, args: tuple[str, ...], needle: str) -> None:
    refused(repo, *args, needle=needle)


# -- zone-profile mappings name listed symbols ------------------------------------------------------

@pytest.mark.parametrize("key,shown", [("XBT", "'XBT'"), ('"BTC "', "'BTC '"), ("ВТС", "'ВТС'"),
                                       ("btc", "'btc'"), ('"BTC\\n"', "'BTC\\n'")],
                         ids=["XBT", "trailing-space", "cyrillic", "lower-case", "newline"])
def test_mapping_for_an_unlisted_symbol_is_refused(repo: Path, key: str, shown: str) -> None:
    zp = repo / "conf/zone_profile/default.yaml"
    text = zp.read_text(encoding="utf-8")
    assert "\n  BTC: {" in text
    zp.write_text(text.replace("\n  BTC: {", f"\n  {key}: {{"), encoding="utf-8")
    err = refused(repo, "stage.duration_s=60", needle="conf/zone_profile/default.yaml")
    assert f"zone_profile.symbols.{shown}" in err and "did you mean 'BTC'?" in err, err
    assert "conf/symbols/default.yaml" in err and "allowed: BTC, ETH" in err, err


def test_lookalike_in_the_symbol_list_is_refused(repo: Path) -> None:
    sy = repo / "conf/symbols/default.yaml"
    sy.write_text(sy.read_text(encoding="utf-8").replace("symbol: XRP,", "symbol: ХRP,"), encoding="utf-8")
    refused(repo, "stage.duration_s=60", needle="symbols.ranked[2].symbol='ХRP'")


# -- ids are matched whole: a final newline is refused --------------------------------------------

def test_stage_id_from_a_block_scalar_is_refused(repo: Path) -> None:
    st = repo / "conf/stage/d92-5.yaml"
    st.write_text(st.read_text().replace("  id: d92-5\n", "  id: |\n    d92-5\n"))
    refused(repo, "stage.duration_s=60", needle="stage.id='d92-5\\n'")
    assert not (repo / "logs" / "d92-5\n").exists()


def test_run_id_from_a_block_scalar_is_refused(repo: Path) -> None:
    cf = repo / "conf/config.yaml"
    cf.write_text(cf.read_text().replace("  id: null ", "  id: |\n    x\n  #"))
    refused(repo, "stage.duration_s=60", needle="run.id='x\\n'")


def test_run_id_with_a_newline_on_the_command_line_is_refused(repo: Path) -> None:
    refused(repo, "run.id='x\n'", "stage.duration_s=60", needle="run.id=")


@pytest.mark.parametrize("value", ["x\n", "d92-5\n", "a\nb", "x\r", "x\t", "x "])
def test_check_id_matches_the_whole_id(value: str) -> None:
    with pytest.raises(RunPathError):
        check_id("run.id", value)


def test_no_pattern_in_src_is_anchored_with_dollar() -> None:
    """`re.match("...$")` accepts a final newline; validation uses fullmatch instead."""
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in sorted((REPO / "src").rglob("*.py"))
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"""re\.(compile|match)\(r?["']\^.*\$["']""", line)
                 and "_SECRET_VALUE" not in line]  # redaction: a final newline there redacts more, not less
    assert offenders == []


# -- sweeps: refused before any job runs --------------------------------------------------------------

@pytest.mark.parametrize("args,needle", [
    (("seed=1,2", "+stage.duraton_s=60"), "did you mean stage.duration_s=60?"),
    (("zone_profile=default,wdie", "stage.duration_s=60"), "did you mean zone_profile=wide?"),
    (("seed=1,2", "~stage.duration_s"), "cannot be removed"),
    (("seed=1,2", "seed=3", "stage.duration_s=60"), "given twice"),
    (("seed=1,2", "++costs.fee=1", "stage.duration_s=60"), "costs has no key 'fee'"),
    (("market=synthetic", "seed=1,2", "++market.krw_venue=upbit", "stage.duration_s=60"),
     "'krw_venue' belongs to market=live"),
])
def test_sweep_with_a_bad_override_runs_no_job(repo: Path, args: tuple[str, ...], needle: str) -> None:
    err = refused(repo, "-m", *args, needle=needle)
    assert not (repo / "logs" / "_sweeps").exists() or not any((repo / "logs" / "_sweeps").iterdir()), err


# -- in process: the general property over every key of the schemas -------------------------------

def _typos(word: str) -> list[str]:
    return [word[:-1], word + "s", word[1:] + word[0]]


PATHS = [p for p in _schema_paths() if not p.startswith("market.")] + ["market.depth_usd", "market.level_growth"]


@pytest.mark.parametrize("path", PATHS)
def test_every_schema_key_misspelt_is_refused_whatever_the_prefix(path: str) -> None:
    head, _, leaf = path.rpartition(".")
    for typo in _typos(leaf):
        key = f"{head}.{typo}" if head else typo
        if key in _schema_paths():
            continue
        for prefix in ("", "+", "++"):
            arg = f"{prefix}{key}=1"
            with pytest.raises(ConfigError) as info:
                load_config([arg], REPO)
            msg = str(info.value)
            assert "\n" not in msg and (f"no key '{typo}'" in msg or "single value" in msg), msg
            no_plus_hint(msg, arg)


HYDRA_MISSES = [  # keys Hydra itself finds missing while composing: our message, never its '+' hint
    (["zone_profile.profiles.major_advisor.soft_limit_s=5"],
     "did you mean zone_profile.profiles.major_advisory.soft_limit_s=5?"),
    (["zone_profile.symbols.XBT={strict:major_strict,advisory:major_advisory}"], "did you mean zone_profile.symbols.BTC="),
    (["zone_profile.symbols.SOL={strict:major_strict,advisory:major_advisory}"], "group's YAML file"),
    (["risk={max_notional:1}"], "did you mean risk.max_notional_usd"),
    (["costs.usdt_venue={name:b,quote:USDT,taker_fee_bps:1,maker_fee_bps:1,fee:1}"], "has no key 'fee'"),
    (["market.krw_venue=upbit"], "'krw_venue' belongs to market=live"),
    (["market=replay", "market.path=x.parquet", "market.depth_usd=1"], "'depth_usd' belongs to market=synthetic"),
]


@pytest.mark.parametrize("args,hint", HYDRA_MISSES, ids=[a[-1] for a, _ in HYDRA_MISSES])
def test_keys_missing_at_composition_get_a_hint_without_plus(args: list[str], hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(args, REPO)
    msg = str(info.value)
    assert hint in msg and "\n" not in msg, msg
    no_plus_hint(msg, args[-1])


def test_a_legal_prefix_still_works(repo: Path) -> None:
    """`++key=v` on a schema key sets it (it took effect before and still does)."""
    proc = run_cli(repo, "++seed=7", "stage.duration_s=60")
    assert proc.returncode in (0, 1), proc.stderr
    assert load_json(run_dir_of(proc, repo) / "runtime_meta.json")["status"] == "completed"
    assert yaml.safe_load((run_dir_of(proc, repo) / "config.yaml").read_text())["seed"] == 7
