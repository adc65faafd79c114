"""The config cache's parts, in process: the typed config rebuilt from plain values equals
OmegaConf's object field by field; the key covers every input; an entry is trusted only
when intact and of this run's inputs; configs using changeable resolvers are not cached.
(Through the real CLI: tests/test_config_cache_cli.py.)"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from enum import Enum
from pathlib import Path

import pytest

from src.config import cache
from src.config.loader import compose_config, finish, from_composed, resolve
from src.config.rebuild import RebuildError, rebuild, same
from src.config.schema import FxKind, LiveMarketConfig, Mode, ReplayMarketConfig, RootConfig

REPO = Path(__file__).resolve().parents[2]
STAGES = sorted(p.stem for p in (REPO / "conf" / "stage").glob("*.yaml"))
OVERRIDES = [
    [],
    ["seed=7", "costs=bnb_discount", "universe=top20", "zone_profile=tight"],
    ["engine=reference", "clock=realtime", "stage.mode=strict"],  # enums
    ["plots.symbol=ETH", "run.id=pinned", "run.note=note1", "run.dvc_namespace=ns"],  # optional fields set
    ["stage.profit_gate_krw=0"],  # the PNL-1 rule appended to a list
    ["market.fx_kind=walk", "market.fx_vol_bps_per_sqrt_s=1.5", "market.book_levels=3"],
    ["market=replay", "market.path=data/x.parquet"],  # Optional[int] / Optional[float] left null
    ["market=live", "clock=realtime", "+market.api_urls.upbit=http://127.0.0.1:1"],  # a map
    ["stage.acceptance=[]", "risk.max_open_positions=3", "stage.tick_s=2"],
]


def assert_identical(a: object, b: object, where: str = "cfg") -> None:
    """Type for type, value for value, key order too; independent of rebuild.same."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        assert [f.name for f in dataclasses.fields(a)] == [f.name for f in dataclasses.fields(b)]
        for f in dataclasses.fields(a):
            assert_identical(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, list):
        assert len(a) == len(b), where  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b)):  # type: ignore[call-overload]
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where  # type: ignore[call-overload]
        for k in a:
            assert_identical(a[k], b[k], f"{where}.{k}")  # type: ignore[index]
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _hydra(overrides: list[str]):
    cfg, choices = compose_config(REPO, overrides)
    return cfg, choices, from_composed(REPO, cfg, choices, overrides)


# every stage as it is, and each set of overrides on the smoke and on the 24-hour longrun
CASES = [[f"stage={s}"] for s in STAGES] + [[f"stage={s}", *o] for o in OVERRIDES[1:] for s in ("d92-5",)] \
    + [["stage=longrun-24h", *OVERRIDES[2]], ["stage=d77-0", *OVERRIDES[4]]]


@pytest.mark.parametrize("overrides", CASES, ids=" ".join)
def test_rebuilt_config_equals_omegaconf_to_object_field_by_field(overrides: list[str]) -> None:
    cfg, choices, loaded = _hydra(overrides)
    plain = json.loads(json.dumps(resolve(cfg)))  # through JSON, as an entry holds it
    again = finish(REPO, rebuild(plain), plain, choices, overrides, {})
    assert_identical(again.cfg, loaded.cfg)
    assert_identical(again.resolved, loaded.resolved)
    assert again == loaded
    assert same(again.cfg, loaded.cfg) and same(again.resolved, loaded.resolved)


def test_the_oracle_sees_the_types_that_matter() -> None:
    _, _, loaded = _hydra(["stage=d92-5", "market=replay", "market.path=x.parquet", "stage.profit_gate_krw=0"])
    c = loaded.cfg
    assert isinstance(c, RootConfig) and isinstance(c.market, ReplayMarketConfig)
    assert c.stage.mode is Mode.advisory and c.market.book_levels is None
    assert type(c.risk.max_notional_usd) is float and type(c.risk.max_open_positions) is int
    assert c.stage.acceptance[-1].id == "PNL-1" and loaded.resolved["stage"]["acceptance"][-1]["id"] == "PNL-1"
    live = _hydra(["stage=d92-5", "market=live", "clock=realtime"])[2].cfg.market
    assert isinstance(live, LiveMarketConfig) and live.api_urls == {}


def test_same_is_strict() -> None:
    assert same({"a": 1.0}, {"a": 1.0}) and same(float("nan"), float("nan"))
    assert not same(1, 1.0) and not same(True, 1) and not same("advisory", Mode.advisory)
    assert not same({"a": 1, "b": 2}, {"b": 2, "a": 1}) and not same([1], (1,)) and not same([1], [1, 2])
    _, _, loaded = _hydra(["stage=d92-5"])
    other = dataclasses.replace(loaded.cfg, seed=loaded.cfg.seed + 1)
    assert not same(loaded.cfg, other)
    deep = json.loads(json.dumps(loaded.resolved))
    deep["zone_profile"]["profiles"][next(iter(deep["zone_profile"]["profiles"]))]["zones"][0]["tp_bps"] += 1
    assert not same(deep, loaded.resolved)


@pytest.mark.parametrize("path,value,needle", [
    (("risk", "max_notional_usd"), 2000, "not a float"),  # an int where the schema has a float
    (("risk", "max_open_positions"), 20.0, "not a int"),
    (("seed",), True, "not a int"),
    (("stage", "mode"), "STRICT", "not a name of Mode"),
    (("market", "kind"), "other", "market.kind"),
    (("market", "fx_kind"), FxKind.walk.value + "x", "not a name of FxKind"),
    (("stage", "acceptance"), {}, "not a list"),
    (("zone_profile", "symbols"), [], "not a map"),
])
def test_rebuild_refuses_values_of_the_wrong_type(path: tuple[str, ...], value: object, needle: str) -> None:
    plain = json.loads(json.dumps(_hydra(["stage=d92-5"])[2].resolved))
    node = plain
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    with pytest.raises(RebuildError, match=needle):
        rebuild(plain)


def test_rebuild_refuses_missing_and_extra_keys() -> None:
    plain = json.loads(json.dumps(_hydra(["stage=d92-5"])[2].resolved))
    del plain["risk"]["min_fill_usd"]
    with pytest.raises(RebuildError, match="RiskConfig"):
        rebuild(plain)
    plain["risk"]["min_fill_usd"] = 1.0
    plain["risk"]["extra"] = 1.0
    with pytest.raises(RebuildError, match="RiskConfig"):
        rebuild(plain)


# -- the key ------------------------------------------------------------------------------------

@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copytree(REPO / "src" / "config", root / "src" / "config", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "src" / "runs").mkdir()
    shutil.copy2(REPO / "src" / "runs" / "paths.py", root / "src" / "runs" / "paths.py")
    return root


def _key(root: Path, overrides: list[str]) -> str:
    cache._keys.clear()
    return cache.cache_key(root, overrides)[0]


def test_key_covers_every_input(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _key(tree, ["stage=d92-5"])
    assert len(base) == 32 and base == _key(tree, ["stage=d92-5"])
    assert _key(tree, ["stage=d92-5", "seed=1"]) != base
    assert _key(tree, ["stage=d92-5 "]) != base and _key(tree, []) != base  # the list exactly as given
    assert _key(tree, ["seed=1", "stage=d92-5"]) != _key(tree, ["stage=d92-5", "seed=1"])

    def changed(edit) -> str:  # noqa: ANN001
        edit()
        return _key(tree, ["stage=d92-5"])

    f = tree / "conf" / "stage" / "d92-5.yaml"
    st, text = f.stat(), f.read_text()
    assert "duration_s: 600" in text
    f.write_text(text.replace("duration_s: 600", "duration_s: 700"))  # same size ...
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and mtime
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert _key(tree, ["stage=d92-5"]) != base
    f.write_text(text)
    assert _key(tree, ["stage=d92-5"]) == base
    new = tree / "conf" / "universe" / "top30.yaml"
    assert changed(lambda: new.write_text("name: top30\ntop_n: 30\n")) != base
    assert changed(lambda: new.rename(tree / "conf" / "universe" / "top31.yaml")) != base
    assert changed(lambda: (tree / "conf" / "universe" / "top31.yaml").unlink()) == base
    assert changed(lambda: (tree / "conf" / "notes.txt").write_text("x")) != base  # any file under conf/
    (tree / "conf" / "notes.txt").unlink()
    code = tree / "src" / "config" / "validate.py"
    assert changed(lambda: code.write_text(code.read_text() + "\n")) != base
    code.write_text(code.read_text()[:-1])
    paths = tree / "src" / "runs" / "paths.py"
    assert changed(lambda: paths.write_text(paths.read_text() + "\n")) != base
    paths.write_text(paths.read_text()[:-1])
    assert _key(tree, ["stage=d92-5"]) == base
    for dist in cache.PACKAGES:
        monkeypatch.setattr(cache, "_version", lambda d, m, dist=dist, real=cache._version: "9.9" if d == dist
                            else real(d, m))
        assert _key(tree, ["stage=d92-5"]) != base, dist
        monkeypatch.undo()
    monkeypatch.setattr(cache, "_plugins", lambda: ["hydra_other_plugin"])
    assert _key(tree, ["stage=d92-5"]) != base
    monkeypatch.undo()
    monkeypatch.setattr(cache.sys, "version", "3.99.0 (other)")
    assert _key(tree, ["stage=d92-5"]) != base


def test_versions_are_the_installed_ones() -> None:
    from importlib import metadata

    v = cache.versions()
    assert {d: v[d] for d in cache.PACKAGES} == {d: metadata.version(d) for d in cache.PACKAGES}
    import importlib.util

    installed = {n for n in ("hydra_ray_launcher", "hydra_joblib_launcher")  # pyproject's extras, if installed
                 if importlib.util.find_spec(f"hydra_plugins.{n}") is not None}
    assert installed <= set(v["hydra_plugins"].split(","))


def test_a_symlinked_folder_under_conf_is_not_keyed(tree: Path) -> None:
    (tree / "conf" / "extra").symlink_to(tree / "conf" / "universe")
    cache._keys.clear()
    with pytest.raises(cache.Uncacheable):
        cache.cache_key(tree, ["stage=d92-5"])


# -- entries ------------------------------------------------------------------------------------

@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A repo copy (conf/ and src/) with one entry, for stage=d92-5."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.delenv(cache.ENV, raising=False)
    cache._keys.clear()
    loaded = cache.load(root, ["stage=d92-5"])
    assert loaded.source["via"] == "hydra" and loaded.source["cache"] == {"key": loaded.source["cache"]["key"],
                                                                          "stored": True}
    entry = cache.entry_path(root, loaded.source["cache"]["key"])
    assert entry.is_file()
    return root, entry


def _rewrite(entry: Path, edit, *, reseal: bool) -> None:  # noqa: ANN001
    head, _, body = entry.read_bytes().partition(b"\n")
    obj = json.loads(body)
    edit(obj)
    body = json.dumps(obj).encode()
    header = json.loads(head)
    if reseal:
        header["sha256"] = hashlib.sha256(body).hexdigest()
    entry.write_bytes(json.dumps(header).encode() + b"\n" + body)


def test_a_stored_entry_is_a_hit_equal_to_hydras(stored: tuple[Path, Path]) -> None:
    root, entry = stored
    hit = cache.lookup(root, ["stage=d92-5"])
    assert hit is not None and hit.source["via"] == "cache" and hit.source["entry"].endswith(entry.name)
    fresh = _hydra(["stage=d92-5"])[2]
    assert_identical(hit.cfg, fresh.cfg)
    assert_identical(hit.resolved, fresh.resolved)
    assert hit.choices == fresh.choices and hit.config_files == fresh.config_files
    assert cache.lookup(root, ["stage=d92-5", "seed=1"]) is None
    assert b"!!python" not in entry.read_bytes() and json.loads(entry.read_bytes().partition(b"\n")[2])


def test_cache_off_by_environment(stored: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = stored
    for off in ("0", "off", "false", "no", " OFF "):
        monkeypatch.setenv(cache.ENV, off)
        assert cache.lookup(root, ["stage=d92-5"]) is None
        assert cache.load(root, ["stage=d92-5"]).source["cache"] == {"disabled": "CONFIG_CACHE=0"}
    monkeypatch.setenv(cache.ENV, "1")
    assert cache.lookup(root, ["stage=d92-5"]) is not None


@pytest.mark.parametrize("damage", ["edited", "truncated", "garbage", "empty", "header", "resealed-type",
                                    "resealed-foreign-version", "resealed-other-key", "resealed-invalid",
                                    "resealed-overrides", "resealed-choices"])
def test_a_damaged_entry_is_ignored_and_rewritten(stored: tuple[Path, Path], damage: str) -> None:
    root, entry = stored
    good = entry.read_bytes()
    if damage == "edited":  # the seed changed, the digest not
        _rewrite(entry, lambda e: e["resolved"].update(seed=43), reseal=False)
    elif damage == "truncated":
        entry.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        entry.write_bytes(b"\xff\xfe not json at all")
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "header":
        entry.write_bytes(b'{"config_cache": 2}\n' + good.partition(b"\n")[2])
    elif damage == "resealed-type":  # digest fixed up, but a value of the wrong type
        _rewrite(entry, lambda e: e["resolved"].update(seed="42"), reseal=True)
    elif damage == "resealed-foreign-version":
        _rewrite(entry, lambda e: e["inputs"].update({"hydra-core": "0.1"}), reseal=True)
    elif damage == "resealed-other-key":
        _rewrite(entry, lambda e: e.update(key="0" * 32), reseal=True)
    elif damage == "resealed-invalid":  # well typed, but validation refuses it
        _rewrite(entry, lambda e: e["resolved"]["risk"].update(max_open_positions=0), reseal=True)
    elif damage == "resealed-overrides":
        _rewrite(entry, lambda e: e.update(overrides=["stage=d77-0"]), reseal=True)
    elif damage == "resealed-choices":
        _rewrite(entry, lambda e: e["choices"].update(bogus="x"), reseal=True)
    assert cache.lookup(root, ["stage=d92-5"]) is None
    again = cache.load(root, ["stage=d92-5"])  # composed by Hydra, never an error, and stored again
    assert again.source["via"] == "hydra" and again.source["cache"]["stored"] is True
    assert again.cfg.seed == 42 and entry.read_bytes() == good
    assert cache.lookup(root, ["stage=d92-5"]) is not None


def test_an_accepted_resealed_edit_shows_what_the_digest_is_for(stored: tuple[Path, Path]) -> None:
    """The digest catches corruption and stray edits; an entry re-sealed with valid values is
    read (anyone who can write .cache/ can write src/ too: docs/configuration.md says so)."""
    root, entry = stored
    _rewrite(entry, lambda e: e["resolved"].update(seed=43), reseal=True)
    hit = cache.lookup(root, ["stage=d92-5"])
    assert hit is not None and hit.cfg.seed == 43


@pytest.mark.parametrize("value,resolver", [
    ("${oc.env:HOME}", "oc.env"), ("${now:%Y}", "now"), ("x ${oc.env:HOME,dflt} y", "oc.env"),
    ("${ hydra:runtime.cwd}", "hydra"), ("${my_resolver:1}", "my_resolver"),
])
def test_changeable_resolvers_are_not_cached(stored: tuple[Path, Path], value: str, resolver: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = stored
    monkeypatch.setenv("HOME", "/home/x")
    if resolver == "my_resolver":
        from omegaconf import OmegaConf

        OmegaConf.register_new_resolver("my_resolver", lambda x: f"r{x}", replace=True)
    overrides = ["stage=d92-5", f"run.note='{value}'"]
    cfg, _, _ = _hydra(overrides) if resolver != "hydra" else (None, None, None)
    if cfg is not None:
        assert resolver in (cache.impure(cfg) or "")
    before = sorted((root / ".cache" / "config").iterdir())
    if resolver == "hydra":  # needs Hydra's runtime: refused as a config error; never cached either
        with pytest.raises(Exception):
            cache.load(root, overrides)
    else:
        loaded = cache.load(root, overrides)
        assert loaded.source["cache"]["skipped"].startswith(f"uses resolver {resolver}")
    assert sorted((root / ".cache" / "config").iterdir()) == before
    assert cache.lookup(root, overrides) is None


def test_pure_interpolations_are_cached(stored: tuple[Path, Path]) -> None:
    root, _ = stored
    overrides = ["stage=d92-5", "run.note='${stage.id} ${oc.select:stage.id,x}'"]
    loaded = cache.load(root, overrides)
    assert loaded.cfg.run.note == "d92-5 d92-5" and loaded.source["cache"]["stored"] is True
    hit = cache.lookup(root, overrides)
    assert hit is not None and hit.cfg.run.note == "d92-5 d92-5"


def test_an_unwritable_cache_is_no_error(stored: tuple[Path, Path]) -> None:
    root, _ = stored
    shutil.rmtree(root / ".cache")
    (root / ".cache").write_text("a file where the folder goes")
    loaded = cache.load(root, ["stage=d92-5"])
    assert loaded.source["via"] == "hydra" and loaded.source["cache"]["stored"] is False
    assert "NotADirectoryError" in loaded.source["cache"]["why"] or "FileExistsError" in loaded.source["cache"]["why"]


def test_old_entries_are_pruned(stored: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root, entry = stored
    monkeypatch.setattr(cache, "MAX_ENTRIES", 2)
    old = entry.parent / ("0" * 32 + ".json")
    old.write_text("x")
    os.utime(old, ns=(1, 1))
    cache.load(root, ["stage=d92-5", "seed=1"])
    names = sorted(p.name for p in entry.parent.iterdir())
    assert old.name not in names and entry.name in names and len(names) == 2


def test_no_float_is_lost_through_json() -> None:
    for x in (0.1, 1e-300, 2.0**-1074, 1.7976931348623157e308, -0.0):
        assert json.loads(json.dumps(x)) == x and math.copysign(1, json.loads(json.dumps(x))) == math.copysign(1, x)
    assert issubclass(Mode, Enum)


def test_a_rebuild_that_differs_from_hydras_is_not_stored(stored: tuple[Path, Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root, entry = stored
    real = cache.rebuild

    def off_by_one(plain):  # noqa: ANN001, ANN202
        typed = real(plain)
        typed.risk.max_open_positions += 1
        return typed

    monkeypatch.setattr(cache, "rebuild", off_by_one)
    loaded = cache.load(root, ["stage=d92-5", "seed=5"])
    assert loaded.source["cache"] == {"key": loaded.source["cache"]["key"], "stored": False,
                                      "why": "the config rebuilt from JSON differs from Hydra's"}
    assert not cache.entry_path(root, loaded.source["cache"]["key"]).exists()
    assert loaded.cfg.risk.max_open_positions == _hydra(["stage=d92-5", "seed=5"])[2].cfg.risk.max_open_positions
