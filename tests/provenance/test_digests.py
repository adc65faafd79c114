"""src/provenance/digests.py by hand: file digests and the canonical JSON digest."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import xxhash

from src.provenance.digests import digest_obj, file_record, sha256_file, xxh3_file


def test_sha256_file_is_the_standard_sha256(tmp_path: Path) -> None:
    f = tmp_path / "abc.txt"
    f.write_bytes(b"abc")
    # FIPS 180-2's example: SHA-256("abc")
    assert sha256_file(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(f) == hashlib.sha256(b"abc").hexdigest()


def test_xxh3_file_is_xxh3_128_of_the_bytes(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"\x00\xffbytes, not text\r\n")
    assert xxh3_file(f) == xxhash.xxh3_128_hexdigest(b"\x00\xffbytes, not text\r\n")
    assert len(xxh3_file(f)) == 32


def test_digest_obj_hashes_sorted_compact_utf8_json() -> None:
    assert digest_obj({"b": [1, 2.5], "a": "é"}) == xxhash.xxh3_128_hexdigest('{"a":"é","b":[1,2.5]}'.encode("utf-8"))


def test_digest_obj_key_order_does_not_matter_values_do() -> None:
    assert digest_obj({"a": 1, "b": {"c": 2, "d": 3}}) == digest_obj({"b": {"d": 3, "c": 2}, "a": 1})
    assert digest_obj({"a": 1}) != digest_obj({"a": 1.5})
    assert digest_obj([1, 2]) != digest_obj([2, 1])  # lists keep their order


def test_digest_obj_writes_unknown_types_as_their_str() -> None:
    assert digest_obj({"p": Path("data/x.parquet")}) == digest_obj({"p": "data/x.parquet"})


def test_file_record_names_the_file_relative_to_root(tmp_path: Path) -> None:
    f = tmp_path / "src" / "pkg" / "m.py"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x = 1\n")
    os.utime(f, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    assert file_record(tmp_path, f) == {
        "path": "src/pkg/m.py",
        "size": 6,
        "mtime_ns": 1_700_000_000_123_456_789,
        "xxh3_128": xxhash.xxh3_128_hexdigest(b"x = 1\n"),
    }
