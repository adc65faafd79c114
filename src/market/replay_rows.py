"""The rows of a recorded tick file (Parquet, schema in `ticks.py`) as whole, checked ticks.

`TickRows.blocks` streams the file batch by batch (memory stays flat) and applies every
per-row and per-tick check: sorted times on the tick grid, known symbols and venues, one
usdt and one krw row per symbol and tick, sane prices and sizes, one FX per tick. Each
error is a ReplayError naming the file (as the user gave it), the row and the rule.
`replay.py` builds the market on top of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from src.market import ticks
from src.market.errors import MarketInputError


class ReplayError(MarketInputError):
    """A tick file that cannot be replayed: a user error (exit code 2)."""


@dataclass
class Block:
    """Complete ticks: t (k,), fx (k,), quote fields (k, symbols)."""

    t: np.ndarray
    fx: np.ndarray
    q: dict[str, np.ndarray]


def open_parquet(path: Path, label: str) -> Any:
    """The tick file, opened (pyarrow imported here, only for a replay)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - a dependency in pyproject.toml
        raise ReplayError(f"{label}: replay needs pyarrow (pip install pyarrow)") from exc
    try:
        return pq.ParquetFile(path, read_dictionary=["symbol", "venue"], pre_buffer=False)
    except Exception as exc:  # ArrowInvalid, OSError: not Parquet, truncated footer
        raise ReplayError(f"{label}: not a readable Parquet file ({_one_line(exc)}): is it truncated "
                          "or corrupt?") from exc


class TickRows:
    """Reads and checks a tick file's rows for a universe (`symbols`, in order) at `tick_s`."""

    def __init__(self, path: Path, label: str, symbols: Sequence[str], tick_s: float) -> None:
        self.path, self.label, self.symbols, self.tick_s = path, label, tuple(symbols), tick_s

    def blocks(self, batch_ticks: int) -> Iterator[Block]:
        """Complete, checked ticks in file order, about `batch_ticks` at a time."""
        pf = open_parquet(self.path, self.label)
        n_sym = len(self.symbols)
        carry: dict[str, np.ndarray] | None = None
        row0 = 0  # file row of carry's (or the batch's) first row
        state = {"tick": 0, "t0": None, "prev_t": None}
        batches = pf.iter_batches(batch_size=max(1, batch_ticks) * 2 * n_sym, columns=list(ticks.COLUMNS))
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # corrupt pages or a cut-off column chunk
                raise ReplayError(f"{self.label}: corrupt data after row {row0} ({_one_line(exc)})") from exc
            if batch is None:
                break
            rows = self._decode(batch, row0 + (0 if carry is None else carry["t"].size))
            if carry is not None:
                rows = {k: np.concatenate([carry[k], rows[k]]) for k in rows}
            t = rows["t"]
            down = np.flatnonzero(t[1:] < t[:-1])
            if down.size:
                r = int(down[0]) + 1
                raise ReplayError(f"{self.label} row {row0 + r}: t_s={float(t[r])!r} is earlier than the row before "
                                  f"(t_s={float(t[r - 1])!r}): rows must be sorted by t_s")
            m = int(np.searchsorted(t, t[-1], side="left"))  # rows of the last tick may go on in the next batch
            if m:
                yield self._assemble({k: v[:m] for k, v in rows.items()}, row0, state, n_sym)
            carry = {k: v[m:] for k, v in rows.items()}
            row0 += m
        if carry is not None and carry["t"].size:
            yield self._assemble(carry, row0, state, n_sym)

    def _decode(self, batch: Any, row0: int) -> dict[str, np.ndarray]:
        """Numpy columns of one batch, with the per-row checks; errors name the file row."""
        col = {name: batch.column(name) for name in ticks.COLUMNS}
        t = _floats(col["t_s"])
        bad = np.flatnonzero(~np.isfinite(t))
        if bad.size:
            r = int(bad[0])
            raise ReplayError(f"{self.label} row {row0 + r}: t_s={_val(col['t_s'], r)}: must be a finite number")
        sym = self._labels(col["symbol"], self.symbols, "symbol", row0,
                           f"not in the run's universe ({', '.join(self.symbols)})")
        venue = self._labels(col["venue"], ticks.VENUES, "venue", row0, "must be usdt or krw")
        vals = {c: _floats(col[c]) for c in ticks.PRICE_COLUMNS}
        nulls = {c: _nulls(col[c]) for c in ticks.PRICE_COLUMNS}
        void = nulls["bid"]
        for c in ticks.PRICE_COLUMNS:
            odd = np.flatnonzero(nulls[c] != void)
            if odd.size:
                r = int(odd[0])
                raise ReplayError(f"{self.label} row {row0 + r}: {c}={_val(col[c], r)} while bid={_val(col['bid'], r)}: "
                                  "bid, ask, bid_size and ask_size are all null (no quote) or none is")
        for c, lo_ok in (("bid", False), ("ask", False), ("bid_size", True), ("ask_size", True)):
            v = vals[c]
            good = (v >= 0.0) if lo_ok else (v > 0.0)
            bad = np.flatnonzero(~(good & np.isfinite(v)) & ~void)
            if bad.size:
                r = int(bad[0])
                allowed = "sizes must be finite and >= 0" if lo_ok else "prices must be finite and > 0"
                raise ReplayError(f"{self.label} row {row0 + r}: {c}={float(v[r])!r} ({self._who(sym, venue, r)}): {allowed} "
                                  "(write null in bid, ask, bid_size and ask_size for no quote)")
        crossed = np.flatnonzero((vals["bid"] > vals["ask"]) & ~void)
        if crossed.size:
            r = int(crossed[0])
            raise ReplayError(f"{self.label} row {row0 + r}: bid={float(vals['bid'][r])!r} > ask={float(vals['ask'][r])!r} "
                              f"({self._who(sym, venue, r)}): a crossed book; bid must be <= ask")
        fx = _floats(col["fx"])
        bad = np.flatnonzero(~(np.isfinite(fx) & (fx > 0.0)) & ~_nulls(col["fx"]))
        if bad.size:
            r = int(bad[0])
            raise ReplayError(f"{self.label} row {row0 + r}: fx={float(fx[r])!r}: must be > 0 KRW per USD, or null for no FX")
        return {"t": t, "sym": sym, "venue": venue, "fx": fx, **vals}

    def _labels(self, arr: Any, allowed: Sequence[str], name: str, row0: int, rule: str) -> np.ndarray:
        """Dictionary-encoded strings as indices into `allowed`; unknown or null values are errors."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not pa.types.is_dictionary(arr.type):
            arr = pc.dictionary_encode(arr)
        if arr.null_count:
            r = int(np.flatnonzero(_nulls(arr))[0])
            raise ReplayError(f"{self.label} row {row0 + r}: {name} is null: every row names its {name}")
        index = {v: i for i, v in enumerate(allowed)}
        lookup = np.array([index.get(v, -1) for v in arr.dictionary.to_pylist()] or [-1], dtype=np.int64)
        out = lookup[arr.indices.to_numpy(zero_copy_only=False)]
        bad = np.flatnonzero(out < 0)
        if bad.size:
            r = int(bad[0])
            raise ReplayError(f"{self.label} row {row0 + r}: {name}={arr[r].as_py()!r}: {rule}")
        return out

    def _who(self, sym: np.ndarray, venue: np.ndarray, r: int) -> str:
        return f"{self.symbols[sym[r]]} on {ticks.VENUES[venue[r]]}"

    def _assemble(self, rows: dict[str, np.ndarray], row0: int, state: dict[str, Any], n_sym: int) -> Block:
        """Rows of whole ticks -> per-tick arrays; checks the grid and that each tick is complete."""
        t = rows["t"]
        starts = np.concatenate([[0], np.flatnonzero(t[1:] != t[:-1]) + 1])
        k, width = starts.size, 2 * n_sym
        tick_t = t[starts]
        if state["t0"] is None:
            state["t0"] = float(tick_t[0])
        expect = state["t0"] + (state["tick"] + np.arange(k)) * self.tick_s
        off = np.flatnonzero(np.abs(tick_t - expect) > 1e-6 * self.tick_s)
        if off.size:
            j = int(off[0])
            prev = state["prev_t"] if j == 0 else float(tick_t[j - 1])
            raise ReplayError(f"{self.label} row {row0 + int(starts[j])}: t_s={float(tick_t[j])!r} is off the tick grid "
                              f"(expected {float(expect[j])!r}, the tick after t_s={prev!r} at stage.tick_s={self.tick_s}): "
                              "ticks must be stage.tick_s apart with none missing")
        tick_of_row = np.repeat(np.arange(k), np.diff(np.concatenate([starts, [t.size]])))
        key = tick_of_row * width + rows["sym"] * 2 + rows["venue"]
        canonical = key.size == k * width and bool(np.array_equal(key, np.arange(k * width)))
        if not canonical:
            counts = np.bincount(key, minlength=k * width)
            bad = np.flatnonzero(counts != 1)
            if bad.size:
                slot = int(bad[0])
                j, s, v = slot // width, (slot % width) // 2, slot % 2
                what = "has no" if counts[slot] == 0 else f"has {counts[slot]}"
                raise ReplayError(f"{self.label} rows {row0 + int(starts[j])}-"
                                  f"{row0 + (int(starts[j + 1]) if j + 1 < k else t.size) - 1} (t_s={float(tick_t[j])!r}): "
                                  f"{what} {ticks.VENUES[v]} row for {self.symbols[s]}: every tick needs one usdt "
                                  "and one krw row per universe symbol")
        fx_first = rows["fx"][starts]
        fx_rows = fx_first[tick_of_row]
        diff = np.flatnonzero(~((rows["fx"] == fx_rows) | (np.isnan(rows["fx"]) & np.isnan(fx_rows))))
        if diff.size:
            r = int(diff[0])
            raise ReplayError(f"{self.label} row {row0 + r}: fx={float(rows['fx'][r])!r} differs from fx={float(fx_rows[r])!r} "
                              "earlier in the same tick: one FX per tick")
        order = None if canonical else np.argsort(key, kind="stable")

        def grid(c: str) -> np.ndarray:
            v = rows[c] if order is None else rows[c][order]
            return v.reshape(k, n_sym, 2)

        bid, ask, bsz, asz = grid("bid"), grid("ask"), grid("bid_size"), grid("ask_size")
        size = np.minimum(bsz, asz)  # the engine models one size per venue; NaN (no quote) stays NaN
        state["tick"] += k
        state["prev_t"] = float(tick_t[-1])
        q = {"usdt_bid": bid[:, :, 0], "usdt_ask": ask[:, :, 0], "krw_bid": bid[:, :, 1], "krw_ask": ask[:, :, 1],
             "usdt_size": size[:, :, 0], "krw_size": size[:, :, 1]}
        return Block(tick_t, fx_first, q)


def _floats(arr: Any) -> np.ndarray:
    """A double column as float64, nulls as NaN."""
    if arr.null_count:
        return arr.fill_null(float("nan")).to_numpy(zero_copy_only=False)
    return arr.to_numpy(zero_copy_only=False)


def _nulls(arr: Any) -> np.ndarray:
    if not arr.null_count:
        return np.zeros(len(arr), dtype=bool)
    return arr.is_null().to_numpy(zero_copy_only=False)


def _val(arr: Any, r: int) -> str:
    v = arr[r].as_py()
    return "null" if v is None else repr(v)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
