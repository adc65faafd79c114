"""Installed distributions' versions, as `importlib.metadata.version` gives them, without importing it.

importlib.metadata costs a run ~10 ms to import (zipfile, email, csv, ...) and ~2 ms per package
(it scans every sys.path entry again). This finds the same `*.dist-info` / `*.egg-info` entry it
would (first sys.path entry that has one; within a folder, listing order; names compared after the
same normalisation) and reads the `Version:` header of its METADATA / PKG-INFO. Anything it does
not handle the same way (a zip or egg on sys.path, a header it cannot find) falls back to
importlib.metadata itself, so the answer is always importlib.metadata's.
"""
from __future__ import annotations

import os
import re
import sys

_listings: dict[str, list[str] | None] = {}


class _Fallback(Exception):
    """Not a layout handled here: ask importlib.metadata."""


def normalize(name: str) -> str:
    """importlib.metadata's `Prepared.normalize` (PEP 503, then `-` -> `_`)."""
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def version(dist: str) -> str | None:
    """`dist`'s installed version; None when it is not installed."""
    try:
        return _fast(dist)
    except _Fallback:
        from importlib import metadata

        try:
            return metadata.version(dist)
        except (metadata.PackageNotFoundError, KeyError):  # KeyError: no Version (importlib_metadata's finder)
            return None


def _listing(entry: str) -> list[str] | None:
    """A sys.path folder's names (None: not a folder); once per process."""
    if entry not in _listings:
        path = entry or "."
        if os.path.isfile(path) or path.lower().endswith(".egg"):  # a zip or an egg: read inside it
            raise _Fallback(path)
        try:
            _listings[entry] = os.listdir(path)
        except OSError:
            _listings[entry] = None
    return _listings[entry]


def _fast(dist: str) -> str | None:
    want = normalize(dist)
    for entry in sys.path:
        for child in _listing(entry) or ():
            low = child.lower()
            if not low.endswith((".dist-info", ".egg-info")):
                continue
            if normalize(low.rpartition(".")[0].partition("-")[0]) != want:
                continue
            return _read_version(os.path.join(entry or ".", child))
    return None


def _read_version(info: str) -> str:
    """The `Version:` header of the info folder's METADATA (else PKG-INFO), or of an egg-info file."""
    if os.path.isdir(info):
        files = [os.path.join(info, n) for n in ("METADATA", "PKG-INFO") if os.path.isfile(os.path.join(info, n))]
    else:
        files = [info]
    if not files:
        raise _Fallback(info)
    with open(files[0], encoding="utf-8", errors="surrogateescape") as f:
        lines = iter(f)
        for line in lines:
            if not line.strip():
                break  # the headers end at the first blank line
            name, sep, value = line.partition(":")
            if sep and name.lower() == "version":
                if next(lines, "")[:1] in (" ", "\t"):
                    break  # a folded header: the email parser's business
                return value.lstrip(" \t").rstrip("\r\n")  # as the email parser keeps it
    raise _Fallback(info)
