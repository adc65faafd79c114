"""src/provenance/versions.py gives importlib.metadata's answer without importing it (a run's record)."""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from src.provenance import versions
from src.provenance.record import KEY_PACKAGES

REPO = Path(__file__).resolve().parents[1]


def _metadata(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize("dist", [*KEY_PACKAGES, "numba", "llvmlite", "pyyaml", "hydra_core", "Hydra.Core",
                                  "no-such-dist-xyz"])
def test_same_as_importlib_metadata(dist: str) -> None:
    assert versions.version(dist) == _metadata(dist)


def _fake(site: Path, folder: str, text: str, file: str = "METADATA") -> None:
    (site / folder).mkdir(parents=True)
    (site / folder / file).write_text(text)


def test_first_path_entry_wins_names_normalised_and_headers_only(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _fake(a, "Foo_Bar-1.0.dist-info", "Metadata-Version: 2.1\nName: foo-bar\nVersion: 1.0\n\nVersion: 9\n")
    _fake(b, "foo.bar-2.0.dist-info", "Name: foo.bar\nVersion: 2.0\n")
    _fake(b, "eggy-3.1.egg-info", "Name: eggy\nVersion: 3.1\n", file="PKG-INFO")
    (b / "filed-0.5.egg-info").write_text("Name: filed\nversion:  0.5 \n")
    _fake(b, "nover-1.dist-info", "Name: nover\n")
    monkeypatch.setattr(sys, "path", [str(a), str(tmp_path / "missing"), str(b)])
    monkeypatch.setattr(versions, "_listings", {})
    for dist, want in (("foo-bar", "1.0"), ("FOO.BAR", "1.0"), ("eggy", "3.1"), ("filed", "0.5 "), ("absent", None)):
        assert versions.version(dist) == want == _metadata(dist), dist
    assert versions.version("nover") is None  # no Version header: importlib.metadata's None (or, the backport, KeyError)
    monkeypatch.setattr(sys, "path", [str(b), str(a)])
    monkeypatch.setattr(versions, "_listings", {})
    assert versions.version("foo_bar") == "2.0" == _metadata("foo_bar")


def test_a_run_does_not_import_importlib_metadata(repo: Path) -> None:
    """What a run imports (its record's package versions, the compiled code's key) leaves it out."""
    code = ("import sys; from src.provenance.record import environment; from src.engine import jitcache; "
            "env = environment(); jitcache.compute_key(jitcache.KERNEL_SOURCES, jitcache.ROOT, cpu=('generic', '')); "
            "print('importlib.metadata' in sys.modules, env['packages']['numpy'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", metadata.version("numpy")]
