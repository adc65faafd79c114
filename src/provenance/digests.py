"""File digests: xxh3-128 for speed on every file, SHA-256 where a standard digest is asked."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import xxhash


def xxh3_file(path: Path) -> str:
    return xxhash.xxh3_128_hexdigest(Path(path).read_bytes())


def file_digest_and_size(path: str | os.PathLike[str], algorithm: str = "sha256") -> tuple[str, int]:
    """Digest (hex) of a file's bytes with a hashlib algorithm, read in 1 MiB blocks (memory stays
    flat), and how many bytes were read."""
    h, size = hashlib.new(algorithm), 0
    with open(path, "rb", buffering=0) as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def sha256_and_size(path: str | os.PathLike[str]) -> tuple[str, int]:
    """SHA-256 (hex) of a file's bytes and its size."""
    return file_digest_and_size(path, "sha256")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes: the one way the project digests a file with SHA-256."""
    return sha256_and_size(path)[0]


def digest_obj(obj: Any) -> str:
    """xxh3-128 of the canonical JSON of `obj` (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


def file_record(root: Path, path: Path) -> dict[str, Any]:
    """relative path, size, mtime (ns and ISO-ish float) and xxh3-128 of one file."""
    st = os.stat(path)
    return {
        "path": Path(path).relative_to(root).as_posix(),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "xxh3_128": xxh3_file(path),
    }
