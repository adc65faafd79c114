"""`python -m src.reproduce RUN [--json]`: make a recorded run again and prove it byte for byte.

RUN: a run folder (runtime_meta.json is enough), a run id, a git revision or a DVC
experiment name (the DVC stage's pinned run, `--dvc-stage longrun` for the other one).
The recorded commit is checked out in a temporary git worktree, the recorded patch and
untracked files applied, the data blobs put back (from the DVC cache, fetched from the
remote when missing), the run made again with the recorded overrides, and every output
compared with the recorded digests.

Exit codes: 0 reproduced; 1 differs (first differing file, line and field named);
2 cannot reproduce (names what is missing) or bad usage; 130 interrupted. Environment differences
(Python, numpy, platform) are reported beside the verdict.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

EXIT_REPRODUCED, EXIT_DIFFERS, EXIT_CANNOT = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.reproduce", description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run folder, run id, git revision or DVC experiment name")
    ap.add_argument("--dvc-stage", default="smoke", help="DVC stage whose pinned run a revision names")
    ap.add_argument("--json", action="store_true", help="machine-readable report")
    args = ap.parse_args(argv)
    from src.reproduce.rebuild import ensure_blobs, rebuild, run_again, worktree
    from src.reproduce.source import CannotReproduce, resolve
    from src.reproduce.verdict import environment_diff, judge
    from src.runs.paths import RepoRootError, find_repo_root

    t0 = time.perf_counter()
    report: dict[str, Any] = {"run": args.run}
    try:
        root = find_repo_root()
        rec = resolve(root, args.run, args.dvc_stage)
        report.update(run_id=rec.run_id, stage_id=rec.stage_id, commit=rec.commit, source=rec.source,
                      patch_bytes=(rec.patch or {}).get("bytes"), untracked=sorted(rec.untracked),
                      withheld=rec.withheld,
                      data=[{k: d[k] for k in ("role", "path", "sha256")} for d in rec.data],
                      environment=environment_diff(rec.environment))
        if not rec.commit:
            raise CannotReproduce(f"{args.run}: no commit recorded (the run was not made in a git checkout)")
        if not rec.outputs:
            raise CannotReproduce(f"{args.run}: no output digests recorded (the run did not complete)")
        cache = ensure_blobs(root, rec)
        with worktree(root, rec.commit) as wt:
            rerun = run_again(wt, rec, rebuild(wt, rec, cache))
            report.update(judge(rec, rerun.run_dir, rerun.outputs))
            report["rerun"] = {"command": rerun.command, "exit_code": rerun.exit_code, "wall_s": round(rerun.wall_s, 3)}
    except (RepoRootError, LookupError) as exc:
        return _cannot(report, str(exc), args.json, t0)
    except CannotReproduce as exc:
        return _cannot(report, str(exc), args.json, t0)
    report["exit_code"] = EXIT_REPRODUCED if report["verdict"] == "reproduced" else EXIT_DIFFERS
    report["wall_s"] = round(time.perf_counter() - t0, 3)
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else _text(report))
    return report["exit_code"]


def _cannot(report: dict[str, Any], why: str, as_json: bool, t0: float) -> int:
    report.update(verdict="cannot reproduce", missing=why, exit_code=EXIT_CANNOT,
                  wall_s=round(time.perf_counter() - t0, 3))
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        env = _env_line(report.get("environment"))
        if env:
            print(env)
    print(f"error: cannot reproduce {report['run']}: {why}", file=sys.stderr)
    return EXIT_CANNOT


def _env_line(env: list[dict[str, Any]] | None) -> str | None:
    if env is None:
        return None
    if not env:
        return "environment: same Python, packages and platform as recorded"
    return "environment differs: " + "; ".join(f"{e['key']} {e['recorded']} -> {e['now']}" for e in env)


def _text(r: dict[str, Any]) -> str:
    what = [f"commit {str(r['commit'])[:10]}"]
    if r.get("patch_bytes"):
        what.append(f"patch {r['patch_bytes']} bytes")
    if r.get("untracked"):
        what.append(f"{len(r['untracked'])} untracked file(s)")
    if r.get("data"):
        what.append(f"{len(r['data'])} data blob(s)")
    lines = []
    if r["verdict"] == "reproduced":
        lines.append(f"reproduced: {r['run']} ({', '.join(what)}): {r['outputs_compared']} outputs byte for byte")
    else:
        first = r["differences"][0]
        where = f" line {first['line']}" if first.get("line") else ""
        field = f" field {first['field']}" if first.get("field") else ""
        side = "in the run folder" if first["change"].startswith("edited") else "recorded"
        vals = f": {side} {first['a']!r}, rerun {first['b']!r}" if first.get("line") else ""
        lines.append(f"differs: {r['run']} ({', '.join(what)}): first difference {first['file']}{where}{field}{vals}")
        lines += [f"  {d['file']}: {d['change']}" for d in r["differences"]]
    if r.get("input_descriptions_differ"):
        lines.append("input descriptions differ (not results): " + ", ".join(r["input_descriptions_differ"]))
    if r.get("withheld"):
        lines.append("withheld at record time (not rebuilt): "
                     + ", ".join(f"{w['path']} ({w['reason']})" for w in r["withheld"]))
    lines.append(_env_line(r.get("environment")) or "")
    lines.append(f"rerun: {' '.join(r['rerun']['command'])} ({r['rerun']['wall_s']} s); total {r['wall_s']} s")
    return "\n".join(lines)


if __name__ == "__main__":
    from src.exitcodes import cli

    try:
        cli(main)  # output cut off (`| head -1`): exit quietly
    except KeyboardInterrupt:  # the worktree is removed by its context manager on the way out
        print("interrupted: nothing reproduced", file=sys.stderr)
        sys.exit(130)
