"""The Dataset tab's parts for preference pairs (format `preference`): one pair side by side (the
prompt, then the chosen and the rejected answer in two columns, the learned answers highlighted as
core.data.render.pair_segments marks them) and the cleaning that only pairs have (dedupe by prompt,
drop identical pairs, swap the answers of one row). Shown only while the dataset is read as pairs.
Every action is a core.data call (apply_op); this file lays out and formats.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr

from core import data as D
from core import trust
from core.config import whole
from core.errors import DanluError, InputError
from webui import numbers
from webui.i18n import L, error_text, keep_said, recorded_text, said_in_all, tr
from webui.numbers import ROWS

# cleaning buttons for pairs: (i18n key, core operation)
PAIR_OPS = [("ds.op.dedupe_prompt", "dedupe-prompt"), ("ds.op.drop_identical", "drop-identical")]


# Visibility is set on the components themselves, never on their row or column: an event that
# touches a layout block makes the page copy everything inside it on every later event
# (tests/webui/test_build_ui.py).
@dataclass(frozen=True)
class PairView:              # hidden unless the preview is a pair
    prompt: gr.HighlightedText
    chosen: gr.HighlightedText
    rejected: gr.HighlightedText


@dataclass(frozen=True)
class PairCleaning:          # hidden unless the dataset is read as pairs
    buttons: dict             # core operation -> button
    swap_row: gr.Number
    swap: gr.Button


def build_view(colors: dict) -> PairView:
    common = dict(combine_adjacent=False, show_legend=False, color_map=colors, visible=False)
    prompt = gr.HighlightedText(label=L("ds.pair_prompt"), elem_id="ds-pair-prompt", **common)
    with gr.Row(equal_height=False, elem_id="ds-pair"):
        chosen = gr.HighlightedText(label=L("ds.pair_chosen"), elem_id="ds-pair-chosen", **common)
        rejected = gr.HighlightedText(label=L("ds.pair_rejected"), elem_id="ds-pair-rejected", **common)
    return PairView(prompt, chosen, rejected)


def build_cleaning() -> PairCleaning:
    with gr.Row(elem_id="ds-pair-clean"):
        buttons = {op: gr.Button(L(key), size="sm", elem_id=f"ds-op-{op}", visible=False) for key, op in PAIR_OPS}
        swap_row = numbers.Number(None, precision=0, label=L("ds.swap_row"), elem_id="ds-swap-row", min_width=120, scale=0,
                                  visible=False)
        swap = gr.Button(L("ds.op.swap"), size="sm", elem_id="ds-op-swap", visible=False)
    return PairCleaning(buttons, swap_row, swap)


def _marked(segs: list, lang: str) -> list[tuple[str, str | None]]:
    trained, cut = tr("ds.trained", lang), tr("ds.truncated", lang)
    return [(s["text"], cut if s.get("truncated") else trained if s.get("trained") else None) for s in segs]


def view_updates(ins: dict, single: list, lang: str) -> tuple:
    """Outputs for (the single rendered example, prompt, chosen, rejected, then the pair cleaning's
    buttons, row number and swap button) from an insight answer: for a pair the side-by-side view
    replaces the single example (`single`, its highlighted text)."""
    pair = (ins.get("preview") or {}).get("pair")
    cleaning = [gr.update(visible=ins.get("format") == "preference")] * (len(PAIR_OPS) + 2)
    if not pair:
        return (gr.update(value=single, visible=True), *[gr.update(value=[], visible=False)] * 3, *cleaning)
    return (gr.update(value=[], visible=False), *(gr.update(value=_marked(pair[k], lang), visible=True)
                                                  for k in ("prompt", "chosen", "rejected")), *cleaning)


def outputs(t) -> list:
    """The components view_updates fills after the single example (the Dataset tab's insight event)."""
    pc = t.pair_cleaning
    return [t.pair_view.prompt, t.pair_view.chosen, t.pair_view.rejected, *pc.buttons.values(), pc.swap_row, pc.swap]


def wire(t, gui, then_show, lang) -> None:
    """The pair cleaning buttons; `then_show` re-checks and re-measures after each (dataset_tab.wire). The
    message's words in every language go to the tab's `said` box, for a language switch."""
    pc = t.pair_cleaning
    for op, button in pc.buttons.items():
        then_show(button.click(keep_said(partial(clean_pairs, gui, op), 0), inputs=[t.ds_id, lang],
                               outputs=[t.clean_message, t.said], api_name=f"clean_{op.replace('-', '_')}"))
    then_show(pc.swap.click(keep_said(partial(swap, gui), 0), inputs=[t.ds_id, pc.swap_row, lang],
                            outputs=[t.clean_message, t.said], api_name="clean_swap"))


def clean_pairs(gui, op: str, ds_id: str, lang: str) -> str:
    """Inputs: dataset id, language. Outputs: what dedupe-prompt / drop-identical changed, in words."""
    from webui.tabs.dataset_tab import clean_now
    return clean_now(gui, op, ds_id, "", 1024, "auto", lang)


def swap(gui, ds_id: str, row, lang: str) -> str:
    """Inputs: dataset id, the row number to swap, language. Outputs: what changed, in words (in every
    language: i18n.Said)."""
    if not ds_id:
        return said_in_all(lambda code: tr("ds.none", code), lang)
    if row is None or (isinstance(row, str) and not row.strip()):
        return said_in_all(lambda code: "⚠ " + tr("ds.swap_which", code), lang)
    try:
        res = D.apply_op(gui.ws, ds_id, "swap", origin=trust.BROWSER, row=whole(row, tr("ds.swap_row", lang), 1, ROWS))
    except InputError as e:
        from webui.tabs.dataset_tab import refusal
        return said_in_all(lambda code: refusal(e, code), lang)
    except DanluError as e:
        return said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang)
    return said_in_all(lambda code: ("✓ " if res["changed"] else "") + recorded_text(res, "summary", code), lang)


def skips() -> list:
    """No change to the single example and to everything outputs() lists (an early or failed answer)."""
    return [gr.skip()] * (1 + 3 + len(PAIR_OPS) + 2)
