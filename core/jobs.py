"""The job table: one SQLite row per job (WAL mode) in the workspace.

States and the only moves between them (one function, `transition`, makes every move):

    QUEUED -> STARTING -> RUNNING -> SUCCEEDED | FAILED | CANCELLED | INTERRUPTED
                 \\           \\-> CANCELLING -> CANCELLED | SUCCEEDED | FAILED | INTERRUPTED
                  \\-> (any terminal state)
    QUEUED -> CANCELLED  (cancelled before it started)

A cancel that arrives as the run completes ends SUCCEEDED (its result is complete). CANCELLED is
recorded only once no process of the job is left.

Terminal states never change: `transition` is a single UPDATE ... WHERE state IN (allowed
sources), so when a cancel races a natural exit exactly one of them wins. Every process (GUI, CLI,
supervisors) opens its own short-lived connection; nothing is cached in memory. A row names the
executor that runs the job (core.executors); nothing here depends on which one it is.

Every change of a row is copied into its run folder (runs/<run>/jobs/<job id>.json, core.rundir). The
table stays the truth while it exists; when it is gone (deleted, a zero-byte file after a crash or emptied
under running processes (core.job_table_file), moved aside because it was damaged) the first process that opens the workspace rebuilds it from those
copies, so the job list, its states and reasons survive the loss of jobs.sqlite. A table from an older
Danlu, made before the copies, gets them the first time it is opened (PRAGMA user_version).
"""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from core.messages import Msg
from core.job_copies import own_processes, row_from_copy
from core.job_table_file import JobTableError, backfill, ensure_table_file, keep_one_open, let_go_if_replaced, table_error
from core.job_table_file import IDLE_MAX, _IDLE  # noqa: F401 - the tests look at the idle connections here
from core.rundir import RunDir, linked_part, write_json

QUEUED, STARTING, RUNNING, CANCELLING = "QUEUED", "STARTING", "RUNNING", "CANCELLING"
SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = "SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED"
STATES = (QUEUED, STARTING, RUNNING, CANCELLING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, INTERRUPTED})
ACTIVE = frozenset({STARTING, RUNNING, CANCELLING})
ALLOWED_FROM = {
    QUEUED: (),
    STARTING: (QUEUED,),
    RUNNING: (STARTING,),
    CANCELLING: (QUEUED, STARTING, RUNNING),
    SUCCEEDED: (STARTING, RUNNING, CANCELLING),
    FAILED: (QUEUED, STARTING, RUNNING, CANCELLING),
    CANCELLED: (QUEUED, STARTING, RUNNING, CANCELLING),
    INTERRUPTED: (STARTING, RUNNING, CANCELLING),
}
# Words the GUI shows (the issue text names these).
STATE_WORDS = {QUEUED: "Queued", STARTING: "Starting", RUNNING: "Running", CANCELLING: "Stopping",
               SUCCEEDED: "Succeeded", FAILED: "Failed", CANCELLED: "Cancelled", INTERRUPTED: "Interrupted"}


def state_word(state: str) -> Msg:
    """A state inside a sentence ("job 1 is running"), in lower case."""
    return Msg("jobstate." + state.lower())

# (column, SQL type and default). Columns are only ever added, so an older table is upgraded in place.
COLUMN_DEFS = [
    ("id", "TEXT PRIMARY KEY"),
    ("kind", "TEXT NOT NULL"),                     # train | eval | merge
    ("name", "TEXT NOT NULL DEFAULT ''"),
    ("state", "TEXT NOT NULL"),
    ("run_dir", "TEXT NOT NULL"),
    ("config_path", "TEXT NOT NULL DEFAULT ''"),
    ("config_sha256", "TEXT NOT NULL DEFAULT ''"),
    ("dataset_sha256", "TEXT NOT NULL DEFAULT ''"),
    ("argv", "TEXT NOT NULL DEFAULT '[]'"),        # JSON list: the exact command the supervisor runs
    ("gpus", "TEXT NOT NULL DEFAULT '[]'"),        # JSON list of GPU indices, or ["cpu"]
    ("nproc", "INTEGER NOT NULL DEFAULT 1"),
    ("parent_id", "TEXT NOT NULL DEFAULT ''"),     # resumed/retried/evaluated job
    ("created_at", "REAL NOT NULL DEFAULT 0"),
    ("started_at", "REAL"),
    ("ended_at", "REAL"),
    ("supervisor_pid", "INTEGER"),
    ("supervisor_ctime", "REAL"),
    ("agent_pid", "INTEGER"),
    ("agent_ctime", "REAL"),
    ("worker_pids", "TEXT NOT NULL DEFAULT '[]'"),  # JSON [[pid, start time], ...] of every process under the agent
    ("exit_code", "INTEGER"),
    ("reason", "TEXT NOT NULL DEFAULT ''"),
    ("message", "TEXT NOT NULL DEFAULT ''"),
    ("hint", "TEXT NOT NULL DEFAULT ''"),
    ("message_msg", "TEXT NOT NULL DEFAULT ''"),    # JSON {code, params} of `message` (core.messages), for the page
    ("hint_msg", "TEXT NOT NULL DEFAULT ''"),
    ("executor", "TEXT NOT NULL DEFAULT 'local'"),  # where its processes run (core.executors); states do not depend on it
    ("slurm_job_id", "TEXT NOT NULL DEFAULT ''"),   # Slurm's own id of the job (executor "slurm", core.slurm)
]
# The names core.executors.EXECUTORS answers to (it imports this module; a test keeps the two equal): a
# copy naming another is not restored
EXECUTOR_NAMES = ("local", "slurm")
SCHEMA = ("CREATE TABLE IF NOT EXISTS jobs (\n    " + ",\n    ".join(f"{n} {t}" for n, t in COLUMN_DEFS) + "\n)",
          "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state)")


@dataclass
class Job:
    id: str
    kind: str
    name: str
    state: str
    run_dir: str
    config_path: str
    config_sha256: str
    dataset_sha256: str
    argv: str
    gpus: str
    nproc: int
    parent_id: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    supervisor_pid: int | None
    supervisor_ctime: float | None
    agent_pid: int | None
    agent_ctime: float | None
    worker_pids: str
    exit_code: int | None
    reason: str
    message: str
    hint: str
    message_msg: str
    hint_msg: str
    executor: str
    slurm_job_id: str

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def gpu_list(self) -> list:
        return json.loads(self.gpus or "[]")

    @property
    def argv_list(self) -> list[str]:
        return json.loads(self.argv or "[]")

    @property
    def worker_list(self) -> list[tuple[int, float | None]]:
        return [tuple(p) for p in json.loads(self.worker_pids or "[]")]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["state"] = self.state.lower()
        d["gpus"] = self.gpu_list
        d["argv"] = self.argv_list
        d["worker_pids"] = [list(p) for p in self.worker_list]
        return d


COLUMNS = [f.name for f in fields(Job)]


def _coded(updates: dict) -> dict:
    """`message` and `hint` arrive as Msg (core.messages): the table keeps their English words and,
    beside them, their codes as JSON, so the page can say them in its own language."""
    out = dict(updates)
    for key in ("message", "hint"):
        if key in out:
            m = out[key]
            if m is not None and not isinstance(m, Msg):
                raise TypeError(f"a job's {key} must be a Msg (a code from core/catalog_en.yaml), got {type(m).__name__}")
            out[key] = str(m) if m is not None else ""
            out[key + "_msg"] = json.dumps(m.to_dict(), ensure_ascii=False) if m is not None else ""
    return out


def new_id() -> str:
    """Sortable and unique: 20261127-193012-a1b2c3 (create() draws again on the rare clash)."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime()) + "-" + secrets.token_hex(3)


COPIES_VERSION = 1  # PRAGMA user_version of a table whose rows all have their copies in the run folders
FIND_MAX = 200  # the longest prefix find() looks up: ids are about 22 characters ("20261204-151005-23210a")


class JobStore:
    def __init__(self, db_path: str | os.PathLike):
        self.db_path = Path(db_path)
        # the workspace's run folders sit beside its table (core.workspace): rows are copied into them
        self.runs = self.db_path.parent / "runs"
        with self._conn() as c:  # creates the table, or rebuilds a lost one
            have = {r[1] for r in c.execute("PRAGMA table_info(jobs)")}
            for name, sqltype in COLUMN_DEFS:
                if name not in have:  # a table from an older Danlu: add what is new
                    try:
                        c.execute(f"ALTER TABLE jobs ADD COLUMN {name} {sqltype}")
                    except sqlite3.OperationalError as e:  # another process added it a moment ago
                        if "duplicate column" not in str(e):
                            raise
            if c.execute("PRAGMA user_version").fetchone()[0] < COPIES_VERSION:
                self._copy_old_rows(c)

    def _copy_old_rows(self, c) -> None:
        """A table from a Danlu before the copies: copy its rows once, so that it too outlives its loss
        (an old workspace that lost its table afterwards listed no job at all)."""
        for job in self.list(conn=c):
            path = self._copy_path(job)
            if path is not None and not path.exists():
                self._copy(job.id, c)
        c.execute(f"PRAGMA user_version = {COPIES_VERSION}")

    @contextmanager
    def _conn(self):
        """A connection for one use; SQLite's errors leave as JobTableError, in words (core.job_table_file)."""
        let_go_if_replaced(self.db_path)  # a file replaced under this process (core.job_table_file)
        try:
            ensure_table_file(self.db_path, self._fill)  # a missing or emptied file (core.job_table_file)
            c = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        except sqlite3.Error as e:
            raise table_error(self.db_path, e) from e
        try:
            c.execute("PRAGMA journal_mode=WAL")
            # FULL: each commit is on disk when it returns. The job table is written a few times
            # per job, and with the WAL kept (see core.job_table_file.keep_one_open) NORMAL could lose the last
            # commits - a job's own row - in a power cut.
            c.execute("PRAGMA synchronous=FULL")
            c.execute("PRAGMA busy_timeout=30000")
            c.row_factory = sqlite3.Row
            if not _has_table(c):  # a new workspace, or the file was lost while this object lived (a GUI server)
                self._create(c)
            keep_one_open(self.db_path)  # again on a file that replaced the one it was opened on
            yield c  # IntegrityError below: a row's own conflict (create() draws another id), not the table's
            if c.total_changes and not c.in_transaction:
                backfill(c)  # a table copied over this one is then read as copied (core.job_table_file)
        except (sqlite3.IntegrityError, JobTableError):
            raise
        except sqlite3.Error as e:
            raise table_error(self.db_path, e) from e
        finally:
            c.close()

    def _create(self, c) -> None:
        """Create the table; when it had been lost, fill it from the run folders' copies (rebuild). One
        process does it, before any other reads the table."""
        c.execute("BEGIN IMMEDIATE")
        try:
            if not _has_table(c):
                self._fill(c)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _fill(self, c) -> None:
        for statement in SCHEMA:
            c.execute(statement)
        rebuild(c, self.runs)
        c.execute(f"PRAGMA user_version = {COPIES_VERSION}")  # every row it holds has its copy

    @contextmanager
    def exclusive(self):
        """A write transaction that other processes wait for (used by the scheduler)."""
        with self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def create(self, **values) -> Job:
        chosen = "id" in values
        if not chosen:
            values["id"] = new_id()
        values.setdefault("state", QUEUED)
        values.setdefault("created_at", time.time())
        values = _coded(values)
        for k in ("argv", "gpus", "worker_pids"):
            if not isinstance(values.get(k, "[]"), str):
                values[k] = json.dumps(values[k])
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        for attempt in range(8):
            try:
                with self._conn() as c:
                    c.execute(f"INSERT INTO jobs ({cols}) VALUES ({marks})", list(values.values()))
                    self._copy(values["id"], c)
                break
            except sqlite3.IntegrityError:
                # two jobs made in the same second may draw the same random suffix: draw again
                if chosen or attempt == 7:
                    raise
                values["id"] = new_id()
        return self.get(values["id"])

    def get(self, job_id: str, conn=None) -> Job | None:
        if not isinstance(job_id, str):  # a job id of another type (a direct HTTP call: a list, 10**30) names no job
            return None
        if conn is not None:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        else:
            with self._conn() as c:
                row = c.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job(**{k: row[k] for k in COLUMNS}) if row else None

    def list(self, states=None, kind: str | None = None, conn=None) -> list[Job]:
        q, args = "SELECT * FROM jobs", []
        cond = []
        if states:
            cond.append(f"state IN ({', '.join('?' for _ in states)})")
            args += list(states)
        if kind:
            cond.append("kind = ?")
            args.append(kind)
        if cond:
            q += " WHERE " + " AND ".join(cond)
        q += " ORDER BY created_at DESC, id DESC"
        if conn is not None:
            rows = conn.execute(q, args).fetchall()
        else:
            with self._conn() as c:
                rows = c.execute(q, args).fetchall()
        return [Job(**{k: r[k] for k in COLUMNS}) for r in rows]

    def transition(self, job_id: str, to: str, conn=None, **updates) -> bool:
        """Move job_id to state `to` if allowed from its current state. Returns whether it moved."""
        if to not in ALLOWED_FROM:
            raise ValueError(f"unknown state {to}")
        sources = ALLOWED_FROM[to]
        if not sources:
            return False
        if to in TERMINAL:
            updates.setdefault("ended_at", time.time())
        if to == RUNNING:
            updates.setdefault("started_at", time.time())
        updates = _coded(updates)
        sets = ", ".join(["state = ?"] + [f"{k} = ?" for k in updates])
        q = f"UPDATE jobs SET {sets} WHERE id = ? AND state IN ({', '.join('?' for _ in sources)})"
        args = [to, *updates.values(), job_id, *sources]
        if conn is not None:
            return conn.execute(q, args).rowcount == 1 and self._copy(job_id, conn)
        with self._conn() as c:
            return c.execute(q, args).rowcount == 1 and self._copy(job_id, c)

    def update(self, job_id: str, conn=None, **updates) -> None:
        """Non-state fields only (pids, messages)."""
        if "state" in updates:
            raise ValueError("use transition() to change state")
        if not updates:
            return
        updates = _coded(updates)
        sets = ", ".join(f"{k} = ?" for k in updates)
        args = [*updates.values(), job_id]
        if conn is not None:
            conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", args)
            self._copy(job_id, conn)
            return
        with self._conn() as c:
            c.execute(f"UPDATE jobs SET {sets} WHERE id = ?", args)
            self._copy(job_id, c)

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        with self._conn() as c:
            c.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        path = self._copy_path(job)
        if path is not None:  # a forgotten job must not come back with the next rebuild
            path.unlink(missing_ok=True)

    def _copy_path(self, job: "Job | None") -> Path | None:
        """runs/<run>/jobs/<id>.json, for a job whose run folder is one of this workspace's."""
        if job is None or not job.run_dir:
            return None
        run_dir = Path(job.run_dir)
        if run_dir.parent != self.runs or not run_dir.is_dir():
            return None  # a folder elsewhere (tests' made-up paths), or deleted: nothing to keep in step
        if linked_part(run_dir) is not None:
            return None  # never written or removed through a link (core.rundir.linked_part)
        return RunDir(run_dir).job_copy(job.id)

    def _copy(self, job_id: str, conn) -> bool:
        """Write the row's copy into its run folder (see the module docstring). A folder that cannot be
        written (a full disk, a read-only mount) costs only the copy: the table is the truth."""
        job = self.get(job_id, conn)
        path = self._copy_path(job)
        if path is not None:
            try:
                write_json(path, asdict(job), durable=False)
            except OSError:
                pass
        return True

    def find(self, prefix: str) -> Job | None:
        """A job by full id or a unique prefix (people type short ids)."""
        job = self.get(prefix)
        if job:
            return job
        if not isinstance(prefix, str) or not prefix or any(ch in prefix for ch in "%_\\"):
            return None  # LIKE wildcards: '%' alone must not pick "the only job" (ids never contain them)
        if len(prefix) > FIND_MAX:  # longer than any id; SQLite refuses a LIKE pattern past 50,000 bytes
            return None
        with self._conn() as c:
            rows = c.execute("SELECT id FROM jobs WHERE id LIKE ?", (prefix + "%",)).fetchall()
        return self.get(rows[0]["id"]) if len(rows) == 1 else None


def _has_table(c) -> bool:
    return c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone() is not None


def rebuild(conn, runs: Path) -> int:
    """Fill an empty table from the copies in the run folders (runs/*/jobs/*.json); the number of jobs
    restored. A copy that is torn, of another shape or names another folder is skipped. A job that
    was still queued is restored as cancelled: its place in the queue is lost with the table, and
    nothing should start without the person asking."""
    restored = 0
    for path in sorted(runs.glob("*/jobs/*.json")) if runs.is_dir() else []:
        if linked_part(path.parent.parent) is not None:  # another run's copies, or another workspace's
            continue
        row = row_from_copy(path, COLUMN_DEFS, STATES, EXECUTOR_NAMES)
        if row is None:
            continue
        if row["state"] not in TERMINAL:
            own_processes(row)
            if row["state"] != QUEUED and row["supervisor_pid"] is None:
                # No owner recorded: the reconcile would wait for a hand-over (executors' UNCLAIMED) that
                # was in the lost table, "Running" forever. Pid 0 is no process: procs.alive says gone and
                # nothing signals a supervisor_pid; the job's marked processes, if any, still count.
                row.update(supervisor_pid=0, supervisor_ctime=-1.0)
        if row["state"] == QUEUED:
            row.update(state=CANCELLED, reason="cancelled", ended_at=time.time(),
                       **_coded(dict(message=Msg("job.rebuilt_queued"), hint=Msg("job.rebuilt_queued.hint", id=row["id"]))))
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        restored += conn.execute(f"INSERT OR IGNORE INTO jobs ({cols}) VALUES ({marks})", list(row.values())).rowcount
    return restored
