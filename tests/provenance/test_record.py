"""src/provenance/record.py by hand: redaction, and the deterministic part of the record."""
from __future__ import annotations

import pytest

from src.provenance.record import REDACTED, deterministic_provenance, redact

KEYLIKE = "Ab3" * 11  # 33 characters mixing upper case, lower case and digits: looks like an API key


@pytest.mark.parametrize("key", ["api_key", "API-KEY", "upbit_secret", "token", "db_password", "access_key",
                                 "private_key", "credentials", "auth"])
def test_values_under_secret_looking_keys_are_redacted(key: str) -> None:
    assert redact({key: "hunter2"}, _env=[]) == {key: REDACTED}
    assert redact({key: 12345}, _env=[]) == {key: REDACTED}  # not only strings


def test_none_and_ordinary_keys_stay() -> None:
    obj = {"api_key": None, "seed": 42, "stage": {"id": "d92-5", "duration_s": 600.0}, "symbols": ["BTC", "ETH"]}
    assert redact(obj, _env=[]) == obj


def test_nested_and_listed_values_are_redacted_under_a_secret_key() -> None:
    assert redact({"market": {"keys": {"token": "t"}, "api_key": ["a", "b"]}}, _env=[]) == \
        {"market": {"keys": {"token": REDACTED}, "api_key": [REDACTED, REDACTED]}}


def test_key_like_strings_are_redacted_anywhere_shorter_ones_not() -> None:
    assert redact({"note": KEYLIKE}, _env=[]) == {"note": REDACTED}
    assert redact(["x", KEYLIKE], _env=[]) == ["x", REDACTED]
    short = KEYLIKE[:31]  # under 32 characters
    assert redact({"note": short}, _env=[]) == {"note": short}
    lower = "abc" * 11  # no upper case, no digit: a word, not a key
    assert redact({"note": lower}, _env=[]) == {"note": lower}


def test_overrides_keep_their_key_and_lose_the_value() -> None:
    assert redact(["+market.api_key=abc", "seed=7"], _env=[]) == [f"+market.api_key={REDACTED}", "seed=7"]
    assert redact([f"stage.description={KEYLIKE}"], _env=[]) == [f"stage.description={REDACTED}"]


def test_environment_secrets_are_redacted_wherever_they_land() -> None:
    env = ["s3cr3t-value-123"]
    assert redact({"description": "my s3cr3t-value-123 here"}, _env=env) == {"description": REDACTED}
    assert redact(["stage.description=s3cr3t-value-123"], _env=env) == [f"stage.description={REDACTED}"]
    assert redact({"description": "nothing secret"}, _env=env) == {"description": "nothing secret"}


def test_secret_environment_variables_are_read_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPBIT_SECRET_KEY", "long-enough-secret")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a secret-looking name, but under 12 characters
    assert redact({"d": "x long-enough-secret y"}) == {"d": REDACTED}
    assert redact({"d": "disabled"}) == {"d": "disabled"}


def _meta() -> dict:
    return {
        "schema_version": 2, "stage_id": "d92-5", "run_id": "d92-5-top10-20261130T064802Z-607ee1",
        "started_at": "2026-11-30T06:48:02.000000+00:00", "pid": 123, "environment": {"host": "box"},
        "fingerprint": "f" * 32, "seed": 42,
        "config": {"digest": "cd", "choices": {"stage": "d92-5"},
                   "resolved": {"seed": 42, "run": {"id": "x"}, "engine": "auto", "clock": "simulated",
                                "market": {"kind": "replay", "path": "data/a.parquet"}},
                   "files": [{"path": "conf/config.yaml", "xxh3_128": "c1", "mtime_ns": 5, "size": 9}]},
        "code": {"digest": "kd", "files": [{"path": "src/run.py", "xxh3_128": "k1", "mtime_ns": 6, "size": 1}]},
        "zone_profile": {"path": "conf/zone_profile/default.yaml", "name": "default", "sha256": "z" * 64,
                         "mode": "advisory", "profiles_applied": {"BTC": "major_advisory"}, "mtime": "2026-11-30",
                         "size": 100},
        "data": {"digest": "dd", "identity": {"sha256": "e" * 64}, "location": "/abs/data/a.parquet"},
    }


def test_deterministic_provenance_holds_no_volatile_fact() -> None:
    assert deterministic_provenance(_meta()) == {
        "schema_version": 2,
        "stage_id": "d92-5",
        "fingerprint": "f" * 32,
        "seed": 42,
        "config": {"digest": "cd", "choices": {"stage": "d92-5"},
                   "resolved": {"seed": 42, "market": {"kind": "replay"}},
                   "files": {"conf/config.yaml": "c1"}},
        "code": {"digest": "kd", "files": {"src/run.py": "k1"}},
        "zone_profile": {"path": "conf/zone_profile/default.yaml", "name": "default", "sha256": "z" * 64,
                         "mode": "advisory", "profiles_applied": {"BTC": "major_advisory"}},
        "data": {"digest": "dd", "identity": {"sha256": "e" * 64}},
    }


def test_deterministic_provenance_is_equal_for_two_runs_of_the_same_inputs() -> None:
    a, b = _meta(), _meta()
    b.update(run_id="other", started_at="2027-01-01T00:00:00+00:00", pid=9)
    b["config"]["resolved"]["run"] = {"id": "other", "overwrite": True}
    b["config"]["files"][0]["mtime_ns"] = 77
    b["zone_profile"]["mtime"] = "2027-01-01"
    b["data"]["location"] = "data/a.parquet"
    assert deterministic_provenance(a) == deterministic_provenance(b)
