"""Value checks Hydra's type checks cannot make; each problem names its key and what is allowed."""
from __future__ import annotations

import difflib
import math
import re
import unicodedata
from typing import Any

from src.config.schema import (ClockKind, LiveFxKind, LiveMarketConfig, Op, ReplayMarketConfig, RootConfig,
                               SyntheticMarketConfig, ZoneProfileConfig)
from src.runs.paths import valid_id

# Stage and run ids: src/runs/paths.py. Patterns are applied with fullmatch: `re.match("...$")` accepts a final newline ("d92-5\n").
_SYMBOL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_METRIC_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
_NAMESPACE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
MAX_TICKS = 50_000_000  # 100 symbols x 24 h at 1 s is 8.64 M symbol-ticks


def _num(problems: list[str], key: str, value: float, *, lo: float | None = None,
         hi: float | None = None, lo_open: bool = False) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        problems.append(f"{key}={value!r}: must be a finite number")
        return
    if lo is not None and (value <= lo if lo_open else value < lo):
        problems.append(f"{key}={value!r}: must be {'>' if lo_open else '>='} {lo:g}")
    if hi is not None and value > hi:
        problems.append(f"{key}={value!r}: must be <= {hi:g}")


def validate(cfg: RootConfig, zone_profile_file: str = "the zone-profile file") -> list[str]:
    """Return every problem found (empty when the config is usable)."""
    p: list[str] = []
    if cfg.seed < 0 or cfg.seed >= 2**63:
        p.append(f"seed={cfg.seed}: must be an integer in [0, 2**63)")
    for key, value in (("stage.id", cfg.stage.id), ("run.id", cfg.run.id)):
        if value is not None and not valid_id(str(value)):
            p.append(f"{key}={value!r}: must be 1-128 letters, digits, '.', '_' or '-' "
                     "starting with a letter or digit, without '..' or '/' (it names a folder under logs/)")
    ns = cfg.run.dvc_namespace
    if ns is not None and not _NAMESPACE_RE.fullmatch(str(ns)):
        p.append(f"run.dvc_namespace={ns!r}: must be 1-64 letters, digits, '_' or '-' starting with a letter "
                 "(one key: DVC joins nested keys with '.')")
    st = cfg.stage
    _num(p, "stage.duration_s", st.duration_s, lo=0, lo_open=True)
    _num(p, "stage.tick_s", st.tick_s, lo=0, lo_open=True)
    if not p and st.duration_s < st.tick_s:
        p.append(f"stage.duration_s={st.duration_s!r}: must be at least one tick (stage.tick_s={st.tick_s!r})")
    _check_acceptance(p, cfg)

    names = [s.symbol for s in cfg.symbols.ranked]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        p.append(f"symbols.ranked: duplicate symbols {dup}")
    for i, s in enumerate(cfg.symbols.ranked):
        if not _SYMBOL_RE.fullmatch(s.symbol):
            p.append(f"symbols.ranked[{i}].symbol={s.symbol!r}: must be 1-32 ASCII letters, digits, '.', '_' "
                     "or '-' (a ticker like BTC)")
        _num(p, f"symbols.ranked[{i}].usd_price ({s.symbol})", s.usd_price, lo=0, lo_open=True)
    if cfg.universe.top_n < 1 or cfg.universe.top_n > len(names):
        p.append(f"universe.top_n={cfg.universe.top_n}: must be between 1 and {len(names)}, "
                 f"the length of symbols.ranked ({cfg.symbols.name})")
    universe = names[: max(cfg.universe.top_n, 0)]

    _check_zone_profile(p, cfg.zone_profile, universe)
    _check_mapped_symbols(p, cfg.zone_profile, names, zone_profile_file, f"conf/symbols/{cfg.symbols.name}.yaml")
    if isinstance(cfg.market, SyntheticMarketConfig):
        _check_synthetic(p, cfg.market)
    elif isinstance(cfg.market, ReplayMarketConfig):
        _check_replay(p, cfg.market)
    elif isinstance(cfg.market, LiveMarketConfig):
        _check_live(p, cfg.market, cfg.clock)

    for venue in ("usdt_venue", "krw_venue"):
        v = getattr(cfg.costs, venue)
        for fee in ("taker_fee_bps", "maker_fee_bps"):
            _num(p, f"costs.{venue}.{fee}", getattr(v, fee), lo=0, hi=1000)
    _num(p, "costs.floor_multiplier", cfg.costs.floor_multiplier, lo=0)

    r = cfg.risk
    _num(p, "risk.max_notional_usd", r.max_notional_usd, lo=0, lo_open=True)
    if r.max_open_positions < 1:
        p.append(f"risk.max_open_positions={r.max_open_positions}: must be >= 1")
    _num(p, "risk.daily_loss_limit_usd", r.daily_loss_limit_usd, lo=0, lo_open=True)
    _num(p, "risk.min_fill_usd", r.min_fill_usd, lo=0)
    if not p:
        ticks = int(st.duration_s / st.tick_s) * len(universe)
        if ticks > MAX_TICKS:
            p.append(f"stage.duration_s={st.duration_s!r} with {len(universe)} symbols is {ticks} "
                     f"symbol-ticks: at most {MAX_TICKS} per run")
    return p


def _check_acceptance(p: list[str], cfg: RootConfig) -> None:
    ids = [r.id for r in cfg.stage.acceptance]
    gate = cfg.stage.profit_gate_krw
    if gate is not None:
        _num(p, "stage.profit_gate_krw", gate)
        if "PNL-1" in ids:
            p.append("stage.profit_gate_krw: adds rule PNL-1, but stage.acceptance already has a rule with id PNL-1 "
                     "(rename that rule, or leave stage.profit_gate_krw null)")
    if len(set(ids)) != len(ids):
        p.append(f"stage.acceptance: duplicate rule ids {sorted({i for i in ids if ids.count(i) > 1})}")
    for i, rule in enumerate(cfg.stage.acceptance):
        key = f"stage.acceptance[{i}] ({rule.id})"
        if not rule.metrics:
            p.append(f"{key}.metrics: must name at least one metric")
        for m in rule.metrics:
            if not _METRIC_RE.fullmatch(m):
                p.append(f"{key}.metrics: {m!r} is not a dotted metric name like kpi.round_trips")
        if rule.op in (Op.ge, Op.gt, Op.le, Op.lt, Op.eq, Op.ne):
            if not isinstance(rule.value, (int, float)) or isinstance(rule.value, bool):
                p.append(f"{key}.value={rule.value!r}: op {rule.op.value} needs a number")
        elif rule.op is Op.under and not isinstance(rule.value, str):
            p.append(f"{key}.value={rule.value!r}: op under needs a folder path")


def _check_zone_profile(p: list[str], zp: ZoneProfileConfig, universe: list[str]) -> None:
    if not zp.profiles:
        p.append("zone_profile.profiles: must define at least one profile")
    for name, prof in zp.profiles.items():
        key = f"zone_profile.profiles.{name}"
        if not prof.zones:
            p.append(f"{key}.zones: must list at least one zone")
        prev_hi = None
        for j, z in enumerate(prof.zones):
            zk = f"{key}.zones[{j}]"
            _num(p, f"{zk}.lo_bps", z.lo_bps, lo=0)
            _num(p, f"{zk}.hi_bps", z.hi_bps, lo=z.lo_bps, lo_open=True)
            _num(p, f"{zk}.tp_bps", z.tp_bps, lo=0, lo_open=True)
            _num(p, f"{zk}.sl_bps", z.sl_bps, lo=0, lo_open=True)
            _num(p, f"{zk}.size_frac", z.size_frac, lo=0, hi=1, lo_open=True)
            if prev_hi is not None and z.lo_bps < prev_hi:
                p.append(f"{zk}.lo_bps={z.lo_bps!r}: zones must be ordered and not overlap "
                         f"(previous zone ends at {prev_hi!r})")
            prev_hi = z.hi_bps
        _num(p, f"{key}.soft_limit_s", prof.soft_limit_s, lo=0)
        _num(p, f"{key}.hard_limit_s", prof.hard_limit_s, lo=0, lo_open=True)
        if prof.hard_limit_s < prof.soft_limit_s:
            p.append(f"{key}.hard_limit_s={prof.hard_limit_s!r}: must be >= soft_limit_s={prof.soft_limit_s!r}")
        _num(p, f"{key}.min_loss_bps", prof.min_loss_bps, lo=0)
    known = sorted(zp.profiles)
    mappings: list[tuple[str, Any]] = [(f"zone_profile.symbols.{s}", m) for s, m in zp.symbols.items()]
    if zp.fallback is not None:
        mappings.append(("zone_profile.fallback", zp.fallback))
    for key, m in mappings:
        for mode in ("strict", "advisory"):
            name = getattr(m, mode)
            if name not in zp.profiles:
                p.append(f"{key}.{mode}={name!r}: no such profile (defined: {', '.join(known)})")
    if zp.fallback is None:
        unmapped = [s for s in universe if s not in zp.symbols]
        if unmapped:
            p.append(f"zone_profile ({zp.name}): symbols {unmapped} have no mapping in zone_profile.symbols "
                     "and zone_profile.fallback is not set: map them or add a fallback")


# Letters that look like Latin capitals (Cyrillic, Greek): a mapping for 'ВТС' is a typo of 'BTC'.
_LOOKALIKE = str.maketrans("АВЕКМНОРСТУХІЅЈАΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEKMHOPCTYXISJABEZHIKMNOPTYX")


def _skeleton(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().upper().translate(_LOOKALIKE)


def _check_mapped_symbols(p: list[str], zp: ZoneProfileConfig, names: list[str], zp_file: str,
                          sym_file: str) -> None:
    """A mapping for a symbol the symbol list does not hold would never apply (the symbol
    would silently take the fallback): refuse it, with the symbol it most likely meant."""
    by_skeleton = {_skeleton(n): n for n in names}
    for key in zp.symbols:
        if key in names:
            continue
        close = by_skeleton.get(_skeleton(key)) or _closest(_skeleton(key), names)
        odd = [f"U+{ord(c):04X}" for c in key if not (c.isascii() and c.isalnum())]
        hint = f"did you mean {close!r}? " if close else ""
        shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
        p.append(f"{zp_file}: zone_profile.symbols.{key!r} is not a symbol of {sym_file}"
                 f"{' (holds ' + ' '.join(odd) + ')' if odd else ''}; {hint}allowed: {shown}")


def _closest(word: str, names: list[str]) -> str | None:
    """The closest name (difflib ratio >= 0.6); among equally close ones the first listed
    (the list is ranked by volume, so XBT means BTC rather than XTZ)."""
    best, score = None, 0.6
    for n in names:
        r = difflib.SequenceMatcher(None, word, n.upper()).ratio()
        if r > score + 1e-12 or (best is None and r >= score):
            best, score = n, r
    return best


def _check_synthetic(p: list[str], m: SyntheticMarketConfig) -> None:
    k = "market"
    _num(p, f"{k}.fx_krw_per_usd", m.fx_krw_per_usd, lo=0, lo_open=True)
    for name in ("fx_vol_bps_per_sqrt_s", "price_vol_annual", "premium_mean_max_bps", "premium_sd_bps",
                 "jump_rate_per_hour", "jump_sd_bps", "usdt_half_spread_bps", "krw_half_spread_bps",
                 "half_spread_rank_exp", "depth_rank_exp", "depth_noise", "level_step_bps"):
        _num(p, f"{k}.{name}", getattr(m, name), lo=0)
    _num(p, f"{k}.premium_half_life_s", m.premium_half_life_s, lo=0, lo_open=True)
    _num(p, f"{k}.depth_usd", m.depth_usd, lo=0, lo_open=True)
    _num(p, f"{k}.level_growth", m.level_growth, lo=0, lo_open=True)
    if not 1 <= m.book_levels <= 50:
        p.append(f"{k}.book_levels={m.book_levels}: must be between 1 and 50")


def _check_book(p: list[str], k: str, levels: int | None, step: float | None, growth: float | None) -> None:
    if levels is not None and not 1 <= levels <= 50:
        p.append(f"{k}.book_levels={levels}: must be between 1 and 50")
    if step is not None:
        _num(p, f"{k}.level_step_bps", step, lo=0)
    if growth is not None:
        _num(p, f"{k}.level_growth", growth, lo=0, lo_open=True)


def _check_replay(p: list[str], m: ReplayMarketConfig) -> None:
    if not m.path.strip():
        p.append("market.path='': must name a Parquet tick file (e.g. logs/<stage>/<run>/quotes.parquet)")
    _check_book(p, "market", m.book_levels, m.level_step_bps, m.level_growth)


_VENUE_RE = re.compile(r"[a-z][a-z0-9]{1,31}")


def _check_live(p: list[str], m: LiveMarketConfig, clock: ClockKind) -> None:
    k = "market"
    if clock is not ClockKind.realtime:
        p.append(f"clock={clock.value}: market=live polls venues in real time, so it needs clock=realtime "
                 "(add clock=realtime to the command)")
    venues = [("krw_venue", m.krw_venue), ("usdt_venue", m.usdt_venue)]
    if m.fx_kind is LiveFxKind.venue:
        venues.append(("fx_venue", m.fx_venue))
        if not re.fullmatch(r"[A-Z0-9]+/[A-Z0-9]+", m.fx_symbol):
            p.append(f"{k}.fx_symbol={m.fx_symbol!r}: must be a ccxt symbol like USDT/KRW")
    else:
        _num(p, f"{k}.fx_krw_per_usd", m.fx_krw_per_usd, lo=0, lo_open=True)
    for name, v in venues:
        if not _VENUE_RE.fullmatch(v):
            p.append(f"{k}.{name}={v!r}: must be a ccxt exchange id (lower-case letters and digits, e.g. upbit)")
    for name, url in m.api_urls.items():
        if name not in {v for _, v in venues}:
            p.append(f"{k}.api_urls.{name}: not one of the venues in use ({', '.join(sorted({v for _, v in venues}))})")
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", str(url)):
            p.append(f"{k}.api_urls.{name}={url!r}: must be an http(s) base URL like http://127.0.0.1:8080")
    real = sorted({v for _, v in venues} - set(m.api_urls))
    if not m.rate_limit and real:
        p.append(f"{k}.rate_limit=false: allowed only against stand-in servers (market.api_urls); "
                 f"{', '.join(real)} would be polled without ccxt's rate limiter")
    _num(p, f"{k}.max_quote_age_s", m.max_quote_age_s, lo=0, lo_open=True)
    _num(p, f"{k}.timeout_s", m.timeout_s, lo=0, lo_open=True, hi=120)
    _num(p, f"{k}.backoff_base_s", m.backoff_base_s, lo=0)
    _num(p, f"{k}.backoff_max_s", m.backoff_max_s, lo=0)
    if m.backoff_max_s < m.backoff_base_s:
        p.append(f"{k}.backoff_max_s={m.backoff_max_s!r}: must be >= backoff_base_s={m.backoff_base_s!r}")
    _check_book(p, k, m.book_levels, m.level_step_bps, m.level_growth)
