"""git_state: what makes a checkout dirty, by hand in a temp git repo."""
from __future__ import annotations

import subprocess
from pathlib import Path

from src.provenance.gitinfo import MANIFEST_DIR, git_state


def _repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c"],
                   check=True)
    return tmp_path


def test_a_clean_checkout_is_not_dirty(tmp_path: Path) -> None:
    st = git_state(_repo(tmp_path))
    assert st["available"] and st["dirty"] is False and st["changed_paths"] == [] and len(st["commit"]) == 40


def test_an_earlier_runs_input_manifest_does_not_make_the_next_run_dirty(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / MANIFEST_DIR / "d92-5").mkdir(parents=True)
    (root / MANIFEST_DIR / "d92-5" / "r1.dvc").write_text("outs: []\n")
    assert git_state(root)["dirty"] is False


def test_an_edit_or_a_new_source_file_makes_it_dirty(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / "src" / "b.py").write_text("y = 2\n")
    st = git_state(root)
    assert st["dirty"] is True and st["changed_paths"] == ["src/b.py"] and st["diff_xxh3_128"] is not None
    (root / "src" / "a.py").write_text("x = 2\n")
    assert git_state(root)["changed_paths"] == ["src/a.py", "src/b.py"]
