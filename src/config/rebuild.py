"""The typed config (RootConfig) rebuilt from its plain resolved values, without OmegaConf.

A config read from the cache (src/config/cache.py) is JSON: this module turns it back into
the dataclasses of `schema.py` exactly as `OmegaConf.to_object` does for a composed one
(enums from their names, `Optional`, lists, maps, the market's schema chosen by its
`kind`). It is strict: a value whose type does not match its field exactly is refused
(RebuildError), never coerced; `same` compares two typed configs type for type, so the
cache stores a config only after its rebuild was proven equal to OmegaConf's object.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from enum import Enum
from functools import lru_cache
from typing import Any

from src.config.schema import LiveMarketConfig, ReplayMarketConfig, RootConfig, SyntheticMarketConfig

# RootConfig.market is `Any`: the schema comes from the market option's defaults list,
# recorded in the config as `kind`
MARKET_SCHEMAS: dict[str, type] = {"synthetic": SyntheticMarketConfig, "replay": ReplayMarketConfig,
                                   "live": LiveMarketConfig}
_SCALARS = (str, int, float, bool)


class RebuildError(ValueError):
    """Plain values that are not a config of the schema (a tampered or foreign cache entry)."""


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(cls)]
    hints = typing.get_type_hints(cls)
    return {n: hints[n] for n in names}


def rebuild(resolved: Any) -> RootConfig:
    """RootConfig from `resolved` (OmegaConf.to_container(resolve=True, enum_to_str=True)'s shape)."""
    out = _build(RootConfig, resolved, "")
    assert isinstance(out, RootConfig)
    return out


def _build(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise RebuildError(f"{where}: unsupported type {tp}")
        return _build(inner[0], value, where)
    if tp is Any:
        if where == "market":
            kind = value.get("kind") if isinstance(value, dict) else None
            if kind not in MARKET_SCHEMAS:
                raise RebuildError(f"market.kind={kind!r}: not one of {sorted(MARKET_SCHEMAS)}")
            return _build(MARKET_SCHEMAS[kind], value, where)
        return _plain(value, where)
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)  # type: ignore[arg-type]
        if not isinstance(value, dict) or list(value) != list(hints):
            raise RebuildError(f"{where or 'the config root'}: keys {list(value) if isinstance(value, dict) else value!r}"
                               f" are not the fields of {tp.__name__}")
        pre = f"{where}." if where else ""
        return tp(**{k: _build(hints[k], v, pre + k) for k, v in value.items()})
    if origin in (list, typing.List):
        if type(value) is not list:
            raise RebuildError(f"{where}: {value!r} is not a list")
        return [_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, typing.Dict):
        if type(value) is not dict or any(type(k) is not str for k in value):
            raise RebuildError(f"{where}: {value!r} is not a map with string keys")
        return {k: _build(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, Enum):
        if type(value) is not str or value not in tp.__members__:
            raise RebuildError(f"{where}: {value!r} is not a name of {tp.__name__}")
        return tp[value]
    if tp in _SCALARS:
        if type(value) is not tp:
            raise RebuildError(f"{where}: {value!r} is not a {tp.__name__}")
        return value
    raise RebuildError(f"{where}: unsupported type {tp}")


def _plain(value: Any, where: str) -> Any:
    """An untyped (`Any`) value: plain JSON-like data, copied."""
    if value is None or type(value) in _SCALARS:
        return value
    if type(value) is list:
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    raise RebuildError(f"{where}: {value!r} is not plain data")


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 != 1.0, 'strict' != Mode.strict, key order counts)."""
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)
