"""Bad input: every bad config value, option, file, override or flag ends in one clean line.

The table holds cases tests/test_config.py and tests/test_run_cli.py do not: values at
and past their limits (nan, inf, 2**63, empty ids, wrong types), override grammar,
broken zone-profile / universe / symbol / costs / stage / root files, replay tick
files, and command-line flags. Each case is checked in process through the real loader
(and, for replay files, the market builder `execute` calls next), which is what the CLI
runs; a representative subset and the CLI-only cases run `python -m src.run` in a
subprocess (all of them with `-m slow`): exit 2, one `error:` line naming the problem,
no traceback, and no run folder at all. Hypothesis then fuzzes config values through the
loader: a value is either refused with one line naming its key, or it is within the
documented limits.
"""
from __future__ import annotations

import math
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, copy_repo, run_cli
from src.config.loader import ConfigError, load_config
from src.market.registry import build_market
from stress.helpers import assert_clean_user_error, run_folders

SUITE = "bad input"
GLOBAL = "# @package _global_\n"


@dataclass(frozen=True)
class Bad:
    id: str
    args: tuple[str, ...]
    needle: str  # must appear in the error line
    files: dict[str, str | bytes] = field(default_factory=dict)  # written into the repo copy first
    where: str = "loader"  # loader: in process and CLI; cli: only the CLI sees it (flags, execute's checks)
    replay: bool = False  # needs the replay tick files (made by the `ticks` fixture)
    sample: bool = False  # run through the CLI in the default (fast) suite too


def B(id: str, *args: str, needle: str, **kw: Any) -> Bad:
    return Bad(id, tuple(args), needle, **kw)


ZP_OK_PROFILE = ("  p:\n    zones:\n      - {lo_bps: 40, hi_bps: 70, tp_bps: 30, sl_bps: 30}\n"
                 "    soft_limit_s: 60\n    hard_limit_s: 120\n    min_loss_bps: 5\n")
FALLBACK = "fallback: {strict: p, advisory: p}\n"

CASES: list[Bad] = [
    # -- config values at and past their limits --------------------------------------
    B("seed-text", "seed=abc", needle="seed"),
    B("seed-2**63", "seed=9223372036854775808", needle="seed=9223372036854775808"),
    B("seed-null", "seed=null", needle="seed"),
    B("duration-nan", "stage.duration_s=nan", needle="stage.duration_s=nan", sample=True),
    B("duration-inf", "stage.duration_s=inf", needle="stage.duration_s=inf"),
    B("duration-minus-inf", "stage.duration_s=-inf", needle="stage.duration_s"),
    B("duration-below-one-tick", "stage.duration_s=0.5", needle="at least one tick"),
    B("duration-too-many-ticks", "stage.duration_s=1e9", "universe=top100", needle="symbol-ticks"),
    B("duration-list", "stage.duration_s=[1,2]", needle="stage.duration_s"),
    B("tick-zero", "stage.tick_s=0", needle="stage.tick_s"),
    B("mode-wrong-case", "stage.mode=STRICT", needle="stage.mode"),
    B("top-n-negative", "universe.top_n=-1", needle="universe.top_n=-1"),
    B("top-n-fraction", "universe.top_n=2.5", needle="universe.top_n"),
    B("fee-over-1000-bps", "costs.usdt_venue.taker_fee_bps=1001", needle="costs.usdt_venue.taker_fee_bps"),
    B("fee-nan", "costs.krw_venue.maker_fee_bps=nan", needle="costs.krw_venue.maker_fee_bps"),
    B("floor-negative", "costs.floor_multiplier=-0.1", needle="costs.floor_multiplier"),
    B("notional-zero", "risk.max_notional_usd=0", needle="risk.max_notional_usd"),
    B("loss-limit-negative", "risk.daily_loss_limit_usd=-1", needle="risk.daily_loss_limit_usd"),
    B("min-fill-negative", "risk.min_fill_usd=-5", needle="risk.min_fill_usd"),
    B("positions-fraction", "risk.max_open_positions=1.5", needle="risk.max_open_positions"),
    B("book-levels-zero", "market.book_levels=0", needle="market.book_levels"),
    B("book-levels-51", "market.book_levels=51", needle="market.book_levels"),
    B("depth-negative", "market.depth_usd=-1", needle="market.depth_usd"),
    B("level-growth-zero", "market.level_growth=0", needle="market.level_growth"),
    B("fx-kind-unknown", "market.fx_kind=sideways", needle="market.fx_kind"),
    B("vol-negative", "market.price_vol_annual=-0.1", needle="market.price_vol_annual"),
    B("market-unknown-key", "market.bogus_key=1", needle="bogus_key"),
    B("engine-unknown", "engine=turbo", needle="engine"),
    B("clock-unknown", "clock=sometimes", needle="clock"),
    B("run-id-empty", "run.id=", needle="run.id=''"),
    B("run-id-hidden", "run.id=.hidden", needle="run.id='.hidden'"),
    B("run-id-129-chars", "run.id=" + "a" * 129, needle="run.id="),
    B("stage-id-space", "stage.id='a b'", needle="stage.id='a b'"),
    B("overwrite-not-bool", "run.overwrite=maybe", needle="run.overwrite"),
    B("plot-symbol-unknown", "plots.symbol=NOPE", needle="plots.symbol='NOPE'", where="cli"),
    # -- acceptance rules are data: a bad one is refused, never run -----------------------
    B("rule-op-eval", "stage.acceptance.0.op=eval", needle="stage.acceptance[0].op"),
    B("rule-value-not-number", "stage.acceptance.0.value=abc", needle="needs a number"),
    B("rule-no-metrics", "stage.acceptance.0.metrics=[]", needle="at least one metric"),
    B("rule-metric-is-code", "stage.acceptance.0.metrics=[\"__import__('os').system('id')\"]",
      needle="not a dotted metric name"),
    B("rule-duplicate-id", "stage.acceptance.1.id=AC-1", needle="duplicate rule ids"),
    B("rule-under-number", "stage.acceptance.2.value=5", needle="op under needs a folder path"),
    # -- zone-profile values ---------------------------------------------------------------
    B("zone-size-frac-1.5", "zone_profile.profiles.major_advisory.zones.0.size_frac=1.5", needle="size_frac"),
    B("zone-hi-below-lo", "zone_profile.profiles.major_advisory.zones.0.hi_bps=30", needle="zones[0].hi_bps"),
    B("zone-soft-limit-negative", "zone_profile.profiles.major_advisory.soft_limit_s=-1", needle="soft_limit_s"),
    B("zone-min-loss-negative", "zone_profile.profiles.major_advisory.min_loss_bps=-1", needle="min_loss_bps"),
    B("zone-no-zones", "zone_profile.profiles.major_advisory.zones=[]", needle="at least one zone"),
    B("zone-fallback-ghost", "zone_profile.fallback.strict=ghost", needle="'ghost'"),
    # -- symbol list values -----------------------------------------------------------------
    B("symbol-price-zero", "symbols.ranked.0.usd_price=0", needle="usd_price"),
    B("symbol-duplicate", "symbols.ranked.1.symbol=BTC", needle="duplicate symbols ['BTC']"),
    # -- group options and override grammar ----------------------------------------------------
    B("market-option-unknown", "market=nope", needle="market/nope"),
    B("costs-option-unknown", "costs=nope", needle="costs/nope"),
    B("zone-option-unknown", "zone_profile=nope", needle="zone_profile/nope"),
    B("symbols-option-unknown", "symbols=nope", needle="symbols/nope"),
    B("stage-option-empty", "stage=", needle="stage/"),
    B("override-no-equals", "seed", needle="seed"),
    B("override-no-key", "=5", needle="override"),
    B("append-existing-key", "+seed=1", needle="seed"),
    B("delete-stage", "~stage", needle="stage"),
    B("sweep-without-m", "seed=1,2", needle="--multirun"),
    # -- overrides that would have no effect (tests/test_overrides.py has the CLI cases) -------
    B("append-unknown-key", "+costs.fee=1", needle="costs has no key 'fee'", sample=True),
    B("force-add-unknown-nested-key", "++zone_profile.profiles.alt_strict.zones.0.tp=1", needle="tp_bps"),
    B("force-add-key-of-another-market", "++market.krw_venue=upbit", needle="market=synthetic"),
    B("typo-group-name", "zone_profle=wide", needle="did you mean zone_profile=wide?"),
    B("delete-required-key", "~seed", needle="cannot be removed", sample=True),
    B("delete-list-item", "~stage.acceptance.0", needle="cannot be removed"),
    B("same-key-twice", "seed=1", "seed=2", needle="given twice"),
    B("hydra-setting-single-run", "hydra.run.dir=/tmp/x", needle="sweeps only"),
    B("run-id-final-newline", "run.id='x\n'", needle="run.id="),
    B("zp-file-mapping-not-a-symbol", "zone_profile=bad_xbt", needle="did you mean 'BTC'?",
      files={"conf/zone_profile/bad_xbt.yaml": "name: x\nprofiles:\n" + ZP_OK_PROFILE
             + "symbols:\n  XBT: {strict: p, advisory: p}\n" + FALLBACK}),
    B("env-interpolation-unset", "seed=${oc.env:STRESS_SURELY_UNSET_VAR}", needle="STRESS_SURELY_UNSET_VAR"),
    B("interpolation-to-nowhere", "stage.duration_s=${nonexistent.key}", needle="nonexistent.key"),
    B("replay-without-path", "market=replay", needle="market.path"),
    B("replay-empty-path", "market=replay", "market.path=''", needle="market.path"),
    B("live-without-realtime-clock", "market=live", needle="clock=realtime"),
    # -- command-line flags ------------------------------------------------------------------
    B("flag-short-unknown", "-x", needle="unrecognized arguments: -x", where="cli"),
    B("flag-hydra-cfg", "--cfg", "jobs", needle="invalid choice: 'jobs'", where="cli", sample=True),  # --cfg job is Hydra's
    B("flag-config-dir", "--config-dir=/tmp", needle="--config-dir", where="cli"),
    B("sweep-option-unknown", "-m", "universe=top10,top7", needle="universe/top7", where="cli"),
    # -- zone-profile files ----------------------------------------------------------------
    B("zp-file-tab-indent", "zone_profile=bad_tab", needle="bad_tab.yaml",
      files={"conf/zone_profile/bad_tab.yaml": "name: t\n\tprofiles: {}\n"}),
    B("zp-file-unknown-key", "zone_profile=bad_key", needle="zonez",
      files={"conf/zone_profile/bad_key.yaml": "name: k\nprofiles:\n  p:\n    zonez: []\n"}),
    B("zp-file-string-tp", "zone_profile=bad_tp", needle="tp_bps",
      files={"conf/zone_profile/bad_tp.yaml": "name: s\nprofiles:\n  p:\n    zones:\n"
             "      - {lo_bps: 40, hi_bps: 70, tp_bps: abc, sl_bps: 30}\n"
             "    soft_limit_s: 60\n    hard_limit_s: 120\n    min_loss_bps: 5\n" + FALLBACK}),
    B("zp-file-empty", "zone_profile=bad_empty", needle="zone_profile.name",
      files={"conf/zone_profile/bad_empty.yaml": ""}),
    B("zp-file-top-level-list", "zone_profile=bad_list", needle="ZoneProfileConfig",
      files={"conf/zone_profile/bad_list.yaml": "- a\n- b\n"}),
    B("zp-file-duplicate-key", "zone_profile=bad_dup", needle="duplicate key name",
      files={"conf/zone_profile/bad_dup.yaml": "name: a\nname: b\nprofiles:\n" + ZP_OK_PROFILE + FALLBACK}),
    B("zp-file-not-utf8", "zone_profile=bad_bytes", needle="bad_bytes.yaml", sample=True,
      files={"conf/zone_profile/bad_bytes.yaml": b"name: \xff\xfe\nprofiles: {}\n"}),
    B("zp-file-bands-reversed", "zone_profile=bad_order", needle="must be ordered",
      files={"conf/zone_profile/bad_order.yaml": "name: o\nprofiles:\n  p:\n    zones:\n"
             "      - {lo_bps: 70, hi_bps: 90, tp_bps: 30, sl_bps: 30}\n"
             "      - {lo_bps: 40, hi_bps: 60, tp_bps: 30, sl_bps: 30}\n"
             "    soft_limit_s: 60\n    hard_limit_s: 120\n    min_loss_bps: 5\n" + FALLBACK}),
    B("zp-file-no-profiles", "zone_profile=bad_none", needle="at least one profile",
      files={"conf/zone_profile/bad_none.yaml": "name: n\nprofiles: {}\n" + FALLBACK}),
    B("zp-file-zones-missing", "zone_profile=bad_nozones", needle="zones",
      files={"conf/zone_profile/bad_nozones.yaml": "name: z\nprofiles:\n  p:\n    soft_limit_s: 60\n"
             "    hard_limit_s: 120\n    min_loss_bps: 5\n" + FALLBACK}),
    B("zp-file-unmapped-no-fallback", "zone_profile=bad_unmapped", needle="no mapping",
      files={"conf/zone_profile/bad_unmapped.yaml": "name: u\nprofiles:\n" + ZP_OK_PROFILE
             + "symbols:\n  BTC: {strict: p, advisory: p}\n"}),
    # -- universe and symbol-list files -------------------------------------------------------
    B("universe-file-top-n-text", "universe=bad_text", needle="top_n",
      files={"conf/universe/bad_text.yaml": "name: bad_text\ntop_n: ten\n"}),
    B("universe-file-no-top-n", "universe=bad_missing", needle="top_n",
      files={"conf/universe/bad_missing.yaml": "name: bad_missing\n"}),
    B("universe-file-top-500", "universe=bad_500", needle="universe.top_n=500",
      files={"conf/universe/bad_500.yaml": "name: bad_500\ntop_n: 500\n"}),
    B("symbols-file-duplicates", "symbols=bad_dup", needle="duplicate symbols",
      files={"conf/symbols/bad_dup.yaml": "name: d\nranked:\n" + "".join(
          f"  - {{symbol: {s}, usd_price: 1}}\n" for s in ["BTC", "ETH", "BTC", *"ABCDEFGHIJ"])}),
    B("symbols-file-empty-list", "symbols=bad_emptylist", needle="universe.top_n=10",
      files={"conf/symbols/bad_emptylist.yaml": "name: e\nranked: []\n"}),
    B("symbols-file-negative-price", "symbols=bad_price", needle="usd_price",
      files={"conf/symbols/bad_price.yaml": "name: p\nranked:\n" + "".join(
          f"  - {{symbol: S{i}, usd_price: {-1 if i == 3 else 1}}}\n" for i in range(12))}),
    B("symbols-file-missing-price", "symbols=bad_noprice", needle="usd_price",
      files={"conf/symbols/bad_noprice.yaml": "name: m\nranked:\n  - {symbol: BTC}\n"}),
    B("symbols-file-unknown-key", "symbols=bad_extra", needle="volume",
      files={"conf/symbols/bad_extra.yaml": "name: x\nranked:\n  - {symbol: BTC, usd_price: 1, volume: 5}\n"}),
    B("symbols-file-not-a-list", "symbols=bad_scalar", needle="ranked",
      files={"conf/symbols/bad_scalar.yaml": "name: s\nranked: BTC\n"}),
    # -- costs, stage and root files -------------------------------------------------------------
    B("costs-file-no-krw-venue", "costs=bad_half", needle="krw_venue",
      files={"conf/costs/bad_half.yaml": "name: h\nusdt_venue: {name: binance, quote: USDT, taker_fee_bps: 10, "
             "maker_fee_bps: 10}\n"}),
    B("costs-file-fee-text", "costs=bad_fee", needle="taker_fee_bps",
      files={"conf/costs/bad_fee.yaml": "name: f\nusdt_venue: {name: b, quote: USDT, taker_fee_bps: ten, "
             "maker_fee_bps: 10}\nkrw_venue: {name: u, quote: KRW, taker_fee_bps: 5, maker_fee_bps: 5}\n"}),
    B("stage-file-no-id", "stage=bad_noid", needle="stage.id",
      files={"conf/stage/bad_noid.yaml": GLOBAL + "stage:\n  duration_s: 60\n  mode: advisory\n"}),
    B("stage-file-op-is-code", "stage=bad_op", needle="op",
      files={"conf/stage/bad_op.yaml": GLOBAL + "defaults:\n  - d92-5\n  - _self_\nstage:\n  id: bad_op\n"
             "  acceptance:\n    - {id: X, metrics: [kpi.round_trips], op: \"__import__('os').system('id')\"}\n"}),
    B("stage-file-unknown-key", "stage=bad_typo", needle="durration_s",
      files={"conf/stage/bad_typo.yaml": GLOBAL + "defaults:\n  - d92-5\n  - _self_\nstage:\n  durration_s: 5\n"}),
    B("stage-file-typo-has-a-hint", "stage=bad_typo", needle="did you mean stage.duration_s?",
      files={"conf/stage/bad_typo.yaml": GLOBAL + "defaults:\n  - d92-5\n  - _self_\nstage:\n  durration_s: 5\n"}),
    B("stage-file-root-typo-has-a-hint", "stage=bad_rootkey", needle="did you mean zone_profile?",
      files={"conf/stage/bad_rootkey.yaml": GLOBAL + "defaults:\n  - d92-5\n  - _self_\nzone_profle: wide\n"}),
    B("root-config-malformed", needle="config.yaml",
      files={"conf/config.yaml": "defaults:\n  - root_schema\n  - symbols: [default\n"}),
    B("root-config-unknown-option", needle="costs/nope",
      files={"conf/config.yaml": (REPO / "conf/config.yaml").read_text().replace("costs: default", "costs: nope")}),
    # -- replay tick files (the `ticks` fixture writes them) ----------------------------------------
    B("replay-file-missing", "market=replay", "market.path=data/nowhere.parquet", needle="no such file", replay=True),
    B("replay-file-not-parquet", "market=replay", "market.path=data/text.parquet", needle="not a readable Parquet",
      replay=True, sample=True),
    B("replay-file-truncated", "market=replay", "market.path=data/truncated.parquet",
      needle="data/truncated.parquet", replay=True),
    B("replay-file-no-fx-column", "market=replay", "market.path=data/nofx.parquet", needle="missing column(s) fx",
      replay=True),
    B("replay-file-t-as-text", "market=replay", "market.path=data/ttext.parquet", needle="column 't_s'", replay=True),
    B("replay-file-other-tick", "market=replay", "market.path=data/good.parquet", "stage.tick_s=2",
      needle="tick_s", replay=True),
    B("replay-file-no-rows", "market=replay", "market.path=data/empty.parquet", needle="no ticks", replay=True),
    B("replay-file-crossed-book", "market=replay", "market.path=data/crossed.parquet", needle="crossed book",
      replay=True),
    B("replay-file-unsorted", "market=replay", "market.path=data/unsorted.parquet", needle="sorted by t_s",
      replay=True),
    B("replay-file-wider-universe", "market=replay", "market.path=data/good.parquet", "universe=top20",
      needle="XLM", replay=True),
    B("replay-file-no-book-meta", "market=replay", "market.path=data/nometa.parquet", needle="book metadata",
      replay=True),
]


def _write_files(repo: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)


def make_ticks(repo: Path) -> None:
    """A valid 60-tick top-10 file and its broken variants, under <repo>/data/."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from src.market.export import export

    data = repo / "data"
    data.mkdir(exist_ok=True)
    cfg = load_config(["stage.duration_s=60"], repo).cfg
    market = build_market(cfg.market, cfg.symbols.ranked[:10], cfg.seed, 60, 1.0, repo)
    export(market, data / "good.parquet", 1.0, {"usdt": "synthetic:binance", "krw": "synthetic:upbit"})
    meta = {k: v for k, v in pq.ParquetFile(data / "good.parquet").metadata.metadata.items()
            if not k.startswith(b"ARROW:")}  # our key-value metadata: tick_s, book depth model
    good = pq.read_table(data / "good.parquet").replace_schema_metadata(meta)

    def write(name: str, table: Any) -> None:
        pq.write_table(table, data / name)

    (data / "text.parquet").write_text("t_s,symbol\n0,BTC\n")
    raw = (data / "good.parquet").read_bytes()
    (data / "truncated.parquet").write_bytes(raw[: len(raw) // 2])
    write("nofx.parquet", good.drop(["fx"]))
    write("ttext.parquet", good.set_column(0, "t_s", pc.cast(good["t_s"], pa.string())))
    write("empty.parquet", good.slice(0, 0))
    bid = good["bid"].to_pylist()
    bid[3] = good["ask"][3].as_py() * 2
    write("crossed.parquet", good.set_column(good.schema.get_field_index("bid"), "bid", pa.array(bid)))
    write("unsorted.parquet", good.take(pa.array(range(good.num_rows - 1, -1, -1))))
    write("nometa.parquet", good.replace_schema_metadata(None))


@pytest.fixture(scope="module")
def bad_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repo copy holding every case's new files (cases that replace a file get their own)."""
    repo = copy_repo(tmp_path_factory.mktemp("bad") / "repo")
    for case in CASES:
        if not _replaces_a_file(case):
            _write_files(repo, case.files)
    make_ticks(repo)
    return repo


def _replaces_a_file(case: Bad) -> bool:
    return any((REPO / rel).exists() for rel in case.files)


def _load_and_build(args: tuple[str, ...], repo: Path) -> None:
    """What `python -m src.run` does before it claims a run folder: load, then build the market."""
    loaded = load_config(list(args), repo)
    cfg = loaded.cfg
    n_ticks = int(cfg.stage.duration_s / cfg.stage.tick_s + 1e-9)
    build_market(cfg.market, cfg.symbols.ranked[: cfg.universe.top_n], cfg.seed, n_ticks, cfg.stage.tick_s, repo)


IN_PROCESS = [c for c in CASES if c.where == "loader"]
# The default suite loads every third case in process (and the replay files); -m slow loads the rest.
IN_PROCESS_PARAMS = [pytest.param(c, id=c.id, marks=[] if i % 3 == 0 or c.replay else [pytest.mark.slow])
                     for i, c in enumerate(IN_PROCESS)]


@pytest.mark.parametrize("case", IN_PROCESS_PARAMS)
def test_bad_input_in_process(case: Bad, bad_repo: Path, tmp_path: Path, figures) -> None:
    figures.add(SUITE, "tried")
    repo = bad_repo
    if _replaces_a_file(case):
        repo = copy_repo(tmp_path / "repo")
        _write_files(repo, case.files)
    with pytest.raises(ValueError) as info:  # ConfigError, or the market's ReplayError (both ValueError)
        _load_and_build(case.args, repo)
    msg = str(info.value)
    assert isinstance(info.value, ConfigError) or case.replay, (type(info.value), msg)
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    assert case.needle in msg, (case.needle, msg)
    figures.add(SUITE, "rejected cleanly")


CLI_ONLY_FAST = ("plot-symbol-unknown", "flag-hydra-cfg", "sweep-option-unknown")


def _cli_case(case: Bad, root: Path, bad_repo: Path) -> None:
    repo = copy_repo(root)
    _write_files(repo, case.files)
    if case.replay:
        shutil.copytree(bad_repo / "data", repo / "data")
    proc = run_cli(repo, *case.args)
    assert_clean_user_error(proc, 2, case.needle)
    left = sorted(p.relative_to(repo).as_posix() for p in (repo / "logs").rglob("*"))
    left = [p for p in left if p != "logs/_sweeps"]  # the sweeps' parent folder may stay, empty
    assert run_folders(repo) == [] and left == [], f"{case.id}: left {left}"


FAST_CLI = [c for c in CASES if c.sample or (c.where == "cli" and c.id in CLI_ONLY_FAST)]


@pytest.mark.parametrize("case", FAST_CLI, ids=[c.id for c in FAST_CLI])
def test_bad_input_cli_subset(case: Bad, bad_repo: Path, tmp_path: Path, figures) -> None:
    figures.add(SUITE, "tried through the CLI")
    _cli_case(case, tmp_path / "repo", bad_repo)
    figures.add(SUITE, "CLI: exit 2, one line, no folder")


@pytest.mark.slow
def test_every_bad_input_through_the_cli(bad_repo: Path, tmp_path: Path, figures) -> None:
    """All the table through `python -m src.run`, two at a time (the machine has two cores)."""
    rest = [c for c in CASES if c not in FAST_CLI]
    failures: list[str] = []

    def one(i_case: tuple[int, Bad]) -> None:
        i, case = i_case
        try:
            _cli_case(case, tmp_path / f"r{i}", bad_repo)
        except AssertionError as exc:
            failures.append(f"{case.id}: {exc}")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, enumerate(rest)))
    figures.add(SUITE, "tried through the CLI", len(rest))
    figures.add(SUITE, "CLI: exit 2, one line, no folder", len(rest) - len(failures))
    assert not failures, "\n".join(failures)


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


# -- property-based fuzzing of config values through the real loader ---------------------------

def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# key -> what must hold of its typed value whenever the loader accepts it (the rest of the
# config at its defaults: stage d92-5, 600 s at 1 s ticks, top-10, default zone profile)
LIMITS: dict[str, Callable[[Any], bool]] = {
    "seed": lambda v: _int(v) and 0 <= v < 2**63,
    "stage.duration_s": lambda v: _finite(v) and 1.0 <= v and int(v) * 10 <= 50_000_000,
    "stage.tick_s": lambda v: _finite(v) and 0 < v <= 600.0,
    "universe.top_n": lambda v: _int(v) and 1 <= v <= 100,
    "costs.usdt_venue.taker_fee_bps": lambda v: _finite(v) and 0 <= v <= 1000,
    "costs.krw_venue.maker_fee_bps": lambda v: _finite(v) and 0 <= v <= 1000,
    "costs.floor_multiplier": lambda v: _finite(v) and v >= 0,
    "risk.max_notional_usd": lambda v: _finite(v) and v > 0,
    "risk.max_open_positions": lambda v: _int(v) and v >= 1,
    "risk.daily_loss_limit_usd": lambda v: _finite(v) and v > 0,
    "risk.min_fill_usd": lambda v: _finite(v) and v >= 0,
    "market.fx_krw_per_usd": lambda v: _finite(v) and v > 0,
    "market.book_levels": lambda v: _int(v) and 1 <= v <= 50,
    "market.premium_half_life_s": lambda v: _finite(v) and v > 0,
    "market.depth_noise": lambda v: _finite(v) and v >= 0,
    "zone_profile.profiles.major_advisory.zones.0.size_frac": lambda v: _finite(v) and 0 < v <= 1,
    "zone_profile.profiles.major_advisory.zones.0.tp_bps": lambda v: _finite(v) and v > 0,
    "zone_profile.profiles.major_advisory.zones.1.lo_bps": lambda v: _finite(v) and 70 <= v < 120,
    "zone_profile.profiles.major_advisory.soft_limit_s": lambda v: _finite(v) and 0 <= v <= 300,
    "stage.mode": lambda v: getattr(v, "value", None) in ("strict", "advisory"),
    "run.id": lambda v: v is None or (isinstance(v, str) and bool(ID_RE.fullmatch(v)) and ".." not in v),
}


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "null", "[]", "{}", "[1,2]", "${seed}", "${oc.env:HOME}", "''", "' '",
                     "1_000", "0x10", "1e400", "-0.0", "5%", "../x", "a/b", "..", "~", "$"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12).map(_quote),
    st.text("abcXYZ019 ._-/=,[]{}()$:'\"\\~+*%", min_size=1, max_size=12),
)


def _typed(cfg: Any, dotted: str) -> Any:
    cur = cfg
    for part in dotted.split("."):
        cur = cur[int(part)] if part.isdigit() else (cur[part] if isinstance(cur, dict) else getattr(cur, part))
    return cur


def _check_value(key: str, value: str, figures) -> None:
    figures.add("config fuzzing", "values tried")
    try:
        loaded = load_config([f"{key}={value}"], REPO)
    except ConfigError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg, msg
        leaf = key.rsplit(".", 1)[-1]
        parent = re.sub(r"\.(\d+)", r"[\1]", key.rsplit(".", 1)[0])  # a zone's other bound may be named
        assert leaf in msg or parent in msg or "override" in msg.lower(), (key, value, msg)
        figures.add("config fuzzing", "refused with one line naming the key")
        return
    got = _typed(loaded.cfg, key)
    assert LIMITS[key](got), f"{key}={value} was accepted as {got!r}, outside its documented limits"
    figures.add("config fuzzing", "accepted within limits")


def _fuzz(max_examples: int):
    @settings(max_examples=max_examples, deadline=None, derandomize=max_examples < 50,  # CI-stable default
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(key=st.sampled_from(sorted(LIMITS)), value=VALUES)
    def check(key: str, value: str, figures) -> None:
        _check_value(key, value, figures)
    return check


def test_fuzz_config_values(figures) -> None:
    _fuzz(12)(figures=figures)


@pytest.mark.slow
def test_fuzz_config_values_long(figures) -> None:
    _fuzz(150)(figures=figures)
