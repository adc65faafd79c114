"""runtime_meta.json: the run's record. The only file allowed to hold volatile facts.

The one module that knows the record's layout: `build_meta` / `finish_meta` / `failed_meta`
write it (src/runner/execute.py), the accessors below read it (compare, acceptance), and
`deterministic_provenance` derives provenance.json from it.
"""
from __future__ import annotations

import os
import platform
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from src.provenance.digests import digest_obj, sha256_file
from src.provenance.fingerprint import deterministic_config
from src.provenance.gitinfo import git_state
from src.provenance.outputs import output_digests, sealed_text
from src.provenance.purge import PACKAGE
from src.provenance.versions import version
from src.runs.atomic import write_text_atomic
from src.runs.paths import RunPaths

# 2: the record holds `outputs.sha256` (every output file's SHA-256, once final) and a `seal`
SCHEMA_VERSION = 2
KEY_PACKAGES = ("numpy", "hydra-core", "omegaconf", "xxhash", "dvc", "PyYAML")
SECRET_KEY = re.compile(r"(secret|token|passw|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth)", re.I)
_SECRET_VALUE = re.compile(r"^(?=.*\d)(?=.*[a-z])(?=.*[A-Z])[A-Za-z0-9+/=_]{32,}$")  # API-key-like
REDACTED = "***redacted***"
ENTRY_MODULE = f"{PACKAGE}/run.py"  # the entry module whose SHA-256 the record holds
PATH_KEYS = ("run_dir", "kpi_summary", "runtime_meta", "trades", "resolved_config", "run_log")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def environment() -> dict[str, Any]:
    """Interpreter, platform, host and key package versions. Environment variables are never read."""
    versions = {pkg: version(pkg) for pkg in KEY_PACKAGES}  # importlib.metadata's, without importing it
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": os.uname().nodename,  # socket.gethostname() reads uname() too: no socket import
        "packages": versions,
    }


def env_secrets() -> list[str]:
    """Values of environment variables named like secrets (UPBIT_SECRET_KEY, DB_PASSWORD, ...).

    Only matched against what is about to be recorded (a value typed on the command line
    or pulled in with ${oc.env:...}), never recorded themselves.
    """
    return [v for k, v in os.environ.items() if SECRET_KEY.search(k) and len(v) >= 12]  # not "disabled"


def redact(obj: Any, key: str = "", _env: list[str] | None = None) -> Any:
    """Replace values under secret-looking keys, key-like strings and secret env values anywhere."""
    env = env_secrets() if _env is None else _env
    if isinstance(obj, dict):
        return {k: redact(v, str(k), env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, key, env) for v in obj]
    if isinstance(obj, str):
        if key and SECRET_KEY.search(key):
            return REDACTED
        leaked = any(s in obj for s in env)
        if "=" in obj:  # an override such as +api_key=...
            k, _, v = obj.partition("=")
            if SECRET_KEY.search(k) or _SECRET_VALUE.match(v) or (leaked and not any(s in k for s in env)):
                return f"{k}={REDACTED}"
        if _SECRET_VALUE.match(obj) or leaked:
            return REDACTED
    elif key and SECRET_KEY.search(key) and obj is not None:
        return REDACTED
    return obj


def deterministic_provenance(meta: dict[str, Any]) -> dict[str, Any]:
    """The part of the record that is a function of the inputs alone: provenance.json.

    No times, host, run id or mtimes, so DVC can track it in git beside the KPIs and the
    compare command can read what went into a run at any git revision or experiment.
    """
    resolved = deterministic_config(meta["config"]["resolved"])
    zp = meta["zone_profile"]
    return {
        "schema_version": meta["schema_version"],
        "stage_id": meta["stage_id"],
        "fingerprint": meta["fingerprint"],
        "seed": meta["seed"],
        "config": {"digest": meta["config"]["digest"], "choices": meta["config"]["choices"], "resolved": resolved,
                   "files": {f["path"]: f["xxh3_128"] for f in meta["config"]["files"]}},
        "code": {"digest": meta["code"]["digest"], "files": {f["path"]: f["xxh3_128"] for f in meta["code"]["files"]}},
        "zone_profile": {k: zp[k] for k in ("path", "name", "sha256", "mode", "profiles_applied")},
        "data": {k: v for k, v in meta["data"].items() if k != "location"},
    }


def write_record(path: Path, meta: dict[str, Any]) -> None:
    """Write runtime_meta.json atomically, sealed (src/provenance/outputs.py)."""
    write_text_atomic(path, sealed_text(meta))


def record_file(path: Path, meta: dict[str, Any]) -> tuple[Path, bytes]:
    """(path, the bytes write_record writes there): an item of src.runs.atomic.write_all_atomic."""
    return path, sealed_text(meta).encode("utf-8")


def record_outputs(run_dir: Path, meta: dict[str, Any]) -> None:
    """Put the SHA-256 of every output file into the record: call once the outputs are final."""
    meta["outputs"] = {"sha256": output_digests(run_dir)}


def build_meta(*, paths: RunPaths, argv: list[str], config: dict[str, Any], code: list[dict[str, Any]],
               zone_profile: dict[str, Any], data_identity: dict[str, Any], data_location: Any, seed: int,
               fingerprint: str, purge: dict[str, Any], hardlock: dict[str, Any],
               git: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record as written when the run starts (status `running`).

    config: {digest, choices, resolved (secrets redacted here), files}; code: the code inventory;
    data_location: where the data came from (None for generated data: no location key);
    git: git_state(paths.root) when the caller has it already (else it is asked here)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": paths.run_id,
        "stage_id": paths.stage_id,
        "status": "running",
        "pid": os.getpid(),  # with environment.host, tells a live run from an abandoned one
        "started_at": utc_now(),
        "ended_at": None,
        "error": None,
        "command": {"argv": redact(["python", "-m", f"{PACKAGE}.run", *argv]), "overrides": redact(list(argv))},
        "paths": {k: paths.rel(getattr(paths, k)) for k in PATH_KEYS},
        "config": dict(config, resolved=redact(config["resolved"])),
        "code": {"package": PACKAGE, "files": code, "digest": digest_obj({f["path"]: f["xxh3_128"] for f in code}),
                 "entry_module": {"path": ENTRY_MODULE, "sha256": sha256_file(paths.root / ENTRY_MODULE)}},
        "zone_profile": zone_profile,
        "data": {"identity": data_identity, "digest": digest_obj(data_identity),  # content; where: location
                 **({"location": data_location} if data_location is not None else {})},
        "seed": seed,
        "fingerprint": fingerprint,
        "git": git_state(paths.root) if git is None else git,
        "environment": environment(),
        "guard": {"purge": purge, "hardlock": hardlock},
    }


def finish_meta(meta: dict[str, Any], *, status: str, kpis: dict[str, Any], acceptance: dict[str, Any],
                interrupted_by: str | None, hardlock_final: dict[str, Any], engine: dict[str, Any],
                recorded: dict[str, Any] | None) -> None:
    """What the run adds to its record once the engine is done (timings and outputs come after)."""
    meta.update(status=status, ended_at=utc_now(), kpis=kpis, acceptance=acceptance, interrupted_by=interrupted_by)
    meta["guard"]["hardlock_final"] = hardlock_final
    meta["engine"] = engine
    if recorded is not None:
        meta["data"]["recorded"] = recorded


def failed_meta(meta: dict[str, Any] | None, paths: RunPaths, status: str, error: str) -> dict[str, Any]:
    """The record of a failed or interrupted run: what was recorded so far, with the status and error."""
    meta = dict(meta or {"schema_version": SCHEMA_VERSION, "run_id": paths.run_id, "stage_id": paths.stage_id})
    meta.update(status=status, ended_at=utc_now(), error=error)
    return meta


# -- reading a record (which may be hand-edited: accessors never assume a shape) -------------

def _get(meta: Any, *keys: str) -> Any:
    for k in keys:
        meta = meta.get(k) if isinstance(meta, dict) else None
    return meta


def acceptance_rules(meta: dict[str, Any]) -> Any:
    """The gate rules the run was configured with; KeyError/TypeError when the record has none."""
    return meta["config"]["resolved"]["stage"]["acceptance"]


def final_hardlock(meta: dict[str, Any]) -> dict[str, Any]:
    """The last import-provenance check of the run (at the end, else at the start), or {}."""
    return _get(meta, "guard", "hardlock_final") or _get(meta, "guard", "hardlock") or {}


def recorded_outputs(meta: dict[str, Any]) -> dict[str, str] | None:
    """{file: sha256} of the run's outputs, once final (None before)."""
    return _get(meta, "outputs", "sha256")


def started_at(meta: dict[str, Any]) -> str | None:
    value = meta.get("started_at")
    return value if isinstance(value, str) else None


def run_process(meta: dict[str, Any]) -> tuple[str | None, int | None]:
    """(host, pid) of the process that wrote the record."""
    pid = meta.get("pid")
    return _get(meta, "environment", "host"), pid if isinstance(pid, int) else None
