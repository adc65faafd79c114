"""Re-check an existing run's gates: `python -m src.acceptance logs/<stage>/<run_id> [...]`.

Rules come from the run's own recorded config; metrics from its kpi_summary.json and
runtime_meta.json. Each folder is first verified against its record (the SHA-256 of
every output file and the record's seal, src/provenance/outputs.py): a run whose files
were edited, added, deleted or damaged after it ended is reported `edited`, naming the
file, and its gates are not evaluated. A DVC stage's folder as a fresh clone holds it (no
runtime_meta.json: it stays on the machine that ran `dvc repro`) is checked against dvc.lock
instead and, when it matches, shown `committed` with its gates re-evaluated from the rules in
its provenance.json (src/compare/committed.py).

Exit codes: 0 every run passes; 1 a gate fails or a run is not a completed result;
2 a folder is not a run (no runtime_meta.json); 5 a run is edited or damaged (its files
do not match its record). With several runs, the worst wins (5 > 2 > 1 > 0).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from src.acceptance import gates
from src.exitcodes import ExitCode
from src.provenance.outputs import Verification, verify_run
from src.provenance.record import acceptance_rules, final_hardlock
from src.runs.paths import run_files


_WORST = (ExitCode.OK, ExitCode.GATE, ExitCode.USAGE, ExitCode.EDITED)  # least to most serious


class RunReadError(ValueError):
    pass


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunReadError(f"{path}: missing (is this a run folder under logs/<stage>/<run_id>?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunReadError(f"{path}: not valid JSON ({exc})") from None


def recheck(run_dir: Path) -> dict:
    """Evaluate the recorded rules against the recorded results of one run folder."""
    files = run_files(run_dir.resolve())  # <root>/logs/<stage>/<run_id>
    meta = _load(files.runtime_meta)
    kpi = _load(files.kpi_summary)
    try:
        rules = acceptance_rules(meta)
    except (KeyError, TypeError):
        raise RunReadError(f"{files.runtime_meta}: no config.resolved.stage.acceptance") from None
    lock = final_hardlock(meta)
    metrics = gates.build_metrics(kpi, files.rel(files.kpi_summary), kpi.get("zone_profiles_loaded"),
                                  lock.get("violations"))
    try:
        result = gates.evaluate(rules, metrics)
    except (KeyError, TypeError, AttributeError) as exc:  # a hand-edited record: say so, in one line
        raise RunReadError(f"{files.runtime_meta}: malformed acceptance rules ({exc!r})") from None
    result["status"] = meta.get("status")
    return result


def _check_one(run: Path, as_json: bool) -> tuple[int, dict]:
    """(exit code, JSON result) of one folder: verify it, then re-evaluate its gates."""
    files = run_files(run)
    if run.is_dir() and not files.runtime_meta.exists() and files.kpi_summary.exists():
        found = _committed(run, as_json)  # hook: leftover -- a DVC stage's folder in a fresh clone
        if found is not None:
            return found
        if not as_json:  # every run writes its record before any result: this one was deleted
            print(f"run: {run}  edited: runtime_meta.json: deleted")
            print(f"not a result: its record is gone (nothing re-checked, exit {ExitCode.EDITED})")
        return ExitCode.EDITED, {"state": "edited", "problems": ["runtime_meta.json: deleted"], "passed": False}
    if not run.is_dir() or not files.runtime_meta.exists():
        raise RunReadError(f"{files.runtime_meta}: missing (is this a run folder under "
                           "logs/<stage>/<run_id>?)")
    ver: Verification = verify_run(run.resolve())
    if ver.state in ("edited", "damaged"):
        if not as_json:
            print(f"run: {run}  {ver.state}: {ver.reason}")
            print(f"not a result: its files do not match its record (nothing re-checked, exit {ExitCode.EDITED})")
        return ExitCode.EDITED, {"state": ver.state, "problems": ver.problems, "passed": False}
    res = recheck(run)
    res["state"] = ver.state
    complete = res["status"] == "completed" and ver.state == "intact"
    if not as_json:
        print(f"run: {run}  status: {res['status']}")
        if ver.state == "incomplete":
            print(f"not verified: {ver.reason}")
        else:
            print(gates.table(res))
        if not complete:
            print(f"not a completed run (status {res['status']}): its results are not accepted")
    return (ExitCode.OK if res["passed"] and complete else ExitCode.GATE), res


def _committed(run: Path, as_json: bool) -> tuple[int, dict] | None:
    """A DVC stage's folder as a fresh clone holds it, without its record (src/compare/committed.py):
    checked against dvc.lock, then its gates re-evaluated from the rules in its provenance.json
    (as src.compare does for a run read from git). None: not such a folder."""
    from src.compare import committed

    run_dir = run.resolve()
    ver = committed.check(run_dir.parents[2], run_dir)  # <root>/logs/<stage>/<run id>
    if ver is None:
        return None
    if ver.state != committed.STATE:
        if not as_json:
            print(f"run: {run}  {ver.state}: {ver.reason}")
            print(f"not a result: its files do not match dvc.lock (nothing re-checked, exit {ExitCode.EDITED})")
        return ExitCode.EDITED, {"state": ver.state, "problems": ver.problems, "passed": False}
    files = run_files(run_dir)
    kpi, prov = _load(files.kpi_summary), _load(files.provenance)
    try:
        rules = prov["config"]["resolved"]["stage"]["acceptance"]
        metrics = gates.build_metrics(kpi, files.rel(files.kpi_summary), kpi.get("zone_profiles_loaded"), [])
        result = gates.evaluate(rules, metrics)
    except (KeyError, TypeError, AttributeError) as exc:
        raise RunReadError(f"{files.provenance}: no usable config.resolved.stage.acceptance ({exc!r})") from None
    result.update(status="completed", state=ver.state, problems=ver.problems)
    if not as_json:
        print(f"run: {run}  {ver.state}: {ver.reason}")
        print(gates.table(result))
    return (ExitCode.OK if result["passed"] else ExitCode.GATE), result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.acceptance", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders, e.g. logs/d92-5/<run_id>")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    code = ExitCode.OK
    out = {}
    for run in args.runs:
        try:
            one, res = _check_one(run, args.json)
        except RunReadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            one, res = ExitCode.USAGE, {"state": "not a run", "problems": [str(exc)], "passed": False}
        code = max(code, one, key=_WORST.index)
        out[str(run)] = res
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    return code


if __name__ == "__main__":
    from src.exitcodes import cli

    cli(main)  # output cut off (`| head -1`): exit quietly
