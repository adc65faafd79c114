"""Blobs in DVC's own cache, in DVC's layout, written without importing DVC.

DVC 3 keeps a file's bytes at `<cache>/files/md5/<first 2 hex>/<other 30 hex>` (the MD5 of
the bytes, nothing normalised) and a folder as a `.dir` object: the JSON list
`[{"md5": ..., "relpath": ...}]` sorted by path parts, serialised by `json.dumps(...,
sort_keys=True)`, stored under its own MD5 plus `.dir`. A `.dvc` file naming that `.dir`
object is what `dvc push` / `dvc pull` / `dvc fetch` follow: DVC transfers only objects that
a `.dvc` file or `dvc.lock` references, never loose cache objects, so each run's blobs get a
`.dvc` file of their own (tests/test_reproduce.py checks the bytes against `dvc add` and
moves them with the real `dvc push` / `dvc pull`).

Importing DVC costs ~0.3 s; hashlib costs nothing, so a run writes these itself.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from src.provenance.digests import file_digest_and_size

READ_ONLY = 0o444  # DVC makes cache objects read-only: a link to one cannot be edited in place


def _token() -> str:
    return os.urandom(4).hex()  # not `secrets`: its import costs more than a run may spend here


class BlobError(OSError):
    """A blob that cannot be written or read (names the object and the cache)."""


def _ini_value(path: Path, section: str, key: str) -> str | None:
    """`key` of `[section]` in DVC's INI-style config (configparser costs ~8 ms to import)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    current, found = None, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip().strip("'\"")
        elif current == section and "=" in line:
            k, _, v = line.partition("=")
            if k.strip() == key:
                found = v.strip().strip("'\"")
    return found


def cache_dir(root: Path) -> Path | None:
    """The DVC cache of the repo at `root`: `cache.dir` of .dvc/config.local or .dvc/config
    (relative to .dvc/), else .dvc/cache; None when `root` is not a DVC repo."""
    dvc = Path(root) / ".dvc"
    if not dvc.is_dir():
        return None
    found = _ini_value(dvc / "config.local", "cache", "dir") or _ini_value(dvc / "config", "cache", "dir")
    return (dvc / found).resolve() if found else dvc / "cache"


def write_small(path: Path, text: str) -> None:
    """Write via a temp file and rename (no fsync: a manifest is remade by rerunning; ~6 ms saved)."""
    tmp = path.parent / f".{path.name}.{_token()}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def object_path(cache: Path, md5: str) -> Path:
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def md5_file(path: Path) -> tuple[str, int]:
    """MD5 (DVC's object name) of a file and its size."""
    return file_digest_and_size(path, "md5")


def _store(cache: Path, md5: str, write) -> None:  # type: ignore[no-untyped-def]
    dest = object_path(cache, md5)
    if dest.exists():
        return  # content-addressed: already there means already right
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{_token()}.tmp"
    try:
        write(tmp)
        os.chmod(tmp, READ_ONLY)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BlobError(exc.errno, f"cannot store blob {md5} in the DVC cache {cache}: {exc.strerror or exc}") from None


def put_bytes(cache: Path, data: bytes) -> tuple[str, int]:
    md5 = hashlib.md5(data).hexdigest()
    _store(cache, md5, lambda tmp: tmp.write_bytes(data))
    return md5, len(data)


def put_file(cache: Path, path: Path, md5: str | None = None) -> tuple[str, int]:
    """Copy a file into the cache (the user's file stays as it is); `md5` when already known."""
    if md5 is None:
        md5, size = md5_file(path)
    else:
        size = path.stat().st_size
    import shutil

    _store(cache, md5, lambda tmp: shutil.copyfile(path, tmp))
    return md5, size


def tree_bytes(entries: dict[str, str]) -> bytes:
    """A `.dir` object's bytes for {relpath: md5}, exactly as DVC writes it."""
    rows = [{"md5": entries[p], "relpath": p} for p in sorted(entries, key=lambda p: tuple(p.split("/")))]
    return json.dumps(rows, sort_keys=True).encode("utf-8")


def put_tree(cache: Path, entries: dict[str, str]) -> str:
    """Store the `.dir` object of a folder of blobs; returns `<md5>.dir`."""
    data = tree_bytes(entries)
    md5 = hashlib.md5(data).hexdigest() + ".dir"
    _store(cache, md5, lambda tmp: tmp.write_bytes(data))
    return md5


def read_tree(cache: Path, dir_md5: str) -> dict[str, str] | None:
    """{relpath: md5} of a `.dir` object; None when it is not in the cache."""
    try:
        rows = json.loads(object_path(cache, dir_md5).read_bytes())
    except FileNotFoundError:
        return None
    return {r["relpath"]: r["md5"] for r in rows}


def dvc_file_text(dir_md5: str, size: int, nfiles: int, out: str) -> str:
    """A `.dvc` file tracking folder `out` (relative to the .dvc file), as `dvc add` writes it."""
    return f"outs:\n- md5: {dir_md5}\n  size: {size}\n  nfiles: {nfiles}\n  hash: md5\n  path: {out}\n"


def read_dvc_file(text: str) -> str | None:
    """The `.dir` md5 a `.dvc` file names, or None."""
    for line in text.splitlines():
        key, _, value = line.strip().lstrip("- ").partition(":")
        if key == "md5" and value.strip().endswith(".dir"):
            return value.strip()
    return None


def missing(cache: Path, md5s: list[str]) -> list[str]:
    return [m for m in md5s if not object_path(cache, m).is_file()]


def fetch(root: Path, dir_md5: str, size: int, nfiles: int) -> str | None:
    """`dvc fetch` a folder of blobs from the repo's default remote into its cache, through a
    temporary `.dvc` file naming it; None on success, else DVC's last error line."""
    import subprocess
    import sys

    tmpdir = Path(root) / "repro"
    tmpdir.mkdir(exist_ok=True)
    name = f".fetch-{os.getpid()}-{_token()}"
    dvcfile = tmpdir / f"{name}.dvc"
    dvcfile.write_text(dvc_file_text(dir_md5, size, nfiles, name), encoding="utf-8")
    exe = Path(sys.executable).parent / "dvc"
    cmd = [str(exe) if exe.exists() else "dvc", "fetch", str(dvcfile.relative_to(root))]
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"dvc fetch not runnable: {exc}"
    finally:
        dvcfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        return lines[-1].strip() if lines else f"dvc fetch exited {proc.returncode}"
    return None
