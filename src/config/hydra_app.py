"""Hydra's own command line for `python -m src.run`: its parser, flags, help and info.

The arguments are parsed by Hydra's parser (`hydra._internal.utils.get_args_parser`), so
every flag of a Hydra application is known here. The commands that only look --
`--help`, `--hydra-help`, `--cfg job|hydra|all` (with `--resolve`, `--package`),
`--info [...]`, `--shell-completion` -- are handed to Hydra's own `_run_hydra` (what
`@hydra.main` calls), which composes conf/ and prints: they run nothing and write nothing.
A run (`key=value ...`) and a sweep (`-m`) keep their own paths (src.config.loader,
src.sweep), which compose the same conf/ with the same schemas.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml
from hydra._internal.utils import _run_hydra, get_args_parser
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from src.config.loader import CONFIG_NAME, one_line, register_schemas
from src.exitcodes import ExitCode

PROG = "python -m src.run"
# Hydra flags that would compose some other config than conf/config.yaml, or replay a
# pickled one: a run's provenance is the checkout's conf/, so they are refused.
REFUSED = {"config_path": "--config-path", "config_name": "--config-name", "config_dir": "--config-dir",
           "experimental_rerun": "--experimental-rerun"}


class HydraUsageError(ValueError):
    """A command line Hydra's parser refuses, or a flag this app does not take (exit 2)."""


@dataclass(frozen=True)
class CommandLine:
    args: argparse.Namespace  # Hydra's parse of argv
    parser: argparse.ArgumentParser

    @property
    def overrides(self) -> list[str]:
        return list(self.args.overrides)

    @property
    def shows(self) -> bool:
        """A command that prints and runs nothing (handed to Hydra)."""
        a = self.args
        return bool(a.help or a.hydra_help or a.cfg or a.info or a.shell_completion or a.resolve)

    @property
    def multirun(self) -> bool:
        return bool(self.args.multirun)


def _parser() -> argparse.ArgumentParser:
    parser = get_args_parser()
    parser.prog = PROG

    def error(message: str) -> None:  # argparse would print its whole usage; ours is one line
        raise HydraUsageError(f"{message} (see {PROG} --help)")

    parser.error = error  # type: ignore[method-assign]
    return parser


def parse(argv: Sequence[str]) -> CommandLine | int:
    """Hydra's parse of `argv`; an exit code when the parser itself answered (`--version`).

    Intermixed, so `stage=d92-5 -m seed=1,2` keeps working (plain argparse wants the
    overrides in one block)."""
    parser = _parser()
    try:
        args = parser.parse_intermixed_args(list(argv))
    except SystemExit as exc:  # --version printed itself
        return int(exc.code or 0)
    given = [flag for key, flag in REFUSED.items() if getattr(args, key) is not None]
    if given:
        raise HydraUsageError(f"{given[0]} is not taken: a run composes this checkout's conf/config.yaml "
                              "(give groups and values as overrides instead)")
    cli = CommandLine(args, parser)
    if args.package is not None and not args.cfg:
        raise HydraUsageError("--package/-p selects the part --cfg prints: use it with --cfg job|hydra|all")
    return cli


def _never_run(cfg: Any) -> None:
    raise RuntimeError("a Hydra show command reached the run path")


_never_run.__module__ = "src.run"  # Hydra names the app (hydra.job.name) after this module: `run`


def show(cli: CommandLine, root: Path) -> int:
    """Hand a show command to Hydra's own `_run_hydra`; Hydra's errors become one `error:` line.

    The import-provenance guard comes first, as for a run: what prints is composed with the
    project's schemas, which must come from this checkout's source."""
    from src.provenance import guard

    report = guard.check_imports(root)
    if report["violations"]:
        print(f"error: {'; '.join(report['violations'])}", file=sys.stderr)
        return ExitCode.PROVENANCE
    register_schemas()
    err = io.StringIO()
    old = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing a report and exiting 1
    code = ExitCode.OK
    try:
        with contextlib.redirect_stderr(err):
            _run_hydra(args=cli.args, args_parser=cli.parser, task_function=_never_run,
                       config_path=str(root / "conf"), config_name=CONFIG_NAME)
    except SystemExit as exc:  # help exits 0; `-p` naming no package writes a line and exits 1
        code = int(exc.code or 0) if not isinstance(exc.code, str) else ExitCode.USAGE
        if code != ExitCode.OK:
            return _error(err.getvalue().strip() or f"hydra exited with {exc.code}")
    except yaml.YAMLError as exc:
        return _error(f"malformed YAML: {one_line(exc)}")
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as exc:
        return _error(one_line(exc))
    finally:
        if old is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = old
    sys.stderr.write(err.getvalue())
    return code


def _error(msg: str) -> int:
    print(f"error: {' '.join(msg.split())}", file=sys.stderr)
    return ExitCode.USAGE
