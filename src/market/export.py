"""Write the ticks a run's market would produce to a Parquet tick file.

    python -m src.market.export OUT.parquet [Hydra overrides]
    python -m src.market.export data/day.parquet stage=d92-5 stage.duration_s=86400 seed=7

The config is composed exactly as `python -m src.run` composes it (same loader), so
`python -m src.run <same overrides> market=replay market.path=OUT.parquet` replays those
ticks; with the synthetic market it gives the synthetic run's trades and KPIs (the data
identity, and so the fingerprint, differ: it is the file's content instead of the generator).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from src.market.tape import Market
from src.market.ticks import TickWriter, book_meta

USAGE = "usage: python -m src.market.export OUT.parquet [KEY=VALUE ...]   (Hydra overrides, as for src.run)"


def export(market: Market, path: Path, tick_s: float, venues: dict[str, str]) -> dict[str, Any]:
    """Write every tick of `market` to `path` (via a temp file, renamed when complete)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = TickWriter(tmp, market.symbols, {"tick_s": tick_s, "venues": venues, "book": book_meta(market.book),
                                              "source": market.identity()})
    try:
        for chunk in market.chunks(3600):
            writer.write(chunk)
    finally:
        writer.close()
    tmp.replace(path)
    return {"path": str(path), "ticks": writer.ticks, "rows": writer.rows}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") or "=" in argv[0]:
        print(USAGE, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from src.config.loader import ConfigError, load_config
    from src.market.registry import build_market

    out, overrides = Path(argv[0]), argv[1:]
    try:
        loaded = load_config(overrides)
        cfg = loaded.cfg
        market = build_market(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s,
                              loaded.root)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    kind = market.identity().get("kind", "?")  # e.g. synthetic:binance -- what the ticks imitate
    venues = {"usdt": f"{kind}:{cfg.costs.usdt_venue.name}", "krw": f"{kind}:{cfg.costs.krw_venue.name}"}
    info = export(market, out, cfg.stage.tick_s, venues)
    print(f"wrote {info['path']}: {info['ticks']} ticks x {len(market.symbols)} symbols, {info['rows']} rows "
          f"in {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    from src.exitcodes import cli

    cli(main)  # output cut off (`| head -1`): exit quietly
