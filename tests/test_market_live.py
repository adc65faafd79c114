"""Live market through ccxt against a local stand-in of Upbit and Binance (never the internet).

The stand-in serves the venues' real response formats (tests/data/) on 127.0.0.1 and can
fail on command: HTTP 500, a hang (the client times out), malformed JSON.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import ccxt
import numpy as np
import pytest

from conftest import REPO, clean_env, load_json, run_cli
from src.config.loader import load_config
from src.config.schema import LiveMarketConfig, ReplayMarketConfig
from src.engine.kernel_run import run_session_kernel
from src.engine.loop import EngineParams, run_session
from src.engine.zones import apply_profiles
from src.market.live import LiveMarket
from src.market.recorder import RecordingMarket
from src.market.replay import ReplayMarket

DATA = Path(__file__).parent / "data"
USD = {"BTC": 95000.0, "ETH": 3400.0, "XRP": 2.2}
FX = 1300.0
PUBLIC_PATHS = {"/v1/market/all", "/v1/orderbook", "/api/v3/exchangeInfo", "/api/v3/ticker/bookTicker"}


class VenueServer:
    """Upbit- and Binance-shaped public endpoints. The KRW premium is `premium_bps` for
    `period_s`, then 0 for `period_s`, and so on; `schedule` holds (from_s, to_s, venue,
    mode) outages, times from the first request; `modes` sets a venue's mode outright."""

    def __init__(self, premium_bps: float = 150.0, period_s: float = 1.0, hang_s: float = 2.0) -> None:
        self.premium_bps, self.period_s, self.hang_s = premium_bps, period_s, hang_s
        self.modes = {"upbit": "ok", "binance": "ok"}
        self.schedule: list[tuple[float, float, str, str]] = []
        self.requests: list[str] = []
        self.t0: float | None = None
        self.tpl = {name: json.loads((DATA / name).read_text(encoding="utf-8")) for name in (
            "upbit_market_all.json", "upbit_orderbook_KRW-BTC.json", "binance_exchangeInfo.json",
            "binance_bookTicker_BTCUSDT.json")}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.handle(self)

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that timed out and left: expected here

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def mode(self, venue: str, t: float) -> str:
        for a, b, v, m in self.schedule:
            if v == venue and a <= t < b:
                return m
        return self.modes[venue]

    def premium(self, t: float) -> float:
        return self.premium_bps if int(t / self.period_s) % 2 == 0 else 0.0

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        now = time.monotonic()
        self.t0 = now if self.t0 is None else self.t0
        t = now - self.t0
        url = urlsplit(h.path)
        q = parse_qs(url.query)
        self.requests.append(url.path)
        venue = "upbit" if url.path.startswith("/v1/") else "binance"
        mode = self.mode(venue, t)
        if mode == "500":
            return self._send(h, 500, b"Internal Server Error")
        if mode == "hang":
            time.sleep(self.hang_s)
        if mode == "bad_json":
            return self._send(h, 200, b'[{"market": "KRW-BTC", "orderbook_units": [{"ask_pri')
        body = self.body(url.path, q, t)
        if body is None:
            return self._send(h, 404, b'{"error": {"name": "not_found", "message": "no such path"}}')
        self._send(h, 200, json.dumps(body).encode())

    def body(self, path: str, q: dict, t: float) -> object:
        prem = self.premium(t) * 1e-4
        if path == "/v1/market/all":
            return self.tpl["upbit_market_all.json"]
        if path == "/v1/orderbook":
            out = []
            for market in q["markets"][0].split(","):
                coin = market.split("-")[1]
                mid = FX if coin == "USDT" else USD[coin] * FX * (1.0 + prem)
                ob = copy.deepcopy(self.tpl["upbit_orderbook_KRW-BTC.json"][0])
                ob.update(market=market, timestamp=int(time.time() * 1000))
                ob["orderbook_units"][0].update(bid_price=round(mid * (1 - 2e-4), 4), ask_price=round(mid * (1 + 2e-4), 4))
                ob["orderbook_units"][1].update(bid_price=round(mid * (1 - 4e-4), 4), ask_price=round(mid * (1 + 4e-4), 4))
                out.append(ob)
            return out
        if path == "/api/v3/exchangeInfo":
            return self.tpl["binance_exchangeInfo.json"]
        if path == "/api/v3/ticker/bookTicker":
            out = []
            for sym in json.loads(q["symbols"][0]):
                mid = USD[sym[:-4]]
                row = dict(self.tpl["binance_bookTicker_BTCUSDT.json"][0], symbol=sym)
                row.update(bidPrice=f"{mid * (1 - 0.5e-4):.8f}", askPrice=f"{mid * (1 + 0.5e-4):.8f}")
                out.append(row)
            return out
        return None

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, body: bytes) -> None:
        try:
            h.send_response(code)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout)


@pytest.fixture
def server() -> VenueServer:
    s = VenueServer()
    yield s
    s.close()


def _spec(server: VenueServer, **kw: object) -> LiveMarketConfig:
    base = dict(krw_venue="upbit", usdt_venue="binance", fx_kind="venue", fx_krw_per_usd=FX, fx_venue="upbit",
                max_quote_age_s=0.5, timeout_s=0.3, backoff_base_s=0.05, backoff_max_s=0.2, rate_limit=False,
                api_urls={"upbit": server.url, "binance": server.url}, book_levels=5, level_step_bps=2.0,
                level_growth=1.5)
    base.update(kw)
    from src.config.schema import LiveFxKind
    base["fx_kind"] = LiveFxKind(base["fx_kind"])
    return LiveMarketConfig(**base)  # type: ignore[arg-type]


CFG = load_config(["stage=d92-5", "universe.top_n=3"], REPO).cfg
UNIVERSE = CFG.symbols.ranked[:3]


def _drive(market, tick_s: float) -> list:  # noqa: ANN001
    """The market's chunks, one every tick_s of wall time (what PacedMarket does)."""
    out, t0 = [], time.monotonic()
    it = iter(market.chunks(1))
    for k in range(market.n_ticks):
        time.sleep(max(0.0, t0 + k * tick_s - time.monotonic()))
        out.append(next(it))
    return out


# -- paper only ---------------------------------------------------------------------------------

ORDER_CALLS = re.compile(r"\b(create_\w*order\w*|createOrder\w*|cancel_\w*order\w*|cancelOrder\w*|edit_order\w*|"
                         r"editOrder|withdraw|transfer|fetch_balance|fetchBalance|private_?[a-z]*_?(get|post|put|delete)"
                         r"\w*|private(Get|Post|Put|Delete)\w*|sapi\w*_post\w*)\s*\(", re.I)
CREDENTIALS = re.compile(r"""(['"](apiKey|secret|password|uid|privateKey|walletAddress|token)['"]\s*:"""
                         r"""|\.(apiKey|secret|password|privateKey)\s*=(?!=)|os\.environ|getenv)""")


def test_no_code_path_places_orders_or_reads_keys() -> None:
    hits = []
    for path in sorted((REPO / "src").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if ORDER_CALLS.search(code):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
            if path.name in ("live.py", "venues.py") and CREDENTIALS.search(code):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "order-placing, private or credential code in src/:\n" + "\n".join(hits)


def test_exchanges_are_keyless_and_ccxt_refuses_private_calls(server: VenueServer) -> None:
    market = LiveMarket(_spec(server), UNIVERSE, 2, 0.1)
    assert set(market.venues) == {"upbit", "binance"}
    for v in market.venues.values():
        ex = v.ex
        assert not any(getattr(ex, k, None) for k in ("apiKey", "secret", "password", "uid", "privateKey", "token"))
        assert ex.enableRateLimit is False  # off against the local server only; the YAML default is on
        with pytest.raises(ccxt.AuthenticationError):
            ex.fetch_balance()
        with pytest.raises(ccxt.AuthenticationError):
            ex.create_order("BTC/USDT" if v.id == "binance" else "BTC/KRW", "limit", "buy", 0.001, 1.0)
    assert set(server.requests) <= {"/v1/market/all", "/api/v3/exchangeInfo"}  # public market lists only
    real = LiveMarket(_spec(server, api_urls={}, rate_limit=True), UNIVERSE, 2, 1.0)
    assert all(v.ex.enableRateLimit for v in real.venues.values())
    assert "127.0.0.1" not in json.dumps(real.venues["binance"].ex.urls["api"])


def test_live_config_is_checked() -> None:
    from src.config.loader import ConfigError

    for overrides, expect in (
            ([], "clock=simulated: market=live polls venues in real time, so it needs clock=realtime"),
            (["clock=realtime", "market.rate_limit=false"],
             "market.rate_limit=false: allowed only against stand-in servers (market.api_urls); binance, upbit"),
            (["clock=realtime", "market.max_quote_age_s=0"], "market.max_quote_age_s=0.0: must be > 0"),
            (["clock=realtime", "market.usdt_venue=Bin ance"], "market.usdt_venue='Bin ance': must be a ccxt exchange id"),
            (["clock=realtime", "+market.api_urls.upbit=ftp://x"], "must be an http(s) base URL")):
        with pytest.raises(ConfigError, match=re.escape(expect)):
            load_config(["stage=d92-5", "market=live", *overrides], REPO)
    ok = load_config(["stage=d92-5", "market=live", "clock=realtime"], REPO).cfg.market
    assert ok.rate_limit is True and ok.api_urls == {} and ok.record is True
    with pytest.raises(ValueError, match="market venue 'nosuchvenue': not a ccxt exchange id"):
        LiveMarket(dataclasses.replace(ok, usdt_venue="nosuchvenue"), UNIVERSE, 2, 1.0)  # build_market: exit 2


# -- polling, faults, stale quotes -------------------------------------------------------------

def test_polls_public_books_into_ticks(server: VenueServer) -> None:
    market = LiveMarket(_spec(server), UNIVERSE, 4, 0.1)
    chunks = _drive(market, 0.1)
    market.close()
    last = chunks[-1]
    assert last.usdt_bid.shape == (1, 3) and last.fx[0] == pytest.approx(FX)
    assert last.usdt_bid[0, 0] == pytest.approx(95000 * (1 - 0.5e-4)) and last.usdt_size[0, 0] == pytest.approx(1.8173)
    assert last.krw_bid[0, 1] / (3400 * FX) == pytest.approx(1 - 2e-4, abs=0.02)
    assert last.krw_size[0, 0] == pytest.approx(min(0.09812421, 0.41385316))
    assert not np.isnan(last.usdt_ask).any() and last.usdt_ts_ms[0, 0] > 1.6e12
    assert [c.t_s[0] for c in chunks] == [0.0, 0.1, 0.2, 0.30000000000000004]
    assert set(server.requests) <= PUBLIC_PATHS
    f = market.faults()
    assert f["venues"]["upbit"]["ok"] >= 1 and sum(v for k, v in f["venues"]["binance"].items() if k != "ok") == 0


@pytest.mark.parametrize("mode,kind", [("500", "http_error"), ("hang", "timeout"), ("bad_json", "bad_response")])
def test_outage_is_counted_backed_off_and_survived(server: VenueServer, mode: str, kind: str) -> None:
    server.modes["binance"] = mode
    market = LiveMarket(_spec(server), UNIVERSE, 10, 0.1)
    chunks = _drive(market, 0.1)
    market.close()
    f = market.faults()["venues"]
    assert f["binance"][kind] >= 1 and f["binance"]["ok"] == 0
    assert f["binance"]["stale_quotes"] == 10 * 3  # never a USDT quote: nothing to trade on
    assert all(np.isnan(c.usdt_bid).all() for c in chunks)
    assert not np.isnan(chunks[-1].krw_bid).any() and f["upbit"]["ok"] >= 1
    if mode != "hang":
        assert f["binance"]["backoff_skips"] >= 1  # it rested between tries


def test_recovers_and_stale_quotes_become_nan(server: VenueServer) -> None:
    server.schedule = [(0.35, 0.9, "binance", "500")]
    market = LiveMarket(_spec(server, max_quote_age_s=0.25), UNIVERSE, 14, 0.1)
    chunks = _drive(market, 0.1)
    market.close()
    usdt_ok = [not np.isnan(c.usdt_bid).any() for c in chunks]
    assert any(usdt_ok[:3]) and usdt_ok[-1]  # before the outage and after recovery
    assert not all(usdt_ok)  # during it, once the last quote is older than 0.25 s
    f = market.faults()["venues"]["binance"]
    assert f["http_error"] >= 1 and f["stale_quotes"] == 3 * usdt_ok.count(False)


# -- record -> replay, in process -----------------------------------------------------------------

def _params() -> EngineParams:
    symbols = tuple(s.symbol for s in UNIVERSE)
    applied = tuple(apply_profiles(CFG.zone_profile, symbols, CFG.stage.mode))
    return EngineParams(applied, CFG.costs.usdt_venue.taker_fee_bps, CFG.costs.krw_venue.taker_fee_bps,
                        CFG.costs.floor_multiplier, CFG.risk)


def test_recorded_session_replays_identically(server: VenueServer, tmp_path: Path) -> None:
    server.period_s = 0.4
    server.schedule = [(1.0, 1.5, "binance", "500"), (1.6, 1.9, "upbit", "bad_json")]
    live = LiveMarket(_spec(server, max_quote_age_s=0.15), UNIVERSE, 24, 0.1)
    rec = RecordingMarket(live, tmp_path / "quotes.parquet", live.recording_meta())

    class Paced:  # hand out one tick per 0.1 s, as clock=realtime does
        symbols, book, n_ticks = rec.symbols, rec.book, rec.n_ticks

        def chunks(self, n: int):  # noqa: ANN202
            yield from _drive(rec, 0.1)

    trades: list[dict] = []
    res = run_session_kernel(Paced(), _params(), trades.append)
    live.close()
    info = rec.close(res.ticks, {"market_faults": live.faults()})
    assert info["ticks"] == 24 and res.market_updates < 24 * 3  # some quotes were missing
    replay = ReplayMarket(ReplayMarketConfig(path=str(tmp_path / "quotes.parquet")), UNIVERSE, 24, 0.1, tmp_path)
    again: list[dict] = []
    res2 = run_session(replay, _params(), again.append)
    assert json.dumps(trades, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert trades, "the scenario should trade"
    for f in ("entry_signals", "rejections", "market_updates", "ticks", "last_fx", "unrealized_pnl_krw"):
        assert getattr(res, f) == getattr(res2, f), f
    assert replay.faults() == live.faults() and replay.book == live.book


# -- the CLI ------------------------------------------------------------------------------------

def _live_args(server: VenueServer, run_id: str, duration: float, tick: float = 0.2) -> list[str]:
    return ["stage=d92-5", "universe.top_n=3", f"stage.duration_s={duration}", f"stage.tick_s={tick}",
            "market=live", "clock=realtime", "market.rate_limit=false", "market.timeout_s=0.3",
            "market.backoff_base_s=0.1", "market.backoff_max_s=0.4", "market.max_quote_age_s=0.3",
            f"+market.api_urls.upbit={server.url}", f"+market.api_urls.binance={server.url}", f"run.id={run_id}"]


def _replay_args(run_id: str, live_id: str, duration: float, tick: float = 0.2) -> list[str]:
    """The live runs use the default (fast) engine, the replays the reference one: same bytes either way."""
    return ["stage=d92-5", "universe.top_n=3", f"stage.duration_s={duration}", f"stage.tick_s={tick}",
            "market=replay", f"market.path=logs/d92-5/{live_id}/quotes.parquet", "engine=reference",
            f"run.id={run_id}"]


@pytest.mark.slow
def test_live_run_records_and_replays_byte_for_byte(repo: Path, server: VenueServer) -> None:
    server.period_s = 0.8
    server.schedule = [(1.2, 1.8, "binance", "500"), (2.0, 2.6, "upbit", "hang"), (3.0, 3.4, "binance", "bad_json")]
    live = run_cli(repo, *_live_args(server, "live", 4.0))
    assert live.returncode in (0, 1), live.stderr  # 1: a gate failed; the run itself completed
    run = repo / "logs/d92-5/live"
    meta = load_json(run / "runtime_meta.json")
    assert meta["status"] == "completed" and meta["data"]["identity"]["kind"] == "live"
    assert meta["data"]["recorded"]["path"] == "logs/d92-5/live/quotes.parquet" and meta["data"]["recorded"]["ticks"] == 20
    kpi = load_json(run / "kpi_summary.json")
    faults = kpi["market_faults"]["venues"]
    assert faults["binance"]["http_error"] >= 1 and faults["binance"]["bad_response"] >= 1
    assert faults["upbit"]["timeout"] >= 1 and kpi["round_trips"] >= 1
    assert set(server.requests) <= PUBLIC_PATHS
    rep = run_cli(repo, *_replay_args("replay", "live", 4.0))
    assert rep.returncode == live.returncode, rep.stderr
    for name in ("trades.jsonl", "kpi_summary.json"):
        assert (run / name).read_bytes() == (repo / "logs/d92-5/replay" / name).read_bytes(), name


@pytest.mark.slow
def test_ctrl_c_ends_a_live_run_cleanly(repo: Path, server: VenueServer) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "src.run", *_live_args(server, "cc", 60.0)], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    log = repo / "logs/d92-5/cc/run.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (log.exists() and "run_start" in log.read_text()):
        time.sleep(0.1)
    time.sleep(1.5)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5 and proc.returncode == 130, (out, err)
    run = repo / "logs/d92-5/cc"
    meta = load_json(run / "runtime_meta.json")
    assert meta["status"] == "interrupted" and meta["interrupted_by"] == "SIGINT"
    kpi = load_json(run / "kpi_summary.json")
    assert 3 <= kpi["ticks"] < 300 and meta["data"]["recorded"]["ticks"] == kpi["ticks"]
    rep = run_cli(repo, *_replay_args("cc-replay", "cc", 60.0))
    assert rep.returncode in (0, 1), rep.stderr
    for name in ("trades.jsonl", "kpi_summary.json"):
        assert (run / name).read_bytes() == (repo / "logs/d92-5/cc-replay" / name).read_bytes(), name


@pytest.mark.slow
def test_paced_replay_takes_real_time_and_changes_nothing(repo: Path) -> None:
    overrides = ["stage=d92-5", "universe.top_n=3", "stage.duration_s=2", "stage.tick_s=0.05"]
    assert run_cli(repo, "data/fast.parquet", *overrides, module="src.market.export").returncode == 0
    replay = [*overrides, "market=replay", "market.path=data/fast.parquet"]
    plain = run_cli(repo, *replay, "run.id=plain")
    t0 = time.monotonic()
    paced = run_cli(repo, *replay, "clock=realtime", "run.id=paced")
    assert time.monotonic() - t0 >= 2.0 and paced.returncode == plain.returncode, paced.stderr
    for name in ("trades.jsonl", "kpi_summary.json"):
        assert (repo / "logs/d92-5/plain" / name).read_bytes() == (repo / "logs/d92-5/paced" / name).read_bytes()
    assert "\x1b[" not in paced.stdout  # not a terminal: no progress bar
