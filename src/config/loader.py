"""The one config loader: compose `conf/` with Hydra, check it, hand out typed objects.

`python -m src.run` (and so the DVC stages) and Hydra multirun jobs all end in
`load_config` / `from_composed`, so a value means the same thing on every path.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from typing import TYPE_CHECKING

from src.config.profit_gate import add_profit_gate
from src.config.schema import GROUPS, RootConfig, register_configs
from src.config.validate import validate
from src.runner.interrupt import reraise_if_interrupted
from src.runs.paths import RepoRootError, find_repo_root

if TYPE_CHECKING:
    from omegaconf import DictConfig

# Hydra, OmegaConf and PyYAML are imported by the functions that compose: a run whose
# config comes from the cache (src/config/cache.py) never loads them (~0.2 s).
CONFIG_NAME = "config"


class ConfigError(ValueError):
    """A bad config value, option, override or file: a user error (exit code 2)."""


@dataclass(frozen=True)
class LoadedConfig:
    """A composed, validated config and the facts about where it came from."""

    root: Path  # repo root: the folder holding conf/
    cfg: RootConfig  # typed objects for the engine
    resolved: dict[str, Any]  # plain resolved values (for the record and digests)
    choices: dict[str, str]  # group -> option chosen
    config_files: tuple[str, ...]  # conf files used, relative to root, sorted
    overrides: tuple[str, ...]
    # how the config was obtained (runtime_meta.json config.source): composed by Hydra, or
    # read from the config cache, with the cache key (src/config/cache.py)
    source: dict[str, Any] = field(default_factory=dict, compare=False)


@functools.cache  # the cache is the "done" flag: once per process
def register_schemas() -> None:
    """Put the typed schemas in Hydra's ConfigStore (idempotent)."""
    register_configs()


def one_line(exc: BaseException) -> str:
    """Hydra and OmegaConf errors span lines and chain causes; a user gets one line."""
    parts: list[str] = []
    cur: BaseException | None = exc
    while cur is not None:
        text = str(cur).strip()
        # OmegaConf chains a templated copy of its own message ('$VALUE', '$KEY'): skip it.
        if text and not re.search(r"\$[A-Z_]{3,}", text) and not any(text in q for q in parts):
            parts.append(text)
        cur = cur.__cause__ or cur.__context__
    msg = " | ".join(parts)
    msg = msg.split("Config search path:")[0]
    msg = re.sub(r"\s*To append to your config use \+\S*", "", msg)  # never a '+' for a key no schema has
    msg = re.sub(r"Available options in '([^']+)':\s*((?:\n\s*\S+)+)",
                 lambda m: f"available options in '{m.group(1)}': " + ", ".join(m.group(2).split()), msg)
    msg = re.sub(r"\s*\n\s*", "; ", msg.strip())
    msg = re.sub(r";? ?(object_type|reference_type|ref_type)=[^;|]*", "", msg)
    return msg.strip(" ;|")


def check_command_line(root: Path, overrides: Sequence[str], *, sweep: bool = False) -> None:
    """Refuse every override that could not take effect (see overrides.py), before composing."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from src.config.overrides import OverrideError, check_overrides

    try:
        check_overrides(root, overrides, sweep=sweep)
    except OverrideError as exc:
        raise ConfigError(str(exc)) from exc
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as exc:  # Hydra's parser
        reraise_if_interrupted(exc)  # Ctrl-C inside OmegaConf: an interrupt, not bad input
        raise ConfigError(one_line(exc)) from exc


def compose_config(root: Path, overrides: Sequence[str]) -> tuple[DictConfig, dict[str, str]]:
    """Compose conf/ with Hydra's compose API; returns the config and the group choices."""
    import yaml
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from src.config.composed import explain_missing, unknown_key_hint
    compose, initialize_config_dir = _hydra_api("compose"), _hydra_api("initialize_config_dir")
    check_command_line(root, overrides)
    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(root / "conf"), version_base="1.3"):
            cfg = compose(config_name=CONFIG_NAME, overrides=list(overrides), return_hydra_config=True)
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed YAML: {one_line(exc)}") from exc
    except UnicodeDecodeError as exc:  # Hydra's message names no file: name the ones that are not UTF-8
        bad = [p.relative_to(root).as_posix() for p in sorted((root / "conf").rglob("*.y*ml")) if not _utf8(p)]
        raise ConfigError(f"{', '.join(bad) or 'a config file'}: not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start}): save it as UTF-8") from exc
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as exc:
        reraise_if_interrupted(exc)  # Ctrl-C inside OmegaConf: an interrupt, not bad input
        raise ConfigError(explain_missing(exc, overrides) or one_line(exc) + unknown_key_hint(exc)) from exc
    finally:
        GlobalHydra.instance().clear()
    if cfg.hydra.callbacks:  # Hydra calls callbacks from its own run/sweep loop; a single run has none
        raise ConfigError(f"hydra.callbacks ({', '.join(cfg.hydra.callbacks)}): Hydra callbacks are called in "
                          "sweeps only: run it as a one-job sweep (python -m src.run -m ...) or drop them")
    choices = {k: str(v) for k, v in cfg.hydra.runtime.choices.items() if k in GROUPS}
    with _open(cfg):
        del cfg["hydra"]
    return cfg, choices


_HYDRA_API = ("compose", "initialize_config_dir")


def __getattr__(name: str) -> Any:
    """`compose` and `initialize_config_dir` are Hydra's, imported on first use: module attributes
    as before (a test may replace one), without importing Hydra with this module."""
    if name in _HYDRA_API:
        import hydra

        return getattr(hydra, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _hydra_api(name: str) -> Any:
    return globals()[name] if name in globals() else __getattr__(name)


def _utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _open:
    """Temporarily lift struct mode so the hydra node can be removed."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def __enter__(self) -> None:
        from omegaconf import OmegaConf

        OmegaConf.set_struct(self.cfg, False)

    def __exit__(self, *exc: object) -> None:
        from omegaconf import OmegaConf

        OmegaConf.set_struct(self.cfg, True)


def from_composed(root: Path, cfg: DictConfig, choices: dict[str, str], overrides: Sequence[str],
                  source: dict[str, Any] | None = None) -> LoadedConfig:
    """Resolve, convert to typed objects and validate a composed config."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from src.config.composed import check_composed
    from src.config.overrides import OverrideError

    try:
        check_composed(cfg, overrides, choices)
    except (OverrideError, HydraException) as exc:
        raise ConfigError(one_line(exc)) from exc
    try:
        resolved = resolve(cfg)
        typed = OmegaConf.to_object(cfg)
    except (OmegaConfBaseException, ValueError, TypeError) as exc:
        reraise_if_interrupted(exc)  # Ctrl-C inside OmegaConf: an interrupt, not bad input
        raise ConfigError(one_line(exc)) from exc
    assert isinstance(typed, RootConfig) and isinstance(resolved, dict)
    return finish(root, typed, resolved, choices, overrides, source or hydra_source())


def resolve(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain resolved values (enums by name)."""
    from omegaconf import OmegaConf

    out = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True, enum_to_str=True)
    assert isinstance(out, dict)
    return out  # type: ignore[return-value]


def hydra_source(**cache: Any) -> dict[str, Any]:
    """config.source for a config Hydra composed in this process."""
    import hydra
    import omegaconf

    return {"via": "hydra", "hydra_core": hydra.__version__, "omegaconf": omegaconf.__version__,
            **({"cache": cache} if cache else {})}


def finish(root: Path, typed: RootConfig, resolved: dict[str, Any], choices: dict[str, str],
           overrides: Sequence[str], source: dict[str, Any]) -> LoadedConfig:
    """Validate the typed config, add the profit gate, list the conf files: the loaded config.

    Shared by a composition (from_composed) and a cache hit (src/config/cache.py), which
    hands in the same typed objects and resolved values (before the profit gate)."""
    problems = validate(typed, zone_profile_file=f"conf/zone_profile/{choices.get('zone_profile', '?')}.yaml")
    if problems:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)
    add_profit_gate(typed, resolved)  # hook: kpis (stage.profit_gate_krw -> rule PNL-1)
    files = [f"conf/{CONFIG_NAME}.yaml"]
    for group in sorted(choices):
        files.append(f"conf/{group}/{choices[group]}.yaml")
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise ConfigError(f"config files not found: {', '.join(missing)}")
    return LoadedConfig(
        root=root,
        cfg=typed,
        resolved=resolved,
        choices=dict(sorted(choices.items())),
        config_files=tuple(sorted(files)),
        overrides=tuple(overrides),
        source=source,
    )


def load_config(overrides: Sequence[str], root: Path | None = None) -> LoadedConfig:
    """Compose and validate the config for `overrides`, from the repo holding conf/.

    (A single run's command line goes through src/config/cache.py's `load`, which may read
    the same config from the config cache.)"""
    try:
        root = find_repo_root(root)
    except RepoRootError as exc:
        raise ConfigError(str(exc)) from exc
    cfg, choices = compose_config(root, overrides)
    return from_composed(root, cfg, choices, overrides)
