"""Which profile a symbol trades under, and which zone (band) a spread falls in."""
from __future__ import annotations

from dataclasses import dataclass

from src.config.schema import Mode, Profile, Zone, ZoneProfileConfig
from src.engine.records import BELOW_ZONES, OUTSIDE_ZONE


@dataclass(frozen=True)
class Applied:
    symbol: str
    profile_name: str
    profile: Profile
    source: str  # "symbol" (explicit mapping) or "fallback"


def apply_profiles(zp: ZoneProfileConfig, symbols: tuple[str, ...], mode: Mode) -> list[Applied]:
    """One profile per symbol, picked by the run's mode (validated: every symbol resolves)."""
    out = []
    for s in symbols:
        mapping, source = (zp.symbols[s], "symbol") if s in zp.symbols else (zp.fallback, "fallback")
        assert mapping is not None, f"{s} unmapped: validation should have refused this config"
        name = getattr(mapping, mode.value)
        out.append(Applied(s, name, zp.profiles[name], source))
    return out


def find_zone(profile: Profile, spread_bps: float) -> int:
    """Index of the zone with lo <= spread < hi; BELOW_ZONES below the first zone, OUTSIDE_ZONE in a
    gap or above the last."""
    zones: list[Zone] = profile.zones
    if spread_bps < zones[0].lo_bps:
        return BELOW_ZONES
    for i, z in enumerate(zones):
        if z.lo_bps <= spread_bps < z.hi_bps:
            return i
    return OUTSIDE_ZONE
