"""Atomic writes: a reader sees the old file or the new one, never half of either.

Files are created with mode 0o666 and the process umask applies, as for any file the
user creates (mkstemp's 0o600 would hide outputs from the rest of a team). A failed write
raises OSError naming the file.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any, Sequence

FILE_MODE = 0o666  # the umask applies


def dumps_deterministic(obj: Any) -> str:
    """JSON with sorted keys and a trailing newline: equal objects give equal bytes."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def dumps_yaml(obj: Any) -> str:
    """`yaml.safe_dump(obj, sort_keys=False)`'s text, written by libyaml when PyYAML has it.

    libyaml's emitter writes other bytes than PyYAML's own for a few shapes: escaped
    (double-quoted) strings that wrap and keys longer than about 80 characters. So it is used
    only for documents made of dicts with short printable-ASCII or integer keys (params.yaml
    indexes lists), lists, printable-ASCII
    strings, numbers, booleans and None (every resolved config); others take the Python emitter.
    """
    import yaml

    dumper = getattr(yaml, "CSafeDumper", None)
    if dumper is None or not _libyaml_safe(obj):
        dumper = yaml.SafeDumper
    return yaml.dump(obj, Dumper=dumper, sort_keys=False)


_MAX_KEY = 64


def _libyaml_safe(obj: Any) -> bool:
    """Whether libyaml writes `obj` byte for byte as PyYAML's emitter does (tests/test_runner.py)."""
    if isinstance(obj, dict):
        return all((type(k) is int or isinstance(k, str) and len(k) <= _MAX_KEY and _printable(k))
                   and _libyaml_safe(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_libyaml_safe(v) for v in obj)
    if isinstance(obj, str):
        return _printable(obj)
    return obj is None or type(obj) in (bool, int, float)


def _printable(s: str) -> bool:
    return s.isascii() and s.isprintable()


def _named(exc: OSError, path: Path) -> OSError:
    """The same error, naming `path` (os.write and friends do not)."""
    if exc.filename is not None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def _open_temp(path: Path) -> tuple[int, Path]:
    """A new `.<name>.<random>.tmp` beside `path`, created exclusively with the umask's mode."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temp file name", str(path))


def _write_all(fd: int, data: bytes, path: Path) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError as exc:
            raise _named(exc, path) from None
        if n == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        view = view[n:]


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    fd, tmp = _open_temp(path)
    try:
        try:
            _write_all(fd, data, path)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_all_atomic(files: Sequence[tuple[Path, bytes]]) -> None:
    """write_bytes_atomic for several files, their fsyncs side by side: every temp file is
    written, all are made durable at once (one journal commit can serve them all, where one
    after the other each waits for its own), then each is renamed over its path, in order.

    A failure to write or sync raises the first error (naming its file) before any rename;
    no temp file is left behind in any case.
    """
    temps: list[tuple[Path, Path]] = []  # (temp file, its path) not renamed yet
    try:
        fds: list[int] = []
        try:
            for path, data in files:
                fd, tmp = _open_temp(Path(path))
                fds.append(fd)
                temps.append((tmp, Path(path)))
                _write_all(fd, data, Path(path))
            _fsync_all(fds, [path for _, path in temps])
        finally:
            for fd in fds:
                os.close(fd)
        while temps:
            os.replace(*temps[0])
            temps.pop(0)
    except BaseException:
        for tmp, _ in temps:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise


def _fsync_all(fds: list[int], paths: list[Path]) -> None:
    """fsync every fd, each but the first in a thread of its own (fsync releases the GIL)."""
    errors: list[OSError] = []

    def sync(fd: int, path: Path) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            errors.append(_named(exc, path))

    threads = [threading.Thread(target=sync, args=pair) for pair in zip(fds[1:], paths[1:])]
    for t in threads:
        t.start()
    if fds:
        sync(fds[0], paths[0])
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, dumps_deterministic(obj))


def json_file(path: Path, obj: Any) -> tuple[Path, bytes]:
    """(path, the bytes write_json_atomic writes there): an item of write_all_atomic."""
    return path, dumps_deterministic(obj).encode("utf-8")


class JsonlAppender:
    """Appends one JSON object per line, each line in a single write(2) on an O_APPEND fd.

    No buffer splits a line in two, and a write that fails part-way (disk full, file size
    limit) is cut back to the last whole line before the error is raised: after any
    failure the file holds whole lines only.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise _named(exc, self.path) from None

    def append(self, obj: Any) -> None:
        line = json.dumps(obj, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
        self.write_lines(line.encode("utf-8"))

    def write_lines(self, data: bytes) -> None:
        """Append whole lines already serialised (one trade, or the kernel's trades of a chunk).

        One write(2); a short one (full disk, size limit, a signal) is followed by the rest,
        which either completes the lines or fails with the real reason, after the file is cut
        back to its last whole line.
        """
        try:
            _write_all(self._fd, data, self.path)
        except OSError:
            self._cut_back()
            raise
        self._size += len(data)

    def _cut_back(self) -> None:
        """Drop a partial last line (truncating frees space, so it works on a full disk)."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:  # pragma: no cover - nothing better to do; the error raised next says why
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
