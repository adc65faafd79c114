"""After composition: keys that reached the config although no schema defines them, and
Hydra's own "key not found" errors, as one line with the close key (never a '+' hint).

The schema of a composed node is known exactly here (the market's depends on its option),
so `++market.krw_venue=x` under market=synthetic, which the checks before composition in
`overrides.py` cannot tell from a live-market key, is refused here.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Sequence

from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.config.overrides import GROUPS, OverrideError, _closest, _did_you_mean, _other_markets, parse


def check_composed(cfg: DictConfig, overrides: Sequence[str], choices: dict[str, str]) -> None:
    """Refuse a key an override put where the composed node's schema has no such field
    (e.g. `++market.krw_venue=x` when market=synthetic), at the key or anywhere below it."""
    for o in parse(tuple(overrides)):
        name = o.key_or_group
        if o.type is OverrideType.DEL or name in GROUPS or "/" in name or name == "hydra" \
                or name.startswith("hydra."):
            continue
        node: Any = cfg
        segs = name.split(".")
        for i, seg in enumerate(segs):
            _check_node_keys(node, [seg], segs[:i], o, choices)
            node = node._get_node(int(seg) if isinstance(node, ListConfig) else seg)
            if not isinstance(node, (DictConfig, ListConfig)):
                break
        else:
            _check_subtree(node, segs, o, choices)


def _check_subtree(node: Any, path: list[str], o: Override, choices: dict[str, str]) -> None:
    if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing():
        keys = [str(k) for k in node.keys()]
        _check_node_keys(node, keys, path, o, choices)
        for k in keys:
            _check_subtree(node._get_node(k), [*path, k], o, choices)
    elif isinstance(node, ListConfig) and not node._is_none() and not node._is_missing():
        for j in range(len(node)):
            _check_subtree(node._get_node(j), [*path, str(j)], o, choices)


def _check_node_keys(node: Any, keys: list[str], path: list[str], o: Override, choices: dict[str, str]) -> None:
    if not isinstance(node, DictConfig):
        return
    t = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(t):
        return
    fields = [f.name for f in dataclasses.fields(t)]
    for k in keys:
        if k not in fields:
            here = ".".join(path) or "the config root"
            which = f" (market={choices['market']}: {t.__name__})" if path == ["market"] and "market" in choices \
                else f" ({t.__name__})"
            other = _other_markets(t, k)
            raise OverrideError(f"{o.input_line}: {here}{which} has no key '{k}'"
                                f"{_did_you_mean(k, fields, '.'.join(path) + '.' if path else '') or '; ' + (other or 'keys: ' + ', '.join(sorted(fields)))}")


def explain_missing(exc: BaseException, overrides: Sequence[str]) -> str | None:
    """Hydra's "Could not override 'k'. To append to your config use +k=v" as one line of ours:
    never a '+' for a key the schema lacks; a close key or entry when there is one."""
    m = re.match(r"Could not override '([^']+)'", str(exc))
    cur: BaseException | None = exc
    while cur is not None and getattr(cur, "parent_node", None) is None:
        cur = cur.__cause__ or cur.__context__
    if not m or cur is None:
        return None
    okey = m.group(1)
    line = next((x for x in overrides if x.lstrip("+~").split("=", 1)[0] == okey), okey)
    value = line.split("=", 1)[1] if "=" in line else "..."
    full = re.sub(r"\[(\d+)\]", r".\1", str(getattr(cur, "full_key", None) or okey))
    here, _, seg = full.rpartition(".")
    where = here or "the config root"
    parent = getattr(cur, "parent_node")

    def fix(close: str) -> str:
        if okey == full or okey.startswith(full + "."):  # the unknown segment is on the override's own path
            segs = okey.split(".")
            segs[len(full.split(".")) - 1] = close
            return f"{'.'.join(segs)}={value}"
        return f"{here + '.' if here else ''}{close} (in the value)"

    t = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
    if t is not None and dataclasses.is_dataclass(t):
        fields = [f.name for f in dataclasses.fields(t)]
        close = _closest(seg, fields)
        hint = f"did you mean {fix(close)}?" if close else _other_markets(t, seg) or f"keys: {', '.join(sorted(fields))}"
        return f"{line}: {where} ({t.__name__}) has no key '{seg}'; {hint}"
    entries = [str(k) for k in parent.keys()] if isinstance(parent, DictConfig) else []
    element = getattr(getattr(parent, "_metadata", None), "element_type", None)
    close = _closest(seg, entries)
    if close:
        hint = f"did you mean {fix(close)}?"
    elif dataclasses.is_dataclass(element):
        hint = f"a new entry goes in the {full.split('.')[0]} group's YAML file"
    else:
        hint = f"to add a new entry write +{okey}={value}"
    return f"{line}: {where} has no entry '{seg}' (entries: {', '.join(entries) or 'none'}); {hint}"


def unknown_key_hint(exc: BaseException) -> str:
    """For an unknown key in a conf file ("Key 'durration_s' not in 'StageConfig'"): the close key."""
    cur: BaseException | None = exc
    while cur is not None and getattr(cur, "parent_node", None) is None:
        cur = cur.__cause__ or cur.__context__
    parent = getattr(cur, "parent_node", None)
    t = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
    if cur is None or t is None or not dataclasses.is_dataclass(t) or "not in" not in str(cur):
        return ""
    full = re.sub(r"\[(\d+)\]", r".\1", str(getattr(cur, "full_key", None) or ""))
    here, _, seg = full.rpartition(".")
    close = _closest(seg or str(getattr(cur, "key", "")), [f.name for f in dataclasses.fields(t)])
    return f"; did you mean {here + '.' if here else ''}{close}?" if close else ""
