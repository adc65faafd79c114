"""`python -m src.runs list|note|tag|untag|gc`: a run's life after it ends (docs/runs.md).

  list  [--stage S] [--where KEY OP VALUE ...] [--sort [-]KEY ...] [--limit N] [--json]
        runs across stages, newest first, from the run index (src/catalog/index.py)
  note  RUN "text"      add a note        tag RUN NAME / untag RUN NAME
  gc    [--keep-last N] [--yes]   dry run unless --yes: keeps pinned, tagged, running and the
        last N runs per stage

RUN is a run folder, `<stage>/<run id>` or a run id under logs/*/. Notes and tags live
beside the run folder (src/runs/notes.py), never in it: they change neither the run's
fingerprint nor its verified outputs. Exit codes: 0 fine; 2 bad usage, an unknown key or
run (nothing changed); 4 the index could not be used (busy past its timeout, disk full), or a
notes file or folder could not be written or removed (a read-only logs/). Where the index file
cannot be written, `list` reads the folders into an index in memory.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from src.catalog import gc as gc_mod
from src.catalog import index, query
from src.runs import notes
from src.runs.paths import RepoRootError, find_repo_root
from src.catalog.refs import find_run

EXIT_OK, EXIT_USAGE, EXIT_CRASH = 0, 2, 4
SHOWN_STATES = ("edited", "damaged", "committed")  # src.compare.diff.SHOWN_STATES (not imported: list stays light)
TABLE = ("run", "stage", "status", "started_at", "fingerprint", "zone_profile", "universe", "seed", "round_trips",
         "win_rate", "total_pnl_krw", "gates", "tags", "notes")


class UsageError(ValueError):
    """Reported as one `error:` line, exit 2."""


def _text(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return ",".join(map(str, v)) or "-"
    return str(v)


def _column(key: str, values: list[Any]) -> list[str]:
    """One table column as text (compare's cell format; fingerprints and times shortened)."""
    if key == "fingerprint":
        return [v[:12] if v else "-" for v in values]
    if key == "started_at":
        return [v[:19] if v else "-" for v in values]
    if key == "notes":
        return [(n[-1] if len(n[-1]) <= 40 else n[-1][:37] + "...") + (f" (+{len(n) - 1})" if len(n) > 1 else "")
                if n else "-" for n in values]
    return [_text(v) for v in values]


def _table(cols: list[str], rows: list[dict[str, Any]]) -> str:
    """A terminal table, built column by column (10,000 rows in a few tens of ms)."""
    columns = []
    for c in cols:
        cells = _column(c, [r[c] for r in rows])
        width = max(len(c), max(map(len, cells), default=0))
        columns.append([c.ljust(width), "-" * width] + [x.ljust(width) for x in cells])
    return "\n".join("  ".join(line).rstrip() for line in zip(*columns))


def cmd_list(root: Path, args: argparse.Namespace) -> int:
    def run(conn: Any) -> tuple[list[dict[str, Any]], list[str]]:
        conds = [query.parse_where(conn, w) for w in args.where]
        sorts = [(query.resolve_key(conn, s.lstrip("-")), s.startswith("-")) for s in args.sort]
        keys = list(({c.key.text: c.key for c in conds} | {k.text: k for k, _ in sorts}).items())
        rows = query.fetch(conn, [k for _, k in keys], args.stage)
        default = [(query.Key("started_at", "column", "started_at"), True), (query.Key("run", "column", "run"), True)]
        rows = query.select(rows, conds, sorts or default)
        return rows[:args.limit] if args.limit else rows, [t for t, _ in keys]
    rows, extra = index.using(root, run)
    cols = list(TABLE) + [k for k in extra if query.ALIASES.get(k, k) not in TABLE]
    if args.json:
        print(json.dumps([{k: r[k] for k in ["folder", "state", "ended_at", "pinned", "problems", *cols]} for r in rows],
                         indent=2, sort_keys=True))
        return EXIT_OK
    print(_table(cols, rows))
    print(f"\n{len(rows)} runs")
    for r in rows:  # as src.compare's table: why a run is not a verified result, or has no record here
        if r["status"] in SHOWN_STATES and r["problems"]:
            print(f"{r['status']}: {r['folder']}: {'; '.join(r['problems'])}")
    return EXIT_OK


def cmd_annotate(root: Path, args: argparse.Namespace) -> int:
    run_dir = find_run(root, args.run)
    value = args.text if args.cmd == "note" else notes.check_tag(args.name)
    if args.cmd == "note" and not value.strip():
        raise UsageError("a note needs some text")
    notes.append(run_dir, args.cmd, value)
    index.using(root, lambda c: index.upsert(c, root, run_dir), refreshed=False)
    print(f"{args.cmd}: {run_dir.relative_to(root).as_posix()}: {value}")
    return EXIT_OK


def cmd_gc(root: Path, args: argparse.Namespace) -> int:
    rows = index.using(root, lambda c: query.fetch(c, []))
    doomed, kept = gc_mod.plan(rows, args.keep_last)
    verb = "deleted" if args.yes else "would delete"
    for r in doomed:
        if args.yes:
            gc_mod.remove(root, r["folder"])
            index.using(root, lambda c, r=r: index.forget(c, r["stage"], r["run"]), refreshed=False)
        print(f"{verb}: {r['folder']}  ({r['status']}, started {(r['started_at'] or '-')[:19]})")
    print(f"{verb} {len(doomed)} run folders; kept {len(kept)} (pinned, tagged, running or among the last "
          f"{args.keep_last} per stage)" + ("" if args.yes else "; pass --yes to delete"))
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m src.runs", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="list runs across stages, from the run index")
    ls.add_argument("--stage", help="only the runs under logs/<stage>/")
    ls.add_argument("--where", action="append", default=[], metavar="KEY OP VALUE",
                    help="filter, e.g. seed=7 or 'kpi.win_rate>0.5' (repeat: all must hold)")
    ls.add_argument("--sort", action="append", default=[], metavar="[-]KEY", help="sort key, '-' for descending")
    ls.add_argument("--limit", type=int, default=None, help="the first N rows only")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    no = sub.add_parser("note", help="add a note to a run")
    no.add_argument("run")
    no.add_argument("text")
    for name in ("tag", "untag"):
        t = sub.add_parser(name, help=f"{name} a run")
        t.add_argument("run")
        t.add_argument("name")
    g = sub.add_parser("gc", help="delete old run folders (dry run unless --yes)")
    g.add_argument("--keep-last", type=int, default=10, help="runs kept per stage, newest first (default 10)")
    g.add_argument("--yes", action="store_true", help="really delete")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, a in enumerate(argv[:-1]):  # `--sort -kpi.sharpe`: argparse would take the key for an option
        if a == "--sort" and argv[i + 1].startswith("-"):
            argv[i:i + 2] = [f"--sort={argv[i + 1]}", ""]
    args = parser().parse_args([a for a in argv if a != ""])
    if getattr(args, "limit", None) is not None and args.limit < 1 or getattr(args, "keep_last", 0) < 0:
        print("error: --limit must be >= 1 and --keep-last >= 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        root = find_repo_root()
        handler = {"list": cmd_list, "gc": cmd_gc}.get(args.cmd, cmd_annotate)
        return handler(root, args)
    except (UsageError, query.QueryError, RepoRootError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.OperationalError as exc:  # busy for longer than the timeout, or a full disk
        print(f"error: run index {index.INDEX_NAME} under logs/: {exc}", file=sys.stderr)
        return EXIT_CRASH
    except BrokenPipeError:  # the reader stopped reading (`| head`): cli() ends quietly
        raise
    except OSError as exc:  # a notes file or a folder to delete on a read-only or full disk: nothing more changed
        where = exc.filename if exc.filename is not None else "logs/"
        print(f"error: {where}: cannot be written ({exc.strerror or exc}): nothing more was changed", file=sys.stderr)
        return EXIT_CRASH


if __name__ == "__main__":
    from src.exitcodes import cli

    cli(main)  # output cut off (`| head -1`): exit quietly
