"""The synthetic market generator as it was before synthetic-v2 (numpy exp/log and
standard_normal, whose bits depend on the CPU). Kept only so benchmarks/bench_market.py can
show old and new side by side in one run; nothing in src/ imports it."""
from __future__ import annotations

import math
import zlib
from dataclasses import asdict
from typing import Any, Iterator, Sequence

import numpy as np

from src.config.schema import FxKind, SymbolSpec, SyntheticMarketConfig
from src.market.tape import BookShape, MarketChunk

GENERATOR = "synthetic-v1"
SECONDS_PER_YEAR = 365.0 * 86400.0

# Stream ids: one generator each, so adding a stream never shifts another.
_PRICE, _PREMIUM, _JUMP_AT, _JUMP_SIZE, _USDT_DEPTH, _KRW_DEPTH, _START = range(7)


def _rng(seed: int, key: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8")), stream])


class SyntheticMarket:
    """Generates `n_ticks` ticks of `tick_s` seconds for `symbols` (ranked, rank 1 first)."""

    def __init__(self, spec: SyntheticMarketConfig, symbols: Sequence[SymbolSpec], seed: int,
                 n_ticks: int, tick_s: float) -> None:
        self.spec = spec
        self.seed = seed
        self.n_ticks = n_ticks
        self.tick_s = tick_s
        self.symbols = tuple(s.symbol for s in symbols)
        self.book = BookShape(spec.book_levels, spec.level_step_bps, spec.level_growth)
        rank = np.arange(1, len(symbols) + 1, dtype=np.float64)
        self._usd0 = np.array([s.usd_price for s in symbols], dtype=np.float64)
        self._usdt_half = spec.usdt_half_spread_bps * rank**spec.half_spread_rank_exp * 1e-4
        self._krw_half = spec.krw_half_spread_bps * rank**spec.half_spread_rank_exp * 1e-4
        self._depth_usd = spec.depth_usd * rank ** (-spec.depth_rank_exp)
        starts = [_rng(seed, s, _START).standard_normal(2) for s in self.symbols]
        u = np.array([x[0] for x in starts])
        z = np.array([x[1] for x in starts])
        # Mean premium in [-max/4, max]: the KRW venue usually trades rich.
        self._premium_mean = spec.premium_mean_max_bps * (1.25 / (1.0 + np.exp(-u)) - 0.25)
        self._premium0 = self._premium_mean + spec.premium_sd_bps * z

    def identity(self) -> dict[str, Any]:
        """What makes these ticks: generator version, seed, parameters, grid."""
        spec = {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(self.spec).items()}
        return {"kind": "synthetic", "generator": GENERATOR, "seed": self.seed, "params": spec,
                "symbols": list(self.symbols), "n_ticks": self.n_ticks, "tick_s": self.tick_s}

    def chunks(self, chunk_ticks: int) -> Iterator[MarketChunk]:
        spec, dt, n_sym = self.spec, self.tick_s, len(self.symbols)
        rngs = {(s, k): _rng(self.seed, s, k) for s in self.symbols
                for k in (_PRICE, _PREMIUM, _JUMP_AT, _JUMP_SIZE, _USDT_DEPTH, _KRW_DEPTH)}
        fx_rng = _rng(self.seed, "__FX__", _PRICE)
        sigma = spec.price_vol_annual * math.sqrt(dt / SECONDS_PER_YEAR)
        a = math.exp(-math.log(2.0) * dt / spec.premium_half_life_s)
        innov_sd = spec.premium_sd_bps * math.sqrt(1.0 - a * a)
        jump_p = spec.jump_rate_per_hour * dt / 3600.0
        log_px = np.log(self._usd0)
        prem = self._premium0.copy()
        log_fx = math.log(spec.fx_krw_per_usd)
        fx_sd = spec.fx_vol_bps_per_sqrt_s * 1e-4 * math.sqrt(dt)

        def draw(kind: int, n: int, fn: str) -> np.ndarray:
            cols = [getattr(rngs[(s, kind)], fn)(n) for s in self.symbols]
            return np.stack(cols, axis=1) if cols else np.empty((n, 0))

        for start in range(0, self.n_ticks, chunk_ticks):
            n = min(chunk_ticks, self.n_ticks - start)
            # Price: sequential cumsum seeded with the carried value joins chunks exactly.
            steps = -0.5 * sigma * sigma + sigma * draw(_PRICE, n, "standard_normal")
            path = np.cumsum(np.vstack([log_px[None, :], steps]), axis=0)[1:]
            log_px = path[-1].copy()
            usd = np.exp(path)
            shocks = innov_sd * draw(_PREMIUM, n, "standard_normal")
            jumps = np.where(draw(_JUMP_AT, n, "random") < jump_p,
                             spec.jump_sd_bps * draw(_JUMP_SIZE, n, "standard_normal"), 0.0)
            premium = np.empty((n, n_sym))
            mu = self._premium_mean
            for i in range(n):  # the OU recursion is sequential in time, vectorised over symbols
                prem = mu + a * (prem - mu) + shocks[i] + jumps[i]
                premium[i] = prem
            if spec.fx_kind is FxKind.walk:
                fx_path = np.cumsum(np.concatenate([[log_fx], fx_sd * fx_rng.standard_normal(n)]))[1:]
                log_fx = float(fx_path[-1])
                fx = np.exp(fx_path)
            else:
                fx = np.full(n, spec.fx_krw_per_usd)
            krw_mid = usd * fx[:, None] * (1.0 + premium * 1e-4)
            noise = spec.depth_noise
            usdt_size = self._depth_usd * np.exp(noise * draw(_USDT_DEPTH, n, "standard_normal") - 0.5 * noise**2) / usd
            krw_size = self._depth_usd * np.exp(noise * draw(_KRW_DEPTH, n, "standard_normal") - 0.5 * noise**2) / usd
            yield MarketChunk(
                start=start,
                t_s=(start + np.arange(n)) * dt,
                fx=fx,
                usdt_bid=usd * (1.0 - self._usdt_half),
                usdt_ask=usd * (1.0 + self._usdt_half),
                krw_bid=krw_mid * (1.0 - self._krw_half),
                krw_ask=krw_mid * (1.0 + self._krw_half),
                usdt_size=usdt_size,
                krw_size=krw_size,
            )
