"""Plot data of a run (deterministic CSV): equity curve, exit-reason mix, one symbol's spread.

equity.csv holds the realized equity sampled per simulated hour (src/engine/stats.py, the
samples sharpe_hourly uses); equity_trades.csv steps at every round trip's close.

The spread series is taken from the chunks the engine consumed (a tap on the market),
so it works for any market kind and costs no second pass over the data.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from src.engine.records import EXIT_REASONS
from src.engine.stats import equity_samples
from src.market.tape import Market, MarketChunk
from src.runs.atomic import write_all_atomic, write_text_atomic  # noqa: F401  (the latter: a one-off file)


class SpreadTap:
    """Wraps a Market; records the mid premium (bps) of one symbol for every tick consumed, and the
    wall time spent inside the market making chunks (market_s, seconds: part of the engine's time)."""

    def __init__(self, market: Market, symbol: str) -> None:
        self._market = market
        self.symbol = symbol
        self._idx = market.symbols.index(symbol)
        self.t_s: list[np.ndarray] = []
        self.premium_bps: list[np.ndarray] = []
        self.market_s = 0.0

    @property
    def first_t_s(self) -> float:
        """Time of the session's first tick (0.0 before any): where its simulated hours start."""
        return float(self.t_s[0][0]) if self.t_s and self.t_s[0].size else 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._market, name)

    def chunks(self, chunk_ticks: int) -> Iterator[MarketChunk]:
        s = self._idx
        made = self._market.chunks(chunk_ticks)
        while True:
            t0 = time.perf_counter()
            c = next(made, None)
            self.market_s += time.perf_counter() - t0
            if c is None:
                return
            usdt_mid = 0.5 * (c.usdt_bid[:, s] + c.usdt_ask[:, s])
            krw_usd = 0.5 * (c.krw_bid[:, s] + c.krw_ask[:, s]) / c.fx
            self.t_s.append(np.asarray(c.t_s, dtype=np.float64))
            self.premium_bps.append((krw_usd - usdt_mid) / usdt_mid * 1e4)
            yield c


def _fmt(x: float) -> str:
    """The plot files' number format: 6 decimals, trailing zeros and point stripped; NaN is empty."""
    return f"{x:.6f}".rstrip("0").rstrip(".") if x == x else ""


# "000".."999" as 3-byte strings: three ASCII digits per table lookup
_D3 = (np.arange(1000)[:, None] // np.array([100, 10, 1]) % 10 + ord("0")).astype(np.uint8).view("S3").ravel()
_FRAC_MODS = np.array([1_000_000, 100_000, 10_000, 1_000, 100, 10], np.int32)  # fraction digit j is kept
# when a non-zero digit follows at or after it: fp % _FRAC_MODS[j] != 0


def _digits(v: np.ndarray, groups: int) -> np.ndarray:
    """(n, 3 * groups) ASCII digits of the non-negative integers v, zero-padded on the left."""
    out = np.empty((v.shape[0], groups), "S3")
    for g in range(groups - 1, -1, -1):
        v, r = np.divmod(v, 1000)
        out[:, g] = _D3.take(r)
    return out.view(np.uint8).reshape(v.shape[0], 3 * groups)


def _fixed6(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """_fmt over an array, as (ASCII chars, which to keep, rows to format with _fmt instead).

    _fmt rounds the exact binary value of x to 6 decimals (ties to even). Here y = |x| * 1e6 is
    that product rounded to the nearest double. Below 2**52 every half-integer h is a double, so
    if the exact product and y lay on two sides of h, h would be nearer the product than y:
    they round to the same integer, which rint gives, unless y is exactly a half-integer (the
    product may then be just above or below it). Those, |y| >= 2**52 and inf go to _fmt.
    """
    ax = np.abs(x)
    with np.errstate(invalid="ignore", over="ignore"):
        y = ax * 1e6
        n = np.rint(y)
        exact = (y < 4503599627370496.0) & (np.abs(y - n) != 0.5)
    nan = np.isnan(x)
    ip, fp = np.divmod(np.where(exact, n, 0.0).astype(np.int64), 1_000_000)
    width = len(str(int(ip.max()))) if ip.size else 1
    groups = (width + 2) // 3
    idig, fdig = _digits(ip, groups), _digits(fp, 2)
    # integer digit j of 3 * groups is kept from the first non-zero one on, and the last ("0") always
    lead = ip[:, None] >= np.array([int("1" + "0" * (3 * groups - 1 - j)) for j in range(3 * groups - 1)] + [0])
    trail = fp.astype(np.int32)[:, None] % _FRAC_MODS != 0
    sign = np.full((x.shape[0], 1), ord("-"), np.uint8)
    point = np.full((x.shape[0], 1), ord("."), np.uint8)
    chars = np.concatenate([sign, idig, point, fdig], axis=1)
    # no out= here: numpy 2.4.6 np.signbit(x, out=<a strided column>) leaves 7 in 8 entries unwritten
    keep = np.concatenate([np.signbit(x)[:, None], lead, (fp != 0)[:, None], trail], axis=1)
    keep[nan] = False
    return chars, keep, ~exact & ~nan


def csv_rows(*fields: np.ndarray | str) -> bytes:
    """Rows of the fields side by side: float64 arrays (each value as _fmt writes it) and literal
    text (separators, constants, the line end), in one pass over arrays instead of per value."""
    n = next(f.shape[0] for f in fields if not isinstance(f, str))
    chars, keep, slow = [], [], np.zeros(n, bool)
    for f in fields:
        if isinstance(f, str):
            b = np.frombuffer(f.encode("utf-8"), np.uint8)
            chars.append(np.broadcast_to(b, (n, b.size)))
            keep.append(np.ones((n, b.size), bool))
        else:
            c, k, s = _fixed6(np.asarray(f, dtype=np.float64))
            chars.append(c)
            keep.append(k)
            slow |= s
    ch, kp = np.concatenate(chars, axis=1), np.concatenate(keep, axis=1)
    redo = np.flatnonzero(slow).tolist()
    kp[redo] = False
    body = ch[kp].tobytes()
    if not redo:
        return body
    ends = np.cumsum(np.count_nonzero(kp, axis=1)).tolist()
    out, prev = [], 0
    for i in redo:  # each such row in _fmt's own words, where it belongs
        out += [body[prev:ends[i]],
                "".join(f if isinstance(f, str) else _fmt(float(f[i])) for f in fields).encode("utf-8")]
        prev = ends[i]
    return b"".join(out) + body[prev:]


def write_plot_data(plots_dir: Path, trades: list[dict], tap: SpreadTap, simulated_s: float = 0.0) -> dict[str, str]:
    """Write the CSVs; returns {name: path relative to the run folder}. simulated_s: ticks x tick_s."""
    plots_dir.mkdir(exist_ok=True)
    write_all_atomic([(plots_dir / f"{name}.csv", data) for name, data in plot_files(trades, tap, simulated_s)])
    return {n: f"plots/{n}.csv" for n in ("equity", "equity_trades", "exit_reasons", "spread", "marks")}


def plot_files(trades: list[dict], tap: SpreadTap, simulated_s: float) -> list[tuple[str, bytes]]:
    """[(name, the CSV's bytes)] of the five plot files."""
    start = tap.first_t_s
    hourly = equity_samples([t["exit_t_s"] for t in trades], [t["pnl_krw"] for t in trades], start, start + simulated_s)
    files = [("equity", ("t_s,equity_krw\n" + "".join(f"{_fmt(t)},{_fmt(e)}\n" for t, e in hourly)).encode())]
    equity = ["t_s,equity_krw,trade", "0,0,0"]
    total = 0.0
    for i, t in enumerate(sorted(trades, key=lambda t: (t["exit_t_s"], t["symbol"]))):
        total += t["pnl_krw"]
        equity.append(f"{_fmt(t['exit_t_s'])},{_fmt(round(total, 2) + 0.0)},{i + 1}")
    files.append(("equity_trades", ("\n".join(equity) + "\n").encode()))

    counts = {k: 0 for k in EXIT_REASONS}
    for t in trades:
        counts[t["exit_reason"]] += 1
    mix = ["exit_reason,count"] + [f"{k},{counts[k]}" for k in EXIT_REASONS]
    files.append(("exit_reasons", ("\n".join(mix) + "\n").encode()))

    ts = np.concatenate(tap.t_s) if tap.t_s else np.empty(0)
    prem = np.concatenate(tap.premium_bps) if tap.premium_bps else np.empty(0)
    rows = csv_rows(ts, ",", prem, f",{tap.symbol}\n") if ts.size else b""
    files.append(("spread", b"t_s,premium_bps,symbol\n" + rows))

    at = _premium_at(ts, prem, {x for t in trades if t["symbol"] == tap.symbol for x in (t["entry_t_s"], t["exit_t_s"])})
    marks = ["t_s,premium_bps,mark"]
    for t in trades:
        if t["symbol"] != tap.symbol:
            continue
        marks.append(f"{_fmt(t['entry_t_s'])},{_fmt(at.get(t['entry_t_s'], float('nan')))},entry")
        marks.append(f"{_fmt(t['exit_t_s'])},{_fmt(at.get(t['exit_t_s'], float('nan')))},exit:{t['exit_reason']}")
    files.append(("marks", ("\n".join(marks) + "\n").encode()))
    return files


def _premium_at(ts: np.ndarray, prem: np.ndarray, wanted: set[float]) -> dict[float, float]:
    """{t_s: premium} at the wanted times (the last tick at that time wins), read from the series."""
    if not wanted:
        return {}
    idx = np.flatnonzero(np.isin(ts, np.fromiter(wanted, np.float64, len(wanted))))
    return dict(zip(ts[idx].tolist(), prem[idx].tolist()))
