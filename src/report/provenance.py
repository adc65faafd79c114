"""Provenance panel: what went into each run, and what differs between them (src.compare's diff, as HTML)."""
from __future__ import annotations

import json
from typing import Any, Sequence

from src.report.data import RunView
from src.report.markup import NOT_RECORDED, cell, esc, table

MAX_ROWS = 200  # per diff table; the count is always given in full


def _identity(prov: dict[str, Any]) -> str:
    data = prov.get("data") or {}
    ident = data.get("identity") or {}
    keep = {k: ident[k] for k in ("kind", "generator", "seed", "n_ticks", "files", "path", "sha256") if k in ident}
    text = ", ".join(f"{k}={json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v}" for k, v in keep.items())
    return f'{esc(text or NOT_RECORDED)}<br><span class="mono">digest {esc(data.get("digest"))}</span>'


def _git(view: RunView) -> tuple[str, str]:
    g = view.record.meta.get("git") or {}
    if view.record.source.startswith("git:"):
        return view.record.source[4:14], "committed"
    if view.record.state == "committed":  # a DVC stage's output as this checkout holds it (dvc.lock)
        return "this checkout's (dvc.lock)", "committed"
    if not g:
        return NOT_RECORDED, "-"
    if g.get("available") is False:
        return "no git repository", "-"
    dirty = g.get("dirty")
    return str(g.get("commit") or "-")[:10] + (f" ({g['branch']})" if g.get("branch") else ""), (
        "dirty" if dirty else "clean" if dirty is False else "-")


def provenance_table(views: Sequence[RunView]) -> str:
    """One column per run, one row per fact, so runs read side by side."""
    fields: list[tuple[str, list[str]]] = [(name, []) for name in (
        "fingerprint", "commit", "working tree", "zone profile", "zone profile SHA-256", "seed", "data identity",
        "config choices")]
    for v in views:
        prov = v.record.provenance or {}
        zp = prov.get("zone_profile") or {}
        choices = (prov.get("config") or {}).get("choices") or {}
        commit, dirty = _git(v)
        cells = [cell(esc(v.record.fingerprint or NOT_RECORDED), "mono"), cell(esc(commit), "mono"),
                 cell(esc(dirty), "fail" if dirty == "dirty" else ""),
                 esc(f"{zp.get('name', '-')} ({zp.get('mode', '-')})") + f"<br><small>{esc(zp.get('path'))}</small>",
                 cell(esc(zp.get("sha256") or NOT_RECORDED), "mono"), esc(prov.get("seed")), cell(_identity(prov), "wide"),
                 esc(", ".join(f"{k}={val}" for k, val in sorted(choices.items())))]
        for (_, row), c in zip(fields, cells):
            row.append(c)
    return table(["", *(v.label for v in views)], [[f"<th>{esc(name)}</th>", *row] for name, row in fields], "prov")


def _rows(items: list[dict[str, Any]], keys: Sequence[str]) -> list[list[str]]:
    shown = [[cell(esc(_short(it.get(k))), "mono") for k in keys] for it in items[:MAX_ROWS]]
    if len(items) > MAX_ROWS:
        shown.append([esc(f"... and {len(items) - MAX_ROWS} more (python -m src.compare A B shows all)")] + [""] * (len(keys) - 1))
    return shown


def _short(v: Any) -> Any:
    text = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
    return text[:12] if isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def _block(title: str, items: list[dict[str, Any]], headers: Sequence[str], keys: Sequence[str]) -> str:
    if not items:
        return f"<h3>{esc(title)} (0)</h3><p class=sub>none</p>"
    return f"<h3>{esc(title)} ({len(items)})</h3>" + table(headers, _rows(items, keys))


def diff_html(d: dict[str, Any], open_: bool) -> str:
    """One compare_two(a, b) result as HTML: every section src.compare prints."""
    a, b = d["a"], d["b"]
    verdict = ("same fingerprint" if d["same_fingerprint"] else "different fingerprints") + (
        ", identical KPIs" if d["kpis_equal"] else ", different KPIs")
    differ = d["result_files_differ"]
    if differ is not None:
        verdict += f"; result files that differ: {', '.join(differ)}" if differ else ", identical result files"
    out = [f"<details{' open' if open_ else ''}><summary>A <span class=run-label>{esc(a['label'])}</span> vs B "
           f"<span class=run-label>{esc(b['label'])}</span>: {esc(verdict)}</summary>"]
    if d["nondeterminism"]:
        out.append('<div class="banner warn">NONDETERMINISM: same fingerprint, different result files</div>')
    out.append(_block("Config choices", d["config_choices"], ["group", "A", "B"], ["key", "a", "b"]))
    out.append(_block("Config values that differ", d["config_values"], ["key", "A", "B"], ["key", "a", "b"]))
    out.append(_block("Source files whose digests differ", d["code_files"], ["path", "change"], ["path", "change"]))
    out.append(_block("Config files whose digests differ", d["config_files"], ["path", "change"], ["path", "change"]))
    zp = d["zone_profile"]
    out.append("<h3>Zone profile</h3>" + ("<p class=sub>same file and content</p>" if zp is None else table(
        ["", "path", "SHA-256"], [[side, esc(zp[side.lower()]["path"]), cell(esc(zp[side.lower()]["sha256"]), "mono")]
                                  for side in ("A", "B")])))
    data = d["data"]
    out.append("<h3>Data identity</h3>" + ("<p class=sub>same data identity</p>" if data is None else
                                           table(["key", "A", "B"], _rows(data["changed"], ["key", "a", "b"]))))
    out.append(_block("KPI deltas", d["kpi_deltas"], ["KPI", "A", "B", "B - A"], ["kpi", "a", "b", "delta"]))
    acc = [{**g, "a": _pf(g["a"]), "b": _pf(g["b"])} for g in d["acceptance"]]
    out.append(_block("Gates that differ", acc, ["gate", "A", "B"], ["gate", "a", "b"]))
    out.append("</details>")
    return "".join(out)


def _pf(x: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "-"}[x]


def provenance_section(views: Sequence[RunView], diffs: Sequence[dict[str, Any]]) -> str:
    out = ["<h2>Provenance</h2>", provenance_table(views)]
    if diffs:
        out.append(f"<h2>What differs (against <span class=run-label>{esc(views[0].label)}</span>)</h2>")
        out.extend(diff_html(d, i == 0) for i, d in enumerate(diffs))
    return "".join(out)
