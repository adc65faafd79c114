"""The config cache: a single run's composed, validated config, reused without Hydra.

Composing conf/ with Hydra costs ~0.4 s (importing hydra and omegaconf, the defaults list,
the merges). The result is a pure function of its inputs, so a run stores it in
`<repo>/.cache/config/<key>.json` (git- and DVC-ignored, outside src/) and a later run with
the same inputs reads it back in milliseconds, without importing hydra, omegaconf or yaml.

The key is the SHA-256 of: every file under conf/ (path and bytes: an edit, a new, removed
or renamed file changes it; sizes and mtimes play no part), the override list exactly as
given, the source of src/config/*.py and src/runs/paths.py (the id rules validation uses),
the hydra-core, omegaconf and PyYAML versions, the Hydra plugins installed (a plugin may
add to the config search path) and the Python version.

Never cached: a config that uses a resolver whose value can change between runs
(`${oc.env:..}`, `${now:..}`, `${hydra:..}`, any custom one), a command line with flags
(-m, --cfg, ...; run.py sends those to Hydra), and errors (only a config that passed
validation is stored, so every error comes from Hydra and the checks as before).
An entry is JSON (no pickle), written atomically; its SHA-256 is checked on reading, its
key and versions must be this run's, and the typed config is rebuilt by our own code
(rebuild.py, strict types) and validated again. Anything wrong with an entry (corrupt,
truncated, edited, foreign) makes it a miss: composed by Hydra and rewritten, never an
error. `CONFIG_CACHE=0` turns the cache off (docs/configuration.md).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from src.config.loader import ConfigError, LoadedConfig, finish
from src.config.rebuild import RebuildError, rebuild, same
from src.config.schema import GROUPS
from src.runner.interrupt import reraise_if_interrupted

if TYPE_CHECKING:
    from omegaconf import DictConfig

FORMAT = 1  # the entry layout; a change makes every older entry a miss (it is part of the key)
CACHE_DIR = Path(".cache") / "config"
ENV = "CONFIG_CACHE"
OFF = ("0", "off", "false", "no")
MAX_ENTRIES = 256  # older entries are deleted when a store goes past this
PACKAGES = {"hydra-core": "hydra", "omegaconf": "omegaconf", "PyYAML": "yaml"}  # distribution: module
CODE = ("src/runs/paths.py",)  # besides src/config/*.py
# Resolvers whose value is a function of the config alone; any other (oc.env, now, hydra,
# a custom one) may change between runs, and such a config is composed every time.
PURE_RESOLVERS = frozenset({"oc.select", "oc.decode", "oc.create", "oc.dict.keys", "oc.dict.values"})
_RESOLVER_RE = re.compile(r"\$\{\s*([^\s:{}$]+)\s*:")
_VERSION_RE = re.compile(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", re.M)

_keys: dict[tuple[str, tuple[str, ...]], tuple[str, dict[str, str]]] = {}


class Uncacheable(Exception):
    """The inputs cannot be keyed (e.g. a symlinked folder under conf/): compose every time."""


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in OFF


def versions() -> dict[str, str]:
    """The Python version and the installed versions of PACKAGES (what composition depends on)."""
    out = {"python": sys.version, "format": str(FORMAT)}
    for dist, module in PACKAGES.items():
        out[dist] = _version(dist, module)
    out["hydra_plugins"] = ",".join(_plugins())
    return out


def _plugins() -> list[str]:
    """What the hydra_plugins namespace holds (a plugin may add to the config search path)."""
    found: set[str] = set()
    for entry in sys.path:
        try:
            found.update(n for n in os.listdir(os.path.join(entry or ".", "hydra_plugins")) if n != "__pycache__")
        except OSError:
            continue
    return sorted(found)


def _version(dist: str, module: str) -> str:
    """`dist`'s version as its module declares it (`__version__` in the source of `module`, found,
    not imported: importlib.metadata scans every path entry, ~2 ms a package), else from
    importlib.metadata; 'none' when not installed."""
    from importlib.util import find_spec

    spec = find_spec(module)  # a top-level name: found, not imported
    if spec is None or not spec.origin:
        return "none"
    folder = os.path.dirname(spec.origin)
    for name in ("version.py", os.path.basename(spec.origin)):
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                m = _VERSION_RE.search(f.read())
        except (OSError, ValueError):
            continue
        if m:
            return m.group(1)
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def cache_key(root: Path, overrides: Sequence[str]) -> tuple[str, dict[str, str]]:
    """(key, the versions in it) for composing `overrides` in `root`; once per process."""
    memo = (str(root), tuple(overrides))
    if memo not in _keys:
        h = hashlib.sha256()
        inputs = versions()
        h.update(json.dumps(inputs, sort_keys=True).encode())
        h.update(b"\0overrides\0" + json.dumps(list(overrides)).encode())
        code = sorted((root / "src" / "config").glob("*.py")) + [root / c for c in CODE]
        for path in [*_files(root / "conf"), *code]:
            data = path.read_bytes()
            h.update(f"\0{path.relative_to(root).as_posix()}\0{len(data)}\0".encode() + data)
        _keys[memo] = (h.hexdigest()[:32], inputs)
    return _keys[memo]


def _files(base: Path) -> list[Path]:
    """Every file under `base`, sorted; a symlinked folder (not walked) makes the inputs unkeyable."""
    out: list[Path] = []
    for dirpath, dirnames, files in os.walk(base):
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                raise Uncacheable(f"{os.path.join(dirpath, d)} is a symlinked folder")
        out.extend(Path(dirpath, f) for f in files)
    return sorted(out, key=lambda p: p.as_posix())


def entry_path(root: Path, key: str) -> Path:
    return root / CACHE_DIR / f"{key}.json"


def lookup(root: Path, overrides: Sequence[str]) -> LoadedConfig | None:
    """The cached config for these inputs, or None (off, not cached yet, or an entry not to trust)."""
    if not enabled():
        return None
    try:
        key, inputs = cache_key(root, overrides)
        data = entry_path(root, key).read_bytes()
    except (OSError, Uncacheable):
        return None
    try:
        return _from_entry(root, key, inputs, overrides, data)
    except (ValueError, TypeError, KeyError, AttributeError, RebuildError, ConfigError, RecursionError) as exc:
        reraise_if_interrupted(exc)  # a Ctrl-C that surfaced as another error: an interrupt
        return None  # corrupt, truncated, edited or foreign: composed again and rewritten


def _from_entry(root: Path, key: str, inputs: dict[str, str], overrides: Sequence[str],
                data: bytes) -> LoadedConfig | None:
    head, _, body = data.partition(b"\n")
    header = json.loads(head)
    if header != {"config_cache": FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()}:
        return None
    entry = json.loads(body)
    if entry.get("key") != key or entry.get("inputs") != inputs or entry.get("overrides") != list(overrides):
        return None
    choices = entry["choices"]
    if type(choices) is not dict or not all(k in GROUPS and type(v) is str for k, v in choices.items()):
        return None
    resolved = entry["resolved"]
    typed = rebuild(resolved)
    source = {"via": "cache", "key": key, "entry": (CACHE_DIR / f"{key}.json").as_posix(),
              "hydra_core": inputs["hydra-core"], "omegaconf": inputs["omegaconf"]}
    return finish(root, typed, resolved, choices, overrides, source)


def load(root: Path, overrides: Sequence[str]) -> LoadedConfig:
    """A single run's config: from the cache, else composed by Hydra (and then stored)."""
    from src.config.loader import compose_config, from_composed, hydra_source

    if not enabled():
        cfg, choices = compose_config(root, overrides)
        return from_composed(root, cfg, choices, overrides, hydra_source(disabled=f"{ENV}=0"))
    try:
        key, inputs = cache_key(root, overrides)
    except (OSError, Uncacheable) as exc:
        cfg, choices = compose_config(root, overrides)
        return from_composed(root, cfg, choices, overrides, hydra_source(skipped=str(exc)))
    hit = lookup(root, overrides)
    if hit is not None:
        return hit
    cfg, choices = compose_config(root, overrides)  # every error is raised here or below, never cached
    loaded = from_composed(root, cfg, choices, overrides)
    why = impure(cfg)
    if why:
        return replace(loaded, source=hydra_source(key=key, skipped=why))
    return replace(loaded, source=hydra_source(key=key, **store(root, key, inputs, cfg, choices, loaded)))


def impure(cfg: DictConfig) -> str | None:
    """Why this composed config is not a pure function of the keyed inputs, or None."""
    from omegaconf import OmegaConf

    found: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(k)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str) and "${" in x:
            found.update(n for n in _RESOLVER_RE.findall(x) if n not in PURE_RESOLVERS)

    walk(OmegaConf.to_container(cfg, resolve=False))
    if not found:
        return None
    return f"uses resolver {', '.join(sorted(found))}: its value can change between runs"


def store(root: Path, key: str, inputs: dict[str, str], cfg: DictConfig, choices: dict[str, str],
          loaded: LoadedConfig) -> dict[str, Any]:
    """Write the entry when its rebuild is proven equal to what Hydra gave; what happened, for the record."""
    from src.config.loader import resolve
    from src.runs.atomic import write_bytes_atomic

    plain = resolve(cfg)  # before the profit gate, as finish() takes it
    try:
        body = json.dumps({"format": FORMAT, "key": key, "inputs": inputs, "overrides": list(loaded.overrides),
                           "choices": choices, "resolved": plain}, ensure_ascii=False).encode("utf-8")
        entry = json.loads(body)
        again = finish(root, rebuild(entry["resolved"]), entry["resolved"], entry["choices"], loaded.overrides, {})
    except (RebuildError, ConfigError, ValueError, TypeError) as exc:
        return {"stored": False, "why": f"not rebuilt from JSON: {exc}"}
    if not (same(again.cfg, loaded.cfg) and same(again.resolved, loaded.resolved) and again == loaded):
        return {"stored": False, "why": "the config rebuilt from JSON differs from Hydra's"}
    header = json.dumps({"config_cache": FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()})
    path = entry_path(root, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, header.encode() + b"\n" + body)
        _prune(path.parent)
    except OSError as exc:  # a read-only checkout, a full disk: the run goes on, composed
        return {"stored": False, "why": f"{type(exc).__name__}: {exc}"}
    return {"stored": True}


def _prune(folder: Path) -> None:
    entries = [p for p in folder.glob("*.json") if p.is_file()]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda p: p.stat().st_mtime_ns)
    for old in entries[: len(entries) - MAX_ENTRIES]:
        try:
            old.unlink()
        except OSError:
            pass
