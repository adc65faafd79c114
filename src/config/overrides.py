"""Every command-line override takes effect or is refused: checked against the typed schemas.

Hydra lets `+key=v` and `++key=v` add keys no schema defines (they land in the recorded
config and the fingerprint and change nothing), `~key` delete keys a run needs, and hints
`+key` for a typo. So before composing, each override is parsed with Hydra's own parser
and checked here against the dataclasses of `schema.py`:

- a key must be a field of its schema at every depth, an entry of a map field
  (`zone_profile.symbols`, `zone_profile.profiles`, `market.api_urls`) or a list index;
- `+` adds only new map entries; `~` removes only map entries (never a schema field,
  list item or group);
- a group override names an existing `conf/<group>/<option>.yaml`;
- a key is given once; Hydra's own settings (`hydra.*`, `hydra/...`) only in a sweep.
After composition `composed.check_composed` walks the real nodes (whose schema depends on
the market option) so a key that slipped in anyway is refused as well.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override, OverrideType

from src.config.schema import GROUPS, LiveMarketConfig, ReplayMarketConfig, RootConfig, SyntheticMarketConfig

MARKETS: tuple[type, ...] = (SyntheticMarketConfig, ReplayMarketConfig, LiveMarketConfig)
_OPTION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


class OverrideError(ValueError):
    """An override that could not take effect (the loader turns it into a ConfigError)."""


_parser: OverridesParser | None = None


@lru_cache(maxsize=64)
def parse(overrides: tuple[str, ...]) -> tuple[Override, ...]:
    """Hydra's own parse of the overrides (its errors pass through to the caller)."""
    global _parser
    if _parser is None:
        _parser = OverridesParser.create()
    return tuple(_parser.parse_overrides(list(overrides)))


def check_overrides(root: Path, overrides: Sequence[str], *, sweep: bool = False) -> None:
    """Refuse, before anything is composed or run, every override that could not take effect."""
    seen: dict[str, str] = {}
    parsed = parse(tuple(overrides))
    markets = _chosen_markets(parsed)
    for o in parsed:
        key = o.key_or_group + (f"@{o.package}" if o.package is not None else "")
        if key in seen:
            raise OverrideError(f"{key} is given twice ({seen[key]!r} and {o.input_line!r}): only the last "
                                "would take effect; give it once")
        seen[key] = o.input_line
        if o.key_or_group == "hydra" or o.key_or_group.startswith(("hydra.", "hydra/")):
            if not sweep and o.key_or_group.startswith(("hydra.callbacks", "hydra/callbacks")):
                name = o.key_or_group.split(".")[2] if o.key_or_group.count(".") >= 2 else _show(o._value)
                raise OverrideError(f"hydra.callbacks ({name}): Hydra callbacks are called in sweeps only: run it "
                                    "as a one-job sweep (python -m src.run -m ...) or drop them")
            if not sweep:
                raise OverrideError(f"{o.input_line}: Hydra's own settings have no effect on a single run; "
                                    "they apply to sweeps only (python -m src.run -m ...)")
            continue
        if o.is_sweep_override() and not sweep:
            raise OverrideError(f"{o.input_line}: a sweep over several values; run it with -m (--multirun)")
        if o.key_or_group in GROUPS or "/" in o.key_or_group:
            _check_group(root, o)
        else:
            _check_key(o, markets)


def _chosen_markets(parsed: Sequence[Override]) -> tuple[type, ...]:
    """The market schemas a `market=` override on the command line picks (it wins over every
    default); without one, or when unsure, all of them (check_composed then sees the real one)."""
    by_kind = {m.kind: m for m in MARKETS}  # type: ignore[attr-defined]
    for o in parsed:
        if o.key_or_group == "market" and o.type is OverrideType.CHANGE and o.package is None:
            values = list(o._value.list) if isinstance(o._value, ChoiceSweep) else [o._value]
            kinds = [by_kind.get(str(v)) for v in values]
            if not o.is_sweep_override() or isinstance(o._value, ChoiceSweep):
                return tuple(k for k in MARKETS if k in kinds) if all(kinds) else MARKETS
    return MARKETS


def _check_group(root: Path, o: Override) -> None:
    group = o.key_or_group
    options = _options(root, group)
    if o.package is not None:
        raise OverrideError(f"{o.input_line}: a group placed at another package (@{o.package}) is never read "
                            f"by the run; choose the option with {group}=<{'|'.join(options)}>")
    if o.type is OverrideType.DEL:
        raise OverrideError(f"{o.input_line}: the {group} group cannot be removed, a run needs it; "
                            f"choose an option instead: {group}=<{'|'.join(options)}>")
    if o.type is not OverrideType.CHANGE:
        raise OverrideError(f"{o.input_line}: {group} is a config group, chosen once in conf/config.yaml: "
                            f"choose its option with {group}=<{'|'.join(options)}>")
    if isinstance(o._value, ChoiceSweep):
        values: list[Any] = list(o._value.list)
    elif o.is_sweep_override():
        return  # glob()/range(): Hydra expands them from the group's own options
    else:
        values = [o._value]
    for v in values:
        if not isinstance(v, str) or not _OPTION_RE.fullmatch(v) or ".." in v.split("/") \
                or not (root / "conf" / group / f"{v}.yaml").is_file():
            raise OverrideError(f"{group}={_show(v)}: no option '{group}/{_show(v)}' (no conf/{group}/{_show(v)}"
                                f".yaml); available options in '{group}': {', '.join(options)}"
                                f"{_did_you_mean(v, options, group + '=')}")


def _show(v: Any) -> str:
    return "null" if v is None else str(v)


def _options(root: Path, group: str) -> list[str]:
    folder = root / "conf" / group
    return sorted(p.relative_to(folder).as_posix()[: -len(".yaml")] for p in folder.rglob("*.yaml")) \
        if folder.is_dir() else []


def _closest(word: str, choices: Sequence[str]) -> str | None:
    """A close spelling (difflib), else the one choice that starts with `word` (tp -> tp_bps)."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return close[0]
    starts = [c for c in choices if len(word) >= 2 and c.lower().startswith(word.lower())]
    return starts[0] if len(starts) == 1 else None


def _did_you_mean(word: Any, choices: Sequence[str], prefix: str = "", suffix: str = "") -> str:
    close = _closest(str(word), choices)
    return f"; did you mean {prefix}{close}{suffix}?" if close else ""


# -- keys: walk the schema's types ---------------------------------------------------------------

@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap(tp: Any) -> Any:
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _kind(tp: Any) -> str:
    tp = _unwrap(tp)
    if tp is Any:
        return "any"
    if dataclasses.is_dataclass(tp):
        return "schema"
    origin = typing.get_origin(tp)
    if origin in (dict, typing.Dict):
        return "map"
    if origin in (list, typing.List):
        return "list"
    return "value"


def _check_key(o: Override, markets: tuple[type, ...] = MARKETS) -> None:
    if not o.key_or_group:
        raise OverrideError(f"{o.input_line}: an override needs a key (key=value)")
    segs = o.key_or_group.split(".")
    types: list[Any] = [RootConfig]
    parent_kind = "schema"
    for i, seg in enumerate(segs):
        here = ".".join(segs[:i])
        kinds = {_kind(t) for t in types}
        if "any" in kinds:
            return  # below an untyped value (e.g. an acceptance rule's value): nothing to check
        nxt: list[Any] = []
        fields: list[str] = []
        for t in (_unwrap(t) for t in types):
            kind = _kind(t)
            if kind == "schema":
                hints = _hints(t)
                fields += [f for f in hints if f not in fields]
                if seg in hints:
                    nxt += list(markets) if (t is RootConfig and seg == "market") else [hints[seg]]
            elif kind == "map":
                nxt.append(typing.get_args(t)[1])
            elif kind == "list":
                if not seg.isdigit():
                    raise OverrideError(f"{o.input_line}: {here} is a list: '{seg}' is not an index "
                                        f"(0, 1, ...)")
                nxt.append(typing.get_args(t)[0])
        if not nxt:
            if kinds == {"value"}:
                raise OverrideError(f"{o.input_line}: {here} is a single value, it has no key '{seg}'")
            raise OverrideError(_unknown_key(o, segs, i, fields, markets))
        parent_kind = "map" if kinds == {"map"} else "list" if kinds == {"list"} else "schema"
        types = nxt
    key = o.key_or_group
    if o.type is OverrideType.DEL and parent_kind != "map":
        what = "a list item" if parent_kind == "list" else "a key of the schema"
        raise OverrideError(f"{o.input_line}: {key} is {what} and cannot be removed (a run needs it); "
                            f"set a value instead ({key}=...); '~' removes only map entries "
                            "such as zone_profile.symbols.<symbol>")
    if o.type is OverrideType.ADD and parent_kind != "map":
        raise OverrideError(f"{o.input_line}: {key} is a key of the schema: set it without '+' "
                            f"({_plain(o)}); '+' only adds new map entries such as "
                            "zone_profile.symbols.<symbol> or market.api_urls.<venue>")


def _plain(o: Override, key: str | None = None) -> str:
    value = o.input_line.split("=", 1)[1] if "=" in o.input_line else "..."
    return f"{key or o.key_or_group}={value}"


def _unknown_key(o: Override, segs: list[str], i: int, fields: list[str],
                 markets: tuple[type, ...] = MARKETS) -> str:
    here = ".".join(segs[:i]) or "the config root"
    seg = segs[i]
    close, other = _closest(seg, fields), ""
    if close:
        fixed = ".".join([*segs[:i], close, *segs[i + 1:]])
        hint = f"did you mean {_plain(o, fixed)}?"
    else:
        elsewhere = [p for p in _schema_paths() if p.rsplit(".", 1)[-1] == segs[-1]]
        other = _other_markets(markets[0], seg) if segs[0] == "market" and i == 1 and len(markets) == 1 else ""
        hint = (f"did you mean {_plain(o, elsewhere[0])}?" if len(elsewhere) == 1 and not other
                else other or f"keys of {here}: {', '.join(sorted(fields))}")
    if other:
        return f"{o.input_line}: {here} (market={markets[0].kind}) has no key '{seg}'; {hint}"  # type: ignore[attr-defined]
    return f"{o.input_line}: {here} has no key '{seg}' (no schema in src/config/schema.py defines " \
           f"{o.key_or_group}); {hint}"


def _other_markets(t: type, key: str) -> str:
    """For a market key of another market option: which option has it."""
    if t not in MARKETS:
        return ""
    has = [m.kind for m in MARKETS if m is not t and key in _hints(m)]  # type: ignore[attr-defined]
    return f"'{key}' belongs to market={' or market='.join(has)}" if has else ""


@lru_cache(maxsize=1)
def _schema_paths() -> tuple[str, ...]:
    """Every dotted key reachable through schema fields only (no map entries or list items)."""
    out: list[str] = []

    def walk(prefix: str, types: Sequence[Any]) -> None:
        for t in types:
            for name, hint in _hints(_unwrap(t)).items():
                path = f"{prefix}{name}"
                if path not in out:
                    out.append(path)
                sub = list(MARKETS) if (t is RootConfig and name == "market") else [hint]
                if all(_kind(s) == "schema" for s in sub):
                    walk(path + ".", sub)

    walk("", [RootConfig])
    return tuple(out)
