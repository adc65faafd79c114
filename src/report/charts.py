"""Charts as inline SVG strings: no script, no font or image to fetch, drawn by any browser offline.

Every drawn datum is an element of class `mark` inside an `<svg class="chart" data-chart=...>`
(the browser test counts them). Every text is escaped. Long series are downsampled for
drawing only (min and max of each bucket, so spikes stay visible); the figures printed
beside a chart always come from the full data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22")
EXIT_COLORS = {"take_profit": "#2ca02c", "stop_loss": "#d62728", "spread_reversal": "#9467bd",
               "time_limit": "#ff7f0e"}
MAX_POINTS = 1000  # per drawn series: about 2 points per horizontal pixel
W, H = 880, 300
L, R, T, B = 72, 16, 30, 40  # margins


@dataclass
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    color: str
    step: bool = False  # realized equity changes only at exits: draw it as steps


def downsample(points: Sequence[tuple[float, float]], max_points: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most ~max_points points: first and last kept, each bucket reduced to its min and max (in order)."""
    n = len(points)
    if n <= max_points:
        return list(points)
    buckets = max(1, (max_points - 2) // 2)
    out = [points[0]]
    for b in range(buckets):
        lo, hi = 1 + (n - 2) * b // buckets, 1 + (n - 2) * (b + 1) // buckets
        chunk = [p for p in points[lo:hi] if p[1] == p[1]]
        if not chunk:
            continue
        i_min = min(range(len(chunk)), key=lambda i: chunk[i][1])
        i_max = max(range(len(chunk)), key=lambda i: chunk[i][1])
        out.extend(chunk[i] for i in sorted({i_min, i_max}))
    out.append(points[-1])
    return out


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round-number ticks covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(int(math.ceil((hi - first) / step)) + 1)]


def fmt_num(v: float) -> str:
    """Compact axis label: 1.2M, 35k, 0.5."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.4g}M"
    if a >= 1e4:
        return f"{v / 1e3:.4g}k"
    return f"{v:.4g}"


def time_unit(max_t_s: float) -> tuple[str, float]:
    """Axis unit for a span of simulated seconds."""
    if max_t_s >= 3 * 3600:
        return "h", 3600.0
    if max_t_s >= 180:
        return "min", 60.0
    return "s", 1.0


def _open(chart_id: str, title: str, height: int) -> list[str]:
    return [f'<svg class="chart" data-chart="{escape(chart_id)}" viewBox="0 0 {W} {height}" width="{W}" '
            f'height="{height}" role="img" aria-label="{escape(title)}">',
            f'<text class="title" x="{L}" y="18">{escape(title)}</text>']


def line_chart(chart_id: str, title: str, series: Sequence[Series], y_label: str,
               marks: Sequence[tuple[float, float, str]] = ()) -> str:
    """Series over simulated time, with optional point marks (t_s, y, kind); a legend when several."""
    drawn = [(s, downsample([p for p in s.points if math.isfinite(p[0])])) for s in series]
    pts = [p for _, d in drawn for p in d if math.isfinite(p[1])] + [(m[0], m[1]) for m in marks if math.isfinite(m[1])]
    if not pts:
        raise ValueError(f"chart {chart_id!r}: nothing to draw")
    t_max = max(p[0] for p in pts)
    unit, div = time_unit(t_max)
    x_ticks = nice_ticks(min(p[0] for p in pts) / div, t_max / div)
    y_ticks = nice_ticks(min(p[1] for p in pts), max(p[1] for p in pts))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    sx = lambda t: L + (t / div - x0) / ((x1 - x0) or 1) * (W - L - R)  # noqa: E731
    sy = lambda v: T + (y1 - v) / ((y1 - y0) or 1) * (H - T - B)  # noqa: E731
    out = _open(chart_id, title, H)
    out.append('<g class="axis">')
    for v in y_ticks:
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" class="grid{" zero" if v == 0 else ""}"/>'
                   f'<text x="{L - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{escape(fmt_num(v))}</text>')
    for v in x_ticks:
        out.append(f'<text x="{sx(v * div):.1f}" y="{H - B + 16}" text-anchor="middle">{escape(fmt_num(v))}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 6}" text-anchor="middle">simulated time ({unit})</text>'
               f'<text x="14" y="{(T + H - B) / 2}" transform="rotate(-90 14 {(T + H - B) / 2})" '
               f'text-anchor="middle">{escape(y_label)}</text></g>')
    for s, d in drawn:
        out.append(f'<path class="mark line" fill="none" stroke="{escape(s.color)}" stroke-width="1.5" '
                   f'd="{_path(d, sx, sy, s.step)}"><title>{escape(s.name)}</title></path>')
    for t, y, kind in marks:
        if not math.isfinite(y):
            continue
        color = "#000" if kind == "entry" else EXIT_COLORS.get(kind.split(":", 1)[-1], "#555")
        shape = (f'<circle class="mark point" cx="{sx(t):.1f}" cy="{sy(y):.1f}" r="4" fill="none" stroke="{color}" '
                 f'stroke-width="1.5">' if kind == "entry" else
                 f'<rect class="mark point" x="{sx(t) - 3.5:.1f}" y="{sy(y) - 3.5:.1f}" width="7" height="7" fill="{color}">')
        out.append(shape + f'<title>{escape(kind)} at t={t:g} s: {y:.2f}</title>' + ("</circle>" if kind == "entry" else "</rect>"))
    if len(series) > 1:
        for i, s in enumerate(series):
            x, y = L + 8 + (i % 4) * 200, T + 4 + (i // 4) * 14
            out.append(f'<g class="legend"><rect x="{x}" y="{y}" width="12" height="3" fill="{escape(s.color)}"/>'
                       f'<text x="{x + 16}" y="{y + 5}">{escape(_short(s.name, 28))}</text></g>')
    out.append("</svg>")
    return "".join(out)


def _path(points: Sequence[tuple[float, float]], sx, sy, step: bool) -> str:  # type: ignore[no-untyped-def]
    parts: list[str] = []
    pen_up = True
    for t, v in points:
        if not math.isfinite(v):
            pen_up = True
            continue
        x, y = sx(t), sy(v)
        if pen_up:
            parts.append(f"M{x:.1f} {y:.1f}")
        elif step:
            parts.append(f"H{x:.1f}V{y:.1f}")
        else:
            parts.append(f"L{x:.1f} {y:.1f}")
        pen_up = False
    return "".join(parts)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def bar_chart(chart_id: str, title: str, items: Sequence[tuple[str, float]], unit: str) -> str:
    """Horizontal bars, one per item (label, value), green for gains and red for losses, value printed."""
    if not items:
        raise ValueError(f"chart {chart_id!r}: nothing to draw")
    row, label_w = 16, 170
    height = T + row * len(items) + 12
    lo, hi = min(0.0, *(v for _, v in items)), max(0.0, *(v for _, v in items))
    span = (hi - lo) or 1.0
    plot_w = W - label_w - 110
    sx = lambda v: label_w + (v - lo) / span * plot_w  # noqa: E731
    out = _open(chart_id, title, height)
    out.append(f'<line class="grid zero" x1="{sx(0):.1f}" x2="{sx(0):.1f}" y1="{T - 4}" y2="{height - 8}"/>')
    for i, (label, v) in enumerate(items):
        y = T + i * row
        x_a, x_b = sorted((sx(0), sx(v)))
        color = "#2ca02c" if v >= 0 else "#d62728"
        out.append(f'<text x="{label_w - 6}" y="{y + 11}" text-anchor="end">{escape(_short(label, 26))}</text>'
                   f'<rect class="mark bar" x="{x_a:.1f}" y="{y + 2}" width="{max(x_b - x_a, 1.0):.1f}" height="{row - 4}" '
                   f'fill="{color}"><title>{escape(label)}: {v:,.2f} {escape(unit)}</title></rect>'
                   f'<text x="{max(x_b, sx(0)) + 4:.1f}" y="{y + 11}">{v:,.0f}</text>')
    out.append("</svg>")
    return "".join(out)


def stacked_chart(chart_id: str, title: str, rows: Sequence[tuple[str, dict[str, int]]]) -> str:
    """One 100% bar per row (label, {category: count}), segments in EXIT_COLORS, a legend on top."""
    if not rows:
        raise ValueError(f"chart {chart_id!r}: nothing to draw")
    row, label_w = 22, 190
    height = T + 18 + row * len(rows) + 8
    plot_w = W - label_w - R
    out = _open(chart_id, title, height)
    for i, (name, color) in enumerate(EXIT_COLORS.items()):
        x = label_w + i * 150
        out.append(f'<g class="legend"><rect x="{x}" y="{T - 2}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{x + 14}" y="{T + 7}">{escape(name)}</text></g>')
    for r, (label, counts) in enumerate(rows):
        y = T + 18 + r * row
        total = sum(counts.values())
        out.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(_short(label, 28))}</text>')
        if total == 0:
            out.append(f'<text x="{label_w}" y="{y + 14}">no exits</text>')
            continue
        x = float(label_w)
        for cat, n in counts.items():
            if n <= 0:
                continue
            w = n / total * plot_w
            out.append(f'<rect class="mark bar" x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" '
                       f'fill="{EXIT_COLORS.get(cat, "#555")}"><title>{escape(label)}: {escape(cat)} {n} '
                       f'({n / total:.0%})</title></rect>')
            if w > 28:
                out.append(f'<text class="in" x="{x + w / 2:.1f}" y="{y + 14}" text-anchor="middle">{n}</text>')
            x += w
    out.append("</svg>")
    return "".join(out)
