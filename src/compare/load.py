"""Find and read runs: a run folder, a run id under logs/, or a git revision / DVC experiment."""
from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from src.provenance.outputs import Verification, read_record, seal_state, verify_run
from src.provenance.record import deterministic_provenance, recorded_outputs, run_process, started_at
from src.runs.paths import LOGS_DIRNAME, RUN_FILE_NAMES, run_files


class RunNotFound(ValueError):
    """A reference that names no readable run."""


@dataclass
class RunRecord:
    label: str  # what the user typed, or the run id
    source: str  # "folder" or "git:<commit>"
    status: str  # completed / failed / interrupted / running / abandoned
    kpis: dict[str, Any] | None
    provenance: dict[str, Any] | None
    meta: dict[str, Any] = field(default_factory=dict)  # runtime_meta (folders only)
    kpi_path: str | None = None
    # folders: intact / edited / incomplete (src/provenance/outputs.py) or damaged (unreadable,
    # mis-shaped); None for a revision read from git (no record to verify against)
    state: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> dict[str, str] | None:
        """{file: sha256} as recorded, for an intact run only."""
        return recorded_outputs(self.meta) if self.state == "intact" else None

    @property
    def fingerprint(self) -> str | None:
        return (self.provenance or {}).get("fingerprint")


class Damaged(ValueError):
    """A run file that cannot be read as what the run wrote: not UTF-8, not JSON, mis-shaped."""


def _json(text: str, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Damaged(f"{where}: not valid JSON ({exc.msg.removesuffix(' at')} at line {exc.lineno})") from None
    if not isinstance(obj, dict):
        raise Damaged(f"{where}: expected a JSON object, found {type(obj).__name__}")
    return obj


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Damaged(f"{path.name}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise Damaged(f"{path.name}: cannot be read ({exc.strerror})") from None
    return _json(text, path.name)


# (file, key path, allowed types): what diff.py and render.py read; a key may be absent or null
_SHAPES: tuple[tuple[str, tuple[str, ...], tuple[type, ...]], ...] = (
    ("runtime_meta.json", ("status",), (str,)), ("runtime_meta.json", ("started_at",), (str,)),
    ("runtime_meta.json", ("environment",), (dict,)), ("runtime_meta.json", ("acceptance",), (dict,)),
    ("runtime_meta.json", ("acceptance", "results"), (list,)), ("runtime_meta.json", ("config",), (dict,)),
    ("runtime_meta.json", ("outputs",), (dict,)), ("runtime_meta.json", ("outputs", "sha256"), (dict,)),
    ("kpi_summary.json", ("exit_reasons",), (dict,)),
    ("provenance.json", ("fingerprint",), (str,)), ("provenance.json", ("seed",), (int,)),
    ("provenance.json", ("config",), (dict,)), ("provenance.json", ("config", "choices"), (dict,)),
    ("provenance.json", ("config", "resolved"), (dict,)), ("provenance.json", ("config", "files"), (dict,)),
    ("provenance.json", ("code",), (dict,)), ("provenance.json", ("code", "files"), (dict,)),
    ("provenance.json", ("zone_profile",), (dict,)), ("provenance.json", ("data",), (dict,)),
    ("provenance.json", ("data", "identity"), (dict,)),
)


def check_shape(meta: dict[str, Any], kpis: dict[str, Any] | None, prov: dict[str, Any] | None) -> None:
    """Raise Damaged naming the file and key whose value has a type no run writes."""
    docs = {"runtime_meta.json": meta, "kpi_summary.json": kpis, "provenance.json": prov}
    for name, keys, types in _SHAPES:
        cur: Any = docs[name]
        for k in keys:
            cur = cur.get(k) if isinstance(cur, dict) else None
        if cur is not None and not isinstance(cur, types):
            raise Damaged(f"{name}: {'.'.join(keys)} is {type(cur).__name__}, expected "
                          f"{' or '.join(t.__name__ for t in types)}")
    results = (meta.get("acceptance") or {}).get("results") or []
    if not all(isinstance(r, dict) and isinstance(r.get("id"), str) for r in results):
        raise Damaged("runtime_meta.json: acceptance.results holds an entry that is not a gate result")


def damaged(label: str, reason: str, meta: dict[str, Any] | None = None) -> RunRecord:
    """A run listed with the reason it cannot be read; nothing of its record is used but its start time."""
    started = started_at(meta or {})
    kept = {"started_at": started} if started is not None else {}
    return RunRecord(label, "folder", "damaged", None, None, kept, state="damaged", problems=[reason])


def _status(meta: dict[str, Any]) -> str:
    """A run recorded as running whose process is gone (on this host) was abandoned."""
    status = meta.get("status") or "unknown"
    if status != "running":
        return status
    host, pid = run_process(meta)
    if host == socket.gethostname() and pid is not None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "abandoned"
        except PermissionError:
            return "running"
        return "running"
    return "running"


def read_folder(run_dir: Path, root: Path, label: str | None = None, verify: bool = True) -> RunRecord:
    """Read and verify a run folder; whatever is missing is None, whatever is unreadable makes
    the run `damaged` (with the reason), never a crash. verify=False (the run index): check the
    record's seal only, not the output files' digests."""
    label = label or run_dir.name
    files = run_files(run_dir)
    meta_p, kpi_p, prov_p = files.runtime_meta, files.kpi_summary, files.provenance
    if not meta_p.exists() and not kpi_p.exists():
        if files.run_log.exists() or not any(run_dir.iterdir()):  # a run killed before its first record
            return RunRecord(label, "folder", "abandoned", None, None)
        raise RunNotFound(f"{run_dir}: no runtime_meta.json or kpi_summary.json: not a run folder")
    meta: dict[str, Any] = {}
    record = None
    try:
        if meta_p.exists():
            try:
                record = read_record(run_dir)
            except ValueError as exc:
                raise Damaged(str(exc)) from None
            meta = record[0]
        kpis = _read_json(kpi_p) if kpi_p.exists() else None
        if prov_p.exists():
            prov = _read_json(prov_p)
        elif (meta.get("fingerprint") and isinstance(meta.get("config"), dict)
              and meta["config"].get("files") is not None):
            prov = deterministic_provenance(meta)
        else:
            prov = None
        check_shape(meta, kpis, prov)
    except Damaged as exc:
        return damaged(label, str(exc), meta)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a record too mis-shaped to describe
        return damaged(label, f"runtime_meta.json: malformed ({type(exc).__name__}: {exc})", meta)
    try:
        kpi_rel = kpi_p.resolve().relative_to(root).as_posix()
    except ValueError:
        kpi_rel = kpi_p.as_posix()
    if record is None:  # hook: leftover -- a DVC stage's folder as git restores it (src/compare/committed.py)
        from src.compare import committed
        found = committed.check(root, run_dir)
        if found is not None and kpis is not None:  # dvc.lock is written only when the stage succeeded
            return RunRecord(label, "folder", "completed", kpis, prov, {}, kpi_rel, state=found.state,
                             problems=found.problems)
        # every run writes its record before any result: this one was deleted
        return damaged(label, "runtime_meta.json: missing (deleted after the run; nor is the folder a DVC "
                       "stage's committed output, whose files dvc.lock lists)")
    ver = verify_run(run_dir, record, prov if prov_p.exists() else None) if verify else _sealed(record)
    status = _status(meta)
    return RunRecord(label, "folder", status, kpis, prov, meta, kpi_rel, state=ver.state, problems=ver.problems)


def _sealed(record: tuple[dict[str, Any], bytes]) -> Verification:
    """The record's seal alone: intact, edited (seal broken or missing) or incomplete (no outputs)."""
    sealed = seal_state(record[1])
    if not sealed:
        return Verification("edited", ["runtime_meta.json: its content does not match its seal"
                                       if sealed is False else "runtime_meta.json: no seal"])
    outputs = record[0].get("outputs")
    return Verification("intact" if isinstance(outputs, dict) and outputs.get("sha256") is not None else "incomplete")


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def resolve_rev(root: Path, ref: str) -> str | None:
    """A git revision or DVC experiment name, resolved as DVC resolves it (dvc.scm.resolve_rev).

    An experiment name found on several baselines resolves to the one on HEAD's baseline, as
    `dvc exp show` / `dvc metrics diff` do; otherwise it is ambiguous: RunNotFound lists them.
    """
    from dvc.repo.experiments.exceptions import AmbiguousExpRefInfo
    from dvc.repo.experiments.utils import exp_refs_by_names, fix_exp_head, resolve_name
    from dvc.scm import SCM, SCMError
    from scmrepo.exceptions import RevError

    try:
        scm = SCM(str(root))
    except SCMError:
        return None
    try:
        return scm.resolve_rev(fix_exp_head(scm, ref))
    except (RevError, SCMError, ValueError):
        pass
    if ref == "HEAD" or ref.startswith("refs/"):
        return None
    try:
        info = resolve_name(scm, ref).get(ref)
    except AmbiguousExpRefInfo:
        found = exp_refs_by_names(scm, {ref}).get(ref) or []
        listed = ", ".join(f"{i} (baseline {i.baseline_sha[:7]})" for i in found)
        raise RunNotFound(f"experiment name {ref!r} is ambiguous: it names {len(found)} experiments on other "
                          f"baselines than HEAD: {listed}; pass one of these refs or its commit") from None
    return scm.get_ref(str(info)) if info is not None else None


def revision_text(root: Path, sha: str, rel: str) -> str | None:
    """A file as it was at commit `sha`: from git, or (a DVC-cached output such as trades.jsonl)
    from the DVC cache or remote through dvc.api.read. None when it is in neither."""
    shown = _git(root, "show", f"{sha}:{rel}")
    if shown.returncode == 0:
        return shown.stdout
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        return dvc.api.read(rel, repo=str(root), rev=sha, encoding="utf-8")
    except (DvcException, FileNotFoundError):
        return None


def revision_trades(root: Path, ref: str, dvc_stage: str = "smoke") -> list[dict[str, Any]]:
    """The DVC stage's trades.jsonl at a git revision or experiment (DVC-cached, not in git)."""
    rec = read_revision(root, ref, dvc_stage)
    folder = rec.kpi_path.rsplit("/", 1)[0] if rec.kpi_path else ""
    rel = f"{folder}/{RUN_FILE_NAMES['trades']}"
    text = revision_text(root, rec.source.split(":", 1)[1], rel)
    if text is None:
        raise RunNotFound(f"{ref!r}: {rel} is neither in git nor in the DVC cache or remote "
                          "(`dvc pull` fetches it)")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_revision(root: Path, ref: str, dvc_stage: str) -> RunRecord:
    """The DVC stage's run folder as committed at a git revision or DVC experiment."""
    sha = resolve_rev(root, ref)
    if sha is None:
        raise RunNotFound(f"{ref!r}: not a run folder, a run id under {LOGS_DIRNAME}/, a git revision "
                          "or a DVC experiment name")
    params = _git(root, "show", f"{sha}:params.yaml")
    try:
        stage = (yaml.safe_load(params.stdout) or {})[dvc_stage]["stage"]
    except (yaml.YAMLError, KeyError, TypeError):
        raise RunNotFound(f"{ref!r} ({sha[:10]}): params.yaml has no {dvc_stage}.stage") from None
    folder = f"{LOGS_DIRNAME}/{stage}/{dvc_stage}"
    files = {}
    for key in ("kpi_summary", "provenance"):
        rel = f"{folder}/{RUN_FILE_NAMES[key]}"
        shown = _git(root, "show", f"{sha}:{rel}")
        files[key] = _json(shown.stdout, f"{ref}:{rel}") if shown.returncode == 0 else None
    kpi_rel = f"{folder}/{RUN_FILE_NAMES['kpi_summary']}"
    if files["kpi_summary"] is None:
        raise RunNotFound(f"{ref!r} ({sha[:10]}): no {kpi_rel} committed there")
    return RunRecord(ref, f"git:{sha}", "completed", files["kpi_summary"], files["provenance"], {}, kpi_rel)


def resolve(root: Path, ref: str, dvc_stage: str = "smoke") -> RunRecord:
    """A run by folder path, by run id (searched under logs/*/), or by git revision / experiment."""
    path = Path(ref)
    if path.is_dir():
        return read_folder(path.resolve(), root, ref)
    logs = root / LOGS_DIRNAME
    if "/" not in ref and ref not in (".", ".."):
        hits = sorted(p for p in logs.glob(f"*/{ref}") if p.is_dir()) if logs.is_dir() else []
        if len(hits) > 1:
            raise RunNotFound(f"run id {ref!r} is ambiguous: {', '.join(h.relative_to(root).as_posix() for h in hits)}")
        if hits:
            return read_folder(hits[0], root, ref)
    return read_revision(root, ref, dvc_stage)


def list_stage(root: Path, stage: str) -> list[Path]:
    """Run folders of a stage (not DVC's pinned ones excluded: they are runs too)."""
    base = root / LOGS_DIRNAME / stage
    if not base.is_dir():
        raise RunNotFound(f"no runs under {base.relative_to(root).as_posix()}/")
    return [p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
