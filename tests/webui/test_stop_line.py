"""The Train tab's message line after Stop: "■ Stopping (a checkpoint is saved first)" stayed above a
Cancelled job until the next button was pressed (a browser walk)."""
import gradio as gr
import pytest

from core import jobs as J
from core.rundir import RunDir, write_json
from webui import i18n
from webui.tabs import train_tab as tt

MESSAGE = slice(-2, None)  # refresh's last two outputs: the message line and its kept words


def _running_job(gui, monkeypatch, name="x") -> J.Job:
    job = gui.store.create(kind="train", name=name, run_dir=str(gui.ws.runs / name))
    gui.store.transition(job.id, J.STARTING)
    gui.store.transition(job.id, J.RUNNING)
    monkeypatch.setattr(tt.launcher, "cancel", lambda ws, job_id: gui.store.get(job_id))
    RunDir(job.run_dir).path.mkdir(parents=True)
    write_json(RunDir(job.run_dir).progress, dict(phase="training", step=3, total_steps=40))
    return job


@pytest.mark.parametrize("end", [J.CANCELLED, J.SUCCEEDED, J.FAILED])  # a stopped job may still end in any
def test_the_stopping_line_goes_once_the_job_has_ended(gui, monkeypatch, end):
    job = _running_job(gui, monkeypatch)
    line, kept = i18n.keep_said(lambda lang, job_id: tt.stop_job(gui, lang, job_id), 0)("ja", job.id)
    assert line.startswith("■ ")
    assert tt.refresh(gui, "ja", job.id, "", "", kept)[MESSAGE] == (gr.skip(), gr.skip())  # still stopping
    gui.store.transition(job.id, J.CANCELLING)
    gui.store.transition(job.id, end)
    assert tt.refresh(gui, "ja", job.id, "", "", kept)[MESSAGE] == ("", "")
    assert tt.refresh(gui, "en", job.id, "", "", "")[MESSAGE] == (gr.skip(), gr.skip())  # nothing to empty


def test_other_lines_stay_after_the_job_ended(gui, monkeypatch):
    """Started job …, Stop of another job, what a direct call sends: not this job's Stop, left as they are."""
    job = _running_job(gui, monkeypatch)
    other = i18n.keep_said(lambda lang, job_id: tt.stop_job(gui, lang, job_id), 0)("en", _running_job(gui, monkeypatch, "y").id)[1]
    started = i18n.keep_said(lambda lang: i18n.said_in_all(lambda c: f"▶ {i18n.tr('train.started', c)} `{job.id}`", lang), 0)("en")[1]
    gui.store.transition(job.id, J.CANCELLING)
    gui.store.transition(job.id, J.CANCELLED)
    for kept in (other, started, "not json", None, 5, '{"en": 5}'):
        assert tt.refresh(gui, "en", job.id, "", "", kept)[MESSAGE] == (gr.skip(), gr.skip()), kept
