"""Pickers that take only their choices (dropdowns, radios, checkbox groups), as a direct HTTP call reaches them.

Gradio checks a picker's value against its choices before the handler runs. A value only a direct HTTP call
can send (one not in the list, a list to a single picker) made it answer HTTP 500 in its own English ("Value: x
is not in the list of choices: [...]"), with a traceback in the server's log. refuse_in_words checks those
values first, by Gradio's own test against the same choices, and refuses them in the page's language, naming
the box (the numbers' refusals read the same: webui.numbers). The language picker itself is read as every
handler reads a language (webui.i18n.lang_code): "es-ES" is Spanish, a code the page does not speak English.

One check for the whole app, where Gradio reads the event's values, not one per component as webui.numbers
replaces a box's reading: an event that updates a picker's choices makes Gradio rebuild it for that session
as a plain gr.Dropdown (a replaced reading would be gone), and the choices to check are that session's.
Pickers that take typed values (allow_custom_value) are left to their handlers. File boxes and click events
sent what the page never sends are refused here too, in the same words (webui.sent_events).
"""
from __future__ import annotations

import html

import gradio as gr

from core.config_io import quoted
from core.errors import Problem
from core.messages import Msg
from webui import sent_events
from webui.i18n import lang_code, say, tr

PICKERS = (gr.Dropdown, gr.Radio, gr.CheckboxGroup)


def _takes_only_choices(box) -> bool:
    return isinstance(box, PICKERS) and not getattr(box, "allow_custom_value", False)


def _many(box) -> bool:
    return isinstance(box, gr.CheckboxGroup) or bool(getattr(box, "multiselect", False))


def outside(box, value) -> tuple[bool, object]:
    """(True, the value or item not among `box`'s choices) when Gradio would refuse `value` (or a value the
    page never sends: a list to a single picker, one value to a group); (False, None) when it is taken."""
    if value is None:  # nothing picked
        return False, None
    values = [v for _, v in box.choices]
    if not _many(box):
        return (True, value) if isinstance(value, list) or value not in values else (False, None)
    if not isinstance(value, list):
        return True, value
    return next(((True, v) for v in value if v not in values), (False, None))


def _box_name(box, lang: str) -> str:
    """The box as the page labels it, in `lang` (its elem_id when it has no label)."""
    key = getattr(box.label, "key", None)
    return tr(key, lang) if key else str(box.label or box.elem_id or "")


def _said(value) -> str:
    return f'"{quoted(value)}"' if isinstance(value, str) else quoted(value)


def refusal(box, value, lang: str) -> gr.Error:
    """The page's error box for `value` sent to `box`: the box named, the value quoted short, what to do."""
    problem = Problem(_box_name(box, lang), Msg("page.not_a_choice", value=_said(value)), Msg("page.not_a_choice.hint"))
    # as the settings box's refusals read (webui.fields.refused); the box shows its text as HTML
    return gr.Error(html.escape(say(problem.as_msg(), lang), quote=False), title=say(Msg("error.input"), lang),
                    print_exception=False)


def _page_language(language, boxes, inputs, state) -> str:
    """The language the event sent, else the one this session's page sent last, else English."""
    for box, value in zip(boxes, inputs):
        if box is language:
            return lang_code(value)
    try:
        return lang_code(state.config_values[language._id]["props"]["value"])
    except (AttributeError, KeyError, TypeError):  # a direct call: no page, no session before it
        return "en"


def checked(language, block_fn, inputs: list, state) -> list:
    """The event's `inputs` with the language read as the handlers read it; gr.Error in words for a value
    a picker does not take (see the module)."""
    if not block_fn.preprocess or len(inputs) < len(block_fn.inputs):
        return inputs  # Gradio reads nothing, or refuses the call itself
    inputs = list(inputs)
    skip = set(getattr(block_fn, "component_prop_inputs", None) or ())
    for i, box in enumerate(block_fn.inputs):
        if box is language and inputs[i] is not None:
            inputs[i] = lang_code(inputs[i]) if isinstance(inputs[i], str) else None
    lang = _page_language(language, block_fn.inputs, inputs, state)
    for i, box in enumerate(block_fn.inputs):
        if i in skip or box is language:
            continue
        if isinstance(box, sent_events.FILE_BOXES):  # a file this page did not upload (webui.sent_events)
            error = sent_events.file_refusal(box, inputs[i], lang)
            if error is not None:
                raise error
        elif (error := sent_events.file_in_other_box(box, inputs[i], lang)) is not None:
            raise error
        if not _takes_only_choices(box):
            continue
        if inputs[i] is None and _many(box):
            inputs[i] = []  # a group sent nothing: nothing checked, as the page sends it
        mine = state[box._id] if state is not None and box._id in state else box  # this session's copy
        bad, value = outside(mine, inputs[i])
        if bad:
            raise refusal(box, value, lang)
    return inputs


def refuse_in_words(blocks: gr.Blocks, language: gr.Radio) -> None:
    """Every event of `blocks` checks its pickers' and file boxes' values before Gradio reads them, and a
    click handler's click (see the module and webui.sent_events). `language`: the page's language picker."""
    read, process = blocks.preprocess_data, blocks.process_api  # where Gradio reads an event's values, and its caller

    async def preprocess_data(block_fn, inputs, state, explicit_call=False):
        return await read(block_fn, checked(language, block_fn, inputs, state), state, explicit_call)

    clicks: dict = {}  # per event: whether its handler takes a click (read once: every timer tick comes here)

    async def process_api(block_fn, inputs, state=None, *args, **kwargs):
        fn = blocks.fns[block_fn] if isinstance(block_fn, int) else block_fn
        if fn not in clicks:
            clicks[fn] = fn.fn is not None and sent_events.takes_a_click(fn.fn)
        if clicks[fn]:
            box = blocks.blocks.get(fn.targets[0][0]) if fn.targets else None
            error = sent_events.click_refusal(box, kwargs.get("event_data"), _page_language(language, fn.inputs, inputs, state))
            if error is not None:
                raise error
        return await process(block_fn, inputs, state, *args, **kwargs)

    blocks.preprocess_data, blocks.process_api = preprocess_data, process_api
