"""The report page: headline KPIs and gates, charts, trader KPIs, per-run detail, provenance.

One HTML document with its style inline and charts as inline SVG: nothing is fetched when
it opens (no script, no font, no image, no URL).
"""
from __future__ import annotations

from typing import Any, Sequence

from src.report import charts
from src.report.data import RunView
from src.report.markup import NOT_RECORDED, cell, esc, missing, money, num, pct, sim_time, table, verdict
from src.report.provenance import provenance_section

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 12px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px} .sub{color:#666;margin:0 0 12px}
table{border-collapse:collapse;font-size:13px;margin:6px 0} th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.pass{color:#176b1c;font-weight:600} td.fail{color:#b3141b;font-weight:600}
td.neg{color:#b3141b} td.pos{color:#176b1c} .scroll{overflow-x:auto} code,.mono{font-family:ui-monospace,monospace;font-size:12px}
.missing{color:#8a6d00;font-style:italic} .banner{padding:8px 12px;border-radius:4px;margin:8px 0}
.banner.warn{background:#fff4d6;border:1px solid #e5c46b} .banner.info{background:#eef4fb;border:1px solid #b8cde6}
svg.chart{display:block;max-width:100%;height:auto;margin:6px 0 14px;font-size:11px;fill:#333}
svg.chart .title{font-size:13px;font-weight:600} svg.chart .grid{stroke:#e6e6e6} svg.chart .grid.zero{stroke:#999}
svg.chart text.in{fill:#fff;font-weight:600} details{margin:6px 0} summary{cursor:pointer;font-weight:600}
.run-label{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
td.run-label{min-width:11em} td.mono{word-break:break-all;min-width:9em} table.prov td{max-width:30em}
.scroll{max-width:100%} table.kpis thead th{overflow-wrap:anywhere;min-width:8em} p,li,summary{overflow-wrap:anywhere}
@media (max-width:900px){
 body{margin:12px auto} table.stack,table.stack tbody,table.stack tr,table.stack td{display:block}
 table.stack thead{display:none} table.stack tr{border:1px solid #ddd;border-radius:4px;margin:0 0 8px}
 table.stack td{border:0;border-top:1px solid #eee;min-width:0} table.stack td[data-label=""]{padding:0;height:5px}
 table.stack td[data-label]::before{content:attr(data-label);display:inline-block;min-width:9em;color:#555;font-weight:600}
 td.mono,td.run-label{min-width:0} table.prov td{max-width:none}
}
"""


def _color(i: int) -> str:
    return charts.PALETTE[i % len(charts.PALETTE)]


def _signed(v: Any) -> str:
    cls = "neg" if isinstance(v, (int, float)) and v < 0 else "pos" if isinstance(v, (int, float)) and v > 0 else ""
    return cell(money(v), cls)


def _gates(view: RunView) -> dict[str, dict[str, Any]]:
    """{gate id: {passed, actual, description}} as recorded, or re-evaluated for a git revision."""
    rec = view.record
    results = (rec.meta.get("acceptance") or {}).get("results") or []
    if results:
        return {r["id"]: r for r in results}
    from src.compare.diff import acceptance_of  # a revision read from git: its recorded rules re-evaluated

    return {g: {"id": g, "passed": p} for g, p in (acceptance_of(rec) or {}).items()}


def _banners(views: Sequence[RunView]) -> str:
    out = []
    for v in views:
        r, status = v.record, v.record.status
        if r.state is None:
            out.append(f'<div class="banner info"><b class="run-label">{esc(v.label)}</b>: read from git '
                       f'({esc(r.source)}), not verified against a run record</div>')
        elif r.state == "committed":  # src/compare/committed.py: checked against dvc.lock, a result
            out.append(f'<div class="banner info"><b class="run-label">{esc(v.label)}</b>: committed: '
                       f'{esc("; ".join(r.problems))}</div>')
        elif status != "completed" or r.state != "intact":
            why = "; ".join(r.problems) if r.state != "intact" else ""
            out.append(f'<div class="banner warn"><b class="run-label">{esc(v.label)}</b>: status {esc(status)}, '
                       f'{esc(r.state)}{": " + esc(why) if why else ""}: its KPIs are not a finished result</div>')
        killed = (v.kpis.get("rejections") or {}).get("kill_switch")
        if isinstance(killed, int) and killed > 0:
            out.append(f'<div class="banner warn"><b class="run-label">{esc(v.label)}</b>: the daily loss kill switch '
                       f'stopped trading ({killed:,} entry signals rejected by it)</div>')
        k = v.kpis.get("exit_reasons") or {}
        if k and sum(k.values()) and k.get("time_limit") == sum(k.values()):
            out.append(f'<div class="banner warn"><b class="run-label">{esc(v.label)}</b>: every exit was '
                       'time_limit: take profit and stop loss never triggered</div>')
    return "".join(out)


def headline(views: Sequence[RunView]) -> str:
    headers = ["", "run", "status", "round trips", "win rate", "net PnL", "net PnL USD", "fees", "slippage",
               "max drawdown", "unrealized", "open at end", "gates"]
    rows = []
    for i, v in enumerate(views):
        k, gates = v.kpis, _gates(v)
        passed = None if not gates else all(g.get("passed") is True for g in gates.values())
        rows.append([f'<td style="background:{_color(i)}"></td>', cell(esc(v.label), "run-label"), esc(_status(v)),
                     num(k.get("round_trips")), pct(k.get("win_rate")), _signed(k.get("total_pnl_krw")),
                     _usd(k.get("total_pnl_usd")), money(k.get("fees_krw"), signed=False),
                     money(k.get("slippage_krw"), signed=False), money(k.get("max_drawdown_krw"), signed=False),
                     _signed(k.get("unrealized_pnl_krw")), num(k.get("open_positions_at_end")), verdict(passed)])
    notes = [f'<p class="note"><b class="run-label">{esc(v.label)}</b>: '
             + "; ".join(f"note: {esc(n)}" for n in v.notes) + ("; " if v.notes and v.tags else "")
             + (f"tags: {esc(', '.join(v.tags))}" if v.tags else "") + "</p>" for v in views if v.notes or v.tags]
    return "<h2>Headline KPIs</h2>" + table(headers, rows, "stack") + "".join(_story(v) for v in views) + "".join(notes)


def _status(v: RunView) -> str:
    """As src.compare shows it (src.compare.diff.shown_status): `committed` for a DVC stage's output
    without a local record."""
    return "committed" if v.record.state == "committed" else v.record.status


def _usd(v: Any) -> str:
    return esc(f"{v:+,.2f} USD") if isinstance(v, (int, float)) and not isinstance(v, bool) else esc(v)


def _story(v: RunView) -> str:
    """Where the money went, when the run recorded its gross PnL: gross, then costs, then net."""
    k = v.kpis
    if not isinstance(k.get("gross_pnl_krw"), (int, float)):
        return ""
    return (f'<p class="story"><b class="run-label">{esc(v.label)}</b>: gross {money(k["gross_pnl_krw"])} before '
            f'costs; fees {money(k.get("fees_krw"), signed=False)}, slippage {money(k.get("slippage_krw"), signed=False)}; '
            f'net {money(k.get("total_pnl_krw"))} realized over {num(k.get("round_trips"))} round trips</p>')


def gates_section(views: Sequence[RunView]) -> str:
    ids: list[str] = []
    desc: dict[str, str] = {}
    per_run = [_gates(v) for v in views]
    for g in per_run:
        for gid, r in g.items():
            if gid not in ids:
                ids.append(gid)
            desc.setdefault(gid, r.get("description") or "")
    if not ids:
        return "<h2>Acceptance gates</h2>" + missing()
    rows = []
    for v, g in zip(views, per_run):
        cells = [cell(esc(v.label), "run-label")]
        for gid in ids:
            r = g.get(gid)
            c = verdict(None if r is None else r.get("passed") is True)
            actual = (r or {}).get("actual")
            cells.append(c.replace("<td", f'<td title="{esc(actual)}"', 1) if actual is not None else c)
        rows.append(cells)
    legend = "".join(f"<li><b>{esc(g)}</b>: {esc(desc[g])}</li>" for g in ids if desc[g])
    return "<h2>Acceptance gates</h2>" + table(["run", *ids], rows) + f"<ul>{legend}</ul>"


def _costs_by_venue(v: Any, key: str) -> str:
    if not isinstance(v, dict) or not v:
        return esc(NOT_RECORDED)
    return "<br>".join(f"{esc(venue)}: {money((c or {}).get(key), signed=False)}" for venue, c in sorted(v.items()))


def _drawdown(v: Any) -> str:
    if not isinstance(v, dict):
        return esc(NOT_RECORDED)
    rec = v.get("recovery_t_s")
    times = f"start {sim_time(v.get('start_t_s'))}, trough {sim_time(v.get('trough_t_s'))}, " + (
        f"recovered {sim_time(rec)}" if rec is not None else "not recovered")
    return f"{money(v.get('krw'), signed=False)}<br><small>{times}</small>"


TRADER = (  # (kpi key, column, renderer)
    ("gross_pnl_krw", "gross PnL (before costs)", money),
    ("costs_by_venue", "fees by venue", lambda v: _costs_by_venue(v, "fees_krw")),
    ("costs_by_venue", "slippage by venue", lambda v: _costs_by_venue(v, "slippage_krw")),
    ("avg_win_krw", "avg win", money), ("avg_loss_krw", "avg loss", money),
    ("profit_factor", "profit factor", num), ("expectancy_krw", "expectancy / trade", money),
    ("sharpe_hourly", "Sharpe (hourly)", num), ("sortino_hourly", "Sortino (hourly)", num),
    ("max_drawdown", "max drawdown", _drawdown), ("exposure_share", "exposure", pct),
    ("turnover_usd", "turnover", lambda v: money(v, "USD", signed=False)),
)


NULL_CELL = ('<td class="missing" title="recorded as null: undefined for this run (a ratio needs at least two '
             'hourly samples and some spread of returns)">n/a</td>')


def trader_section(views: Sequence[RunView]) -> str:
    """One row per KPI, one column per run (as the provenance panel): twelve KPIs side by side
    would not fit a laptop's width; a few runs do, and many scroll inside the table's box."""
    rows: list[list[str]] = [[f"<th>{esc(name)}</th>"] for _, name, _ in TRADER]
    for v in views:
        k = v.kpis
        if not any(key in k for key, _, _ in TRADER):
            rows[0].append(f'<td rowspan="{len(TRADER)}" class="missing">{esc(NOT_RECORDED)}</td>')
            continue
        for row, (key, _, render) in zip(rows, TRADER):
            value = k.get(key)
            c = render(value) if value is not None else NULL_CELL if key in k else cell(esc(NOT_RECORDED), "missing")
            row.append(c if c.startswith("<td") else cell(c))
    return ("<h2>Trader KPIs</h2><p class=sub>Sharpe and Sortino: of the realized equity sampled once per "
            "simulated hour, not annualised.</p>" + table(["KPI", *(v.label for v in views)], rows, "kpis"))


def _to_end(v: RunView) -> list[tuple[float, float]]:
    """Realized equity stays flat from the last exit to the end of the run: draw it to the end."""
    end = v.duration_s
    if isinstance(end, (int, float)) and v.equity and end > v.equity[-1][0]:
        return [*v.equity, (float(end), v.equity[-1][1])]
    return list(v.equity)


def charts_section(views: Sequence[RunView]) -> str:
    out = ["<h2>Equity</h2>"]
    series = [charts.Series(v.label, _to_end(v), _color(i), step=True) for i, v in enumerate(views) if v.equity]
    if series:
        out.append(charts.line_chart("equity", "Realized equity (KRW)", series, "KRW"))
        out.append("<p class=sub>" + "; ".join(f"{esc(v.label)}: {esc(v.equity_source)}" for v in views if v.equity) + "</p>")
    else:
        out.append(missing())
    rows = [(v.label, v.exit_mix) for v in views if v.exit_mix]
    out.append("<h2>Exit mix</h2>")
    out.append(charts.stacked_chart("exit-mix", "Exits by reason", rows) if any(sum(m.values()) for _, m in rows)
               else missing("no exits recorded"))
    return "".join(out)


def run_detail(i: int, v: RunView) -> str:
    out = [f'<h3>Run <span class="run-label">{esc(v.label)}</span></h3>']
    if v.spread:
        title = f"Spread of {v.spread_symbol or '?'} (bps, KRW venue over USDT venue) with entries (o) and exits (■)"
        out.append(charts.line_chart(f"spread-{i}", title, [charts.Series(v.spread_symbol or "spread", v.spread, "#555")],
                                     "premium bps", marks=v.marks))
        sampled = " (drawn downsampled: min and max of each bucket)" if len(v.spread) > charts.MAX_POINTS else ""
        out.append(f"<p class=sub>{len(v.marks)} marks on {esc(v.spread_symbol)}; {len(v.spread):,} ticks{sampled}</p>")
    else:
        out.append(missing("spread: " + NOT_RECORDED))
    by_sym = sorted(v.pnl_by_symbol.items(), key=lambda kv: (-kv[1], kv[0]))
    out.append(charts.bar_chart(f"pnl-symbol-{i}", "PnL by symbol (KRW, realized)", by_sym, "KRW") if by_sym
               else missing("PnL by symbol: " + NOT_RECORDED))
    by_zone = sorted(v.pnl_by_zone.items(), key=lambda kv: (-kv[1], kv[0]))
    if by_zone:
        out.append(charts.bar_chart(f"pnl-zone-{i}", "PnL by zone (profile/zone, KRW, realized)", by_zone, "KRW"))
        out.append(f"<p class=sub>zones from {esc(v.zone_source)}</p>")
    else:
        out.append(missing("PnL by zone: " + NOT_RECORDED))
    return "".join(out)


def render(views: Sequence[RunView], diffs: Sequence[dict[str, Any]]) -> str:
    """The whole page. `diffs`: src.compare.diff.compare_two of the first run against each other one."""
    title = views[0].label if len(views) == 1 else f"{len(views)} runs"
    body = [f"<h1>Paper-trading report: {esc(title)}</h1>",
            "<p class=sub>made by <code>python -m src.report</code>; self-contained, opens offline</p>",
            _banners(views), headline(views), gates_section(views), charts_section(views), trader_section(views),
            "<h2>Per run</h2>", "".join(run_detail(i, v) for i, v in enumerate(views)),
            provenance_section(views, diffs)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{esc('Report: ' + title)}</title>"
            f"<style>{STYLE}</style></head><body>" + "".join(body) + "</body></html>\n")
