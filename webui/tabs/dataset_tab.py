"""Dataset tab: upload (drag and drop), detected format and row count, the problems table, cleaning
with undo, an editable preview grid (webui/tabs/dataset_grid.py), the token-length histogram, the rendered
example with the trained-on tokens highlighted (webui/tabs/dataset_lengths.py), and the cleaned file to
download.

Every action calls the data studio (core.data: import_file, check_dataset, apply_op, undo,
dataset_rows, insight_dataset, export_path); this file only lays out and formats. The selected
dataset is an id in a hidden textbox; its current version is what the `dataset` setting points at.
"""
from __future__ import annotations

import html
import shutil
from functools import partial
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from core import data as D
from core import trust
from core.errors import DanluError, InputError
from core.messages import Msg, english as english_of
from webui import fields, numbers
from webui.i18n import CODES, L, error_text, keep_said, recorded_text, said_again, said_in_all, say, tr
from webui.tabs import dataset_pairs
from webui.tabs.dataset_grid import PAGE, grid, save_edits
from webui.tabs.dataset_lengths import histogram_frame, histogram_titles, insight, relabel
from webui.serving import downloads_dir
from webui.tabs.hyperparams_tab import problems_markdown

PROBLEM_COLUMNS = ("line", "field", "message", "fix")
# cleaning buttons: (i18n key, core operation, needs the model's tokenizer)
CLEAN_OPS = [("ds.op.dedupe", "dedupe", False), ("ds.op.drop_empty", "drop-empty", False),
             ("ds.op.drop_invalid", "drop-invalid", False), ("ds.op.trim", "trim", False),
             ("ds.op.merge_turns", "merge-turns", False), ("ds.op.filter_long", "filter-long", True),
             ("ds.op.truncate_long", "truncate-long", True)]
TOKENIZER_OPS = {op for _, op, tokenizer in CLEAN_OPS if tokenizer}


@dataclass(frozen=True)
class DatasetTab:
    widgets: dict[str, gr.components.Component]   # TrainConfig fields shown here: dataset, dataset_format, column_map
    ds_id: gr.Textbox                              # the selected dataset's id (hidden)
    upload: gr.File
    picker: gr.Dropdown
    check: gr.Button
    summary: gr.Markdown
    summary_said: gr.Textbox                       # a refusal the summary shows, in every language (JSON, hidden)
    problems: gr.Dataframe
    counts: gr.Markdown
    clean: dict[str, gr.Button]                    # core operation -> button
    undo: gr.Button
    clean_message: gr.Markdown
    said: gr.Textbox                               # the cleaning message in every language (JSON, hidden)
    grid: gr.Dataframe
    grid_start: gr.Number
    save_edits: gr.Button
    histogram: gr.BarPlot
    lengths: gr.Markdown
    lengths_said: gr.Textbox                       # the length summary in every language (JSON, hidden)
    example: gr.Number
    rendered: gr.HighlightedText
    download: gr.Button
    download_file: gr.File
    pair_view: dataset_pairs.PairView             # a preference pair side by side (dataset_pairs.py)
    pair_cleaning: dataset_pairs.PairCleaning


# ---- choosing a dataset ------------------------------------------------------------------------
def dataset_choices(gui, lang: str) -> list[tuple[str, str]]:
    """(label in `lang`, id) per dataset: the id is the value, so a language switch changes labels only."""
    return [(f"{d['display_name']} · {version_text(d, lang)} · {d['id']}", d["id"]) for d in D.list_datasets(gui.ws)]


def version_text(info: dict, lang: str) -> str:
    """'original', or 'cleaned 2x' after two cleaning steps (core counts them in `version`)."""
    n = info.get("version", 0)
    return tr("ds.original", lang) if not n else f"{tr('ds.cleaned', lang)} ×{n}"


def import_upload(gui, path, lang: str):
    """Inputs: the dropped file, language. Outputs: dataset id, the picker. A file not named as a data file
    is refused (core.data.check_upload_name: the upload takes any file). The bytes are copied into the
    workspace first (the original is never changed); the same file twice is the same dataset."""
    if not path:
        return gr.skip(), gr.skip()
    info = D.import_file(gui.ws, path, display_name=_name(path), origin=trust.BROWSER, upload=True)
    return info["id"], gr.update(choices=dataset_choices(gui, lang), value=info["id"])


def _name(path) -> str:
    from pathlib import Path
    return Path(str(path)).name


def import_current(gui, ds_id: str, dataset: str):
    """Inputs: selected id, the `dataset` setting. Outputs: the id to check. When nothing was uploaded
    (e.g. a template's sample file), that file is imported so it can be checked and cleaned too."""
    if ds_id or not dataset:
        return ds_id
    return D.import_file(gui.ws, dataset, display_name=_name(dataset), origin=trust.BROWSER)["id"]


def upload_and_check(gui, path, fmt: str, column_map: str, lang: str):
    """Inputs: the dropped file, format settings, language. Outputs: id, picker, summary, problems table,
    counts, `dataset` setting, format setting, cleaning message (emptied: it spoke of the dataset
    before): the upload and its check in one answer. A refused file leaves the dataset before it
    selected; the summary says why, in every language (i18n.Said: a language switch says it again).

    The format set before the upload usually comes from a template (its sample data). When that
    format leaves none of the new file's rows usable but detection reads them, the file's own
    format wins and the format box says "auto" (e.g. question/answer columns after the demo
    template chose `messages`)."""
    if not path:
        return (gr.skip(),) * 8
    try:
        ds_id, picker = import_upload(gui, path, lang)
    except InputError as e:  # not named or made as a data file, too big, or a path from outside (a direct API call)
        refused = said_in_all(lambda code: refusal(e, code), lang)
        return (gr.skip(), gr.skip(), refused, _problem_frame([], lang), "", gr.skip(), gr.skip(), "")
    shown = check(gui, ds_id, fmt, column_map, lang)
    if (fmt or "auto") != "auto" and not column_map and _usable(gui, ds_id) == 0:
        detected = check(gui, ds_id, "auto", "", lang)
        if _usable(gui, ds_id) > 0:
            return (ds_id, picker, *detected, "auto", "")
        shown = check(gui, ds_id, fmt, column_map, lang)  # neither reads it: show the chosen format's problems
    return (ds_id, picker, *shown, gr.skip(), "")


def _usable(gui, ds_id: str) -> int:
    """Usable rows under the format last set by check() (its report is cached, so this reads a file)."""
    try:
        return int(D.check_dataset(gui.ws, ds_id).get("usable_rows") or 0)
    except DanluError:
        return 0


def check_current(gui, ds_id: str, dataset: str, fmt: str, column_map: str, lang: str):
    """Inputs: selected id, `dataset` setting, format settings, language. Outputs: id, summary, problems
    table, counts, `dataset` setting (see import_current). A file that cannot be imported is said in
    every language (i18n.Said), as a refused upload."""
    try:
        ds_id = import_current(gui, ds_id, dataset)
    except DanluError as e:  # an InputError (a refusal) names each problem and its fix
        said = said_in_all(lambda code: refusal(e, code) if isinstance(e, InputError) else f"⚠ {error_text(e, code)}", lang)
        return gr.skip(), said, _problem_frame([], lang), "", gr.skip()
    return (ds_id, *check(gui, ds_id, fmt, column_map, lang))


def check_chosen(gui, dataset: str, fmt: str, column_map: str, lang: str):
    """After a template (it empties the selected id and names its sample file in the `dataset` setting):
    that file imported and checked at once, as Check does, so the tab stops describing the dataset chosen
    before. Outputs: check_current's, then the cleaning message (emptied: it spoke of that dataset)."""
    return (*check_current(gui, "", dataset, fmt, column_map, lang), "")


def check_again(gui, ds_id: str, fmt: str, column_map: str, refused: str, shown, lang: str):
    """The language switch's answer for check()'s outputs: what the summary said (`refused`, kept in every
    language: a refusal, or that there is nothing to check) said again, with no problems; else the
    selected dataset checked again. The refusal wins: the dataset still selected is the one before the
    refused file, not what the page shows. With nothing selected (none yet, or a template emptied it and
    its sample file's check has not answered yet: check_chosen) and nothing said, the summary stays as it
    is and the problems table (`shown`) only changes its headers: checking nothing would say "upload a
    file first" where the page said nothing."""
    said = said_again(lang, refused)
    if said is not None:
        return said, _problem_frame([], lang), gr.skip(), gr.skip()
    if not ds_id:
        return gr.skip(), relabel_problems(shown, lang), gr.skip(), gr.skip()
    return check(gui, ds_id, fmt, column_map, lang)


def relabel_problems(shown, lang: str):
    """The problems table the page shows, its rows as they are and its headers in `lang`; anything else
    that arrives (the page may send anything) is an empty table."""
    if isinstance(shown, pd.DataFrame) and len(shown.columns) == len(PROBLEM_COLUMNS):
        return _problem_frame(shown.values.tolist(), lang)
    return _problem_frame([], lang)


# ---- checking ----------------------------------------------------------------------------------
def check(gui, ds_id: str, fmt: str, column_map: str, lang: str):
    """Inputs: dataset id, format and column map settings, language. Outputs: summary, problems table,
    problem counts, the `dataset` setting (the current version's training file)."""
    if not ds_id:  # in every language (i18n.Said): a language switch says it again (check_again)
        return said_in_all(lambda code: tr("ds.none", code), lang), _problem_frame([], lang), "", gr.skip()
    mapping, p = fields._parse_mapping(column_map)
    try:
        if p:
            raise InputError(problems=[p])
        D.set_format(gui.ws, ds_id, fmt or "auto", mapping or None)
        report = D.check_dataset(gui.ws, ds_id)
    except DanluError as e:
        return f"⚠ {error_text(e, lang)}", _problem_frame([], lang), "", gr.skip()
    info = D.get_dataset(gui.ws, ds_id)
    return (summary_markdown(report, info, lang), problem_frame(report, lang), counts_markdown(report, lang),
            str(D.training_path(gui.ws, ds_id)))  # the current version less the rows a review marked Drop


def summary_markdown(report: dict, info: dict, lang: str) -> str:
    icon = "✓" if report.get("ok") else "⚠"
    parts = [f"{icon} **{info['display_name']}**", f"{tr('ds.format', lang)}: `{report.get('format')}`",
             f"{tr('ds.rows', lang)}: **{report.get('rows', 0)}**", f"{tr('ds.usable', lang)}: {report.get('usable_rows', 0)}",
             version_text(info, lang)]
    if report.get("pairs"):  # preference: usable pairs and how many distinct prompts they answer
        parts.insert(4, tr("ds.pairs", lang, pairs=report["pairs"]["pairs"], prompts=report["pairs"]["prompts"]))
    warned = sum(c["count"] for c in (report.get("counts") or {}).values() if c.get("warning"))  # listed below too
    parts += [f"{tr(k, lang)}: **{n}**" for k, n in (("ds.problem_count", report.get("problem_count")), ("ds.warning_count", warned)) if n]
    return " · ".join(parts)


def problem_frame(report: dict, lang: str) -> pd.DataFrame:
    """The report's problems, then its warnings: line, field, what is wrong and the fix, in `lang`."""
    rows = [[p.get("line") or p.get("record") or "", p.get("field") or "", recorded_text(p, "message", lang),
             recorded_text(p, "hint", lang)] for p in report.get("problems", [])]
    rows += [[w.get("line") or "", w.get("field") or "", f"({tr('ds.warning', lang)}) {recorded_text(w, 'message', lang)}",
              recorded_text(w, "hint", lang)] for w in report.get("warnings", [])]
    return _problem_frame(rows, lang)


def kind_title(code: str, english: str, lang: str) -> str:
    """A kind of dataset problem ("malformed JSON") in `lang`; a kind core does not know keeps its title."""
    return say(Msg("kind." + code), lang) if english_of("kind." + code) else english


def _problem_frame(rows: list, lang: str) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[tr("ds.col." + c, lang) for c in PROBLEM_COLUMNS]).astype(str)


def counts_markdown(report: dict, lang: str) -> str:
    counts = report.get("counts") or {}
    if not counts:
        return ""
    items = [f"{c['count']} × {kind_title(code, c['title'], lang)}" + (f" ({tr('ds.warning', lang)})" if c.get("warning") else "")
             for code, c in counts.items()]
    note = f" — {tr('ds.first_20', lang)}" if any(c["count"] > 20 for c in counts.values()) else ""
    return "**" + tr("ds.by_type", lang) + ":** " + "; ".join(items) + note


# ---- cleaning ----------------------------------------------------------------------------------
def clean(gui, op: str, ds_id: str, base_model: str, max_seq_length, chat_template: str, lang: str):
    """Inputs: operation, dataset id, model, maximum length and chat template (for the length operations),
    language. Outputs (a generator: "working" at once, a tokenizer load takes a while): what the
    operation changed, in words (core's summary; in every language, i18n.Said). The length operations
    load a tokenizer (seconds of CPU and interpreter lock): they run in the helper process (clean_now
    runs the others)."""
    if not ds_id:
        yield said_in_all(lambda code: tr("ds.none", code), lang)
        return
    yield said_in_all(lambda code: tr("ds.working", code), lang)
    yield _clean(gui.offload, gui, op, ds_id, base_model, max_seq_length, chat_template, lang)


def clean_now(gui, op: str, ds_id: str, base_model: str, max_seq_length, chat_template: str, lang: str) -> str:
    """clean() for the operations that need no tokenizer: milliseconds, one answer."""
    if not ds_id:
        return said_in_all(lambda code: tr("ds.none", code), lang)
    return _clean(lambda fn, *a, **k: fn(*a, **k), gui, op, ds_id, base_model, max_seq_length, chat_template, lang)


def refusal(e: InputError, lang: str) -> str:
    """An InputError as the page shows it: each problem with its place and fix, in the page's language."""
    return problems_markdown(e.problems, lang, title=e.title)


def _clean(run, gui, op: str, ds_id: str, base_model: str, max_seq_length, chat_template: str, lang: str) -> str:
    try:
        res = run(D.apply_op, gui.ws, ds_id, op, origin=trust.BROWSER, model=base_model or None,
                  max_seq_length=max_seq_length or 1024, chat_template=chat_template or "auto")  # the length operations check it
    except InputError as e:
        return said_in_all(lambda code: refusal(e, code), lang)
    except DanluError as e:
        return said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang)
    return said_in_all(lambda code: ("✓ " if res["changed"] else "") + recorded_text(res, "summary", code), lang)


def undo(gui, ds_id: str, lang: str) -> str:
    """Inputs: dataset id, language. Outputs: what was undone (in every language: i18n.Said)."""
    if not ds_id:
        return said_in_all(lambda code: tr("ds.none", code), lang)
    try:
        res = D.undo(gui.ws, ds_id)
    except DanluError as e:
        return said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang)
    return said_in_all(lambda code: "↶ " + recorded_text(res, "summary", code), lang)


def download(gui, ds_id: str, lang: str | None = None):
    """Inputs: dataset id, language. Outputs: the current (cleaned) version as a file to download; an id
    that names no dataset (sent to the API) is said in the page's error box, in its language."""
    if not ds_id:
        return None
    try:
        src, info = D.export_path(gui.ws, ds_id), D.get_dataset(gui.ws, ds_id)
    except DanluError as e:
        raise gr.Error(html.escape(error_text(e, lang), quote=False), print_exception=False) from None
    dest = downloads_dir(gui.ws) / f"{info['display_name'].rsplit('.', 1)[0]}-v{info.get('version', 0)}{src.suffix}"
    shutil.copyfile(src, dest)
    return str(dest)


# ---- layout ------------------------------------------------------------------------------------
def build(gui) -> DatasetTab:
    gr.Markdown("## " + L("ds.title"))
    gr.Markdown(L("ds.intro"), elem_classes=["muted"])
    with gr.Row():
        # any file: import_upload refuses what the upload does not take in the page's language (Gradio's own
        # refusal of a file type was a notice in English on every page)
        upload = gr.File(label=L("ds.upload"), elem_id="ds-upload", scale=3, height=150)
        with gr.Column(scale=2):
            picker = gr.Dropdown(choices=dataset_choices(gui, "en"), value=None, label=L("ds.picker"), elem_id="ds-picker")
            widgets = {"dataset_format": fields.widget_for("dataset_format")}
    widgets["column_map"] = fields.widget_for("column_map")
    widgets["dataset"] = fields.widget_for("dataset")
    ds_id = gr.Textbox("", visible=False, label="dataset id", elem_id="ds-id")
    check_btn = gr.Button(L("ds.check"), variant="primary", elem_id="ds-check")
    summary = gr.Markdown(elem_id="ds-summary")
    summary_said = gr.Textbox("", visible=False, label="summary said", elem_id="ds-summary-said")
    # fixed widths: left to the content, the long message pushed the field to one letter per line and
    # the fix out of sight
    problems = gr.Dataframe(value=_problem_frame([], "en"), label=L("ds.problems"), interactive=False, wrap=True,
                            column_widths=["7%", "15%", "43%", "35%"], elem_id="ds-problems", max_height=360)
    counts = gr.Markdown(elem_id="ds-counts")
    gr.Markdown("### " + L("ds.clean_title"))
    with gr.Row(elem_id="ds-clean"):
        clean_btns = {op: gr.Button(L(key), size="sm", elem_id=f"ds-op-{op}") for key, op, _ in CLEAN_OPS}
        undo_btn = gr.Button(L("ds.undo"), size="sm", elem_id="ds-undo")
    pair_cleaning = dataset_pairs.build_cleaning()
    clean_message = gr.Markdown(elem_id="ds-clean-message")
    said = gr.Textbox("", visible=False, label="said", elem_id="ds-said")
    with gr.Accordion(L("ds.grid_title"), open=False, elem_id="ds-grid-box"):
        grid_start = numbers.Number(1, precision=0, label=L("ds.grid_start"), elem_id="ds-grid-start")
        grid_df = gr.Dataframe(label=L("ds.grid"), interactive=True, wrap=True, elem_id="ds-grid", max_height=420,
                               static_columns=[0, 1], column_widths=["10%", "8%", "82%"])  # "행 번호" on one line
        save_btn = gr.Button(L("ds.save_edits"), size="sm", elem_id="ds-save-edits")
    gr.Markdown("### " + L("ds.lengths_title"))
    with gr.Row(equal_height=True):
        histogram = gr.BarPlot(histogram_frame({}), x="tokens", y="rows", label=L("ds.histogram"), height=300,
                               x_title=L("axis.tokens"), y_title=L("axis.rows"),
                               elem_id="ds-histogram", scale=3)
        with gr.Column(scale=2):
            lengths = gr.Markdown(elem_id="ds-lengths")
            lengths_said = gr.Textbox("", visible=False, label="lengths said", elem_id="ds-lengths-said")
            example = numbers.Number(1, precision=0, label=L("ds.example"), elem_id="ds-example")
    colors = {tr(k, lang): c for k, c in (("ds.trained", "#16a34a"), ("ds.truncated", "#dc2626")) for lang in CODES}
    rendered_box = gr.HighlightedText(label=L("ds.rendered"), combine_adjacent=False, show_legend=False, color_map=colors,
                                      elem_id="ds-rendered")
    pair_view = dataset_pairs.build_view(colors)
    with gr.Row():
        download_btn = gr.Button(L("ds.download"), size="sm", elem_id="ds-download", scale=0, min_width=220)
        # always there (one line while empty): a File first shown by a click is drawn from scratch then
        download_file = gr.File(label=L("ds.download_file"), interactive=False, elem_id="ds-download-file")
    return DatasetTab(widgets=widgets, ds_id=ds_id, upload=upload, picker=picker, check=check_btn, summary=summary,
                      summary_said=summary_said, problems=problems, counts=counts, clean=clean_btns, undo=undo_btn, clean_message=clean_message, said=said,
                      grid=grid_df, grid_start=grid_start, save_edits=save_btn, histogram=histogram, lengths=lengths,
                      lengths_said=lengths_said,
                      example=example, rendered=rendered_box, download=download_btn, download_file=download_file,
                      pair_view=pair_view, pair_cleaning=pair_cleaning)


def pick(ds_id: str | None) -> tuple[str, str]:
    """Inputs: the dataset chosen in the picker. Outputs: the selected id, the cleaning message emptied
    (it spoke of the dataset before)."""
    return ds_id or "", ""


def refresh_picker(gui, ds_id: str, lang: str):
    """Outputs: the picker with every dataset (versions change when cleaning)."""
    return gr.update(choices=dataset_choices(gui, lang), value=ds_id or None)


def relabel_picker(gui, lang: str):
    """The language switch's answer for the picker: its labels in `lang`, its value left as it is (the
    dataset it shows may not be the selected id: a template empties that)."""
    return gr.update(choices=dataset_choices(gui, lang))


def rows_and_picker(gui, ds_id: str, start, lang: str):
    """Inputs: dataset id, first grid row, language. Outputs: the grid's page of rows, the picker, the
    download box emptied (the file it offered was another dataset's, or this one's before a change)."""
    return grid(gui, ds_id, start, lang), refresh_picker(gui, ds_id, lang), None


def check_rows_and_picker(gui, ds_id: str, fmt: str, column_map: str, start, lang: str):
    """Inputs: dataset id, format settings, first grid row, language. Outputs: the check (summary,
    problems, counts, `dataset` setting), the grid's rows, the picker, the download box emptied."""
    return (*check(gui, ds_id, fmt, column_map, lang), *rows_and_picker(gui, ds_id, start, lang))


def wire(t: DatasetTab, gui, lang, base_model, max_seq_length, train_on_inputs, chat_template) -> None:
    """This tab's own events; the model and length settings come from the other tabs (webui/app.py).
    Returns then_show, for another tab's event that changes the dataset (a template: webui/app.py)."""
    shown = [t.summary, t.problems, t.counts, t.widgets["dataset"]]
    # every answer to the summary also answers summary_said: a refusal's words in every language, or
    # none (a check of the selected dataset, which a language switch checks again)
    checked_now = keep_said(partial(check_rows_and_picker, gui), 0)
    settings = [t.widgets["dataset_format"], t.widgets["column_map"], lang]
    grid_io = dict(inputs=[t.ds_id, t.grid_start, lang], outputs=[t.grid], api_visibility="private")
    # a big file's check or a real model's tokenizer takes a while: the progress shows on one small box
    measured = keep_said(partial(insight, gui), 1)  # the length summary: said again after a language switch
    insight_io = dict(inputs=[t.ds_id, base_model, max_seq_length, train_on_inputs, chat_template, t.example, lang],
                      outputs=[t.histogram, t.lengths, t.rendered, *dataset_pairs.outputs(t), t.lengths_said],
                      api_visibility="private", show_progress_on=[t.lengths])

    def then_show(event, checked: bool = False):
        """After anything that changes the dataset: its check (unless done), rows and the picker in one
        answer, then the lengths (a tokenizer may load). Few events: each costs the page a pass over
        what every event has touched (webui/serving.py)."""
        if checked:
            ev = event.then(partial(rows_and_picker, gui), inputs=[t.ds_id, t.grid_start, lang],
                            outputs=[t.grid, t.picker, t.download_file], api_visibility="private")
        else:
            ev = event.then(checked_now, inputs=[t.ds_id] + settings[:2] + [t.grid_start, lang],
                            outputs=shown + [t.grid, t.picker, t.download_file, t.summary_said], api_visibility="private",
                            show_progress_on=[t.summary])
        ev.then(measured, **insight_io)

    # the cleaning message's events also answer its words in every language (or none) to `said`
    uploaded = keep_said(keep_said(partial(upload_and_check, gui), 7), 2)  # the cleaning message, then the summary
    dropped = t.upload.upload(uploaded, inputs=[t.upload] + settings, outputs=[t.ds_id, t.picker] + shown + [
        t.widgets["dataset_format"], t.clean_message, t.said, t.summary_said], show_progress_on=[t.summary],
        api_name="upload_dataset")
    then_show(dropped, checked=True)
    dropped.then(lambda: None, outputs=[t.upload], api_visibility="private")  # emptied: it kept the last file
    then_show(t.picker.input(keep_said(pick, 1), inputs=[t.picker], outputs=[t.ds_id, t.clean_message, t.said],
                             api_visibility="private"))
    then_show(t.check.click(keep_said(partial(check_current, gui), 1), inputs=[t.ds_id, t.widgets["dataset"]] + settings,
                            outputs=[t.ds_id] + shown + [t.summary_said], show_progress_on=[t.summary],
                            api_name="check_dataset"), checked=True)
    dataset_pairs.wire(t, gui, then_show, lang)
    for op, button in t.clean.items():
        slow = op in TOKENIZER_OPS
        then_show(button.click(keep_said(partial(clean if slow else clean_now, gui, op), 0),
                               inputs=[t.ds_id, base_model, max_seq_length, chat_template, lang],
                               outputs=[t.clean_message, t.said], show_progress_on=[t.clean_message] if slow else [],
                               api_name=f"clean_{op.replace('-', '_')}"))
    then_show(t.undo.click(keep_said(partial(undo, gui), 0), inputs=[t.ds_id, lang], outputs=[t.clean_message, t.said],
                           api_name="undo_clean"))
    then_show(t.save_edits.click(keep_said(partial(save_edits, gui), 0), inputs=[t.ds_id, t.grid_start, t.grid, lang],
                                 outputs=[t.clean_message, t.said], api_name="save_dataset_edits"))
    t.grid_start.submit(partial(grid, gui), **grid_io)
    t.example.submit(measured, **insight_io)
    # the example's labels and the histogram's axis titles follow a switch in own events (input budget: webui/app.py)
    shown_texts = [t.rendered, t.pair_view.prompt, t.pair_view.chosen, t.pair_view.rejected]
    lang.change(relabel, inputs=[lang, *shown_texts], outputs=shown_texts, api_visibility="private")
    lang.change(lambda code: gr.update(**histogram_titles(code)), inputs=lang, outputs=t.histogram, api_visibility="private")
    t.download.click(partial(download, gui), inputs=[t.ds_id, lang], outputs=[t.download_file],
                     api_name="download_dataset")
    return then_show
