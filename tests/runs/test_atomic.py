"""src/runs/atomic.py by hand: deterministic JSON, atomic replacement, whole-line appends."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO
from src.runs.atomic import JsonlAppender, dumps_deterministic, write_bytes_atomic, write_json_atomic, write_text_atomic


def test_dumps_deterministic_sorts_keys_indents_and_ends_with_a_newline() -> None:
    assert dumps_deterministic({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == \
        '{\n  "a": {\n    "c": "é",\n    "d": [\n      1,\n      2\n    ]\n  },\n  "b": 1\n}\n'


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_dumps_deterministic_refuses_nan_and_infinity(bad: float) -> None:
    with pytest.raises(ValueError):
        dumps_deterministic({"x": bad})


def test_write_replaces_the_file_and_leaves_no_temp(tmp_path: Path) -> None:
    f = tmp_path / "kpi_summary.json"
    write_text_atomic(f, "old\n")
    with open(f, encoding="utf-8") as reader:  # a reader that opened the old file ...
        write_json_atomic(f, {"round_trips": 58})
        assert reader.read() == "old\n"  # ... still reads it whole: the new file is another inode
    assert f.read_text(encoding="utf-8") == '{\n  "round_trips": 58\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kpi_summary.json"]


def test_new_files_get_0666_less_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"x")
        appender = JsonlAppender(tmp_path / "t.jsonl")
        appender.close()
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "t.jsonl").stat().st_mode & 0o777 == 0o640


def test_a_failed_write_names_the_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    f = tmp_path / "gone" / "x.json"
    with pytest.raises(FileNotFoundError) as err:
        write_text_atomic(f, "new")
    assert "x.json" in str(err.value)
    g = tmp_path / "g.json"
    write_text_atomic(g, "old")
    with pytest.raises(ValueError):
        write_json_atomic(g, {"x": float("nan")})  # refused before anything is written
    assert g.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["g.json"]


def test_appender_writes_one_sorted_json_object_a_line_after_what_is_there(tmp_path: Path) -> None:
    f = tmp_path / "trades.jsonl"
    f.write_text('{"seq": 0}\n')
    a = JsonlAppender(f)
    a.append({"seq": 1, "exit_reason": "take_profit"})
    a.write_lines(b'{"seq": 2}\n{"seq": 3}\n')
    with pytest.raises(ValueError):
        a.append({"pnl": float("nan")})
    a.close()
    a.close()  # closing twice is harmless
    assert f.read_text() == '{"seq": 0}\n{"exit_reason": "take_profit", "seq": 1}\n{"seq": 2}\n{"seq": 3}\n'


def test_appender_cuts_a_failed_write_back_to_the_last_whole_line(tmp_path: Path) -> None:
    """A file size limit (RLIMIT_FSIZE, in a child process) stops a write part-way: the file
    keeps its whole lines only, and the error is raised."""
    f = tmp_path / "trades.jsonl"
    script = textwrap.dedent(f"""
        import resource, signal
        from src.runs.atomic import JsonlAppender
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (25, resource.RLIM_INFINITY))
        a = JsonlAppender({str(f)!r})
        a.write_lines(b'{{"seq": 1}}\\n')        # 12 bytes
        try:
            a.write_lines(b'{{"seq": 2, "pad": "xxxxxxxxxx"}}\\n')  # would end at byte 45
        except OSError as exc:
            print("raised", exc.errno, exc.filename)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("raised 27 ") and str(f) in proc.stdout  # EFBIG, naming the file
    assert f.read_bytes() == b'{"seq": 1}\n'
