"""Widgets generated from TrainConfig metadata: one widget per setting, keyed by the field name.

The field name is the widget key, its elem_id (`cfg-<name>`) and the config key the Train tab
sends to core; the label and help come from the field's metadata through webui.i18n. Bounds are
not handed to Gradio (its own range errors are terse English): core.config.validate checks them
and the Hyperparameters tab shows its problems in words as you type.
"""
from __future__ import annotations

import html
import json

import gradio as gr
import yaml

from core import trust
from core.method_check import start_adapter_problems
from core.config import FIELDS, GROUPS, TrainConfig, coerce, from_dict, int_or_text, load_yaml_text, to_dict, validate
from core.config_io import GROUPED, quoted
from core.errors import InputError, Problem
from core.messages import Msg, label
from core.yaml_text import KeyTwice
from webui import numbers
from webui.i18n import L, has, say

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


def choice_list(name: str) -> list:
    """A choice field's choices: (plain words, value) where the page has words for the value
    (`choice.<field>.<value>`, e.g. method's "Teach from better/worse pairs (dpo)"), else the value."""
    return [(L(f"choice.{name}.{c}"), c) if has(f"choice.{name}.{c}") else c for c in FIELDS[name].metadata["choices"]]


def widget_for(name: str, *, model_choices: list[tuple[str, str]] | None = None,
               run_choices: list[tuple[str, str]] | None = None, **overrides) -> gr.components.Component:
    """The one widget for TrainConfig field `name`, labelled and explained in both languages.
    run_choices: (label, job id) of the finished training runs, for start_adapter's picker."""
    meta = FIELDS[name].metadata
    kind = _kind(name)
    common = dict(label=L(f"field.{name}"), info=L(f"help.{name}"), elem_id=f"cfg-{name}",
                  value=default_value(name))
    common.update(overrides)
    if name == "base_model":
        return gr.Dropdown(choices=model_choices or [], allow_custom_value=True, filterable=True, **common)
    if kind == "choice":
        return gr.Dropdown(choices=choice_list(name), **common)
    if name == "start_adapter":  # a finished run by its job id (or a typed folder, checked by core.trust)
        return gr.Dropdown(choices=[(L("hp.start_from_base"), "")] + list(run_choices or []), allow_custom_value=True,
                           filterable=True, **common)
    if kind == "bool":
        return gr.Checkbox(**common)
    if kind == "int":
        return numbers.Number(precision=0, **common)
    if kind == "fraction":
        return numbers.Slider(minimum=meta["min"], maximum=meta["max"], step=0.01, **common)
    if kind == "float":
        return numbers.Number(**common)
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


def _parse_mapping(text) -> tuple[dict | None, Problem | None]:
    """The column map box's text (`expected: yours` per line); the settings box of a direct HTTP call
    may hold the mapping itself (as a config file does) or any other JSON value: that is a Problem.
    A key written twice is named, with the line to keep (as a config file's is: core.config_io.read_yaml)."""
    if isinstance(text, dict):
        data = text
    elif text is None or isinstance(text, str):
        text = text or ""
        blank_lines = text[:len(text) - len(text.lstrip())].count("\n")  # lines as the box numbers them
        text = text.strip()
        if not text:
            return {}, None
        try:
            data = load_yaml_text(text)
        except KeyTwice as e:
            return None, _key_twice(e, blank_lines)
        except yaml.YAMLError:
            data = None
    else:
        data = None
    if isinstance(data, dict) and all(isinstance(v, (str, int, float)) for v in data.values()):
        return {str(k): str(v) for k, v in data.items()}, None
    return None, Problem("column_map", Msg("page.column_map"), Msg("page.column_map.hint"))


def _key_twice(e: KeyTwice, blank_lines: int) -> Problem:
    """The column map's key written twice: which key, and to keep one line for it (one line, `{a: x, a: y}`: one value)."""
    key = quoted(e.key)
    if e.first == e.line:
        return Problem("column_map", Msg("config.key_twice_line", key=key), Msg("config.set_key_twice.hint", key=key))
    return Problem("column_map", Msg("config.key_twice", key=key, first=e.first + blank_lines),
                   Msg("page.column_map_twice.hint", key=key))


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
            problems.append(Problem(name, Msg("page.empty_number", label=label(name)), Msg("page.empty_number.hint")))
            continue
        v, p = coerce(name, value)
        if p:
            problems.append(p)
        else:
            out[name] = v
    return out, problems


def build_config(values: dict, ws, *, check_files: bool = True) -> tuple[TrainConfig | None, list[Problem]]:
    """A TrainConfig from the page's values, and every problem with it (type, bounds, files). The
    paths are checked against the page's trust boundary (core.trust) before any file is looked at."""
    data, problems = values_to_dict(values)
    try:
        cfg = from_dict(data, source=Msg("config.settings"))
    except InputError as e:
        return None, problems + e.problems
    try:
        cfg = trust.check_config(cfg, ws, trust.BROWSER, must_exist=check_files)
    except InputError as e:
        return None, problems + e.problems
    problems += validate(cfg, check_files=check_files)
    if check_files:  # a job id or run folder to continue from: what Start would refuse, said now
        problems += start_adapter_problems(ws, cfg)
    return (cfg if not problems else None), problems


def config_values(cfg: dict, names: list[str]) -> list:
    """Widget values for `names` from a config mapping (missing keys keep their defaults)."""
    full = {**to_dict(TrainConfig()), **cfg}
    return [to_widget_value(n, full[n]) for n in names]


def changed_only(values: list, current: tuple) -> list:
    """`values` with gr.skip() where the page already shows that value (`current`, NAMES order; none
    given: every value is sent). Each changed widget costs the page a round of its own."""
    if not current:
        return list(values)
    return [gr.skip() if new == now else new for new, now in zip(values, current)]


# ---- the settings as one value ------------------------------------------------------------------
# Events read the settings from one hidden box holding them as JSON, kept current by the page itself,
# instead of from the ~40 widgets. Why: Gradio 6's page keeps every input of every finished event in
# its loading-status list and, on each status change of any event, looks every entry up in the whole
# component tree and copies its props. With the widgets as inputs that list held all of them after
# the first validation, and a template click (a dozen events) took 0.4-0.8 s to show on a 2-core
# machine while a job trained (bench/gui_latency.py). The box is the only input now.

# each widget's change, in the page alone: note the new value in the page's copy at once; send the
# whole copy to the box once per burst (a template changes ~40 widgets in one go: one check, not 40).
# Returning undefined leaves the box as it is. A number box's value is a JavaScript number, which holds
# a whole number exactly only up to 2**53: a whole number past it goes as the text typed, which core
# reads as it reads YAML ("12345678901234567890" typed was quoted back as 12345678901234567000). Past
# 1.8e308 the browser itself reads the box as empty, and the check says so.
# A comma the browser dropped that cannot group thousands ("0,0002" typed, 2 read) goes as the keys typed
# (webui.page_script keeps them), for the check to refuse and quote as typed (core.config_io.decimal_comma).
_SNAPSHOT_JS = """async (value, box) => {
  const s = (window.danluSettings ??= JSON.parse(box || '{}'));
  const input = document.querySelector('#cfg-' + %(name)s + ' input[type=number]');
  const typed = input?.value.trim() ?? '';
  const lost = typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value);
  s[%(name)s] = lost && /^[-+]?[0-9.]+(e[-+]?[0-9]+)?$/i.test(typed) && Number(typed) === value ? typed : value;
  const keys = input?.danluTyped?.trim();
  if (keys && keys.includes(',') && keys.replace(/,/g, '') === typed && !new RegExp('^(?:' + %(grouped)s + ')$').test(keys)) {
    s[%(name)s] = keys;
  }
  const mine = (window.danluSettingsBurst = (window.danluSettingsBurst || 0) + 1);
  await new Promise(r => setTimeout(r, 0));
  return mine === window.danluSettingsBurst ? JSON.stringify(s) : undefined;
}"""
# actions (Start, Save, Show command) send the page's copy itself, so a value typed a moment before
# the click is never missed while its burst is still waiting
CURRENT_JS = """(...args) => {
  if (window.danluSettings) args[args.length - 1] = JSON.stringify(window.danluSettings);
  return args;
}"""


def snapshot_box() -> gr.Textbox:
    """The hidden box, built first in the page: the page finds a component by walking its tree from the
    top, and this one is looked up on every change of any setting."""
    return gr.Textbox("{}", visible=False, label="settings", elem_id="settings-json")


def wire_snapshot(box: gr.Textbox, widgets: dict) -> None:
    """Start the box from the widgets' first values; any widget's change updates it (no server call)."""
    box.value = json.dumps({n: widgets[n].value for n in NAMES})
    for name in NAMES:
        js = _SNAPSHOT_JS % {"name": json.dumps(name), "grouped": json.dumps(GROUPED)}
        widgets[name].change(None, inputs=[widgets[name], box], outputs=[box], js=js, api_visibility="private")


def snapshot_values(text: str | None) -> list:
    """The settings from the box's JSON, in NAMES order; a setting left out keeps its default (API
    callers may send only what they change). Unknown names and broken JSON are refused in words."""
    try:
        data = json.loads(text or "{}", parse_int=int_or_text)  # 5,000 digits: its setting's bounds say so
    except (ValueError, RecursionError) as e:  # RecursionError: "[[[[..." nested past Python's limit
        raise InputError(problems=[Problem("settings", Msg("page.bad_json", error=str(e)), Msg("page.bad_json.hint"))]) from None
    if not isinstance(data, dict):
        raise InputError(problems=[Problem("settings", Msg("page.not_object"), Msg("page.not_object.hint"))])
    unknown = sorted(set(data) - set(NAMES))
    if unknown:
        raise InputError(problems=[Problem(k, Msg("config.unknown"), Msg("page.unknown.hint")) for k in unknown])
    return [data[n] if n in data else default_value(n) for n in NAMES]


def with_settings(fn, lang_at: int = 0):
    """`fn(*head, *settings)` as an event taking `(*head, box)`: the box's JSON spread into the settings.
    A refused box becomes a message in the page (gr.Error), like any other problem, in the language of
    `head[lang_at]` (the page's language input)."""
    def run(*args):
        try:
            values = snapshot_values(args[-1])
        except InputError as e:
            lang = args[lang_at] if lang_at < len(args) - 1 else None
            raise refused(e, lang) from None
        return fn(*args[:-1], *values)
    # the name and docs of the handler (API pages, logs); not functools.wraps: its __wrapped__ would
    # make Gradio read the handler's own parameters as this event's; `.func`: webui.serving finds the
    # handler under this wrapper (Start on a cluster keeps the queue)
    inner = getattr(fn, "func", fn)
    run.func, run.__name__, run.__doc__ = fn, inner.__name__, inner.__doc__
    return run


def refused(e: InputError, lang) -> gr.Error:
    """A refused settings box as Gradio's error box, worded in `lang`: each problem, its place and fix on
    one line (the box shows its text as HTML, so what the sender typed is escaped)."""
    text = "; ".join(say(p.as_msg(), lang) for p in e.problems)
    return gr.Error(html.escape(text, quote=False), title=say(e.title, lang), print_exception=False)  # words, not a bug
