"""Crashes and interrupts: SIGINT, SIGTERM and SIGKILL at every moment of a run.

A run goes: start-up (compose, purge, hardlock) -> claim the run folder -> record
(runtime_meta.json `running`) -> engine -> final write (kpi_summary.json, plots, final
runtime_meta.json). Each shot starts `python -m src.run` on a long workload in a temp
copy of the repo (a git checkout, so the record phase runs git too), waits for its
window -- a time before the folder exists (measured), the folder appearing, the record
appearing plus part of the measured engine time, or kpi_summary.json appearing -- and
sends its signal (once, twice, or to the whole process group as a terminal's Ctrl-C
does). After each: every JSON file parses, trades.jsonl holds whole lines, plot CSVs
are whole, the status fits the signal, the exit code fits the status, and no other
run's bytes changed. Runs killed with SIGKILL must show as `abandoned` in
`python -m src.compare --stage`. Injected crashes (engine, KPI summary, final write) end
`failed` with exit 4, one line on stderr and the traceback in run.log.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import GIT, REPO, copy_repo, load_json, run_cli
from stress.helpers import check_run_files, leftover_temp_files, snapshot

SUITE = "interrupts"
LONG = ("stage=d92-5", "universe=top100", "stage.duration_s=86400")
LONG_REFERENCE = ("stage=d92-5", "universe=top100", "stage.duration_s=7200", "engine=reference")
SHORTER = ("stage=d92-5", "universe=top100", "stage.duration_s=28800")  # the default suite's workload


@dataclass(frozen=True)
class Shot:
    sig: signal.Signals
    window: str  # startup | record | engine | final
    frac: float = 0.5  # where in the window (startup: of the time to the folder; engine: of the engine time)
    twice: bool = False  # a second signal 5 ms later (impatient Ctrl-C Ctrl-C)
    group: bool = False  # to the process group, as a terminal's Ctrl-C is
    reference: bool = False  # the reference engine (per-tick loop) instead of the fast one

    @property
    def id(self) -> str:
        parts = [self.sig.name, self.window, f"{self.frac:g}"]
        parts += ["twice"] * self.twice + ["group"] * self.group + ["reference"] * self.reference
        return "-".join(parts)


INT, TERM, KILL = signal.SIGINT, signal.SIGTERM, signal.SIGKILL
SHOTS = [
    *(Shot(s, "startup", f) for s in (INT, TERM) for f in (0.3, 0.6, 0.9)),
    Shot(KILL, "startup", 0.5), Shot(KILL, "startup", 0.95),
    Shot(INT, "record"), Shot(TERM, "record"), Shot(KILL, "record"), Shot(KILL, "record", 0.0),
    Shot(INT, "record", group=True),
    *(Shot(INT, "engine", f) for f in (0.1, 0.5, 0.9)),
    Shot(INT, "engine", 0.3, reference=True), Shot(INT, "engine", 0.8, reference=True),
    Shot(TERM, "engine", 0.2), Shot(TERM, "engine", 0.7), Shot(TERM, "engine", 0.5, reference=True),
    Shot(KILL, "engine", 0.2), Shot(KILL, "engine", 0.6), Shot(KILL, "engine", 0.5, reference=True),
    Shot(INT, "engine", 0.4, twice=True), Shot(INT, "engine", 0.6, twice=True, reference=True),
    Shot(INT, "engine", 0.5, group=True), Shot(TERM, "engine", 0.5, group=True),
    Shot(INT, "final"), Shot(INT, "final", group=True), Shot(TERM, "final"), Shot(TERM, "final", reference=True),
    Shot(KILL, "final"), Shot(KILL, "final", reference=True), Shot(INT, "final", twice=True),
]
FAST_SHOTS = [Shot(TERM, "engine", 0.5), Shot(KILL, "engine", 0.5), Shot(INT, "final")]


@dataclass
class Timing:
    to_folder_s: float  # start -> run folder exists
    engine_s: dict[bool, float]  # reference? -> engine seconds (runtime_meta -> kpi_summary)


class Bench:
    """A temp git checkout with one completed sibling run whose bytes must never change."""

    def __init__(self, root: Path) -> None:
        self.repo = copy_repo(root)
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=self.repo, check=True)
        subprocess.run([*GIT, "add", "-A"], cwd=self.repo, check=True, capture_output=True)
        subprocess.run([*GIT, "commit", "-qm", "project"], cwd=self.repo, check=True, capture_output=True)
        sib = run_cli(self.repo, "stage=d92-5", "run.id=sibling")
        assert sib.returncode == 0, sib.stderr
        self.stage = self.repo / "logs" / "d92-5"
        self.frozen: dict[str, dict[str, str]] = {"sibling": snapshot(self.stage / "sibling")}
        self.outcomes: Counter[str] = Counter()
        self.n = 0

    def start(self, args: tuple[str, ...], run_id: str, group: bool = False) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "src.run", *args, f"run.id={run_id}"], cwd=self.repo,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=group)

    def untouched(self) -> None:
        """Every earlier run folder holds exactly the bytes it held when its process ended."""
        for run_id, snap in self.frozen.items():
            assert snapshot(self.stage / run_id) == snap, f"run {run_id} was modified by a later run"


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60.0) -> bool:
    """Poll (every 0.2 ms) until `path` exists; False if the process ended first."""
    end = time.perf_counter() + timeout
    while not path.exists():
        if proc.poll() is not None or time.perf_counter() > end:
            return path.exists()
        time.sleep(0.0002)
    return True


def _send(proc: subprocess.Popen[str], shot: Shot) -> None:
    def one() -> None:
        try:
            os.killpg(proc.pid, shot.sig) if shot.group else proc.send_signal(shot.sig)
        except ProcessLookupError:
            pass
    one()
    if shot.twice:
        time.sleep(0.005)
        one()


def measure(bench: Bench) -> Timing:
    """Time to the run folder, and engine time of both engines, from one run each."""
    engine = {}
    to_folder = []
    for reference in (False, True):
        run_id = f"calibrate-{int(reference)}"
        t0 = time.perf_counter()
        proc = bench.start(LONG_REFERENCE if reference else LONG, run_id)
        run_dir = bench.stage / run_id
        assert _wait_for(run_dir, proc)
        to_folder.append(time.perf_counter() - t0)
        assert _wait_for(run_dir / "runtime_meta.json", proc)
        t1 = time.perf_counter()
        assert _wait_for(run_dir / "kpi_summary.json", proc)
        engine[reference] = time.perf_counter() - t1
        assert proc.wait(120) == 0
        bench.frozen[run_id] = snapshot(run_dir)
    return Timing(min(to_folder), engine)


def fire(bench: Bench, shot: Shot, timing: Timing, figures, workload: tuple[str, ...] = LONG) -> str:
    """One shot: start, wait for the window, signal, then check everything; returns the outcome."""
    bench.n += 1
    run_id = f"shot{bench.n:02d}-{shot.id}"
    run_dir = bench.stage / run_id
    proc = bench.start(LONG_REFERENCE if shot.reference else workload, run_id, shot.group)
    if shot.window == "startup":
        time.sleep(shot.frac * timing.to_folder_s)
    elif shot.window == "record":
        _wait_for(run_dir, proc)
    elif shot.window == "engine":
        if _wait_for(run_dir / "runtime_meta.json", proc):
            time.sleep(shot.frac * timing.engine_s[shot.reference])
    elif shot.window == "final":
        _wait_for(run_dir / "kpi_summary.json", proc)
    _send(proc, shot)
    out, err = proc.communicate(timeout=120)
    figures.add(SUITE, "signals sent", 2 if shot.twice else 1)
    outcome = _check(bench, shot, run_dir, proc.returncode, out, err)
    bench.frozen[run_id] = snapshot(run_dir) if run_dir.exists() else {}
    bench.untouched()
    bench.outcomes[outcome] += 1
    figures.add(SUITE, "runs with files intact, status and exit code consistent")
    return outcome


def _check(bench: Bench, shot: Shot, run_dir: Path, rc: int, out: str, err: str) -> str:
    where = f"{shot.id}: rc={rc}\nstdout: {out[-800:]}\nstderr: {err[-1500:]}"
    if "Traceback" in err:  # Python's own handler, before any project code ran: a limit (SECURITY.md)
        assert shot.sig == INT and rc == -INT and not run_dir.exists(), where
        assert f"{bench.repo}/src/" not in err, where
        return "SIGINT before any project code ran (Python's own traceback)"
    if not run_dir.exists():  # the signal landed before the run folder was claimed
        assert shot.window == "startup", where
        assert rc == {INT: 130, TERM: -TERM, KILL: -KILL}[shot.sig], where
        if shot.sig == INT:
            assert err.strip().count("\n") == 0 and "interrupted" in err, where
        return "before the run folder: nothing recorded"
    meta = check_run_files(run_dir)
    if shot.sig == KILL:
        assert rc == -KILL or (meta and meta["status"] == "completed" and rc in (0, 1)), where
        if meta is None:
            return "killed before the first record (no runtime_meta.json)"
        if meta["status"] == "running":
            return "killed while running (status running)"
        assert meta["status"] == "completed", where
        return "killed after the final record"
    assert meta is not None, f"{where}\nfolder without a record: {os.listdir(run_dir)}"
    assert not leftover_temp_files(run_dir), (where, leftover_temp_files(run_dir))
    status = meta["status"]
    if status == "interrupted":
        assert rc == 130 and ("status: interrupted" in out or "(status interrupted)" in err), where
        if shot.twice and meta.get("error"):
            assert "second signal" in meta["error"], meta["error"]
            return "interrupted twice (record kept, KPIs of the first stop lost)"
        assert meta["interrupted_by"] == shot.sig.name, where
        kpi = load_json(run_dir / "kpi_summary.json")
        lines = (run_dir / "trades.jsonl").read_text().splitlines()
        assert kpi["round_trips"] == len(lines), where
        return "interrupted (KPIs for what happened)"
    assert status == "completed", where
    # The signal came after the engine's last tick: the results are whole, and the record says so.
    assert meta["interrupted_by"] in (shot.sig.name, None), where
    if meta["interrupted_by"] is None:  # after the record was complete: the process died printing
        assert rc in (0, 1, 130, -TERM), where
    else:
        assert rc in (0, 1), where
    return "completed (signal after the engine's last tick)"


def _abandoned_in_compare(bench: Bench) -> dict[str, str]:
    proc = run_cli(bench.repo, "--stage", "d92-5", "--json", module="src.compare")
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    rows = json.loads(proc.stdout)["runs"]
    return {r["run"]: r["status"] for r in rows}


def _compare_listing(bench: Bench, figures) -> None:
    shown = _abandoned_in_compare(bench)
    for run_dir in sorted(p for p in bench.stage.iterdir() if p.is_dir()):
        meta_p = run_dir / "runtime_meta.json"
        status = load_json(meta_p)["status"] if meta_p.exists() else None
        if status in (None, "running"):  # every such process is gone by now
            assert shown.get(run_dir.name) == "abandoned", (run_dir.name, shown.get(run_dir.name))
            figures.add(SUITE, "killed runs shown as abandoned by compare")
        else:
            assert shown.get(run_dir.name) == status, (run_dir.name, status, shown.get(run_dir.name))


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return Bench(tmp_path_factory.mktemp("interrupts") / "repo")


def test_interrupts_fast(bench: Bench, figures) -> None:
    """A few shots with assumed timings (the slow test measures them)."""
    timing = Timing(to_folder_s=0.3, engine_s={False: 0.5, True: 2.0})
    for shot in FAST_SHOTS:
        fire(bench, shot, timing, figures, SHORTER)
    _compare_listing(bench, figures)


@pytest.mark.slow
def test_interrupts_at_every_moment(bench: Bench, figures) -> None:
    timing = measure(bench)
    print(f"\ntimings: folder after {timing.to_folder_s:.3f} s, engine {timing.engine_s[False]:.2f} s (fast), "
          f"{timing.engine_s[True]:.2f} s (reference)")
    for shot in SHOTS:
        fire(bench, shot, timing, figures)
    _compare_listing(bench, figures)
    for outcome, n in sorted(bench.outcomes.items()):
        figures.add(SUITE, f"outcome: {outcome}", n)
    assert len(SHOTS) >= 30


def test_interrupted_run_is_refused_by_recheck_and_not_nondeterminism(bench: Bench, figures) -> None:
    """Ctrl-C mid-run: exit 130, `interrupted`; re-check refuses it; compare does not call it nondeterminism.

    A completed and an interrupted run of the same inputs share a fingerprint, not KPIs.
    """
    # LONG: with the ahead-of-time kernel (no numba to load) SHORTER's engine phase can end within
    # the 0.15 s below; the 24 h session's market alone takes ~0.4 s
    done = run_cli(bench.repo, *LONG, "run.id=whole", timeout=120)
    assert done.returncode in (0, 1), done.stderr
    proc = bench.start(LONG, "cut")
    assert _wait_for(bench.stage / "cut" / "runtime_meta.json", proc)
    time.sleep(0.15)
    proc.send_signal(INT)
    out, _err = proc.communicate(timeout=60)
    figures.add(SUITE, "signals sent")
    assert proc.returncode == 130 and "status: interrupted" in out
    assert check_run_files(bench.stage / "cut")["status"] == "interrupted"
    for r in ("whole", "cut"):
        bench.frozen[r] = snapshot(bench.stage / r)
    figures.add(SUITE, "runs with files intact, status and exit code consistent")
    check = run_cli(bench.repo, "logs/d92-5/cut", module="src.acceptance")
    assert check.returncode == 1 and "not a completed run" in check.stdout, check.stdout + check.stderr
    cmp = run_cli(bench.repo, "whole", "cut", "--json", module="src.compare")
    rep = json.loads(cmp.stdout)
    assert rep["same_fingerprint"] and not rep["kpis_equal"] and rep["not_results"] == ["cut"]
    assert not rep["nondeterminism"] and cmp.returncode == 0, cmp.stdout[:2000]
    bench.untouched()


def test_folder_without_a_record_is_listed_as_abandoned(bench: Bench) -> None:
    """SIGKILL between claiming the folder and the first record leaves run.log or nothing: abandoned, not an error."""
    orphan, empty = bench.stage / "orphan", bench.stage / "empty"
    orphan.mkdir()
    (orphan / "run.log").touch()
    empty.mkdir()  # killed between making the folder and opening run.log
    try:
        shown = _abandoned_in_compare(bench)
        assert shown["orphan"] == shown["empty"] == "abandoned" and shown["sibling"] == "completed"
    finally:
        (orphan / "run.log").unlink()
        orphan.rmdir()
        empty.rmdir()


def test_ctrl_c_while_the_entry_module_loads(tmp_path: Path) -> None:
    """SIGINT during src/run.py's own imports: one line and exit 130, not a traceback."""
    repo = copy_repo(tmp_path / "repo")
    paths = repo / "src/runs/paths.py"
    paths.write_text(paths.read_text().replace("import re\n", "import re\nimport time\ntime.sleep(3)\n", 1))
    proc = subprocess.Popen([sys.executable, "-m", "src.run"], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # inside the sleep that src/runs/paths.py now does at import
    proc.send_signal(INT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip() == "interrupted before the run started: nothing was run"
    assert not any((repo / "logs").iterdir())


def test_signal_while_the_folder_is_claimed_is_recorded(tmp_path: Path) -> None:
    """SIGINT just after the run folder is made (a slow disk, here a sleep): recorded `interrupted`.

    Before the handlers were installed ahead of the claim, this left a folder holding only
    run.log and the message "nothing was run".
    """
    repo = copy_repo(tmp_path / "repo")
    ex = repo / "src/runs/claim.py"
    text = ex.read_text()
    claim = "        paths.run_dir.mkdir()\n        return True\n"
    assert claim in text
    ex.write_text(text.replace(claim, "        paths.run_dir.mkdir()\n        __import__('time').sleep(1)\n"
                                      "        return True\n", 1))
    proc = subprocess.Popen([sys.executable, "-m", "src.run", "run.id=slowdisk"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for(repo / "logs/d92-5/slowdisk", proc)
    time.sleep(0.2)
    proc.send_signal(INT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, (out, err)
    meta = check_run_files(repo / "logs/d92-5/slowdisk")
    assert meta is not None and meta["status"] == "interrupted" and meta["interrupted_by"] == "SIGINT"


def test_ctrl_c_inside_omegaconf_is_an_interrupt_not_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chain seen from a real Ctrl-C during composition: OmegaConf's error over the interrupt."""
    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import ConfigKeyError

    import src.config.loader as loader

    def compose(**_kw):  # noqa: ANN202
        try:
            try:
                try:
                    raise KeyboardInterrupt
                finally:
                    None._invalidate_flags_cache()  # type: ignore[attr-defined]  # what a half-built node does
            except AttributeError as exc:
                raise ConfigKeyError(str(exc))
        except ConfigKeyError as exc:
            raise ConfigCompositionException("composition failed") from exc

    monkeypatch.setattr(loader, "compose", compose)
    with pytest.raises(KeyboardInterrupt):
        loader.load_config([], REPO)


@pytest.mark.slow
def test_ctrl_c_while_composing_never_exits_as_bad_config(tmp_path: Path, figures) -> None:
    """30 Ctrl-C at random moments of start-up: exit 130 (or Python's own, before project code), never 2."""
    repo = copy_repo(tmp_path / "repo")
    rng = random.Random(6)
    codes: Counter[int] = Counter()
    for _ in range(30):
        proc = subprocess.Popen([sys.executable, "-m", "src.run", "run.id=x"], cwd=repo, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.1, 0.45))
        proc.send_signal(INT)
        _out, err = proc.communicate(timeout=60)
        figures.add(SUITE, "signals sent")
        codes[proc.returncode] += 1
        assert proc.returncode in (130, -INT, 0), (proc.returncode, err)
        if proc.returncode == 130:
            assert "Traceback" not in err, err
        shutil.rmtree(repo / "logs" / "d92-5", ignore_errors=True)
    figures.add(SUITE, "start-up interrupts reported as a config error", codes[2])


# -- injected crashes -----------------------------------------------------------------------

CRASHES = {
    "engine": ("src/engine/loop.py", '''

_run_session = run_session


def run_session(market, params, on_trade, should_stop=lambda: False):  # injected by the stress test
    n = [0]

    def trade(t):
        n[0] += 1
        if n[0] > 5:
            raise RuntimeError("injected engine crash after 5 trades")
        on_trade(t)
    return _run_session(market, params, trade, should_stop)
'''),
    "kpi": ("src/engine/kpi.py", '''

def summarize(*args, **kwargs):  # injected by the stress test
    raise ZeroDivisionError("injected crash in the KPI summary")
'''),
    "final-write": ("src/runner/plotdata.py", '''

def write_plot_data(*args, **kwargs):  # injected by the stress test
    raise OSError(28, "No space left on device (injected)")
'''),
}


@pytest.mark.parametrize("where", [w if w == "engine" else pytest.param(w, marks=pytest.mark.slow)
                                   for w in sorted(CRASHES)])
def test_injected_crash_ends_failed(where: str, tmp_path: Path, figures) -> None:
    repo = copy_repo(tmp_path / "repo")
    sib = run_cli(repo, "run.id=sibling")
    assert sib.returncode == 0, sib.stderr
    before = snapshot(repo / "logs/d92-5/sibling")
    rel, patch = CRASHES[where]
    with open(repo / rel, "a") as fh:
        fh.write(patch)
    figures.add(SUITE, "crashes injected")
    proc = run_cli(repo, "run.id=crash")
    run_dir = repo / "logs/d92-5/crash"
    assert proc.returncode == 4, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("error: run failed:") and "\n" not in err and "run.log" in err, err
    meta = check_run_files(run_dir)
    assert meta is not None and meta["status"] == "failed" and "injected" in meta["error"], meta
    log = (run_dir / "run.log").read_text()
    assert "Traceback" in log and "injected" in log
    assert not leftover_temp_files(run_dir)
    if where == "engine":
        assert len((run_dir / "trades.jsonl").read_text().splitlines()) == 5
    if where == "final-write":
        assert load_json(run_dir / "kpi_summary.json")["round_trips"] >= 1  # what was recorded stays
    assert snapshot(repo / "logs/d92-5/sibling") == before
    figures.add(SUITE, "crashes ending failed, exit 4, one line, traceback in run.log")
