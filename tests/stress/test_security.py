"""Security: ids cannot leave logs/, the purge stays in the package, YAML is data, rules are data,
no secret reaches an output file, and paper mode talks to public endpoints only.

- Run and stage ids: ~30 path tricks are refused by the one resolver and by the loader;
  through the CLI nothing is written outside logs/, also with a stage folder or a pinned
  run folder that is a symlink pointing out.
- The purge, on a tree full of links pointing out and caches outside `src/`, deletes only
  bytecode under `src/` and never a byte outside.
- YAML: a `!!python/...` tag in any conf file, or in params.yaml read by compare at a git
  revision, is refused and never executed; a static scan finds no eval/exec/unsafe loader.
- Acceptance rules from a hand-edited record are data: hostile ops, thresholds and metric
  names fail their rule; nothing runs and nothing crashes.
- Secrets: API keys, tokens and a password are set in the environment of completed,
  interrupted, replayed and swept runs (also pulled into the config with ${oc.env:...} and
  typed on the command line); every file under logs/ and every captured output is
  searched for their values.
- Paper mode: a live run against a local stand-in of Upbit and Binance, with those keys set,
  asks public market-data paths only and sends no credential.
"""
from __future__ import annotations

import ast
import json
import re
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import GIT, REPO, clean_env, copy_repo, load_json, run_cli
from src.acceptance import gates
from src.config.loader import ConfigError, load_config
from src.provenance.purge import purge_bytecode
from src.provenance.record import write_record
from src.runs.paths import RunPathError, resolve_run_paths
from stress.helpers import assert_clean_user_error, run_folders, snapshot

# -- run and stage ids never leave logs/ -----------------------------------------------------------

TRICKS = ["..", ".", "../x", "../../etc", "/abs", "/tmp/x", "a/../../b", "a/b", "a\\..\\b", "~", "~/x", "",
          ".hidden", "x/", "x\x00y", "x\ny", "\uff0e\uff0e", "..\u2215x", "%2e%2e", "x" * 129, " x", "-x",
          "x y", "x:y", "x*y", "$HOME", "\u00e9t\u00e9", "x/..", "./x", "a..b"]


@pytest.mark.parametrize("kind", ["stage.id", "run.id"])
def test_path_tricks_are_refused_by_the_resolver(kind: str, tmp_path: Path, figures) -> None:
    for trick in TRICKS:
        figures.add("security: ids", "path tricks tried")
        stage, run = (trick, "ok") if kind == "stage.id" else ("ok", trick)
        with pytest.raises(RunPathError) as info:
            resolve_run_paths(tmp_path, stage, run)
        assert kind in str(info.value)
        figures.add("security: ids", "refused")


LOADER_TRICKS = ["..", "../x", "/tmp/x", "a/b", "~", "x y", "$HOME", "'${oc.env:HOME}'", "a..b"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["stage.id", "run.id"])
def test_path_tricks_are_refused_by_the_loader(kind: str, figures) -> None:
    for trick in LOADER_TRICKS:
        figures.add("security: ids", "path tricks tried")
        with pytest.raises(ConfigError) as info:
            load_config([f"{kind}={trick}"], REPO)
        assert "\n" not in str(info.value)
        figures.add("security: ids", "refused")


def _outside_snapshot(root: Path, repo: Path) -> dict[str, str]:
    """Every file under `root` except the repo copy's logs/ and the bytecode Python caches for the
    CLI's own modules (src/**/__pycache__/*.pyc, written when PYTHONDONTWRITEBYTECODE is unset)."""
    return {k: v for k, v in snapshot(root).items() if not k.startswith(f"{repo.name}/logs/")
            and not _own_bytecode(k, repo)
            # hook: cfgcache: the config cache's entries (a fixed folder, names the key's hex digits)
            and not re.fullmatch(rf"{repo.name}/\.cache/config/[0-9a-f]{{32}}\.json", k)}


def _own_bytecode(rel: str, repo: Path) -> bool:
    parts = rel.split("/")  # the snapshot follows no link, so these are real files inside src/
    return parts[:2] == [repo.name, "src"] and parts[-2] == "__pycache__" and parts[-1].endswith(".pyc")


@pytest.mark.parametrize("full", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["links", "ids-and-links"])
def test_cli_ids_and_links_never_write_outside_logs(full: bool, tmp_path: Path, figures) -> None:
    repo = copy_repo(tmp_path / "repo")
    outside = tmp_path / "outside"
    (outside / "pinned").mkdir(parents=True)
    (outside / "pinned" / "precious.txt").write_text("keep me")
    before = _outside_snapshot(tmp_path, repo)
    cases = [("run.id=../../outside",), ("stage.id=../outside",), ("run.id=${oc.env:HOME}",),
             ("stage.id=/tmp",), ("run.id=..",)] if full else []
    for args in cases:
        figures.add("security: ids", "path tricks tried")
        assert_clean_user_error(run_cli(repo, *args), 2)
        figures.add("security: ids", "refused")
    # a stage folder that is a link out of logs/
    (repo / "logs" / "d92-1").symlink_to(outside, target_is_directory=True)
    figures.add("security: ids", "path tricks tried")
    assert_clean_user_error(run_cli(repo, "stage=d92-1"), 2, "symlink")
    figures.add("security: ids", "refused")
    # a pinned run folder that is a link out, with overwrite asked for
    (repo / "logs" / "d92-5").mkdir()
    (repo / "logs" / "d92-5" / "pinned").symlink_to(outside / "pinned", target_is_directory=True)
    figures.add("security: ids", "path tricks tried")
    assert_clean_user_error(run_cli(repo, "run.id=pinned", "run.overwrite=true"), 2, "symlink")
    figures.add("security: ids", "refused")
    assert _outside_snapshot(tmp_path, repo) == before
    assert (outside / "pinned" / "precious.txt").read_text() == "keep me"
    figures.add("security: ids", "files written outside logs/", 0)


# -- the purge stays inside the project's package folders ---------------------------------------------

def test_purge_deletes_nothing_outside_the_package(tmp_path: Path, figures) -> None:
    repo = copy_repo(tmp_path / "repo")
    outside = tmp_path / "outside"
    for d in ("__pycache__", "pkg/__pycache__", "deep"):
        (outside / d).mkdir(parents=True)
        (outside / d / "precious.cpython-311.pyc").write_bytes(b"not yours")
    (outside / "single.pyc").write_bytes(b"not yours either")
    # links from inside the package out: a folder, a cache folder, a file inside a real cache
    (repo / "src/pkglink").symlink_to(outside / "pkg", target_is_directory=True)
    (repo / "src/market/__pycache__").symlink_to(outside / "__pycache__", target_is_directory=True)
    cache = repo / "src/engine/__pycache__"
    cache.mkdir()
    (cache / "loop.cpython-311.pyc").write_bytes(b"stale")
    (cache / "linked.cpython-311.pyc").symlink_to(outside / "single.pyc")
    (cache / "nested").mkdir()
    (cache / "nested" / "odd.txt").write_text("left alone")
    # caches of other folders of the repo: not the project's package
    keep = [repo / "tests/__pycache__/t.pyc", repo / "conf/__pycache__/c.pyc", repo / "benchmarks/__pycache__/b.pyc",
            repo / ".venv/lib/python3.11/site-packages/__pycache__/v.pyc"]
    for k in keep:
        k.parent.mkdir(parents=True, exist_ok=True)
        k.write_bytes(b"keep")
    before_outside = snapshot(outside)
    via_link = tmp_path / "repo-link"
    via_link.symlink_to(repo, target_is_directory=True)
    report = purge_bytecode(via_link)  # the root itself reached through a link
    figures.add("security: purge", "links and foreign caches planted", 4 + len(keep))
    assert snapshot(outside) == before_outside
    assert all(k.read_bytes() == b"keep" for k in keep)
    assert not (cache / "loop.cpython-311.pyc").exists() and not (cache / "linked.cpython-311.pyc").is_symlink()
    assert (cache / "nested" / "odd.txt").read_text() == "left alone"
    assert report["skipped_symlinks"] == ["src/pkglink"]
    assert report["unlinked_cache_links"] == ["src/market/__pycache__"]
    # a package folder that is itself a link is not purged at all (the hardlock refuses it)
    other = copy_repo(tmp_path / "other")
    (other / "src/__pycache__").mkdir()
    (other / "src/__pycache__/x.pyc").write_bytes(b"theirs")
    shutil.rmtree(repo / "src")
    (repo / "src").symlink_to(other / "src", target_is_directory=True)
    assert purge_bytecode(repo)["skipped_symlinks"] == ["src"]
    assert (other / "src/__pycache__/x.pyc").read_bytes() == b"theirs"
    figures.add("security: purge", "bytes deleted outside the package", 0)


# -- YAML is data ------------------------------------------------------------------------------

def _tags(marker: Path) -> list[str]:
    m = str(marker)
    return [f'!!python/object/apply:os.system ["touch {m}"]',
            f'!!python/object/new:subprocess.Popen [["touch", "{m}"]]',
            "!!python/name:os.system",
            "!!python/module:os"]


TAGGED_FILES = {  # conf file -> (override that selects it, how to embed the tag)
    "conf/zone_profile/evil.yaml": ("zone_profile=evil", "name: evil\nprofiles: {tag}\n"),
    "conf/stage/evil.yaml": ("stage=evil", "# @package _global_\nstage:\n  id: {tag}\n"),
    "conf/costs/evil.yaml": ("costs=evil", "name: {tag}\n"),
    "conf/symbols/evil.yaml": ("symbols=evil", "name: x\nranked:\n  - {{symbol: BTC, usd_price: {tag}}}\n"),
    "conf/config.yaml": ("", None),
}


def test_python_tags_in_conf_files_are_refused_never_run(tmp_path: Path, figures) -> None:
    marker = tmp_path / "YAML_TAG_RAN"
    n = 0
    for tag in _tags(marker):
        repo = copy_repo(tmp_path / f"r{n}")
        n += 1
        for rel, (override, template) in TAGGED_FILES.items():
            if template is None:  # the root config: a tag in a value of its own
                text = (REPO / rel).read_text().replace("seed: 42", f"seed: {tag}")
                (repo / rel).write_text(text)
            else:
                (repo / rel).write_text(template.format(tag=tag))
            figures.add("security: yaml", "python tags tried")
            with pytest.raises(ConfigError) as info:
                load_config([override] if override else [], repo)
            assert "\n" not in str(info.value) and "python" in str(info.value), info.value
            figures.add("security: yaml", "refused")
            if rel == "conf/config.yaml":
                (repo / rel).write_bytes((REPO / rel).read_bytes())
    assert not marker.exists()
    # and once end to end: exit 2, no folder, nothing ran
    repo = copy_repo(tmp_path / "cli")
    (repo / "conf/zone_profile/evil.yaml").write_text(f"name: evil\nprofiles: {_tags(marker)[0]}\n")
    assert_clean_user_error(run_cli(repo, "zone_profile=evil"), 2, "python/object/apply")
    assert run_folders(repo) == [] and not marker.exists()


def test_python_tag_in_params_yaml_at_a_revision_is_refused(tmp_path: Path, figures) -> None:
    """compare reads params.yaml from git (`python -m src.compare HEAD HEAD`): safe_load, so refused."""
    repo = copy_repo(tmp_path / "repo")
    marker = tmp_path / "PARAMS_TAG_RAN"
    (repo / "params.yaml").write_text(f"smoke: !!python/object/apply:os.system [\"touch {marker}\"]\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True, capture_output=True)
    subprocess.run([*GIT, "commit", "-qm", "evil"], cwd=repo, check=True, capture_output=True)
    figures.add("security: yaml", "python tags tried")
    proc = run_cli(repo, "HEAD", "HEAD", module="src.compare")
    assert_clean_user_error(proc, 2, "params.yaml")
    assert not marker.exists()
    figures.add("security: yaml", "refused")


UNSAFE_CALLS = {"eval", "exec", "__import__", "system", "popen", "unsafe_load", "full_load", "import_module",
                "loads"}  # `loads` is allowed from json only, checked below
UNSAFE_NAMES = {"Loader", "UnsafeLoader", "FullLoader", "pickle", "marshal", "shelve", "dill", "cloudpickle"}


def test_no_code_evaluation_or_unsafe_loading_in_src(figures) -> None:
    """A static scan: no eval/exec/__import__, no yaml.load without SafeLoader, no pickle, no shell=True."""
    hits = []
    for path in sorted((REPO / "src").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
                owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
                if name in UNSAFE_CALLS and not (name == "loads" and owner == "json"):
                    hits.append(f"{where}: call {owner + '.' if owner else ''}{name}")
                if name == "load" and owner == "yaml":
                    hits.append(f"{where}: yaml.load")
                if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                       for k in node.keywords):
                    hits.append(f"{where}: shell=")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                hits += [f"{where}: import {m}" for m in mods if m and m.split(".")[0] in UNSAFE_NAMES]
            elif isinstance(node, ast.Attribute) and node.attr in UNSAFE_NAMES:
                hits.append(f"{where}: {node.attr}")
    figures.add("security: yaml", "source files scanned for eval/unsafe loading",
                len(list((REPO / "src").rglob("*.py"))))
    assert not hits, "\n".join(hits)


# -- acceptance rules are data ---------------------------------------------------------------------

def test_hostile_rules_are_data(tmp_path: Path, figures) -> None:
    marker = tmp_path / "RULE_RAN"
    code = f"__import__('os').system('touch {marker}')"
    hostile = [
        {"id": "op-is-code", "metrics": ["kpi.round_trips"], "op": code, "value": 1},
        {"id": "value-is-code", "metrics": ["kpi.round_trips"], "op": "ge", "value": code},
        {"id": "metric-is-dunder", "metrics": ["kpi.__class__.__mro__"], "op": "present"},
        {"id": "metric-is-code", "metrics": [code], "op": "present"},
        {"id": "under-is-code", "metrics": ["paths.kpi_summary"], "op": "under", "value": code},
        {"id": "lambda-op", "metrics": ["kpi.round_trips"], "op": "lambda: 1", "value": 0},
    ]
    metrics = gates.build_metrics({"round_trips": 5}, "logs/d92-5/x/kpi_summary.json", None, [])
    res = gates.evaluate(hostile, metrics)
    figures.add("security: rules", "hostile rules tried", len(hostile))
    assert [r["passed"] for r in res["results"]] == [False] * len(hostile) and not marker.exists()
    # the same rules in a hand-edited record, re-checked by the CLI: no traceback, nothing runs
    repo = copy_repo(tmp_path / "repo")
    assert run_cli(repo, "run.id=r").returncode == 0
    meta_p = repo / "logs/d92-5/r/runtime_meta.json"
    meta = load_json(meta_p)
    meta["config"]["resolved"]["stage"]["acceptance"] += hostile
    meta_p.write_text(json.dumps(meta))
    edited = run_cli(repo, "logs/d92-5/r", module="src.acceptance")  # the hand edit breaks the seal
    assert edited.returncode == 5 and "edited: runtime_meta.json" in edited.stdout and not marker.exists()
    write_record(meta_p, meta)  # resealed, as if a run had recorded these rules: still only data
    proc = run_cli(repo, "logs/d92-5/r", module="src.acceptance")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert all(f"{r['id']}" in proc.stdout for r in hostile) and not marker.exists()
    meta["config"]["resolved"]["stage"]["acceptance"] = "not a list of rules"
    write_record(meta_p, meta)
    assert_clean_user_error(run_cli(repo, "logs/d92-5/r", module="src.acceptance"), 2, "malformed acceptance rules")
    figures.add("security: rules", "evaluated as code", 0)


# -- no secret in any output ---------------------------------------------------------------------------

def _token(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _secrets() -> dict[str, str]:
    return {
        "UPBIT_ACCESS_KEY": _token(40),
        "UPBIT_SECRET_KEY": _token(40),
        "BINANCE_API_KEY": _token(64),
        "BINANCE_API_SECRET": secrets.token_hex(32),  # lower-case hex: does not look like a key by itself
        "AWS_ACCESS_KEY_ID": "AKIA" + _token(16, string.ascii_uppercase + string.digits),
        "AWS_SECRET_ACCESS_KEY": _token(40, string.ascii_letters + string.digits + "+/"),
        "GITHUB_TOKEN": "ghp_" + _token(36),
        "DB_PASSWORD": "pw-" + secrets.token_urlsafe(9),
    }


def _search(root: Path, values: dict[str, str], texts: list[str]) -> tuple[int, list[str]]:
    """(files searched, hits) for every secret value in every file under root and in captured output."""
    hits, n = [], 0
    for p in sorted(root.rglob("*")):
        if p.is_file():
            n += 1
            data = p.read_bytes()
            hits += [f"{name} in {p.relative_to(root)}" for name, v in values.items() if v.encode() in data]
    for i, t in enumerate(texts):
        hits += [f"{name} in captured output #{i}" for name, v in values.items() if v in t]
    return n, hits


def _replay_file(repo: Path) -> None:
    from src.market.export import export
    from src.market.registry import build_market

    cfg = load_config([], repo).cfg
    market = build_market(cfg.market, cfg.symbols.ranked[:10], cfg.seed, 120, 1.0, repo)
    (repo / "data").mkdir()
    export(market, repo / "data/ticks.parquet", 1.0, {"usdt": "synthetic:binance", "krw": "synthetic:upbit"})


@pytest.mark.parametrize("full", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["runs", "every-path"])
def test_no_secret_reaches_any_output(full: bool, tmp_path: Path, figures) -> None:
    """Default: a run, a sweep, a secret interpolated and one typed; slow: also replay, Ctrl-C, re-check, compare."""
    repo = copy_repo(tmp_path / "repo")
    values = _secrets()
    env = clean_env(**values)
    texts: list[str] = []

    def cli(*args: str, module: str = "src.run") -> subprocess.CompletedProcess[str]:
        proc = run_cli(repo, *args, module=module, env=env)
        texts.extend([proc.stdout, proc.stderr])
        return proc

    assert cli("run.id=interp", "stage.description=${oc.env:BINANCE_API_SECRET}").returncode == 0
    assert cli("run.id=typed", f"stage.description={values['DB_PASSWORD']}").returncode == 0
    assert cli("-m", f"stage.description={values['UPBIT_SECRET_KEY']}", "seed=1,2").returncode == 0
    if full:
        _every_other_path(repo, env, values, cli, texts)
    figures.add("security: secrets", "secrets planted in the environment", len(values))
    n, hits = _search(repo / "logs", values, texts)
    figures.add("security: secrets", "files searched", n)
    figures.add("security: secrets", "secrets found in outputs", len(hits))
    assert not hits, hits
    meta = load_json(repo / "logs/d92-5/interp/runtime_meta.json")
    assert meta["config"]["resolved"]["stage"]["description"] == "***redacted***"


def _every_other_path(repo: Path, env: dict[str, str], values: dict[str, str], cli, texts: list[str]) -> None:
    _replay_file(repo)
    assert cli("run.id=plain").returncode == 0
    assert cli("run.id=replay", "market=replay", "market.path=data/ticks.parquet").returncode in (0, 1)
    # an interrupted run
    proc = subprocess.Popen([sys.executable, "-m", "src.run", "universe=top100", "stage.duration_s=28800",
                             "run.id=cut"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (repo / "logs/d92-5/cut/runtime_meta.json").exists() and proc.poll() is None:
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    texts.extend(proc.communicate(timeout=60))
    assert load_json(repo / "logs/d92-5/cut/runtime_meta.json")["status"] in ("interrupted", "completed")
    cli("logs/d92-5/plain", module="src.acceptance")
    cli("plain", "typed", "--json", module="src.compare")
    cli("--stage", "d92-5", "--markdown", module="src.compare")


# -- paper mode: public endpoints only ----------------------------------------------------------------

PRIVATE = re.compile(r"/(accounts|orders?|withdraws?|deposits?|account|myTrades|openOrders|allOrders|capital|"
                     r"sapi|userDataStream)\b", re.I)
AUTH_HEADERS = {"authorization", "x-mbx-apikey", "access-key", "api-key", "x-api-key"}


def test_live_paper_run_asks_public_endpoints_only(tmp_path: Path, figures) -> None:
    live = pytest.importorskip("test_market_live", reason="the live market's stand-in server lives there")
    seen: list[tuple[str, dict[str, str]]] = []

    class Recording(live.VenueServer):
        def handle(self, h) -> None:  # noqa: ANN001
            seen.append((h.path, {k.lower(): v for k, v in h.headers.items()}))
            super().handle(h)

    server = Recording()
    repo = copy_repo(tmp_path / "repo")
    values = _secrets()
    try:
        proc = run_cli(repo, "stage=d92-5", "universe.top_n=3", "stage.duration_s=1.0", "stage.tick_s=0.25",
                       "market=live", "clock=realtime", "market.rate_limit=false", "market.timeout_s=0.3",
                       f"+market.api_urls.upbit={server.url}", f"+market.api_urls.binance={server.url}",
                       "run.id=live", env=clean_env(**values))
    finally:
        server.close()
    assert proc.returncode in (0, 1), proc.stderr
    figures.add("security: paper mode", "requests made", len(seen))
    assert seen, "the live run made no request"
    private = [p for p, _ in seen if PRIVATE.search(p.split("?")[0])]
    auth = [h for _, hs in seen for h in hs if h in AUTH_HEADERS]
    leaked = [p for p, hs in seen for v in values.values() if v in p or any(v in x for x in hs.values())]
    figures.add("security: paper mode", "private endpoints reached", len(private))
    figures.add("security: paper mode", "credentials sent", len(auth) + len(leaked))
    assert not private and not auth and not leaked, (private, auth, leaked)
    n, hits = _search(repo / "logs", values, [proc.stdout, proc.stderr])
    figures.add("security: secrets", "files searched", n)
    figures.add("security: secrets", "secrets found in outputs", len(hits))
    assert not hits, hits


def test_redaction_matches_secret_env_values_not_common_words(monkeypatch: pytest.MonkeyPatch) -> None:
    from src.provenance.record import REDACTED, redact

    monkeypatch.setenv("MY_API_SECRET", "s3cr3t-value-xyz")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # named like a secret, but a common word
    monkeypatch.setenv("PLAIN_SETTING", "a-long-plain-value")  # long, but not named like a secret
    got = redact({"stage": {"description": "see s3cr3t-value-xyz", "mode": "disabled", "x": "a-long-plain-value"},
                  "argv": ["stage.description=s3cr3t-value-xyz", "seed=1"]})
    assert got == {"stage": {"description": REDACTED, "mode": "disabled", "x": "a-long-plain-value"},
                   "argv": [f"stage.description={REDACTED}", "seed=1"]}
