"""Hydra's own flags on `python -m src.run`, through the real CLI: they print and run nothing."""
from __future__ import annotations

import os
import py_compile
import re
from importlib.util import cache_from_source
from pathlib import Path

import pytest
import yaml

from conftest import clean_env, load_json, run_cli

GROUPS = ("costs", "market", "stage", "symbols", "universe", "zone_profile")


def files_of(repo: Path) -> set[str]:
    """Every file and folder of the repo copy, bytecode caches aside (the purge owns those)."""
    return {p.relative_to(repo).as_posix() for p in repo.rglob("*") if "__pycache__" not in p.parts}


def show(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a show command: exit 0, nothing on stderr, not a file written (no run folder, no
    logs/ entry, no outputs/ or multirun/ folder); returns stdout."""
    before = files_of(repo)
    proc = run_cli(repo, *args, env=env)
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert proc.stderr == "", proc.stderr
    assert files_of(repo) == before
    assert list((repo / "logs").iterdir()) == []
    return proc.stdout


def one_line_error(proc, code: int = 2) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr)
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_cfg_job_prints_the_composed_config_as_yaml_and_runs_nothing(repo: Path) -> None:
    cfg = yaml.safe_load(show(repo, "--cfg", "job"))
    assert "hydra" not in cfg
    assert cfg["seed"] == 42 and cfg["stage"]["id"] == "d92-5" and cfg["universe"]["top_n"] == 10
    assert cfg["market"]["kind"] == "synthetic"
    cfg = yaml.safe_load(show(repo, "--cfg", "job", "stage=d77-0", "seed=7", "market=live",
                              "costs.usdt_venue.taker_fee_bps=3.5"))
    assert (cfg["stage"]["id"], cfg["seed"], cfg["market"]["kind"]) == ("d77-0", 7, "live")
    assert cfg["universe"]["name"] == "top20"  # the stage preset's own group choice
    assert cfg["costs"]["usdt_venue"]["taker_fee_bps"] == 3.5


def test_cfg_hydra_and_all(repo: Path) -> None:
    hydra_only = yaml.safe_load(show(repo, "--cfg", "hydra", "market=replay", "market.path=x.parquet"))
    assert list(hydra_only) == ["hydra"]
    assert hydra_only["hydra"]["runtime"]["choices"]["market"] == "replay"
    assert "market.path=x.parquet" in hydra_only["hydra"]["overrides"]["task"]
    both = yaml.safe_load(show(repo, "--cfg", "all"))
    assert {"hydra", "seed", "stage", "market"} <= set(both)
    assert both["hydra"]["help"]["app_name"] == "python -m src.run"


def test_resolve_resolves_interpolations_only_when_asked(repo: Path) -> None:
    raw = yaml.safe_load(show(repo, "--cfg", "job", "plots.symbol=${stage.id}"))
    assert raw["plots"]["symbol"] == "${stage.id}"
    resolved = yaml.safe_load(show(repo, "--cfg", "job", "--resolve", "plots.symbol=${stage.id}"))
    assert resolved["plots"]["symbol"] == "d92-5"


def test_package_prints_one_part(repo: Path) -> None:
    out = show(repo, "--cfg", "job", "-p", "stage", "stage=d92-1")
    assert out.startswith("# @package stage\n")
    stage = yaml.safe_load(out)
    assert stage["id"] == "d92-1" and "seed" not in stage
    assert show(repo, "--cfg", "job", "--package", "market.kind", "market=live").strip() == "live"


def test_info_defaults_lists_the_defaults_list(repo: Path) -> None:
    out = show(repo, "--info", "defaults", "market=live", "stage=d77-0")
    rows = {r.split("|")[1].strip() for r in out.splitlines() if r.startswith("|")}
    for cfg in ("root_schema", "symbols/default", "universe/top20", "zone_profile/default", "market/live",
                "market_live_schema", "costs/default", "config", "stage/d77-0", "hydra/help/app"):
        assert cfg in rows, (cfg, out)
    assert "market/synthetic" not in rows and "universe/top10" not in rows


@pytest.mark.parametrize("what,needle", [
    ("searchpath", "/conf"),
    ("plugins", "BasicLauncher"),
    ("config", "zone_profile:"),
    ("defaults-tree", "hydra/help: app"),
    ("all", "Defaults List"),
])
def test_info_others(repo: Path, what: str, needle: str) -> None:
    assert needle in show(repo, "--info", what)


def test_bare_info_is_info_all(repo: Path) -> None:
    out = show(repo, "--info")
    assert "Defaults List" in out and "Config search path" in out


def _groups_section(out: str) -> dict[str, list[str]]:
    section = out.split("== Configuration groups ==")[1].split("== Config ==")[0]
    found = {}
    for line in section.splitlines():
        m = re.fullmatch(r"(\w+): (.+)", line.strip())
        if m:
            found[m.group(1)] = m.group(2).split(", ")
    return found


def test_help_lists_each_groups_options_and_no_schema(repo: Path) -> None:
    out = show(repo, "--help")
    assert out == show(repo, "-h")
    groups = _groups_section(out)
    expected = {g: sorted(p.stem for p in (repo / "conf" / g).glob("*.yaml")) for g in GROUPS}
    assert groups == expected
    assert "schema" not in out.split("== Config ==")[0]
    assert "usage: python -m src.run" in out
    assert "130 interrupted" in out and "2 bad usage/config" in out  # the exit codes stay documented
    # a new option shows up without any code change
    (repo / "conf/universe/top5.yaml").write_text("name: top5\ntop_n: 5\n")
    assert "top5" in _groups_section(show(repo, "--help"))["universe"]


def test_schemas_are_no_group_options_and_still_type_check(repo: Path) -> None:
    for option in ("live_schema", "market_live_schema", "synthetic_schema"):
        err = one_line_error(run_cli(repo, f"market={option}"))
        assert "available options in 'market': live, replay, synthetic" in err, err
    synthetic = repo / "conf/market/synthetic.yaml"
    text = synthetic.read_text()
    synthetic.write_text(text.replace("fx_krw_per_usd: 1300.0", "fx_krw_per_usd: lots"))
    err = one_line_error(run_cli(repo, "stage=d92-5"))
    assert "market.fx_krw_per_usd" in err and "lots" in err, err
    synthetic.write_text(text + "not_a_field: 1\n")
    err = one_line_error(run_cli(repo, "--cfg", "job"))
    assert "market.not_a_field" in err, err
    assert not list((repo / "logs").iterdir())


def test_hydra_help(repo: Path) -> None:
    out = show(repo, "--hydra-help")
    assert "--cfg,-c" in out and "--info,-i" in out and "--shell-completion,-sc" in out
    assert "hydra/launcher: basic" in out


def test_shell_completion_install_prints_a_script(repo: Path) -> None:
    out = show(repo, "--shell-completion", "install=bash")
    assert "hydra_bash_completion()" in out and "complete -o nospace" in out


def test_version(repo: Path) -> None:
    proc = run_cli(repo, "--version")
    assert proc.returncode == 0 and proc.stdout.startswith("Hydra 1.3"), proc


BAD = [
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--cfg", "jobs"], "invalid choice: 'jobs'"),
    (["--cfg", "job", "universe=top7"], "universe/top7"),
    (["--cfg", "job", "-p", "nope"], "package 'nope' not found"),
    (["--info", "defaults", "zone_profile=nope"], "zone_profile/nope"),
    (["--resolve"], "--resolve"),
    (["-p", "stage"], "--package"),
    (["-m", "--cfg", "job"], "Only one of"),
    (["--config-name", "other"], "--config-name"),
    (["--config-dir", "."], "--config-dir"),
    (["--cfg", "job", "zone_profile=broken"], "malformed YAML"),
]


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flags_exit_2_one_line_nothing_written(repo: Path, args: list[str], needle: str) -> None:
    (repo / "conf/zone_profile/broken.yaml").write_text("name: broken\nprofiles: [1, 2\n")
    before = files_of(repo)
    err = one_line_error(run_cli(repo, *args))
    assert needle in err, err
    assert files_of(repo) == before


def test_purge_and_guard_come_before_a_show(repo: Path) -> None:
    """Planted bytecode of a module the show imports never runs; a stray .pyc refuses the show."""
    marker = repo.parent / "planted-ran"
    schema = repo / "src/config/schema.py"
    poison = repo.parent / "poison_schema.py"
    poison.write_text(schema.read_text() + f"\nimport pathlib as _p; _p.Path({str(marker)!r}).write_text('ran')\n")
    py_compile.compile(str(poison), cfile=cache_from_source(str(schema)), dfile=str(schema),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, doraise=True)
    env = clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = run_cli(repo, "--cfg", "job", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "planted bytecode ran during --cfg"
    py_compile.compile(str(repo / "src/engine/fills.py"), cfile=str(repo / "src/engine/old_fills.pyc"), doraise=True)
    proc = run_cli(repo, "--cfg", "job")
    assert one_line_error(proc, 3) and "old_fills.pyc" in proc.stderr and proc.stdout == ""


def test_callbacks_refused_for_a_run_called_in_a_sweep(repo: Path) -> None:
    (repo / "calls_cb.py").write_text(
        "from hydra.experimental.callback import Callback\n"
        "class Mark(Callback):\n"
        "    def _w(self, name):\n"
        "        with open('calls.txt', 'a') as f:\n"
        "            f.write(name + '\\n')\n"
        "    def on_run_start(self, config, **kw): self._w('on_run_start')\n"
        "    def on_multirun_start(self, config, **kw): self._w('on_multirun_start')\n"
        "    def on_job_start(self, config, **kw): self._w('on_job_start')\n"
        "    def on_job_end(self, config, job_return, **kw): self._w('on_job_end')\n"
        "    def on_multirun_end(self, config, **kw): self._w('on_multirun_end')\n")
    cb = "+hydra.callbacks.mark._target_=calls_cb.Mark"
    err = one_line_error(run_cli(repo, "stage=d92-5", cb))
    assert "hydra.callbacks (mark)" in err and "-m" in err, err
    assert not (repo / "calls.txt").exists() and list((repo / "logs").iterdir()) == []
    # a callback given in conf/ (Hydra's hydra/callbacks group) is refused the same way
    (repo / "conf/hydra/callbacks").mkdir(parents=True)
    (repo / "conf/hydra/callbacks/mark.yaml").write_text("mark:\n  _target_: calls_cb.Mark\n")
    err = one_line_error(run_cli(repo, "hydra/callbacks=mark"))
    assert "hydra.callbacks (mark)" in err
    # the way out the message names: a one-job sweep, where Hydra calls every hook in order
    proc = run_cli(repo, "-m", "stage=d92-5", cb)
    assert proc.returncode == 0, proc.stderr
    assert (repo / "calls.txt").read_text().split() == [
        "on_multirun_start", "on_job_start", "on_job_end", "on_multirun_end"]
    summary = load_json(next((repo / "logs/_sweeps").glob("*/summary.json")))
    assert [j["exit_code"] for j in summary["jobs"]] == [0]
