"""Output digests and the record's seal: is a run folder still what the run wrote?

The record (runtime_meta.json) holds the SHA-256 of every file in the run folder except
the record itself, `run.log` (a log, appended to by the logger) and the atomic writer's
temp files, taken once the outputs are final; a file added to the folder later by any
module is covered without being listed here. The record also carries a `seal`: the
SHA-256 of its own canonical JSON without the seal, so an edit to the record (status,
fingerprint, acceptance, a digest) is detected unless the editor recomputes it.

`verify_run` is the one function that decides whether a folder is intact or `edited`
(acceptance, compare and reproduce call it); `differing_results` is the one function
that decides whether two runs produced the same result files.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_EDITED = 5  # acceptance and compare: a run's files do not match its record (edited or damaged)
RECORD_NAME = "runtime_meta.json"
NOT_DIGESTED = (RECORD_NAME, "run.log")  # the record itself; the log (volatile, appended by the logger)
# Descriptions of the inputs (config.yaml and a params file hold the run id; provenance.json
# holds data paths beside digests): digested and verified, but not results, so runs with one
# fingerprint may differ in them without it being nondeterminism.
INPUT_DESCRIPTIONS = ("config.yaml", "params.yaml", "provenance.json")


def _is_temp(name: str) -> bool:
    """The atomic writer's `.<name>.<random>.tmp`: never a finished output."""
    return name.startswith(".") and name.endswith(".tmp")


def _sha256_entry(path: Path) -> str:
    """SHA-256 of a regular file's bytes; anything else gets a marker that matches no digest."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return f"symlink:{os.readlink(path)}"
    if not stat.S_ISREG(st.st_mode):
        return f"not-a-file:{stat.S_IFMT(st.st_mode):o}"
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def output_digests(run_dir: Path) -> dict[str, str]:
    """{path relative to the run folder (posix): sha256} of every output file, sorted by path."""
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(run_dir):  # does not follow symlinked folders
        rel_dir = Path(dirpath).relative_to(run_dir)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            rel = (rel_dir / name).as_posix()
            if rel in NOT_DIGESTED or _is_temp(name):
                continue
            out[rel] = _sha256_entry(Path(dirpath, name))
    return dict(sorted(out.items()))


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def seal_of(meta: dict[str, Any]) -> str:
    """SHA-256 of the record's canonical JSON without its `seal` key."""
    return hashlib.sha256(_canonical({k: v for k, v in meta.items() if k != "seal"})).hexdigest()


def sealed(meta: dict[str, Any]) -> dict[str, Any]:
    """The record with its seal (re)computed: the only way the record is written."""
    out = json.loads(_canonical({k: v for k, v in meta.items() if k != "seal"}))  # as it reads back
    out["seal"] = seal_of(out)
    return out


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


def read_record(run_dir: Path) -> dict[str, Any]:
    """runtime_meta.json as a dict; ValueError (one line, naming the file) when unreadable."""
    path = run_dir / RECORD_NAME
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{RECORD_NAME}: missing") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{RECORD_NAME}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{RECORD_NAME}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise ValueError(f"{RECORD_NAME}: cannot be read ({exc.strerror})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{RECORD_NAME}: expected a JSON object, found {type(obj).__name__}")
    return obj


def verify_run(run_dir: Path, meta: dict[str, Any] | None = None) -> Verification:
    """Check a run folder against its record: the seal, then every output file's digest.

    `meta`: the record, when the caller has read it already (read_record)."""
    if meta is None:
        try:
            meta = read_record(run_dir)
        except ValueError as exc:
            return Verification("damaged", [str(exc)])
    if not isinstance(meta.get("seal"), str):
        return Verification("edited", [f"{RECORD_NAME}: no seal (edited, or written by a version "
                                       "that did not seal its records)"], meta)
    try:
        ok = seal_of(meta) == meta["seal"]
    except ValueError:  # NaN or similar: no writer of ours produces it
        ok = False
    if not ok:
        return Verification("edited", [f"{RECORD_NAME}: its content does not match its seal"], meta)
    recorded = (meta.get("outputs") or {}).get("sha256") if isinstance(meta.get("outputs"), dict) else None
    if recorded is None:
        return Verification("incomplete", [f"{RECORD_NAME}: no output digests (status {meta.get('status')}: "
                                           "the run ended before its outputs were recorded)"], meta)
    problems = [f"{p}: {what}" for p, what in diff_digests(recorded, output_digests(run_dir))]
    problems += _cross_checks(run_dir, meta, recorded)
    return Verification("edited" if problems else "intact", problems, meta)


def diff_digests(recorded: dict[str, str], found: dict[str, str]) -> list[tuple[str, str]]:
    """[(path, 'changed' | 'deleted' | 'added')] between two digest maps, sorted by path."""
    out = []
    for path in sorted(set(recorded) | set(found)):
        a, b = recorded.get(path), found.get(path)
        if a != b:
            out.append((path, "deleted" if b is None else "added" if a is None else "changed"))
    return out


def _cross_checks(run_dir: Path, meta: dict[str, Any], recorded: dict[str, str]) -> list[str]:
    """The record agrees with its deterministic twin: provenance.json names the same fingerprint."""
    if "provenance.json" not in recorded:
        return []
    try:
        prov = json.loads((run_dir / "provenance.json").read_text(encoding="utf-8"))
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
