"""A kernel session's trades: the TRADE_DT record array read as the reference's dicts, and
printed as trades.jsonl lines by the compiled printer (kernel_json.py), once per chunk.

Field names, their order and the names of the codes come from records.py.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np

from src.engine.loop import EngineParams
from src.engine.records import (DIRECTIONS, EXIT_REASONS, FLOAT_FIELDS, JSONL_KEYS, TIME_LIMIT_KINDS, TRADE_FIELDS,
                                TRADE_KEYS)

# How each trades.jsonl key (JSONL_KEYS order) is printed: a float of FLOAT_FIELDS (the places it was
# rounded to are the printer's first guess; 0 for the unrounded times) or a string of the table below
_HINTS = np.array([f.places or 0 for f in TRADE_FIELDS if f.stored == "f8"], dtype=np.int64)
_STRINGS = {"direction": 0, "exit_reason": 1, "time_limit_kind": 2, "profile": 3, "symbol": 4, "zone": 5}
_KINDS_ARR = np.array([FLOAT_FIELDS.index(k) if k in FLOAT_FIELDS else -_STRINGS[k] - 1 for k in JSONL_KEYS],
                      dtype=np.int64)
# the string table starts with the direction names (+1's first), exit reasons and time-limit kinds;
# then, per session, each symbol's profile, the symbols and each symbol's zones
_EXIT0 = len(DIRECTIONS)
_KIND0 = _EXIT0 + len(EXIT_REASONS)
_SYM0 = _KIND0 + len(TIME_LIMIT_KINDS)
_PIECES = [("{" if j == 0 else ", ") + f'"{k}": ' for j, k in enumerate(JSONL_KEYS)] + ["}\n"]
_KEY_BYTES = np.frombuffer("".join(_PIECES).encode(), dtype=np.uint8)
_KEY_OFF = np.cumsum([0] + [len(p) for p in _PIECES], dtype=np.int64)


class KernelTrades:
    """A session's round trips as a TRADE_DT record array, read as the reference's dicts."""

    def __init__(self, rec: np.ndarray, symbols: tuple[str, ...], params: EngineParams) -> None:
        self.rec = rec
        self.symbols = symbols
        self.profiles = [ap.profile_name for ap in params.applied]
        self.zones = [[f"{z.lo_bps:g}-{z.hi_bps:g}" for z in ap.profile.zones] for ap in params.applied]
        self._dicts: list[dict] | None = None
        self._tab: tuple[Any, ...] | None = None  # the strings' JSON bytes, built once (see _tables)

    def part(self, rec: np.ndarray) -> KernelTrades:
        """Trades `rec` of the same session, sharing the string tables (no re-encoding per chunk)."""
        new = object.__new__(KernelTrades)
        new.rec, new.symbols, new.profiles, new.zones = rec, self.symbols, self.profiles, self.zones
        new._dicts, new._tab = None, self._tables()
        return new

    def _tables(self) -> tuple[Any, ...]:
        """(tab, tab_off, zone_base, width, longest): every string a line may hold, JSON-encoded."""
        if self._tab is None:
            n_sym = len(self.symbols)
            enc = json.JSONEncoder(ensure_ascii=False).encode
            texts = [*map(enc, DIRECTIONS.values()), *map(enc, EXIT_REASONS), "null", *map(enc, TIME_LIMIT_KINDS[1:]),
                     *map(enc, self.profiles), *map(enc, self.symbols)]
            zone_base, width = len(texts), max(map(len, self.zones), default=1)
            for zs in self.zones:
                texts += [enc(z) for z in zs] + ["null"] * (width - len(zs))
            raw = [t.encode("utf-8") for t in texts]
            tab = np.frombuffer(b"".join(raw), dtype=np.uint8)
            tab_off = np.cumsum([0] + [len(b) for b in raw], dtype=np.int64)
            kinds = (raw[:_EXIT0], raw[_EXIT0:_KIND0], raw[_KIND0:_SYM0], raw[_SYM0:_SYM0 + n_sym],
                     raw[_SYM0 + n_sym:zone_base], raw[zone_base:])
            longest = _KEY_BYTES.size + sum(max(map(len, k), default=4) for k in kinds) + 26 * len(FLOAT_FIELDS)
            self._tab = (tab, tab_off, zone_base, width, longest)
        return self._tab

    def __len__(self) -> int:
        return int(self.rec.shape[0])

    def column(self, name: str) -> list[Any]:
        """One trades.jsonl field of every trade, as the reference's Python values."""
        if name in FLOAT_FIELDS:
            return self.rec[name].tolist()
        if name == "symbol":
            return [self.symbols[s] for s in self.rec["symbol"].tolist()]
        if name == "exit_reason":
            return [EXIT_REASONS[r] for r in self.rec["exit_reason"].tolist()]
        if name == "time_limit_kind":
            return [TIME_LIMIT_KINDS[k] for k in self.rec["time_limit_kind"].tolist()]
        if name == "direction":
            return [DIRECTIONS[d] for d in self.rec["direction"].tolist()]
        if name == "profile":
            return [self.profiles[s] for s in self.rec["symbol"].tolist()]
        if name == "zone":
            return [self.zones[s][z] for s, z in zip(self.rec["symbol"].tolist(), self.rec["zone"].tolist())]
        raise KeyError(name)

    def dicts(self) -> list[dict]:
        """The trades as loop.close_position builds them (same keys, order and values)."""
        if self._dicts is None:
            cols = [self.column(n) for n in TRADE_KEYS]
            self._dicts = [dict(zip(TRADE_KEYS, row)) for row in zip(*cols)]
        return self._dicts

    def jsonl(self) -> bytes | memoryview:
        """trades.jsonl lines, byte-identical to JsonlAppender.append of each dict (kernel_json.py)."""
        n = len(self)
        if not n:
            return b""
        from src.engine import aot

        rec, n_sym = self.rec, len(self.symbols)
        tab, tab_off, zone_base, width, longest = self._tables()
        sidx = np.empty((n, 6), dtype=np.int64)
        sym = rec["symbol"]
        np.subtract(1, rec["direction"] > 0, out=sidx[:, 0], casting="unsafe")
        np.add(rec["exit_reason"], _EXIT0, out=sidx[:, 1], casting="unsafe")
        np.add(rec["time_limit_kind"], _KIND0, out=sidx[:, 2], casting="unsafe")
        np.add(sym, _SYM0, out=sidx[:, 3], casting="unsafe")
        np.add(sym, _SYM0 + n_sym, out=sidx[:, 4], casting="unsafe")
        np.multiply(sym, width, out=sidx[:, 5], casting="unsafe")
        sidx[:, 5] += rec["zone"]
        sidx[:, 5] += zone_base
        vals = np.empty((n, len(FLOAT_FIELDS)))
        for j, k in enumerate(FLOAT_FIELDS):
            vals[:, j] = rec[k]
        out = np.empty(n * longest, dtype=np.uint8)  # its own buffer: the caller may keep the view
        ends = np.empty(n, dtype=np.int64)
        size = aot.engine().format_lines(vals, _HINTS, _KINDS_ARR, sidx, tab, tab_off, _KEY_BYTES, _KEY_OFF, out, ends)
        if (ends >= 0).all():
            return memoryview(out[:size])  # written as is: no copy of what may be megabytes
        parts, a = [], 0
        for i, (end, d) in enumerate(zip(ends.tolist(), self.dicts())):
            if end < 0:
                parts.append(json.dumps(d, sort_keys=True, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n")
            else:
                parts.append(out[a:end].tobytes())
                a = end
        return b"".join(parts)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.dicts())

    def __getitem__(self, i: Any) -> Any:
        return self.dicts()[i]

    def __eq__(self, other: object) -> bool:
        return self.dicts() == (other.dicts() if isinstance(other, KernelTrades) else other)

    def __repr__(self) -> str:
        return repr(self.dicts())


def warm_up(format_lines: Any) -> None:
    """Load (or, the first time ever, compile) the compiled printer with tiny inputs of the real types."""
    format_lines(np.zeros((1, len(FLOAT_FIELDS))), _HINTS, _KINDS_ARR, np.zeros((1, 6), dtype=np.int64),
                             np.frombuffer(b"x", dtype=np.uint8), np.zeros(2, dtype=np.int64), _KEY_BYTES, _KEY_OFF,
                             np.zeros(1024, dtype=np.uint8), np.zeros(1, dtype=np.int64))
