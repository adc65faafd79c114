"""When an open position exits, and why."""
from __future__ import annotations

from src.config.schema import Profile
from src.engine.fills import Quote, exit_spread_bps, mid_premium_bps
from src.engine.records import Position


def exit_reason(pos: Position, q: Quote, t: float, profile: Profile, round_trip_fee_bps: float) -> str | None:
    """The first exit that applies, in order: stop_loss, spread_reversal, take_profit, time_limit.

    take_profit: the spread converged by the zone's tp_bps since entry; stop_loss: it
    widened by sl_bps; spread_reversal: the mid premium changed sign against the entry;
    time_limit: after soft_limit_s once the estimated loss (captured spread minus
    round-trip fees) is within min_loss_bps ("time_limit:soft"), at hard_limit_s
    regardless ("time_limit:hard"). The names are records.EXIT_REASONS (and TIME_LIMIT_KINDS).
    """
    zone = profile.zones[pos.zone_idx]
    now = exit_spread_bps(q, pos.direction)
    captured = pos.entry_spread_bps - now
    if -captured >= zone.sl_bps:
        return "stop_loss"
    if mid_premium_bps(q) * pos.direction < 0.0:
        return "spread_reversal"
    if captured >= zone.tp_bps:
        return "take_profit"
    hold = t - pos.entry_t_s
    if hold >= profile.hard_limit_s:
        return "time_limit:hard"
    if hold >= profile.soft_limit_s and captured - round_trip_fee_bps >= -profile.min_loss_bps:
        return "time_limit:soft"
    return None
