"""Render compare reports as a terminal table or Markdown."""
from __future__ import annotations

from typing import Any, Sequence


def _v(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def grid(headers: Sequence[str], rows: Sequence[Sequence[Any]], markdown: bool) -> str:
    cells = [[_v(c) for c in r] for r in rows]
    if markdown:
        esc = [[c.replace("|", "\\|") for c in r] for r in cells]
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in esc])
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _section(title: str, body: str, markdown: bool) -> str:
    return f"### {title}\n\n{body}\n" if markdown else f"{title}\n{body}\n"


def render_pair(r: dict[str, Any], markdown: bool = False) -> str:
    a, b = r["a"], r["b"]
    out = []
    head = grid(["", "run", "source", "status", "fingerprint"],
                [["A", a["label"], a["source"], a["status"], a["fingerprint"]],
                 ["B", b["label"], b["source"], b["status"], b["fingerprint"]]], markdown)
    out.append(_section("Runs", head, markdown))
    verdict = "same fingerprint" if r["same_fingerprint"] else "different fingerprints"
    verdict += ", identical KPIs" if r["kpis_equal"] else ", different KPIs"
    differ = r["result_files_differ"]
    if differ is not None:
        verdict += f"; result files that differ: {', '.join(differ)}" if differ else ", identical result files"
    for e in r["edited"]:
        verdict += f"\n{e['state'].upper()}: {e['run']}: {'; '.join(e['problems'])}"
    if r["nondeterminism"]:
        verdict += "  ** NONDETERMINISM: same inputs gave different results **"
    for c in r.get("committed", ()):
        verdict += f"\ncommitted: {c['run']}: {'; '.join(c['problems'])}"
    edited = {e["run"] for e in r["edited"]}
    for label in r["not_results"]:
        why = "its files do not match its record" if label in edited else "it is not a completed run"
        verdict += f"\nnote: {label}: {why}: its KPIs are not a result"
    out.append(_section("Verdict", verdict, markdown))
    if r["config_choices"]:
        out.append(_section("Config choices", grid(["group", "A", "B"], [[c["key"], c["a"], c["b"]] for c in r["config_choices"]], markdown), markdown))
    vals = r["config_values"]
    out.append(_section(f"Config values that differ ({len(vals)})",
                        grid(["key", "A", "B"], [[c["key"], c["a"], c["b"]] for c in vals], markdown) if vals else "none", markdown))
    for key, title in (("code_files", "Source files whose digests differ"), ("config_files", "Config files whose digests differ")):
        files = r[key]
        body = grid(["path", "change"], [[f["path"], f["change"]] for f in files], markdown) if files else "none"
        out.append(_section(f"{title} ({len(files)})", body, markdown))
    zp = r["zone_profile"]
    body = "same file and content" if zp is None else grid(
        ["", "path", "sha256"], [["A", zp["a"]["path"], zp["a"]["sha256"]], ["B", zp["b"]["path"], zp["b"]["sha256"]]], markdown)
    out.append(_section("Zone profile", body, markdown))
    data = r["data"]
    body = "same data identity" if data is None else grid(["key", "A", "B"], [[c["key"], c["a"], c["b"]] for c in data["changed"]], markdown)
    out.append(_section("Data identity", body, markdown))
    deltas = r["kpi_deltas"]
    out.append(_section(f"KPI deltas ({len(deltas)})", grid(["kpi", "A", "B", "B - A"],
                        [[d["kpi"], d["a"], d["b"], d["delta"]] for d in deltas], markdown) if deltas else "none", markdown))
    acc = r["acceptance"]
    body = grid(["gate", "A", "B"], [[g["gate"], _gate(g["a"]), _gate(g["b"])] for g in acc], markdown) if acc else "same gate results"
    out.append(_section("Acceptance", body, markdown))
    return "\n".join(out).rstrip() + "\n"


def _gate(x: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "-"}[x]


def render_table(rows: list[dict[str, Any]], groups: list[dict[str, Any]], markdown: bool = False) -> str:
    headers = ["run", "status", "fingerprint", "zone_profile", "universe", "seed", "round_trips", "win_rate",
               "total_pnl_krw", "tp/sl/tl/sr", "gates"]
    body = grid(headers, [[r[h] if h != "fingerprint" else (r[h] or "")[:12] for h in headers] for r in rows], markdown)
    out = [body, f"\n{len(rows)} runs"]
    for g in groups:
        out.append(f"NONDETERMINISM: fingerprint {g['fingerprint']} has {len(g['variants'])} different KPI results: "
                   + "; ".join(", ".join(v) for v in g["variants"]))
    for r in rows:
        if r["status"] in ("edited", "damaged", "committed"):
            out.append(f"{r['status']}: {r['run']}: {'; '.join(r['problems'])}")
    abandoned = [r["run"] for r in rows if r["status"] == "abandoned"]
    if abandoned:
        out.append(f"abandoned (recorded as running, process gone; not results): {', '.join(abandoned)}")
    return "\n".join(out) + "\n"
