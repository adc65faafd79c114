"""The code that ran is the code recorded; data and config are identified by content, not name.

Through the real CLI in a temp copy of the repo:
- an extension module beside a project module's source (every suffix Python accepts, pre- and
  post-purge modules) is refused (exit 3, naming the file) before it runs; so are modules
  from another loader (a custom finder, a zip archive);
- stale or planted bytecode of every module imported before the purge never runs in the
  recorded process: the pre-purge modules' bytecode is deleted before they are imported, and
  src/__init__.py and src/run.py (which Python imports before any project code) are compared
  with their source; a mismatch restarts the command once, from source, and is refused
  (exit 3, naming the module) if it is still there after the restart;
- running from the wrong place exits 2 with one line saying how to run;
- one replay file under five spellings of its path gives one fingerprint and byte-equal
  provenance.json; a conf/ file that resolves outside the repo is refused (exit 3).
"""
from __future__ import annotations

import os
import py_compile
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.util import cache_from_source
from pathlib import Path

import pytest

from conftest import REPO, clean_env, copy_repo, load_json, run_cli
from src.provenance.guard import check_imports
from stress.helpers import assert_clean_user_error, bytecode_env, run_folders

PRE_PURGE = ("src/__init__.py", "src/run.py", "src/provenance/__init__.py", "src/provenance/preflight.py",
             "src/provenance/purge.py", "src/runs/__init__.py", "src/runs/paths.py")


def _module_name(rel: str) -> str:
    name = rel.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def _marker_line(marker: Path) -> str:
    return f"import pathlib as _p; _p.Path({str(marker)!r}).open('a').write('ran\\n')\n"


def _with_marker(text: str, marker: Path) -> str:
    """The source with a line that appends to `marker`, right after its __future__ import."""
    future = "from __future__ import annotations\n"
    if future in text:
        return text.replace(future, future + _marker_line(marker), 1)
    return _marker_line(marker) + text


def _ran(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


# -- extension modules and other loaders -------------------------------------------------------------

def _compiler() -> str | None:
    return shutil.which(sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc")


def _build_extension(tmp: Path, name: str, marker: Path) -> Path:
    """A real extension module `name` whose import writes `marker` (its init is C code that runs)."""
    c = tmp / f"{name}.c"
    c.write_text('#include <Python.h>\n#include <stdio.h>\n'
                 f'static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, "{name}", NULL, -1, NULL}};\n'
                 f'PyMODINIT_FUNC PyInit_{name}(void) {{ FILE *f = fopen("{marker}", "a");'
                 ' if (f) { fputs("ran\\n", f); fclose(f); } return PyModule_Create(&def); }\n')
    out = tmp / f"{name}.so"
    subprocess.run([_compiler(), "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}", "-o", str(out), str(c)],
                   check=True, capture_output=True)
    return out


EXT_MODULES = ["src/engine/kpi.py", "src/config/loader.py", "src/runs/paths.py", "src/provenance/purge.py",
               "src/provenance/guard.py"]


@pytest.mark.skipif(_compiler() is None, reason="needs a C compiler to build a real extension module")
@pytest.mark.parametrize("suffix", EXTENSION_SUFFIXES)
def test_extension_module_beside_its_source_is_refused_before_it_runs(suffix: str, tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    marker = tmp_path / "EXTENSION_RAN"
    for rel in EXT_MODULES:
        stem = Path(rel).stem
        so = repo / Path(rel).with_name(stem + suffix)
        shutil.copy(_build_extension(tmp_path, stem, marker), so)
        # the trap is real: a plain import loads the extension instead of the source
        subprocess.run([sys.executable, "-c", f"import {_module_name(rel)}"], cwd=repo, env=clean_env(),
                       capture_output=True)
        assert _ran(marker) == 1, rel
        marker.unlink()
        err = assert_clean_user_error(run_cli(repo, "run.id=t", env=bytecode_env()), 3)
        assert "import provenance refused" in err and so.name in err, err
        assert _ran(marker) == 0, f"{rel}: the extension module ran during a refused run"
        assert run_folders(repo) == []
        so.unlink()


@pytest.mark.skipif(_compiler() is None, reason="needs a C compiler to build a real extension module")
def test_extension_module_for_the_package_itself_is_refused(repo: Path, tmp_path: Path) -> None:
    """src/__init__.abi3.so is the package for Python (it runs before any project code): refused by name."""
    marker = tmp_path / "EXTENSION_RAN"
    shutil.copy(_build_extension(tmp_path, "src", marker), repo / "src/__init__.abi3.so")
    err = assert_clean_user_error(run_cli(repo, "run.id=t"), 3)
    assert "module src was loaded from" in err and "__init__.abi3.so" in err and "ExtensionFileLoader" in err, err
    assert run_folders(repo) == []


@pytest.mark.parametrize("suffix", [*EXTENSION_SUFFIXES, ".pyc"])
@pytest.mark.parametrize("rel", ["src/engine/kpi.py", "src/runs/paths.py", "src/market/replay.py"])
def test_any_file_python_would_import_instead_of_the_source_is_refused(rel: str, suffix: str, repo: Path) -> None:
    """No compiler needed: whatever its content, a file with an importable suffix is refused by name."""
    stray = repo / Path(rel).with_name(Path(rel).stem + suffix)
    stray.write_bytes(b"\x7fELF not really")
    err = assert_clean_user_error(run_cli(repo, "run.id=t"), 3)
    assert stray.name in err and ("extension module" in err or "bytecode" in err), err
    assert run_folders(repo) == []
    assert any(stray.name in v for v in check_imports(repo)["violations"])  # the hardlock names it too


def test_module_from_a_custom_finder_is_refused(repo: Path, tmp_path: Path) -> None:
    """Code served by an import hook (here a finder a sitecustomize installs) is not the source file."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "import importlib.abc, importlib.util, sys\n"
        "class L(importlib.abc.Loader):\n"
        "    def create_module(self, spec): return None\n"
        "    def exec_module(self, m): exec(compile(open(m.__file__).read(), m.__file__, 'exec'), m.__dict__)\n"
        "class F(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'src.engine.kpi':\n"
        f"            return importlib.util.spec_from_file_location(name, {str(repo / 'src/engine/kpi.py')!r},"
        " loader=L())\n"
        "sys.meta_path.insert(0, F())\n")
    err = assert_clean_user_error(run_cli(repo, "run.id=t", env=clean_env(PYTHONPATH=str(inject))), 3)
    assert "module src.engine.kpi" in err and "by L" in err, err
    assert run_folders(repo) == []


def test_package_from_a_zip_archive_is_refused(repo: Path, tmp_path: Path) -> None:
    archive = tmp_path / "src.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted((repo / "src").rglob("*.py")):
            z.write(p, p.relative_to(repo).as_posix())
    proc = run_cli(repo, "run.id=t", env=clean_env(PYTHONPATH=str(archive), PYTHONSAFEPATH="1"))
    err = assert_clean_user_error(proc, 3)
    assert "zipimporter" in err and "src.zip" in err, err
    assert run_folders(repo) == []


# -- bytecode of the modules imported before the purge -----------------------------------------------

def _stale(repo: Path, rel: str, marker: Path) -> None:
    """Bytecode of `rel` + a marker line, valid by timestamp, then the source edited at the same size and mtime."""
    src = repo / rel
    base = src.read_text()
    poisoned = _with_marker(base, marker)
    src.write_text(poisoned)
    py_compile.compile(str(src), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    st = src.stat()
    pad = len(poisoned.encode()) - len(base.encode()) - 3
    src.write_text(base + "\n#" + "x" * pad + "\n")  # the edit: same size, no marker
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert src.stat().st_size == st.st_size


def _planted(repo: Path, rel: str, marker: Path) -> None:
    """Unchecked-hash bytecode of `rel` + a marker line: Python never compares it with the source."""
    src = repo / rel
    poison = repo.parent / f"poison_{src.name}"
    poison.write_text(_with_marker(src.read_text(), marker))
    py_compile.compile(str(poison), cfile=cache_from_source(str(src)), dfile=str(src), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


# Python imports these two before any project code can act: their bytecode is compared with the source.
COMPARED = ("src/__init__.py", "src/run.py")


@pytest.mark.parametrize("plant", [_stale, _planted], ids=["stale-same-size-and-mtime", "planted-unchecked-hash"])
@pytest.mark.parametrize("rel", PRE_PURGE)
def test_bytecode_of_a_pre_purge_module_never_runs_in_the_recorded_process(rel: str, plant, tmp_path: Path,
                                                                           clean_fp: str) -> None:
    repo = copy_repo(tmp_path / "repo")
    marker = tmp_path / "OLD_CODE_RAN"
    plant(repo, rel, marker)
    probe = "import runpy; runpy.run_module('src.run', run_name='probe')" if rel == "src/run.py" else \
        f"import {_module_name(rel)}"
    subprocess.run([sys.executable, "-c", probe], cwd=repo, env=bytecode_env(), capture_output=True)
    assert _ran(marker) == 1, "the trap is real: a plain import runs the old bytecode"
    marker.unlink()
    proc = run_cli(repo, "run.id=t", env=bytecode_env())
    assert proc.returncode == 0, proc.stderr
    meta = load_json(repo / "logs/d92-5/t/runtime_meta.json")
    pre = meta["guard"]["purge"]["preflight"]
    name = _module_name(rel)
    if rel in COMPARED:  # ran once in a first process that recorded nothing, then the command restarted
        assert _ran(marker) <= 1 and pre["restarted_for"] == [name], (pre, _ran(marker))
    else:  # its bytecode was deleted before its import: the old code never ran at all
        assert _ran(marker) == 0 and name in pre["compiled_fresh"], pre
    assert pre["stale"] == []
    # the record holds the digests of the files as they are now (the edited ones)
    rec = {f["path"]: f["xxh3_128"] for f in meta["code"]["files"]}
    import xxhash
    assert rec[rel] == xxhash.xxh3_128_hexdigest((repo / rel).read_bytes())
    if plant is _planted:
        assert meta["fingerprint"] == clean_fp


@pytest.fixture(scope="module")
def clean_fp(tmp_path_factory: pytest.TempPathFactory) -> str:
    repo = copy_repo(tmp_path_factory.mktemp("clean") / "repo")
    assert run_cli(repo, "run.id=clean").returncode == 0
    return load_json(repo / "logs/d92-5/clean/runtime_meta.json")["fingerprint"]


@pytest.mark.parametrize("rel", COMPARED)
def test_bytecode_still_stale_after_the_restart_is_refused(rel: str, repo: Path, tmp_path: Path) -> None:
    """The restart's marker says this is the second attempt: old bytecode again is refused, naming the module."""
    marker = tmp_path / "OLD_CODE_RAN"
    _stale(repo, rel, marker)
    env = bytecode_env(SRC_RUN_BYTECODE_RESTART=_module_name(rel))
    err = assert_clean_user_error(run_cli(repo, "run.id=t", env=env), 3)
    assert f"module {_module_name(rel)} ran from bytecode" in err and rel in err, err
    assert run_folders(repo) == []


def test_no_bytecode_no_restart_and_a_fresh_cache_is_not_stale(repo: Path) -> None:
    """Runs with bytecode writing on, one after another: the caches Python writes never look stale."""
    for i in range(2):
        proc = run_cli(repo, f"run.id=r{i}", env=bytecode_env())
        assert proc.returncode == 0, proc.stderr
        pre = load_json(repo / f"logs/d92-5/r{i}/runtime_meta.json")["guard"]["purge"]["preflight"]
        assert pre["restarted_for"] == [] and pre["stale"] == [] and "src.run" in pre["modules_compared"]
        assert set(pre["compiled_fresh"]) == {_module_name(r) for r in PRE_PURGE if r not in COMPARED}


# -- the wrong place ----------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["conf", "src", "logs", "src/engine", "outside"])
@pytest.mark.parametrize("how", ["module-with-pythonpath", "script"])
def test_running_from_the_wrong_place_says_how_to_run(where: str, how: str, repo: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "elsewhere" if where == "outside" else repo / where
    cwd.mkdir(exist_ok=True)
    if how == "script":
        cmd, env = [sys.executable, str(repo / "src/run.py"), "stage=d92-5"], clean_env()
    else:
        cmd, env = [sys.executable, "-m", "src.run", "stage=d92-5"], clean_env(PYTHONPATH=str(repo))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    err = assert_clean_user_error(proc, 2)
    assert f"cd {repo} && python -m src.run stage=d92-5" in err, err
    assert run_folders(repo) == []


def test_script_from_the_repo_root_says_how_to_run(repo: Path) -> None:
    proc = subprocess.run([sys.executable, "src/run.py", "stage=d92-5", "seed=7"], cwd=repo, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    err = assert_clean_user_error(proc, 2)
    assert err.endswith(f"cd {repo} && python -m src.run stage=d92-5 seed=7"), err


def test_limit_module_not_on_the_path_is_pythons_own_error(repo: Path) -> None:
    """`cd conf && python -m src.run` without the repo on sys.path: Python fails before reading any
    project file (exit 1, one line, no traceback). Outside our reach (SECURITY.md)."""
    proc = subprocess.run([sys.executable, "-m", "src.run"], cwd=repo / "conf", env=clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "No module named 'src'" in proc.stderr and "Traceback" not in proc.stderr


# -- identity by content ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def replay_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("replay")
    repo = copy_repo(tmp / "repo")
    (repo / "data").mkdir()
    proc = run_cli(repo, "data/ticks.parquet", "stage=d92-5", "stage.duration_s=120", module="src.market.export")
    assert proc.returncode == 0, proc.stderr
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "link.parquet").symlink_to(repo / "data/ticks.parquet")
    (repo / "data" / "sub").mkdir()
    return repo


def test_one_replay_file_under_any_spelling_gives_one_fingerprint(replay_repo: Path) -> None:
    repo = replay_repo
    spellings = ["data/ticks.parquet", "./data/ticks.parquet", str(repo / "data/ticks.parquet"),
                 "data/sub/../ticks.parquet", str(repo.parent / "elsewhere" / "link.parquet")]
    fps, provs = set(), set()
    for i, path in enumerate(spellings):
        proc = run_cli(repo, "stage=d92-5", "stage.duration_s=120", f"run.id=sp{i}", "market=replay",
                       f"market.path={path}")
        assert proc.returncode in (0, 1), proc.stderr
        run = repo / "logs/d92-5" / f"sp{i}"
        meta = load_json(run / "runtime_meta.json")
        fps.add(meta["fingerprint"])
        provs.add((run / "provenance.json").read_bytes())
        # the path is recorded beside the content digest, outside the fingerprint
        assert meta["data"]["location"] == {"path": path, "resolved": str((repo / "data/ticks.parquet").resolve())}
        assert "path" not in meta["data"]["identity"] and meta["config"]["resolved"]["market"]["path"] == path
    assert len(fps) == 1 and len(provs) == 1, fps


# -- config files that resolve outside the repo ------------------------------------------------------

@pytest.mark.parametrize("rel", ["conf/zone_profile/default.yaml", "conf/costs/default.yaml", "conf/config.yaml",
                                 "conf/costs/bnb_discount.yaml", "conf/zone_profile"])
def test_config_file_linked_outside_the_repo_is_refused(rel: str, repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "outside" / Path(rel).name
    target.parent.mkdir()
    shutil.move(repo / rel, target)
    (repo / rel).symlink_to(target, target_is_directory=target.is_dir())
    err = assert_clean_user_error(run_cli(repo, "run.id=t"), 3)
    assert rel in err and str(target) in err and "outside the repo" in err, err
    assert run_folders(repo) == []


def test_config_link_inside_the_repo_is_allowed(repo: Path) -> None:
    (repo / "conf/zone_profile/mine.yaml").symlink_to("default.yaml")
    proc = run_cli(repo, "run.id=t", "zone_profile=mine")
    assert proc.returncode == 0, proc.stderr


def test_guard_refuses_a_module_with_a_foreign_loader_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    fake = types.ModuleType("src.zz_fake")
    fake.__file__ = str(REPO / "src/zz_fake.py")
    fake.__loader__ = object()
    monkeypatch.setitem(sys.modules, "src.zz_fake", fake)
    got = check_imports(REPO)["violations"]
    assert [v for v in got if "src.zz_fake" in v] == [
        f"module src.zz_fake loaded from {fake.__file__} by object, not from its .py source: only .py files "
        "under src/ may run; delete the extension module or import hook"], got
