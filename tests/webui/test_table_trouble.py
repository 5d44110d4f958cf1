"""A job table that cannot be read under a running page (damaged, locked): the Train tab says so in words,
instead of an empty table under "No job yet" that reads as "no jobs"."""
import sqlite3

import gradio as gr

from core import jobs as J
from core.job_table_file import JobTableError, table_error
from webui.app import _load_jobs, _train_view
from webui.tabs import train_tab as tt


def _damage(db):
    J._IDLE.pop(str(db)).close()  # this process's idle connection (the page's) would keep the old pages
    for extra in ("-wal", "-shm"):
        db.with_name(db.name + extra).unlink(missing_ok=True)
    db.write_bytes(b"not a database at all " * 500)


def test_a_damaged_table_under_a_running_page_is_said_in_the_status_line(gui):
    job = gui.store.create(kind="train", name="mine", run_dir=str(gui.ws.runs / "r"), argv=["python"], gpus=["cpu"], nproc=1)
    out = tt.refresh(gui, "en", job.id, "", "")
    assert out[11] is not gr.skip() and "mine" in out[11].to_string()  # the table, read before the damage
    _damage(gui.ws.db_path)
    out = tt.refresh(gui, "en", job.id, out[5], out[13])
    status, seen = out[0], out[5]
    assert "damaged" in status and str(gui.ws.db_path) in status and "jobs.sqlite.broken" in status
    assert out[11] == gr.skip() and out[6]["interactive"] is False  # the table keeps its rows; Stop is off
    assert tt.refresh(gui, "en", job.id, seen, out[13]) == (gr.skip(),) * 16  # said once, not every second
    assert "损坏" in _train_view(gui, "zh-CN", job.id)[0]  # a language switch says it in the new language
    assert tt.initial_job(gui, job.id) == (gr.skip(), gr.skip())
    table, picker, sig, said = _load_jobs(gui, "en", None, "")  # a page opened now: the status says it too
    assert "damaged" in said and table == gr.skip()


def test_a_locked_table_is_told_apart_from_a_damaged_one(ws):
    store = J.JobStore(ws.db_path)
    J._IDLE.pop(str(ws.db_path)).close()
    holder = sqlite3.connect(ws.db_path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        quick = sqlite3.connect(ws.db_path, timeout=0)
        try:
            quick.execute("SELECT * FROM jobs").fetchall()
        except sqlite3.OperationalError as e:
            said = table_error(ws.db_path, e)
        quick.close()
    finally:
        holder.close()
    assert isinstance(said, JobTableError) and isinstance(said, sqlite3.Error)  # a supervisor's `except sqlite3.Error`
    assert "locked" in str(said) and "damaged" not in str(said) and "fuser" in said.hint
    assert store.list() == []
