"""Tampering is detected: refused before the run, neutralised by the purge, or visible in the record.

Three kinds of outcome, each a table:
- refused (exit 3, one line naming the module and both paths, no run folder): a symlinked
  subpackage or module file, a `.pth` file in a venv's site-packages or a sitecustomize
  on PYTHONPATH that pre-imports the package from another checkout, a source file deleted
  with its bytecode left behind; and (in process) a symlinked bytecode cache or a symlink
  out of the repo inside the package tree.
- neutralised: bytecode planted so that Python *would* run it instead of the source (each
  case first proves that a plain import does run it), which the purge removes before the
  project imports the module: the run matches a clean run and the planted code never runs.
- visible: an edited source file, an added source file, an edited zone profile, an edited
  value in a used config file, an edited replay file -- each changes a digest in the
  record and the fingerprint, and `python -m src.compare` names it; an edit of a config
  file the run does not use is named too, without changing the fingerprint; touching a
  file without changing it changes nothing but the recorded mtime.
The cases tests/test_guard.py already covers (symlinked `src`, another checkout first on
PYTHONPATH with PYTHONSAFEPATH, a sourceless .pyc, namespace and split packages, a stray
.pyc) are not repeated. Known limits (SECURITY.md) are pinned as such at the end.
"""
from __future__ import annotations

import json
import os
import py_compile
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from importlib.util import cache_from_source
from pathlib import Path
from typing import Callable

import pytest

from conftest import GIT, clean_env, copy_repo, load_json, run_cli
from src.provenance.guard import check_imports
from stress.helpers import assert_clean_user_error, run_folders, snapshot

SUITE = "tampering"
MARKER_LINE = "\nimport pathlib as _p; _p.Path({marker!r}).write_text('planted code ran')\n"


# -- refused before the run ------------------------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    id: str
    setup: Callable[[Path, Path], tuple[list[str], dict[str, str], tuple[str, ...]]]  # -> python, env, needles
    slow: bool = False


def _symlinked_subpackage(here: Path, tmp: Path):
    other = copy_repo(tmp / "other")
    shutil.rmtree(here / "src/engine")
    (here / "src/engine").symlink_to(other / "src/engine", target_is_directory=True)
    return [sys.executable], clean_env(), ("module src.engine", "outside the repo root", str(other / "src/engine"))


def _symlinked_module_file(here: Path, tmp: Path):
    other = copy_repo(tmp / "other")
    (here / "src/engine/exits.py").unlink()
    (here / "src/engine/exits.py").symlink_to(other / "src/engine/exits.py")
    return [sys.executable], clean_env(), ("module src.engine.exits", str(other / "src/engine/exits.py"))


def _preload_line(other: Path) -> str:
    return f"import sys; sys.path.insert(0, {str(other)!r}); import src; sys.path.remove({str(other)!r})\n"


def _pth_in_venv_site_packages(here: Path, tmp: Path):
    """A real .pth: processed by `site` at start-up, its `import` line runs before any of our code."""
    other = copy_repo(tmp / "other")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "00-project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # hydra, numpy, ...
    (site / "zz-shadow.pth").write_text(_preload_line(other))
    return [str(venv / "bin" / "python")], clean_env(), ("outside the repo root", str(other / "src"))


def _sitecustomize_on_pythonpath(here: Path, tmp: Path):
    other = copy_repo(tmp / "other")
    inject = tmp / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(_preload_line(other))
    return [sys.executable], clean_env(PYTHONPATH=str(inject)), ("outside the repo root", str(other / "src"))


def _source_deleted_bytecode_left(here: Path, tmp: Path):
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(here / "src")], check=True, env=clean_env())
    (here / "src/engine/exits.py").unlink()
    return [sys.executable], clean_env(), ("import provenance refused", "src.engine.exits", "git checkout")


REFUSALS = [
    Refusal("symlinked-subpackage", _symlinked_subpackage),
    Refusal("symlinked-module-file", _symlinked_module_file, slow=True),
    Refusal("pth-file-in-venv-site-packages", _pth_in_venv_site_packages),
    Refusal("sitecustomize-on-pythonpath", _sitecustomize_on_pythonpath, slow=True),
    Refusal("source-deleted-bytecode-left", _source_deleted_bytecode_left),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else [])
                                  for c in REFUSALS])
def test_refused_before_the_run(case: Refusal, tmp_path: Path, figures) -> None:
    figures.add(SUITE, "cases tried")
    here = copy_repo(tmp_path / "here")
    python, env, needles = case.setup(here, tmp_path)
    proc = subprocess.run([*python, "-m", "src.run", "run.id=t"], cwd=here, capture_output=True, text=True,
                          env=env, timeout=120)
    err = assert_clean_user_error(proc, 3)
    for n in needles:
        assert n in err, (n, err)
    assert run_folders(here) == []
    figures.add(SUITE, "refused before the run (exit 3)")


def test_guard_refuses_symlinks_planted_after_the_purge(tmp_path: Path, figures) -> None:
    """In process: a __pycache__ that is a link (made after the purge) and a link out of the repo."""
    repo = copy_repo(tmp_path / "repo")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "table.json").write_text("{}")
    (repo / "src/engine/__pycache__").symlink_to(outside, target_is_directory=True)
    (repo / "src/market/table.json").symlink_to(outside / "table.json")
    figures.add(SUITE, "cases tried", 2)
    got = "; ".join(check_imports(repo)["violations"])
    assert f"bytecode cache {repo / 'src/engine/__pycache__'} is a symlink" in got, got
    assert f"{repo / 'src/market/table.json'} is a symlink to {outside / 'table.json'}, outside the repo" in got
    figures.add(SUITE, "refused before the run (exit 3)", 2)


# -- neutralised by the purge ---------------------------------------------------------------------

def _plant_unchecked(here: Path, marker: Path, cache_dir: Path | None = None) -> None:
    """Bytecode of exits.py + a marker line, as an unchecked-hash .pyc: Python never compares it to the source."""
    src = here / "src/engine/exits.py"
    poison = here.parent / "poison_exits.py"
    poison.write_text(src.read_text() + MARKER_LINE.format(marker=str(marker)))
    cfile = Path(cache_from_source(str(src)))
    if cache_dir is not None:  # the cache folder is a link to a folder outside the repo
        cache_dir.mkdir()
        cfile.parent.symlink_to(cache_dir, target_is_directory=True)
    py_compile.compile(str(poison), cfile=str(cfile), dfile=str(src),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, doraise=True)


def _planted_pyc(here: Path, marker: Path) -> None:
    _plant_unchecked(here, marker)


def _planted_pyc_behind_a_cache_link(here: Path, marker: Path) -> None:
    _plant_unchecked(here, marker, here.parent / "outside-cache")


def _stale_pyc_same_size_and_mtime(here: Path, marker: Path) -> None:
    """The seed's pain: a source edited in the same second, same size, and its old bytecode still valid."""
    src = here / "src/engine/exits.py"
    base = src.read_text()
    old_tail = MARKER_LINE.format(marker=str(marker))
    src.write_text(base + old_tail)
    py_compile.compile(str(src), doraise=True,  # checked by timestamp: mtime and size of the source
                       invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    st = src.stat()
    src.write_text(base + "\n#" + "x" * (len(old_tail) - 3) + "\n")  # the edit: same size, no marker
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert src.stat().st_size == st.st_size


NEUTRALISED = {
    "planted-unchecked-pyc": _planted_pyc,
    "planted-pyc-behind-a-symlinked-cache": _planted_pyc_behind_a_cache_link,
    "stale-pyc-same-size-same-mtime": _stale_pyc_same_size_and_mtime,
}


@pytest.fixture(scope="module")
def clean_fingerprint(tmp_path_factory: pytest.TempPathFactory) -> str:
    repo = copy_repo(tmp_path_factory.mktemp("clean") / "repo")
    proc = run_cli(repo, "run.id=clean")
    assert proc.returncode == 0, proc.stderr
    return load_json(repo / "logs/d92-5/clean/runtime_meta.json")["fingerprint"]


@pytest.mark.parametrize("case", [pytest.param(c, marks=[pytest.mark.slow] if c == "planted-unchecked-pyc" else [])
                                  for c in sorted(NEUTRALISED)])
def test_planted_bytecode_never_runs(case: str, tmp_path: Path, clean_fingerprint: str, figures) -> None:
    figures.add(SUITE, "cases tried")
    here = copy_repo(tmp_path / "here")
    marker = tmp_path / "PLANTED_CODE_RAN"
    NEUTRALISED[case](here, marker)
    # the trap is real: a plain import (no purge) runs the planted bytecode
    subprocess.run([sys.executable, "-c", "import src.engine.exits"], cwd=here, check=True, env=clean_env())
    assert marker.exists(), "the planted bytecode should load without the purge"
    marker.unlink()
    outside_cache = here.parent / "outside-cache"
    outside_before = snapshot(outside_cache) if outside_cache.is_dir() else None  # the plain import wrote there too
    proc = run_cli(here, "run.id=t")
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "planted bytecode ran during a run"
    meta = load_json(here / "logs/d92-5/t/runtime_meta.json")
    purge = meta["guard"]["purge"]
    assert purge["removed_files"] + len(purge["unlinked_cache_links"]) >= 1, purge
    if case == "stale-pyc-same-size-same-mtime":  # the record holds the digest of the source that ran
        assert meta["fingerprint"] != clean_fingerprint
    else:
        assert meta["fingerprint"] == clean_fingerprint
    if case == "planted-pyc-behind-a-symlinked-cache":  # the link went, its target was left alone
        assert purge["unlinked_cache_links"] == ["src/engine/__pycache__"]
        assert Path(cache_from_source(str(here / "src/engine/exits.py"))).name in outside_before
        assert snapshot(outside_cache) == outside_before  # the run neither deleted nor wrote a byte there
    figures.add(SUITE, "neutralised by the purge (planted code never ran)")


# -- visible in the record and in compare -----------------------------------------------------------

class Bench:
    """A temp git checkout with a synthetic base run and a replay base run."""

    def __init__(self, root: Path) -> None:
        from src.config.loader import load_config
        from src.market.export import export
        from src.market.registry import build_market

        self.repo = repo = copy_repo(root)
        (repo / "data").mkdir()
        cfg = load_config([], repo).cfg
        market = build_market(cfg.market, cfg.symbols.ranked[:10], cfg.seed, 600, 1.0, repo)
        export(market, repo / "data/ticks.parquet", 1.0, {"usdt": "synthetic:binance", "krw": "synthetic:upbit"})
        (repo / ".gitignore").write_text((repo / ".gitignore").read_text() + "\n/data/\n")
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
        subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True, capture_output=True)
        subprocess.run([*GIT, "commit", "-qm", "project"], cwd=repo, check=True, capture_output=True)
        self.run("base")
        self.run("base-replay", *REPLAY)

    def run(self, run_id: str, *args: str) -> dict:
        proc = run_cli(self.repo, "stage=d92-5", f"run.id={run_id}", *args)
        assert proc.returncode in (0, 1), proc.stderr
        return load_json(self.repo / "logs/d92-5" / run_id / "runtime_meta.json")

    def compare(self, a: str, b: str) -> tuple[dict, str]:
        js = run_cli(self.repo, a, b, "--json", module="src.compare")
        assert js.returncode == 0 and "Traceback" not in js.stderr, js.stderr
        text = run_cli(self.repo, a, b, module="src.compare")
        return json.loads(js.stdout), text.stdout


REPLAY = ("market=replay", "market.path=data/ticks.parquet")


def _edit(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        p = repo / rel
        text = p.read_text()
        assert old in text, (rel, old)
        p.write_text(text.replace(old, new, 1))
    return apply


def _add_source(repo: Path) -> None:
    (repo / "src/engine/backdoor.py").write_text('"""Never imported; still part of the code inventory."""\nX = 1\n')


def _edit_replay_file(repo: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = repo / "data/ticks.parquet"
    meta = {k: v for k, v in pq.ParquetFile(path).metadata.metadata.items() if not k.startswith(b"ARROW:")}
    table = pq.read_table(path)
    bid = table["bid"].to_pylist()
    bid[101] = bid[101] * 0.999  # one quote, a little lower
    i = table.schema.get_field_index("bid")
    pq.write_table(table.set_column(i, "bid", pa.array(bid)).replace_schema_metadata(meta), path)


def _touch(rel: str) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        st = (repo / rel).stat()
        os.utime(repo / rel, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    return apply


@dataclass(frozen=True)
class Visible:
    id: str
    apply: Callable[[Path], None]
    files: tuple[str, ...]  # paths the tampering touches (restored afterwards)
    check: Callable[[dict, str, dict, dict], None]  # (compare json, compare text, base meta, tampered meta)
    base: str = "base"
    args: tuple[str, ...] = ()
    slow: bool = False


def _changed_code(path: str, change: str):
    def check(rep: dict, text: str, a: dict, b: dict) -> None:
        assert [(f["path"], f["change"]) for f in rep["code_files"]] == [(path, change)], rep["code_files"]
        assert not rep["same_fingerprint"] and path in text
        assert b["git"]["dirty"] and path in b["git"]["changed_paths"] and not a["git"]["dirty"]
    return check


def _changed_zone(rep: dict, text: str, a: dict, b: dict) -> None:
    assert rep["zone_profile"]["a"]["sha256"] == a["zone_profile"]["sha256"] != rep["zone_profile"]["b"]["sha256"]
    assert [f["path"] for f in rep["config_files"]] == ["conf/zone_profile/default.yaml"]
    assert [c["key"] for c in rep["config_values"]] == ["zone_profile.profiles.alt_advisory.zones.0.tp_bps"]
    assert not rep["same_fingerprint"] and "conf/zone_profile/default.yaml" in text


def _changed_value(rep: dict, text: str, a: dict, b: dict) -> None:
    assert [c["key"] for c in rep["config_values"]] == ["costs.usdt_venue.taker_fee_bps"]
    assert [f["path"] for f in rep["config_files"]] == ["conf/costs/default.yaml"]
    assert not rep["same_fingerprint"] and "costs.usdt_venue.taker_fee_bps" in text


def _changed_unused_file(rep: dict, text: str, a: dict, b: dict) -> None:
    """Named in the record and compare; not an input of this run, so the fingerprint stays."""
    assert [f["path"] for f in rep["config_files"]] == ["conf/costs/bnb_discount.yaml"]
    assert rep["same_fingerprint"] and rep["kpis_equal"] and "conf/costs/bnb_discount.yaml" in text


def _changed_data(rep: dict, text: str, a: dict, b: dict) -> None:
    keys = {c["key"] for c in rep["data"]["changed"]}
    assert "sha256" in keys, rep["data"]
    assert a["data"]["identity"]["sha256"] != b["data"]["identity"]["sha256"]
    assert not rep["same_fingerprint"]


def _nothing_but_mtime(rep: dict, text: str, a: dict, b: dict) -> None:
    assert rep["same_fingerprint"] and rep["kpis_equal"] and not rep["config_files"] and not rep["zone_profile"]
    assert a["zone_profile"]["mtime_ns"] != b["zone_profile"]["mtime_ns"]


VISIBLE = [
    Visible("edited-source-file", _edit("src/engine/exits.py", "    hold = t - pos.entry_t_s\n",
                                        "    hold = t - pos.entry_t_s  # held\n"),
            ("src/engine/exits.py",), _changed_code("src/engine/exits.py", "modified"), slow=True),
    Visible("added-source-file", _add_source, ("src/engine/backdoor.py",),
            _changed_code("src/engine/backdoor.py", "added"), slow=True),
    Visible("edited-zone-profile", _edit("conf/zone_profile/default.yaml", "tp_bps: 35.0", "tp_bps: 35.5"),
            ("conf/zone_profile/default.yaml",), _changed_zone),
    Visible("edited-used-config-value", _edit("conf/costs/default.yaml", "taker_fee_bps: 10.0", "taker_fee_bps: 10.5"),
            ("conf/costs/default.yaml",), _changed_value, slow=True),
    Visible("edited-unused-config-file", _edit("conf/costs/bnb_discount.yaml", "name:", "# edited\nname:"),
            ("conf/costs/bnb_discount.yaml",), _changed_unused_file, slow=True),
    Visible("edited-replay-file", _edit_replay_file, ("data/ticks.parquet",), _changed_data,
            base="base-replay", args=REPLAY),
    Visible("touched-zone-profile-no-change", _touch("conf/zone_profile/default.yaml"),
            ("conf/zone_profile/default.yaml",), _nothing_but_mtime, slow=True),
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return Bench(tmp_path_factory.mktemp("tamper") / "repo")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else [])
                                  for c in VISIBLE])
def test_visible_in_record_and_compare(case: Visible, bench: Bench, figures) -> None:
    figures.add(SUITE, "cases tried")
    saved = {rel: ((bench.repo / rel).read_bytes(), (bench.repo / rel).stat().st_mtime_ns)
             for rel in case.files if (bench.repo / rel).exists()}
    try:
        time.sleep(0.01)
        case.apply(bench.repo)
        meta = bench.run(case.id, *case.args)
        rep, text = bench.compare(case.base, case.id)
        case.check(rep, text, load_json(bench.repo / "logs/d92-5" / case.base / "runtime_meta.json"), meta)
    finally:
        for rel in case.files:
            p = bench.repo / rel
            if rel in saved:
                p.write_bytes(saved[rel][0])
                os.utime(p, ns=(saved[rel][1], saved[rel][1]))
            else:
                p.unlink(missing_ok=True)
    figures.add(SUITE, "visible in the record and in compare")


# -- known limits (SECURITY.md): pinned so that a change in them is noticed --------------------------------

@pytest.mark.slow
def test_limit_planted_bytecode_of_the_package_init_runs_once_before_the_restart(tmp_path: Path, figures) -> None:
    """src/__init__.py is imported by Python before any project code: planted bytecode for it runs
    once, in a first process that records nothing; preflight sees it, purges and restarts the
    command from source (tests/test_code_provenance.py has the general property). If this test
    fails because the planted code no longer runs at all, the limit is gone: update SECURITY.md.
    """
    here = copy_repo(tmp_path / "here")
    marker = tmp_path / "PLANTED_CODE_RAN"
    src = here / "src/__init__.py"
    poison = tmp_path / "poison_init.py"
    poison.write_text(src.read_text() + MARKER_LINE.format(marker=str(marker)))
    py_compile.compile(str(poison), cfile=cache_from_source(str(src)), dfile=str(src),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, doraise=True)
    proc = run_cli(here, "run.id=t")
    assert proc.returncode == 0 and marker.exists()
    meta = load_json(here / "logs/d92-5/t/runtime_meta.json")
    assert meta["guard"]["purge"]["preflight"]["restarted_for"] == ["src"]
    figures.add(SUITE, "known limits shown (SECURITY.md)")


@pytest.mark.slow
def test_limit_code_that_patches_the_guard_before_it_runs(tmp_path: Path, figures) -> None:
    """A sitecustomize (or .pth) that replaces the guard in memory defeats it: the hardlock is not a sandbox."""
    here = copy_repo(tmp_path / "here")
    other = copy_repo(tmp_path / "other")
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        _preload_line(other)
        + "import src.provenance.guard as g\n"
        + "g.check_imports = lambda root, package='src': {'root': str(root), 'modules_checked': 0, 'violations': []}\n")
    proc = run_cli(here, "run.id=t", env=clean_env(PYTHONPATH=str(inject)))
    assert proc.returncode == 0, proc.stderr  # code from `other` ran; the record names `here`'s files
    meta = load_json(here / "logs/d92-5/t/runtime_meta.json")
    assert meta["guard"]["hardlock"]["violations"] == []
    figures.add(SUITE, "known limits shown (SECURITY.md)")
