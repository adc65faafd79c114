"""Where two versions of a run file first differ: line, and field (JSON key, JSONL key, CSV column)."""
from __future__ import annotations

import json
from typing import Any


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """[(dotted key, leaf)] in document order."""
    if isinstance(obj, dict) and obj:
        return [kv for k, v in obj.items() for kv in _flatten(v, f"{prefix}{k}.")]
    if isinstance(obj, list) and obj:
        return [kv for i, v in enumerate(obj) for kv in _flatten(v, f"{prefix}{i}.")]
    return [(prefix[:-1], obj)]


def _first_key(a: Any, b: Any) -> tuple[str | None, Any, Any]:
    fa, fb = _flatten(a), dict(_flatten(b))
    da = dict(fa)
    for key, va in fa:
        if key not in fb or fb[key] != va:
            return key, va, fb.get(key)
    for key, vb in fb.items():
        if key not in da:
            return key, None, vb
    return None, None, None


def first_difference(name: str, a: bytes | None, b: bytes | None) -> dict[str, Any]:
    """{'file', 'line', 'field', 'a', 'b'}: the first line that differs (1-based) and, where the
    format has fields, the first field; `a`/`b` are the field's values (else the lines' text).
    A side that is None (its content was not kept) gives line None."""
    out: dict[str, Any] = {"file": name, "line": None, "field": None, "a": None, "b": None}
    if a is None or b is None or a == b:
        return out
    la = a.decode("utf-8", "replace").splitlines()
    lb = b.decode("utf-8", "replace").splitlines()
    i = next((k for k, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
    out["line"] = i + 1
    line_a, line_b = (la[i] if i < len(la) else None), (lb[i] if i < len(lb) else None)
    out["a"], out["b"] = line_a, line_b
    try:
        if name.endswith(".jsonl") and line_a is not None and line_b is not None:
            out["field"], out["a"], out["b"] = _first_key(json.loads(line_a), json.loads(line_b))
        elif name.endswith(".json"):
            key, va, vb = _first_key(json.loads(a), json.loads(b))
            if key is not None:
                out["field"], out["a"], out["b"] = key, va, vb
        elif name.endswith(".csv") and line_a is not None and line_b is not None and la:
            header = la[0].split(",")
            cells_a, cells_b = line_a.split(","), line_b.split(",")
            col = next((k for k in range(max(len(cells_a), len(cells_b)))
                        if (cells_a[k:k + 1] or [None]) != (cells_b[k:k + 1] or [None])), None)
            if col is not None:
                out["field"] = header[col] if col < len(header) else f"column {col + 1}"
                out["a"], out["b"] = (cells_a[col:col + 1] or [None])[0], (cells_b[col:col + 1] or [None])[0]
        elif name.endswith((".yaml", ".yml")) and line_a is not None and ":" in line_a:
            out["field"] = line_a.split(":", 1)[0].strip()
    except (ValueError, TypeError):
        pass  # not parseable as its format: the line stands
    return out
