"""`python -m src.compare A B [C ...]` or `python -m src.compare --stage d92-5 --last 20`.

A run is a run folder, a run id under logs/, or a git revision / DVC experiment name
(read from the DVC stage's pinned folder as committed there; `--dvc-stage longrun`).
Two runs: what differs (config values, code and config files by digest, zone profile,
data, fingerprint, KPI deltas, acceptance). More: one table row per run. Output as a
terminal table, `--json` or `--markdown`.

Every run folder is verified against its record (src/provenance/outputs.py): one whose
files were edited, added or deleted after it ended is shown as `edited`, one that cannot
be read (not UTF-8, not JSON, mis-shaped) as `damaged`, each with the reason; the rest of
the table stands. Nondeterminism: completed, intact runs with the same fingerprint whose
result files (every output but the input descriptions config.yaml, params.yaml and
provenance.json, and metrics.json, DVC's copy of headline KPIs) differ by SHA-256.

Exit codes: 0 fine; 1 nondeterminism; 2 bad usage or an unknown run; 5 a run is edited
or damaged (wins over 1).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from src.compare.diff import UNTRUSTED, compare_two, nondeterministic_groups, summary_row
from src.compare.load import RunNotFound, damaged, list_stage, read_folder, resolve
from src.compare.render import render_pair, render_table
from src.exitcodes import ExitCode
from src.provenance.record import started_at
from src.runs.paths import RepoRootError, find_repo_root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.compare", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", help="run folders, run ids, git revisions or DVC experiment names")
    ap.add_argument("--stage", help="compare the runs under logs/<stage>/")
    ap.add_argument("--last", type=int, default=None, help="with --stage: only the N most recent runs")
    ap.add_argument("--dvc-stage", default="smoke", help="DVC stage whose run folder a revision names")
    fmt = ap.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable output")
    fmt.add_argument("--markdown", action="store_true", help="Markdown, e.g. for a pull request")
    args = ap.parse_args(argv)
    if args.last is not None and (args.last < 1 or not args.stage):
        ap.error("--last N needs --stage and N >= 1")
    if not args.stage and len(args.runs) < 2:
        ap.error("give two or more runs, or --stage STAGE [--last N]")
    try:
        root = find_repo_root()
        runs = [resolve(root, r, args.dvc_stage) for r in args.runs]
        if args.stage:
            listed = list_stage(root, args.stage)
            if args.last:  # the run index names the last N: only those folders are read
                from src.catalog.index import latest

                listed = latest(root, args.stage, args.last)
            folder = [_read_listed(p, root) for p in listed]
            folder.sort(key=lambda r: (started_at(r.meta) or "", r.label))
            runs += folder[-args.last:] if args.last else folder
    except (RunNotFound, RepoRootError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if len(runs) == 2 and not args.stage:
        report: dict[str, Any] = compare_two(*runs)
        flagged = report["nondeterminism"]
        out = json.dumps(report, indent=2, sort_keys=True) if args.json else render_pair(report, args.markdown)
    else:
        rows = [summary_row(r) for r in runs]
        groups = nondeterministic_groups(runs)
        flagged = bool(groups)
        report = {"runs": rows, "nondeterministic": groups}
        out = json.dumps(report, indent=2, sort_keys=True) if args.json else render_table(rows, groups, args.markdown)
    print(out)
    if any(r.state in UNTRUSTED for r in runs):
        return ExitCode.EDITED
    return ExitCode.GATE if flagged else ExitCode.OK


def _read_listed(path: Path, root: Path) -> Any:
    """A folder under logs/<stage>/ that is not a run is listed as damaged, not fatal for the table."""
    try:
        return read_folder(path, root)
    except RunNotFound as exc:
        return damaged(path.name, str(exc).replace(f"{path}: ", "", 1))


if __name__ == "__main__":
    from src.exitcodes import cli

    cli(main)  # output cut off (`| head -1`): exit quietly
