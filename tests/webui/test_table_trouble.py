"""A job table that cannot be read under a running page (damaged, locked): the Train tab says so in words,
instead of an empty table under "No job yet" that reads as "no jobs"."""
import sqlite3
from functools import partial

import gradio as gr

from core import jobs as J
from core.job_table_file import JobTableError, table_error
from webui import jobview
from webui.app import _load_jobs, _train_view, combined
from webui.tabs import chat_tab, hyperparams_tab as hp, train_tab as tt
from webui.tabs import evaluate_tab as ev, export_tab as ex


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


def test_the_other_tabs_say_it_too_and_keep_what_they_show(gui):
    """Evaluate, Export, Chat and Hyperparams read the job table when opened (their run pickers), when a run is
    picked and while a job is followed: each failed without a word (Gradio's bare "Error", or nothing)."""
    job = gui.store.create(kind="train", name="mine", run_dir=str(gui.ws.runs / "r"), argv=["python"], gpus=["cpu"], nproc=1)
    said_before = f"⚠ The job table {gui.ws.db_path} is damaged"
    assert jobview.refresh_new_runs(gui, "en", None, said_before, None)[1] == ""  # a good reading empties a line that said so
    assert jobview.refresh_new_runs(gui, "en", None, "▶ started", None)[1] == gr.skip()  # and keeps any other
    _damage(gui.ws.db_path)
    lines = [jobview.refresh_new_runs(gui, "en", None, "", None)[1::-1],  # Evaluate's and Export's tab opened
             jobview.refresh_new_runs(gui, "en", None, "", "")[1::-1],
             chat_tab.refresh_on_open(gui, "en", None, None, "", "")[2::-1],
             hp.start_adapter_choices(gui, "en", "", "")[::-1],
             ev.show_results(gui, "en", job.id), ev.poll(gui, "en", job.id, job.id), ex.poll(gui, "en", job.id),
             (ex.stop_export(gui, "en", job.id),), (ex.plan_markdown(gui, "en", job.id, None),)]
    for line, *kept in lines:
        assert "damaged" in line and "jobs.sqlite.broken" in line, line
        assert all(k == gr.skip() for k in kept)  # the pickers keep their runs, the results and the timer stay
    assert "损坏" in jobview.refresh_new_runs(gui, "zh-CN", None, "", None)[1].texts["zh-CN"]
    assert ex.name_for(gui, job.id) == gr.skip()  # the plan line says why
    assert "damaged" in ex.start_merge(gui, "en", job.id, "", "bf16")[1]
    # a language switch: a step that cannot read the table leaves its outputs (the Train tab's status says why)
    boxes = [object() for _ in range(4)]
    fn, _, outputs = combined([(partial(chat_tab.refresh_choices, gui), boxes[:3], boxes[1:3]),
                               (lambda lang: lang + "!", [boxes[0]], [boxes[3]])], first=boxes[0])
    assert fn("en", None, None) == [gr.skip(), gr.skip(), "en!"]
