"""The ahead-of-time engine module (src/engine/aot.py): loaded without numba, built for a generic
CPU with no fused multiply-add, accepted by the import hardlock only as exactly the file (and
digest) that was loaded, and never loaded when its bytes are not the build's.

(An edit to a kernel source that keeps size and mtime rebuilds it: tests/test_kernel.py's
test_an_edit_keeping_size_and_mtime_recompiles_and_results_follow, slow.)
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

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
    # each of the four entry points releases the GIL (trades.jsonl is written while the kernel runs)
    assert len(re.findall(r"call.*<PyEval_SaveThread", asm)) == len(rec["exports"]) == 4


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
