"""Live public market data through ccxt: top of book on a KRW and a USDT venue, plus FX.

Paper only. Exchanges are built without credentials (none is read from anywhere), and
only public market-data calls are made: load_markets, fetch_bids_asks, fetch_order_books,
fetch_order_book. Nothing in this package places, edits or cancels an order
(tests/test_market_live.py scans src/ for such calls).

One tick per chunk, polled when the engine asks for it (a PacedMarket asks on the wall
clock). Venues are polled in parallel, one worker each, and waited for at most
`wait_s` per tick: a slow answer is used by a later tick, stamped with its receipt time.
A failed request is counted by kind and the venue rests with exponential backoff; it never
stops the session. A quote older than `max_quote_age_s` (or none at all) is handed to the
engine as NaN, which the engine skips: nothing is traded on a stale quote.
"""
from __future__ import annotations

import logging
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Iterator, NamedTuple, Sequence
from urllib.parse import urlsplit

import numpy as np

from src.config.schema import LiveFxKind, LiveMarketConfig, SymbolSpec
from src.market.errors import MarketInputError
from src.market.tape import BookShape
from src.market.ticks import QuoteChunk, book_meta

log = logging.getLogger(__name__)
# Per venue: failed requests by kind; bad_quote: a symbol missing or unusable in an answer;
# backoff_skips: ticks the venue was resting; stale_quotes: symbol-ticks handed to the engine
# without a fresh quote (NaN, not traded on); stale_fx: ticks without a fresh FX quote.
FAULT_KINDS = ("timeout", "http_error", "rate_limited", "network", "exchange_error", "bad_response",
               "bad_quote", "backoff_skips", "stale_quotes", "stale_fx")


class _Q(NamedTuple):
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    ts_ms: float  # exchange time, or receipt time when the venue sends none
    recv: float  # time.monotonic() at receipt


class _Venue:
    """One ccxt exchange, public endpoints only, with its fault counters and backoff."""

    def __init__(self, ex_id: str, spec: LiveMarketConfig) -> None:
        import ccxt

        if ex_id not in ccxt.exchanges:
            raise MarketInputError(f"market venue {ex_id!r}: not a ccxt exchange id (e.g. upbit, binance, bithumb)")
        options: dict[str, Any] = {}
        if ex_id.startswith("binance"):
            options = {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}}
        # No apiKey/secret/password: ccxt then refuses every private call before any request.
        self.ex = getattr(ccxt, ex_id)({"enableRateLimit": bool(spec.rate_limit),
                                        "timeout": int(spec.timeout_s * 1000), "options": options})
        if ex_id in spec.api_urls:
            self.ex.urls["api"] = _rebase(self.ex.urls["api"], spec.api_urls[ex_id])
        creds = [k for k, needed in self.ex.requiredCredentials.items() if needed and getattr(self.ex, k, None)]
        if creds:  # pragma: no cover - nothing here sets them
            raise MarketInputError(f"market venue {ex_id!r}: credentials {creds} are set; live mode is public-data only")
        self.id = ex_id
        self.wanted: list[str] = []  # ccxt symbols
        self.listed: list[str] | None = None
        self.quotes: dict[str, _Q] = {}
        self.counts = dict.fromkeys(("ok", *FAULT_KINDS), 0)
        self.streak = 0
        self.next_try = 0.0
        self.future: Future | None = None
        self.capability = ("fetchBidsAsks" if self.ex.has.get("fetchBidsAsks") else
                           "fetchOrderBooks" if self.ex.has.get("fetchOrderBooks") else "fetchOrderBook")

    def fetch(self) -> tuple[dict[str, tuple], float, float]:
        """Top of book of every wanted symbol the venue lists (runs in a worker thread)."""
        ex = self.ex
        if self.listed is None:
            markets = ex.load_markets(reload=True) or {}
            listed = [s for s in self.wanted if s in markets]
            if not listed:  # a garbled or empty market list: a fault, tried again after the backoff
                raise ValueError(f"{self.id}: the market list names none of {', '.join(self.wanted)}")
            missing = sorted(set(self.wanted) - set(listed))
            if missing:
                log.warning("venue_unlisted venue=%s symbols=%s: no quotes for them", self.id, ",".join(missing))
            self.listed = listed
        out: dict[str, tuple] = {}
        if self.listed and self.capability == "fetchBidsAsks":
            for sym, t in ex.fetch_bids_asks(self.listed).items():
                out[sym] = (t.get("bid"), t.get("ask"), t.get("bidVolume"), t.get("askVolume"), t.get("timestamp"))
        elif self.listed and self.capability == "fetchOrderBooks":
            for sym, ob in ex.fetch_order_books(self.listed).items():
                out[sym] = _top(ob)
        else:
            for sym in self.listed:
                out[sym] = _top(ex.fetch_order_book(sym))
        if self.listed and not any(s in out for s in self.listed):  # e.g. a body ccxt parsed into nothing
            raise ValueError(f"{self.id}: the response holds none of the symbols asked for")
        for sym in self.listed:
            out.setdefault(sym, (None, None, None, None, None))  # missing: counted as a bad quote
        return out, time.monotonic(), time.time() * 1000.0


def _top(ob: dict) -> tuple:
    bids, asks = ob.get("bids") or [], ob.get("asks") or []
    if not bids or not asks:
        return (None, None, None, None, ob.get("timestamp"))
    return (bids[0][0], asks[0][0], bids[0][1], asks[0][1], ob.get("timestamp"))


def _rebase(api: Any, base: str) -> Any:
    """Point every URL of `exchange.urls['api']` at `base`, keeping each URL's path."""
    if isinstance(api, dict):
        return {k: _rebase(v, base) for k, v in api.items()}
    if isinstance(api, str):
        return base.rstrip("/") + urlsplit(api.replace("{hostname}", "host")).path
    return api


def _fault_kind(exc: BaseException) -> str:
    import ccxt

    for cls, kind in ((ccxt.RequestTimeout, "timeout"), (ccxt.DDoSProtection, "rate_limited"),
                      (ccxt.RateLimitExceeded, "rate_limited"), (ccxt.ExchangeNotAvailable, "http_error"),
                      (ccxt.NetworkError, "network"), (ccxt.BadResponse, "bad_response"),
                      (ccxt.ExchangeError, "exchange_error")):
        if isinstance(exc, cls):
            return kind
    return "bad_response"  # a body ccxt could not parse (it raises TypeError, KeyError, ...)


def _usable(raw: tuple) -> bool:
    try:
        bid, ask, bsz, asz = (float(x) for x in raw[:4])
    except (TypeError, ValueError):
        return False
    return (all(math.isfinite(x) for x in (bid, ask, bsz, asz)) and bid > 0 and ask > 0 and bid <= ask
            and bsz >= 0 and asz >= 0)


class LiveMarket:
    """`n_ticks` live ticks of the universe; see the module docstring."""

    def __init__(self, spec: LiveMarketConfig, universe: Sequence[SymbolSpec], n_ticks: int, tick_s: float) -> None:
        try:
            import ccxt
        except ImportError as exc:  # pragma: no cover - a dependency in pyproject.toml
            raise MarketInputError("market=live needs the ccxt package (pip install ccxt)") from exc
        self.spec, self.n_ticks, self.tick_s = spec, n_ticks, tick_s
        self.symbols = tuple(s.symbol for s in universe)
        self.book = BookShape(spec.book_levels, spec.level_step_bps, spec.level_growth)
        self.ccxt_version = ccxt.__version__
        self.venues: dict[str, _Venue] = {}
        self.krw = self._venue(spec.krw_venue, [f"{s}/KRW" for s in self.symbols])
        self.usdt = self._venue(spec.usdt_venue, [f"{s}/USDT" for s in self.symbols])
        self.fx = self._venue(spec.fx_venue, [spec.fx_symbol]) if spec.fx_kind is LiveFxKind.venue else None
        self.wait_s = min(spec.timeout_s, max(0.05, 0.8 * tick_s))
        self.late_ticks = 0
        self._pool: ThreadPoolExecutor | None = None

    def _venue(self, ex_id: str, symbols: list[str]) -> _Venue:
        if ex_id not in self.venues:
            self.venues[ex_id] = _Venue(ex_id, self.spec)
        v = self.venues[ex_id]
        v.wanted += [s for s in symbols if s not in v.wanted]
        return v

    def identity(self) -> dict[str, Any]:
        """What the session listens to (a live session has no content digest up front: its recording has)."""
        s = self.spec
        fx = ({"kind": "venue", "venue": s.fx_venue, "symbol": s.fx_symbol} if s.fx_kind is LiveFxKind.venue
              else {"kind": "fixed", "krw_per_usd": s.fx_krw_per_usd})
        return {"kind": "live", "venues": {"krw": s.krw_venue, "usdt": s.usdt_venue}, "fx": fx,
                "max_quote_age_s": s.max_quote_age_s, "api_urls": dict(sorted(s.api_urls.items())),
                "symbols": list(self.symbols), "n_ticks": self.n_ticks, "tick_s": self.tick_s,
                "ccxt": self.ccxt_version}

    def recording_meta(self) -> dict[str, Any]:
        return {"tick_s": self.tick_s, "venues": {"usdt": self.spec.usdt_venue, "krw": self.spec.krw_venue},
                "book": book_meta(self.book), "source": self.identity()}

    def faults(self) -> dict[str, Any]:
        """Counters per venue and kind, plus ticks served late (part of the KPIs)."""
        return {"late_ticks": self.late_ticks,
                "venues": {v: dict(sorted(self.venues[v].counts.items())) for v in sorted(self.venues)}}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def chunks(self, chunk_ticks: int) -> Iterator[QuoteChunk]:
        self._pool = self._pool or ThreadPoolExecutor(max_workers=len(self.venues), thread_name_prefix="venue")
        start = None
        for k in range(self.n_ticks):
            now = time.monotonic()
            start = now - k * self.tick_s if start is None else start
            if now - (start + k * self.tick_s) > self.tick_s:
                self.late_ticks += 1
            self._poll()
            yield self._tick(k)

    def _poll(self) -> None:
        """Ask every venue that is not busy or resting; collect what answers within wait_s."""
        now = time.monotonic()
        for v in self.venues.values():
            if v.future is None:
                if now < v.next_try:
                    v.counts["backoff_skips"] += 1
                    continue
                assert self._pool is not None
                v.future = self._pool.submit(v.fetch)
        pending = [v.future for v in self.venues.values() if v.future is not None]
        wait(pending, timeout=self.wait_s)
        for v in self.venues.values():
            if v.future is not None and v.future.done():
                self._collect(v)

    def _collect(self, v: _Venue) -> None:
        fut, v.future = v.future, None
        assert fut is not None
        try:
            raw, recv, recv_ms = fut.result()
        except Exception as exc:  # any failure of one venue is counted, never fatal
            kind = _fault_kind(exc)
            v.counts[kind] += 1
            v.streak += 1
            rest = min(self.spec.backoff_base_s * 2 ** (v.streak - 1), self.spec.backoff_max_s)
            v.next_try = time.monotonic() + rest
            log.warning("venue_fault venue=%s kind=%s streak=%d rest_s=%.2f error=%s", v.id, kind, v.streak, rest,
                        " ".join(str(exc).split())[:200] or type(exc).__name__)
            return
        v.counts["ok"] += 1
        v.streak = 0
        for sym, q in raw.items():
            if not _usable(q):
                v.counts["bad_quote"] += 1
                continue
            ts = float(q[4]) if q[4] is not None else recv_ms
            v.quotes[sym] = _Q(float(q[0]), float(q[1]), float(q[2]), float(q[3]), ts, recv)

    def _fresh(self, v: _Venue, sym: str, now: float) -> _Q | None:
        q = v.quotes.get(sym)
        return q if q is not None and now - q.recv <= self.spec.max_quote_age_s else None

    def _tick(self, k: int) -> QuoteChunk:
        now, n = time.monotonic(), len(self.symbols)
        qa = np.full((2, 5, n), np.nan)  # (usdt, krw) x (bid, ask, bid size, ask size, ts_ms) x symbol
        for vi, (v, quote) in enumerate(((self.usdt, "USDT"), (self.krw, "KRW"))):
            for s, coin in enumerate(self.symbols):
                q = self._fresh(v, f"{coin}/{quote}", now)
                if q is None:
                    v.counts["stale_quotes"] += 1
                else:
                    qa[vi, :, s] = q[:5]
        fx = self.spec.fx_krw_per_usd
        if self.fx is not None:
            q = self._fresh(self.fx, self.spec.fx_symbol, now)
            if q is None:
                self.fx.counts["stale_fx"] += 1
                fx = float("nan")
            else:
                fx = 0.5 * (q.bid + q.ask)
        u, w = qa[0], qa[1]
        row = lambda a: a[None, :]  # noqa: E731 - one tick
        return QuoteChunk(
            start=k, t_s=np.array([k * self.tick_s]), fx=np.array([fx]),
            usdt_bid=row(u[0]), usdt_ask=row(u[1]), krw_bid=row(w[0]), krw_ask=row(w[1]),
            usdt_size=row(np.minimum(u[2], u[3])), krw_size=row(np.minimum(w[2], w[3])),
            usdt_bid_size=row(u[2]), usdt_ask_size=row(u[3]), krw_bid_size=row(w[2]), krw_ask_size=row(w[3]),
            usdt_ts_ms=row(u[4]), krw_ts_ms=row(w[4]))
