"""What went into a run: project source files, config files, and the zone-profile evidence."""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from src.provenance.digests import file_record, sha256_file
from src.provenance.purge import PACKAGE


def _tree(base: Path, suffixes: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, files in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        out.extend(Path(dirpath, f) for f in files if f.endswith(suffixes))
    return sorted(out)


def imported_files(root: Path, package: str = PACKAGE) -> set[str]:
    """Relative paths of project source files loaded in this process."""
    out = set()
    for name, mod in list(sys.modules.items()):
        if name == package or name.startswith(package + ".") or name == "__main__":
            file = getattr(mod, "__file__", None)
            if file and Path(file).resolve().is_relative_to(root):
                out.add(Path(file).resolve().relative_to(root).as_posix())
    return out


def code_inventory(root: Path, package: str = PACKAGE) -> list[dict[str, Any]]:
    """Every .py file of the project package, with whether this process imported it.

    The fingerprint covers all of them, so it does not depend on which modules some
    earlier job in the same process happened to import.
    """
    loaded = imported_files(root, package)
    files = []
    for path in _tree(root / package, (".py",)):
        rec = file_record(root, path)
        rec["imported"] = rec["path"] in loaded
        files.append(rec)
    return files


def config_inventory(root: Path, used: Iterable[str]) -> list[dict[str, Any]]:
    """Every YAML file under conf/, marking the ones this run's choices selected."""
    used = set(used)
    files = []
    for path in _tree(root / "conf", (".yaml", ".yml")):
        rec = file_record(root, path)
        rec["used"] = rec["path"] in used
        files.append(rec)
    return files


def zone_evidence(root: Path, option: str, name: str, mode: str,
                  applied: dict[str, str], sources: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(deterministic evidence for the KPIs, full evidence with size and mtime for the record)."""
    path = root / "conf" / "zone_profile" / f"{option}.yaml"
    st = os.stat(path)
    kpi = {
        "path": path.relative_to(root).as_posix(),
        "name": name,
        "sha256": sha256_file(path),
        "mode": mode,
        "profiles_applied": applied,
    }
    meta = dict(kpi, size=st.st_size, mtime_ns=st.st_mtime_ns,
                mtime_utc=_iso(st.st_mtime), mapping_source=sources)
    return kpi, meta


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds")
