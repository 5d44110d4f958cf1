"""Widgets come from TrainConfig metadata; widget values turn back into a TrainConfig or into problems."""
import json

import gradio as gr
import pytest

from core.config import FIELDS, TrainConfig, to_dict
from core.presets import compose
from webui import fields


@pytest.mark.parametrize("name", list(FIELDS))
def test_every_setting_gets_a_labelled_widget_keyed_by_its_name(name):
    with gr.Blocks():
        w = fields.widget_for(name)
    assert w.elem_id == f"cfg-{name}"
    assert "__i18n__" in str(w.label) and f"field.{name}" in str(w.label)
    assert f"help.{name}" in str(w.info)


def test_widget_kinds_follow_the_metadata():
    with gr.Blocks():
        assert isinstance(fields.widget_for("quantization"), gr.Dropdown)
        assert isinstance(fields.widget_for("packing"), gr.Checkbox)
        assert isinstance(fields.widget_for("lora_rank"), gr.Number)
        assert isinstance(fields.widget_for("val_fraction"), gr.Slider)
        assert isinstance(fields.widget_for("learning_rate"), gr.Number)  # not a 0..1 slider: it needs 1e-4
        assert isinstance(fields.widget_for("column_map"), gr.Textbox)
        assert fields.widget_for("probe_prompts").lines == 3


def test_probe_prompts_are_one_per_line(ws):
    values = values_of(compose("demo"))
    values["probe_prompts"] = "What fire does the copper furnace use?\n\n  Where is the pine pill made?  "
    cfg, problems = fields.build_config(values, ws)
    assert problems == [] and cfg.probe_prompts == ["What fire does the copper furnace use?", "Where is the pine pill made?"]
    assert fields.to_widget_value("probe_prompts", cfg.probe_prompts).count("\n") == 1


def test_grouping_covers_every_field_once():
    seen = [n for adv in (False, True) for names in fields.grouped(adv).values() for n in names]
    assert sorted(seen) == sorted(FIELDS)


def values_of(cfg: dict) -> dict:
    return dict(zip(fields.NAMES, fields.config_values(cfg, fields.NAMES)))


def test_a_template_round_trips_through_the_widgets(ws):
    cfg = compose("demo")
    built, problems = fields.build_config(values_of(cfg), ws)
    assert problems == []
    assert to_dict(built) == to_dict(TrainConfig(**cfg))


def test_defaults_are_refused_until_a_dataset_is_chosen(ws):
    cfg, problems = fields.build_config(values_of({}), ws)
    assert cfg is None
    assert [p.where for p in problems] == ["dataset"]


def test_every_bad_value_is_named_at_once(ws):
    values = values_of(compose("demo"))
    values.update(lora_rank=0, learning_rate=None, column_map="prompt question")
    cfg, problems = fields.build_config(values, ws)
    assert cfg is None
    assert {p.where for p in problems} >= {"lora_rank", "learning_rate", "column_map"}


def test_numbers_from_the_page_become_the_right_type(ws):
    values = values_of(compose("demo"))
    values.update(lora_rank=32.0, max_steps=7.0)  # gr.Number sends floats
    cfg, problems = fields.build_config(values, ws)
    assert problems == []
    assert cfg.lora_rank == 32 and isinstance(cfg.lora_rank, int) and cfg.max_steps == 7


def test_column_map_is_written_and_read_as_lines(ws):
    assert fields.to_widget_value("column_map", {"prompt": "question", "completion": "answer"}) == \
        "prompt: question\ncompletion: answer"
    values = values_of(compose("demo"))
    values["column_map"] = "prompt: question\ncompletion: answer"
    cfg, problems = fields.build_config(values, ws)
    assert problems == [] and cfg.column_map == {"prompt": "question", "completion": "answer"}


def test_the_settings_box_round_trips_and_fills_what_is_left_out():
    demo = values_of(compose("demo"))
    assert fields.snapshot_values(json.dumps(demo)) == [demo[n] for n in fields.NAMES]
    partial_box = fields.snapshot_values('{"lora_rank": 24}')  # an API caller sends what it changes
    assert dict(zip(fields.NAMES, partial_box)) == {**values_of({}), "lora_rank": 24}


def test_a_column_map_nested_past_pythons_limit_is_refused_in_words():
    assert fields._parse_mapping("prompt: " + "[" * 100_000)[1].where == "column_map"


def test_a_broken_settings_box_is_refused_in_words():
    from core.errors import InputError
    # "[[[[...": nested past Python's limit (found by an HTTP probe: an unexplained error before)
    for text, where in [("{not json", "settings"), ("[1, 2]", "settings"), ('{"lora_rnak": 8, "x": 1}', "lora_rnak"),
                        ("[" * 100_000, "settings")]:
        with pytest.raises(InputError) as e:
            fields.snapshot_values(text)
        assert e.value.problems[0].where == where
    run = fields.with_settings(lambda lang, *values: (lang, dict(zip(fields.NAMES, values))["lora_rank"]))
    assert run("en", '{"lora_rank": 8}') == ("en", 8)
    with pytest.raises(gr.Error, match="lora_rnak: unknown setting"):
        run("en", '{"lora_rnak": 8}')


def test_a_column_map_key_written_twice_is_named_with_the_line_to_keep():
    """The box answered a key written twice with the generic "write one `expected: yours` pair per line";
    it names the key and its first line (as the box numbers its lines) and says to keep one line for it."""
    from webui.i18n import say
    mapping, p = fields._parse_mapping("\n\nprompt: question\ncompletion: answer\nprompt: ask\n")
    assert mapping is None and p.where == "column_map"
    said = say(p.as_msg(), "en")
    assert '"prompt" is written twice (the first time on line 3)' in said and 'keep one line for "prompt"' in said, said
    assert "expected: yours" not in said
    assert '"prompt"' in say(p.as_msg(), "ja") and "1 行だけ" in say(p.as_msg(), "ja")
    p = fields._parse_mapping("{prompt: a, prompt: b}")[1]
    assert 'the key "prompt" is written twice on this line' in say(p.as_msg(), "en")
