"""Before the purge: is the code that already runs the code whose source will be recorded?

`python -m src.run` needs a few project modules before it can purge the bytecode caches.
Python itself imports `src/__init__.py` and `src/run.py` first; `src/run.py` (stdlib only up
to there) then deletes the bytecode of the rest -- this module, `src/provenance/purge.py`,
`src/runs/paths.py` and their packages -- before importing them, so they compile from
source (`compiled_fresh` in the report). `preflight` (stdlib only) then, for every project
module loaded so far:

- refuses (exit 3, one line naming the module) a module that did not come from its `.py`
  source through Python's own SourceFileLoader: an extension module, sourceless bytecode,
  a custom finder or path hook, a zip archive;
- for the others (`src`, `src.run`, anything a start-up hook imported), compares the
  bytecode Python would have used (the cache its own loader accepts for the source: same
  mtime and size, or a hash-based `.pyc`) with `compile()` of the source; on a difference
  (a stale `.pyc` whose source was edited at the same size and mtime, a planted
  unchecked-hash one) it purges the caches and runs the same command again, once
  (`os.execv`, `SRC_RUN_BYTECODE_RESTART` in the environment); a difference after that
  restart is refused (exit 3, naming the module).

It also refuses any file in the package tree that Python could import instead of, or
without, a `.py` source (an extension module such as `kpi.cpython-311-x86_64-linux-gnu.so`,
`kpi.abi3.so`, `kpi.so`, or a `.pyc` outside `__pycache__`), before any other project module
is imported, so such code never runs.

The check itself may be stale: `src/run.py` can run from old bytecode. A stale copy of any
version with this design still deletes the other modules' bytecode and calls this module,
now compiled from source, which finds `src.run`'s `.pyc` differs from its source and
restarts. Only bytecode made to skip the check (written by someone who can write to the
repo) defeats it -- see SECURITY.md.
"""
from __future__ import annotations

import os
import sys
import time
from importlib.machinery import BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SourceFileLoader
from pathlib import Path
from types import ModuleType

from src.provenance.purge import PACKAGE
RESTART_ENV = "SRC_RUN_BYTECODE_RESTART"  # set for the one restart: the modules that were stale
EXIT_PROVENANCE = 3  # ExitCode.PROVENANCE (src/exitcodes.py): this module runs before the purge, stdlib only
# Files Python imports instead of (extension modules) or without (bytecode) a .py source.
FOREIGN_SUFFIXES = tuple(sorted({*EXTENSION_SUFFIXES, *BYTECODE_SUFFIXES, ".pyo"}, key=len, reverse=True))

REPORT: dict[str, object] | None = None  # what preflight found; the purge report carries it into the record


class CodeProvenanceError(RuntimeError):
    """Project code that is not, or may not be, compiled from its recorded .py source."""


def loaded_project_modules(package: str = PACKAGE) -> list[tuple[str, ModuleType]]:
    """(name, module) of every loaded module of the package, `__main__` included when it is one."""
    mods = [(n, m) for n, m in list(sys.modules.items()) if n == package or n.startswith(package + ".")]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if main is not None and spec is not None and (spec.name or "").startswith(package + "."):
        mods.append(("__main__", main))
    return sorted(mods, key=lambda nm: nm[0])


def loader_problem(name: str, mod: ModuleType) -> str | None:
    """Why `mod` did not come from a .py source file through Python's SourceFileLoader, or None."""
    spec = getattr(mod, "__spec__", None)
    loader = getattr(spec, "loader", None) or getattr(mod, "__loader__", None)
    origin = getattr(spec, "origin", None) or getattr(mod, "__file__", None)
    if origin is None:  # a namespace package: the hardlock names it (no __init__.py)
        return None
    if type(loader) is not SourceFileLoader or not str(origin).endswith(".py"):
        return (f"module {name} was loaded from {origin} by {type(loader).__name__}, not from its .py source: "
                "only .py files under src/ may run; delete the extension module, bytecode or import hook")
    return None


def bytecode_mismatch(mod: ModuleType) -> str | None:
    """The .pyc this module may have run from, if it is not the bytecode of its source; else None.

    Python's own loader decides whether the cache is valid for the source (timestamp, or
    checked/unchecked hash under --check-hash-based-pycs) and reads it: that is the code an
    import used. It is compared with a fresh compile of the source (code objects compare their
    instructions, constants, names and line tables, not the file name).
    """
    spec = getattr(mod, "__spec__", None)
    origin, cached = getattr(spec, "origin", None), getattr(spec, "cached", None)
    if not origin or not cached or not os.path.exists(cached):
        return None  # no cache: Python compiled the source
    loader = SourceFileLoader(spec.name, origin)
    try:
        used = loader.get_code(spec.name)  # the valid cache's code, else a compile of the source
        source = loader.get_data(origin)
    except (EOFError, ValueError, TypeError):
        # A truncated or garbled cache (a full disk cuts Python's own .pyc write short): the
        # import that loaded this module would have failed on it, so it compiled the source.
        return None
    except (OSError, ImportError):
        return cached  # unreadable now: whatever ran cannot be shown to be the source
    if used != compile(source, origin, "exec", dont_inherit=True):
        return cached
    return None


def foreign_files(src_dir: Path) -> list[Path]:
    """Files in the package tree Python could import instead of a .py source (links not followed)."""
    out: list[Path] = []
    for dirpath, dirnames, files in os.walk(src_dir, followlinks=False):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]  # the purge clears those
        out.extend(Path(dirpath, f) for f in files if f.endswith(FOREIGN_SUFFIXES))
    return sorted(out)


def foreign_message(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    if path.suffix in (".pyc", ".pyo"):
        return (f"{rel} is sourceless bytecode in the package tree: Python imports it when its .py source is "
                "missing, and the record digests only sources; delete it (only .py files under src/ may run)")
    return (f"{rel} is an extension module in the package tree: Python imports it instead of the .py source "
            "the record digests; delete it (only .py files under src/ may run)")


def check(root: Path, restarted: list[str], fresh: tuple[str, ...] | list[str] = ()) -> dict[str, object]:
    """Inspect the loaded project modules and the tree; raise CodeProvenanceError on a refusal.

    Returns {"stale": [...], ...}: modules that may have run from bytecode not compiled from
    their source (the caller restarts once; `restarted` lists those of the previous attempt).
    """
    src_dir = (root / PACKAGE).resolve()
    mods = loaded_project_modules()
    for name, mod in mods:
        problem = loader_problem(name, mod)
        if problem:
            raise CodeProvenanceError(problem)
    if not (root / PACKAGE).is_symlink():  # a linked package: the hardlock refuses it
        for path in foreign_files(root / PACKAGE):
            raise CodeProvenanceError(foreign_message(path, root))
    stale: list[str] = []
    names: list[str] = []
    for name, mod in mods:
        origin = mod.__spec__.origin if getattr(mod, "__spec__", None) else None
        if origin is None or not Path(origin).resolve().is_relative_to(src_dir):
            continue  # a namespace package or another checkout's module: the hardlock refuses those
        label = mod.__spec__.name if name == "__main__" else name
        if name in fresh:
            continue  # its bytecode was deleted just before its import: compiled from source
        names.append(label)
        cached = bytecode_mismatch(mod)
        if cached is not None:
            if restarted:
                raise CodeProvenanceError(
                    f"module {label} ran from bytecode {cached} that was not compiled from {origin}, again after "
                    "purging the caches and starting over: something keeps writing that bytecode; stop it, "
                    f"delete {src_dir}/**/__pycache__ and run again")
            stale.append(label)
    return {"modules_compared": names, "compiled_fresh": sorted(fresh), "stale": stale, "restarted_for": restarted}


def preflight(root: Path, fresh: tuple[str, ...] | list[str] = ()) -> None:
    """For `python -m src.run` only: refuse (exit 3) or restart once; sets REPORT otherwise."""
    global REPORT
    t0 = time.perf_counter()
    restarted = [m for m in os.environ.pop(RESTART_ENV, "").split(",") if m]
    try:
        report = check(root, restarted, fresh)
    except CodeProvenanceError as exc:
        print(f"error: import provenance refused: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_PROVENANCE)
    if report["stale"]:
        _restart(root, report["stale"])
    REPORT = dict(report, seconds=round(time.perf_counter() - t0, 6))


def _restart(root: Path, stale: list[str]) -> None:
    """Purge the caches and run the same command again, from source (never returns)."""
    from src.provenance.purge import purge_bytecode

    purge_bytecode(root)
    os.environ[RESTART_ENV] = ",".join(stale)
    argv = [sys.executable, *sys.orig_argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":  # no exec on Windows: a child, whose exit code becomes ours
        import subprocess
        os._exit(subprocess.call(argv))
    os.execv(sys.executable, argv)
