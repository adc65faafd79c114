"""`python -m src.export_mlflow` against a real MLflow store: a SQLite database in the default
suite, a real `mlflow server` on 127.0.0.1 in a slow test.

A small sweep (seed=1,2) runs once in a committed temp repo; it is exported twice into one
SQLite store, and the store is read back with MLflow's own client and `mlflow.search_runs`.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import clean_env, copy_repo, git_commit, load_json, run_cli, run_dir_of

try:
    import mlflow
    from mlflow.tracking import MlflowClient
except ImportError:  # pragma: no cover - the [mlflow] extra is optional, but CI installs it
    if os.environ.get("CI"):
        raise
    pytest.skip("the [mlflow] extra is not installed: pip install '.[mlflow]'", allow_module_level=True)

from src.export_mlflow.__main__ import main as export_main
from src.export_mlflow.entities import KEY_LIMIT, PARAM_VALUE_LIMIT, Payload, clip, mlflow_key
from src.export_mlflow.store import export_run, open_experiment

EXP = "sweep-test"
ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


def export(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(repo, *args, module="src.export_mlflow", env=clean_env(**ENV, **(env or {})), timeout=300)


def export_here(repo: Path, mp: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The same CLI in this process (MLflow imported once): its stdout; exit 0 required."""
    mp.chdir(repo)
    code = export_main(list(args))
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return out.out


def sqlite_uri(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"  # four slashes: an absolute path


def key_runs(client: Any, exp_name: str, view: int = 1) -> list[Any]:
    exp = client.get_experiment_by_name(exp_name)
    return [] if exp is None else list(client.search_runs([exp.experiment_id], run_view_type=view, max_results=1000))


def lines(out: str, word: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.startswith(word + " ")]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A committed repo with a seed=1,2 sweep, exported twice to one SQLite store."""
    tmp = tmp_path_factory.mktemp("mlflow")
    repo = copy_repo(tmp / "repo")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    git_commit(repo, "project")
    proc = run_cli(repo, "-m", "stage=d92-5", "seed=1,2", "stage.duration_s=60", timeout=300)
    assert proc.returncode == 0, proc.stderr
    runs = {load_json(d / "provenance.json")["seed"]: d for d in (repo / "logs/d92-5").iterdir()}
    assert sorted(runs) == [1, 2]
    uri = sqlite_uri(tmp / "store")
    first = export(repo, "--stage", "d92-5", "--tracking-uri", uri, "--experiment", EXP)
    second = export(repo, "--stage", "d92-5", "--tracking-uri", uri, "--experiment", EXP)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    return {"repo": repo, "tmp": tmp, "uri": uri, "runs": runs, "first": first, "second": second,
            "client": MlflowClient(tracking_uri=uri), "head": head}


def test_export_twice_holds_each_run_once_with_its_fingerprint(swept: dict[str, Any]) -> None:
    first, second = swept["first"], swept["second"]
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert len(lines(first.stdout, "created")) == 2 and len(lines(second.stdout, "unchanged")) == 2
    assert "2 unchanged" in second.stdout.splitlines()[-1]
    stored = key_runs(swept["client"], EXP, view=3)  # ALL: deleted runs too, none may exist
    assert len(stored) == 2
    for seed, folder in swept["runs"].items():
        meta = load_json(folder / "runtime_meta.json")
        (run,) = [r for r in stored if r.data.tags["paper.run_id"] == folder.name]
        t = run.data.tags
        assert run.info.lifecycle_stage == "active" and run.info.run_name == folder.name
        assert t["paper.fingerprint"] == meta["fingerprint"] == load_json(folder / "provenance.json")["fingerprint"]
        assert t["paper.stage_id"] == "d92-5" and t["paper.status"] == "completed" and t["paper.state"] == "intact"
        assert t["mlflow.source.git.commit"] == swept["head"] and t["mlflow.source.git.branch"] == "main"
        assert t["paper.dirty"] == "false" and t["paper.gate"] == "pass" and t["paper.gate.AC-1"] == "pass"
        assert t["paper.choice.zone_profile"] == "default" and t["paper.run_dir"] == f"logs/d92-5/{folder.name}"
        assert run.info.status == "FINISHED"
        assert run.info.start_time == int(time_ms(meta["started_at"]))
        assert run.info.end_time == int(time_ms(meta["ended_at"]))
        # the second export added no metric history
        assert len(swept["client"].get_metric_history(run.info.run_id, "total_pnl_krw")) == 1


def time_ms(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso).timestamp() * 1000


def test_search_runs_by_param_finds_exactly_the_seed_2_run(swept: dict[str, Any]) -> None:
    mlflow.set_tracking_uri(swept["uri"])
    df = mlflow.search_runs(experiment_names=[EXP], filter_string="params.seed = '2'")
    assert list(df["tags.paper.run_id"]) == [swept["runs"][2].name]
    assert len(mlflow.search_runs(experiment_names=[EXP], filter_string="params.seed = '1'")) == 1
    assert len(mlflow.search_runs(experiment_names=[EXP], filter_string="params.`universe.top_n` = '10'")) == 2


def test_params_are_the_flattened_resolved_config(swept: dict[str, Any]) -> None:
    folder = swept["runs"][2]
    (run,) = [r for r in key_runs(swept["client"], EXP) if r.data.tags["paper.run_id"] == folder.name]
    p = run.data.params
    resolved = load_json(folder / "runtime_meta.json")["config"]["resolved"]
    assert p["seed"] == "2" and p["universe.top_n"] == "10" and p["stage.duration_s"] == "60.0"
    assert p["costs.krw_venue.name"] == "upbit" and p["costs.usdt_venue.taker_fee_bps"] == "10.0"
    assert p["stage.acceptance.0.id"] == "AC-1" and p["stage.acceptance.1.metrics.0"] == "derived.time_limit_share"
    assert p["plots.symbol"] == "null" and p["run.overwrite"] == "false" and p["run.id"] == folder.name
    assert p["symbols.ranked.0.symbol"] == resolved["symbols"]["ranked"][0]["symbol"]

    def leaves(o: Any) -> int:
        if isinstance(o, dict) and o:
            return sum(leaves(v) for v in o.values())
        if isinstance(o, list) and o:
            return sum(leaves(v) for v in o)
        return 1
    assert len(p) == leaves(resolved) > 300  # every leaf, more than one MLflow batch (100 params)


def test_metrics_are_the_numeric_kpis(swept: dict[str, Any]) -> None:
    folder = swept["runs"][1]
    (run,) = [r for r in key_runs(swept["client"], EXP) if r.data.tags["paper.run_id"] == folder.name]
    m, k = run.data.metrics, load_json(folder / "kpi_summary.json")
    assert m["total_pnl_krw"] == k["total_pnl_krw"] and m["round_trips"] == k["round_trips"]
    assert m["exit_reasons.take_profit"] == k["exit_reasons"]["take_profit"]
    assert m["per_symbol.BTC.pnl_krw"] == k["per_symbol"]["BTC"]["pnl_krw"]
    assert "per_symbol.BTC.profile" not in m  # a string is not a metric
    numeric = [v for v in json_leaves(k) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert len(m) == len(numeric)


def json_leaves(o: Any) -> list[Any]:
    if isinstance(o, dict):
        return [x for v in o.values() for x in json_leaves(v)]
    if isinstance(o, list):
        return [x for v in o for x in json_leaves(v)]
    return [o]


def test_artifacts_are_the_run_folder_byte_for_byte(swept: dict[str, Any], tmp_path: Path) -> None:
    folder = swept["runs"][1]
    (run,) = [r for r in key_runs(swept["client"], EXP) if r.data.tags["paper.run_id"] == folder.name]
    got = Path(swept["client"].download_artifacts(run.info.run_id, "", str(tmp_path)))
    want = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()) == want
    assert "trades.jsonl" in want and "plots/spread.csv" in want
    for rel in want:
        assert (got / rel).read_bytes() == (folder / rel).read_bytes(), rel
    # beside the database, not in the repo (MLflow's default would be ./mlruns in the working folder)
    assert (swept["tmp"] / "store/mlartifacts").is_dir() and not (swept["repo"] / "mlruns").exists()


def test_edited_run_is_refused_exit_5_naming_the_file_nothing_exported(swept: dict[str, Any], tmp_path: Path) -> None:
    repo = swept["repo"]
    edited = repo / "logs/d92-5-edited" / "copy"
    shutil.copytree(swept["runs"][1], edited)
    with (edited / "trades.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("{}\n")
    uri = sqlite_uri(tmp_path / "store")
    proc = export(repo, swept["runs"][2].name, str(edited), "--tracking-uri", uri, "--experiment", EXP)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(err) == 1 and "trades.jsonl: changed" in err[0] and "edited" in err[0] and "copy" in err[0]
    assert "Traceback" not in proc.stderr and key_runs(MlflowClient(tracking_uri=uri), EXP) == []
    shutil.rmtree(edited.parent)


def test_rerun_of_a_pinned_folder_updates_or_replaces_never_duplicates(
        swept: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    repo, uri = swept["repo"], sqlite_uri(tmp_path / "store")
    client = MlflowClient(tracking_uri=uri)
    again = lambda: export_here(repo, monkeypatch, capsys, "pinned", "--tracking-uri", uri)  # noqa: E731
    base = ("stage=d92-5", "stage.duration_s=30", "run.id=pinned", "run.overwrite=true")
    folder = run_dir_of(run_cli(repo, *base, "seed=3"), repo)
    try:
        assert lines(again(), "created")
        (old,) = key_runs(client, "paper-runs")
        # same inputs again: same params, a new record -> the same MLflow run, updated
        assert run_dir_of(run_cli(repo, *base, "seed=3"), repo) == folder
        assert lines(again(), "updated") and lines(again(), "unchanged")
        (same,) = key_runs(client, "paper-runs")
        assert same.info.run_id == old.info.run_id and same.info.end_time == int(time_ms(
            load_json(folder / "runtime_meta.json")["ended_at"]))
        stored = Path(client.download_artifacts(same.info.run_id, "runtime_meta.json", str(tmp_path / "a")))
        assert stored.read_bytes() == (folder / "runtime_meta.json").read_bytes()
        # other inputs: MLflow never changes a param, so the old MLflow run is replaced (kept in its trash)
        run_cli(repo, *base, "seed=4")
        assert lines(again(), "replaced")
        (new,) = key_runs(client, "paper-runs")
        assert new.info.run_id != old.info.run_id and new.data.params["seed"] == "4"
        assert new.data.tags["paper.fingerprint"] == load_json(folder / "runtime_meta.json")["fingerprint"]
        assert [r.info.run_id for r in key_runs(client, "paper-runs", view=2)] == [old.info.run_id]  # DELETED_ONLY
        # two MLflow runs with one key (two exports racing) are folded into the oldest
        client.create_run(new.info.experiment_id, tags={"paper.run_id": "pinned", "paper.stage_id": "d92-5"})
        assert len(key_runs(client, "paper-runs")) == 2
        again()
        assert [r.info.run_id for r in key_runs(client, "paper-runs")] == [new.info.run_id]
    finally:
        shutil.rmtree(folder)


def test_long_param_value_is_cut_with_a_marker_and_listed(
        swept: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    repo, uri = swept["repo"], sqlite_uri(tmp_path / "store")
    long = "x" * 7000
    readme = (repo / "README.md").read_bytes()
    (repo / "README.md").write_bytes(readme + b"\nan uncommitted line\n")  # this run is from a dirty tree
    try:
        proc = run_cli(repo, "stage=d92-5", "stage.duration_s=30", "run.id=longtext",
                       f"stage.acceptance.0.description={long}")
    finally:
        (repo / "README.md").write_bytes(readme)
    assert proc.returncode == 0, proc.stderr
    folder = run_dir_of(proc, repo)
    try:
        export_here(repo, monkeypatch, capsys, "longtext", "--tracking-uri", uri)
        (run,) = key_runs(MlflowClient(tracking_uri=uri), "paper-runs")
        value = run.data.params["stage.acceptance.0.description"]
        assert len(value) == PARAM_VALUE_LIMIT and value.startswith("x" * 5000) and "7000 characters" in value
        assert run.data.tags["paper.params_truncated"] == "stage.acceptance.0.description"
        assert run.data.tags["paper.dirty"] == "true" and run.data.tags["mlflow.source.git.commit"] == swept["head"]
    finally:
        shutil.rmtree(folder)


def test_interrupted_run_is_killed_in_mlflow(
        swept: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    repo, uri = swept["repo"], sqlite_uri(tmp_path / "store")
    folder = repo / "logs/d92-5/ctrlc"
    proc = subprocess.Popen([sys.executable, "-m", "src.run", "stage=d92-5", "clock=realtime", "stage.duration_s=60",
                             "run.id=ctrlc"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        deadline = time.monotonic() + 60
        while not ((folder / "run.log").exists() and "run_start" in (folder / "run.log").read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, "the run did not start"
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        export_here(repo, monkeypatch, capsys, "ctrlc", "--tracking-uri", uri)
        (run,) = key_runs(MlflowClient(tracking_uri=uri), "paper-runs")
        meta = load_json(folder / "runtime_meta.json")
        assert meta["status"] == "interrupted" and run.info.status == "KILLED"
        assert run.data.tags["paper.status"] == "interrupted" and run.data.tags["paper.state"] == "intact"
        assert run.info.end_time == int(time_ms(meta["ended_at"])) and run.data.metrics["ticks"] >= 1
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        shutil.rmtree(folder, ignore_errors=True)


def test_keys_outside_mlflow_rules_are_made_safe_and_distinct() -> None:
    from mlflow.utils.validation import _validate_param_name, _validate_tag_name

    raw = ["a:b", "a?b", "a/../b", "a//b", "/abs", "..", ".", "", "é.ü", "x" * 300, "ok.key/with-dash and space"]
    keys = [mlflow_key(k) for k in raw]
    assert len(set(keys)) == len(raw)
    for k in keys:
        _validate_param_name(k)  # raises MlflowException if MLflow would refuse it
        _validate_tag_name(k)
        assert ":" not in k and len(k) <= KEY_LIMIT
    assert mlflow_key("ok.key/with-dash and space") == "ok.key/with-dash and space"  # valid keys unchanged
    assert mlflow_key("a:b") != mlflow_key("a_b") == "a_b"
    assert clip("y" * 6000, PARAM_VALUE_LIMIT) == ("y" * 6000, False)
    cut, was = clip("y" * 6001, PARAM_VALUE_LIMIT)
    assert was and len(cut) == 6000 and "6001 characters" in cut


def test_odd_keys_log_into_a_real_store(tmp_path: Path) -> None:
    """A payload whose raw keys MLflow would refuse logs cleanly once made safe, and re-logs as unchanged."""
    client = MlflowClient(tracking_uri=sqlite_uri(tmp_path / "store"))
    exp = open_experiment(client, "odd", (tmp_path / "art").as_uri())
    (tmp_path / "run").mkdir()
    (tmp_path / "run/f.txt").write_text("x")
    raw = {"per_zone.alt:x.pnl_krw": 1.5, "a/../b": 2.0, "z" * 260: 3.0}
    p = Payload("s", "r", tmp_path / "run", "FINISHED", 1000, 2000, params={mlflow_key("k?=v"): "v"},
                metrics={mlflow_key(k): v for k, v in raw.items()},
                tags={"paper.run_id": "r", "paper.stage_id": "s", "paper.outputs_sha256": "d"})
    assert export_run(client, exp, p, [])[0] == "created"
    (run,) = key_runs(client, "odd")
    assert sorted(run.data.metrics.values()) == [1.5, 2.0, 3.0]
    assert export_run(client, exp, p, [run])[0] == "unchanged"
    # a paper.* tag the folder no longer gives is removed; MLflow's own tags stay
    p.tags["paper.note_gone"] = "x"
    assert export_run(client, exp, p, [run])[0] == "updated"
    del p.tags["paper.note_gone"]
    (run,) = key_runs(client, "odd")
    assert export_run(client, exp, p, [run])[0] == "updated"
    (run,) = key_runs(client, "odd")
    assert "paper.note_gone" not in run.data.tags and run.data.tags["paper.run_id"] == "r"


def test_usage_errors_one_line_exit_2(swept: dict[str, Any], tmp_path: Path) -> None:
    repo, uri = swept["repo"], sqlite_uri(tmp_path / "store")
    for args, says in ((["nosuchrun", "--tracking-uri", uri], "'nosuchrun': not a run folder"),
                       (["--stage", "d00-0", "--tracking-uri", uri], "no runs under logs/d00-0/"),
                       (["--stage", "../..", "--tracking-uri", uri], "--stage='../..' is not allowed"),
                       (["*", "--tracking-uri", uri], "'*': not a run folder"),  # not a glob over logs/
                       (["--tracking-uri", uri], "give run folders or run ids")):
        proc = export(repo, *args)
        assert proc.returncode == 2 and says in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    proc = export(repo, "--stage", "d92-5", env={"MLFLOW_TRACKING_URI": ""})
    assert proc.returncode == 2 and "--tracking-uri URI is required" in proc.stderr
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = export(repo, "--stage", "d92-5", "--tracking-uri", url)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and err[0].startswith(f"error: tracking store {url}: ")
    assert "Connection refused" in err[0] and "(0 of 2 runs exported before this)" in err[0]
    # a password in the URI is never echoed
    proc = export(repo, "--stage", "d92-5", "--tracking-uri", url.replace("//", "//alice:s3cret@"))
    assert proc.returncode == 2 and "alice:***@127.0.0.1" in proc.stderr and "s3cret" not in proc.stderr + proc.stdout


def test_missing_mlflow_names_the_extra(swept: dict[str, Any], tmp_path: Path) -> None:
    """As on a machine without the extra: `import mlflow` fails (a shadow package that raises)."""
    shadow = tmp_path / "shadow"
    (shadow / "mlflow").mkdir(parents=True)
    (shadow / "mlflow/__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'mlflow'\", name='mlflow')\n")
    proc = export(swept["repo"], "--stage", "d92-5", "--tracking-uri", sqlite_uri(tmp_path / "s"),
                  env={"PYTHONPATH": str(shadow)})
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1, proc.stderr
    assert err[0].startswith("error: ") and "pip install '.[mlflow]'" in err[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_export_to_a_real_mlflow_server(swept: dict[str, Any], tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow_exe = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [str(mlflow_exe), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", sqlite_uri(tmp_path / "server"),
         "--artifacts-destination", str(tmp_path / "server/artifacts")],
        cwd=tmp_path, env=clean_env(**ENV), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, server.stdout.read().decode(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not answer /health in 120 s"
            time.sleep(0.5)
        repo = swept["repo"]
        first = export(repo, "--stage", "d92-5", "--tracking-uri", url, "--experiment", EXP)
        assert first.returncode == 0 and len(lines(first.stdout, "created")) == 2, first.stdout + first.stderr
        again = export(repo, "--stage", "d92-5", "--tracking-uri", url, "--experiment", EXP)
        assert again.returncode == 0 and len(lines(again.stdout, "unchanged")) == 2, again.stderr
        client = MlflowClient(tracking_uri=url)
        stored = key_runs(client, EXP, view=3)
        assert sorted(r.data.tags["paper.run_id"] for r in stored) == sorted(d.name for d in swept["runs"].values())
        for r in stored:
            folder = next(d for d in swept["runs"].values() if d.name == r.data.tags["paper.run_id"])
            assert r.data.tags["paper.fingerprint"] == load_json(folder / "runtime_meta.json")["fingerprint"]
            assert r.data.params["seed"] == str(load_json(folder / "provenance.json")["seed"])
            got = Path(client.download_artifacts(r.info.run_id, "kpi_summary.json", str(tmp_path / r.info.run_id)))
            assert got.read_bytes() == (folder / "kpi_summary.json").read_bytes()
        # artifacts went through the server into its --artifacts-destination
        assert list((tmp_path / "server/artifacts").rglob("trades.jsonl"))
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
