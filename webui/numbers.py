"""Number boxes and sliders of the tabs, whose values the handlers (or core) check themselves.

Gradio checks a number box's bounds and rounds its value before the handler runs. A value only a direct
HTTP call can send (NaN, 1e999, text, -1 under the box's minimum) made it answer in its own English
("Value -1 is less than minimum value 0.") or with a bare "Error" (ValueError, OverflowError). Number and
Slider keep Gradio's reading of every value it can read and hand anything else on as it came: the
handler, or core behind it, refuses it in the page's language, naming the box and its bounds
(core.config_io.whole, as_number).

They are Gradio's own components with their reading replaced, not subclasses: Gradio writes a .pyi file
beside the module of every component class it sees defined.
"""
from __future__ import annotations

import json

import gradio as gr

from core.config_io import GROUPED

ROWS = 1_000_000_000  # the highest row number a box takes: more rows than any dataset here holds


def _as_sent(read, payload):
    try:
        return read(payload)
    except (gr.Error, TypeError, ValueError, OverflowError):  # Gradio's bounds, round(NaN), round(inf), text
        return payload


def _reading_as_sent(box):
    read = box.preprocess
    box.preprocess = lambda payload: _as_sent(read, payload)  # Gradio calls the box's own preprocess
    return box


# The page's value of a number box is a JavaScript number, which holds a whole number exactly only up to
# 2**53: 12345678901234567890 typed reached the handler as 12345678901234567168 and was quoted back so
# ("got 1.2345678901234567e+19" where Gradio's bounds refused it first). Where that happens, the page puts
# the text typed in the box's value, as the settings' boxes do (webui.fields): Gradio's reading refuses text
# and hands it on, and the handler's check (core.config_io.whole) quotes it as typed, in the page's
# language, naming the box and its bounds. Anything else leaves the value alone (undefined).
_KEEP_TYPED_JS = """(value) => {
  const typed = document.querySelector('#' + %s + ' input[type=number]')?.value.trim() ?? '';
  const lost = typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value);
  return lost && /^[-+]?[0-9.]+(e[-+]?[0-9]+)?$/i.test(typed) && Number(typed) === value ? typed : undefined;
}"""
# The same goes for a comma the browser dropped that cannot group thousands ("1,5" typed, 15 read; webui.page_script
# keeps the keys typed), once the box is left: core.config_io.decimal_comma refuses it. Not on each change:
# "1,0" on the way to "1,000" would be put in the box, which cannot show it, and empty it under the keys.
_KEEP_COMMA_JS = """(value) => {
  const input = document.querySelector('#' + %s + ' input[type=number]');
  const keys = input?.danluTyped?.trim();
  const grouped = new RegExp('^(?:' + %s + ')$');
  return keys && keys.includes(',') && keys.replace(/,/g, '') === input.value.trim() && !grouped.test(keys) ? keys : undefined;
}"""


def Number(*args, **kwargs) -> gr.Number:  # noqa: N802  (named as the component it makes)
    """gr.Number whose value reaches the handler as sent when Gradio cannot read it (see the module), and,
    for a whole-number box with an elem_id, as typed when the page's number would round it."""
    box = _reading_as_sent(gr.Number(*args, **kwargs))
    if box.precision == 0 and box.elem_id:
        box.change(None, inputs=[box], outputs=[box], js=_KEEP_TYPED_JS % json.dumps(box.elem_id), api_visibility="private")
        box.blur(None, inputs=[box], outputs=[box], js=_KEEP_COMMA_JS % (json.dumps(box.elem_id), json.dumps(GROUPED)),
                 api_visibility="private")
    return box


def Slider(*args, **kwargs) -> gr.Slider:  # noqa: N802
    """gr.Slider whose value reaches the handler as sent when Gradio cannot read it (see the module)."""
    return _reading_as_sent(gr.Slider(*args, **kwargs))
