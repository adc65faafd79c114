"""The one resolver of every path a run writes: a function of (stage_id, run_id)."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

LOGS_DIRNAME = "logs"
# A stage or run id: one safe path component (config/validate.py checks config values with it too).
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # fullmatch: "$" would accept a final "\n"
# RunPaths field -> file or folder name inside the run folder: the only spelling of each name.
RUN_FILE_NAMES = {
    "kpi_summary": "kpi_summary.json",
    "runtime_meta": "runtime_meta.json",
    "trades": "trades.jsonl",
    "resolved_config": "config.yaml",
    "run_log": "run.log",
    "plots_dir": "plots",
    "provenance": "provenance.json",
    "params": "params.yaml",
    "metrics": "metrics.json",
    "quotes": "quotes.parquet",
}


class RepoRootError(ValueError):
    """No conf/config.yaml at or above the working folder."""


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) holding conf/config.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "conf" / "config.yaml").is_file():
            return folder
    raise RepoRootError(
        f"no conf/config.yaml in {here} or any folder above it: "
        "run from the repository root (the folder with conf/ and src/)"
    )


class RunPathError(ValueError):
    """A stage or run id that is malformed or would leave logs/."""


def valid_id(value: str) -> bool:
    """A stage or run id that is one safe path component (no separators, no '..')."""
    return bool(ID_RE.fullmatch(value)) and ".." not in value


def check_id(kind: str, value: str) -> str:
    """Return `value` if it is a safe single path component, else raise RunPathError."""
    if not isinstance(value, str) or not valid_id(value):
        raise RunPathError(
            f"{kind}={value!r} is not allowed: use 1-128 characters of letters, digits, "
            "'.', '_' or '-', starting with a letter or digit, without '..' or '/'"
        )
    return value


@dataclass(frozen=True)
class RunPaths:
    """Every file of one run, all inside `run_dir = <root>/logs/<stage_id>/<run_id>`."""

    root: Path
    stage_id: str
    run_id: str
    run_dir: Path
    kpi_summary: Path
    runtime_meta: Path
    trades: Path
    resolved_config: Path
    run_log: Path
    plots_dir: Path
    provenance: Path
    params: Path  # the result-deciding config values, for `dvc params diff` (src/runner/dvcview.py)
    metrics: Path  # the headline KPIs, the DVC metric (src/runner/dvcview.py)
    quotes: Path  # live runs: every quote the engine used (Parquet tick table, src/market/ticks.py)

    def rel(self, path: Path) -> str:
        """Path relative to the repo root, with forward slashes (stable across OSes)."""
        return path.relative_to(self.root).as_posix()


def resolve_run_paths(root: Path, stage_id: str, run_id: str) -> RunPaths:
    """Resolve the run folder and its files; refuse ids that would escape logs/."""
    check_id("stage.id", stage_id)
    check_id("run.id", run_id)
    root = Path(root).resolve()
    logs = root / LOGS_DIRNAME
    run_dir = logs / stage_id / run_id
    # Belt and braces: the id check already forbids separators, this catches a stage
    # folder that is a symlink pointing out of logs/.
    if (logs / stage_id).is_symlink() or run_dir.is_symlink():
        raise RunPathError(f"{run_dir} is a symlink: run folders must be real folders under {logs}")
    return _paths(root, stage_id, run_id, run_dir)


def run_files(run_dir: Path) -> RunPaths:
    """The files of an existing run folder `<root>/logs/<stage_id>/<run_id>`, wherever the user
    points (a folder given on the command line: its ids are read, not checked)."""
    run_dir = Path(run_dir)  # as given (relative paths stay relative, for messages)
    root = run_dir.parents[min(2, len(run_dir.parents) - 1)]
    return _paths(root, run_dir.parent.name, run_dir.name, run_dir)


def _paths(root: Path, stage_id: str, run_id: str, run_dir: Path) -> RunPaths:
    files = {field: run_dir / name for field, name in RUN_FILE_NAMES.items()}
    return RunPaths(root=root, stage_id=stage_id, run_id=run_id, run_dir=run_dir, **files)


def new_run_id(stage_id: str, universe: str, now: datetime | None = None) -> str:
    """Ad-hoc id `{stage}-{universe}-{UTC time}-{6 hex}`; the suffix keeps parallel runs apart."""
    now = now or datetime.now(timezone.utc)
    return f"{stage_id}-{universe}-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
