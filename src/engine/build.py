"""Build the compiled engine at set-up time: `python -m src.engine.build` (after `pip install`).

Builds the ahead-of-time kernel module (aot.py, ~5-20 s, needs a C compiler) for this
checkout's kernel source, so no run pays for it. Idempotent ("up to date" in ~0.1 s when the
module for this source is there and its bytes are the build's); safe when two run at once
(a lock per key; the module's folder appears atomically). Without a C compiler, or with
KERNEL_AOT=0, it warms numba's JIT cache instead (runs will use the JIT) and says so.

Exit codes (src/exitcodes.py): 0 the module (or, without a compiler, the JIT cache) is ready;
2 bad usage; 4 the build failed with a compiler present (the JIT cache is warmed all the same),
or the JIT could not be warmed (one `error:` line).
"""
from __future__ import annotations

import platform
import sys
import time
from typing import Any

from src.engine import aot, jitcache
from src.exitcodes import ExitCode


def _where() -> str:
    return (aot.folder() / aot._so_name()).relative_to(jitcache.ROOT).as_posix()


def warm_jit() -> dict[str, Any]:
    """Compile (or load) numba's JIT code for this CPU into its cache, as a run would."""
    t0 = time.perf_counter()
    from src.engine import kernel_run
    from src.market import synth_jit

    kernel_run.warm_jit()
    synth_jit.warm_up()
    return {"dir": jitcache.cache_key()["dir"], "s": time.perf_counter() - t0}


def _jit_instead(reason: str, failed: bool = False) -> int:
    """Warm the JIT instead; failed: the build itself failed (a bug or a broken toolchain: exit 4)."""
    try:
        jit = warm_jit()
    except Exception as exc:  # noqa: BLE001 - one line, the exit code says it
        print(f"error: {reason}, and numba's JIT could not be warmed either: {exc}", file=sys.stderr)
        return ExitCode.CRASH
    level = "error" if failed else "warning"
    print(f"{level}: {reason}: runs will use numba's JIT; its cache is warm ({jit['dir']}/, {jit['s']:.1f} s)",
          file=sys.stderr)
    return ExitCode.CRASH if failed else ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return ExitCode.OK
    if args:
        print(f"error: python -m src.engine.build takes no arguments (got {' '.join(args)!r}; -h for help)",
              file=sys.stderr)
        return ExitCode.USAGE
    if not aot.enabled():
        return _jit_instead("KERNEL_AOT=0: the ahead-of-time module is not used")
    cc, cc_path = aot.c_compiler()
    if cc_path is None:
        name = cc.split()[0] if cc.split() else repr(cc)
        return _jit_instead(f"the compiled engine module was not built: no C compiler ({name!r} not found on "
                            f"PATH; set CC or install gcc)")
    t0 = time.perf_counter()
    try:
        built, manifest = aot.ensure_built()
    except Exception as exc:  # noqa: BLE001 - the child's last line names the cause
        return _jit_instead(f"the compiled engine module was not built ({exc})", failed=True)
    key = manifest["key"]
    if built:
        print(f"built {_where()} (key {key}, generic {platform.machine()} CPU) in {time.perf_counter() - t0:.1f} s (numba JIT {manifest.get('jit_s', 0):.1f} s, "
              f"pycc {manifest.get('pycc_s', 0):.1f} s)")
    else:
        waited = time.perf_counter() - t0
        by = f", built by another process while this one waited {waited:.1f} s" if waited > 1.0 else ""
        print(f"up to date: {_where()} (key {key}{by})")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
