"""CPU settings a test can run the project under, on this machine.

numpy picks SIMD kernels per CPU among its dispatch targets (`__cpu_dispatch__`, e.g.
X86_V3 = AVX2, X86_V4 / AVX512_* = AVX-512); NPY_DISABLE_CPU_FEATURES makes it run as on
a CPU without them. glibc's libm picks FMA variants of exp/log/pow by CPU;
GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F makes it run as on a CPU without FMA
(used only where a probe shows it changes libm's bits here). A setting this machine
cannot tell apart from another is reported with a reason, never run as a silent duplicate.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache

from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

NO_FMA_LIBM = "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F"
_LIBM_PROBE = ("import math, random, hashlib; r = random.Random(1); h = hashlib.sha256()\n"
               "for _ in range(200000):\n"
               "    x = r.uniform(-700.0, 700.0)\n"
               "    h.update((math.exp(x).hex() + math.log(abs(x) + 1e-3).hex() + math.pow(1.0001, x).hex()).encode())\n"
               "print(h.hexdigest())")


def _enabled(names: list[str]) -> list[str]:
    return [n for n in names if __cpu_features__.get(n)]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NPY_DISABLE_CPU_FEATURES", "GLIBC_TUNABLES")}
    env.update(extra)
    return env


@lru_cache(maxsize=1)
def libm_mask_changes_bits() -> bool:
    """True when masking FMA/AVX2 from glibc changes what its exp/log/pow return here."""
    def probe(extra: dict[str, str]) -> str:
        out = subprocess.run([sys.executable, "-c", _LIBM_PROBE], env=_env(extra), capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else f"failed: {out.stderr}"
    return probe({}) != probe({"GLIBC_TUNABLES": NO_FMA_LIBM})


def settings() -> list[tuple[str, dict[str, str], str]]:
    """[(name, environment overrides, why it is skipped or "")], native first."""
    targets = _enabled(list(__cpu_dispatch__))
    avx512 = [n for n in targets if n == "X86_V4" or n.startswith("AVX512")]
    out: list[tuple[str, dict[str, str], str]] = [("native", {}, "")]
    if avx512:
        out.append(("no-avx512", {"NPY_DISABLE_CPU_FEATURES": " ".join(avx512)}, ""))
    else:
        out.append(("no-avx512", {}, "this CPU has no AVX-512 dispatch target enabled: same as native"))
    if targets and set(targets) != set(avx512):
        out.append(("baseline", {"NPY_DISABLE_CPU_FEATURES": " ".join(targets)}, ""))
    else:
        out.append(("baseline", {}, f"nothing above numpy's baseline but {avx512 or 'nothing'}: same as an earlier setting"))
    if libm_mask_changes_bits():
        base = out[-1][1] if not out[-1][2] else {}
        out.append(("baseline-no-fma-libm", {**base, "GLIBC_TUNABLES": NO_FMA_LIBM}, ""))
    else:
        out.append(("baseline-no-fma-libm", {}, "masking FMA from glibc changes no libm result here"))
    return out


def env_for(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a child run under `extra`, checked to take effect for numpy."""
    env = _env(extra)
    disabled = extra.get("NPY_DISABLE_CPU_FEATURES", "")
    if disabled:
        code = ("import json; from numpy._core._multiarray_umath import __cpu_features__ as f; "
                "print(json.dumps({k: bool(v) for k, v in f.items()}))")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        still_on = [n for n in disabled.split() if json.loads(out.stdout).get(n)]
        assert not still_on, f"NPY_DISABLE_CPU_FEATURES={disabled!r} left {still_on} enabled: not a different setting"
    return env
