"""The documentation tells the truth: the README's two first commands, and every command of every page.

Which code blocks are checked, and by what
------------------------------------------
Pages: README.md, every docs/*.md and benchmarks/README.md (tests/docpages.py). In their
```bash, ```sh, ```shell and ```console blocks, every line that starts with `python -m src.`,
`dvc ` or `python benchmarks/` (after a `$ ` prompt, before a ` # comment`) is a documented
command, and each one is either

1. RUN HERE, in the default suite, in a temporary copy of the repo:
   - `python -m src.run ...` single runs and Hydra's flags: all but sweeps (`-m`), the live
     market, the real-time clock and replays of a file (a server, wall time, a file made first);
   - `python -m src.acceptance ...` and `python -m src.compare ...` of run folders, run ids and
     `--stage` tables (not git revisions): `<run_id>`, `<run_a>`, `<run_b>`, `<run_id_a>`,
     `<run_id_b>` become runs the commands above made;
2. or COVERED_BY another test: the first row of COVERED_BY whose regular expression matches
   names the test (`file::name`) that runs such commands, slow ones included (DVC in a temp
   git repo, Ray, the live market against a local server). test_covered_by_table_is_honest
   checks that each named test exists, that each row still matches a documented command, and
   that a benchmark named in a page exists.

A command that is neither fails test_every_documented_command_is_run_or_covered: moving a
block never drops its test, and a page added later must say how its commands are tested
(add a row, or make them cheap enough to run here) before it lands.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import docpages
from conftest import REPO, clean_env, copy_repo, run_cli

README = (REPO / "README.md").read_text(encoding="utf-8")
CHECKED = ("python -m src.", "dvc ", "python benchmarks/")
PLACEHOLDERS = ("<run_id>", "<run_a>", "<run_b>", "<run_id_a>", "<run_id_b>")

# regular expression on a documented command -> the test that runs it (first match wins)
COVERED_BY: list[tuple[str, str]] = [
    (r"^python -m src\.reproduce (HEAD|my-exp)", "tests/test_reproduce.py::test_dvc_stage_run_reproduced_from_a_git_revision"),
    (r"^dvc pull repro/|^dvc push +# or: dvc push repro/",
     "tests/test_reproduce.py::test_replay_run_after_its_parquet_is_gone_and_in_a_fresh_clone_after_dvc_pull"),
    (r"^python -m src\.reproduce ", "tests/test_reproduce.py::test_dirty_tree_run_reproduced_after_revert_and_new_commits"),
    (r"^python -m src\.runs (note|tag|untag) ", "tests/test_runs_index.py::test_notes_and_tags_change_neither_fingerprint_nor_verification"),
    (r"^python -m src\.runs gc ", "tests/test_runs_index.py::test_gc_keeps_pinned_tagged_and_last_n_and_is_a_dry_run_by_default"),
    (r"^python -m src\.runs list", "tests/test_runs_index.py::test_each_run_indexes_itself_and_list_filters_and_sorts"),
    (r"^python -m src\.report ", "tests/test_report.py::test_two_runs_overlay_diff_and_stage_last"),
    (r"^python -m src\.export_mlflow .*http://", "tests/test_export_mlflow.py::test_export_to_a_real_mlflow_server"),
    (r"^python -m src\.export_mlflow ", "tests/test_export_mlflow.py::test_export_twice_holds_each_run_once_with_its_fingerprint"),
    (r"^python -m src\.run -m ", "tests/test_sweep.py::test_readme_sweep_commands"),
    (r"market=live|/quotes\.parquet", "tests/test_market_live.py::test_live_run_records_and_replays_byte_for_byte"),
    (r"market=replay .*clock=realtime", "tests/test_market_live.py::test_paced_replay_takes_real_time_and_changes_nothing"),
    (r"^python -m src\.market\.export |^python -m src\.run .*market=replay market\.path=data/smoke\.parquet$",
     "tests/test_market_replay.py::test_readme_market_data_commands"),
    (r"^dvc (push|pull|status --cloud)|^dvc repro smoke && dvc push$",
     "tests/test_dvc_queue_remote.py::test_default_remote_push_drop_cache_pull_in_a_fresh_clone"),
    (r"^dvc (exp run --queue|queue )|^dvc exp show --no-pager --only-changed --csv$",
     "tests/test_dvc_queue_remote.py::test_queue_runs_variants_two_at_a_time_and_exp_show_lists_them"),
    (r"^python -m src\.compare .*HEAD|^dvc (repro|exp run smoke |params diff |metrics diff |plots |exp show --no-pager --only-changed --hide-workspace )",
     "tests/test_readme.py::test_dvc_walkthrough_and_compare_commands_as_documented"),
    (r"^dvc remote (add|modify) ", "tests/test_readme.py::test_documented_remote_setup_commands_work"),
    (r"^python -m src\.engine\.build$", "tests/test_aot.py::test_build_command_builds_once_then_up_to_date_and_runs_use_it"),
    (r"^python benchmarks/bench_\w+\.py( |$)", "tests/test_benchmarks.py::test_benchmark_quick_mode_runs_and_prints_its_figures"),
]


def bash_blocks() -> list[str]:
    return docpages.blocks(README, ("bash",))


def documented_commands(prefix: str) -> list[str]:
    """Distinct commands starting with `prefix` of every page, in page order."""
    return list(dict.fromkeys(c.command for c in docpages.commands(prefix)))


def runs_here(cmd: str) -> bool:
    """Whether test_documented_commands_work runs `cmd` itself (see the module docstring)."""
    if cmd.startswith("python -m src.run "):
        args = shlex.split(cmd)[3:]
        return "-m" not in args and not any(s in cmd for s in ("market=live", "clock=realtime", "market=replay", "<"))
    if cmd.startswith("python -m src.acceptance "):
        return True
    if cmd.startswith("python -m src.compare "):
        return not any(a.startswith(("HEAD", "refs/")) for a in shlex.split(cmd)[3:])
    return False


def covering_test(cmd: str) -> str | None:
    return next((test for pattern, test in COVERED_BY if re.search(pattern, cmd)), None)


def test_first_two_commands_set_up_smoke_and_tests() -> None:
    first, second = (b.strip() for b in bash_blocks()[:2])
    assert first.startswith("python3 -m venv .venv") and first.endswith("-m src.run stage=d92-5")
    assert second.startswith("python3 -m venv .venv") and "-m pytest" in second
    ci = (REPO / ".ci/run").read_text()
    assert second in ci.splitlines(), ".ci/run must run the README's test command as written"


def test_every_documented_command_is_run_or_covered() -> None:
    cmds = [c for c in docpages.commands() if c.command.startswith(CHECKED)]
    assert len(cmds) >= 40, cmds  # the pages hold them: a parser that finds none would pass
    loose = [f"{c.page}: {c.command}" for c in cmds if not runs_here(c.command) and covering_test(c.command) is None]
    assert not loose, ("documented commands no test runs: make them run in test_documented_commands_work or "
                       "add a COVERED_BY row naming the test that runs them:\n" + "\n".join(loose))


def test_covered_by_table_is_honest() -> None:
    cmds = [c.command for c in docpages.commands() if c.command.startswith(CHECKED) and not runs_here(c.command)]
    for pattern, test in COVERED_BY:
        path, name = test.split("::")
        source = (REPO / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {re.escape(name)}\(", source, flags=re.M), f"{test}: no such test"
        assert any(covering_test(c) == test and re.search(pattern, c) for c in cmds), \
            f"COVERED_BY row {pattern!r} ({test}) matches no documented command: delete it"
    for cmd in cmds:
        if cmd.startswith("python benchmarks/"):
            assert (REPO / cmd.split()[1]).is_file(), f"{cmd}: no such benchmark"


def test_documented_commands_work(tmp_path: Path) -> None:
    """Every documented single run, acceptance and compare command that runs here, as written."""
    repo = copy_repo(tmp_path / "repo")
    cmds = [c for c in documented_commands("python -m src.") if runs_here(c)]
    runs = [c for c in cmds if c.startswith("python -m src.run ")]
    assert len(runs) >= 10 and any("run.overwrite=true" in c for c in runs), runs
    for cmd in runs:
        proc = run_cli(repo, *shlex.split(cmd)[3:])
        assert proc.returncode in (0, 1), f"{cmd}: {proc.stderr}"
    made = sorted(d.name for d in (repo / "logs/d92-5").iterdir() if (d / "runtime_meta.json").is_file())
    assert len(made) >= 2, made
    subs = {"<run_id>": made[0], "<run_a>": made[0], "<run_b>": made[1], "<run_id_a>": made[0], "<run_id_b>": made[1]}
    checked = [c for c in cmds if c.startswith(("python -m src.acceptance ", "python -m src.compare "))]
    assert any("src.acceptance" in c for c in checked) and any("--last" in c for c in checked), checked
    for cmd in checked:
        for k, v in subs.items():
            cmd = cmd.replace(k, v)
        args = shlex.split(cmd)
        proc = run_cli(repo, *args[3:], module=args[2])
        assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"


@pytest.mark.slow
def test_documented_remote_setup_commands_work(tmp_path: Path) -> None:
    """docs/dvc.md's `dvc remote` lines, each `add` with the `modify` lines after it, in a fresh DVC
    project (configuration only, no storage is reached); `--local` settings (credentials) land in
    the git-ignored .dvc/config.local only. Slow: a dozen DVC start-ups."""
    from conftest import dvc_env
    cmds = documented_commands("dvc remote ")
    groups: list[list[str]] = []
    for cmd in cmds:
        assert cmd.startswith(("dvc remote add ", "dvc remote modify ")), cmd
        if cmd.startswith("dvc remote add ") or not groups:
            groups.append([])
        groups[-1].append(cmd)
    assert len(groups) >= 4 and sum(len(g) for g in groups) >= 7, groups
    env = dvc_env(tmp_path)
    for i, group in enumerate(groups):
        project = tmp_path / f"p{i}"
        project.mkdir()
        subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "-q", "--no-scm"], cwd=project, env=env,
                       check=True, capture_output=True)
        for cmd in group:
            proc = subprocess.run(["bash", "-c", cmd], cwd=project, capture_output=True, text=True, env=env, timeout=120)
            assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-2000:]}"
        shared = (project / ".dvc/config").read_text()
        for cmd in group:
            if " --local " in cmd and cmd.startswith("dvc remote modify "):
                key = shlex.split(cmd)[5]
                assert key not in shared, f"{cmd}: --local wrote into .dvc/config:\n{shared}"
                assert key in (project / ".dvc/config.local").read_text(), cmd


def test_pages_name_the_stage_in_dvc_exp_run_and_the_branch_main() -> None:
    for page in docpages.pages():
        assert "master" not in docpages.read(page), f"{page}: the default branch is main"
    for c in docpages.commands("dvc exp run"):
        words = c.command.split()
        assert words[3] in ("smoke", "longrun") or words[4] in ("smoke", "longrun"), \
            f"{c.page}: {c.command}: name the stage in `dvc exp run`"


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_pages_resolve() -> None:
    """Every relative link of every page names a file that exists, and a heading that exists in it."""
    for page in [*docpages.pages(), Path("SECURITY.md")]:
        for target in _LINK.findall(docpages.read(page)):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            path, _, anchor = target.partition("#")
            dest = (REPO / page).parent / path if path else REPO / page
            assert dest.exists(), f"{page}: link to {target}: no such file"
            if anchor:
                heads = [_slug(h) for h in re.findall(r"^#+ (.*)$", dest.read_text(encoding="utf-8"), flags=re.M)]
                assert anchor in heads, f"{page}: link to {target}: no such heading (have {heads})"


def folder_map() -> dict[str, str]:
    """The README's map of conf/ and src/: {file or folder as written: its path from the repo root}.

    A line's first word is a path from the root; the `.py` words after it (and on the indented
    lines below it) are files of that folder."""
    text = docpages.section(README, "## Where things are")
    body = docpages.blocks(text, ("text",))[0]
    out: dict[str, str] = {}
    folder = ""
    for line in body.splitlines():
        words = line.split()
        if not words:
            continue
        if not line[0].isspace():
            out[words[0]] = words[0]
            folder = words[0] if words[0].endswith("/") else words[0].rsplit("/", 1)[0] + "/"
            words = words[1:]
        for w in words:
            w = w.strip(";,:")
            if re.fullmatch(r"[\w*]+\.py", w):
                out[w] = folder + w
    return out


def test_folder_map_names_what_exists() -> None:
    for written, path in folder_map().items():
        assert list(REPO.glob(path.rstrip("/"))), f"README map: {written} -> {path}: no such file or folder"


def test_folder_map_alone_finds_the_fingerprint_exit_rules_lock_and_record_layout() -> None:
    """Issue 15's newcomer test: from the map alone, which file holds each of these facts."""
    body = docpages.blocks(docpages.section(README, "## Where things are"), ("text",))[0]
    m = folder_map()
    for fact, path in (("the fingerprint", "src/provenance/fingerprint.py"), ("the exit rules", "src/engine/exits.py"),
                       ("(its lock)", "src/runs/claim.py"), ("runtime_meta.json's layout", "src/provenance/record.py")):
        name = path.rsplit("/", 1)[1]
        assert re.search(rf"{re.escape(name)} [^;]*{re.escape(fact)}", body), (fact, name)
        assert m[name] == path, (fact, m.get(name))


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
    """Every command of the DVC walkthrough block (docs/dvc.md), then every compare command of every
    page, in a temp git repo."""
    from conftest import dvc_env
    env = dict(dvc_env(dvc_repo.parent), COLUMNS="160")  # a 160-column terminal
    block = docpages.block_containing("dvc repro smoke")  # docs/dvc.md's walkthrough
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
