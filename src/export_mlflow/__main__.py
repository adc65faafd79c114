"""`python -m src.export_mlflow [--stage S] [RUN ...] --tracking-uri URI [--experiment NAME]`.

Logs each run folder into an MLflow tracking store (SQLite `sqlite:////abs/mlflow.db`, a
server `http://host:port`, ...): the resolved config as params, numeric KPIs as metrics,
fingerprint, commit, dirty flag, gate verdict, status and note as tags, the folder as
artifacts. Running it again updates the same MLflow runs and never duplicates them (see
src/export_mlflow/store.py). Needs the `[mlflow]` extra.

Every folder is verified against its record first (src/provenance/outputs.py, as compare
and acceptance do): when one was edited after it ended, or cannot be read, nothing is
exported and the exit code is 5, naming the run and the file.

Exit codes: 0 exported; 2 bad usage, unknown run, MLflow missing or the tracking store
refused or unreachable; 5 a run folder is edited or damaged (nothing exported).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from src.compare.load import RunNotFound, RunRecord, list_stage, read_folder
from src.export_mlflow.entities import payload_of
from src.exitcodes import ExitCode
from src.runs.paths import LOGS_DIRNAME, RepoRootError, RunPathError, check_id, find_repo_root

EXIT_USAGE = 2
DEFAULT_EXPERIMENT = "paper-runs"
EXTRA_HINT = "pip install '.[mlflow]' (the [mlflow] extra in pyproject.toml)"


class UsageError(ValueError):
    """Bad input: one `error:` line, exit 2."""


def folder_of(root: Path, ref: str) -> Path:
    """A run folder by path, or a run id searched under logs/*/ (as src.compare resolves them)."""
    path = Path(ref)
    if path.is_dir():
        return path.resolve()
    logs = root / LOGS_DIRNAME
    if _is_id(ref) and logs.is_dir():  # never a glob pattern or a way out of logs/
        hits = sorted(p for p in logs.glob(f"*/{ref}") if p.is_dir())
        if len(hits) > 1:
            listed = ", ".join(h.relative_to(root).as_posix() for h in hits)
            raise UsageError(f"run id {ref!r} is ambiguous: {listed}: pass the folder")
        if hits:
            return hits[0]
    raise UsageError(f"{ref!r}: not a run folder nor a run id under {LOGS_DIRNAME}/ (git revisions and "
                     "DVC experiments are not exported: check one out and pass its run folder)")


def _is_id(value: str) -> bool:
    try:
        check_id("run id", value)
    except RunPathError:
        return False
    return True


def load(root: Path, refs: list[str], stage: str | None) -> list[tuple[Path, RunRecord]]:
    folders = [folder_of(root, r) for r in refs]
    if stage:
        try:
            check_id("--stage", stage)
        except RunPathError as exc:
            raise UsageError(str(exc)) from None
        try:
            folders += sorted(list_stage(root, stage))
        except RunNotFound as exc:
            raise UsageError(str(exc)) from None
    out, seen = [], set()
    for f in folders:
        if f in seen:
            continue
        seen.add(f)
        try:
            out.append((f, read_folder(f, root)))
        except RunNotFound as exc:
            if stage and f.parent == root / LOGS_DIRNAME / stage:  # a stray folder among the stage's runs
                print(f"skipped   {_rel(f, root)}: {str(exc).replace(f'{f}: ', '', 1)}")
                continue
            raise UsageError(str(exc)) from None
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def default_artifact_location(uri: str) -> str | None:
    """For a SQLite store: `mlartifacts/` beside the database file (MLflow's own default is
    `./mlruns` under the working folder, which would put artifacts into this repo)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = uri[len("sqlite:///"):].split("?", 1)[0]
    if not db or db == ":memory:":
        return None
    return (Path(db).resolve().parent / "mlartifacts").as_uri()


def shown_uri(uri: str) -> str:
    """The URI as printed: a password in it (`http://user:secret@host`) is never echoed."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _import_mlflow() -> Any:
    # MLflow sends usage telemetry unless told not to; an exporter of a team's runs keeps
    # quiet unless the user opted in (MLFLOW_DISABLE_TELEMETRY=false)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise UsageError(f"exporting to MLflow needs MLflow, which is not importable here ({exc}): "
                         f"{EXTRA_HINT}") from None
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the SQLite store's schema migrations
    return MlflowClient


def export(runs: list[tuple[Path, RunRecord]], root: Path, uri: str, experiment: str,
           artifact_location: str | None) -> None:
    from mlflow.exceptions import MlflowException

    from src.export_mlflow.store import existing_runs, export_run, open_experiment

    client = _import_mlflow()(tracking_uri=uri)
    todo = []
    for folder, rec in runs:
        if rec.state is None:  # no record at all: killed before it wrote one
            print(f"skipped   {_rel(folder, root)}: {rec.status}, no record to export")
            continue
        todo.append(payload_of(folder, rec.state, rec.status, rec.meta, rec.kpis, rec.provenance,
                               rec.outputs, _rel(folder, root)))
    done: dict[str, int] = {}
    try:
        exp_id = open_experiment(client, experiment, artifact_location or default_artifact_location(uri))
        found: dict[str, dict[str, list[Any]]] = {}
        for p in todo:
            if p.stage_id not in found:
                found[p.stage_id] = existing_runs(client, exp_id, p.stage_id)
            action, mlflow_id = export_run(client, exp_id, p, found[p.stage_id].get(p.run_id, []))
            done[action] = done.get(action, 0) + 1
            print(f"{action:<9} {p.stage_id}/{p.run_id}  mlflow run {mlflow_id}", flush=True)
    except (MlflowException, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        secret = urlsplit(uri).password
        said = first.replace(secret, "***") if secret else first
        raise UsageError(f"tracking store {shown_uri(uri)}: {said} ({sum(done.values())} of {len(todo)} "
                         "runs exported before this)") from None
    summary = ", ".join(f"{n} {a}" for a, n in sorted(done.items())) or "nothing to export"
    print(f"exported {sum(done.values())} runs to experiment {experiment!r} (id {exp_id}) "
          f"at {shown_uri(uri)}: {summary}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.export_mlflow", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", help="run folders or run ids (searched under logs/*/)")
    ap.add_argument("--stage", help="every run folder under logs/<stage>/")
    ap.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)")
    ap.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help=f"default: {DEFAULT_EXPERIMENT}")
    ap.add_argument("--artifact-location", help="artifact root of the experiment when this creates it "
                    "(default: for sqlite:, mlartifacts/ beside the database; else the store's)")
    args = ap.parse_args(argv)
    if not args.runs and not args.stage:
        ap.error("give run folders or run ids, or --stage STAGE")
    if not args.tracking_uri:
        ap.error("--tracking-uri URI is required (or set MLFLOW_TRACKING_URI)")
    if not args.experiment.strip():
        ap.error("--experiment must not be empty")
    try:
        root = find_repo_root()
        runs = load(root, args.runs, args.stage)
        bad = [(f, r) for f, r in runs if r.state in ("edited", "damaged")]
        if bad:
            listed = "; ".join(f"{_rel(f, root)} is {r.state} ({'; '.join(r.problems)})" for f, r in bad)
            print(f"error: {listed}: nothing exported (a run folder must match its record)", file=sys.stderr)
            return ExitCode.EDITED
        _import_mlflow()  # after the runs are read: a wrong run name is told without MLflow's import time
        export(runs, root, args.tracking_uri, args.experiment, args.artifact_location)
    except (UsageError, RepoRootError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    from src.exitcodes import cli

    cli(main)  # output cut off (`| head -1`): exit quietly
