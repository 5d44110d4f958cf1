"""Widgets generated from TrainConfig metadata: one widget per setting, keyed by the field name.

The field name is the widget key, its elem_id (`cfg-<name>`) and the config key the Train tab
sends to core; the label and help come from the field's metadata through webui.i18n. Bounds are
not handed to Gradio (its own range errors are terse English): core.config.validate checks them
and the Hyperparameters tab shows its problems in words as you type.
"""
from __future__ import annotations

import gradio as gr
import yaml

from core.config import FIELDS, GROUPS, TrainConfig, coerce, from_dict, to_dict, validate
from core.errors import InputError, Problem
from webui.i18n import L

NAMES: list[str] = list(FIELDS)


def _kind(name: str) -> str:
    meta = FIELDS[name].metadata
    if meta["kind"] in ("path", "lines"):
        return meta["kind"]
    if meta["choices"]:
        return "choice"
    default = FIELDS[name].default
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):  # shares of the data/run get a slider; rates and sizes a number
        return "fraction" if meta["min"] == 0 and meta["max"] is not None and meta["max"] <= 1 else "float"
    return "mapping" if FIELDS[name].type in (dict, "dict") else "text"


def default_value(name: str):
    return to_widget_value(name, getattr(TrainConfig(), name))


def to_widget_value(name: str, value):
    """A config value as its widget shows it (the column map as `key: value` lines, a list one item a line)."""
    if _kind(name) == "mapping":
        return "\n".join(f"{k}: {v}" for k, v in (value or {}).items())
    if _kind(name) == "lines":
        return "\n".join(value or [])
    return value


def widget_for(name: str, *, model_choices: list[tuple[str, str]] | None = None, **overrides) -> gr.components.Component:
    """The one widget for TrainConfig field `name`, labelled and explained in both languages."""
    meta = FIELDS[name].metadata
    kind = _kind(name)
    common = dict(label=L(f"field.{name}"), info=L(f"help.{name}"), elem_id=f"cfg-{name}",
                  value=default_value(name))
    common.update(overrides)
    if name == "base_model":
        return gr.Dropdown(choices=model_choices or [], allow_custom_value=True, filterable=True, **common)
    if kind == "choice":
        return gr.Dropdown(choices=list(meta["choices"]), **common)
    if kind == "bool":
        return gr.Checkbox(**common)
    if kind == "int":
        return gr.Number(precision=0, **common)
    if kind == "fraction":
        return gr.Slider(minimum=meta["min"], maximum=meta["max"], step=0.01, **common)
    if kind == "float":
        return gr.Number(**common)
    if kind == "path":
        return gr.Textbox(interactive=False, max_lines=1, **common)
    if kind == "mapping":
        return gr.Textbox(lines=2, placeholder="prompt: question\ncompletion: answer", **common)
    if kind == "lines":
        return gr.Textbox(lines=3, max_lines=10, **common)
    return gr.Textbox(max_lines=1, **common)


def grouped(advanced: bool) -> dict[str, list[str]]:
    """Field names per group (model, data, lora, ...), basic or advanced, in TrainConfig order."""
    out: dict[str, list[str]] = {g: [] for g in GROUPS}
    for name, f in FIELDS.items():
        if f.metadata["advanced"] == advanced:
            out[f.metadata["group"]].append(name)
    return {g: names for g, names in out.items() if names}


def _parse_mapping(text: str) -> tuple[dict | None, Problem | None]:
    text = (text or "").strip()
    if not text:
        return {}, None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and all(isinstance(v, (str, int, float)) for v in data.values()):
        return {str(k): str(v) for k, v in data.items()}, None
    return None, Problem("column_map", "write one `expected: yours` pair per line", "e.g. prompt: question")


def values_to_dict(values: dict) -> tuple[dict, list[Problem]]:
    """Widget values -> config mapping, with a Problem for every value that has the wrong type."""
    out, problems = {}, []
    for name, value in values.items():
        if _kind(name) == "mapping":
            mapped, p = _parse_mapping(value)
            if p:
                problems.append(p)
                continue
            value = mapped
        elif isinstance(value, float) and _kind(name) == "int" and value.is_integer():
            value = int(value)
        if value is None and _kind(name) in ("int", "float", "fraction"):
            problems.append(Problem(name, f"{FIELDS[name].metadata['label']} is empty", "type a number"))
            continue
        v, p = coerce(name, value)
        if p:
            problems.append(p)
        else:
            out[name] = v
    return out, problems


def build_config(values: dict, *, check_files: bool = True) -> tuple[TrainConfig | None, list[Problem]]:
    """A TrainConfig from widget values, and every problem with it (type, bounds, files)."""
    data, problems = values_to_dict(values)
    try:
        cfg = from_dict(data, source="the settings")
    except InputError as e:
        return None, problems + e.problems
    problems += validate(cfg, check_files=check_files)
    return (cfg if not problems else None), problems


def config_values(cfg: dict, names: list[str]) -> list:
    """Widget values for `names` from a config mapping (missing keys keep their defaults)."""
    full = {**to_dict(TrainConfig()), **cfg}
    return [to_widget_value(n, full[n]) for n in names]
