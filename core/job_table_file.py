"""jobs.sqlite never lies empty at its path: a missing or zero-byte file is replaced by a complete one,
made beside it and renamed into place (core.jobs.JobStore, before each connection).

Emptied (': > jobs.sqlite', a tool that truncates it) while Danlu processes hold it open - the GUI server
and every supervisor keep one idle connection (keep_one_open, below) - the file could not be written
again: each of those connections holds a shared lock on it, so every other connection waited its 30 s
and failed with 'database is locked'; the GUI showed 'No job yet', the CLI called the table damaged,
a supervisor could not record its job's end, and the last of those processes to exit wrote stray WAL
pages into it, which left a 16 KiB file that is not a database. A new file under the same name is another
file: the connections on the emptied one block nothing there.

Replaced (a backup restored with mv) under a process whose idle connection holds the old file: that process
lets go of it and of the old file's WAL before its next connection (let_go_if_replaced). Copied over it
(cp: the same file rewritten, nothing to notice) while no write is under way: read as copied, each write's
commits being in the file by then (backfill). A SQLite error on the table leaves every connection as
JobTableError, its cause in words (table_error)."""
from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.errors import DanluError
from core.messages import Msg
from core.workspace import fsync_dir, path_identity


class JobTableError(DanluError, sqlite3.DatabaseError):
    """The job table could not be read or written, in words (what, where, what to do). Still an sqlite3
    error for the code that records what it can and goes on (a supervisor at a job's end)."""


# SQLite's primary result codes (sqlite3.Error.sqlite_errorname, extended names start with them) -> message
_CAUSES = {"SQLITE_BUSY": "db.locked", "SQLITE_LOCKED": "db.locked", "SQLITE_READONLY": "db.readonly",
           "SQLITE_CANTOPEN": "db.cannot_open", "SQLITE_PERM": "db.readonly", "SQLITE_FULL": "db.full",
           "SQLITE_NOTADB": "db.damaged", "SQLITE_CORRUPT": "db.damaged"}


def table_error(db: Path, e: sqlite3.Error) -> JobTableError:
    """SQLite's error on the table `db` as a JobTableError: its cause (locked, read-only, cannot be opened, disk
    full, damaged, else any other) said with what to do; SQLite's own words in brackets."""
    name = getattr(e, "sqlite_errorname", "") or ""
    code = next((c for prefix, c in _CAUSES.items() if name == prefix or name.startswith(prefix + "_")), "db.failed")
    if code == "db.failed" and "no such table" in str(e):
        code = "db.damaged"  # another database under the table's name
    elif code in ("db.cannot_open", "db.failed") and db.parent.is_dir() and not os.access(db.parent, os.W_OK):
        code = "db.readonly"  # a read-only disk: SQLite cannot make the WAL's files ("unable to open", "I/O error")
    elif code == "db.failed" and _free_bytes(db.parent) < 1 << 20:
        code = "db.full"  # a full disk: SQLite cannot grow the WAL's shared memory ("disk I/O error")
    where = dict(path=str(db), name=db.name, folder=str(db.parent), runs=str(db.parent / "runs"),
                 exports=str(db.parent / "exports"))
    return JobTableError(Msg(code, path=str(db), error=str(e)), Msg(code + ".hint", **where))


def _size(db: Path) -> int | None:
    try:
        return db.stat().st_size
    except FileNotFoundError:
        return 0
    except OSError:
        return None  # SQLite says what is wrong


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62  # not known: no claim about the disk


def ensure_table_file(db: Path, build: Callable[[sqlite3.Connection], None]) -> None:
    """Before a connection: when `db` is missing or empty, put a complete one in its place; build(conn)
    creates the table in it (and rebuilds it from the run folders' copies). One process at a time
    (a lock file beside it); a file another process made meanwhile is kept."""
    if _size(db) != 0:
        return
    try:
        lock = open(db.with_name(db.name + ".lock"), "a")
    except OSError:  # a read-only workspace, a folder in its place: SQLite says what it can
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _size(db) != 0:
            return
        new = db.with_name(f".{db.name}.{os.getpid()}.new")
        for p in (new, Path(f"{new}-wal"), Path(f"{new}-shm"), Path(f"{new}-journal")):
            p.unlink(missing_ok=True)
        c = sqlite3.connect(new, isolation_level=None)
        try:
            c.execute("BEGIN IMMEDIATE")
            build(c)
            c.execute("COMMIT")
            c.execute("PRAGMA journal_mode=WAL")
        finally:
            c.close()
        with open(new, "rb+") as f:
            os.fsync(f.fileno())
        for extra in (Path(f"{db}-wal"), Path(f"{db}-shm")):  # the emptied file's: never the new one's
            extra.unlink(missing_ok=True)
        os.replace(new, db)
        fsync_dir(db.parent)


@dataclass
class _Idle:
    conn: sqlite3.Connection
    file: tuple[int, int] | None  # (device, inode) of the table file it was opened on
    wal: tuple[int, int] | None   # ... and of that file's WAL beside it

    def close(self) -> None:
        self.conn.close()


_IDLE: "OrderedDict[str, _Idle]" = OrderedDict()
_IDLE_LOCK = threading.Lock()
IDLE_MAX = 4


def keep_one_open(db_path: Path) -> None:
    """Hold one idle connection per database (the last few used) for the life of the process.
    Each query of core.jobs.JobStore opens and closes its own connection; when that close is the process's last,
    SQLite checkpoints and truncates the WAL every time. Measured with bench/load_gui.py (50 tabs
    polling the Train tab), those closes were the biggest cost of a poll. The idle connection is
    never queried and holds no lock; it lets go of a table file replaced under it (let_go_if_replaced)."""
    key = str(db_path)
    with _IDLE_LOCK:
        if key in _IDLE:
            _IDLE.move_to_end(key)
            return
        try:
            c = sqlite3.connect(key, check_same_thread=False, isolation_level=None)
            c.execute("PRAGMA schema_version").fetchone()  # SQLite opens the files on first use
        except sqlite3.Error:
            return
        _IDLE[key] = _Idle(c, path_identity(db_path), path_identity(_wal(db_path)))
        while len(_IDLE) > IDLE_MAX:  # tests open many workspaces: keep the file descriptors bounded
            _IDLE.popitem(last=False)[1].close()


def backfill(c: sqlite3.Connection) -> None:
    """After a write: copy the WAL's commits into the table file (a passive checkpoint: it waits for no
    one). A WAL whose every frame is in the file is not read again (SQLite reads the file alone), so
    a table copied over this one with cp - the same file rewritten, which let_go_if_replaced cannot
    tell from a checkpoint - is read as copied. Before, the last commits stayed in the WAL, held by the
    idle connections, and SQLite laid them over the copied pages: the old jobs showed, or a mix. A
    checkpoint it could not finish (a reader on an older snapshot) is left to the next write."""
    try:
        c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.OperationalError:
        pass  # the commit itself is on disk; only the copy into the file waits


def _wal(db: Path) -> Path:
    return db.with_name(db.name + "-wal")


def let_go_if_replaced(db: Path) -> None:
    """Before a connection: when the table file is no longer the one this process's idle connection was opened
    on (a backup restored over it with mv, the file moved aside), close that connection, and remove the old
    file's WAL and shared memory if they are still at the path. Kept, the idle connection held them there,
    SQLite read that WAL into the new file and the next checkpoint wrote it in: the restored backup showed
    the old jobs (or a mix of both). No one else removes them: SQLite neither checkpoints nor deletes the WAL
    of a file that was moved. Processes still on the old file keep theirs open; they write nothing there."""
    key = str(db)
    with _IDLE_LOCK:
        idle = _IDLE.get(key)
        now = path_identity(db)
        if idle is None or now == idle.file:
            return
        del _IDLE[key]
        idle.close()
        if now is not None and idle.wal is not None and path_identity(_wal(db)) == idle.wal:
            for extra in (_wal(db), db.with_name(db.name + "-shm")):  # the old file's, never the new one's
                extra.unlink(missing_ok=True)
