"""Import-provenance hardlock: every project module must come from source in this repo.

Checked before the engine starts (and again when the record is written, to cover lazy
imports): each loaded module of the project package resolves, after following
symlinks, inside the repo root that holds the conf/ in use; it was loaded from a .py
source, not a sourceless .pyc; the package is a regular package in exactly one folder,
<root>/src; no stray .pyc lies in the package tree outside __pycache__; and no symlink in
the tree leads outside the repo or stands in for a __pycache__ folder (the purge skips links,
so bytecode behind one would load unchecked).
"""
from __future__ import annotations

import hashlib
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, SourceFileLoader, SourcelessFileLoader
from pathlib import Path
from types import ModuleType

from src.provenance.purge import PACKAGE


def _project_modules(package: str) -> list[tuple[str, ModuleType]]:
    mods = [(n, m) for n, m in list(sys.modules.items())
            if n == package or n.startswith(package + ".")]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if main is not None and spec is not None and (spec.name or "").startswith(package + "."):
        mods.append(("__main__", main))
    return sorted(mods, key=lambda nm: nm[0])


def check_imports(root: Path, package: str = PACKAGE) -> dict:
    """Return {modules: [...], violations: [...]}; raise nothing (the caller refuses the run)."""
    root = Path(root).resolve()
    expected = root / package
    violations: list[str] = []
    modules: list[str] = []
    if expected.is_symlink():
        violations.append(f"package folder {expected} is a symlink to {expected.resolve()}: "
                          f"the project package must be a real folder inside {root}")
    for name, mod in _project_modules(package):
        file = getattr(mod, "__file__", None)
        paths = list(getattr(mod, "__path__", None) or [])
        if file is None:
            violations.append(f"module {name} has no __init__.py (namespace package over {paths}): "
                              f"expected a regular package at {expected}")
            continue
        real = Path(file).resolve()
        if not real.is_relative_to(root):
            violations.append(f"module {name} loaded from {file} (resolves to {real}), "
                              f"outside the repo root {root} that holds the conf/ in use")
        loader = getattr(mod, "__loader__", None)
        if isinstance(loader, SourcelessFileLoader) or real.suffix == ".pyc":
            violations.append(f"module {name} loaded from sourceless bytecode {file}: "
                              f"delete it and keep the .py source in {expected}")
        elif (type(loader) is not SourceFileLoader or real.suffix != ".py") and not _aot_module(name, real):
            violations.append(f"module {name} loaded from {file} by {type(loader).__name__}, not from its .py "
                              "source: only .py files under src/ may run; delete the extension module or import hook")
        if name == package and len(paths) != 1:
            violations.append(f"package {package} is split across folders {paths}: expected only {expected}")
        elif name == package and Path(paths[0]).resolve() != expected.resolve():
            violations.append(f"package {package} loaded from {paths[0]}, expected {expected}")
        modules.append(name)
    if expected.is_dir() and not expected.is_symlink():
        for dirpath, dirnames, files in os.walk(expected, followlinks=False):
            for name in (*dirnames, *files):  # the purge never follows a link, so bytecode behind one stays
                link = Path(dirpath, name)
                if link.is_symlink() and name == "__pycache__":
                    violations.append(f"bytecode cache {link} is a symlink to {link.resolve()}: Python would load "
                                      "bytecode through it that the purge cannot clear; delete the link")
                elif link.is_symlink() and not link.resolve().is_relative_to(root):
                    violations.append(f"{link} is a symlink to {link.resolve()}, outside the repo root {root}: "
                                      "Python may load code through it; replace it with the real folder or file")
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for f in files:
                if f.endswith((".pyc", ".pyo")):
                    stray = Path(dirpath, f)
                    violations.append(f"sourceless bytecode {stray} in the package tree: "
                                      "Python may import it instead of source; delete it")
                elif f.endswith(tuple(EXTENSION_SUFFIXES)):
                    violations.append(f"extension module {Path(dirpath, f)} in the package tree: Python imports "
                                      "it instead of the .py source; delete it")
    violations.extend(config_links_out(root))
    return {"root": str(root), "modules_checked": len(modules), "violations": violations}


def _aot_module(name: str, real: Path) -> bool:
    """The compiled engine's ahead-of-time module (src/engine/aot.py): accepted only under its own
    name, from exactly the file aot.py loaded (in .cache/numba/<key>/aot/, outside src/) and only
    while that file still has the SHA-256 checked when it was loaded."""
    aot = sys.modules.get("src.engine.aot")
    loaded = aot.loaded_file() if aot is not None and name == aot.MODULE else None
    if loaded is None or Path(loaded[0]).resolve() != real:
        return False
    try:
        return hashlib.sha256(real.read_bytes()).hexdigest() == loaded[1]
    except OSError:
        return False


def config_links_out(root: Path) -> list[str]:
    """conf/ files (and conf/ itself) that resolve outside the repo: refused, not recorded.

    The record digests conf/ by its path in the repo and git sees only the link, so a
    link out would let a file nobody versions decide the run.
    """
    conf = root / "conf"
    if conf.is_symlink() and not Path(os.path.realpath(conf)).is_relative_to(root):
        return [f"config folder {conf} is a symlink to {os.path.realpath(conf)}, outside the repo root {root}: "
                "replace it with the real folder"]
    out: list[str] = []
    todo = [str(conf)]
    while todo:  # os.scandir: one directory read per folder, no stat per entry
        try:
            entries = list(os.scandir(todo.pop()))
        except OSError:
            continue
        for e in entries:
            if e.is_symlink():
                target = Path(os.path.realpath(e.path))  # never raises, also for a loop or a dangling link
                if not target.is_relative_to(root):
                    kind = "folder" if os.path.isdir(e.path) else "file"
                    out.append(f"config {kind} {Path(e.path).relative_to(root).as_posix()} is a symlink to "
                               f"{target}, outside the repo root {root}: replace the link with the file itself")
            elif e.is_dir():
                todo.append(e.path)
    return sorted(out)
