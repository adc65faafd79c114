"""The README tells the truth: its two first commands, and every CLI command it documents."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, clean_env, copy_repo, run_cli

README = (REPO / "README.md").read_text(encoding="utf-8")


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def documented_commands(prefix: str) -> list[str]:
    out = []
    for block in bash_blocks():
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(prefix):
                out.append(line)
    return out


def test_first_two_commands_set_up_smoke_and_tests() -> None:
    first, second = (b.strip() for b in bash_blocks()[:2])
    assert first.startswith("python3 -m venv .venv") and first.endswith("-m src.run stage=d92-5")
    assert second.startswith("python3 -m venv .venv") and "-m pytest" in second
    ci = (REPO / ".ci/run").read_text()
    assert second in ci.splitlines(), ".ci/run must run the README's test command as written"


def test_documented_run_commands_work(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    cmds = documented_commands("python -m src.run")
    assert len(cmds) >= 5
    for cmd in cmds:
        proc = run_cli(repo, *shlex.split(cmd)[3:])
        assert proc.returncode in (0, 1), f"{cmd}: {proc.stderr}"
    run_dir = next((repo / "logs/d92-5").iterdir())
    for cmd in documented_commands("python -m src.acceptance"):
        args = [a.replace("<run_id>", run_dir.name) for a in shlex.split(cmd)[3:]]
        assert run_cli(repo, *args, module="src.acceptance").returncode == 0, cmd


@pytest.mark.slow
def test_first_command_in_a_fresh_clone_and_venv(tmp_path: Path) -> None:
    """The README's smoke command, as written, in a fresh clone (installs into a new venv)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    first = bash_blocks()[0].strip()
    proc = subprocess.run(["bash", "-c", first], cwd=clone, capture_output=True, text=True, timeout=1200,
                          env=clean_env())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "acceptance: PASS" in proc.stdout
    assert list((clone / "logs/d92-5").glob("*/kpi_summary.json"))


@pytest.mark.slow
def test_dvc_walkthrough_and_compare_commands_as_documented(dvc_repo: Path) -> None:
    """Every command of the README's DVC block, then every compare command, in a temp git repo."""
    from conftest import dvc_env
    env = dict(dvc_env(dvc_repo.parent), COLUMNS="160")  # a 160-column terminal
    block = next(b for b in bash_blocks() if "dvc repro smoke" in b)
    assert "master" not in README, "the default branch is main"
    assert all(" -S " not in ln or ln.split()[3] in ("smoke", "longrun") or ln.split()[4] in ("smoke", "longrun")
               for ln in README.splitlines() if ln.startswith("dvc exp run")), "name the stage in `dvc exp run`"
    for line in block.splitlines():
        cmd = line.split("  #")[0].strip()
        if not cmd or cmd.startswith(". "):
            continue  # activating the venv: the test's PATH already has it first
        proc = subprocess.run(["bash", "-c", cmd], cwd=dvc_repo, capture_output=True, text=True, env=env,
                              timeout=600)
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert "failed to load" not in (proc.stdout + proc.stderr).lower(), f"{cmd}\n{proc.stderr[-2000:]}"
        if cmd.startswith("python -m src.compare"):
            assert "Verdict" in proc.stdout
        if cmd.startswith("dvc exp show"):  # the experiments, their changed values and KPIs, in 160 columns
            assert all(len(ln) <= 160 for ln in proc.stdout.splitlines()), proc.stdout
            assert "[seed7]" in proc.stdout and "[wide]" in proc.stdout and "…" not in proc.stdout, proc.stdout
            header = next(ln for ln in proc.stdout.splitlines() if "Experiment" in ln).split()
            assert {"round_trips", "win_rate", "total_pnl_krw", "seed", "zone_profile.name"} <= set(header), header
        if cmd.startswith("dvc params diff HEAD seed7"):
            rows = {tuple(ln.split()) for ln in proc.stdout.splitlines()[1:] if ln.strip()}
            assert rows == {("logs/d92-5/smoke/params.yaml", "seed", "42", "7"),
                            ("params.yaml", "smoke.overrides", "seed=7")}, proc.stdout
    assert (dvc_repo / "dvc_plots/index.html").is_file()
    subprocess.run(["git", "add", "-A"], cwd=dvc_repo, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "second"], cwd=dvc_repo, env=env, check=True)
    runs = []
    for seed in (1, 2):
        proc = run_cli(dvc_repo, "stage=d92-5", f"seed={seed}")
        runs.append(next(ln.split(" ", 1)[1] for ln in proc.stdout.splitlines() if ln.startswith("run: ")))
    subs = {"<run_a>": runs[0].rsplit("/", 1)[1], "<run_b>": runs[1].rsplit("/", 1)[1]}
    subs.update({"<run_id_a>": subs["<run_a>"], "<run_id_b>": subs["<run_b>"]})
    for cmd in documented_commands("python -m src.compare"):
        for k, v in subs.items():
            cmd = cmd.replace(k, v)
        proc = subprocess.run(["bash", "-c", cmd], cwd=dvc_repo, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
