"""Output digests and the record's seal: is a run folder still what the run wrote?

The record (runtime_meta.json) holds the SHA-256 of every file in the run folder except
the record itself, `run.log` (a log, appended to by the logger) and the atomic writer's
temp files, taken once the outputs are final; a file added to the folder later by any
module is covered without being listed here. The record also carries a `seal`, its last
key: the SHA-256 of the record's bytes as written without the seal, so any edit to the
record (status, fingerprint, acceptance, a digest, even a re-serialisation) is detected
unless the editor recomputes it. Checking it costs one SHA-256 of the file, no JSON work.

`verify_run` is the one function that decides whether a folder is intact or `edited`
(acceptance, compare and reproduce call it); `differing_results` is the one function
that decides whether two runs produced the same result files.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.provenance.digests import sha256_file
from src.runs.atomic import dumps_deterministic
from src.runs.paths import RUN_FILE_NAMES

RECORD_NAME = RUN_FILE_NAMES["runtime_meta"]
NOT_DIGESTED = (RECORD_NAME, RUN_FILE_NAMES["run_log"])  # the record itself; the log (volatile, appended)
# Descriptions of the inputs (config.yaml and a params file hold the run id; provenance.json
# holds data paths beside digests) and DVC's view of the KPIs (metrics.json: a projection of
# kpi_summary.json, nested under run.dvc_namespace when set): digested and verified, but not
# results, so runs with one fingerprint may differ in them without it being nondeterminism.
INPUT_DESCRIPTIONS = tuple(RUN_FILE_NAMES[k] for k in ("resolved_config", "params", "provenance", "metrics"))
_PROVENANCE = RUN_FILE_NAMES["provenance"]


def _is_temp(name: str) -> bool:
    """The atomic writer's `.<name>.<random>.tmp`: never a finished output."""
    return name.startswith(".") and name.endswith(".tmp")


def _sha256_entry(entry: os.DirEntry[str]) -> str:
    """SHA-256 of a regular file's bytes; anything else gets a marker that matches no digest."""
    if entry.is_symlink():
        return f"symlink:{os.readlink(entry.path)}"
    if not entry.is_file(follow_symlinks=False):
        return f"not-a-file:{stat.S_IFMT(entry.stat(follow_symlinks=False).st_mode):o}"
    return sha256_file(entry.path)


def _walk(folder: str, prefix: str, out: dict[str, str]) -> None:
    with os.scandir(folder) as it:
        for entry in it:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                _walk(entry.path, rel + "/", out)
            elif rel not in NOT_DIGESTED and not _is_temp(entry.name):
                out[rel] = _sha256_entry(entry)


def output_digests(run_dir: Path) -> dict[str, str]:
    """{path relative to the run folder (posix): sha256} of every output file, sorted by path.

    Symlinks are not followed: a link gets a marker, never its target's digest."""
    out: dict[str, str] = {}
    _walk(os.fspath(run_dir), "", out)
    return dict(sorted(out.items()))


_SEAL_TAIL = re.compile(rb',\n  "seal": "([0-9a-f]{64})"\n}\n\Z')


def sealed_text(meta: dict[str, Any]) -> str:
    """The record as written: its deterministic JSON without `seal`, then the seal as the last key."""
    body = dumps_deterministic({k: v for k, v in meta.items() if k != "seal"})
    if not body.endswith("\n}\n") or body == "{}\n":  # pragma: no cover - a record always has keys
        raise ValueError("a record must be a non-empty JSON object")
    seal = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return f'{body[:-3]},\n  "seal": "{seal}"\n}}\n'


def seal_state(raw: bytes) -> bool | None:
    """True: the record's bytes match its seal; False: they do not; None: it has no seal."""
    m = _SEAL_TAIL.search(raw)
    if m is None:
        return None
    return hashlib.sha256(raw[:m.start()] + b"\n}\n").hexdigest() == m.group(1).decode("ascii")


@dataclass
class Verification:
    """`state`: intact (files match the record), edited (they do not), incomplete (the run
    never recorded its outputs: running, killed, or failed before they existed), damaged
    (the record cannot be read). `problems` name the files."""

    state: str
    problems: list[str] = field(default_factory=list)
    meta: dict[str, Any] | None = None

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)


def read_record(run_dir: Path) -> tuple[dict[str, Any], bytes]:
    """runtime_meta.json as a dict and as bytes; ValueError (one line, naming the file) when unreadable."""
    path = run_dir / RECORD_NAME
    try:
        raw = path.read_bytes()
        obj = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{RECORD_NAME}: missing") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{RECORD_NAME}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        # json's own message may end in "at" already ("Invalid control character at"): said once
        raise ValueError(f"{RECORD_NAME}: not valid JSON ({exc.msg.removesuffix(' at')} "
                         f"at line {exc.lineno} column {exc.colno})") from None
    except OSError as exc:
        raise ValueError(f"{RECORD_NAME}: cannot be read ({exc.strerror})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{RECORD_NAME}: expected a JSON object, found {type(obj).__name__}")
    return obj, raw


def verify_run(run_dir: Path, record: tuple[dict[str, Any], bytes] | None = None,
               provenance: dict[str, Any] | None = None) -> Verification:
    """Check a run folder against its record: the seal, then every output file's digest.

    `record`: read_record's result and `provenance`: provenance.json parsed, when the caller
    has read them already."""
    if record is None:
        try:
            record = read_record(run_dir)
        except ValueError as exc:
            return Verification("damaged", [str(exc)])
    meta, raw = record
    state = seal_state(raw)
    if state is None:
        return Verification("edited", [f"{RECORD_NAME}: no seal (edited, or written by a version "
                                       "that did not seal its records)"], meta)
    if not state:
        return Verification("edited", [f"{RECORD_NAME}: its content does not match its seal"], meta)
    recorded = (meta.get("outputs") or {}).get("sha256") if isinstance(meta.get("outputs"), dict) else None
    if recorded is not None and not (isinstance(recorded, dict) and all(isinstance(v, str) for v in recorded.values())):
        return Verification("edited", [f"{RECORD_NAME}: outputs.sha256 is not a map of file digests"], meta)
    if recorded is None:
        return Verification("incomplete", [f"{RECORD_NAME}: no output digests (status {meta.get('status')}: "
                                           "the run ended before its outputs were recorded)"], meta)
    problems = [f"{p}: {what}" for p, what in diff_digests(recorded, output_digests(run_dir))]
    problems += _cross_checks(run_dir, meta, recorded, provenance)
    return Verification("edited" if problems else "intact", problems, meta)


def diff_digests(recorded: dict[str, str], found: dict[str, str]) -> list[tuple[str, str]]:
    """[(path, 'changed' | 'deleted' | 'added')] between two digest maps, sorted by path."""
    out = []
    for path in sorted(set(recorded) | set(found)):
        a, b = recorded.get(path), found.get(path)
        if a != b:
            out.append((path, "deleted" if b is None else "added" if a is None else "changed"))
    return out


def _cross_checks(run_dir: Path, meta: dict[str, Any], recorded: dict[str, str],
                  prov: dict[str, Any] | None) -> list[str]:
    """The record agrees with its deterministic twin: provenance.json names the same fingerprint."""
    if _PROVENANCE not in recorded:
        return []
    if prov is None:
        try:
            prov = json.loads((run_dir / _PROVENANCE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ["provenance.json: unreadable"]
    if not isinstance(prov, dict) or prov.get("fingerprint") != meta.get("fingerprint"):
        return [f"{RECORD_NAME}: its fingerprint is not the one in provenance.json"]
    return []


def differing_results(a: dict[str, str] | None, b: dict[str, str] | None) -> list[str] | None:
    """Result files (outputs that are not input descriptions) whose digests differ between two
    runs; None when either run has no recorded digests."""
    if a is None or b is None:
        return None
    keep = lambda d: {k: v for k, v in d.items() if k not in INPUT_DESCRIPTIONS}  # noqa: E731
    return [p for p, _ in diff_digests(keep(a), keep(b))]
