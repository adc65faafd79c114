"""The compiled block generator (src/market/synth_jit.py) gives the numpy path's bits, on
every CPU, is cached under the source-keyed cache, and small markets never load it."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dispatch
from conftest import REPO, clean_env, copy_repo
from src.config.loader import load_config
from src.market.synthetic import JIT_MIN_SYMBOL_TICKS, SyntheticMarket

FIELDS = ("t_s", "fx", "usdt_bid", "usdt_ask", "krw_bid", "krw_ask", "usdt_size", "krw_size")
CASES = {  # every path: fixed and walking FX, detmath exp for the price (big steps), pools that must grow
    "smoke": ["stage=d92-5", "stage.duration_s=4000"],
    "fx-walk": ["stage=d92-5", "stage.duration_s=2000", "market.fx_kind=walk", "market.fx_vol_bps_per_sqrt_s=0.5"],
    "big-steps": ["stage=d92-5", "stage.duration_s=120000", "stage.tick_s=60", "market.price_vol_annual=5.0",
                  "market.jump_rate_per_hour=2000", "market.depth_noise=3.0"],
    "jump-every-tick": ["stage=d92-5", "stage.duration_s=4000", "market.jump_rate_per_hour=4000",
                        "market.depth_noise=6.0"],
}


def _market(overrides: list[str], compiled: bool | None, root: Path = REPO) -> SyntheticMarket:
    cfg = load_config(overrides, root).cfg
    return SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s,
                           compiled=compiled)


def _bytes(m: SyntheticMarket, chunk: int) -> dict[str, bytes]:
    parts = list(m.chunks(chunk))
    return {f: b"".join(getattr(c, f).tobytes() for c in parts) for f in FIELDS}


def test_compiled_generator_gives_the_numpy_paths_bits() -> None:
    from src.engine import aot

    eng = aot.engine()  # the ahead-of-time module's block (synth_jit.block compiled by aot_build.py)
    assert eng.aot
    calls = []
    block = eng.block

    def counting(*args):  # counts the reruns of a block whose retry pool had to grow
        calls.append(block(*args))
        return calls[-1]

    eng.block = counting
    try:
        for name, ov in CASES.items():
            ref = _bytes(_market(ov, compiled=False), 3600)
            for chunk in (3600, 777):
                got = _bytes(_market(ov, compiled=True), chunk)
                assert [f for f in FIELDS if got[f] != ref[f]] == [], (name, chunk)
    finally:
        eng.block = block
    assert any(c >= 0 for c in calls)  # the pool-growth path ran (and still gave the same bits)


def test_the_compiled_generator_is_chosen_by_size_and_small_markets_never_import_numba() -> None:
    cfg = load_config(["stage=d92-5"], REPO).cfg
    n_sym = len(cfg.universe_specs)
    below = -(-JIT_MIN_SYMBOL_TICKS // n_sym) - 1  # the most ticks still below the threshold
    for n_ticks, want in ((below, False), (below + 1, True)):
        m = SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, n_ticks, cfg.stage.tick_s)
        assert m.compiled is want and (n_ticks * n_sym >= JIT_MIN_SYMBOL_TICKS) is want
    assert JIT_MIN_SYMBOL_TICKS == 200_000  # the engine's `auto` threshold: numba loads for both or neither
    code = ("import sys; sys.path.insert(0, '.'); from pathlib import Path\n"
            "from src.config.loader import load_config\nfrom src.market.synthetic import SyntheticMarket\n"
            "cfg = load_config(['stage=d92-5'], Path('.')).cfg\n"
            "m = SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s)\n"
            "n = sum(c.n for c in m.chunks(3600))\nprint(m.compiled, 'numba' in sys.modules, n)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=clean_env(),
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["False", "False"]


def test_compiled_generator_is_cached_under_the_source_keyed_cache() -> None:
    from src.engine import jitcache
    from src.market import synth_jit

    info = jitcache.cache_key()
    assert "src/market/synth_jit.py" in info["sources"]  # an edit to the generator changes the key
    list(_market(CASES["smoke"], compiled=True).chunks(3600))
    assert synth_jit.block.stats.cache_path == str(REPO / info["dir"])
    assert synth_jit.block.targetoptions.get("fastmath") in (None, False)
    assert synth_jit.block.targetoptions.get("error_model") == "numpy"


_PROBE = r"""
import hashlib, json, re, sys
from pathlib import Path
sys.path.insert(0, ".")
from src.config.loader import load_config
from src.market.synthetic import SyntheticMarket
cases = json.loads(sys.argv[1])
out = {}
for name, ov in cases.items():
    cfg = load_config(ov, Path(".")).cfg
    m = SyntheticMarket(cfg.market, cfg.universe_specs, cfg.seed, cfg.stage.n_ticks, cfg.stage.tick_s, compiled=True)
    h = hashlib.sha256()
    for c in m.chunks(1000):
        for f in %r:
            h.update(getattr(c, f).tobytes())
    out[name] = h.hexdigest()
from numba import njit
from src.market import synth_jit
FMA = re.compile(r"\bvfn?m(?:add|sub)")
fns = (synth_jit.block, synth_jit._normals, synth_jit._fix, synth_jit.exp1, synth_jit.exp_core, synth_jit.log1)
fma = sum(len(FMA.findall(f.inspect_asm(sig))) for f in fns for sig in f.signatures)
control = njit(fastmath=True)(lambda a, b, c: a * b + c)
control(1.0, 2.0, 3.0)
print(json.dumps({"digests": out, "fma": fma, "misses": sum(sum(f.stats.cache_misses.values()) for f in fns),
                  "control": len(FMA.findall(control.inspect_asm(control.signatures[0])))}))
""" % (FIELDS,)


@pytest.mark.slow
def test_compiled_generator_is_bit_identical_across_cpus_and_has_no_fma(tmp_path: Path) -> None:
    """Fresh compiles for this CPU and for a generic x86-64 one (NUMBA_CPU_NAME=generic), under
    every numpy dispatch setting this CPU can emulate: the numpy path's bits, no fused multiply-add."""
    repo = copy_repo(tmp_path / "repo")
    (repo / "probe.py").write_text(_PROBE)
    want = {}
    for name, ov in CASES.items():
        h = hashlib.sha256()
        for c in _market(ov, compiled=False).chunks(1000):
            for f in FIELDS:
                h.update(getattr(c, f).tobytes())
        want[name] = h.hexdigest()
    settings = [(n, e) for n, e, why in dispatch.settings() if not why]
    runs = [(f"{n}+numba-{cpu}", {**e, **({"NUMBA_CPU_NAME": "generic"} if cpu == "generic" else {})})
            for n, e in settings for cpu in ("host", "generic")]
    figures = {}
    for name, extra in runs:
        shutil.rmtree(repo / ".cache", ignore_errors=True)  # compile fresh: asm exists only for code compiled here
        proc = subprocess.run([sys.executable, "probe.py", json.dumps(CASES)], cwd=repo, capture_output=True,
                              text=True, env={**dispatch.env_for(extra), **{"PYTHONPATH": "", "KERNEL_AOT": "0"}},
                              timeout=900)  # numba's JIT here; test_aot.py: the ahead-of-time module
        assert proc.returncode == 0, (name, proc.stderr[-3000:])
        figures[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(figures) >= 2
    for name, f in figures.items():
        assert f["misses"] > 0, name  # really compiled, not loaded
        assert f["fma"] == 0, (name, f)
        assert f["digests"] == want, f"{name}: the compiled generator's ticks differ from the numpy path's"
    host = next(f for n, f in figures.items() if n.endswith("host"))
    if re.search(r"\bfma\b", Path("/proc/cpuinfo").read_text()):
        assert host["control"] > 0  # the check sees an FMA where fastmath asks for one
