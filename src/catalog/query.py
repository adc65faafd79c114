"""Filters and sort keys over the run index: `--where seed=7 --where 'kpi.win_rate>0.5' --sort -kpi.sharpe`.

A key is a column of the index (run, stage, status, state, started_at, ended_at, fingerprint,
zone_profile, universe, seed, round_trips, win_rate, total_pnl_krw, exits, gates, pinned,
tags, notes, folder, problems), `kpi.<flattened KPI>` (numbers only, e.g. kpi.exit_reasons.take_profit),
or a flattened resolved-config value, bare or under `config.` (seed, zone_profile.name,
costs.upbit.taker_bps). Operators: = != > >= < <= and ~ (contains). On a list (tags, notes),
`=` means "holds this element" and `~` "an element contains this text". A value is read as
JSON when it parses (7, 0.5, true, null, "quoted"), else as text; `=` also matches a value
whose text is the one given (`zone_profile.name=default`). Runs lacking the key never match
an ordering test.
"""
from __future__ import annotations

import difflib
import json
import re
import sqlite3
import struct
from dataclasses import dataclass
from typing import Any

COLUMNS = ("run", "stage", "status", "state", "started_at", "ended_at", "fingerprint", "zone_profile", "universe",
           "seed", "round_trips", "win_rate", "total_pnl_krw", "exits", "gates", "pinned", "tags", "notes", "folder",
           "problems")
SQL_COL = {"run": "run_id"}
ALIASES = {"tag": "tags", "note": "notes", "run_id": "run", "id": "run"}
_LISTS = ("tags", "notes", "problems")
OPS = ("!=", ">=", "<=", "=", ">", "<", "~")
_WHERE = re.compile(r"\s*([A-Za-z0-9_][A-Za-z0-9_.\-/]*)\s*(!=|>=|<=|=|>|<|~)(.*)\Z", re.S)


class QueryError(ValueError):
    """A --where or --sort the index cannot answer: unknown key, bad operator or value."""


@dataclass(frozen=True)
class Key:
    text: str  # as typed (minus a sort's '-')
    kind: str  # column | kpi | config
    name: str  # column name, flattened KPI key or flattened config key


@dataclass(frozen=True)
class Cond:
    key: Key
    op: str
    raw: str
    value: Any


def json_path(key: str) -> str:
    return '$."' + key.replace('"', '""') + '"'


def _suggest(word: str, vocab: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(vocab), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _config_vocab(conn: sqlite3.Connection, group: str | None) -> set[str]:
    """Flattened config keys held by the runs (of one top-level group, or of every group)."""
    if group is None:
        groups = [g for (g,) in conn.execute(
            "SELECT DISTINCT j.key FROM (SELECT DISTINCT config FROM run_data) r, json_each(r.config) j")]
    else:
        groups = [group]
    vocab: set[str] = set()
    for g in groups:
        digests = "SELECT DISTINCT json_extract(config, ?) FROM run_data"
        for (flat,) in conn.execute(f"SELECT flat FROM blobs WHERE digest IN ({digests}) LIMIT 50", (json_path(g),)):
            vocab.update(json.loads(flat))
    return vocab


def kpi_layouts(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """{layout digest: {"keys": [...], "ints": [...], "at": {key: position}}} of the indexed runs' KPIs."""
    out = {}
    for d, flat in conn.execute("SELECT digest, flat FROM blobs WHERE digest IN (SELECT DISTINCT kpi_layout FROM run_data)"):
        spec = json.loads(flat)
        out[d] = dict(spec, at={k: i for i, k in enumerate(spec["keys"])}, ints=set(spec["ints"]))
    return out


def _kpi_vocab(conn: sqlite3.Connection) -> set[str]:
    return {k for spec in kpi_layouts(conn).values() for k in spec["keys"]}


def resolve_key(conn: sqlite3.Connection, text: str) -> Key:
    """The key as the index knows it; QueryError with a did-you-mean when no run has it."""
    name = ALIASES.get(text, text)
    if name in COLUMNS:
        return Key(text, "column", name)
    if text.startswith("kpi."):
        kpi = text[4:]
        vocab = _kpi_vocab(conn)
        if kpi in vocab:
            return Key(text, "kpi", kpi)
        hint = _suggest(kpi, vocab)
        raise QueryError(f"unknown key {text!r}: no run has the KPI {kpi!r}{hint.replace('mean ', 'mean kpi.')}")
    key = text[7:] if text.startswith("config.") else text
    if key in _config_vocab(conn, key.split(".", 1)[0]):
        return Key(text, "config", key)
    vocab = _config_vocab(conn, None) | set(COLUMNS) | {f"kpi.{k}" for k in _kpi_vocab(conn)}
    raise QueryError(f"unknown key {text!r}: not an index column, a config value or kpi.<name>"
                     f"{_suggest(key, vocab)}")


def parse_where(conn: sqlite3.Connection, text: str) -> Cond:
    m = _WHERE.match(text)
    if m is None or m.group(3)[:1] in ("=", "<", ">", "~", "!"):
        raise QueryError(f"bad --where {text!r}: expected KEY OP VALUE with OP one of {' '.join(OPS)} "
                         "(e.g. seed=7, 'kpi.win_rate>0.5', tags=best)")
    key, op, raw = m.group(1), m.group(2), m.group(3).strip()
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if op in (">", ">=", "<", "<=") and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        raise QueryError(f"bad --where {text!r}: {op} needs a number or a text, not {raw!r}")
    return Cond(resolve_key(conn, key), op, raw, value)


def _eq(v: Any, c: Cond) -> bool:
    if isinstance(v, list):
        return c.raw in v or c.value in v
    if v is None or c.value is None:
        return v is None and c.value is None
    if isinstance(v, bool) or isinstance(c.value, bool):
        return v is c.value or str(v).lower() == c.raw.lower()
    return v == c.value or str(v) == c.raw


def _ordered(v: Any, c: Cond) -> bool:
    num = (int, float)
    a, b = v, c.value
    if isinstance(a, bool) or isinstance(b, bool) or a is None:
        return False
    if not ((isinstance(a, num) and isinstance(b, num)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[c.op]


def holds(v: Any, c: Cond) -> bool:
    if c.op == "=":
        return _eq(v, c)
    if c.op == "!=":
        return not _eq(v, c)
    if c.op == "~":
        items = v if isinstance(v, list) else [v]
        return any(x is not None and c.raw in str(x) for x in items)
    return _ordered(v, c)


def sort_value(v: Any) -> tuple[int, Any]:
    """Numbers before texts, None last in either direction of a sort."""
    if v is None:
        return (2, 0)
    if isinstance(v, (int, float)):
        return (0, v)
    return (1, json.dumps(v) if isinstance(v, list) else str(v))


def fetch(conn: sqlite3.Connection, keys: list[Key], stage: str | None = None) -> list[dict[str, Any]]:
    """Every index row (of a stage) with its columns and the values of `keys` (keyed by key text)."""
    cols = [f"{SQL_COL.get(c, c)}" for c in COLUMNS]
    extra, params, groups = [], [], {}
    for k in keys:
        if k.kind == "config":
            groups.setdefault(k.name.split(".", 1)[0], []).append(k)
    gnames = sorted(groups)
    kpi_keys = [k for k in keys if k.kind == "kpi"]
    if kpi_keys:
        extra += ["kpi_layout", "kpi_values"]
        layouts = kpi_layouts(conn)
    for g in gnames:
        extra.append("json_extract(config, ?)")
        params.append(json_path(g))
    sql = f"SELECT {', '.join(cols + extra)} FROM {'runs_full' if extra else 'runs'}" + (" WHERE stage = ?" if stage else "")
    rows = conn.execute(sql, params + ([stage] if stage else [])).fetchall()
    blobs: dict[str, dict[str, Any]] = {}
    for g in gnames:
        q = "SELECT digest, flat FROM blobs WHERE digest IN (SELECT DISTINCT json_extract(config, ?) FROM run_data)"
        blobs.update((d, json.loads(f)) for d, f in conn.execute(q, (json_path(g),)))
    out = []
    n = len(COLUMNS)
    for r in rows:
        d = dict(zip(COLUMNS, r[:n]))
        for c in _LISTS:
            d[c] = json.loads(d[c]) if d[c] not in (None, "[]") else []
        d["pinned"] = bool(d["pinned"])
        if kpi_keys:
            spec, values = layouts.get(r[n]), r[n + 1]
            for k in kpi_keys:
                j = spec["at"].get(k.name) if spec else None
                v = None if j is None else struct.unpack_from("=d", values, 8 * j)[0]
                d[k.text] = int(v) if v is not None and k.name in spec["ints"] else v
        base = n + (2 if kpi_keys else 0)
        for j, g in enumerate(gnames):
            flat = blobs.get(r[base + j]) or {}
            for k in groups[g]:
                d[k.text] = flat.get(k.name)
        for k in keys:
            if k.kind == "column":
                d[k.text] = d[k.name]
        out.append(d)
    return out


def select(rows: list[dict[str, Any]], conds: list[Cond], sorts: list[tuple[Key, bool]]) -> list[dict[str, Any]]:
    """Rows matching every condition, sorted by each key in turn (True: descending)."""
    rows = [r for r in rows if all(holds(r[c.key.text], c) for c in conds)]
    for key, desc in reversed(sorts):  # stable sorts, last key first
        nones = [r for r in rows if r[key.text] is None]
        rest = sorted((r for r in rows if r[key.text] is not None), key=lambda r: sort_value(r[key.text]),
                      reverse=desc)
        rows = rest + nones
    return rows
