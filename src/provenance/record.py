"""runtime_meta.json: the run's record. The only file allowed to hold volatile facts."""
from __future__ import annotations

import os
import platform
import re
import socket
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from src.provenance.fingerprint import deterministic_config
from src.provenance.outputs import output_digests, sealed_text
from src.runs.atomic import write_text_atomic

# 2: the record holds `outputs.sha256` (every output file's SHA-256, once final) and a `seal`
SCHEMA_VERSION = 2
KEY_PACKAGES = ("numpy", "hydra-core", "omegaconf", "xxhash", "dvc", "PyYAML")
_SECRET_KEY = re.compile(r"(secret|token|passw|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth)", re.I)
_SECRET_VALUE = re.compile(r"^(?=.*\d)(?=.*[a-z])(?=.*[A-Z])[A-Za-z0-9+/=_]{32,}$")  # API-key-like
REDACTED = "***redacted***"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def environment() -> dict[str, Any]:
    """Interpreter, platform, host and key package versions. Environment variables are never read."""
    versions = {}
    for pkg in KEY_PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": socket.gethostname(),
        "packages": versions,
    }


def _env_secrets() -> list[str]:
    """Values of environment variables named like secrets (UPBIT_SECRET_KEY, DB_PASSWORD, ...).

    Only matched against what is about to be recorded (a value typed on the command line
    or pulled in with ${oc.env:...}), never recorded themselves.
    """
    return [v for k, v in os.environ.items() if _SECRET_KEY.search(k) and len(v) >= 12]  # not "disabled"


def redact(obj: Any, key: str = "", _env: list[str] | None = None) -> Any:
    """Replace values under secret-looking keys, key-like strings and secret env values anywhere."""
    env = _env_secrets() if _env is None else _env
    if isinstance(obj, dict):
        return {k: redact(v, str(k), env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, key, env) for v in obj]
    if isinstance(obj, str):
        if key and _SECRET_KEY.search(key):
            return REDACTED
        leaked = any(s in obj for s in env)
        if "=" in obj:  # an override such as +api_key=...
            k, _, v = obj.partition("=")
            if _SECRET_KEY.search(k) or _SECRET_VALUE.match(v) or (leaked and not any(s in k for s in env)):
                return f"{k}={REDACTED}"
        if _SECRET_VALUE.match(obj) or leaked:
            return REDACTED
    elif key and _SECRET_KEY.search(key) and obj is not None:
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


def record_outputs(run_dir: Path, meta: dict[str, Any]) -> None:
    """Put the SHA-256 of every output file into the record: call once the outputs are final."""
    meta["outputs"] = {"sha256": output_digests(run_dir)}
