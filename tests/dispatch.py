"""numpy dispatch settings a test can run under on this CPU (via NPY_DISABLE_CPU_FEATURES).

numpy picks SIMD kernels per CPU among its dispatch targets (`__cpu_dispatch__`, e.g.
X86_V3 = AVX2, X86_V4 / AVX512_* = AVX-512). Disabling the enabled targets above a level
makes numpy run as on a CPU without them. Settings that this CPU cannot tell apart from
another (nothing to disable) are reported with a reason, never run as a silent duplicate.
"""
from __future__ import annotations

import json
import subprocess
import sys

from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__


def _enabled(names: list[str]) -> list[str]:
    return [n for n in names if __cpu_features__.get(n)]


def settings() -> list[tuple[str, str | None, str]]:
    """[(name, NPY_DISABLE_CPU_FEATURES value or None for native, why it is skipped or "")]."""
    targets = _enabled(list(__cpu_dispatch__))
    avx512 = [n for n in targets if n == "X86_V4" or n.startswith("AVX512")]
    above_baseline = targets  # every enabled dispatch target: what is left is the baseline build
    out: list[tuple[str, str | None, str]] = [("native", None, "")]
    if avx512:
        out.append(("no-avx512", " ".join(avx512), ""))
    else:
        out.append(("no-avx512", None, "this CPU has no AVX-512 dispatch target enabled: same as native"))
    if above_baseline and set(above_baseline) != set(avx512):
        out.append(("baseline", " ".join(above_baseline), ""))
    else:
        out.append(("baseline", None, f"nothing above numpy's baseline but {avx512 or 'nothing'}: "
                                       "same as an earlier setting"))
    return out


def check_effective(disabled: str, env: dict[str, str]) -> None:
    """Fail unless a child process with `env` really runs with those features off."""
    code = ("import json; from numpy._core._multiarray_umath import __cpu_features__ as f; "
            "print(json.dumps({k: bool(v) for k, v in f.items()}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    feats = json.loads(out.stdout)
    still_on = [n for n in disabled.split() if feats.get(n)]
    assert not still_on, f"NPY_DISABLE_CPU_FEATURES={disabled!r} left {still_on} enabled: not a different setting"
