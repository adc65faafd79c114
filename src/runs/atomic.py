"""Atomic writes: a reader sees the old file or the new one, never half of either."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def dumps_deterministic(obj: Any) -> str:
    """JSON with sorted keys and a trailing newline: equal objects give equal bytes."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, dumps_deterministic(obj))


class JsonlAppender:
    """Appends one JSON object per line, each line in a single write(2) on an O_APPEND fd.

    A reader (or a crash) sees whole lines only: no buffer splits a line in two.
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, obj: Any) -> None:
        line = json.dumps(obj, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
        data = line.encode("utf-8")
        written = os.write(self._fd, data)
        if written != len(data):  # a short write on a regular file means a full disk
            raise OSError(f"short write to trades file: {written} of {len(data)} bytes")

    def write_lines(self, data: bytes) -> None:
        """Append whole lines already serialised (the kernel's trades of a chunk) in one write(2)."""
        written = os.write(self._fd, data)
        if written != len(data):
            raise OSError(f"short write to trades file: {written} of {len(data)} bytes")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
