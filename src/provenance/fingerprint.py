"""The fingerprint: one digest of everything that determines a run's result."""
from __future__ import annotations

from typing import Any

from src.provenance.digests import digest_obj

FINGERPRINT_VERSION = 1
# Keys that do not decide a run's result: run id and overwrite flag name a folder; the
# engine choice only decides how fast it is computed (fast and reference engines give
# byte-identical trades and KPIs, tests/test_engine_equivalence.py), so switching
# engines keeps the fingerprint; the clock only paces the same ticks in wall time.
VOLATILE_CONFIG_KEYS = ("run", "engine", "clock")
# Keys that say where an input lies, not what it holds: a replay file's identity is its content
# (the data identity's SHA-256), so `data/x.parquet`, `./data/x.parquet`, its absolute path or a
# link to it give one fingerprint. The path as given stays in runtime_meta.json (config and
# data.location), outside the fingerprint and provenance.json.
LOCATION_KEYS = (("market", "path"),)


def deterministic_config(resolved: dict[str, Any]) -> dict[str, Any]:
    """The resolved config without volatile and location keys: what decides a run's result."""
    out = {k: v for k, v in resolved.items() if k not in VOLATILE_CONFIG_KEYS}
    for group, key in LOCATION_KEYS:
        if isinstance(out.get(group), dict) and key in out[group]:
            out[group] = {k: v for k, v in out[group].items() if k != key}
    return out


def config_digest(resolved: dict[str, Any]) -> str:
    return digest_obj(deterministic_config(resolved))


def fingerprint(config_digest_: str, code_files: list[dict[str, Any]], zone_sha256: str,
                data_identity: dict[str, Any], seed: int) -> str:
    """xxh3-128 over config digest, code digests by path, zone-profile file, data identity, seed."""
    return digest_obj({
        "version": FINGERPRINT_VERSION,
        "config": config_digest_,
        "code": {f["path"]: f["xxh3_128"] for f in code_files},
        "zone_profile_sha256": zone_sha256,
        "data": digest_obj(data_identity),
        "seed": seed,
    })
