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
