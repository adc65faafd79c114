"""Build the compiled engine ahead of time: one extension module with the kernel's entry points.

Run as `python -m src.engine.aot_build <out_dir> <module_name>` by aot.py, in a process of its
own (numba, LLVM and the C compiler never land in the run's memory). Each entry point is a
thin wrapper calling the @njit function itself, so the code is the JIT's own (its options:
no fastmath, error models, inlining), typed with exactly the signatures a warm-up call gives
it, compiled by numba.pycc for a generic CPU of this architecture (x86-64: SSE2, no FMA, so no
multiply-add can be contracted and the bits are the same on every CPU). The wrappers release
the GIL, as the @njit(nogil=True) functions do, so trades.jsonl is written while the kernel runs.

Prints one JSON line: the exported names and the seconds spent.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

# the entry points: (module attribute, the @njit function's module, its name)
ENTRIES = (("run_ticks", "src.engine.kernel", "run_ticks"),
           ("mark_to_market", "src.engine.kernel", "mark_to_market"),
           ("format_lines", "src.engine.kernel_json", "format_lines"),
           ("block", "src.market.synth_jit", "block"))


def _release_gil_flags() -> None:
    """pycc builds its wrappers with default Flags (GIL held); ask for the GIL to be released."""
    from numba.core.compiler import Flags
    from numba.pycc import compiler

    class ReleaseGil(Flags):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            self.release_gil = True

    compiler.Flags = ReleaseGil


def build(out_dir: Path, name: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumbaPendingDeprecationWarning: pycc has no successor yet
        from numba.pycc import CC
    import importlib

    from src.engine import kernel_run
    from src.market import synth_jit

    kernel_run.warm_jit()  # types (and JIT-compiles or loads) every entry point with the real argument types
    synth_jit.warm_up()
    t_jit = time.perf_counter() - t0
    _release_gil_flags()
    cc = CC(name)
    cc.output_dir = str(out_dir)
    cc.target_cpu = ""  # LLVM's generic CPU for this architecture
    for attr, mod, fn in ENTRIES:
        disp = getattr(importlib.import_module(mod), fn)
        sig = disp.signatures[0]
        cres = disp.overloads[sig]
        args = ", ".join(f"a{i}" for i in range(len(sig)))
        ns: dict[str, Any] = {"jitted": disp}
        exec(f"def {attr}({args}):\n    return jitted({args})\n", ns)  # noqa: S102 - a fixed-arity call
        cc.export(attr, cres.signature)(ns[attr])
    cc.compile()
    return {"exports": [e[0] for e in ENTRIES], "jit_s": round(t_jit, 3),
            "pycc_s": round(time.perf_counter() - t0 - t_jit, 3)}


if __name__ == "__main__":
    print(json.dumps(build(Path(sys.argv[1]), sys.argv[2])))
