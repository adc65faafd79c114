"""What a report shows of one run, read from its folder (or a git revision) into plain series.

Sources, best first: the run's KPIs (kpi_summary.json: per_symbol, per_zone when recorded),
its plot data (plots/equity_trades.csv or equity.csv, exit_reasons.csv, spread.csv, marks.csv) and, for what
those lack, its trades (trades.jsonl). Totals are never recomputed from downsampled
series: they are the recorded KPIs, or sums over every trade.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from src.compare.load import RunRecord, revision_text

EXIT_ORDER = ("take_profit", "stop_loss", "spread_reversal", "time_limit")
Reader = Callable[[str], "str | None"]  # file relative to the run folder -> its text, None when absent


@dataclass
class RunView:
    """One run's series and tables, in the units of the run (seconds of simulated time, KRW, bps)."""

    record: RunRecord
    equity: list[tuple[float, float]] = field(default_factory=list)  # (t_s, realized equity KRW)
    equity_source: str = ""
    exit_mix: dict[str, int] = field(default_factory=dict)
    spread_symbol: str | None = None
    spread: list[tuple[float, float]] = field(default_factory=list)  # (t_s, premium_bps)
    marks: list[tuple[float, float, str]] = field(default_factory=list)  # (t_s, premium_bps, entry|exit:<reason>)
    pnl_by_symbol: dict[str, float] = field(default_factory=dict)
    pnl_by_zone: dict[str, float] = field(default_factory=dict)
    zone_source: str = ""
    duration_s: float | None = None
    notes: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.record.label

    @property
    def kpis(self) -> dict[str, Any]:
        return self.record.kpis or {}


def reader_for(record: RunRecord, root: Path, run_dir: Path | None) -> Reader:
    """Read run files from the folder, or from git / the DVC cache for a revision."""
    if run_dir is not None:
        def from_folder(rel: str) -> str | None:
            try:
                return (run_dir / rel).read_text(encoding="utf-8")
            except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
                return None
        return from_folder
    sha = record.source.split(":", 1)[1]
    folder = (record.kpi_path or "").rsplit("/", 1)[0]
    return lambda rel: revision_text(root, sha, f"{folder}/{rel}")


def _num(s: str) -> float:
    return float(s) if s.strip() else math.nan


def _csv(text: str | None) -> list[list[str]]:
    """Rows of a CSV our plot writer made (no quoting), header dropped."""
    if not text:
        return []
    return [line.split(",") for line in text.splitlines()[1:] if line]


def _trades(read: Reader) -> list[dict[str, Any]] | None:
    text = read("trades.jsonl")
    if text is None:
        return None
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _sum_by(trades: list[dict[str, Any]], key: Callable[[dict[str, Any]], str]) -> dict[str, float]:
    """pnl_krw per key, summed left to right (the order the KPIs use)."""
    out: dict[str, float] = {}
    for t in trades:
        k = key(t)
        out[k] = out.get(k, 0.0) + float(t["pnl_krw"])
    return {k: round(v, 2) + 0.0 for k, v in out.items()}


def load_view(record: RunRecord, read: Reader, run_dir: Path | None = None) -> RunView:
    """Everything the page draws for one run; what the run did not record stays empty."""
    view = RunView(record)
    view.notes, view.tags = annotations(record, run_dir)
    k = view.kpis
    view.duration_s = k.get("simulated_s") or k.get("planned_duration_s")
    trades: list[dict[str, Any]] | None = None

    def trades_once() -> list[dict[str, Any]]:
        nonlocal trades
        if trades is None:
            trades = _trades(read) or []
        return trades

    # per-trade steps first (equity_trades.csv; equity.csv before it held the hourly samples)
    for name in ("plots/equity_trades.csv", "plots/equity.csv"):
        eq = _csv(read(name))
        if eq:
            view.equity = [(_num(r[0]), _num(r[1])) for r in eq]
            view.equity_source = name
            break
    if not view.equity and trades_once():
        total, points = 0.0, [(0.0, 0.0)]
        for t in sorted(trades_once(), key=lambda t: (t["exit_t_s"], t["symbol"])):
            total += float(t["pnl_krw"])
            points.append((float(t["exit_t_s"]), round(total, 2) + 0.0))
        view.equity, view.equity_source = points, "trades.jsonl (cumulative realized PnL by exit time)"

    if isinstance(k.get("exit_reasons"), dict):
        view.exit_mix = {r: int(k["exit_reasons"].get(r) or 0) for r in EXIT_ORDER}
    else:
        view.exit_mix = {r: int(c) for r, c in (row[:2] for row in _csv(read("plots/exit_reasons.csv")))}

    spread = _csv(read("plots/spread.csv"))
    if spread:
        view.spread_symbol = spread[0][2] if len(spread[0]) > 2 else None
        view.spread = [(_num(r[0]), _num(r[1])) for r in spread]
        view.marks = [(_num(r[0]), _num(r[1]), r[2]) for r in _csv(read("plots/marks.csv")) if len(r) > 2]

    per_symbol = k.get("per_symbol")
    if isinstance(per_symbol, dict) and per_symbol:
        view.pnl_by_symbol = {s: float(v.get("pnl_krw") or 0.0) for s, v in per_symbol.items() if isinstance(v, dict)}
    elif trades_once():
        view.pnl_by_symbol = _sum_by(trades_once(), lambda t: str(t["symbol"]))

    per_zone = k.get("per_zone")
    if isinstance(per_zone, dict) and per_zone:
        view.pnl_by_zone = {z: float(v.get("pnl_krw") or 0.0) for z, v in per_zone.items() if isinstance(v, dict)}
        view.zone_source = "kpi_summary.json per_zone"
    elif trades_once():
        view.pnl_by_zone = _sum_by(trades_once(), lambda t: f"{t.get('profile')}/{t.get('zone')}")
        view.zone_source = "trades.jsonl"
    return view


def annotations(record: RunRecord, run_dir: Path | None) -> tuple[list[str], list[str]]:
    """(notes, tags) of a run: the run-time note (`run.note=`, in its resolved config) first, then
    what `python -m src.runs note|tag` added beside the folder, when that module is present."""
    resolved = (record.meta.get("config") or {}).get("resolved") or {}
    run_sec = resolved.get("run") if isinstance(resolved, dict) else None
    run_note = run_sec.get("note") if isinstance(run_sec, dict) else None
    own = [run_note] if isinstance(run_note, str) and run_note else []
    try:
        from src.runs import notes as notes_mod  # hook: report (notes and tags of the runsidx branch)
    except ImportError:
        return own, []
    if run_dir is None:
        return own, []
    ann = notes_mod.read(run_dir, run_note)
    return list(ann.notes), list(ann.tags)
