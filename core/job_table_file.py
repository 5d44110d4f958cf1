"""jobs.sqlite never lies empty at its path: a missing or zero-byte file is replaced by a complete one,
made beside it and renamed into place (core.jobs.JobStore, before each connection).

Emptied (': > jobs.sqlite', a tool that truncates it) while Danlu processes hold it open - the GUI server
and every supervisor keep one idle connection (core.jobs._keep_one_open) - the file could not be written
again: each of those connections holds a shared lock on it, so every other connection waited its 30 s
and failed with 'database is locked'; the GUI showed 'No job yet', the CLI called the table damaged,
a supervisor could not record its job's end, and the last of those processes to exit wrote stray WAL
pages into it, which left a 16 KiB file that is not a database. A new file under the same name is another
file: the connections on the emptied one block nothing there."""
from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Callable

from core.workspace import fsync_dir


def _size(db: Path) -> int | None:
    try:
        return db.stat().st_size
    except FileNotFoundError:
        return 0
    except OSError:
        return None  # SQLite says what is wrong


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
