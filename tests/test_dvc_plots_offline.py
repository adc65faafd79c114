"""`dvc plots show` / `dvc plots diff` pages draw offline: vega, vega-lite and vega-embed are
vendored and inlined through DVC's `plots.html_template` (.dvc/config). Checked in headless
Chromium with the network off, against DVC's own CDN page as the control (which draws nothing)."""
from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, dvc, git_commit

PLOTS = REPO / ".dvc/plots"
PACKAGES = ("vega", "vega-lite", "vega-embed")
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

# Appended to a copy of the page: after the charts had time to draw, what each SVG holds.
PROBE = """<script>
setTimeout(function () {
  var out = [];
  document.querySelectorAll("svg.marks").forEach(function (svg) {
    var n = function (sel) { return svg.querySelectorAll(sel).length; };
    out.push({
      title: Array.from(svg.querySelectorAll(".role-title text")).map(function (t) { return t.textContent; }),
      lines: n("g.mark-line.role-mark > path"), symbols: n("g.mark-symbol.role-mark > path"), rects: n("g.mark-rect.role-mark > path"),
      symbol_labels: Array.from(svg.querySelectorAll("g.mark-symbol.role-mark > path")).map(function (p) {
        return p.getAttribute("aria-label") || ""; })
    });
  });
  var pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 2000);
</script>"""


def _builder():
    spec = importlib.util.spec_from_file_location("build_template", PLOTS / "vendor/build_template.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_template_inlines_the_vendored_libraries_with_their_licences() -> None:
    template = (PLOTS / "offline.html").read_text(encoding="utf-8")
    assert template == _builder().render(), "offline.html is stale: python .dvc/plots/vendor/build_template.py"
    assert "{plot_divs}" in template and "{scripts}" not in template  # DVC's CDN tags go into {scripts}
    assert not re.search(r"<script[^>]+src=", template) and "cdn.jsdelivr" not in template
    for pkg in PACKAGES:
        assert (PLOTS / f"vendor/{pkg}/{pkg}.min.js").read_text(encoding="utf-8") in template
        assert "Redistribution and use in source and binary forms" in (PLOTS / f"vendor/{pkg}/LICENSE").read_text()
    config = (REPO / ".dvc/config").read_text()
    assert re.search(r"^\[plots\]\n\s+html_template = plots/offline.html$", config, re.M)


def probe(page: Path, tmp: Path) -> list[dict]:
    """Open `page` in headless Chromium with every network request failing; what the charts drew."""
    text = page.read_text(encoding="utf-8")
    head, body_end, tail = text.rpartition("</body>")  # the last one: vega-embed's code holds the string too
    probed = page.with_name(f"probe-{page.name}")
    probed.write_text(head + PROBE + body_end + tail, encoding="utf-8")
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp / 'chromium-profile'}",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--virtual-time-budget=15000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no probe result in the DOM:\n{proc.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; .ci/run does)")
def test_plots_show_and_diff_draw_offline(dvc_repo: Path, tmp_path: Path) -> None:
    def ok(*args: str) -> str:
        proc = dvc(dvc_repo, *args)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout + proc.stderr

    ok("repro")
    git_commit(dvc_repo, "baseline")
    ok("exp", "run", "smoke", "-n", "seed2", "-S", "smoke.overrides='seed=2'")
    marks = {rev: sum(1 for _ in (dvc_repo / "logs/d92-5/smoke/plots/marks.csv").open()) - 1 for rev in ("seed2",)}
    subprocess.run(["git", "stash", "-q"], cwd=dvc_repo, check=True)  # back to the baseline's files
    ok("checkout", "--force")
    marks["HEAD"] = sum(1 for _ in (dvc_repo / "logs/d92-5/smoke/plots/marks.csv").open()) - 1

    ok("plots", "show")  # plain command: .dvc/config's plots.html_template
    charts = probe(dvc_repo / "dvc_plots/index.html", tmp_path)
    assert len(charts) == 6  # per stage: spread with trade marks, equity, exit mix
    for chart in charts:
        assert chart["lines"] + chart["symbols"] + chart["rects"] > 0, chart
    spread = charts[0]
    for chart in charts[:2]:  # both stages' spread charts: conf/universe's top symbol, BTC
        assert "symbol: BTC" in chart["title"], chart["title"]
    assert spread["symbols"] == marks["HEAD"] > 0

    ok("plots", "diff", "HEAD", "seed2", "-o", "diff_plots")
    charts = probe(dvc_repo / "diff_plots/index.html", tmp_path)
    spread = charts[0]
    assert spread["lines"] == 2 and spread["symbols"] == marks["HEAD"] + marks["seed2"]
    revs = [re.search(r"revision: (\S+?);", label) for label in spread["symbol_labels"]]
    assert all(revs), spread["symbol_labels"][:3]
    assert sorted(r.group(1) for r in revs) == sorted(["HEAD"] * marks["HEAD"] + ["seed2"] * marks["seed2"])

    # control: DVC's own page (CDN scripts) draws nothing here, so the network really is off
    ok("config", "--unset", "plots.html_template")
    ok("plots", "show", "-o", "cdn_plots")
    assert "cdn.jsdelivr" in (dvc_repo / "cdn_plots/index.html").read_text()
    assert probe(dvc_repo / "cdn_plots/index.html", tmp_path) == []
