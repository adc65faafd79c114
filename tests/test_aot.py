"""The ahead-of-time engine module (src/engine/aot.py): loaded without numba, built for a generic
CPU with no fused multiply-add, accepted by the import hardlock only as exactly the file (and
digest) that was loaded, and never loaded when its bytes are not the build's.

(An edit to a kernel source that keeps size and mtime rebuilds it: tests/test_kernel.py's
test_an_edit_keeping_size_and_mtime_recompiles_and_results_follow, slow.) The set-up command,
`python -m src.engine.build`, and a run that finds no module: the tests at the end.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, clean_env, load_json, run_cli, run_dir_of


def _py(code: str, cwd: Path = REPO, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                         env=clean_env(**env), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


_LOAD = r"""
import json, sys
sys.path.insert(0, ".")
from src.engine import aot
e = aot.engine()
# peak RSS of this process image (VmHWM; ru_maxrss keeps the forking parent's peak across exec)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"aot": e.aot, "numba": "numba" in sys.modules, "llvmlite": "llvmlite" in sys.modules,
                  "record": aot.record(), "key": aot.key(), "mod": sys.modules[aot.MODULE].__file__,
                  "rss_mb": hwm}))
"""


def test_the_module_loads_without_numba_and_is_recorded() -> None:
    got = _py(_LOAD)
    assert got["aot"] and not got["numba"] and not got["llvmlite"], got
    rec, key = got["record"], got["key"]
    assert key["cpu_name"] == "generic" and rec["key"] == key["key"]
    assert rec["path"] == f"{key['dir']}/aot/{rec['file']}" and Path(got["mod"]) == REPO / rec["path"]
    assert rec["sha256"] == hashlib.sha256((REPO / rec["path"]).read_bytes()).hexdigest()
    assert got["rss_mb"] < 60, got  # numpy and the module: numba alone costs ~85 MB


def test_the_module_is_generic_code_without_fused_multiply_add() -> None:
    """Built for the generic x86-64 CPU: no FMA (so no contraction can change a bit) and no AVX registers."""
    rec = _py(_LOAD)["record"]
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(REPO / rec["path"])], capture_output=True,
                         text=True, check=True).stdout
    assert "run_ticks" in asm or len(asm) > 100_000
    assert not re.findall(r"\bvfn?m(?:add|sub)", asm)
    assert not re.findall(r"%[yz]mm\d", asm)  # a host (AVX) build would use them
    # each of the five entry points releases the GIL (trades.jsonl is written while the kernel runs)
    assert len(re.findall(r"call.*<PyEval_SaveThread", asm)) == len(rec["exports"]) == 5  # hook: pcg - draw


_GUARD = r"""
import hashlib, json, os, shutil, sys
from importlib.machinery import ExtensionFileLoader
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
sys.path.insert(0, ".")
from src.engine import aot
from src.provenance.guard import check_imports
root = Path(".").resolve()
aot.engine()
out = {"loaded": check_imports(root)["violations"]}
so = Path(aot.loaded_file()[0])
real = sys.modules[aot.MODULE]
other = root / ".cache" / "elsewhere" / so.name  # the same bytes, from another file under the repo
other.parent.mkdir(parents=True)
shutil.copyfile(so, other)
loader = ExtensionFileLoader(aot.MODULE, str(other))
mod = module_from_spec(spec_from_file_location(aot.MODULE, other, loader=loader))
loader.exec_module(mod)
sys.modules[aot.MODULE] = mod
out["elsewhere"] = check_imports(root)["violations"]
sys.modules[aot.MODULE] = real
out["back"] = check_imports(root)["violations"]
sys.modules["src.engine._other_kernel"] = real  # the right file under another module name
out["renamed"] = check_imports(root)["violations"]
del sys.modules["src.engine._other_kernel"]
data = bytearray(so.read_bytes())
data[-1] ^= 1  # another digest at the loaded path (a new file: the loaded copy stays mapped)
tmp = so.with_suffix(".new")
tmp.write_bytes(bytes(data))
os.replace(tmp, so)
out["tampered"] = check_imports(root)["violations"]
print(json.dumps(out))
"""


def test_the_hardlock_accepts_exactly_the_loaded_file_and_digest(repo: Path) -> None:
    got = _py(_GUARD, cwd=repo)
    assert got["loaded"] == [] and got["back"] == [], got
    for case in ("elsewhere", "renamed", "tampered"):
        assert len(got[case]) == 1 and "ExtensionFileLoader" in got[case][0], (case, got[case])
    assert ".cache/elsewhere" in got["elsewhere"][0]


def test_a_module_whose_bytes_are_not_the_builds_is_never_loaded(repo: Path) -> None:
    """The run falls back to numba's JIT (same bytes out) and its record says why."""
    rec = _py(_LOAD, cwd=repo)["record"]
    so = repo / rec["path"]
    data = bytearray(so.read_bytes())
    data[-1] ^= 1
    so.write_bytes(bytes(data))
    proc = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=t", timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_dir = run_dir_of(proc, repo)
    kernel = load_json(run_dir / "runtime_meta.json")["engine"]["kernel"]
    assert kernel["aot"]["used"] is False and "SHA-256" in kernel["aot"]["error"], kernel["aot"]
    assert kernel["cache"]["cpu_name"] != "generic"  # the JIT's key, for this CPU
    golden = REPO / "tests/golden"
    assert (run_dir / "kpi_summary.json").read_text() == (golden / "d92-5_kpi_summary.json").read_text()
    assert hashlib.sha256((run_dir / "trades.jsonl").read_bytes()).hexdigest() == \
        (golden / "d92-5_trades.sha256").read_text().strip()


# --- the set-up build (python -m src.engine.build) and a run that finds no module -------------------

BUILD = ("-m", "src.engine.build")


def _build(repo: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *BUILD], cwd=repo, capture_output=True, text=True, timeout=600,
                          env=clean_env(**env))


def _aot_key(repo: Path) -> str:
    return _py("import json, sys; sys.path.insert(0, '.'); from src.engine import aot; print(json.dumps(aot.key()))",
               cwd=repo)["key"]


def _kernel_rec(proc: subprocess.CompletedProcess[str], repo: Path) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_json(run_dir_of(proc, repo) / "runtime_meta.json")["engine"]["kernel"]


def _golden(proc: subprocess.CompletedProcess[str], repo: Path) -> None:
    run_dir, golden = run_dir_of(proc, repo), REPO / "tests/golden"
    assert (run_dir / "kpi_summary.json").read_text() == (golden / "d92-5_kpi_summary.json").read_text()
    assert hashlib.sha256((run_dir / "trades.jsonl").read_bytes()).hexdigest() == \
        (golden / "d92-5_trades.sha256").read_text().strip()


def _drop_module(repo: Path) -> str:
    key = _aot_key(repo)
    shutil.rmtree(repo / f".cache/numba/{key}/aot", ignore_errors=True)
    return key


@pytest.mark.slow
def test_build_command_builds_once_then_up_to_date_and_runs_use_it(repo: Path) -> None:
    """Builds; a second call is "up to date"; a run then loads it (built by this run: false), says nothing on
    stderr; an edit to a kernel source keeping its size and mtime: the command builds again, under a new key."""
    key = _drop_module(repo)
    first = _build(repo)
    assert first.returncode == 0 and first.stdout.startswith("built .cache/numba/"), first.stdout + first.stderr
    so = f".cache/numba/{key}/aot/_aot_kernel"
    assert so in first.stdout and re.search(r" in \d+\.\d s ", first.stdout), first.stdout
    again = _build(repo)
    assert again.returncode == 0 and again.stdout.startswith(f"up to date: {so}"), again.stdout + again.stderr
    proc = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=a")
    rec = _kernel_rec(proc, repo)["aot"]
    assert rec["used"] and rec["built"] is False and rec["key"] == key and "note:" not in proc.stderr, rec
    _golden(proc, repo)
    src = repo / "src/engine/kernel.py"  # the same edit as test_kernel.py's: size and mtime kept
    text, st_ = src.read_text(), src.stat()
    old = "rec.entry_spread_bps = py_round(pf[P_SPREAD], 1e4) + 0.0"
    src.write_text(text.replace(old, old.replace("1e4", "1e1")))
    os.utime(src, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    edited = _build(repo)
    new_key = _aot_key(repo)
    assert new_key != key and edited.returncode == 0, edited.stderr
    assert edited.stdout.startswith(f"built .cache/numba/{new_key}/aot/"), edited.stdout


@pytest.mark.slow
def test_two_builds_at_once_build_once(repo: Path) -> None:
    """The lock: one builds, the other waits and finds it up to date; one module, no leftover build folder."""
    key = _drop_module(repo)
    procs = [subprocess.Popen([sys.executable, *BUILD], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=clean_env()) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    firsts = sorted(o[0].split(" ", 1)[0] for o in outs)
    assert firsts == ["built", "up"], outs
    assert "built by another process while this one waited" in next(o[0] for o in outs if o[0].startswith("up"))
    assert sorted(p.name for p in (repo / f".cache/numba/{key}").iterdir()) == ["aot", "aot.lock"]


def test_build_command_takes_no_arguments(repo: Path) -> None:
    proc = subprocess.run([sys.executable, *BUILD, "--force"], cwd=repo, capture_output=True, text=True,
                          env=clean_env(), timeout=120)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.startswith("error: ") and len(proc.stderr.splitlines()) == 1 and "--force" in proc.stderr


@pytest.mark.parametrize("how", ["CC", "PATH"])
def test_build_without_a_c_compiler_says_so_and_warms_the_jit(repo: Path, tmp_path: Path, how: str) -> None:
    _drop_module(repo)
    env = {"CC": "/nowhere/gcc"} if how == "CC" else {"PATH": str(tmp_path / "empty-bin")}
    proc = _build(repo, **env)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: "), proc.stderr
    assert "no C compiler" in lines[0] and ("'/nowhere/gcc'" if how == "CC" else "'gcc'") in lines[0]
    assert "runs will use numba's JIT" in lines[0] and "cache is warm (.cache/numba/" in lines[0]
    assert not (repo / f".cache/numba/{_aot_key(repo)}/aot").exists()


def test_a_run_without_the_module_and_a_compiler_says_so_in_one_line_and_uses_the_jit(repo: Path) -> None:
    """No module for this source and no compiler: the JIT runs (same bytes), one line on stderr says what
    happens and the command that does it ahead, runtime_meta.json records it; no build is started."""
    key = _drop_module(repo)
    proc = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=a", env=clean_env(CC="/nowhere/gcc"), timeout=300)
    rec = _kernel_rec(proc, repo)
    notes = [ln for ln in proc.stderr.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1 and key in notes[0] and "numba's JIT" in notes[0], proc.stderr
    assert "no C compiler" in notes[0] and "python -m src.engine.build" in notes[0], notes
    assert rec["aot"] == {"used": False, "built": False, "missing": True, "key": key, "background_build": False,
                          "error": "no C compiler: '/nowhere/gcc' not found on PATH"}, rec["aot"]
    assert rec["cache"]["cpu_name"] != "generic"
    _golden(proc, repo)
    assert not (repo / f".cache/numba/{key}/aot").exists() and not (repo / f".cache/numba/{key}/aot-build.log").exists()


def test_a_run_after_a_failed_build_does_not_start_another(repo: Path) -> None:
    key = _drop_module(repo)
    (repo / f".cache/numba/{key}").mkdir(parents=True, exist_ok=True)
    (repo / f".cache/numba/{key}/aot-failed.json").write_text(json.dumps({"key": key, "error": "pycc: boom"}))
    proc = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=a", timeout=300)
    rec = _kernel_rec(proc, repo)["aot"]
    assert rec["background_build"] is False and rec["error"] == "pycc: boom", rec
    assert "its last build failed (pycc: boom)" in proc.stderr
    assert not (repo / f".cache/numba/{key}/aot-build.log").exists()


@pytest.mark.slow
def test_a_run_without_the_module_uses_the_jit_and_builds_it_for_the_next_run(repo: Path) -> None:
    from test_kernel import wait_for_build

    key = _drop_module(repo)
    first = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=a", timeout=300)
    rec = _kernel_rec(first, repo)["aot"]
    assert rec == {"used": False, "built": False, "missing": True, "key": key, "background_build": True}, rec
    notes = [ln for ln in first.stderr.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1 and "built in the background when this run ends" in notes[0], first.stderr
    _golden(first, repo)
    wait_for_build(repo, key)
    assert (repo / f".cache/numba/{key}/aot-build.log").read_text().startswith("built ")
    second = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=b")
    rec = _kernel_rec(second, repo)["aot"]
    assert rec["used"] and rec["built"] is False and "note:" not in second.stderr, rec
    _golden(second, repo)


@pytest.mark.slow
def test_a_failed_build_with_a_compiler_exits_4_and_a_run_then_starts_no_other(repo: Path) -> None:
    """A compiler that fails (CC=false): exit 4, one `error:` line, the JIT warmed all the same, the failure
    kept (aot-failed.json) so a run uses the JIT without starting a build that would fail again."""
    key = _drop_module(repo)
    proc = _build(repo, CC=shutil.which("false") or "/bin/false")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the compiled engine module was not built"), proc.stderr
    assert "runs will use numba's JIT" in lines[0]
    assert not (repo / f".cache/numba/{key}/aot").exists()
    assert [p.name for p in (repo / f".cache/numba/{key}").iterdir() if p.name.startswith("build-")] == []
    failed = json.loads((repo / f".cache/numba/{key}/aot-failed.json").read_text())
    run = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=a", timeout=300)
    rec = _kernel_rec(run, repo)["aot"]
    assert rec["background_build"] is False and rec["error"] == failed["error"][:500], rec
    again = _build(repo)  # the command retries, and a success clears the failure
    assert again.returncode == 0 and again.stdout.startswith("built "), again.stderr
    assert not (repo / f".cache/numba/{key}/aot-failed.json").exists()


def test_a_run_while_a_build_holds_the_lock_uses_the_jit_and_starts_no_other(repo: Path) -> None:
    import fcntl

    key = _drop_module(repo)
    lock = repo / f".cache/numba/{key}/aot.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running `python -m src.engine.build` holds it
        proc = run_cli(repo, "stage=d92-5", "engine=kernel", "run.id=a", timeout=300)
    rec = _kernel_rec(proc, repo)["aot"]
    assert rec == {"used": False, "built": False, "missing": True, "key": key, "background_build": False}, rec
    assert "a build is under way" in proc.stderr
    assert not (repo / f".cache/numba/{key}/aot-build.log").exists()
    _golden(proc, repo)
