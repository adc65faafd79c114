"""Write tests/data/oracle_replay.parquet: a scripted hour of quotes for the second golden run.

    python tests/data/make_oracle_replay.py            # (re)writes the file next to this script

Three symbols (BTC, ETH, XRP) at 60 s ticks from 23:30 of simulated day 0 to 00:29 of
day 1, scripted so that the run (tests/test_golden_replay.py, shipped default zone
profile and costs, max 2 open positions, a 30 USD daily loss limit) meets every rule:
stop losses that trip the kill switch on day 0 and its reset at midnight, hard and soft
time limits, take profits, a spread reversal, an FX that moves every tick, fills that
walk the book, a missing
quote, and every rejection reason (outside_zones, kill_switch, max_open_positions,
insufficient_depth, cost_floor).

Exact arithmetic only: USD reference prices are powers of two, the premium is k/1024 of
the price (k an integer: k x 9.765625 bps), book spreads are 1/2048 (USDT) and 1/1024
(KRW) of the price, sizes are powers of two, and KRW prices are an integer FX x those,
so every value in the file is exact in binary and the same on every machine. Needs only
pyarrow (independent of the project's code and of its synthetic market generator).
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OUT = Path(__file__).with_name("oracle_replay.parquet")
PRICE = {"BTC": 65536.0, "ETH": 2048.0, "XRP": 2.0}  # USD, powers of two
TOP_USD = 131072.0  # USD at the top of each book level 0 (2^17): deep enough for 2000 USD
TICK_S = 60.0
T0 = 84600.0  # 23:30:00 of simulated day 0
N_TICKS = 60
BOOK = {"levels": 3, "step_bps": 10.0, "growth": 2.0}


def fx(i: int) -> float:
    """KRW per USD: 1300, 1301, 1302, 1303, 1300, ... (an integer, so KRW prices stay exact)."""
    return 1300.0 + i % 4


def steps(*segments: tuple[int, int | None], n_ticks: int = N_TICKS) -> list[int | None]:
    """Premium k per tick from (first tick, k) segments; None: no quote from that tick."""
    out: list[int | None] = []
    for j, (start, k) in enumerate(segments):
        end = segments[j + 1][0] if j + 1 < len(segments) else n_ticks
        out += [k] * (end - start)
    assert len(out) == n_ticks
    return out


# Premium k (KRW venue rich by k/1024 of the price) per tick. An entry at k sees k x 9.77 bps;
# an exit at k' sees about (k' + 1.5) x 9.77 bps (both books crossed). Zones (conf/zone_profile/
# default.yaml, advisory): BTC, ETH [40,70) [70,120) [120,400) bps; XRP [50,80) [80,130) [130,500).
PREMIUM = {
    "BTC": steps((0, 9),  # 23:30 enter at 87.9 bps
                 (2, 13),  # 23:32 stop loss (exit ~141.6 bps: widened > 40); 23:33 re-enter at 127 bps
                 (4, 19),  # 23:34 stop loss again: day 0 loss > 30 USD, the kill switch trips; refused till midnight
                 (30, 6),  # 00:00 enter at 58.6 bps (zone 0); captured < 15 bps after fees: hard limit at 00:05
                 (36, 2),  # no signal
                 (40, 9),  # 00:10 enter; 00:12 take profit
                 (42, 2),
                 (50, 9),  # 00:20 enter
                 (53, 5)),  # 00:23 captured ~24 bps: within 15 bps of the 30 bps fees after 120 s: soft limit;
                            # 00:24 enter at 48.8 bps (zone 0), still open at the end
    "ETH": steps((0, 9),  # 23:30 enter; held (captured ~ -5 bps) until the hard limit at 23:35
                 (30, 8),  # 00:00 enter again (day 1)
                 (33, -3),  # 00:03 the premium flips sign: spread reversal
                 (34, 2)),
    "XRP": steps((0, 9),  # 23:30, 23:31: two open already: max_open_positions
                 (2, 60),  # 23:32 586 bps: above every zone: outside_zones
                 (3, 2),
                 (6, 9),  # 23:36..23:59: refused by the kill switch
                 (30, 9),  # 00:00 two open again: max_open_positions
                 (31, 2),
                 (34, 9),  # 00:34 thin book (size below): insufficient_depth
                 (35, 2),
                 (36, 6),  # 00:36 58.6 bps in zone 0 but a shallow book: the slippage lifts the cost floor
                 (37, 2),
                 (38, 9),  # 00:38 enter; 00:41 take profit
                 (41, 2),
                 (45, None),  # 00:45 no quote
                 (46, 2)),
}
# Top-of-book size in coins where it is not TOP_USD / price: (symbol, tick) -> size.
SIZE = {("XRP", 34): 2.0,  # depth 2 x 7 = 14 coins x 2 USD = 28 USD < min_fill_usd 50
        ("XRP", 36): 64.0,  # 500 coins wanted walk 64, 128 and 308 of 256: ~14 bps of slippage per venue
        ("XRP", 38): 256.0}  # 1000 coins walk 256, 512 and 232 of 1024: ~10 bps a venue, still above the floor


def rows(premium: dict[str, list[int | None]], sizes: dict[tuple[str, int], float]) -> dict[str, list]:
    cols: dict[str, list] = {c: [] for c in ("t_s", "ts_ms", "symbol", "venue", "bid", "ask", "bid_size",
                                             "ask_size", "fx")}
    for i in range(len(next(iter(premium.values())))):
        for s in premium:
            p, k = PRICE[s], premium[s][i]
            size = sizes.get((s, i), TOP_USD / p)
            usdt = (p - p / 2048, p)
            krw = None if k is None else (fx(i) * (p + p * k / 1024), fx(i) * (p + p * (k + 1) / 1024))
            for venue, quote in (("usdt", None if k is None else usdt), ("krw", krw)):
                cols["t_s"].append(T0 + i * TICK_S)
                cols["ts_ms"].append(None)
                cols["symbol"].append(s)
                cols["venue"].append(venue)
                cols["bid"].append(None if quote is None else quote[0])
                cols["ask"].append(None if quote is None else quote[1])
                cols["bid_size"].append(None if quote is None else size)
                cols["ask_size"].append(None if quote is None else size)
                cols["fx"].append(fx(i))
    return cols


def table(premium: dict[str, list[int | None]] = PREMIUM, sizes: dict[tuple[str, int], float] = SIZE) -> pa.Table:
    """The tick table of a script (symbols in the order of `premium`, a universe prefix)."""
    n_ticks, symbols = len(next(iter(premium.values()))), list(premium)
    schema = pa.schema([("t_s", pa.float64()), ("ts_ms", pa.int64()), ("symbol", pa.string()),
                        ("venue", pa.string()), ("bid", pa.float64()), ("ask", pa.float64()),
                        ("bid_size", pa.float64()), ("ask_size", pa.float64()), ("fx", pa.float64())])
    meta = {"format": "ticks-v1", "tick_s": TICK_S, "symbols": symbols, "book": BOOK,
            "venues": {"usdt": "scripted", "krw": "scripted"},
            "source": {"kind": "scripted", "script": "tests/data/make_oracle_replay.py"},
            "ticks": n_ticks, "rows": n_ticks * len(symbols) * 2}
    t = pa.table(rows(premium, sizes), schema=schema)
    return t.replace_schema_metadata({"paper_runs.ticks": json.dumps(meta, sort_keys=True)})


def main() -> None:
    pq.write_table(table(), OUT, compression="snappy")
    print(f"wrote {OUT} ({N_TICKS} ticks, {len(PREMIUM)} symbols)")


if __name__ == "__main__":
    main()
