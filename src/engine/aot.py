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

`python -m src.engine.build` (build.py) builds it at set-up time. Builders take a lock on
`<key>/aot.lock` and the folder appears atomically, so two builders never race. A run that finds
no module (defer_build() was called: src.run does) uses numba's JIT for itself, says so in one
line on stderr, and starts the build in a detached process when it exits (docs/engine.md says
why); library callers (tests, benchmarks) build it in-line.
"""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader
from importlib.util import module_from_spec, spec_from_file_location
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Iterator

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


def lock_file() -> Path:
    return folder().parent / "aot.lock"


def failed_file() -> Path:
    """The last failed build's reason for this key (a run then does not start another one)."""
    return folder().parent / "aot-failed.json"


def c_compiler() -> tuple[str, str | None]:
    """(the C compiler command numba.pycc will call: $CC or Python's own, its path on PATH or None)."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    words = shlex.split(cc)
    return cc, (shutil.which(words[0]) if words else None)


@contextmanager
def locked(wait: bool = True) -> Iterator[bool]:
    """Hold the build lock of this key (flock: released if the holder dies); False: another holds it."""
    path = lock_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def verify(dest: Path) -> dict[str, Any]:
    """The build's manifest, if the module's bytes are the build's and its key is this source's."""
    manifest = json.loads((dest / "manifest.json").read_text())
    so = dest / _so_name()
    digest = _sha256(so)
    if manifest.get("sha256") != digest or manifest.get("key") != key()["key"]:
        raise RuntimeError(f"{so}: SHA-256 {digest} is not the build's {manifest.get('sha256')} "
                           f"(key {manifest.get('key')}, expected {key()['key']})")
    return manifest


def ensure_built() -> tuple[bool, dict[str, Any]]:
    """(built by this call, manifest): under the lock, the module is checked, and built (a missing or
    damaged one) with numba.pycc; a build failure is written to failed_file() and raised."""
    dest = folder()
    with locked():
        if (dest / "manifest.json").is_file():
            try:
                return False, verify(dest)
            except (OSError, ValueError, RuntimeError):
                pass
        if dest.exists():  # damaged or partial: set aside, then removed (a run may still map the old file)
            aside = dest.with_name(f"aot.old-{os.getpid()}")
            os.replace(dest, aside)
            shutil.rmtree(aside, ignore_errors=True)
        try:
            cc, path = c_compiler()
            if path is None:
                raise RuntimeError(f"no C compiler: {cc.split()[0] if cc.split() else cc!r} not found on PATH "
                                   f"(CC={os.environ.get('CC', '<unset>')})")
            manifest = _build(dest)
        except Exception as exc:
            failed_file().write_text(json.dumps({"key": key()["key"], "error": str(exc)[:500]}) + "\n")
            raise
        failed_file().unlink(missing_ok=True)
        return True, manifest


def _build(dest: Path) -> dict[str, Any]:
    """Build into a temporary folder next to dest, then move it in place (a parallel build loses)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=dest.parent))
    proc = subprocess.run([sys.executable, "-m", "src.engine.aot_build", str(tmp), NAME], cwd=jitcache.ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"ahead-of-time build of {MODULE} failed (exit {proc.returncode}): {last}")
    so = tmp / _so_name()
    manifest = {"module": MODULE, "file": _so_name(), "sha256": _sha256(so), "key": key()["key"],
                "build_s": round(time.perf_counter() - t0, 3), **json.loads(proc.stdout.strip().splitlines()[-1])}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the cache from other users of the checkout
    try:
        os.replace(tmp, dest)  # atomic (callers hold the lock; without it a parallel build would lose here)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _load(dest: Path) -> tuple[ModuleType, dict[str, Any]]:
    manifest = verify(dest)
    so, digest = dest / _so_name(), manifest["sha256"]
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
                        if _state.get("defer"):
                            _state["record"] = _defer()
                            return None
                        log.info("building the compiled engine for key %s once (numba.pycc, ~15 s)", key()["key"])
                        built = ensure_built()[0]
                    _state["module"], rec = _load(dest)
                    _state["record"] = {"used": True, "built": built, **rec,
                                        "load_s": round(time.perf_counter() - t0, 6)}
                except Exception as exc:  # noqa: BLE001 - the @njit path still runs, and the record says why
                    log.warning("compiled engine: ahead-of-time module unavailable (%s); using numba's JIT", exc)
                    _state["record"] = {"used": False, "error": str(exc)[:500]}
        return _state["module"]


def defer_build() -> None:
    """This process is a run: when the module is missing, use numba's JIT now and build it at exit."""
    _state["defer"] = True


BUILD_CMD = "python -m src.engine.build"


def _defer() -> dict[str, Any]:
    """No module for this source: one line on stderr, the JIT for this run, and (unless a build is
    under way, the last one failed or there is no compiler) a detached build when this process exits."""
    k = key()["key"]
    rec: dict[str, Any] = {"used": False, "built": False, "missing": True, "key": k}
    cc, cc_path = c_compiler()
    if failed_file().is_file():
        rec["background_build"] = False
        rec["error"] = json.loads(failed_file().read_text()).get("error", "")[:500]
        why = f"its last build failed ({rec['error'][:120]}); `{BUILD_CMD}` retries"
    elif cc_path is None:
        rec["background_build"] = False
        rec["error"] = f"no C compiler: {cc.split()[0] if cc.split() else cc!r} not found on PATH"
        why = f"{rec['error']}, so none is built; install gcc, then `{BUILD_CMD}`"
    else:
        with locked(wait=False) as free:
            busy = not free
        rec["background_build"] = not busy
        if not busy:
            atexit.register(_spawn_build)
        why = ("a build is under way (another process holds the lock)" if busy else
               f"the module (~5-20 s) is built in the background when this run ends; `{BUILD_CMD}` builds it ahead")
    print(f"note: no compiled engine module for this kernel source (key {k}): this run uses numba's JIT "
          f"(a first compile takes ~5-25 s); {why}", file=sys.stderr, flush=True)
    return rec


def _spawn_build() -> None:
    """`python -m src.engine.build` in a session of its own, output in <key>/aot-build.log."""
    try:
        with open(folder().parent / "aot-build.log", "ab") as out:
            subprocess.Popen([sys.executable, "-m", "src.engine.build"], cwd=jitcache.ROOT, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                             env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    except OSError:  # best effort: the next run says again that the module is missing
        log.debug("could not start the background build", exc_info=True)


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
            from src.market import pcg_jit, synth_jit  # hook: pcg

            fns = {"run_ticks": kernel.run_ticks, "mark_to_market": kernel.mark_to_market,
                   "format_lines": kernel_json.format_lines, "block": synth_jit.block, "draw": pcg_jit.draw}
        else:  # hook: pcg - draw: the market's PCG64 words (src/market/pcg_jit.py)
            fns = {n: getattr(mod, n) for n in ("run_ticks", "mark_to_market", "format_lines", "block", "draw")}
        consts = {k: v for k, v in vars(kernel_layout).items() if k.isupper()}
        _state["engine"] = SimpleNamespace(**consts, **fns, aot=mod is not None)
    return _state["engine"]
