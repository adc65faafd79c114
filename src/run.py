"""Entry point: `python -m src.run [overrides]` -- compose -> guard -> execute -> record -> check.

Exit codes: 0 all gates passed; 1 a gate failed; 2 bad usage, config or input (nothing
run); 3 import provenance refused (nothing run); 4 the run crashed (status failed);
130 interrupted (status interrupted, KPIs for what happened).
"""
from __future__ import annotations

import signal
import sys
import time

_SIGINT_SEEN = False


def _on_sigint(_signum: int, _frame: object) -> None:
    """Python's own behaviour (KeyboardInterrupt), remembered: an interrupt that lands inside
    Hydra/OmegaConf can surface as some other error from a half-updated object, and must
    still end as an interrupt (exit 130), never as a config error or a traceback."""
    global _SIGINT_SEEN
    _SIGINT_SEEN = True
    raise KeyboardInterrupt


signal.signal(signal.SIGINT, _on_sigint)

# Only the stdlib and the purge run before the bytecode caches are gone: every other
# project module is imported afterwards, from source.
try:
    from src.provenance.purge import purge_bytecode
    from src.runs.paths import RepoRootError, find_repo_root
except KeyboardInterrupt:  # Ctrl-C while this module loads: as in __main__ below, nothing was run
    print("interrupted before the run started: nothing was run", file=sys.stderr, flush=True)
    # os._exit, not sys.exit: runpy may still see the interrupt and make the exit a SIGINT
    # death (-2) instead of our documented 130 (seen once in CI).
    import os
    os._exit(130)

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_PROVENANCE, EXIT_CRASH, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


def main(argv: list[str] | None = None) -> int:
    """Hydra's command line (src.config.hydra_app): a run, a sweep (-m), or a show command
    (--help, --cfg, --info, ...) that Hydra itself answers and that runs nothing.
    The purge comes first on every path, before any project module that composes or runs."""
    argv = list(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    try:
        root = find_repo_root()
    except RepoRootError as exc:
        return _usage_error(str(exc))
    purge = purge_bytecode(root)
    t_purge = time.perf_counter() - t0
    try:
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
        loaded = load_config(cli.overrides, root)
    except ConfigError as exc:
        if _SIGINT_SEEN:
            raise KeyboardInterrupt from exc
        return _usage_error(str(exc))
    try:
        from src.runs.execute import execute
    except ImportError as exc:
        return _import_error(exc)

    return execute(loaded, argv, purge, t_start=t0, t_purge=t_purge).exit_code


def _usage_error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _import_error(exc: ImportError) -> int:
    """A project module with no source left (its bytecode was purged), or a missing dependency."""
    name = exc.name or ""
    if name.split(".")[0] != "src":
        return _usage_error(f"{exc}: install the dependencies listed in pyproject.toml")
    print(f"error: import provenance refused: {exc}: its source file is missing from this checkout; "
          f"restore it (e.g. git checkout -- {name.replace('.', '/')}.py)", file=sys.stderr)
    return EXIT_PROVENANCE


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head`: the run itself is recorded already
        sys.exit(EXIT_OK)
    except Exception:
        if not _SIGINT_SEEN:
            raise
        print("interrupted before the run started: nothing was run", file=sys.stderr, flush=True)
        import os
        os._exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:  # before the run folder existed (after it, execute records it)
        print("interrupted before the run started: nothing was run", file=sys.stderr, flush=True)
        sys.stdout.flush()
        import os
        os._exit(EXIT_INTERRUPTED)  # see the note at the top: the exit code must stay 130
