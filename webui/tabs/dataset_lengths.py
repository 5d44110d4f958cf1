"""The Dataset tab's length view: the token-length histogram and summary for the chosen model and
maximum length, and one example rendered as the model sees it (trained-on and cut-off text
labelled). Measured by core.data.insight_dataset off the event thread.
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from core import data as D
from core import trust
from core.config import FIELDS, whole
from core.errors import DanluError, InputError
from core.messages import Msg
from webui.i18n import CODES, error_text, recorded_text, said_in_all, say, tr
from webui.numbers import ROWS
from webui.tabs import dataset_pairs
from webui.tabs.hyperparams_tab import problems_markdown


def insight(gui, ds_id: str, base_model: str, max_seq_length, train_on_inputs: bool, chat_template: str, example,
            lang: str):
    """Inputs: dataset id, model, maximum length, train-on-inputs, chat template, example row, language. Outputs:
    histogram, length summary, rendered example. A generator: the first answer comes at once,
    the measurement (which may load the model's tokenizer) follows. The summary is said in every
    language (i18n.Said): a language switch says it again without measuring again."""
    if not ds_id:
        yield (histogram({}, lang), said_in_all(lambda code: tr("ds.none", code), lang),
               *dataset_pairs.view_updates({}, [], lang))
        return
    yield gr.skip(), said_in_all(lambda code: tr("ds.measuring", code), lang), *dataset_pairs.skips()
    try:
        ins = gui.offload(D.insight_dataset, gui.ws, ds_id, origin=trust.BROWSER, model=base_model or None,
                          max_seq_length=length(max_seq_length), train_on_inputs=bool(train_on_inputs),
                          preview=whole(example or None, tr("ds.example", lang), 1, ROWS, default=1) - 1,
                          chat_template=chat_template or "auto")
    except InputError as e:
        refused = said_in_all(lambda code: problems_markdown(e.problems, code, title=e.title), lang)
        yield gr.skip(), refused, *dataset_pairs.skips()
        return
    except DanluError as e:
        yield gr.skip(), said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang), *dataset_pairs.skips()
        return
    yield (histogram(ins.get("histogram") or {}, lang), said_in_all(lambda code: lengths_markdown(ins, code), lang),
           *dataset_pairs.view_updates(ins, rendered(ins, lang), lang))


def length(value) -> int:
    """The maximum length box's value (empty, or 0 as the page reads an empty box: 1024) inside the training
    setting's bounds, or InputError naming the setting: the box sent straight to the HTTP API may hold anything."""
    meta = FIELDS["max_seq_length"].metadata
    return whole(value or None, "max_seq_length", meta["min"], meta["max"], default=1024)


def histogram(h: dict, lang: str) -> dict:
    """The histogram's update: its bars span their bins (x_bin, the bin width), from 0. Plotted at their
    bin starts alone, the bars were hairlines and the axis began below zero (noted in a browser walk).
    The axis titles come with it in words: an update that changes x_bin sent them as Gradio's raw
    translation keys ('__i18n__{...}' beside the axis)."""
    edges = h.get("edges") or []
    width = edges[1] - edges[0] if len(edges) > 1 else None
    return gr.update(value=histogram_frame(h), x_bin=width, **histogram_titles(lang))


def histogram_titles(lang: str) -> dict:
    return dict(x_title=tr("axis.tokens", lang), y_title=tr("axis.rows", lang))


def histogram_frame(h: dict) -> pd.DataFrame:
    edges, counts = h.get("edges") or [], h.get("counts") or []
    rows = [(int(edges[i]), int(c)) for i, c in enumerate(counts)]
    return pd.DataFrame(rows, columns=["tokens", "rows"]).astype({"tokens": "int64", "rows": "int64"})


def lengths_markdown(ins: dict, lang: str) -> str:
    ln = {k: ("—" if v is None else v) for k, v in (ins.get("lengths") or {}).items()}  # no usable row: no lengths
    # min and max in words too: "min 90 … max 90" was left in English on every page (noted in a browser walk)
    parts = [f"{tr('ds.tokens', lang)}: {tr('ds.min', lang)} {ln.get('min', '—')}, {tr('ds.median', lang)} "
             f"{ln.get('median', '—')}, p95 {ln.get('p95', '—')}, {tr('ds.max', lang)} {ln.get('max', '—')}",
             f"{tr('ds.over_max', lang)} ({ins.get('max_seq_length')}): **{ins.get('over_max', 0)}**"]
    if ins.get("no_target"):
        parts.append(f"{tr('ds.no_target', lang)}: **{ins['no_target']}**")
    if not ins.get("exact"):
        parts.append(tr("ds.estimated", lang))
    te = ins.get("template_error")
    text = " · ".join(parts)
    if ins.get("nothing_to_learn"):  # the check above says "usable": at this maximum length training would stop
        text += f"\n\n⚠ {say(Msg('cli.no_target_any', limit=ins.get('max_seq_length')), lang)} — {say(Msg('cli.no_target.hint'), lang)}"
    if te:
        text += f"\n\n⚠ {recorded_text(te, 'message', lang)} — {recorded_text(te, 'hint', lang)}"
    return text


def rendered(ins: dict, lang: str) -> list[tuple[str, str | None]]:
    """The example as the model sees it: (text, label); labelled text is what training learns."""
    trained, cut = tr("ds.trained", lang), tr("ds.truncated", lang)
    out = []
    for seg in (ins.get("preview") or {}).get("segments", []):
        out.append((seg["text"], cut if seg.get("truncated") else trained if seg.get("trained") else None))
    return out


LABELS = ("ds.trained", "ds.truncated")


def relabel(lang: str, *shown):
    """The language switch's answer for the rendered example and a pair's three texts: the segments the
    page shows (Gradio sends each as {"token", "class_or_confidence"}), their labels (learned, cut off)
    in `lang`. Nothing is measured again: a tokenizer may take seconds to load. An empty one: no change."""
    words = {tr(k, code): tr(k, lang) for k in LABELS for code in CODES}
    out = []
    for segs in shown:
        try:
            out.append([(s["token"], words.get(s["class_or_confidence"], s["class_or_confidence"])) for s in segs]
                       if segs else gr.skip())
        except (TypeError, KeyError):  # anything may arrive from the page: not a shown example, left as it is
            out.append(gr.skip())
    return tuple(out)
