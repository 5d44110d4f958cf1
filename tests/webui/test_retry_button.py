"""The Train tab's Retry: a new run from the selected job's settings. The hints of failures and refusals
told people to press Retry, in every language, while the page had only Start, Stop and Resume."""
import time

import gradio as gr
import pytest

from core import jobs as J
from core.config import read_yaml
from webui import fields
from core.messages import Msg
from webui.i18n import say, tr
from webui.tabs import train_tab as tt
from tests.webui.test_handlers import demo_values

RETRY = 10  # refresh_job's output for the Retry button


def _ended(gui, job_id: str) -> J.Job:
    deadline = time.time() + 120
    while gui.store.get(job_id).state not in J.TERMINAL:
        assert time.time() < deadline, gui.store.get(job_id)
        time.sleep(0.3)
    return gui.store.get(job_id)


@pytest.mark.parametrize("lang", ["en", "zh-CN", "ja", "ko", "es"])
def test_the_hints_name_the_button_the_page_has(lang):
    button = tr("train.retry", lang)
    for code in ("fail.crashed.hint", "job.use_retry.hint", "job.finished_retry.hint"):
        assert button in say(Msg(code), lang), (code, lang)


def test_retry_starts_a_new_run_with_the_selected_jobs_settings(gui, monkeypatch):
    monkeypatch.setenv("DANLU_FAKE_STEPS", "3")
    monkeypatch.setenv("DANLU_FAKE_STEP_S", "0.05")
    values = dict(zip(fields.NAMES, demo_values()), learning_rate=0.000123)
    first, _, _ = tt.start_training(gui, "en", ["cpu"], 1, *[values[n] for n in fields.NAMES])
    assert tt.refresh_job(gui, first, "", "en")[RETRY]["interactive"] is False  # not while it waits or runs
    assert _ended(gui, first).state == J.SUCCEEDED
    assert tt.refresh_job(gui, first, "", "en")[RETRY]["interactive"] is True
    new_id, said = tt.retry_job(gui, "ja", first)
    assert new_id != first and new_id in said and "再試行" in said
    new = gui.store.get(new_id)
    assert new.parent_id == first and new.run_dir != gui.store.get(first).run_dir
    assert read_yaml(new.config_path)["learning_rate"] == 0.000123
    assert _ended(gui, new_id).state == J.SUCCEEDED


def test_retry_needs_a_training_job(gui):
    job_id, said = tt.retry_job(gui, "en", None)
    assert isinstance(job_id, type(gr.skip())) and "Choose a job" in said
    job_id, said = tt.retry_job(gui, "en", "no-such-job")
    assert isinstance(job_id, type(gr.skip())) and said.startswith("⚠") and gui.store.list() == []
