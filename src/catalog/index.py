"""The run index: one SQLite file (logs/.runs.sqlite) listing every run folder under logs/<stage>/.

Never the source of truth: the folders are. Every run upserts its own row when it ends
(completed, failed or interrupted: `index_run`, called from execute); every reader first
`refresh`es it against the folders, which costs one stat of each run's runtime_meta.json
and of each notes file (no file is opened): a folder added, removed or whose record
changed (mtime or size) behind the index's back is re-read, a missing, corrupt or
older-schema index file is rebuilt from the folders; one that cannot be written (a read-only
logs/) is built in memory instead. WAL journal and a busy timeout let parallel runs (sweeps on
joblib or Ray workers) and readers use it at once; each write is one transaction.

A row (read by src/catalog/rows.py) holds what `src.compare` shows for the run (src.compare.diff.summary_row of the
folder read with src.compare.load.read_folder, the record's seal checked but not every
output's digest: `src.compare`, `src.acceptance` and `src.reproduce` verify those), the
KPIs flattened (numbers only), the notes and tags (src/runs/notes.py), whether its id was
pinned, and the record's mtime, size and SHA-256. The resolved config is flattened and
stored once per distinct value of each top-level group (`blobs`), the row naming each
group's digest: a 10,000-run seed sweep stores its 350 zone-profile and symbol values once.
"""
from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from src.catalog.rows import file_stat, folder_row, record_stat, stamp
from src.runs import notes as notes_mod
from src.runs.paths import LOGS_DIRNAME

log = logging.getLogger(__name__)
INDEX_NAME = ".runs.sqlite"
SCHEMA = 6  # PRAGMA user_version; another value: the index is rebuilt
SUMMARY = ("status", "state", "started_at", "ended_at", "fingerprint", "zone_profile", "universe", "seed",
           "round_trips", "win_rate", "total_pnl_krw", "exits", "gates")
_COLUMNS = ("stage", "run_id", "folder", *SUMMARY, "problems", "pinned", "notes", "tags", "meta_mtime_ns",
            "meta_size", "meta_sha256", "stamp")
# the bulky part in its own table, so that listing and refreshing read small rows (a rowid table:
# WITHOUT ROWID spills rows over ~1 KB into an overflow page each, tripling the file)
_DATA = ("stage", "run_id", "config", "kpi_layout", "kpi_values")
_DDL = f"""
CREATE TABLE IF NOT EXISTS runs ({", ".join(_COLUMNS)}, PRIMARY KEY (stage, run_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_data ({", ".join(_DATA)}, PRIMARY KEY (stage, run_id));
CREATE VIEW IF NOT EXISTS runs_full AS SELECT * FROM runs JOIN run_data USING (stage, run_id);
CREATE TABLE IF NOT EXISTS blobs (digest TEXT PRIMARY KEY, flat TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY) WITHOUT ROWID;
"""
T = TypeVar("T")


def index_path(root: Path) -> Path:
    return Path(root) / LOGS_DIRNAME / INDEX_NAME


def _connect(path: Path | str, sync: bool = True) -> sqlite3.Connection:
    """sync=False: no fsync (PRAGMA synchronous=OFF) for this connection's commits and its closing checkpoint."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    if not sync:
        conn.execute("PRAGMA synchronous=OFF")
    if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:  # another process may have won
            conn.execute("DROP VIEW IF EXISTS runs_full")
            conn.execute("DROP TABLE IF EXISTS runs")
            conn.execute("DROP TABLE IF EXISTS run_data")
            conn.execute("DROP TABLE IF EXISTS blobs")
            conn.execute("DROP TABLE IF EXISTS groups")
            for stmt in _DDL.strip().split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={SCHEMA}")
            conn.execute("COMMIT")
            try:
                conn.execute("VACUUM")  # an older layout's pages: give them back
            except sqlite3.OperationalError:  # another process reads it right now: next time
                pass
        else:
            conn.execute("COMMIT")
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode=WAL")
    return conn


def _discard(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _unwritable(exc: sqlite3.DatabaseError) -> bool:
    """SQLite cannot create or write the index file (a read-only logs/ or index file)."""
    return getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY"))


def using(root: Path, fn: Callable[[sqlite3.Connection], T], refreshed: bool = True, sync: bool = True) -> T:
    """Call fn with an open (and refreshed) index; a corrupt index file is deleted and rebuilt once.
    Where the index file cannot be written (a read-only logs/), fn gets one built in memory from
    the folders: readers still see every run, as the folders say. sync=False: see _connect."""
    path = index_path(root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _in_memory(root, fn, refreshed, exc)
    for attempt in (1, 2):
        conn = None
        try:
            conn = _connect(path, sync)
            if refreshed:
                refresh(conn, root)
            return fn(conn)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                raise
            if _unwritable(exc):
                return _in_memory(root, fn, refreshed, exc)
            if attempt == 2:
                raise
            log.info("run index %s unreadable (%s): rebuilding it from the run folders", path, exc)
            if conn is not None:
                conn.close()
                conn = None
            try:
                _discard(path)
            except OSError as gone:  # cannot delete it either (read-only): read the folders instead
                return _in_memory(root, fn, refreshed, gone)
        finally:
            if conn is not None:
                conn.close()
    raise AssertionError("unreachable")


def _in_memory(root: Path, fn: Callable[[sqlite3.Connection], T], refreshed: bool, why: Exception) -> T:
    log.info("run index %s cannot be written (%s): using one built in memory from the run folders",
             index_path(root), why)
    conn = _connect(":memory:")
    try:
        if refreshed:
            refresh(conn, root)
        return fn(conn)
    finally:
        conn.close()


def _put(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(f"INSERT OR REPLACE INTO runs VALUES ({', '.join('?' for _ in _COLUMNS)})",
                 [row[c] for c in _COLUMNS])
    conn.execute(f"INSERT OR REPLACE INTO run_data VALUES ({', '.join('?' for _ in _DATA)})", [row[c] for c in _DATA])


def _drop(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> None:
    for table in ("runs", "run_data"):
        conn.executemany(f"DELETE FROM {table} WHERE stage = ? AND run_id = ?", keys)


def _scan(root: Path) -> Iterator[tuple[str, str, str]]:
    """(stage, run id, stamp) of every run folder under logs/<stage>/ (hidden names excluded)."""
    logs = Path(root) / LOGS_DIRNAME
    lock = file_stat(str(Path(root) / "dvc.lock"))
    try:
        stages = [e for e in os.scandir(logs) if e.name[:1].isalnum() and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return
    for st in stages:
        side: dict[str, tuple[int, int]] = {}
        base = st.path + os.sep
        dirs = []
        with os.scandir(st.path) as it:
            for e in it:
                if e.name.startswith("."):
                    if e.name.endswith(notes_mod.SUFFIX):
                        s = e.stat(follow_symlinks=False)
                        side[e.name[1:-len(notes_mod.SUFFIX)]] = (s.st_mtime_ns, s.st_size)
                elif e.is_dir(follow_symlinks=False):
                    dirs.append(e.name)
        for name in dirs:
            yield st.name, name, stamp(record_stat(f"{base}{name}", lock), side.get(name))


def refresh(conn: sqlite3.Connection, root: Path) -> int:
    """Bring the index in line with the folders; returns how many rows were (re)read or dropped."""
    known = dict(conn.execute("SELECT stage || '/' || run_id, stamp FROM runs"))
    for (key,) in conn.execute("SELECT stage || '/' || run_id FROM runs WHERE status = 'running'"):
        known[key] = None  # re-read: a running run may since have ended or died
    stale, seen = [], set()
    for stage, run_id, mark in _scan(root):
        key = f"{stage}/{run_id}"
        seen.add(key)
        if known.get(key) != mark:
            stale.append((stage, run_id))
    gone = [tuple(k.split("/", 1)) for k in known if k not in seen]
    if not stale and not gone:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stage, run_id in stale:
            _put(conn, folder_row(Path(root), Path(root) / LOGS_DIRNAME / stage / run_id, conn))
        _drop(conn, gone)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(stale) + len(gone)


def upsert(conn: sqlite3.Connection, root: Path, run_dir: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        _put(conn, folder_row(Path(root), Path(run_dir), conn))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def forget(conn: sqlite3.Connection, stage: str, run_id: str) -> None:
    _drop(conn, [(stage, run_id)])


def index_run(root: Path, run_dir: Path) -> None:
    """A run's last act: its row, in one transaction. Never fails the run (the next reader
    rebuilds what is missing).

    Without fsync (~10-20 ms a run: the commit syncs the WAL it restarts, the close syncs its
    checkpoint): the row is a copy of the run folder, whose record is durable (src/runs/atomic.py).
    After a power loss the row may be missing or stale (the next reader's refresh re-reads the
    folder: its stamp differs) or the file torn (read as corrupt: `using` deletes and rebuilds it)."""
    try:
        using(root, lambda conn: upsert(conn, root, run_dir), refreshed=False, sync=False)
    except Exception as exc:  # noqa: BLE001 - the folder is the truth; the index catches up on read
        # info, not warning: a run's stderr holds its own error line only (the next reader re-reads the folder)
        log.info("run index not updated for %s: %s", run_dir, exc)


def latest(root: Path, stage: str, n: int) -> list[Path]:
    """The n most recent run folders of a stage, oldest first, ordered as src.compare orders them."""
    def q(conn: sqlite3.Connection) -> list[Path]:
        rows = conn.execute("SELECT folder FROM runs WHERE stage = ? ORDER BY coalesce(started_at, '') DESC, "
                            "run_id DESC LIMIT ?", (stage, n)).fetchall()
        return [Path(root) / f for (f,) in reversed(rows)]
    return using(root, q)
