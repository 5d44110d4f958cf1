"""File boxes and click events, as a direct HTTP call reaches them (webui.choices checks pickers the same way).

A file box's value is a file the page uploaded first: Gradio's description of it ({"path": ..., "meta":
{"_type": "gradio.FileData"}}) naming a file in Gradio's upload folder. Anything else a direct call sends
(5, "hello", {"path": "/etc/passwd"}, the description of a file outside that folder) made Gradio fail before
the handler ran (pydantic's ValidationError, InvalidPathError): HTTP 500 with a bare "Error" and a traceback
in the server's log. A click handler (one that takes gr.SelectData) called with no click data, or with data
that is no click, failed inside Gradio the same way (TypeError building SelectData). Both are refused here in
the page's language, naming the box, before Gradio reads them; Gradio's own checks still run after.
"""
from __future__ import annotations

import html
import inspect
from pathlib import Path

import gradio as gr
from gradio import utils
from gradio_client import utils as client_utils
from gradio.data_classes import FileData

from core.config_io import quoted
from core.errors import Problem
from core.messages import Msg
from webui.i18n import say, tr

FILE_BOXES = (gr.File, gr.UploadButton)


def _box_name(box, lang: str) -> str:
    """The box as the page labels it, in `lang` (its elem_id when it has no label)."""
    key = getattr(getattr(box, "label", None), "key", None)
    return tr(key, lang) if key else str(getattr(box, "label", None) or getattr(box, "elem_id", None) or "")


def _refusal(box, msg: Msg, hint: Msg, lang: str) -> gr.Error:
    """As webui.choices.refusal reads: the box named, what was wrong, what to do; the box shows HTML."""
    problem = Problem(_box_name(box, lang), msg, hint)
    return gr.Error(html.escape(say(problem.as_msg(), lang), quote=False), title=say(Msg("error.input"), lang),
                    print_exception=False)


def _uploaded(value) -> str | None:
    """The path `value` describes when it is a file description Gradio takes, else None."""
    try:
        data = FileData.model_validate(value, context={"validate_meta": True})  # Gradio's own test of the shape
    except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        return None
    return data.path if isinstance(data.path, str) and data.path else None


def _in_upload_folder(path: str) -> bool:
    """A file (not the folder itself, nor one that is not there) inside Gradio's upload folder (webui.serving
    puts it in the workspace), links and `..` resolved; a URL never is (Gradio would fetch it)."""
    if "://" in path:
        return False
    try:
        real, folder = Path(path).resolve(), Path(utils.get_upload_folder()).resolve()
        return real != folder and real.is_relative_to(folder) and real.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long to resolve
        return False


def file_refusal(box, value, lang: str) -> gr.Error | None:
    """gr.Error in words when `value`, sent to the file box `box`, is not a file this page uploaded; None when
    it is (or is nothing: no file chosen)."""
    values = value if getattr(box, "file_count", "single") != "single" and isinstance(value, list) else [value]
    for one in values:
        if one is None:
            continue
        path = _uploaded(one)
        if path is None:
            return _refusal(box, Msg("page.not_a_file", value=_said(one)), Msg("page.upload.hint"), lang)
        if not _in_upload_folder(path):
            return _refusal(box, Msg("page.not_uploaded", path=quoted(path)), Msg("page.upload.hint"), lang)
    return None


def file_in_other_box(box, value, lang: str) -> gr.Error | None:
    """gr.Error in words when `value`, sent to a box that takes no file, holds a file's description anywhere
    in it: Gradio moves every such description it finds in an event's values to its cache first, and one
    naming a file it did not take up failed there (InvalidPathError: HTTP 500, no words, a traceback)."""
    found = _file_described(value)
    if found is None:
        return None
    return _refusal(box, Msg("page.file_in_box", path=quoted(found)), Msg("page.file_in_box.hint"), lang)


def _file_described(value, limit: int = 100_000) -> str | None:
    """The path of the first file description (Gradio's own test) in `value`'s lists and objects, else None;
    walked without recursion (a value nested 100,000 deep is a direct call's), at most `limit` parts."""
    stack = [value]
    while stack and limit > 0:
        limit -= 1
        one = stack.pop()
        if client_utils.is_file_obj_with_meta(one):
            return str(one.get("path"))
        if isinstance(one, dict):
            stack.extend(one.values())
        elif isinstance(one, (list, tuple)):
            stack.extend(one)
    return None


def _said(value) -> str:
    return f'"{quoted(value)}"' if isinstance(value, str) else quoted(value)


def takes_a_click(fn) -> bool:
    """Whether Gradio hands `fn` a gr.SelectData (a parameter typed so)."""
    try:
        hints = utils.get_type_hints(fn)
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError, NameError):
        return False
    return any(inspect.isclass(hints.get(p)) and issubclass(hints[p], gr.SelectData) for p in params)


def click_refusal(box, event_data, lang: str) -> gr.Error | None:
    """gr.Error in words when a click handler's call carries no click (no event data, or data without the
    index and value every click of the page sends); None for a click."""
    data = getattr(event_data, "_data", None)
    if isinstance(data, dict) and "index" in data and "value" in data:
        return None
    return _refusal(box, Msg("page.no_click"), Msg("page.no_click.hint"), lang)
