"""Picking a model in the Chat tab sets the temperature and top-p sliders to that model's recommended
settings (its generation_config.json), else Danlu's 0.7 / 0.9; the page opens with the default pick's."""
from __future__ import annotations

import json

import gradio as gr

from core import demo_model
from core.gen_settings import GenSettings
from webui.tabs import chat_tab

DEMO = (demo_model.SAMPLING["temperature"], demo_model.SAMPLING["top_p"])
DANLU = (GenSettings.temperature, GenSettings.top_p)


def test_picking_a_model_sets_the_sliders(gui, tmp_path):
    assert chat_tab.pick_sampling(gui, "builtin:danlu-tiny", "") == DEMO
    assert chat_tab.pick_sampling(gui, "someone/some-model", "") == DANLU  # nothing recommended
    export = gui.ws.exports / "greedy"
    export.mkdir(parents=True)
    (export / "config.json").write_text("{}")
    (export / "generation_config.json").write_text(json.dumps({"do_sample": False, "top_p": 0.8}))
    assert chat_tab.pick_sampling(gui, "greedy", None) == (0.0, 0.8)  # a merged export's own file


def test_what_a_direct_call_sends_gets_danlus(gui):
    for junk in ([1], {"a": 1}, 10 ** 30, None, "", "../../etc"):
        assert chat_tab.pick_sampling(gui, junk, junk) == DANLU


def test_the_page_opens_with_the_default_picks_settings(gui):
    with gr.Blocks():
        tab = chat_tab.build(gui)
    assert tab.model.value == "builtin:danlu-tiny"
    assert (tab.sampling[0].value, tab.sampling[1].value) == DEMO


def test_a_pick_of_model_or_run_updates_the_sliders(services):
    """The handler is wired: the model picker's change, and the run picker's (after its base model is set)."""
    from webui.app import build_ui
    blocks = build_ui(services)
    ids = {getattr(b, "elem_id", None): i for i, b in blocks.blocks.items()}
    sliders = [ids["chat-temperature"], ids["chat-top-p"]]
    fns = {i: d for i, d in enumerate(blocks.fns.values())}
    picks = [d for d in fns.values() if getattr(d.fn, "func", None) is chat_tab.pick_sampling]
    assert sorted([b._id for b in d.outputs] == sliders for d in picks) == [True, True]
    triggers = {(t[0]._id if hasattr(t[0], "_id") else t[0], t[1]) for d in picks for t in d.targets}
    assert (ids["chat-model"], "change") in triggers
