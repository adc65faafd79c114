"""What DVC shows of a run: config values as params (every change named, old and new), the
headline KPIs as the metric, every stage's results tracked, experiment names resolved by DVC."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, dvc, git_commit, load_json, run_cli, run_dir_of

SMOKE, LONGRUN = Path("logs/d92-5/smoke"), Path("logs/d92-1/longrun")
PARAMS, METRICS = str(SMOKE / "params.yaml"), str(SMOKE / "metrics.json")
HEADLINE = {"round_trips", "win_rate", "gross_pnl_krw", "total_pnl_krw", "total_pnl_usd", "fees_krw", "slippage_krw",
            "max_drawdown_krw", "exits", "rejections"}


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def flat(obj: object, prefix: str = "") -> dict[str, object]:
    """Dotted keys, list items by index: how DVC names a value of our params file."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        return {prefix: obj}
    out: dict[str, object] = {}
    for k, v in items:
        out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def test_every_run_writes_its_values_and_headline(repo: Path) -> None:
    proc = run_cli(repo, "stage=d92-5", "seed=3", "costs=bnb_discount", "engine=reference")
    assert proc.returncode in (0, 1), proc.stderr
    run = run_dir_of(proc, repo)
    params = yaml.safe_load((run / "params.yaml").read_text())
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    # every value that decides the result, nothing that only names or paces the run
    assert not {"run", "engine", "clock"} & set(params)
    assert flat(params) == flat({k: v for k, v in resolved.items() if k not in ("run", "engine", "clock")})
    assert params["seed"] == 3 and params["costs"]["usdt_venue"]["taker_fee_bps"] == 7.5  # conf/costs/bnb_discount
    # lists are indexed maps, so DVC (which flattens maps only) names each value
    zone0 = params["zone_profile"]["profiles"]["alt_advisory"]["zones"][0]
    assert zone0 == {"lo_bps": 50.0, "hi_bps": 80.0, "tp_bps": 35.0, "sl_bps": 35.0, "size_frac": 0.5}
    assert params["symbols"]["ranked"][0]["symbol"] == "BTC"

    kpi, head = load_json(run / "kpi_summary.json"), load_json(run / "metrics.json")
    assert set(head) == HEADLINE
    assert head["exits"] == kpi["exit_reasons"] and sum(head["exits"].values()) == kpi["round_trips"]
    assert head["rejections"] == sum(kpi["rejections"].values())
    assert {k: head[k] for k in HEADLINE - {"exits", "rejections"}} == {k: kpi[k] for k in HEADLINE - {"exits", "rejections"}}


def test_a_namespace_nests_both_files_and_is_no_result(repo: Path) -> None:
    """run.dvc_namespace (the longrun's in dvc.yaml) nests params.yaml and metrics.json under one
    key; the files are otherwise the same, and compare does not call it nondeterminism."""
    runs = []
    for extra in ((), ("run.dvc_namespace=longrun",)):
        proc = run_cli(repo, "stage=d92-5", "seed=3", *extra)
        assert proc.returncode in (0, 1), proc.stderr
        runs.append(run_dir_of(proc, repo))
    plain, nested = runs
    assert yaml.safe_load((nested / "params.yaml").read_text()) == {
        "longrun": yaml.safe_load((plain / "params.yaml").read_text())}
    assert load_json(nested / "metrics.json") == {"longrun": load_json(plain / "metrics.json")}
    assert load_json(nested / "kpi_summary.json") == load_json(plain / "kpi_summary.json")
    cmp = run_cli(repo, str(plain), str(nested), module="src.compare")
    assert cmp.returncode == 0 and "NONDETERMINISM" not in cmp.stdout, cmp.stdout + cmp.stderr

    for bad in ("a.b", "", "9x", "x/y"):
        proc = run_cli(repo, "stage=d92-5", f"run.dvc_namespace='{bad}'")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (bad, proc.stderr)
        assert "run.dvc_namespace" in lines[0], lines[0]


def test_dvc_yaml_declares_what_dvc_shows() -> None:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    # only the longrun nests its files, so the smoke's names are unique and DVC shows them bare
    assert "dvc_namespace" not in spec["stages"]["smoke"]["cmd"]
    assert spec["stages"]["longrun"]["cmd"].split()[:7] == [
        "python", "-m", "src.run", "stage=${longrun.stage}", "run.id=longrun", "run.overwrite=true",
        "run.dvc_namespace=longrun"]
    assert spec["params"] == ["logs/${smoke.stage}/smoke/params.yaml", "logs/${longrun.stage}/longrun/params.yaml"]
    for name, run_id in (("smoke", "smoke"), ("longrun", "longrun")):
        stage = spec["stages"][name]
        folder = f"logs/${{{name}.stage}}/{run_id}"
        assert [next(iter(m)) for m in stage["metrics"]] == [f"{folder}/metrics.json"]
        outs = {next(iter(o)) if isinstance(o, dict) else o: o for o in stage["outs"]}
        for f in ("params.yaml", "kpi_summary.json", "provenance.json"):
            assert outs[f"{folder}/{f}"][f"{folder}/{f}"] == {"cache": False}, f


def _git_tracks(repo: Path, rel: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", rel], cwd=repo).returncode == 1


def test_gitignore_tracks_every_dvc_stage_folder(dvc_repo: Path) -> None:
    for stage, run_id in (("d92-5", "smoke"), ("d92-1", "longrun"), ("d77-0", "smoke")):
        for f in ("params.yaml", "metrics.json", "kpi_summary.json", "provenance.json", "plots/spread.csv",
                  "plots/marks.csv", "plots/equity.csv", "plots/equity_trades.csv", "plots/exit_reasons.csv", ".gitignore"):
            assert _git_tracks(dvc_repo, f"logs/{stage}/{run_id}/{f}"), f"logs/{stage}/{run_id}/{f}"
        for f in ("runtime_meta.json", "run.log", "config.yaml", "trades.jsonl"):
            assert not _git_tracks(dvc_repo, f"logs/{stage}/{run_id}/{f}"), f
    assert not _git_tracks(dvc_repo, "logs/d92-5/d92-5-default-20260101T000000Z-abcdef/params.yaml")
    assert not _git_tracks(dvc_repo, "logs/d92-5/.smoke.lock")


@pytest.mark.slow
def test_params_diff_names_each_changed_value_and_metrics_are_the_headline(dvc_repo: Path) -> None:
    _ok(dvc(dvc_repo, "repro"))  # both stages
    git_commit(dvc_repo, "baseline")
    base = load_json(dvc_repo / SMOKE / "metrics.json")
    _ok(dvc(dvc_repo, "exp", "run", "smoke", "-n", "wide", "-S", "smoke.overrides='zone_profile=wide'"))
    _ok(dvc(dvc_repo, "exp", "run", "smoke", "-n", "seed2", "-S", "smoke.overrides='seed=2'"))

    def pdiff(*revs: str) -> dict:
        proc = dvc(dvc_repo, "params", "diff", *revs, "--json")
        _ok(proc)
        got = json.loads(proc.stdout or "{}")  # old and new only (DVC adds `diff` for numbers)
        return {p: {k: {"old": v["old"], "new": v["new"]} for k, v in d.items()} for p, d in got.items()}

    # a single value
    assert pdiff("HEAD", "seed2") == {"params.yaml": {"smoke.overrides": {"old": "", "new": "seed=2"}},
                                      PARAMS: {"seed": {"old": 42, "new": 2}}}
    # a group choice: exactly the values where the two zone-profile files differ, as written there
    zp = {n: flat(yaml.safe_load((REPO / f"conf/zone_profile/{n}.yaml").read_text())) for n in ("default", "wide")}
    expected = {f"zone_profile.{k}": {"old": zp["default"].get(k), "new": zp["wide"].get(k)}
                for k in zp["default"].keys() | zp["wide"].keys() if zp["default"].get(k) != zp["wide"].get(k)}
    got = pdiff("HEAD", "wide")
    assert got.pop("params.yaml") == {"smoke.overrides": {"old": "", "new": "zone_profile=wide"}}
    assert got == {PARAMS: expected}
    assert expected["zone_profile.name"] == {"old": "default", "new": "wide"}
    assert expected["zone_profile.profiles.alt_advisory.zones.0.tp_bps"]["new"] != 35.0

    # an edit under conf/ (no -S), from the baseline's choices: named with old and new value
    subprocess.run(["git", "checkout", "--", "params.yaml"], cwd=dvc_repo, check=True)
    costs = dvc_repo / "conf/costs/default.yaml"
    costs.write_text(costs.read_text().replace("taker_fee_bps: 10.0", "taker_fee_bps: 12.0", 1))
    _ok(dvc(dvc_repo, "repro", "smoke"))
    assert pdiff() == {PARAMS: {"costs.usdt_venue.taker_fee_bps": {"old": 10.0, "new": 12.0}}}

    # exp show --json: the values as params, the headline KPIs as numbers, kpi_summary.json not a metric
    proc = dvc(dvc_repo, "exp", "show", "--json")
    _ok(proc)
    show = json.loads(proc.stdout)
    exps = {r["name"]: r for rev in show for e in rev.get("experiments") or [] for r in e.get("revs") or []}
    assert {"wide", "seed2"} <= set(exps)
    data = exps["seed2"]["data"]
    assert data["params"][PARAMS]["data"]["seed"] == 2
    assert exps["wide"]["data"]["params"][PARAMS]["data"]["zone_profile"]["name"] == "wide"
    assert set(data["metrics"]) == {METRICS, str(LONGRUN / "metrics.json")}
    head = data["metrics"][METRICS]["data"]
    assert set(head) == HEADLINE and isinstance(head["round_trips"], int) and isinstance(head["total_pnl_krw"], float)
    assert head != base

    # metrics diff: the headline only, no warning, the longrun's too
    proc = dvc(dvc_repo, "metrics", "diff", "HEAD", "seed2", "--all", "--json")
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    assert set(json.loads(proc.stdout)) == {METRICS, str(LONGRUN / "metrics.json")}
    for cmd in (("metrics", "diff", "HEAD", "seed2"), ("metrics", "show"), ("params", "diff", "HEAD", "wide"),
                ("plots", "diff", "HEAD", "seed2")):
        out = _ok(dvc(dvc_repo, *cmd)).lower()
        assert "failed to load" not in out and "warning" not in out, (cmd, out[-2000:])
    # the longrun's folder is committed at each experiment: our compare reads it there
    cmp = run_cli(dvc_repo, "HEAD", "seed2", "--dvc-stage", "longrun", module="src.compare")
    assert cmp.returncode == 0, cmp.stderr


def _dvc_rev(repo: Path, name: str) -> str:
    """The commit DVC itself picks for `name` (through `dvc exp show`, its own resolution)."""
    proc = dvc(repo, "exp", "show", "--json", "--rev", "HEAD")
    for rev in json.loads(proc.stdout):
        for exp in rev.get("experiments") or []:
            for r in exp.get("revs") or []:
                if r.get("name") == name:
                    return r["rev"]
    raise AssertionError(f"DVC lists no experiment {name!r} on HEAD")


def _ambiguous_setup(repo: Path) -> None:
    _ok(dvc(repo, "repro", "smoke"))
    git_commit(repo, "baseline 1")
    _ok(dvc(repo, "exp", "run", "smoke", "-n", "seed2", "-S", "smoke.overrides='seed=2'"))
    (repo / "NOTES.md").write_text("second baseline\n")
    git_commit(repo, "baseline 2")
    costs = repo / "conf/costs/default.yaml"  # the second seed2 differs from the first
    costs.write_text(costs.read_text().replace("taker_fee_bps: 10.0", "taker_fee_bps: 12.0", 1))
    _ok(dvc(repo, "exp", "run", "smoke", "-n", "seed2", "-S", "smoke.overrides='seed=2'"))


@pytest.mark.slow
def test_experiment_names_resolve_as_dvc_resolves_them(dvc_repo: Path) -> None:
    from src.compare.load import revision_trades

    _ambiguous_setup(dvc_repo)
    # HEAD's baseline has a seed2: DVC takes that one, so do we (the newer, fee 12)
    proc = run_cli(dvc_repo, "HEAD", "seed2", "--json", module="src.compare")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {"key": "costs.usdt_venue.taker_fee_bps", "a": 10.0, "b": 12.0} in report["config_values"]
    b_sha = report["b"]["source"].split(":", 1)[1]
    assert b_sha == _dvc_rev(dvc_repo, "seed2")
    # trades.jsonl (DVC cache, not git) at the experiment, after the workspace copy is gone
    trades_file = dvc_repo / SMOKE / "trades.jsonl"
    trades_file.unlink()
    trades = revision_trades(dvc_repo, "seed2")
    at_exp = json.loads(subprocess.run(["git", "show", f"{b_sha}:{METRICS}"], cwd=dvc_repo, capture_output=True,
                                       text=True, check=True).stdout)
    assert len(trades) == at_exp["round_trips"] and all("pnl_krw" in t for t in trades)
    assert round(sum(t["pnl_krw"] for t in trades), 2) == at_exp["total_pnl_krw"]

    # a third baseline without a seed2: the name is ambiguous, an error naming both
    (dvc_repo / "NOTES.md").write_text("third baseline\n")
    git_commit(dvc_repo, "baseline 3")
    proc = run_cli(dvc_repo, "HEAD", "seed2", module="src.compare")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "ambiguous" in lines[0], proc.stderr
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=dvc_repo,
                          capture_output=True, text=True).stdout.split()
    refs = [r for r in refs if r.endswith("/seed2")]
    assert len(refs) == 2 and all(r in lines[0] for r in refs), (refs, lines)
    # the full ref, as the error suggests, is taken
    proc = run_cli(dvc_repo, "HEAD", refs[0], "--json", module="src.compare")
    assert proc.returncode == 0, proc.stderr
    sha = subprocess.run(["git", "rev-parse", refs[0]], cwd=dvc_repo, capture_output=True, text=True).stdout.strip()
    assert json.loads(proc.stdout)["b"]["source"] == f"git:{sha}"


def _cell(line: str, header: str, name: str, right: bool) -> str:
    """The cell under column `name` of a `dvc exp show` table: metrics are right-justified (the
    cell ends where the header ends), params left-justified (it starts where the header starts)."""
    m = re.search(rf"(?<= ){re.escape(name)}(?= )", header)
    assert m, (name, header)
    if right:
        head = line[:m.end()]
        return "" if head.endswith(" ") else head.split()[-1]
    tail = line[m.start():]
    return "" if tail.startswith(" ") else tail.split()[0]


@pytest.mark.slow
def test_exp_show_as_documented_fits_160_columns_with_bare_names(dvc_repo: Path) -> None:
    """The documented `dvc exp show` (docs/dvc.md) in a 160-column terminal: each experiment's changed values
    and its headline KPIs, whole, under their bare names (no file-path prefix)."""
    from conftest import dvc_env
    _ok(dvc(dvc_repo, "repro"))  # both stages: the longrun's files are there too
    git_commit(dvc_repo, "baseline")
    heads = {"main": load_json(dvc_repo / SMOKE / "metrics.json")}
    assert set(load_json(dvc_repo / LONGRUN / "metrics.json")) == {"longrun"}
    for name, override in (("seed7", "seed=7"), ("wide", "zone_profile=wide")):
        _ok(dvc(dvc_repo, "exp", "run", "smoke", "-n", name, "-S", f"smoke.overrides='{override}'"))
        heads[name] = load_json(dvc_repo / SMOKE / "metrics.json")
    assert len({json.dumps(h, sort_keys=True) for h in heads.values()}) == 3

    import docpages
    block = docpages.block_containing("dvc repro smoke")  # docs/dvc.md's walkthrough
    cmd = next(ln.split("  #")[0].strip() for ln in block.splitlines() if ln.startswith("dvc exp show"))
    assert cmd.startswith("dvc exp show --no-pager")
    proc = subprocess.run(["bash", "-c", cmd], cwd=dvc_repo, capture_output=True, text=True,
                          env=dict(dvc_env(dvc_repo.parent), COLUMNS="160"), timeout=300)
    out = _ok(proc)
    lines = proc.stdout.splitlines()
    assert all(len(ln) <= 160 for ln in lines) and "…" not in out, out
    header = next(ln for ln in lines if "Experiment" in ln)
    assert ":" not in header, header  # no `logs/d92-5/smoke/metrics.json:` prefix
    rows = {"main": next(ln for ln in lines if ln.strip().startswith("main"))}
    rows.update({n: next(ln for ln in lines if f"[{n}]" in ln) for n in ("seed7", "wide")})
    changed = {"main": ("", "42", "default"), "seed7": ("seed=7", "7", "default"),
               "wide": ("zone_profile=wide", "42", "wide")}
    for name, line in rows.items():
        assert tuple(_cell(line, header, p, right=False) for p in ("smoke.overrides", "seed", "zone_profile.name")) \
            == changed[name], (name, line)
        head = heads[name]  # DVC prints numbers with 5 significant digits
        assert _cell(line, header, "round_trips", right=True) == str(head["round_trips"]), (name, line)
        assert _cell(line, header, "win_rate", right=True) == f"{head['win_rate']:.5g}", (name, line)
        assert _cell(line, header, "total_pnl_krw", right=True) == f"{head['total_pnl_krw']:.5g}", (name, line)

    # every column of a plain `dvc exp show`: the smoke's bare, the longrun's under `longrun.`
    proc = dvc(dvc_repo, "exp", "show", "--csv")
    cols = _ok(proc).splitlines()[0].split(",")
    assert {"seed", "zone_profile.name", "costs.usdt_venue.taker_fee_bps",
            "zone_profile.profiles.alt_advisory.zones.0.tp_bps", "round_trips", "win_rate", "total_pnl_krw",
            "longrun.seed", "longrun.round_trips", "smoke.overrides", "longrun.overrides"} <= set(cols)
    assert not [c for c in cols if ":" in c], cols
