"""The page's handlers called as a direct HTTP call can call them, with values the page never sends
(no language, an id that names nothing, a setting of another type): each answers in words, never
with a traceback (found by probing the live app's every event over HTTP)."""
from __future__ import annotations

import json
from functools import partial

import gradio as gr

from core.config import load_config
from core.presets import compose
from webui import fields
from webui.tabs import dataset_tab, hyperparams_tab, train_tab


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
