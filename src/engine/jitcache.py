"""Where the compiled kernel is cached, under a key that changes whenever its code could.

Numba's own cache trusts the source file's mtime and size (an edit that keeps both is
served stale code) and lives in `__pycache__`, which every run purges. Here the cache
lives in `<repo>/.cache/numba/<key>/` (git- and DVC-ignored, outside `src/`, so the
purge and the import hardlock leave it alone), and the key is the SHA-256 of every
source file the kernel compiles from, the Numba and llvmlite versions, the Python
version and the CPU name and features the code is compiled for. Numba's locator is
replaced for those files so that the index's "source stamp" is that digest too, and
the folder does not depend on where the checkout lives.

Nothing here imports numba; `prepare()` must run before numba is first imported
(it sets NUMBA_CACHE_DIR as well, for any other cached function).
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
from pathlib import Path
from typing import Any

from src.provenance.versions import version

ROOT = Path(__file__).resolve().parents[2]
# every file the njit code compiles from (records.py: the codes and trade fields the kernel freezes in)
# (kernel_round.py: its round(); kernel_layout.py: the layouts it freezes; aot_build.py: how the
# ahead-of-time module is built, aot.py)
KERNEL_SOURCES = tuple(Path(__file__).resolve().with_name(f) for f in (
    "kernel.py", "kernel_round.py", "kernel_json.py", "records.py", "kernel_layout.py", "aot_build.py")) + (
    ROOT / "src" / "market" / "synth_jit.py",  # the market's compiled block generator
    ROOT / "src" / "market" / "pcg_jit.py",)  # hook: pcg - its PCG64 words (numpy's, drawn compiled)
CACHE_ROOT = ROOT / ".cache" / "numba"

_state: dict[str, Any] = {}


def _cpu() -> tuple[str, str]:
    """The CPU name and features Numba compiles for (NUMBA_CPU_NAME/FEATURES override the host's)."""
    name = os.environ.get("NUMBA_CPU_NAME")
    if name:
        return name, os.environ.get("NUMBA_CPU_FEATURES", "")
    import llvmlite.binding as llvm  # numba imports it anyway; cheap next to numba itself

    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def cache_key() -> dict[str, Any]:
    """The cache key and what it is made of (recorded in runtime_meta.json), once per process."""
    if "key" not in _state:
        _state["key"] = compute_key(KERNEL_SOURCES, ROOT)
    return _state["key"]


def compute_key(paths: tuple[Path, ...], root: Path, cpu: tuple[str, str] | None = None) -> dict[str, Any]:
    """SHA-256 of the sources' bytes (never their mtime or size), versions, CPU -> a 32-hex key.

    cpu: (name, features) the code is built for; None: what Numba's JIT compiles for here."""
    h = hashlib.sha256()
    sources = {}
    for p in paths:
        sources[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    cpu_name, cpu_features = cpu if cpu is not None else _cpu()
    parts = {"sources": sources, "numba": _dist("numba"), "llvmlite": _dist("llvmlite"),
             "python": platform.python_version(), "machine": platform.machine(), "cpu_name": cpu_name,
             "cpu_features_sha256": hashlib.sha256(cpu_features.encode()).hexdigest()}
    for k in sorted(parts):
        h.update(f"{k}={parts[k]!r}\n".encode())
    key = h.hexdigest()[:32]
    return {"key": key, "dir": f".cache/numba/{key}", **parts}


def _dist(name: str) -> str:
    """The installed version (importlib.metadata's, src/provenance/versions.py); not installed: its error."""
    found = version(name)
    if found is None:
        from importlib.metadata import PackageNotFoundError

        raise PackageNotFoundError(name)
    return found


def prepare() -> Path:
    """Point Numba's cache at `.cache/numba/<key>/` and key its index on the sources' digest."""
    if "dir" in _state:
        return _state["dir"]
    info = cache_key()
    cache_dir = ROOT / info["dir"]
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir)
    if "numba" in sys.modules:  # imported earlier (e.g. by a test): its config was read already
        from numba.core import config

        config.CACHE_DIR = str(cache_dir)
    _install_locator(cache_dir, info["key"])
    _state["dir"] = cache_dir
    return cache_dir


def _install_locator(cache_dir: Path, key: str) -> None:
    from numba.core import caching

    kernel_files = {str(p) for p in KERNEL_SOURCES}

    class KeyedLocator(caching._CacheLocator):
        """The kernel's cache: one folder per key; the stamp is the key, never mtime and size."""

        def __init__(self, py_func: Any, py_file: str) -> None:
            self._py_file = py_file

        def ensure_cache_path(self) -> None:
            cache_dir.mkdir(parents=True, exist_ok=True)

        def get_cache_path(self) -> str:
            return str(cache_dir)

        def get_source_stamp(self) -> Any:
            return key

        def get_disambiguator(self) -> str:
            return Path(self._py_file).stem

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            return cls(py_func, py_file) if str(Path(py_file).resolve()) in kernel_files else None

    caching.CacheImpl._locator_classes.insert(0, KeyedLocator)
