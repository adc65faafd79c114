"""`python -m src.report`: one self-contained HTML page per run or comparison (issue 14 item 2).

End to end through the real CLI in a temp copy of the repo; oracle values computed here from
the run's own files (kpi_summary.json, trades.jsonl, plots/*.csv)."""
from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
from html import escape
from pathlib import Path

import pytest

from conftest import REPO, git_commit, load_json, run_cli, run_dir_of
from src.provenance.outputs import output_digests, sealed_text
from src.report.charts import MAX_POINTS, downsample

NOT_RECORDED = "not recorded by this run"


def smoke(repo: Path, *overrides: str) -> Path:
    proc = run_cli(repo, "stage=d92-5", *overrides)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run_dir_of(proc, repo)


def report(repo: Path, *args: str) -> tuple[int, str, str]:
    proc = run_cli(repo, *args, module="src.report")
    return proc.returncode, proc.stdout, proc.stderr


def chart(text: str, name: str) -> str:
    """The SVG of one chart, by its data-chart name."""
    found = re.search(rf'<svg class="chart" data-chart="{re.escape(name)}".*?</svg>', text, re.S)
    assert found, f"no chart {name!r}"
    return found.group(0)


def marks(svg: str, kind: str) -> list[str]:
    return re.findall(rf'<(?:path|rect|circle) class="mark {kind}"[^>]*>(?:<title>(.*?)</title>)?', svg)


def reseal(run_dir: Path, edit_meta=None) -> None:  # type: ignore[no-untyped-def]
    """Make a hand-edited run folder consistent with its record again (a forged but intact run)."""
    meta = load_json(run_dir / "runtime_meta.json")
    meta["kpis"] = load_json(run_dir / "kpi_summary.json")
    if edit_meta:
        edit_meta(meta)
    meta["outputs"]["sha256"] = output_digests(run_dir)
    (run_dir / "runtime_meta.json").write_text(sealed_text(meta), encoding="utf-8")


def trades_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "trades.jsonl").read_text().splitlines() if line]


def flat_tail(run: Path) -> int:
    """1 when the run went on after its last exit: its realized equity is drawn flat to the end."""
    return int(max(t["exit_t_s"] for t in trades_of(run)) < load_json(run / "kpi_summary.json")["simulated_s"])


def test_smoke_report_end_to_end(repo: Path) -> None:
    run = smoke(repo)
    (repo / "out").mkdir()
    code, out, err = report(repo, run.relative_to(repo).as_posix(), "-o", "out/r.html")
    assert code == 0 and err == "", err
    assert out.startswith("report: out/r.html (1 run,")
    text = (repo / "out/r.html").read_text(encoding="utf-8")
    kpis = load_json(run / "kpi_summary.json")
    meta = load_json(run / "runtime_meta.json")

    # offline: no script, no external resource, no URL at all
    assert "<script" not in text and not re.search(r"https?:", text) and "src=" not in text
    assert meta["run_id"] in text and f"{kpis['total_pnl_krw']:+,.0f} KRW" in text
    assert f"{kpis['fees_krw']:,.0f} KRW" in text and f"{kpis['win_rate']:.1%}" in text
    for gate in meta["acceptance"]["results"]:
        assert f"<th>{gate['id']}</th>" in text
    # every chart has one mark per datum, from the run's own files
    assert len(marks(chart(text, "equity"), "line")) == 1
    spread_marks = (run / "plots/marks.csv").read_text().splitlines()[1:]
    assert len(marks(chart(text, "spread-0"), "point")) == len(spread_marks) > 0
    assert len(marks(chart(text, "exit-mix"), "bar")) == sum(1 for n in kpis["exit_reasons"].values() if n)
    sym_svg = chart(text, "pnl-symbol-0")
    losers = sum(1 for v in kpis["per_symbol"].values() if v["pnl_krw"] < 0)
    assert sym_svg.count('fill="#d62728"') == losers and sym_svg.count('fill="#2ca02c"') == len(kpis["per_symbol"]) - losers
    sym_titles = marks(sym_svg, "bar")
    assert sorted(sym_titles) == sorted(f"{s}: {v['pnl_krw']:,.2f} KRW" for s, v in kpis["per_symbol"].items())
    # by zone: summed here from every trade (no per_zone in the KPIs yet), and they add up to the total
    zones: dict[str, float] = {}
    for t in trades_of(run):
        key = f"{t['profile']}/{t['zone']}"
        zones[key] = zones.get(key, 0.0) + t["pnl_krw"]
    want = {k: round(v, 2) for k, v in (kpis.get("per_zone") and
                                        {z: d["pnl_krw"] for z, d in kpis["per_zone"].items()} or zones).items()}
    assert sorted(marks(chart(text, "pnl-zone-0"), "bar")) == sorted(f"{z}: {v:,.2f} KRW" for z, v in want.items())
    assert abs(sum(want.values()) - kpis["total_pnl_krw"]) < 0.01 * len(want)
    # provenance panel
    prov = load_json(run / "provenance.json")
    for fact in (prov["fingerprint"], prov["zone_profile"]["sha256"], prov["zone_profile"]["name"],
                 prov["data"]["digest"], "no git repository"):  # the temp copy is not a git checkout
        assert fact in text, fact
    # trader KPIs: shown when recorded, said to be absent when not
    if "gross_pnl_krw" in kpis:
        assert f"{kpis['gross_pnl_krw']:+,.0f} KRW" in text
    else:
        assert NOT_RECORDED in text


def test_two_runs_overlay_diff_and_stage_last(repo: Path) -> None:
    a, b = smoke(repo, "run.id=A"), smoke(repo, "run.id=B", "seed=2")
    code, _, err = report(repo, "A", "B", "-o", "two.html")
    assert code == 0, err
    text = (repo / "two.html").read_text(encoding="utf-8")
    equity = chart(text, "equity")
    assert len(marks(equity, "line")) == 2 and equity.count('class="legend"') == 2
    assert "spread-1" in text and "pnl-symbol-1" in text
    # the diff panel is src.compare's: one config value differs, seed 42 -> 2, and both fingerprints
    assert "Config values that differ (1)" in text
    assert re.search(r"<td class=\"mono\">seed</td><td class=\"mono\">42</td><td class=\"mono\">2</td>", text)
    for run in (a, b):
        assert load_json(run / "provenance.json")["fingerprint"] in text
    ka, kb = load_json(a / "kpi_summary.json"), load_json(b / "kpi_summary.json")
    delta = kb["round_trips"] - ka["round_trips"]
    assert re.search(rf"<td class=\"mono\">round_trips</td>.*?<td class=\"mono\">{delta}</td>", text)

    code, _, err = report(repo, "--stage", "d92-5", "--last", "1", "-o", "last.html")
    assert code == 0, err
    last = (repo / "last.html").read_text(encoding="utf-8")
    assert "Paper-trading report: B<" in last and "data-chart=\"spread-1\"" not in last


def test_edited_run_is_refused_naming_the_file(repo: Path) -> None:
    run = smoke(repo, "run.id=A")
    kpi = run / "kpi_summary.json"
    kpi.write_text(kpi.read_text().replace('"round_trips": ', '"round_trips": 1'), encoding="utf-8")
    code, out, err = report(repo, "A", "-o", "r.html")
    assert code == 5 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "kpi_summary.json: changed" in err
    assert not (repo / "r.html").exists()


def test_usage_errors_are_one_line_and_write_nothing(repo: Path) -> None:
    smoke(repo, "run.id=A")
    code, _, err = report(repo, "no-such-run", "-o", "r.html")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "'no-such-run'" in err
    code, _, err = report(repo, "A", "-o", "missing/dir/r.html")
    assert code == 2 and err == "error: -o missing/dir/r.html: folder missing/dir does not exist " \
                                "(create it first, or pick another path)\n"
    code, _, err = report(repo, "A", "-o", "logs")
    assert code == 2 and "is a folder" in err
    code, _, err = report(repo, "A", "-o", "logs/d92-5/A/plots/r.html")
    assert code == 2 and "inside the run folder" in err and "edited" in err and err.count("\n") == 1
    assert not (repo / "logs/d92-5/A/plots/r.html").exists()
    code, out, err = report(repo, "A")  # default: report.html where the user is
    assert code == 0 and out.startswith("report: report.html (1 run,") and (repo / "report.html").is_file()
    assert not (repo / "r.html").exists()
    assert report(repo, "--last", "2")[0] == 2
    assert report(repo)[0] == 2


EVIL_SYMBOL = "<script>alert('sym')</script>"
EVIL_ZONE = '"><img src=x onerror=alert(1)>'
EVIL_NOTE = "</td><script>alert('note')</script>"


def test_no_html_injection_from_symbols_zones_or_notes(repo: Path) -> None:
    """A forged but intact run whose symbol, zone and note are markup: all of it shows as text."""
    run = smoke(repo, "run.id=A")
    kpis = load_json(run / "kpi_summary.json")
    kpis["per_symbol"][EVIL_SYMBOL] = kpis["per_symbol"].pop("BTC")
    if kpis.get("per_zone"):  # recorded per-zone KPIs are what the report draws
        kpis["per_zone"][f"p/{EVIL_ZONE}"] = kpis["per_zone"].pop(sorted(kpis["per_zone"])[0])
    (run / "kpi_summary.json").write_text(json.dumps(kpis), encoding="utf-8")
    trades = trades_of(run)
    for t in trades:
        t["zone"] = EVIL_ZONE
    (run / "trades.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trades), encoding="utf-8")
    spread = run / "plots/spread.csv"
    spread.write_text(spread.read_text().replace(",BTC\n", f",{EVIL_SYMBOL}\n"), encoding="utf-8")
    reseal(run, lambda m: m["config"]["resolved"]["run"].update(note=EVIL_NOTE))  # where run.note= puts it
    code, _, err = report(repo, "A", "-o", "r.html")
    assert code == 0, err
    text = (repo / "r.html").read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text and "onerror=alert(1)>" not in text
    for evil in (EVIL_SYMBOL, EVIL_ZONE, EVIL_NOTE):
        assert escape(evil, quote=True) in text, evil
    assert f"A</b>: note: {escape(EVIL_NOTE, quote=True)}" in text


def test_notes_and_tags_added_after_the_run(repo: Path) -> None:
    """`python -m src.runs note|tag` (the run index's notes beside the folder) show under the KPIs, escaped."""
    pytest.importorskip("src.runs.notes", reason="the run index (src/runs/notes.py) is not on this branch")
    smoke(repo, "run.id=A")
    assert run_cli(repo, "note", "A", EVIL_NOTE, module="src.runs").returncode == 0
    assert run_cli(repo, "tag", "A", "keep", module="src.runs").returncode == 0
    code, _, err = report(repo, "A", "-o", "r.html")
    assert code == 0, err
    text = (repo / "r.html").read_text(encoding="utf-8")
    assert f"A</b>: note: {escape(EVIL_NOTE, quote=True)}; tags: keep</p>" in text and "<script" not in text


def test_what_a_run_lacks_comes_from_its_trades_or_is_said(repo: Path) -> None:
    """No plots/equity.csv: the curve is the cumulative realized PnL of trades.jsonl by exit time.
    Trader KPIs recorded: shown; per_zone recorded: used instead of the trades."""
    run = smoke(repo, "run.id=A")
    for name in ("equity.csv", "equity_trades.csv"):
        (run / "plots" / name).unlink(missing_ok=True)
    kpis = load_json(run / "kpi_summary.json")
    kpis.update(gross_pnl_krw=138811.0, profit_factor=0.8125, sharpe_hourly=-1.25, exposure_share=0.5,
                per_zone={"p/1-2": {"round_trips": 1, "wins": 1, "pnl_krw": 12.5}},
                max_drawdown={"krw": 2000.0, "start_t_s": 10.0, "trough_t_s": 5400.0, "recovery_t_s": None})
    for absent in ("costs_by_venue", "avg_win_krw", "avg_loss_krw", "expectancy_krw", "turnover_usd"):
        kpis.pop(absent, None)
    kpis["sortino_hourly"] = None  # recorded, undefined (too few hourly samples)
    (run / "kpi_summary.json").write_text(json.dumps(kpis), encoding="utf-8")
    reseal(run)
    code, _, err = report(repo, "A", "-o", "r.html")
    assert code == 0, err
    text = (repo / "r.html").read_text(encoding="utf-8")
    assert "A: trades.jsonl (cumulative realized PnL by exit time)" in text
    path = re.search(r'class="mark line"[^>]*d="([^"]+)"', chart(text, "equity")).group(1)
    assert path.count("V") == len(trades_of(run)) + flat_tail(run)  # one step per trade
    assert (f"A</b>: gross +138,811 KRW before costs; fees {kpis['fees_krw']:,.0f} KRW, slippage "
            f"{kpis['slippage_krw']:,.0f} KRW; net {kpis['total_pnl_krw']:+,.0f} KRW realized over "
            f"{kpis['round_trips']} round trips") in text
    assert "+138,811 KRW" in text and "0.8125" in text and "-1.25" in text and "50.0%" in text
    assert "start 10 s, trough 1.50 h, not recovered" in text
    assert marks(chart(text, "pnl-zone-0"), "bar") == ["p/1-2: 12.50 KRW"]
    assert text.count(NOT_RECORDED) == 6  # one cell each: fees and slippage by venue and the four others
    assert text.count('title="recorded as null: undefined for this run') == 1


def test_downsample_keeps_ends_and_every_bucket_extreme() -> None:
    pts = [(float(i), float((i * 7919) % 1000) - (5000.0 if i == 4321 else 0.0)) for i in range(100_000)]
    out = downsample(pts, 1000)
    assert len(out) <= 1000 and out[0] == pts[0] and out[-1] == pts[-1]
    assert out == sorted(out) and min(v for _, v in out) == -4001.0 and max(v for _, v in out) == 999.0
    assert (4321.0, -4001.0) in out  # the one spike, (4321 * 7919) % 1000 - 5000
    assert downsample(pts[:MAX_POINTS]) == pts[:MAX_POINTS]


@pytest.mark.slow
def test_report_of_a_24h_top100_run_stays_small(repo: Path) -> None:
    proc = run_cli(repo, "stage=longrun-24h", "run.id=big", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = run_dir_of(proc, repo)
    code, _, err = report(repo, "big", "-o", "big.html")
    assert code == 0, err
    text = (repo / "big.html").read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) < 2_000_000
    kpis = load_json(run / "kpi_summary.json")
    assert f"{kpis['total_pnl_krw']:+,.0f} KRW" in text  # totals from the KPIs, never from samples
    assert len(marks(chart(text, "pnl-symbol-0"), "bar")) == len(kpis["per_symbol"])
    path = re.search(r'class="mark line"[^>]*d="([^"]+)"', chart(text, "spread-0")).group(1)
    assert 100 < path.count("L") + 1 <= MAX_POINTS < 86_400


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
SCREENSHOT = REPO / "docs/img/report.png"
NETWORK_OFF = ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND"]
# Appended to a copy of the page: what the browser laid out for each chart (the page has no script of its own).
PROBE = """<script>
var out = [];
document.querySelectorAll("svg.chart").forEach(function (svg) {
  var marks = svg.querySelectorAll(".mark"), drawn = 0;
  marks.forEach(function (m) { var b = m.getBBox(); if (b.width + b.height > 0) drawn++; });
  var r = svg.getBoundingClientRect();
  out.push({chart: svg.dataset.chart, marks: marks.length, drawn: drawn, width: r.width, height: r.height});
});
var pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


# Every element the browser laid out wider than the window, or reaching past its right edge (a table
# scrolled inside its box counts: at these widths nothing may need it).
WIDTH_PROBE = """<script>
var w = window.innerWidth, wide = [];
document.querySelectorAll("body *").forEach(function (el) {
  var r = el.getBoundingClientRect();
  if (r.width > w + 0.5 || r.right > w + 0.5 || r.left < -0.5)
    wide.push(el.tagName + " " + Math.round(r.left) + ".." + Math.round(r.right) + " " + (el.textContent || "").slice(0, 40));
});
var pre = document.createElement("pre"); pre.id = "widths"; pre.textContent = JSON.stringify({window: w, wide: wide});
document.body.appendChild(pre);
</script>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={tmp / 'chromium-profile'}", *NETWORK_OFF, *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; .ci/run does)")
def test_report_draws_every_chart_in_headless_chromium_offline(repo: Path, tmp_path: Path) -> None:
    """Two runs rendered with the network off: every chart is laid out with all its marks drawn.
    Writes the screenshot docs/report.md shows (docs/img/report.png)."""
    smoke(repo, "run.id=A"), smoke(repo, "run.id=B", "seed=2")
    code, _, err = report(repo, "A", "B", "-o", "two.html")
    assert code == 0, err
    page = repo / "two.html"
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"https?:|<script|<link|<img|@import|url\(", text)  # nothing to fetch, nothing to run
    expected = re.findall(r'<svg class="chart" data-chart="([^"]+)"', text)
    assert expected == ["equity", "exit-mix", "spread-0", "pnl-symbol-0", "pnl-zone-0",
                        "spread-1", "pnl-symbol-1", "pnl-zone-1"]

    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = chromium(tmp_path, "--window-size=1100,2300", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stderr[-2000:]
    charts = json.loads(html.unescape(found.group(1)))
    assert [c["chart"] for c in charts] == expected
    for c, name in zip(charts, expected):
        assert c["marks"] == text_marks(chart(text, name)) > 0 and c["drawn"] == c["marks"], c
        assert c["width"] > 300 and c["height"] > 50, c

    # a laptop's 1100 px and a narrow 800 px: the trader KPIs (a column per run) and the headline
    # (a card per run below 900 px) fit; nothing overflows the page or hides in a scrolled box
    measured = tmp_path / "measured.html"
    measured.write_text(text.replace("</body>", WIDTH_PROBE + "</body>"), encoding="utf-8")
    for width in (1100, 800):
        proc = chromium(tmp_path, f"--window-size={width},2300", "--virtual-time-budget=5000", "--dump-dom",
                        measured.as_uri())
        found = re.search(r'<pre id="widths">(.*?)</pre>', proc.stdout, re.S)
        assert found, proc.stderr[-2000:]
        laid = json.loads(html.unescape(found.group(1)))
        assert laid["window"] == width and laid["wide"] == [], (width, laid["wide"][:10])

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = tmp_path / "report.png"
    proc = chromium(tmp_path, "--window-size=1100,2300", f"--screenshot={shot}", page.as_uri())
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n", proc.stderr[-2000:]
    assert struct.unpack(">II", png[16:24]) == (1100, 2300) and len(png) > 50_000  # a blank page is ~10 kB
    shutil.copyfile(shot, SCREENSHOT)


def text_marks(svg: str) -> int:
    return len(re.findall(r'class="mark ', svg))


def test_untrusted_states_are_compares() -> None:
    from src.compare.diff import UNTRUSTED
    from src.report.__main__ import UNTRUSTED as REFUSED

    assert REFUSED == UNTRUSTED


def test_unfinished_run_and_all_time_limit_exits_get_banners(repo: Path) -> None:
    run = smoke(repo, "run.id=A")
    kpis = load_json(run / "kpi_summary.json")
    n = sum(kpis["exit_reasons"].values())
    kpis["exit_reasons"] = {"take_profit": 0, "stop_loss": 0, "spread_reversal": 0, "time_limit": n}
    kpis["rejections"]["kill_switch"] = 5
    (run / "kpi_summary.json").write_text(json.dumps(kpis), encoding="utf-8")
    git = {"available": True, "commit": "0123456789abcdef" * 2 + "01234567", "branch": "feat<x>", "dirty": True}
    reseal(run, lambda m: m.update(status="interrupted", git=git))
    code, _, err = report(repo, "A", "-o", "r.html")
    assert code == 0, err
    text = (repo / "r.html").read_text(encoding="utf-8")
    assert "status interrupted, intact: its KPIs are not a finished result" in text
    assert "every exit was time_limit" in text
    assert "the daily loss kill switch stopped trading (5 entry signals rejected by it)" in text
    assert marks(chart(text, "exit-mix"), "bar") == [f"A: time_limit {n} (100%)"]
    assert '<th>commit</th><td class="mono">0123456789 (feat&lt;x&gt;)</td>' in text
    assert '<th>working tree</th><td class="fail">dirty</td>' in text


def test_same_run_twice_keeps_what_was_typed(repo: Path) -> None:
    smoke(repo, "run.id=A")
    code, _, err = report(repo, "A", "logs/d92-5/A", "-o", "r.html")
    assert code == 0, err
    text = (repo / "r.html").read_text(encoding="utf-8")
    assert "<th>A</th><th>logs/d92-5/A</th>" in text  # the provenance panel's columns
    assert "same fingerprint, identical KPIs, identical result files" in text


def test_a_git_revision_is_reported_from_what_was_committed(repo: Path) -> None:
    """The DVC stage's pinned folder as committed (no DVC cache here: no trades, so no zone chart)."""
    run = smoke(repo, "run.id=smoke")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-f", "conf", "params.yaml", "logs/d92-5/smoke/kpi_summary.json",
                    "logs/d92-5/smoke/provenance.json", "logs/d92-5/smoke/plots"], cwd=repo, check=True)
    git_commit(repo, "smoke")
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    code, _, err = report(repo, "HEAD", "-o", "r.html")
    assert code == 0, err
    text = (repo / "r.html").read_text(encoding="utf-8")
    assert f"read from git (git:{sha}), not verified against a run record" in text
    assert sha[:10] in text and load_json(run / "provenance.json")["fingerprint"] in text
    for name in ("equity", "exit-mix", "spread-0", "pnl-symbol-0"):
        chart(text, name)
    if load_json(run / "kpi_summary.json").get("per_zone"):
        chart(text, "pnl-zone-0")
    else:  # by zone from the trades, which are in the DVC cache, not in git
        assert 'data-chart="pnl-zone-0"' not in text and "PnL by zone: " + NOT_RECORDED in text
    gates = [g["id"] for g in load_json(run / "runtime_meta.json")["acceptance"]["results"]]
    assert re.search("".join(rf'<td class="pass">PASS</td>' for _ in gates), text)  # re-evaluated from the rules


def test_equity_steps_per_trade_come_before_hourly_samples(repo: Path) -> None:
    """A run with plots/equity_trades.csv (a step per round trip) and an hourly plots/equity.csv:
    the curve drawn is the per-trade one."""
    run = smoke(repo, "run.id=A")
    total, steps = 0.0, "t_s,equity_krw,trade\n0,0,0\n"
    for i, t in enumerate(sorted(trades_of(run), key=lambda t: (t["exit_t_s"], t["symbol"]))):
        total += t["pnl_krw"]
        steps += f"{t['exit_t_s']},{round(total, 2)},{i + 1}\n"
    (run / "plots/equity_trades.csv").write_text(steps, encoding="utf-8")
    (run / "plots/equity.csv").write_text("t_s,equity_krw\n0,0\n600,-1\n", encoding="utf-8")
    reseal(run)
    code, _, err = report(repo, "A", "-o", "r.html")
    assert code == 0, err
    text = (repo / "r.html").read_text(encoding="utf-8")
    assert "A: plots/equity_trades.csv" in text
    path = re.search(r'class="mark line"[^>]*d="([^"]+)"', chart(text, "equity")).group(1)
    assert path.count("V") == len(steps.splitlines()) - 2 + flat_tail(run)  # header and the (0, 0) start


def test_axis_helpers_and_long_diff_tables() -> None:
    from src.report.charts import fmt_num, nice_ticks, time_unit
    from src.report.provenance import MAX_ROWS, _rows

    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10] and nice_ticks(-178206.83, 0) == [-200000, -150000, -100000,
                                                                                          -50000, 0]
    assert nice_ticks(5, 5) == [4, 4.5, 5, 5.5, 6]  # a flat series still gets an axis
    assert [time_unit(t) for t in (179, 180, 10799, 10800)] == [("s", 1.0), ("min", 60.0), ("min", 60.0), ("h", 3600.0)]
    assert [fmt_num(v) for v in (-178206.83, 2_500_000, 0.5, 9999)] == ["-178.2k", "2.5M", "0.5", "9999"]
    rows = _rows([{"key": f"k{i}", "a": i, "b": i + 1} for i in range(MAX_ROWS + 5)], ["key", "a", "b"])
    assert len(rows) == MAX_ROWS + 1 and "and 5 more" in rows[-1][0]
