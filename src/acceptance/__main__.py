"""Re-check an existing run's gates: `python -m src.acceptance logs/<stage>/<run_id> [...]`.

Rules come from the run's own recorded config; metrics from its kpi_summary.json and
runtime_meta.json. Each folder is first verified against its record (the SHA-256 of
every output file and the record's seal, src/provenance/outputs.py): a run whose files
were edited, added, deleted or damaged after it ended is reported `edited`, naming the
file, and its gates are not evaluated.

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
from src.provenance.outputs import EXIT_EDITED, Verification, verify_run

_WORST = (0, 1, 2, EXIT_EDITED)  # exit codes, least to most serious


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
    run_dir = run_dir.resolve()
    meta = _load(run_dir / "runtime_meta.json")
    kpi = _load(run_dir / "kpi_summary.json")
    try:
        rules = meta["config"]["resolved"]["stage"]["acceptance"]
    except (KeyError, TypeError):
        raise RunReadError(f"{run_dir / 'runtime_meta.json'}: no config.resolved.stage.acceptance") from None
    root = run_dir.parents[2]  # <root>/logs/<stage>/<run_id>
    kpi_path = (run_dir / "kpi_summary.json").relative_to(root).as_posix()
    lock = (meta.get("guard") or {}).get("hardlock_final") or (meta.get("guard") or {}).get("hardlock") or {}
    metrics = gates.build_metrics(kpi, kpi_path, kpi.get("zone_profiles_loaded"), lock.get("violations"))
    try:
        result = gates.evaluate(rules, metrics)
    except (KeyError, TypeError, AttributeError) as exc:  # a hand-edited record: say so, in one line
        raise RunReadError(f"{run_dir / 'runtime_meta.json'}: malformed acceptance rules ({exc!r})") from None
    result["status"] = meta.get("status")
    return result


def _check_one(run: Path, as_json: bool) -> tuple[int, dict]:
    """(exit code, JSON result) of one folder: verify it, then re-evaluate its gates."""
    if run.is_dir() and not (run / "runtime_meta.json").exists() and (run / "kpi_summary.json").exists():
        if not as_json:  # every run writes its record before any result: this one was deleted
            print(f"run: {run}  edited: runtime_meta.json: deleted")
            print(f"not a result: its record is gone (nothing re-checked, exit {EXIT_EDITED})")
        return EXIT_EDITED, {"state": "edited", "problems": ["runtime_meta.json: deleted"], "passed": False}
    if not run.is_dir() or not (run / "runtime_meta.json").exists():
        raise RunReadError(f"{run / 'runtime_meta.json'}: missing (is this a run folder under "
                           "logs/<stage>/<run_id>?)")
    ver: Verification = verify_run(run.resolve())
    if ver.state in ("edited", "damaged"):
        if not as_json:
            print(f"run: {run}  {ver.state}: {ver.reason}")
            print(f"not a result: its files do not match its record (nothing re-checked, exit {EXIT_EDITED})")
        return EXIT_EDITED, {"state": ver.state, "problems": ver.problems, "passed": False}
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
    return (0 if res["passed"] and complete else 1), res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.acceptance", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders, e.g. logs/d92-5/<run_id>")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    code = 0
    out = {}
    for run in args.runs:
        try:
            one, res = _check_one(run, args.json)
        except RunReadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            one, res = 2, {"state": "not a run", "problems": [str(exc)], "passed": False}
        code = max(code, one, key=_WORST.index)
        out[str(run)] = res
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
