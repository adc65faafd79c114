"""`python -m src.report RUN [RUN ...] -o report.html` or `python -m src.report --stage d92-5 --last 5`.

One self-contained HTML file (style and charts inline, no script, no URL: it opens offline
and can be mailed): headline KPIs and gate verdicts of every run, the equity curves
overlaid, the exit mix, each run's spread with its entries and exits, PnL by symbol and by
zone, the trader KPIs when the run recorded them, and a provenance panel with what differs
between the runs (src.compare's diff of the first run against each other one).

A RUN is resolved as src.compare resolves it: a run folder, a run id under logs/, or a git
revision / DVC experiment name. Every run folder is verified against its record first
(src/provenance/outputs.py): an edited or damaged run is refused, naming the file.

Exit codes: 0 written; 2 bad usage, an unknown run, or an output path that cannot be
written (nothing written); 4 crash; 5 a run is edited or damaged (nothing written).
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from src.compare.load import RunNotFound, RunRecord, damaged, list_stage, read_folder, resolve
from src.exitcodes import ExitCode
from src.report.data import RunView, load_view, reader_for
from src.report.page import render
from src.runs.atomic import write_text_atomic
from src.runs.paths import RepoRootError, find_repo_root

EXIT_USAGE, EXIT_CRASH = 2, 4
UNTRUSTED = ("edited", "damaged")  # as src.compare.diff.UNTRUSTED (that module is imported for two runs or more:
# it pulls in the gates and the engine, ~0.2 s of a one-run report); tests/test_report.py checks they agree


class UsageError(ValueError):
    pass


def _error(msg: str, code: int) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def check_output(path: Path) -> Path:
    """The file to write: its folder must exist; it must not be a folder itself."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"-o {path}: folder {folder} does not exist (create it first, or pick another path)")
    if path.is_dir():
        raise UsageError(f"-o {path}: is a folder; give a file name such as {path / 'report.html'}")
    for parent in (folder.resolve(), *folder.resolve().parents):
        if (parent / "runtime_meta.json").is_file():  # a new file there would make that run `edited`
            raise UsageError(f"-o {path}: inside the run folder {parent}: a file added there makes the run "
                             "`edited` (its record lists every file); write the report elsewhere")
    return path


def collect(root: Path, refs: list[str], stage: str | None, last: int | None, dvc_stage: str) -> list[RunRecord]:
    """Runs named on the command line, then (with --stage) the stage's runs, oldest first."""
    runs = [resolve(root, r, dvc_stage) for r in refs]
    if stage:
        listed = []
        for p in list_stage(root, stage):
            try:
                listed.append(read_folder(p, root))
            except RunNotFound as exc:
                listed.append(damaged(p.name, str(exc).replace(f"{p}: ", "", 1)))
        listed.sort(key=lambda r: (r.meta.get("started_at") or "", r.label))
        runs += listed[-last:] if last else listed
    if not runs:
        raise RunNotFound(f"no runs under logs/{stage}/")
    return runs


def _run_dir(root: Path, rec: RunRecord) -> Path | None:
    if rec.kpi_path is None:
        return None
    p = Path(rec.kpi_path)
    return (p if p.is_absolute() else root / p).parent


def build(root: Path, runs: list[RunRecord]) -> str:
    """The page for verified runs."""
    views: list[RunView] = []
    for rec in runs:
        folder = _run_dir(root, rec) if rec.source == "folder" else None
        read = reader_for(rec, root, folder) if folder is not None or rec.source != "folder" else (lambda rel: None)
        views.append(load_view(rec, read, folder))
    diffs = []
    if len(runs) > 1:
        from src.compare.diff import compare_two

        diffs = [compare_two(runs[0], r) for r in runs[1:]]
    return render(views, diffs)


def short_labels(runs: list[RunRecord]) -> None:
    """Name each run by its run id (what `src.compare` and `src.runs` show) when that is unambiguous;
    a run without one, or one whose id another run shares, keeps what the user typed."""
    ids = [r.meta.get("run_id") if isinstance(r.meta.get("run_id"), str) else None for r in runs]
    for r, rid in zip(runs, ids):
        if rid and ids.count(rid) == 1:
            r.label = rid


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.report", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", help="run folders, run ids, git revisions or DVC experiment names")
    ap.add_argument("-o", "--output", default="report.html", help="HTML file to write (default: report.html)")
    ap.add_argument("--stage", help="report the runs under logs/<stage>/")
    ap.add_argument("--last", type=int, default=None, help="with --stage: only the N most recent runs")
    ap.add_argument("--dvc-stage", default="smoke", help="DVC stage whose run folder a revision names")
    args = ap.parse_args(argv)
    if args.last is not None and (args.last < 1 or not args.stage):
        ap.error("--last N needs --stage and N >= 1")
    if not args.stage and not args.runs:
        ap.error("give one or more runs, or --stage STAGE [--last N]")
    try:
        out = check_output(Path(args.output))
        root = find_repo_root()
        runs = collect(root, args.runs, args.stage, args.last, args.dvc_stage)
    except (UsageError, RunNotFound, RepoRootError) as exc:
        return _error(str(exc), EXIT_USAGE)
    bad = [r for r in runs if r.state in UNTRUSTED]
    if bad:
        why = "; ".join(f"{r.label}: {r.state}: {'; '.join(r.problems)}" for r in bad)
        return _error(f"refused: {why} (its files do not match its record; nothing written)", ExitCode.EDITED)
    short_labels(runs)
    page = build(root, runs)
    try:
        write_text_atomic(out, page)
    except OSError as exc:
        return _error(f"-o {out}: cannot write ({exc.strerror or exc})", EXIT_USAGE)
    print(f"report: {out} ({len(runs)} run{'s' if len(runs) != 1 else ''}, {len(page.encode('utf-8')) / 1024:,.0f} KB)")
    return 0


if __name__ == "__main__":
    from src.exitcodes import cli

    try:
        cli(main)  # output cut off (`| head -1`): exit quietly
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # a bug, not a user error: the traceback is what a maintainer needs
        traceback.print_exc()
        sys.exit(EXIT_CRASH)
