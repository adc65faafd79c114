"""The engine's records and named codes, in one place (as vectorbt's enums.py): imports no engine module.

Both engines use these: the reference (loop.py, exits.py, zones.py) by name, the compiled
kernel (kernel.py) by integer code. The codes are plain module-level ints, so Numba freezes
them into the compiled code as constants; kernel.py's cache key covers this file
(jitcache.KERNEL_SOURCES), so editing a code here recompiles the kernel.

Each table of names is indexed by its codes: EXIT_REASONS[STOP_LOSS] == "stop_loss".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

# Why a position exited: the kernel's code, and the name trades.jsonl and the KPIs print.
TAKE_PROFIT, STOP_LOSS, TIME_LIMIT, SPREAD_REVERSAL = 0, 1, 2, 3
EXIT_REASONS = ("take_profit", "stop_loss", "time_limit", "spread_reversal")
NO_EXIT = -1  # the kernel's verdict for an open position that stays open this tick

# Which time limit closed a time_limit exit (trades.jsonl's time_limit_kind; null for other exits).
NO_KIND, SOFT, HARD = 0, 1, 2
TIME_LIMIT_KINDS = (None, "soft", "hard")

# Why an entry signal was not taken: the kernel's counter index, and the KPIs' rejections key.
OUTSIDE_ZONES, KILL_SWITCH, MAX_OPEN_POSITIONS, INSUFFICIENT_DEPTH, COST_FLOOR = 0, 1, 2, 3, 4
REJECTION_REASONS = ("outside_zones", "kill_switch", "max_open_positions", "insufficient_depth", "cost_floor")

# zones.find_zone's answer when the spread is in no zone (otherwise the zone's index, >= 0).
BELOW_ZONES = -1  # below the first zone's lo: not an entry signal
OUTSIDE_ZONE = -2  # in a gap between zones or above the last: a signal, rejected as outside_zones

# Direction of a position (a sign in the fill arithmetic, see fills.py) and its name in trades.jsonl.
SELL_KRW_BUY_USDT, BUY_KRW_SELL_USDT = 1, -1  # +1: the KRW venue is rich; -1: the mirror image
DIRECTIONS = {SELL_KRW_BUY_USDT: "sell_krw_buy_usdt", BUY_KRW_SELL_USDT: "buy_krw_sell_usdt"}


class TradeField(NamedTuple):
    """One field of a trade record (a trades.jsonl line)."""

    name: str
    stored: str  # the kernel's TRADE_DT type: "f8", an integer code ("i1", "i2", "i4"), "" (not stored)
    places: int | None  # decimal places it is rounded to for the record (None: not rounded)


# A closed round trip, field by field, in the order the reference builds its dict
# (loop.close_position). The kernel stores symbol, profile and zone as indexes into the
# session's universe and profiles (profile comes from the symbol), direction, exit_reason and
# time_limit_kind as the codes above; everything else as float64.
TRADE_FIELDS = (
    TradeField("symbol", "i4", None), TradeField("direction", "i1", None), TradeField("profile", "", None),
    TradeField("zone", "i2", None), TradeField("entry_t_s", "f8", None), TradeField("exit_t_s", "f8", None),
    TradeField("hold_s", "f8", None), TradeField("entry_spread_bps", "f8", 4), TradeField("exit_spread_bps", "f8", 4),
    TradeField("qty", "f8", 10), TradeField("fill_ratio", "f8", 6), TradeField("notional_usd", "f8", 6),
    TradeField("entry_usdt_px", "f8", 10), TradeField("entry_krw_px", "f8", 6), TradeField("exit_usdt_px", "f8", 10),
    TradeField("exit_krw_px", "f8", 6), TradeField("fx_entry", "f8", 6), TradeField("fx_exit", "f8", 6),
    TradeField("fees_krw", "f8", 2), TradeField("slippage_krw", "f8", 2), TradeField("pnl_krw", "f8", 2),
    TradeField("pnl_usd", "f8", 6), TradeField("exit_reason", "i1", None), TradeField("time_limit_kind", "i1", None),
)
TRADE_KEYS = tuple(f.name for f in TRADE_FIELDS)  # the reference's dict order
JSONL_KEYS = tuple(sorted(TRADE_KEYS))  # the order trades.jsonl writes them (json.dumps sort_keys=True)
FLOAT_FIELDS = tuple(f.name for f in TRADE_FIELDS if f.stored == "f8")


def round_half(x: float, places: int) -> float:
    """Round for the record: Python's round() (the nearest, ties to even, of the exact decimal
    value), and + 0.0 turns -0.0 into 0.0 so that equal values print alike."""
    return round(x, places) + 0.0


def seq_sum(values: Iterable[float]) -> float:
    """Left-to-right sum, one IEEE rounding per addition, on every Python.

    Not the builtin: from Python 3.12 `sum()` of floats is compensated (Neumaier), so the
    same trades would give other last bits on 3.11 than on 3.12/3.13.
    """
    acc = 0
    for x in values:
        acc += x
    return acc


@dataclass(frozen=True)
class Legs:
    """Fill of both legs for `qty` coins: volume-weighted prices and slippage vs the top."""

    qty: float
    usdt_px: float  # USDT per coin
    krw_px: float  # KRW per coin
    slippage_usdt: float  # USDT lost to depth on the USDT leg
    slippage_krw: float  # KRW lost to depth on the KRW leg


@dataclass
class Position:
    """An open position: its symbol (universe index), direction (+1/-1), zone index and entry."""

    symbol_idx: int
    direction: int
    zone_idx: int
    entry_t_s: float
    entry_spread_bps: float
    entry: Legs
    fx_entry: float
    target_qty: float


@dataclass
class SessionResult:
    """What a session leaves: its trades (dicts of TRADE_KEYS, or the kernel's records), counters,
    the last valid FX, the positions still open and their mark to market (KRW)."""

    trades: list[dict[str, Any]] = field(default_factory=list)
    entry_signals: int = 0
    rejections: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECTION_REASONS, 0))
    market_updates: int = 0
    ticks: int = 0
    last_fx: float = float("nan")
    open_positions: list[Position] = field(default_factory=list)
    unrealized_pnl_krw: float = 0.0
    interrupted: bool = False
