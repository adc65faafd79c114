"""runtime_meta.json: the run's record. The only file allowed to hold volatile facts."""
from __future__ import annotations

import platform
import re
import socket
import sys
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

SCHEMA_VERSION = 1
KEY_PACKAGES = ("numpy", "hydra-core", "omegaconf", "xxhash", "dvc", "PyYAML")
_SECRET_KEY = re.compile(r"(secret|token|passw|api[_-]?key|private[_-]?key|credential|auth)", re.I)
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


def redact(obj: Any, key: str = "") -> Any:
    """Replace values under secret-looking keys, and key-like strings anywhere."""
    if isinstance(obj, dict):
        return {k: redact(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, key) for v in obj]
    if isinstance(obj, str):
        if key and _SECRET_KEY.search(key):
            return REDACTED
        if "=" in obj:  # an override such as +api_key=...
            k, _, v = obj.partition("=")
            if _SECRET_KEY.search(k) or _SECRET_VALUE.match(v):
                return f"{k}={REDACTED}"
        if _SECRET_VALUE.match(obj):
            return REDACTED
    elif key and _SECRET_KEY.search(key) and obj is not None:
        return REDACTED
    return obj
