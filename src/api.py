"""Runs in pandas: `from src.api import load_runs, load_trades` (extra `.[analysis]`).

    runs = load_runs(stage="d92-5", where=["seed=7", "kpi.win_rate>0.5"])
    trades = load_trades(runs)

`load_runs` is served from the run index (src/catalog/index.py, refreshed against the folders
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

from src.catalog import index, query
from src.runs.paths import find_repo_root
from src.catalog.refs import find_run

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
    return index.using(root, lambda conn: _frame(pd, conn, stage, _conditions(where)))


def _frame(pd: Any, conn: Any, stage: str | None, where: list[str]) -> "pd.DataFrame":
    keep = None
    if where:
        conds = [query.parse_where(conn, w) for w in where]
        keep = {(r["stage"], r["run"]) for r in query.select(query.fetch(conn, [c.key for c in conds], stage), conds, [])}
    groups = [g for (g,) in conn.execute("SELECT name FROM groups ORDER BY name")]  # (of runs since removed too)
    cols = [query.SQL_COL.get(c, c) for c in BASE] + ["kpi_layout", "kpi_values"]
    cols += ["json_extract(config, ?)"] * len(groups)
    sql = f"SELECT {', '.join(cols)} FROM runs_full" + (" WHERE stage = ?" if stage else "")
    rows = conn.execute(sql + " ORDER BY coalesce(started_at, ''), run_id",
                        [query.json_path(g) for g in groups] + ([stage] if stage else [])).fetchall()
    if keep is not None:
        rows = [r for r in rows if (r[1], r[0]) in keep]
    n = len(BASE)
    lists = [BASE.index(c) for c in ("problems", "notes", "tags")]
    records = []
    for r in rows:
        rec = list(r[:n])
        for j in lists:
            rec[j] = json.loads(rec[j]) if rec[j] not in (None, "[]") else []
        records.append(rec)
    base = pd.DataFrame.from_records(records, columns=list(BASE))
    base["pinned"] = base["pinned"].astype(bool)
    blobs = dict(conn.execute("SELECT digest, flat FROM blobs"))  # small: one per distinct group value
    cfg = [r[n + 2:] for r in rows]
    return pd.concat([base, _config_frame(pd, groups, cfg, blobs),
                      _kpi_frame(pd, [(r[n], r[n + 1]) for r in rows], blobs)], axis=1)


def _config_frame(pd: Any, groups: list[str], cfg: list[tuple[str | None, ...]], blobs: dict[str, str]) -> "pd.DataFrame":
    """config.* columns: each group's distinct values built once, then taken per run."""
    frames = []
    for i, g in enumerate(groups):
        digests = [r[i] for r in cfg]
        uniq = sorted({d for d in digests if d is not None})
        if not uniq:
            continue  # a group only runs since removed had
        pos = {d: j for j, d in enumerate(uniq)}
        missing = "" if all(d is not None for d in digests) else ",{}"  # a last row for runs without the group
        table = pd.DataFrame.from_records(json.loads("[" + ",".join(blobs.get(d, "{}") for d in uniq) + missing + "]"))
        frames.append(table.take([pos.get(d, len(uniq)) for d in digests]).reset_index(drop=True))
    if not frames:
        return pd.DataFrame(index=range(len(cfg)))
    return pd.concat(frames, axis=1).add_prefix("config.")


def _kpi_frame(pd: Any, kpis: list[tuple[str | None, bytes | None]], blobs: dict[str, str]) -> "pd.DataFrame":
    """kpi.* columns: the runs sharing a KPI layout (keys) read as one block of float64 (native order)."""
    import numpy as np

    by_layout: dict[str, list[int]] = {}
    for i, (layout, _) in enumerate(kpis):
        if layout is not None:
            by_layout.setdefault(layout, []).append(i)
    parts = []
    for layout, idx in by_layout.items():
        spec = json.loads(blobs[layout])
        keys = spec["keys"]
        block = np.frombuffer(b"".join(kpis[i][1] or b"" for i in idx), dtype=np.float64).reshape(len(idx), len(keys))
        frame = pd.DataFrame(block, columns=keys, index=idx)
        parts.append(frame.astype({k: "int64" for k in spec["ints"]}))
    if not parts:
        return pd.DataFrame(index=range(len(kpis)))
    out = pd.concat(parts, axis=0, sort=False) if len(parts) > 1 else parts[0]
    return out.reindex(range(len(kpis))).add_prefix("kpi.")


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
