"""The page's handlers called as a direct HTTP call can call them, with values the page never sends
(no language, an id that names nothing, a setting of another type): each answers in words, never
with a traceback (found by probing the live app's every event over HTTP)."""
from __future__ import annotations

import json
from functools import partial

import gradio as gr
import pytest

from core.config import load_config
from core.presets import compose
from webui import fields
from webui.i18n import tr
from webui.tabs import dataset_tab, hyperparams_tab, review_handlers, train_tab


def test_a_handler_given_no_language_or_an_unknown_one_answers_in_english(gui):
    """The language radio may arrive empty (None) or as a code the page does not speak: a KeyError
    (and a traceback in the server's log) before."""
    for lang in (None, "", "fr", "xx-YY"):
        said = dataset_tab.check(gui, "", "auto", "", lang)[0]
        assert said == said.texts["en"] and "upload" in said.lower(), (lang, said)
    assert dataset_tab.check(gui, "", "auto", "", "es-ES")[0] == dataset_tab.check(gui, "", "auto", "", "es")[0]


def box(**changes) -> str:
    """The settings box as a direct call sends it: the demo template's settings with `changes`."""
    return json.dumps({**compose("demo"), **changes})


def test_a_column_map_of_another_type_is_a_problem_and_a_mapping_is_taken_as_it_is(gui):
    """The box's column_map as a number, list, NaN or true raised AttributeError (no .strip); a mapping,
    as a config file writes it, is what the text says."""
    start = fields.with_settings(partial(train_tab.start_training, gui))
    show = fields.with_settings(partial(hyperparams_tab.show_command, gui))
    for value in (7, 1e308, [1, 2], True, ["prompt", "question"]):
        job_id, said, _ = start("en", ["cpu"], 1, box(column_map=value))
        assert job_id == gr.skip() and "Column names" in said and "expected: yours" in said, (value, said)
        assert "expected: yours" in show("en", ["cpu"], 1, box(column_map=value))
    assert gui.store.list() == []
    line = show("en", ["cpu"], 1, box(column_map={"prompt": "question", "completion": "answer"}))
    saved = load_config(line.split("train ", 1)[1].split()[0])
    assert saved.column_map == {"prompt": "question", "completion": "answer"}, line


OTHER_IDS = ["ds-000000000000", "../../etc/passwd", "/etc/passwd", "x" * 100_000, "a\x00b", "None", "1e+308"]


def test_a_dataset_id_that_names_no_dataset_is_said_in_words_by_every_dataset_handler(gui):
    """The Dataset tab's hidden id box, sent to the API as anything: the grid, the check with its rows
    and the download raised NotFound (a 500 and a traceback); saving edits and the Review tab's Export marks too."""
    import pandas as pd
    edited = pd.DataFrame([[1, 1, '{"text": "x"}']], columns=["row", "line", "record"])
    for ds_id in OTHER_IDS:
        assert dataset_tab.grid(gui, ds_id, 1, "en").empty
        summary, *_, frame, picker, download_box = dataset_tab.check_rows_and_picker(gui, ds_id, "auto", "", 1, "ja")
        assert "no dataset" in summary.lower() or "データセット" in summary, summary[:300]
        assert frame.empty and download_box is None
        said = dataset_tab.save_edits(gui, ds_id, 1, edited, "en")
        assert said.startswith("⚠") and "no dataset" in said, said[:300]
        with pytest.raises(gr.Error) as e:
            dataset_tab.download(gui, ds_id, "en")
        assert "no dataset" in e.value.message and "pick a dataset" in e.value.message
        with pytest.raises(gr.Error) as e:  # the Review tab's Export marks (found by a walk calling it over HTTP)
            review_handlers.export(gui, ds_id, "ja")
        assert "データセット" in e.value.message, e.value.message
    assert not (gui.ws.root / "gui-downloads").exists() or not list((gui.ws.root / "gui-downloads").iterdir())


def test_a_job_id_or_model_of_another_type_names_nothing_and_is_said_in_words(gui):
    """The job picker and the model picker take custom values, so the API may send any JSON there: a
    list or dict raised TypeError (unhashable), 10**30 OverflowError in SQLite, a number AttributeError
    in the model's description (each an HTTP 500 and a traceback)."""
    from webui.tabs import templates_tab
    for job_id in ([1, 2], {"a": 1}, 10**30, -1, 1.5, True):
        assert gui.store.get(job_id) is None and gui.live.job(job_id) is None
        status = train_tab.refresh_job(gui, job_id, "", "en")[0]
        assert status == tr("train.no_job_yet", "en")
        assert train_tab.remember(job_id) is None
        assert train_tab.retry_job(gui, "en", job_id)[1].startswith("⚠") and gui.store.list() == []
        assert train_tab.initial_job(gui, job_id) == (None, None)
        assert templates_tab.describe_model(gui, job_id, "en") == tr("tpl.no_model", "en")


def test_a_start_adapter_too_long_for_any_job_id_is_a_settings_problem(gui):
    """start_adapter names a job by its id or a prefix of it; 100,000 characters sent to the API made
    SQLite refuse the lookup ("LIKE or GLOB pattern too complex": HTTP 500, a traceback)."""
    from core import jobs as J
    done = gui.store.create(kind="train", run_dir=str(gui.ws.root / "runs" / "x"), state=J.FAILED)  # SQLite
    start = fields.with_settings(partial(train_tab.start_training, gui))  # tries the pattern only on a row
    for value in ("x" * 100_000, "2" * 60_000):
        assert gui.store.find(value) is None
        job_id, said, _ = start("en", ["cpu"], 1, box(start_adapter=value))
        assert job_id == gr.skip() and "start_adapter" in said, said[:300]
    assert [j.id for j in gui.store.list()] == [done.id]


def test_a_chat_model_of_another_type_is_said_in_words_by_chat_and_share_a_demo(gui):
    """The Chat tab's model picker takes typed names, so a direct call may send any JSON: a number, list or
    dict raised AttributeError (no .strip) in core.trust before a model loaded (HTTP 500, a traceback), from
    the chat and from Share a demo alike."""
    from webui.tabs import chat_share, chat_tab
    sessions = chat_tab.Sessions(gui)
    for model in (5, [1, 2], {"a": 1}, 1e308, True):
        *_, (tuned, _base, _note) = chat_tab.answer(gui, sessions, "en", model, "", False, "", 0.7, 0.9, 16, 1.1,
                                                     [{"role": "user", "content": "hi"}], [])
        said = tuned[-1]["content"]
        assert said.startswith("⚠") and "neither a model preset" in said, (model, said)
        said = chat_share.start_demo(gui, "en", model, "", "", "127.0.0.1", None, "", "", False)[0]
        assert "neither a model preset" in said, (model, said)
    assert gui.chat_engine()._workers == {}  # refused before any chat worker started


def test_a_path_longer_than_any_file_can_have_is_refused_not_written_out(gui):
    """A dataset path of a megabyte sent over HTTP passed Show command and Save config as valid: each wrote it
    out into a config file (3.5 s of the server's time for one call); the base model and start adapter too."""
    show = fields.with_settings(partial(hyperparams_tab.show_command, gui))
    save = fields.with_settings(partial(hyperparams_tab.save_settings, gui))
    for name in ("dataset", "base_model", "start_adapter"):
        line = show("en", ["cpu"], 1, box(**{name: "A" * 100_000}))
        assert line.startswith("# Fix these settings first") and "characters long; it may have at most 4,096" in line, (name, line[:300])
        path, problems, _ = save("en", box(**{name: "A" * 100_000}))
        assert path is None and "at most 4,096" in problems, (name, problems[:300])
