"""src/provenance/fingerprint.py by hand: what goes into the fingerprint, and what stays out."""
from __future__ import annotations

import copy

import xxhash

from src.provenance.fingerprint import config_digest, deterministic_config, fingerprint

RESOLVED = {
    "seed": 42,
    "run": {"id": "my-run", "overwrite": False},
    "engine": "auto",
    "clock": "simulated",
    "market": {"kind": "replay", "path": "data/smoke.parquet", "book_levels": 5},
    "stage": {"id": "d92-5"},
}


def xxh(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


def test_deterministic_config_drops_run_engine_clock_and_the_replay_path_only() -> None:
    before = copy.deepcopy(RESOLVED)
    assert deterministic_config(RESOLVED) == {
        "seed": 42,
        "market": {"kind": "replay", "book_levels": 5},
        "stage": {"id": "d92-5"},
    }
    assert RESOLVED == before  # the caller's config is not changed


def test_deterministic_config_without_a_market_path_keeps_the_market() -> None:
    assert deterministic_config({"market": {"kind": "synthetic"}, "seed": 1}) == {"market": {"kind": "synthetic"},
                                                                                 "seed": 1}


def test_config_digest_is_the_canonical_json_of_the_deterministic_part() -> None:
    # sorted keys, no whitespace: written out by hand
    assert config_digest(RESOLVED) == xxh('{"market":{"book_levels":5,"kind":"replay"},"seed":42,"stage":{"id":"d92-5"}}')


def test_config_digest_ignores_volatile_and_location_keys_but_not_values() -> None:
    other = copy.deepcopy(RESOLVED)
    other.update(run={"id": "x", "overwrite": True}, engine="kernel", clock="realtime")
    other["market"]["path"] = "/abs/elsewhere/smoke.parquet"
    assert config_digest(other) == config_digest(RESOLVED)
    other["market"]["book_levels"] = 6
    assert config_digest(other) != config_digest(RESOLVED)


CODE = [{"path": "src/b.py", "xxh3_128": "bb"}, {"path": "src/a.py", "xxh3_128": "aa"}]


def test_fingerprint_is_xxh3_of_its_documented_fields() -> None:
    data = xxh('{"generator":"g","seed":7}')
    expected = xxh('{"code":{"src/a.py":"aa","src/b.py":"bb"},"config":"cfg","data":"' + data
                   + '","seed":7,"version":1,"zone_profile_sha256":"zz"}')
    assert fingerprint("cfg", CODE, "zz", {"seed": 7, "generator": "g"}, 7) == expected


def test_fingerprint_changes_with_each_input_and_not_with_file_order() -> None:
    base = fingerprint("cfg", CODE, "zz", {"k": 1}, 7)
    assert fingerprint("cfg", list(reversed(CODE)), "zz", {"k": 1}, 7) == base
    others = [
        fingerprint("cfg2", CODE, "zz", {"k": 1}, 7),
        fingerprint("cfg", [CODE[0], {"path": "src/a.py", "xxh3_128": "a2"}], "zz", {"k": 1}, 7),
        fingerprint("cfg", CODE[:1], "zz", {"k": 1}, 7),
        fingerprint("cfg", CODE, "zy", {"k": 1}, 7),
        fingerprint("cfg", CODE, "zz", {"k": 2}, 7),
        fingerprint("cfg", CODE, "zz", {"k": 1}, 8),
    ]
    assert len({base, *others}) == 7
