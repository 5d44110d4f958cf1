"""One reading of the jobs for every open page.

Each open Train tab asks every second for the job table and for its job's status, log and plots.
With 50 pages open, reading SQLite, checking processes and parsing the run files once per page and
second cost more CPU than the training job could spare on a small machine (bench/load_gui.py). Here
the GUI process reads each thing once and hands the same reading to every page:

* the job table is read again only when the database files changed (their size and time: a commit
  from any process, the CLI's included, changes the WAL file), or after MAX_AGE_S at the latest;
* running jobs are reconciled (is the supervisor still alive?) at most every RECONCILE_S;
* what a page shows for a job (status line, log tail, plot frames) is computed once per change of
  the run files and kept in a small memo keyed by that change.

Readings are plain data; each page still builds its own gr.update from them (Gradio consumes them).
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from core import jobs as J
from core import launcher

RECONCILE_S = 1.0
MAX_AGE_S = 5.0
MEMO_MAX = 1024


def file_stamp(path: Path) -> tuple[int, int]:
    """(size, mtime in ns) of a file, (-1, 0) when it is missing: cheap change detection."""
    try:
        st = os.stat(path)
    except OSError:
        return (-1, 0)
    return (st.st_size, st.st_mtime_ns)


class LiveJobs:
    def __init__(self, ws, store: J.JobStore):
        self.ws, self.store = ws, store
        self._lock = threading.Lock()
        self._jobs: list[J.Job] = []
        self._by_id: dict[str, J.Job] = {}
        self._stamp: tuple | None = None
        self._read_at = 0.0
        self._reconciled_at = 0.0
        self._memo: OrderedDict = OrderedDict()

    def _db_stamp(self) -> tuple:
        db = Path(self.store.db_path)
        return file_stamp(db), file_stamp(db.with_name(db.name + "-wal"))

    def jobs(self) -> list[J.Job]:
        """Every job, newest first, as the table holds it now."""
        with self._lock:
            now = time.monotonic()
            # a Slurm job waits in Slurm's queue, not Danlu's: it is reconciled while queued too
            active = [j for j in self._jobs if j.state in J.ACTIVE or (j.state == J.QUEUED and j.executor == "slurm")]
            if active and now - self._reconciled_at >= RECONCILE_S:
                self._reconciled_at = now
                launcher.reconcile(self.ws, active)  # a dead supervisor is settled here; it writes the table
            stamp = self._db_stamp()
            if stamp != self._stamp or now - self._read_at >= MAX_AGE_S:
                self._jobs = self.store.list()
                self._by_id = {j.id: j for j in self._jobs}
                self._stamp, self._read_at = stamp, now
                if any(j.state in J.ACTIVE for j in self._jobs) and not active:
                    self._reconciled_at = now  # just read: the next reconcile is due a second from now
            return self._jobs

    def job(self, job_id: str | None) -> J.Job | None:
        if not job_id or not isinstance(job_id, str):  # the page's picker sent to the API may hold anything
            return None
        self.jobs()
        with self._lock:
            found = self._by_id.get(job_id)
        return found if found is not None else self.store.get(job_id)

    def memo(self, key, compute):
        """compute() once per key for all pages (the key names the change it depends on)."""
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = compute()  # outside the lock: two pages may compute the same key once each, never wrong
        with self._lock:
            self._memo[key] = value
            while len(self._memo) > MEMO_MAX:
                self._memo.popitem(last=False)
        return value
