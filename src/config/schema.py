"""Typed schemas of every config group.

Plain dataclasses: Hydra validates types and unknown keys against them at composition
(see `loader.py`, which registers them in the ConfigStore), `validate.py` checks the
values, and the engine receives these objects, never a DictConfig.
Units are in the field names: `_bps` basis points, `_s` simulated seconds, `_usd` US
dollars (USDT is treated as 1 USD), `_krw` Korean won.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, List, Optional, Dict

MISSING: Any = "???"  # OmegaConf's marker for a required value
GROUPS = ("stage", "symbols", "universe", "zone_profile", "market", "costs")  # the config groups of conf/


class Mode(str, Enum):
    strict = "strict"
    advisory = "advisory"


class FxKind(str, Enum):
    fixed = "fixed"
    walk = "walk"


class ClockKind(str, Enum):
    simulated = "simulated"  # ticks as fast as the engine goes (a 10-minute smoke takes a second)
    realtime = "realtime"  # one tick per stage.tick_s of wall time: live data, paced replay


class LiveFxKind(str, Enum):
    fixed = "fixed"  # market.fx_krw_per_usd
    venue = "venue"  # mid of market.fx_symbol (e.g. USDT/KRW) on market.fx_venue, as a proxy


class Engine(str, Enum):
    auto = "auto"  # kernel from AUTO_KERNEL_MIN_SYMBOL_TICKS up (its ~0.3 s load pays back), else reference
    kernel = "kernel"  # src/engine/kernel.py: compiled (Numba), proven equal to the reference
    fast = "fast"  # the former default's name, kept so existing command lines work: runs the kernel
    reference = "reference"  # src/engine/loop.py: the plain per-tick, per-symbol loop


class Op(str, Enum):
    ge = "ge"
    gt = "gt"
    le = "le"
    lt = "lt"
    eq = "eq"
    ne = "ne"
    present = "present"
    under = "under"
    is_true = "is_true"


@dataclass
class RunSection:
    id: Optional[str] = None  # None: an ad-hoc id is generated
    overwrite: bool = False  # a pinned id may replace its earlier run folder
    dvc_namespace: Optional[str] = None  # nest params.yaml and metrics.json under this key (None: top level)
    note: Optional[str] = None  # a note on the run (python -m src.runs list shows it); outside the fingerprint


@dataclass
class AcceptanceRule:
    id: str = MISSING
    description: str = ""
    metrics: List[str] = MISSING  # dotted metric names; the rule holds for all of them
    op: Op = MISSING
    value: Optional[Any] = None


@dataclass
class StageConfig:
    id: str = MISSING
    description: str = ""
    duration_s: float = MISSING  # simulated seconds
    tick_s: float = 1.0  # loop interval in simulated seconds
    mode: Mode = MISSING  # which zone profile of each symbol applies
    acceptance: List[AcceptanceRule] = field(default_factory=list)
    # The optional profitability gate PNL-1 (src/config/profit_gate.py): null = off; a number X
    # adds the rule kpi.total_pnl_krw > X (0: the run must make money).
    profit_gate_krw: Optional[float] = None

    @property
    def n_ticks(self) -> int:
        """Ticks in the session: whole ticks of tick_s that fit in duration_s."""
        return int(self.duration_s / self.tick_s + 1e-9)


@dataclass
class SymbolSpec:
    symbol: str = MISSING
    usd_price: float = MISSING  # starting USD reference price


@dataclass
class SymbolsConfig:
    name: str = MISSING
    ranked: List[SymbolSpec] = MISSING  # by traded volume, highest first


@dataclass
class UniverseConfig:
    name: str = MISSING
    top_n: int = MISSING


@dataclass
class Zone:
    lo_bps: float = MISSING  # band of the executable entry spread, [lo, hi)
    hi_bps: float = MISSING
    tp_bps: float = MISSING  # take profit: spread converged by this much
    sl_bps: float = MISSING  # stop loss: spread widened by this much
    size_frac: float = 1.0  # share of risk.max_notional_usd


@dataclass
class Profile:
    zones: List[Zone] = MISSING
    soft_limit_s: float = MISSING  # after this, exit once the loss is within min_loss_bps
    hard_limit_s: float = MISSING  # at this, exit regardless
    min_loss_bps: float = MISSING


@dataclass
class SymbolMapping:
    strict: str = MISSING
    advisory: str = MISSING


@dataclass
class ZoneProfileConfig:
    name: str = MISSING
    profiles: Dict[str, Profile] = MISSING
    symbols: Dict[str, SymbolMapping] = field(default_factory=dict)
    fallback: Optional[SymbolMapping] = None


@dataclass
class SyntheticMarketConfig:
    kind: str = "synthetic"
    fx_kind: FxKind = FxKind.fixed
    fx_krw_per_usd: float = MISSING
    fx_vol_bps_per_sqrt_s: float = 0.0  # only for fx_kind=walk
    price_vol_annual: float = MISSING  # GBM volatility of the USD reference price
    premium_mean_max_bps: float = MISSING  # per-symbol mean premium drawn in [-x/4, x]
    premium_sd_bps: float = MISSING  # stationary sd of the mean-reverting premium
    premium_half_life_s: float = MISSING
    jump_rate_per_hour: float = MISSING
    jump_sd_bps: float = MISSING
    usdt_half_spread_bps: float = MISSING  # rank-1 symbol; grows with rank
    krw_half_spread_bps: float = MISSING
    half_spread_rank_exp: float = MISSING
    depth_usd: float = MISSING  # top-of-book depth per side for the rank-1 symbol
    depth_rank_exp: float = MISSING  # depth shrinks as rank**-exp
    depth_noise: float = MISSING  # lognormal sd of the top depth per tick
    book_levels: int = 5
    level_step_bps: float = MISSING  # price distance between book levels
    level_growth: float = MISSING  # size of level i = top size * growth**i


@dataclass
class ReplayMarketConfig:
    """Replay of a recorded tick table (Parquet; the schema is in src/market/ticks.py)."""

    kind: str = "replay"
    path: str = MISSING  # the Parquet file; a relative path is taken from the repo root
    # Depth assumed beyond the top of book (see SyntheticMarketConfig); null: the file's own
    # (recordings and exports carry it in their metadata).
    book_levels: Optional[int] = None
    level_step_bps: Optional[float] = None
    level_growth: Optional[float] = None


@dataclass
class LiveMarketConfig:
    """Public top-of-book quotes polled through ccxt in real time. Paper only: no keys, no orders."""

    kind: str = "live"
    krw_venue: str = MISSING  # ccxt exchange id quoting <coin>/KRW, e.g. upbit
    usdt_venue: str = MISSING  # ccxt exchange id quoting <coin>/USDT, e.g. binance
    fx_kind: LiveFxKind = MISSING
    fx_krw_per_usd: float = MISSING  # fx_kind=fixed
    fx_venue: str = MISSING  # fx_kind=venue: the venue whose fx_symbol book gives KRW per USD(T)
    fx_symbol: str = "USDT/KRW"
    max_quote_age_s: float = MISSING  # an older quote is not traded on (the symbol sits the tick out)
    timeout_s: float = MISSING  # per request
    backoff_base_s: float = MISSING  # after n failures in a row a venue rests base * 2**(n-1) s
    backoff_max_s: float = MISSING
    rate_limit: bool = True  # ccxt's own rate limiter (enableRateLimit); off only for a local test server
    api_urls: Dict[str, str] = field(default_factory=dict)  # exchange id -> stand-in base URL (tests)
    record: bool = True  # write every quote used to quotes.parquet in the run folder
    book_levels: int = MISSING  # depth assumed beyond the top of book, as in the synthetic market
    level_step_bps: float = MISSING
    level_growth: float = MISSING


@dataclass
class VenueCosts:
    name: str = MISSING
    quote: str = MISSING
    taker_fee_bps: float = MISSING
    maker_fee_bps: float = MISSING


@dataclass
class CostsConfig:
    name: str = MISSING
    usdt_venue: VenueCosts = MISSING
    krw_venue: VenueCosts = MISSING
    floor_multiplier: float = 1.0  # entry spread must be >= this x round-trip cost


@dataclass
class RiskConfig:
    max_notional_usd: float = MISSING
    max_open_positions: int = MISSING
    daily_loss_limit_usd: float = MISSING  # kill switch: no new entries past this loss
    min_fill_usd: float = MISSING  # a partial fill smaller than this is not taken


@dataclass
class PlotsConfig:
    symbol: Optional[str] = None  # symbol of the spread plot; None: the universe's first


@dataclass
class RootConfig:
    seed: int = MISSING
    run: RunSection = field(default_factory=RunSection)
    stage: StageConfig = MISSING
    symbols: SymbolsConfig = MISSING
    universe: UniverseConfig = MISSING
    zone_profile: ZoneProfileConfig = MISSING
    market: Any = MISSING  # schema chosen by the market option (market_<kind>_schema)
    costs: CostsConfig = MISSING
    risk: RiskConfig = MISSING
    engine: Engine = Engine.auto  # how to compute, not what: excluded from the fingerprint
    clock: ClockKind = ClockKind.simulated  # realtime: paced by the wall clock, with a progress bar
    plots: PlotsConfig = field(default_factory=PlotsConfig)

    @property
    def universe_specs(self) -> list[SymbolSpec]:
        """The run's symbols: the first universe.top_n of the ranked list, rank 1 first."""
        return self.symbols.ranked[: self.universe.top_n]


# Named base configs outside every config group: conf/config.yaml extends `root_schema`,
# conf/market/<kind>.yaml extends `/market_<kind>_schema@_here_`. Hydra type-checks each
# file against its dataclass (a wrong type or unknown key fails at composition with the
# key's path), while `market=` and `--help` offer only the YAML options.
SCHEMAS: Dict[str, type] = {
    "root_schema": RootConfig,
    "market_synthetic_schema": SyntheticMarketConfig,
    "market_replay_schema": ReplayMarketConfig,
    "market_live_schema": LiveMarketConfig,
}


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore (storing the same node again is harmless)."""
    from hydra.core.config_store import ConfigStore  # lazy: the engine imports this module

    cs = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        cs.store(name=name, node=node)
