"""Small HTML helpers: every value goes through `esc`; tables are built from already-escaped cells."""
from __future__ import annotations

from html import escape
from typing import Any, Sequence

NOT_RECORDED = "not recorded by this run"


def esc(value: Any) -> str:
    """Any value as escaped text (quotes too, so it is safe inside an attribute)."""
    return escape("-" if value is None else str(value), quote=True)


def money(v: Any, unit: str = "KRW", signed: bool = True) -> str:
    """12,345 KRW with an explicit sign; an absent value as '-'."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return esc(v)
    return esc(f"{v:+,.0f} {unit}" if signed else f"{v:,.0f} {unit}")


def num(v: Any, digits: int = 4) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return esc(v)
    if isinstance(v, int) or abs(v) >= 1000:
        return esc(f"{v:,.0f}")
    return esc(f"{v:.{digits}g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}")


def sim_time(t_s: Any) -> str:
    """Simulated time since the run's start: 42 s, 12.5 min, 3.25 h."""
    if isinstance(t_s, bool) or not isinstance(t_s, (int, float)):
        return esc(t_s)
    return esc(f"{t_s / 3600:.2f} h" if t_s >= 3600 else f"{t_s / 60:.1f} min" if t_s >= 60 else f"{t_s:g} s")


def pct(v: Any) -> str:
    return esc(f"{v:.1%}") if isinstance(v, (int, float)) and not isinstance(v, bool) else esc(v)


def cell(html_text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{html_text}</td>' if cls else f"<td>{html_text}</td>"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """`rows` hold already-rendered cells (`<td>...</td>`) or plain escaped text (wrapped here).

    A table of class `stack` labels each cell with its column (`data-label`): on a narrow screen
    the page's style shows each row as a card of label: value lines instead of columns."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    stack = "stack" in cls.split()

    def td(c: str, j: int) -> str:
        c = c if c.startswith(("<td", "<th")) else f"<td>{c}</td>"
        if stack and c.startswith("<td") and j < len(headers):
            c = f'<td data-label="{esc(headers[j])}"' + c[3:]
        return c

    body = "".join("<tr>" + "".join(td(c, j) for j, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def verdict(passed: bool | None) -> str:
    return {True: cell("PASS", "pass"), False: cell("FAIL", "fail"), None: cell("-", "")}[passed]


def missing(text: str = NOT_RECORDED) -> str:
    return f'<p class="missing">{esc(text)}</p>'
