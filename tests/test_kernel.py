"""The compiled kernel's own pieces: Python's round(), repr() of floats, the cache key, the
trades.jsonl fallback, cross-CPU bit-identity and no fused multiply-add, and a recompile
after an edit that keeps the source's size and mtime."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO, clean_env, copy_repo, load_json, run_cli, run_dir_of
from src.engine import jitcache, kernel, kernel_json
from src.engine.kernel_trades import KernelTrades

PLACES = (0, 1, 2, 4, 6, 10)


def _same(a: float, b: float) -> bool:
    return (a == b and np.copysign(1.0, a) == np.copysign(1.0, b)) or (a != a and b != b)


def _edge_values() -> list[float]:
    vals = [0.0, -0.0, 0.5, 1.5, 2.5, -2.5, 0.125, 0.375, 2.675, 1e-4, 9.999999999999999e-05, 1e16,
            9999999999999998.0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 4503599627370496.5, 2.0**52, 2.0**53]
    vals += [(k + 0.5) / 10.0**nd for nd in PLACES for k in range(-300, 300, 7)]  # exact or near ties
    vals += [2.0**e for e in range(-40, 60)] + [k / 1024 + 2.0**20 for k in range(64)]
    return vals


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.floats(allow_nan=False, allow_infinity=False, width=64), st.sampled_from(PLACES))
def test_py_round_is_pythons_round(x: float, nd: int) -> None:
    assert _same(kernel.py_round(x, 10.0**nd), round(x, nd))


def test_py_round_on_ties_and_boundaries() -> None:
    rng = np.random.default_rng(5)
    xs = _edge_values() + (rng.standard_normal(20000) * 10.0 ** rng.integers(-12, 17, 20000)).tolist()
    bad = [(x, nd) for nd in PLACES for x in xs if not _same(kernel.py_round(x, 10.0**nd), round(x, nd))]
    assert not bad, bad[:5]


def _fmt(v: float, hint: int) -> str | None:
    out = np.zeros(64, dtype=np.uint8)
    end = kernel_json.put_float(out, 0, v, kernel_json._POW10, hint)
    return None if end < 0 else out[:end].tobytes().decode()


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.floats(width=64), st.integers(0, 22), st.sampled_from([None, *PLACES]))
def test_compiled_float_text_is_repr(x: float, hint: int, nd: int | None) -> None:
    """Whatever the hint (a wrong one only costs time), the text is repr(x) or left to Python."""
    v = x if nd is None or x != x or abs(x) == float("inf") else round(x, nd)
    got = _fmt(v, hint)
    assert got is None or got == repr(v)


def test_compiled_float_text_covers_the_trade_values() -> None:
    """Rounded prices, quantities and money, tiny prices (1e-05 form), whole seconds: no fallback."""
    rng = np.random.default_rng(7)
    for nd in PLACES:
        for v in (rng.standard_normal(5000) * 10.0 ** rng.integers(-3, 9, 5000)).tolist():
            r = round(v, nd) + 0.0
            assert _fmt(r, nd) == repr(r)
    for v in (2.09871e-05, 1e-05, 3502453.0009860815, 33281565.341325086, 86399.0, -0.0, 0.0001):
        assert _fmt(v, 10) == repr(v)
    assert _fmt(float("nan"), 0) is None and _fmt(1e16, 0) is None and _fmt(1e-30, 0) is None


def _records(values: dict[str, float], n: int = 3) -> KernelTrades:
    from src.config.loader import load_config
    from src.engine.loop import EngineParams

    cfg = load_config([], REPO).cfg
    params = EngineParams.from_config(cfg)
    rec = np.zeros(n, dtype=kernel.TRADE_DT)
    rec["direction"] = [1, -1, 1][:n]
    rec["exit_reason"] = [0, 2, 3][:n]
    rec["time_limit_kind"] = [0, 2, 0][:n]
    rec["symbol"] = [0, 1, 0][:n]
    for k, v in values.items():
        rec[k][1] = v
    return KernelTrades(rec, tuple(s.symbol for s in cfg.universe_specs), params)


def test_jsonl_falls_back_to_json_for_values_it_cannot_print() -> None:
    trades = _records({"qty": 1.2345678901234567e-30, "pnl_krw": 1e17, "hold_s": 0.30000000000000004})
    want = b"".join(json.dumps(d, sort_keys=True, ensure_ascii=False).encode() + b"\n" for d in trades)
    assert trades.jsonl() == want
    assert b"1.2345678901234567e-30" in want and b"1e+17" in want  # the fallback line really ran
    with pytest.raises(ValueError, match="Out of range float"):  # as JsonlAppender refuses it
        _records({"pnl_usd": float("nan")}).jsonl()


def test_cache_key_follows_the_source_bytes_not_its_size_or_mtime(tmp_path: Path) -> None:
    src = tmp_path / "kernel.py"
    src.write_text("X = 1e4\n")
    st_ = src.stat()
    before = jitcache.compute_key((src,), tmp_path)
    src.write_text("X = 1e2\n")  # same size
    os.utime(src, ns=(st_.st_atime_ns, st_.st_mtime_ns))  # same mtime
    after = jitcache.compute_key((src,), tmp_path)
    assert src.stat().st_size == st_.st_size and src.stat().st_mtime_ns == st_.st_mtime_ns
    assert before["key"] != after["key"] and before["sources"] != after["sources"]
    assert jitcache.compute_key((src,), tmp_path) == after  # and it is stable


def test_kernel_cache_lives_outside_the_purged_tree() -> None:
    info = jitcache.cache_key()
    assert info["dir"] == f".cache/numba/{info['key']}"
    assert set(info["sources"]) == {"src/engine/kernel.py", "src/engine/kernel_round.py", "src/engine/kernel_json.py",
                                    "src/engine/records.py", "src/engine/kernel_layout.py", "src/engine/aot_build.py",
                                    "src/market/synth_jit.py", "src/market/pcg_jit.py"}  # hook: pcg
    assert os.environ["NUMBA_CACHE_DIR"] == str(REPO / info["dir"])
    assert kernel.run_ticks.stats.cache_path == str(REPO / info["dir"])
    assert {".cache/", "/.cache/"} & set((REPO / ".gitignore").read_text().split())
    assert ".cache/" in (REPO / ".dvcignore").read_text().split()


# ----- compiled fresh: machine code and cross-CPU bit-identity ---------------------------------

_PROBE = r"""
import hashlib, json, re, sys
from pathlib import Path
sys.path.insert(0, ".")
from src.config.loader import load_config
from src.engine.kernel_run import run_session_kernel
from src.engine.kpi import summarize
from src.engine.loop import EngineParams
from src.market.synthetic import SyntheticMarket
import numpy as np
from src.market.tape import MarketChunk
cfg = load_config(sys.argv[1:], Path(".")).cfg
params = EngineParams.from_config(cfg)
synthetic = SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s)
saved = np.load("market.npz")  # the parent's ticks: numpy's exp/log may differ under other SIMD settings


class Saved:
    symbols, book, n_ticks = synthetic.symbols, synthetic.book, synthetic.n_ticks

    def chunks(self, n):
        f = ("t_s", "fx", "usdt_bid", "usdt_ask", "krw_bid", "krw_ask", "usdt_size", "krw_size")
        for a in range(0, self.n_ticks, 1000):
            yield MarketChunk(a, *(saved[k][a:a + 1000] for k in f))


market = Saved()
out = []
res = run_session_kernel(market, params, None, write=out.append)
kpis = summarize(res, params.applied, {"sha256": "-"}, cfg.stage.duration_s, cfg.stage.tick_s)
from numba import njit
from src.engine import kernel, kernel_json
FMA = re.compile(r"\bvfn?m(?:add|sub)")
fma = sum(len(FMA.findall(f.inspect_asm(sig))) for f in (kernel.run_ticks, kernel_json.format_lines,
          kernel.mark_to_market) for sig in f.signatures)
control = njit(fastmath=True)(lambda a, b, c: a * b + c)
control(1.0, 2.0, 3.0)
print(json.dumps({"control": len(FMA.findall(control.inspect_asm(control.signatures[0]))), "trades": hashlib.sha256(b"".join(out)).hexdigest(), "n": len(res.trades),
                  "kpis": hashlib.sha256(json.dumps(kpis, sort_keys=True).encode()).hexdigest(),
                  "misses": sum(sum(f.stats.cache_misses.values()) for f in (kernel.run_ticks,)), "fma": fma}))
"""


@pytest.mark.slow
def test_kernel_is_bit_identical_across_cpus_and_has_no_fma(tmp_path: Path) -> None:
    """Fresh compiles for this CPU and for a generic x86-64 one, under numpy's SIMD dispatch
    as on AVX2 and on baseline machines: the same trades.jsonl and KPIs, no fused multiply-add."""
    from src.config.loader import load_config
    from src.market.synthetic import SyntheticMarket

    repo = copy_repo(tmp_path / "repo")
    (repo / "probe.py").write_text(_PROBE)
    args = ["stage=d92-5", "universe=top20", "stage.duration_s=7200", "market.fx_kind=walk",
            "market.fx_vol_bps_per_sqrt_s=0.5", "risk.daily_loss_limit_usd=1e9"]
    cfg = load_config(args, REPO).cfg
    whole = next(iter(SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks,
                                      cfg.stage.tick_s).chunks(cfg.stage.n_ticks)))
    np.savez(repo / "market.npz", **{k: getattr(whole, k) for k in ("t_s", "fx", "usdt_bid", "usdt_ask", "krw_bid",
                                                                   "krw_ask", "usdt_size", "krw_size")})
    figures = []
    for extra in ({}, {"NUMBA_CPU_NAME": "generic", "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL"},
                  {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"}):
        shutil.rmtree(repo / ".cache", ignore_errors=True)  # compile fresh: asm exists only for code compiled
        # in-process
        proc = subprocess.run([sys.executable, "probe.py", *args], cwd=repo, capture_output=True, text=True,
                              env=clean_env(KERNEL_AOT="0", **extra), timeout=600)  # numba's JIT (test_aot.py: the
        assert proc.returncode == 0, proc.stderr  # ahead-of-time module, built for a generic CPU)
        figures.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert all(f["misses"] > 0 for f in figures)  # really compiled, not loaded
    assert all(f["fma"] == 0 for f in figures), figures
    assert figures[0]["control"] > 0  # the check sees an FMA where fastmath asks for one (this CPU has FMA)
    assert figures[0]["n"] > 20
    assert len({(f["trades"], f["kpis"]) for f in figures}) == 1, figures


@pytest.mark.slow
def test_an_edit_keeping_size_and_mtime_recompiles_and_results_follow(repo: Path) -> None:
    """Numba's own cache would serve the old code here (it checks mtime and size only)."""
    first = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=a")
    assert first.returncode == 0, first.stderr
    src = repo / "src/engine/kernel.py"
    text, st_ = src.read_text(), src.stat()
    old = "rec.entry_spread_bps = py_round(pf[P_SPREAD], 1e4) + 0.0"
    assert old in text
    src.write_text(text.replace(old, old.replace("1e4", "1e1")))  # entry spread to 1 place, same size
    os.utime(src, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert src.stat().st_size == st_.st_size and src.stat().st_mtime_ns == st_.st_mtime_ns
    second = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=b")
    assert second.returncode in (0, 1), second.stderr
    k1 = load_json(run_dir_of(first, repo) / "runtime_meta.json")["engine"]["kernel"]
    k2 = load_json(run_dir_of(second, repo) / "runtime_meta.json")["engine"]["kernel"]
    # no ahead-of-time module for the edited source: this run compiled the edit with numba's JIT (its own
    # key, recompiled), said so, and left the module's build to a detached process (aot.py)
    assert k2["aot"]["used"] is False and k2["aot"]["missing"] and k2["aot"]["key"] != k1["aot"]["key"], k2["aot"]
    assert k1["aot"]["used"] and k2["cache_misses"] > 0 and "python -m src.engine.build" in second.stderr
    spreads = [json.loads(line)["entry_spread_bps"] for line in
               (run_dir_of(second, repo) / "trades.jsonl").read_text().splitlines()]
    assert spreads and all(round(x, 1) == x for x in spreads)
    assert any(round(json.loads(line)["entry_spread_bps"], 1) != json.loads(line)["entry_spread_bps"]
               for line in (run_dir_of(first, repo) / "trades.jsonl").read_text().splitlines())
    wait_for_build(repo, k2["aot"]["key"])
    third = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=c")  # and the edited kernel is built from now on
    k3 = load_json(run_dir_of(third, repo) / "runtime_meta.json")["engine"]["kernel"]
    # the ahead-of-time module, rebuilt from the edited source under the new key: another file
    assert k3["aot"]["used"] and not k3["aot"]["built"] and k3["aot"]["key"] == k2["aot"]["key"], k3["aot"]
    assert k3["aot"]["sha256"] != k1["aot"]["sha256"] and k3["cache_misses"] == 0 and k3["cache_hits"] > 0
    assert k3["aot"]["path"] == f'{k3["cache"]["dir"]}/aot/{k3["aot"]["file"]}'
    assert (run_dir_of(third, repo) / "trades.jsonl").read_bytes() == (run_dir_of(second, repo) / "trades.jsonl").read_bytes()


def wait_for_build(repo: Path, key: str, timeout: float = 300) -> None:
    """Until the detached build (aot.py) released its lock and the module's manifest is there."""
    import fcntl
    import time

    lock, manifest = repo / f".cache/numba/{key}/aot.lock", repo / f".cache/numba/{key}/aot/manifest.json"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if lock.is_file():
            with open(lock) as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    time.sleep(0.2)
                    continue
            if manifest.is_file():
                return
        time.sleep(0.2)
    raise AssertionError(f"no module built for key {key} in {timeout} s: "
                         f"{(repo / f'.cache/numba/{key}/aot-build.log').read_text(errors='replace')[-2000:]}")


def test_kernel_writes_the_golden_smoke(repo: Path) -> None:
    """engine=kernel on the default smoke: the golden KPIs and trades.jsonl, byte for byte."""
    golden = REPO / "tests/golden"
    proc = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=k")
    assert proc.returncode == 0, proc.stderr
    run_dir = run_dir_of(proc, repo)
    assert (run_dir / "kpi_summary.json").read_text() == (golden / "d92-5_kpi_summary.json").read_text()
    assert hashlib.sha256((run_dir / "trades.jsonl").read_bytes()).hexdigest() == \
        (golden / "d92-5_trades.sha256").read_text().strip()
    meta = load_json(run_dir / "runtime_meta.json")
    assert meta["engine"]["name"] == "kernel" and meta["engine"]["kernel"]["cache"]["key"]


@pytest.mark.parametrize("duration_s, engine", [(1999.0, "reference"), (2000.0, "kernel")])
def test_auto_engine_runs_the_kernel_from_200k_symbol_ticks(repo: Path, duration_s: float, engine: str) -> None:
    """top-100 x 2000 ticks = 200 000 symbol-ticks: the kernel; one tick less: the reference."""
    proc = run_cli(repo, "stage=d92-5", "universe=top100", f"stage.duration_s={duration_s}", "run.id=auto")
    assert proc.returncode in (0, 1), proc.stderr
    meta = load_json(run_dir_of(proc, repo) / "runtime_meta.json")
    assert (meta["engine"]["configured"], meta["engine"]["name"]) == ("auto", engine)
    assert ("kernel" in meta["engine"]) == (engine == "kernel")


def test_a_failing_write_stops_the_session_with_its_error_after_whole_chunks() -> None:
    """trades.jsonl is formatted and written in a worker thread while the kernel runs on: a write
    that fails (a full disk) still raises in the caller, and the chunks before it are whole."""
    from src.config.loader import load_config
    from src.engine.kernel_run import run_session_kernel
    from src.engine.loop import EngineParams
    from src.market.synthetic import SyntheticMarket

    cfg = load_config(["stage=longrun-24h", "stage.duration_s=14400", "risk.daily_loss_limit_usd=1e12"], REPO).cfg
    params = EngineParams.from_config(cfg)

    def market() -> SyntheticMarket:
        return SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s)

    chunks: list[bytes] = []
    threads: list[str] = []

    def keep(b: bytes) -> None:
        chunks.append(bytes(b))
        threads.append(threading.current_thread().name)

    whole = run_session_kernel(market(), params, None, write=keep)
    assert len(chunks) == 4 and b"".join(chunks) == whole.trades.jsonl()
    assert threads[0].startswith("trades-jsonl")  # written while the kernel runs on: the speed-up
    cfg1 = load_config(["stage=d92-5"], REPO).cfg  # one chunk: written in the caller's thread
    threads.clear()
    run_session_kernel(SyntheticMarket(cfg1.market, cfg1.universe_specs, cfg1.seed, cfg1.stage.n_ticks,
                                       cfg1.stage.tick_s), EngineParams.from_config(cfg1), None, write=keep)
    assert threads == [threading.current_thread().name]

    got: list[bytes] = []

    def write(b: bytes) -> None:
        if len(got) == 2:
            raise OSError(28, "No space left on device")
        got.append(bytes(b))

    with pytest.raises(OSError, match="No space left"):
        run_session_kernel(market(), params, None, write=write)
    assert got == chunks[:2]
