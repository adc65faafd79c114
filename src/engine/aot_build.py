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

ENTRIES = ("run_ticks", "mark_to_market", "format_lines", "block", "draw")  # hook: pcg - draw (pcg_jit.py)


def _wrappers() -> dict[str, tuple[Any, Any]]:
    """name -> (the @njit function, a plain function of the same arity calling it): pycc compiles
    the wrapper with its own flags, the callee keeps the JIT's (e.g. block's error_model="numpy")."""
    from src.engine import kernel, kernel_json
    from src.market import pcg_jit, synth_jit  # hook: pcg

    rt, mm, fl, bl = kernel.run_ticks, kernel.mark_to_market, kernel_json.format_lines, synth_jit.block

    def run_ticks(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,  # type: ignore
                  a20, a21, a22, a23, a24):
        return rt(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21,
                  a22, a23, a24)

    def mark_to_market(a0, a1, a2, a3):  # type: ignore
        return mm(a0, a1, a2, a3)

    def format_lines(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9):  # type: ignore
        return fl(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9)

    def block(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12):  # type: ignore
        return bl(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12)

    dr = pcg_jit.draw  # hook: pcg

    def draw(a0, a1, a2):  # type: ignore
        return dr(a0, a1, a2)

    return {"run_ticks": (rt, run_ticks), "mark_to_market": (mm, mark_to_market), "format_lines": (fl, format_lines),
            "block": (bl, block), "draw": (dr, draw)}


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

    from src.engine import kernel_run
    from src.market import synth_jit

    kernel_run.warm_jit()  # types (and JIT-compiles or loads) every entry point with the real argument types
    synth_jit.warm_up()
    t_jit = time.perf_counter() - t0
    _release_gil_flags()
    cc = CC(name)
    cc.output_dir = str(out_dir)
    cc.target_cpu = ""  # LLVM's generic CPU for this architecture
    for attr, (disp, wrapper) in _wrappers().items():
        sig = disp.signatures[0]
        if len(disp.signatures) != 1 or wrapper.__code__.co_argcount != len(sig):
            raise RuntimeError(f"{attr}: expected one signature of {wrapper.__code__.co_argcount} arguments, "
                               f"got {disp.signatures}")
        cc.export(attr, disp.overloads[sig].signature)(wrapper)
    cc.compile()
    return {"exports": list(ENTRIES), "jit_s": round(t_jit, 3),
            "pycc_s": round(time.perf_counter() - t0 - t_jit, 3)}


if __name__ == "__main__":
    print(json.dumps(build(Path(sys.argv[1]), sys.argv[2])))
