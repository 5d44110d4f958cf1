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

import gradio as gr

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


def Number(*args, **kwargs) -> gr.Number:  # noqa: N802  (named as the component it makes)
    """gr.Number whose value reaches the handler as sent when Gradio cannot read it (see the module)."""
    return _reading_as_sent(gr.Number(*args, **kwargs))


def Slider(*args, **kwargs) -> gr.Slider:  # noqa: N802
    """gr.Slider whose value reaches the handler as sent when Gradio cannot read it (see the module)."""
    return _reading_as_sent(gr.Slider(*args, **kwargs))
