"""The synthetic market is bit-identical on every CPU, and keeps its statistical model.

numpy chooses SIMD kernels by CPU; the generator uses none whose result could depend on
that choice (see src/market/detmath.py). Proven here by generating the same markets in
child processes under two numpy dispatch settings (tests/dispatch.py) and comparing every
array's bytes; the slow test tests/test_cross_cpu.py does it for whole CLI runs.
"""
from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dispatch
from conftest import REPO
from src.config.loader import load_config
from src.market import detmath
from src.market.synthetic import BLOCK, SyntheticMarket
from src.market.ziggurat import RetryPool, normals, tables, words_of

FIELDS = ("t_s", "fx", "usdt_bid", "usdt_ask", "krw_bid", "krw_ask", "usdt_size", "krw_size")
CASES = {  # overrides -> markets that exercise every path: fixed and walking FX, big steps
    "smoke": ["stage=d92-5", "stage.duration_s=4000"],
    "fx-walk": ["stage=d92-5", "stage.duration_s=2000", "market.fx_kind=walk", "market.fx_vol_bps_per_sqrt_s=0.5"],
    "big-steps": ["stage=d92-5", "stage.duration_s=120000", "stage.tick_s=60", "market.price_vol_annual=5.0",
                  "market.jump_rate_per_hour=2000", "market.depth_noise=3.0"],
}
CHILD = """
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from src.config.loader import load_config
from src.market.synthetic import SyntheticMarket
cases = json.loads(sys.argv[2])
out = {}
for name, ov in cases.items():
    cfg = load_config(ov, Path(sys.argv[1])).cfg
    m = SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s)
    h = hashlib.sha256()
    for c in m.chunks(1000):
        for f in %r:
            h.update(getattr(c, f).tobytes())
    out[name] = h.hexdigest()
print(json.dumps(out))
""" % (FIELDS,)


def _market(overrides: list[str], symbols: list[str] | None = None) -> SyntheticMarket:
    cfg = load_config(overrides, REPO).cfg
    specs = cfg.universe_specs
    if symbols is not None:
        by = {s.symbol: s for s in specs}
        specs = [by[s] for s in symbols]
    return SyntheticMarket(cfg.market, specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s)


def _all(m: SyntheticMarket, chunk: int) -> dict[str, np.ndarray]:
    parts = list(m.chunks(chunk))
    return {f: np.concatenate([getattr(c, f) for c in parts]) for f in FIELDS}


def _digests(extra: dict[str, str]) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(REPO), json.dumps(CASES)], env=dispatch.env_for(extra),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_generator_bits_do_not_depend_on_numpy_dispatch() -> None:
    others = [(n, e) for n, e, why in dispatch.settings() if e and not why and "GLIBC_TUNABLES" not in e]
    if not others:
        pytest.skip("this CPU enables no numpy dispatch target above the baseline: one setting only")
    name, extra = others[-1]  # the farthest from native this CPU allows
    assert _digests(extra) == _digests({}), f"ticks differ between native and {name} ({extra})"


def test_ticks_do_not_depend_on_chunking_or_session_length() -> None:
    long = _all(_market(["stage=d92-5", f"stage.duration_s={BLOCK + 700}"]), 3600)
    for chunk in (1, 7, 999, BLOCK, 10**6):
        short = _all(_market(["stage=d92-5", "stage.duration_s=800"]), chunk)
        for f in FIELDS:
            assert np.array_equal(short[f], long[f][: short[f].shape[0]]), (chunk, f)


def test_a_symbols_path_does_not_depend_on_the_other_symbols() -> None:
    a = _all(_market(["stage=d92-5"], ["BTC", "ETH"]), 600)
    b = _all(_market(["stage=d92-5"], ["XRP", "ETH"]), 600)  # ETH keeps rank 2: same spreads and depth
    for f in FIELDS[2:]:
        assert np.array_equal(a[f][:, 1], b[f][:, 1]), f
        assert not np.array_equal(a[f][:, 0], b[f][:, 0]), f


def test_normal_variates_have_the_normal_law() -> None:
    """4 M variates from uniform words: moments, tail mass and a binned chi-square vs Phi."""
    n = 4_000_000
    g = np.random.default_rng(7)
    z = normals(words_of(g.bit_generator.random_raw(n // 2)), 1, RetryPool([np.random.default_rng(8)], 0))
    se = 1.0 / math.sqrt(n)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2.0) * se
    assert abs(((z - z.mean()) ** 3).mean()) < 5 * math.sqrt(15.0) * se
    assert abs((z**4).mean() - 3.0) < 5 * math.sqrt(96.0) * se
    tail = float(np.mean(np.abs(z) > 3.6541528853610088))  # the ziggurat's own tail
    p = math.erfc(3.6541528853610088 / math.sqrt(2.0))
    assert abs(tail - p) < 5 * math.sqrt(p / n)
    edges = np.linspace(-4.0, 4.0, 81)
    counts = np.histogram(z, bins=np.concatenate([[-np.inf], edges, [np.inf]]))[0]
    cdf = [0.0] + [0.5 * math.erfc(-e / math.sqrt(2.0)) for e in edges] + [1.0]
    expected = n * np.diff(cdf)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 82 + 5 * math.sqrt(2 * 82), chi2  # 82 bins - 1 dof: mean 81, sd ~12.7
    kt, wt, _ = tables()
    assert kt[1] == 0 and wt[255] * (1 << 23) == 3.6541528853610088  # the top layer never takes a rectangle


def test_market_keeps_its_model_statistics() -> None:
    """GBM log returns, the OU premium (mean, autocorrelation, spread), jump rate, lognormal depth."""
    cfg = load_config(["stage=d92-5", "stage.duration_s=36000"], REPO).cfg
    spec, dt = cfg.market, cfg.stage.tick_s
    m = SyntheticMarket(spec, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, dt)
    d = _all(m, 3600)
    usd = 0.5 * (d["usdt_bid"] + d["usdt_ask"])  # the half spread is symmetric: mid = usd
    r = np.log(usd[1:] / usd[:-1]).ravel()
    sigma = spec.price_vol_annual * math.sqrt(dt / (365.0 * 86400.0))
    n = r.size
    assert abs(r.mean() + 0.5 * sigma**2) < 5 * sigma / math.sqrt(n)
    assert abs(r.var() / sigma**2 - 1.0) < 5 * math.sqrt(2.0 / n)
    fx = d["fx"][:, None]
    prem = (0.5 * (d["krw_bid"] + d["krw_ask"]) / fx / usd - 1.0) * 1e4
    a = 0.5 ** (dt / spec.premium_half_life_s)
    dev = prem - m._premium_mean
    lag1 = float((dev[1:] * dev[:-1]).sum() / (dev[:-1] ** 2).sum())
    assert abs(lag1 - a) < 0.005, (lag1, a)
    innov = dev[1:] - a * dev[:-1]
    p_jump = spec.jump_rate_per_hour * dt / 3600.0
    var_e = spec.premium_sd_bps**2 * (1 - a * a) + p_jump * spec.jump_sd_bps**2
    assert abs(innov.var() / var_e - 1.0) < 0.03
    shock_sd = spec.premium_sd_bps * math.sqrt(1 - a * a)
    big = float(np.mean(np.abs(innov) > 8 * shock_sd))  # almost only jumps get past 8 shock sds
    want = p_jump * math.erfc(8 * shock_sd / math.sqrt(2 * (spec.jump_sd_bps**2 + shock_sd**2)))
    assert abs(big / want - 1.0) < 0.1, (big, want)
    ranks = np.arange(1, usd.shape[1] + 1, dtype=np.float64)
    lns = []
    for f in ("usdt_size", "krw_size"):
        ln = np.log(d[f] * usd / (spec.depth_usd * ranks ** (-spec.depth_rank_exp)))
        lns.append(ln.ravel())
        k = ln.size
        assert abs(ln.mean() + 0.5 * spec.depth_noise**2) < 5 * spec.depth_noise / math.sqrt(k)
        assert abs(ln.var() / spec.depth_noise**2 - 1.0) < 5 * math.sqrt(2.0 / k)
    assert abs(np.corrcoef(lns[0], lns[1])[0, 1]) < 5 / math.sqrt(lns[0].size)  # the venues' depths are independent


def test_detmath_exp_log_are_accurate() -> None:
    x = np.concatenate([np.linspace(-707.0, 707.0, 200_001), np.random.default_rng(3).normal(0.0, 2.0, 200_000),
                        [0.0, -0.0, 1e-300, -1e-300, 5e-324]])
    got, want = detmath.exp(x), np.exp(x)
    assert np.all(np.abs(got - want) <= 4.5e-16 * want)  # within 2 ulp
    assert detmath.exp(np.array([np.nan]))[0] != detmath.exp(np.array([np.nan]))[0]
    assert list(detmath.exp(np.array([np.inf, -np.inf, 710.0, -746.0]))) == [np.inf, 0.0, np.inf, 0.0]
    edge = np.array([709.5, -708.5, -744.0])
    assert np.all(np.abs(detmath.exp(edge) - np.exp(edge)) <= 1e-15 * np.exp(edge) + 1e-323)
    y = np.exp(np.random.default_rng(4).uniform(-700.0, 700.0, 200_000))
    assert np.all(np.abs(detmath.log(y) - np.log(y)) <= 6e-16 * np.abs(np.log(y)) + 1e-300)
    assert detmath.log(np.array([1.0]))[0] == 0.0
    assert detmath.pow_s(2.0, 0.5) == math.sqrt(2.0) and detmath.pow_s(7.0, 0.0) == 1.0
    with pytest.raises(ValueError, match="positive finite"):
        detmath.log_s(0.0)


def test_no_dispatch_dependent_numpy_or_libm_call_in_the_market_math() -> None:
    """The files that compute ticks, fills, KPIs and plot data call no transcendental
    function, no float power and no SIMD float reduction (read from their syntax tree)."""
    banned_attr = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "power", "float_power", "sin", "cos",
                   "tan", "tanh", "arctan", "arctan2", "hypot", "pow", "sum", "mean", "dot", "prod", "std", "var",
                   "matmul", "einsum", "nansum", "average", "trapz", "cumprod", "fma"}
    banned_method = {"standard_normal", "normal", "exponential", "standard_exponential", "lognormal", "gamma",
                     "random", "sum", "mean", "dot", "prod", "std", "var"}
    files = ["src/market/synthetic.py", "src/market/ziggurat.py", "src/market/synth_jit.py", "src/market/book.py",
             "src/market/tape.py",
             "src/engine/fills.py", "src/engine/exits.py", "src/engine/kpi.py", "src/runner/plotdata.py"]
    for rel in files:
        found = []
        for node in ast.walk(ast.parse((REPO / rel).read_text())):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
                found.append(f"line {node.lineno}: **")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in ("np", "numpy", "math") and node.attr in banned_attr:
                    found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in banned_method:
                found.append(f"line {node.lineno}: .{node.func.attr}()")
            # Numba (synth_jit.py): fastmath would let LLVM contract a*b+c into an FMA and reassociate sums
            if isinstance(node, ast.keyword) and node.arg == "fastmath" and not _false(node.value):
                found.append(f"line {node.value.lineno}: fastmath")
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values):
                    if isinstance(k, ast.Constant) and k.value == "fastmath" and not _false(v):
                        found.append(f"line {v.lineno}: fastmath")
        assert not found, f"{rel}: {found}"


def _false(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is False
