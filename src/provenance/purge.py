"""Purge bytecode caches under the project's own package folders (stdlib only: runs first).

Safe by construction: only folders named __pycache__ strictly inside <root>/<package>,
never through a symlink (symlinked folders are skipped, symlinked files are unlinked as
links, and a __pycache__ that is a symlink is unlinked as a link, its target untouched:
Python would otherwise load bytecode through it), and tolerant of a parallel run that
purges or writes bytecode at the same time.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "src"  # the project package's name: written here only (guard, preflight, inventory, record import it)
PROJECT_PACKAGES = (PACKAGE,)


def purge_bytecode(root: Path, packages: tuple[str, ...] = PROJECT_PACKAGES) -> dict:
    """Remove every __pycache__ folder under root/<package>; returns what was done."""
    root = Path(root).resolve()
    removed_dirs = removed_files = 0
    skipped: list[str] = []
    unlinked: list[str] = []
    for pkg in packages:
        base = root / pkg
        if base.is_symlink() or not base.is_dir():
            skipped.append(pkg)  # a symlinked package is refused by the hardlock, not purged
            continue
        for dirpath, dirnames, _files in os.walk(base, followlinks=False):
            for d in list(dirnames):
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    dirnames.remove(d)
                    if d == "__pycache__":
                        _unlink(full)
                        unlinked.append(os.path.relpath(full, root))
                    else:
                        skipped.append(os.path.relpath(full, root))
                elif d == "__pycache__":
                    dirnames.remove(d)
                    n = _remove_cache_dir(full)
                    removed_files += n
                    removed_dirs += 1
    _invalidate_finder_caches()
    preflight = getattr(sys.modules.get("src.provenance.preflight"), "REPORT", None)  # set by src.run
    return {"packages": list(packages), "removed_dirs": removed_dirs, "removed_files": removed_files,
            "skipped_symlinks": sorted(skipped), "unlinked_cache_links": sorted(unlinked), "preflight": preflight}


def _invalidate_finder_caches() -> None:
    """importlib.invalidate_caches() without its import of importlib.metadata (Python 3.12+'s
    PathFinder clears the metadata finder's cache too: ~10 ms of imports a run does not need):
    every meta-path finder's and every path entry finder's own cache."""
    from importlib.machinery import PathFinder

    for finder in list(sys.meta_path):
        if finder is PathFinder or not hasattr(finder, "invalidate_caches"):
            continue
        finder.invalidate_caches()
    for entry in list(sys.path_importer_cache.values()):
        if entry is not None and hasattr(entry, "invalidate_caches"):
            entry.invalidate_caches()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)  # the link only: never its target
    except FileNotFoundError:
        pass  # a parallel run got here first


def _remove_cache_dir(path: str) -> int:
    """Unlink the entries of one __pycache__ (never following links), then the folder."""
    n = 0
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return 0  # a parallel run got here first
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                continue  # bytecode caches hold no folders; leave anything odd alone
            os.unlink(e.path)
            n += 1
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass  # gone already, or a parallel import just wrote a fresh .pyc into it
    return n
