"""The compiled engine without numba at run time: an extension module built once, then loaded.

The first run (or the first after an edit to a kernel source) builds the kernel's entry points
(aot_build.py, numba.pycc, in a process of its own, ~10-20 s) into
`<repo>/.cache/numba/<key>/aot/`, under jitcache's key with the CPU named "generic" (the code
is built for the generic CPU of this architecture: no FMA, the same bits on every CPU). Every
later run loads that file with importlib's ExtensionFileLoader, after checking its SHA-256
against the build's manifest: no numba, no LLVM, a few MB and milliseconds. The module is
`src.engine._aot_kernel`; the import hardlock (provenance/guard.py) accepts exactly the file
recorded here with exactly that digest. KERNEL_AOT=0 (or a failed build) falls back to the
@njit functions (numba imported, cached by jitcache.py).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from src.engine import jitcache, kernel_layout

log = logging.getLogger(__name__)

NAME = "_aot_kernel"
MODULE = f"src.engine.{NAME}"
AOT_CPU = ("generic", "")  # the CPU the module is built for (jitcache's key names it)
_lock = threading.Lock()
_state: dict[str, Any] = {}


def enabled() -> bool:
    return os.environ.get("KERNEL_AOT", "1") != "0"


def key() -> dict[str, Any]:
    """jitcache's key for the generic-CPU build (no llvmlite needed to know the CPU)."""
    if "key" not in _state:
        _state["key"] = jitcache.compute_key(jitcache.KERNEL_SOURCES, jitcache.ROOT, cpu=AOT_CPU)
    return _state["key"]


def folder() -> Path:
    return jitcache.ROOT / key()["dir"] / "aot"


def _so_name() -> str:
    return NAME + EXTENSION_SUFFIXES[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(dest: Path) -> dict[str, Any]:
    """Build into a temporary folder next to dest, then move it in place (a parallel build loses)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=dest.parent))
    proc = subprocess.run([sys.executable, "-m", "src.engine.aot_build", str(tmp), NAME], cwd=jitcache.ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        raise RuntimeError(f"ahead-of-time build of {MODULE} failed (exit {proc.returncode}): "
                           f"{proc.stderr.strip().splitlines()[-1:] or ['no output']}")
    so = tmp / _so_name()
    manifest = {"module": MODULE, "file": _so_name(), "sha256": _sha256(so), "key": key()["key"],
                "build_s": round(time.perf_counter() - t0, 3), **json.loads(proc.stdout.strip().splitlines()[-1])}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the cache from other users of the checkout
    try:
        os.replace(tmp, dest)  # atomic; fails if another process put its build there first
    except OSError:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    return manifest


def _load(dest: Path) -> tuple[ModuleType, dict[str, Any]]:
    manifest = json.loads((dest / "manifest.json").read_text())
    so = dest / _so_name()
    data = so.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if manifest.get("sha256") != digest or manifest.get("key") != key()["key"]:
        raise RuntimeError(f"{so}: SHA-256 {digest} is not the build's {manifest.get('sha256')} "
                           f"(key {manifest.get('key')}, expected {key()['key']})")
    loader = ExtensionFileLoader(MODULE, str(so))
    spec = spec_from_file_location(MODULE, so, loader=loader)
    assert spec is not None
    mod = module_from_spec(spec)
    loader.exec_module(mod)
    sys.modules[MODULE] = mod
    return mod, {**manifest, "path": so.relative_to(jitcache.ROOT).as_posix(), "sha256": digest}


def module() -> ModuleType | None:
    """The loaded extension module (built first if need be), or None (disabled or the build failed)."""
    with _lock:
        if "module" not in _state:
            _state["module"], _state["record"] = None, {"used": False}
            if enabled():
                t0 = time.perf_counter()
                dest, built = folder(), False
                try:
                    if not (dest / "manifest.json").is_file():
                        log.info("building the compiled engine for key %s once (numba.pycc, ~15 s)", key()["key"])
                        _build(dest)
                        built = True
                    _state["module"], rec = _load(dest)
                    _state["record"] = {"used": True, "built": built, **rec,
                                        "load_s": round(time.perf_counter() - t0, 6)}
                except Exception as exc:  # noqa: BLE001 - the @njit path still runs, and the record says why
                    log.warning("compiled engine: ahead-of-time module unavailable (%s); using numba's JIT", exc)
                    _state["record"] = {"used": False, "error": str(exc)[:500]}
        return _state["module"]


def loaded_file() -> tuple[str, str] | None:
    """(absolute path, SHA-256) of the module this process loaded, for the import hardlock."""
    rec = _state.get("record") or {}
    if not rec.get("used"):
        return None
    return str(jitcache.ROOT / rec["path"]), rec["sha256"]


def record() -> dict[str, Any]:
    """What runtime_meta.json's engine.kernel says about the module (path, SHA-256, key, build)."""
    return dict(_state.get("record") or {"used": False})


def engine() -> SimpleNamespace:
    """The kernel's layout constants and entry points: the extension module's, or the @njit ones."""
    if "engine" not in _state:
        mod = module()
        if mod is None:
            from src.engine import kernel, kernel_json
            from src.market import synth_jit

            fns = {"run_ticks": kernel.run_ticks, "mark_to_market": kernel.mark_to_market,
                   "format_lines": kernel_json.format_lines, "block": synth_jit.block}
        else:
            fns = {n: getattr(mod, n) for n in ("run_ticks", "mark_to_market", "format_lines", "block")}
        consts = {k: v for k, v in vars(kernel_layout).items() if k.isupper()}
        _state["engine"] = SimpleNamespace(**consts, **fns, aot=mod is not None)
    return _state["engine"]
