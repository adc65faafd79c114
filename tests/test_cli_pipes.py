"""Every CLI whose output is cut off (`python -m src.X ... | head -1`) ends quietly: no
traceback, no "Exception ignored ... BrokenPipeError" from the interpreter's last flush, and
the exit code it would have had (src/exitcodes.py `cli`; src/run.py's own entry lines).

The reader here is a pipe whose read end is closed before the command writes: the command's
first write or flush fails with EPIPE every time (a `head -1` that has read its line already,
without the race of the real one). Without the fix the interpreter's last flush raises and the
process exits 120 with "Exception ignored" and a BrokenPipeError on stderr.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env, copy_repo, run_cli

RUN_A, RUN_B = "logs/d92-5/a", "logs/d92-5/b"
COMMANDS = {  # name: (module, args); the runs A and B exist (fixture `runs`)
    "run": ("src.run", ["stage=d92-5"]),
    "run-help": ("src.run", ["--help"]),
    "acceptance-json": ("src.acceptance", ["--json", RUN_A]),
    "acceptance": ("src.acceptance", [RUN_A]),
    "compare": ("src.compare", [RUN_A, RUN_B]),
    "compare-json": ("src.compare", ["--json", RUN_A, RUN_B]),
    "runs-list": ("src.runs", ["list"]),
    "runs-list-json": ("src.runs", ["list", "--json"]),
    "report": ("src.report", [RUN_A, "-o", "report.html"]),
    "reproduce-help": ("src.reproduce", ["--help"]),
    "export-mlflow-help": ("src.export_mlflow", ["--help"]),
    "market-export": ("src.market.export", ["ticks.parquet", "stage=d92-5", "stage.duration_s=60"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("pipes") / "repo")
    for rid in ("a", "b"):
        proc = run_cli(repo, "stage=d92-5", f"run.id={rid}")
        assert proc.returncode == 0, proc.stderr
    return repo


def env_for(unbuffered: bool) -> dict[str, str]:
    """Block-buffered stdout (a user's default: the write fails at the last flush) or unbuffered
    (PYTHONUNBUFFERED=1: the first print fails, inside the command)."""
    env = clean_env()
    env.pop("PYTHONUNBUFFERED", None)
    return {**env, "PYTHONUNBUFFERED": "1"} if unbuffered else env


def piped(cwd: Path, *argv: str, unbuffered: bool = False) -> subprocess.CompletedProcess[str]:
    """Run argv with stdout into a pipe nobody reads any more; stderr captured."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first byte
    try:
        proc = subprocess.run(argv, cwd=cwd, stdout=w, stderr=subprocess.PIPE, text=True,
                              env=env_for(unbuffered), timeout=300)
    finally:
        os.close(w)
    return proc


def assert_quiet(proc: subprocess.CompletedProcess[str]) -> None:
    for word in ("Traceback", "Exception ignored", "BrokenPipeError"):
        assert word not in proc.stderr, proc.stderr


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_cli_output_cut_off_ends_quietly(runs: Path, name: str, unbuffered: bool) -> None:
    module, args = COMMANDS[name]
    normal = run_cli(runs, *args, module=module, timeout=300)
    assert normal.stdout, f"{name} prints nothing to stdout: nothing to cut off"
    proc = piped(runs, sys.executable, "-m", module, *args, unbuffered=unbuffered)
    assert_quiet(proc)
    assert proc.returncode == normal.returncode == 0, proc.stderr


def test_acceptance_piped_into_real_head(runs: Path) -> None:
    """The reported case, as a shell runs it: the first line arrives, nothing is printed on stderr."""
    cmd = f"{sys.executable} -m src.acceptance --json {RUN_A} | head -1; echo \"rc=${{PIPESTATUS[0]}}\""
    proc = subprocess.run(["bash", "-c", cmd], cwd=runs, capture_output=True, text=True, env=clean_env(),
                          timeout=120)
    first, rc = proc.stdout.splitlines()
    assert first.startswith(("{", "[")) and rc == "rc=0", proc.stdout
    assert_quiet(proc)


CLI_PROGRAM = """
import sys
from src.exitcodes import cli
lines, code = int(sys.argv[1]), sys.argv[2]
def main():
    for i in range(lines):
        print(f"line {i}")
    if code == "exit":
        sys.exit(7)
    return int(code)
cli(main)
"""


@pytest.mark.parametrize(("lines", "code", "unbuffered", "expected"), [
    (1, "3", False, 3),  # cut off at the last flush: the command's own exit code stays
    (1, "exit", False, 7),  # a sys.exit inside main (argparse's --help / usage errors): its code stays
    (100_000, "3", False, 0),  # cut off while writing (beyond any buffer): the reader stopped, exit OK
    (1, "3", True, 0),  # unbuffered: the first print is cut off, inside main
])
def test_cli_helper_exit_codes(lines: int, code: str, unbuffered: bool, expected: int) -> None:
    repo = Path(__file__).resolve().parents[1]
    proc = piped(repo, sys.executable, "-c", CLI_PROGRAM, str(lines), code, unbuffered=unbuffered)
    assert_quiet(proc)
    assert proc.returncode == expected, proc.stderr


def test_cli_helper_unpiped_output_complete(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", CLI_PROGRAM, "3", "5"], cwd=repo, capture_output=True, text=True,
                          env=clean_env(), timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (5, "line 0\nline 1\nline 2\n", "")


def test_record_with_control_character_says_at_once(runs: Path) -> None:
    """runtime_meta.json holding a raw control character: one line naming the file and where, "at" once."""
    from src.provenance.outputs import read_record

    run = runs / "logs" / "d92-5" / "bad"
    run.mkdir(parents=True)
    (run / "runtime_meta.json").write_bytes(b'{"status": "a\x01b"}')
    with pytest.raises(ValueError) as err:
        read_record(run)
    assert str(err.value) == ("runtime_meta.json: not valid JSON "
                              "(Invalid control character at line 1 column 14)")
    (run / "runtime_meta.json").write_text("{\n  \"status\": ,\n}", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        read_record(run)
    assert str(err.value) == "runtime_meta.json: not valid JSON (Expecting value at line 2 column 13)"


def test_acceptance_names_the_control_character_once(runs: Path, tmp_path: Path) -> None:
    """The same message through the CLI (the reported "Invalid control character at at line 1")."""
    bad = tmp_path / "bad"
    shutil.copytree(runs / RUN_A, bad)
    (bad / "runtime_meta.json").write_bytes(b'{"status": "a\x01b"}')
    proc = run_cli(runs, str(bad), module="src.acceptance")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "runtime_meta.json: not valid JSON (Invalid control character at line 1 column 14)\n" in proc.stdout
    assert " at at " not in proc.stdout + proc.stderr
