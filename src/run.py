"""Entry point: `python -m src.run [overrides]` -- compose -> guard -> execute -> record -> check.

Exit codes: 0 all gates passed; 1 a gate failed; 2 bad usage, config or input (nothing
run); 3 import provenance refused (nothing run); 4 the run crashed (status failed);
130 interrupted (status interrupted, KPIs for what happened).
"""
from __future__ import annotations

import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from src.config.loader import LoadedConfig

# A run writes no bytecode: every project module compiles from source anyway (the purge deletes
# the caches, SECURITY.md), so a written .pyc only costs this run its writes and the next its purge.
sys.dont_write_bytecode = True

# Ctrl-C is Python's KeyboardInterrupt from the first line on, even when this process was
# started with SIGINT ignored; main() has it remembered (src/runner/interrupt.py says why).
signal.signal(signal.SIGINT, signal.default_int_handler)


def _how_to_run() -> str | None:
    """None when run as `python -m src.run` from a repo root; else the one line that says how to run.

    Run as a script (`python src/run.py`), `src` is not importable; run as a module from
    another folder (the package found on PYTHONPATH), the run's root would not be the cwd.
    """
    from pathlib import Path

    cwd = Path.cwd().resolve()
    if __spec__ is not None and (cwd / "conf" / "config.yaml").is_file():
        return None  # a repo root (if `src` came from another checkout, the hardlock refuses it: exit 3)
    import shlex

    here = Path(__file__).resolve().parents[1]  # the folder holding this package
    where = shlex.quote(str(here)) if (here / "conf" / "config.yaml").is_file() else "<repo root>"
    why = "src/run.py is a module, not a script" if __spec__ is None else f"no conf/config.yaml in {cwd}"
    return (f"error: {why}: run it from the repository root, as a module: cd {where} && "
            f"{shlex.join(['python', '-m', 'src.run', *sys.argv[1:]])}")


def _load_from_source(names: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """Make the pre-purge modules load from their .py source: refuse any other loader (exit 3),
    delete their bytecode before importing them. Returns (error line or None, names made fresh)."""
    import os
    from importlib.machinery import SourceFileLoader
    from importlib.util import find_spec

    fresh, ours = [], os.path.join(os.path.realpath(os.getcwd()), "src", "")
    for name in names:  # parents first: find_spec imports a module's parent package
        loaded = name in sys.modules
        spec = find_spec(name)
        if spec is not None and (type(spec.loader) is not SourceFileLoader or not str(spec.origin).endswith(".py")):
            return (f"error: import provenance refused: module {name} would load from {spec.origin} "
                    f"({type(spec.loader).__name__}), not from its .py source: "
                    "delete that extension module or bytecode"), fresh
        if spec is None or loaded or not os.path.realpath(spec.origin).startswith(ours):
            continue  # missing: the import says so; loaded before us: preflight compares it; elsewhere: refused later
        try:
            if spec.cached:
                os.unlink(spec.cached)
        except FileNotFoundError:
            pass
        except OSError:
            continue  # not deletable: preflight compares it with its source instead
        fresh.append(name)
    return None, fresh


# The stdlib only, above: `python -m src.run` imports these modules before it can purge the
# bytecode caches, so their bytecode is deleted first and they compile from source; `preflight`
# then checks that src/__init__.py and this file ran from their source (SECURITY.md). Every
# other project module is imported after the purge, from source.
_PRE_PURGE = ("src.provenance", "src.provenance.preflight", "src.provenance.purge", "src.runs", "src.runs.paths")


def _start() -> None:
    """Before any other project module: exit 2 if not run from a repo root, exit 3 (or one
    restart from purged caches) if the code already running is not its recorded source."""
    if _msg := _how_to_run():
        print(_msg, file=sys.stderr)
        sys.exit(2)  # ExitCode.USAGE: literals here, where only the stdlib may be imported yet
    _msg, _fresh = _load_from_source(_PRE_PURGE)
    if _msg:
        print(_msg, file=sys.stderr)
        sys.exit(3)  # ExitCode.PROVENANCE
    from pathlib import Path

    from src.provenance.preflight import preflight
    from src.provenance.purge import purge_bytecode  # noqa: F401  (loaded now: preflight checks them too)
    from src.runs.paths import find_repo_root  # noqa: F401
    preflight(Path.cwd().resolve(), fresh=_fresh)


def main(argv: list[str] | None = None) -> int:
    """Hydra's command line (src.config.hydra_app): a run, a sweep (-m), or a show command
    (--help, --cfg, --info, ...) that Hydra itself answers and that runs nothing.
    The purge comes first on every path, before any project module that composes or runs."""
    from src.provenance.purge import purge_bytecode
    from src.runs.paths import RepoRootError, find_repo_root

    argv = list(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    try:
        root = find_repo_root()
    except RepoRootError as exc:
        return _usage_error(str(exc))
    purge = purge_bytecode(root)
    t_purge = time.perf_counter() - t0
    # Overrides only (no flag): a single run, whose config may come from the config cache
    # without importing Hydra (src/config/cache.py); flags, sweeps and show commands go to Hydra.
    plain = not any(a.startswith("-") for a in argv)
    try:
        from src.runner.interrupt import PROCESS as interrupts
        interrupts.remember_sigint()
        if plain:
            from src.config.cache import lookup
            loaded = lookup(root, argv)
            if interrupts.sigint_seen:  # a Ctrl-C while reading it: nothing was run
                raise KeyboardInterrupt
            if loaded is not None:
                return _execute(loaded, argv, purge, t0, t_purge)
        from src.config.cache import load as load_cached
        from src.config.hydra_app import HydraUsageError, parse, show
        from src.config.loader import ConfigError, load_config
    except ImportError as exc:
        return _import_error(exc)
    try:
        cli = parse(argv)
    except HydraUsageError as exc:
        return _usage_error(str(exc))
    if isinstance(cli, int):  # --version
        return cli
    if cli.shows:
        return show(cli, root)
    if cli.multirun:
        from src.sweep import multirun
        return multirun(argv)

    try:
        loaded = load_cached(root, cli.overrides) if plain else load_config(cli.overrides, root)
    except ConfigError as exc:
        if interrupts.sigint_seen:
            raise KeyboardInterrupt from exc
        return _usage_error(str(exc))
    return _execute(loaded, argv, purge, t0, t_purge)


def _execute(loaded: LoadedConfig, argv: list[str], purge: dict, t0: float, t_purge: float) -> int:
    try:
        from src.runner.execute import execute
    except ImportError as exc:
        return _import_error(exc)
    return execute(loaded, argv, purge, t_start=t0, t_purge=t_purge).exit_code


def _usage_error(msg: str) -> int:
    from src.exitcodes import ExitCode

    print(f"error: {msg}", file=sys.stderr)
    return ExitCode.USAGE


def _import_error(exc: ImportError) -> int:
    """A project module with no source left (its bytecode was purged), or a missing dependency."""
    from src.provenance.purge import PACKAGE

    name = exc.name or ""
    if name.split(".")[0] != PACKAGE:
        return _usage_error(f"{exc}: install the dependencies listed in pyproject.toml")
    print(f"error: import provenance refused: {exc}: its source file is missing from this checkout; "
          f"restore it (e.g. git checkout -- {name.replace('.', '/')}.py)", file=sys.stderr)
    from src.exitcodes import ExitCode

    return ExitCode.PROVENANCE


def _interrupted(exc: BaseException) -> None:
    """Ctrl-C before the run folder existed (after it, execute records it): one line, exit 130.
    Returns (for the caller to re-raise) when `exc` is a plain error that no Ctrl-C caused."""
    from src.runner.interrupt import PROCESS, exit_before_run

    if isinstance(exc, KeyboardInterrupt) or PROCESS.sigint_seen:
        exit_before_run()


def _exit_now(rc: int) -> None:
    """Exit without the interpreter's teardown (it frees every module and object one by one:
    ~30-60 ms after a run, for nothing). What that exit does which matters is done here first,
    in its order: non-daemon threads joined (thread pools' workers too), atexit handlers run
    (logging's flush and close, a deferred compiled-module build, temporary folders), stdout
    and stderr flushed. A flush that fails (a closed pipe) leaves by the ordinary exit instead,
    with the same code and quietly (src.exitcodes.exit_with)."""
    from src.exitcodes import exit_with  # hook: pipes

    monitoring = getattr(sys, "monitoring", None)  # Python 3.12+: cProfile and coverage may register here
    observed = monitoring is not None and any(monitoring.get_tool(i) is not None for i in range(6))
    if not isinstance(rc, int) or observed or sys.getprofile() is not None or sys.gettrace() is not None:
        exit_with(rc)  # a profiler or tracer (cProfile, coverage) writes its data once we return
    import atexit
    import os
    import threading

    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter's exit calls first
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()  # runs each handler once and clears them: the ordinary exit won't rerun them
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        exit_with(rc)  # a reader gone (`| head`): same exit code, no traceback
    os._exit(int(rc))


if __name__ == "__main__":
    try:
        _start()
        _rc = main()
        # The run is recorded and reported: keep a Ctrl-C pending until we exit (interrupt.py).
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        _exit_now(_rc)
    except BrokenPipeError:  # output piped into `head`: the run itself is recorded already
        from src.exitcodes import stdout_gone  # hook: pipes (else the last flush raises again)

        stdout_gone()
        sys.exit(0)  # ExitCode.OK
    except (Exception, KeyboardInterrupt) as _exc:
        _interrupted(_exc)
        raise
