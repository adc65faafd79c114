"""Runs in pandas: `from src.api import load_runs, load_trades` (extra `.[analysis]`).

    runs = load_runs(stage="d92-5", where=["seed=7", "kpi.win_rate>0.5"])
    trades = load_trades(runs)

`load_runs` is served from the run index (src/runs/index.py, refreshed against the folders
first): one row per run, oldest first as `python -m src.compare --stage` lists them, with the
columns compare shows (`exits` is its tp/sl/tl/sr), state, ended_at, pinned, notes and tags
(lists), folder, then every resolved config value as `config.<flattened key>` and every
numeric KPI as `kpi.<flattened key>`. `where` takes the filters of `python -m src.runs list
--where` (a string, a list of them, or a {key: value} dict meaning key=value).
`load_trades` reads the runs' trades.jsonl: one row per trade, with `run` and `stage` first.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from src.runs import index, query
from src.runs.paths import find_repo_root
from src.runs.refs import find_run

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

BASE = ("run", "stage", "status", "state", "problems", "started_at", "ended_at", "fingerprint", "zone_profile",
        "universe", "seed", "round_trips", "win_rate", "total_pnl_krw", "exits", "gates", "pinned", "notes",
        "tags", "folder")


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("src.api needs pandas, an optional extra: pip install '.[analysis]' "
                          "(or pip install pandas)") from None
    return pandas


def _conditions(where: str | Iterable[str] | dict[str, Any] | None) -> list[str]:
    if where is None:
        return []
    if isinstance(where, str):
        return [where]
    if isinstance(where, dict):
        return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in where.items()]
    return list(where)


def load_runs(stage: str | None = None, where: str | Iterable[str] | dict[str, Any] | None = None,
              root: str | Path | None = None) -> "pd.DataFrame":
    """One row per run (see the module doc); query.QueryError for an unknown key or a bad filter."""
    pd = _pandas()
    root = Path(root).resolve() if root is not None else find_repo_root()

    def q(conn: Any) -> tuple[list[dict[str, Any]], dict[tuple[str, str], tuple[str, str]], dict[str, dict]]:
        conds = [query.parse_where(conn, w) for w in _conditions(where)]
        rows = query.fetch(conn, [c.key for c in conds], stage)
        rows = query.select(rows, conds, [(query.Key("started_at", "column", "started_at"), False)])
        rows.sort(key=lambda r: (r["started_at"] or "", r["run"]))
        sql = "SELECT stage, run_id, config, kpis, problems FROM runs" + (" WHERE stage = ?" if stage else "")
        extra = {(s, r): (c, k, p) for s, r, c, k, p in conn.execute(sql, [stage] if stage else [])}
        blobs = {d: json.loads(f) for d, f in conn.execute("SELECT digest, flat FROM blobs")} if rows else {}
        return rows, extra, blobs
    rows, extra, blobs = index.using(root, q)
    base = pd.DataFrame({c: [r.get(c) for r in rows] for c in BASE if c != "problems"})
    more = [extra[(r["stage"], r["run"])] for r in rows]
    base.insert(4, "problems", [json.loads(m[2]) if m[2] else [] for m in more])
    return pd.concat([base, _config_frame(pd, [json.loads(m[0]) for m in more], blobs),
                      _kpi_frame(pd, [json.loads(m[1]) for m in more])], axis=1)


def _config_frame(pd: Any, groups: list[dict[str, str]], blobs: dict[str, dict[str, Any]]) -> "pd.DataFrame":
    """config.* columns: each group's distinct values built once, then taken per run."""
    frames = []
    for g in sorted({g for gs in groups for g in gs}):
        digests = [gs.get(g) for gs in groups]
        uniq = sorted({d for d in digests if d is not None})
        pos = {d: i for i, d in enumerate(uniq)}
        table = pd.DataFrame.from_records([blobs.get(d, {}) for d in uniq] + [{}])  # last row: runs without it
        taken = table.take([pos.get(d, len(uniq)) for d in digests]).reset_index(drop=True)
        frames.append(taken.add_prefix("config."))
    return pd.concat(frames, axis=1) if frames else pd.DataFrame(index=range(len(groups)))


def _kpi_frame(pd: Any, kpis: list[dict[str, Any]]) -> "pd.DataFrame":
    keys: dict[str, None] = {}
    for k in kpis:
        keys.update(dict.fromkeys(k))
    nan = float("nan")
    return pd.DataFrame({f"kpi.{key}": [k.get(key, nan) for k in kpis] for key in sorted(keys)},
                        index=range(len(kpis)))


def load_trades(runs: Any, root: str | Path | None = None) -> "pd.DataFrame":
    """One row per trade of the given runs (a load_runs frame, or run ids / folders), with its run."""
    pd = _pandas()
    root = Path(root).resolve() if root is not None else find_repo_root()
    if hasattr(runs, "columns"):
        pairs = [(r, root / f) for r, f in zip(runs["run"], runs["folder"])]
    else:
        refs = [runs] if isinstance(runs, (str, Path)) else list(runs)
        pairs = [(p.name, p) for p in (find_run(root, str(r)) for r in refs)]
    records: list[dict[str, Any]] = []
    for run, folder in pairs:
        stage = Path(folder).parent.name
        try:
            lines = (Path(folder) / "trades.jsonl").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            continue  # a run that made no trades file (refused or killed early)
        records.extend({"run": run, "stage": stage, **json.loads(line)} for line in lines if line.strip())
    frame = pd.DataFrame.from_records(records)
    return frame if records else pd.DataFrame(columns=["run", "stage"])
