"""Re-check an existing run's gates: `python -m src.acceptance logs/<stage>/<run_id> [...]`.

Rules come from the run's own recorded config; metrics from its kpi_summary.json and
runtime_meta.json. Exit 0 when every run passes, 1 when a gate fails or a run is not
a completed result, 2 when a folder is not a readable run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from src.acceptance import gates


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.acceptance", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders, e.g. logs/d92-5/<run_id>")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    code = 0
    out = {}
    for run in args.runs:
        try:
            res = recheck(run)
        except RunReadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        ok = res["passed"] and res["status"] == "completed"
        code = code or (0 if ok else 1)
        out[str(run)] = res
        if not args.json:
            print(f"run: {run}  status: {res['status']}")
            print(gates.table(res))
            if res["status"] != "completed":
                print(f"not a completed run (status {res['status']}): its results are not accepted")
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
