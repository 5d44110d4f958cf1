"""Review tab: a desk for domain experts to read thousands of rows as conversations, find the ones
that matter (search, filters, order, counts), judge them (Keep / Drop / Needs fix with a note, one
by one from the keyboard or all filtered rows at once), edit a turn in place, find and replace
sensitive data, see what changed between versions, and split the work over a CSV of marks.

Layout and wiring only; handlers are in review_handlers.py, drawing in review_render.py, and the
work in core.data.review* (the same functions as `python app.py review`). The dataset is the one
chosen in the Dataset tab (its hidden id box).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr

from core.data import pii
from webui import numbers
from webui.i18n import L, keep_said, tr
from webui.tabs import review_handlers as H
from webui.tabs.review_render import CSS, hits_frame

# The reviewer's keys, in the page: only while the Review tab is shown and no text box has the focus.
KEYS_JS = """(...args) => {
  if (!window.danluReviewKeys) {
    window.danluReviewKeys = true;
    document.addEventListener('keydown', (e) => {
      const chat = document.querySelector('#rv-chat');
      if (!chat || chat.offsetParent === null || e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target;
      if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) {
        if (e.key === 'Escape') t.blur();
        return;
      }
      const press = (sel) => { const b = document.querySelector(sel); if (b) { e.preventDefault(); b.click(); } };
      const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
      if (key === 'ArrowRight' || key === 'n') press('#rv-next');
      else if (key === 'ArrowLeft' || key === 'p') press('#rv-prev');
      else if (key === 'k') press('#rv-keep');
      else if (key === 'd') press('#rv-drop');
      else if (key === 'f') press('#rv-fix');
      else if (key === 'e') { const a = document.querySelector('#rv-edit-text textarea'); if (a) { e.preventDefault(); a.focus(); } }
    });
  }
  return args.length === 1 ? args[0] : args;
}"""


@dataclass(frozen=True)
class ReviewTab:
    filters: list            # search, regex, problem, mark, language, duplicates, min tokens, max tokens, order
    counts: gr.Markdown
    position: gr.Markdown
    chat: gr.HTML
    note: gr.Textbox
    turn: gr.Dropdown
    edit_text: gr.Textbox
    row: gr.Textbox          # the record number shown (hidden)
    query: gr.Textbox        # the filters of the view shown, as JSON (hidden; what actions read)
    buttons: dict            # prev, next, keep, drop, fix, bulk, save_edit, undo, scan, redact_*, compare, export
    bulk_mark: gr.Dropdown
    message: gr.Markdown
    said: gr.Textbox         # the message in every language, as JSON (hidden): a language switch says it again
    diff_a: gr.Dropdown
    diff_b: gr.Dropdown
    diff: gr.HTML
    compared: gr.Textbox     # what the comparison shows (dataset, versions) as JSON (hidden): a language switch draws it again
    kinds: gr.CheckboxGroup
    names: gr.Textbox
    scan_summary: gr.Markdown
    hits: gr.Dataframe
    hit_ids: gr.Textbox      # one finding id per table row (hidden)
    hit: gr.Textbox          # the finding clicked (hidden)
    export_file: gr.File
    import_file: gr.UploadButton
    prefer_theirs: gr.Checkbox


def _filters_ui() -> list:
    with gr.Row(equal_height=True):
        search = gr.Textbox(label=L("rv.search"), elem_id="rv-search", scale=4, submit_btn=True)
        regex = gr.Checkbox(label=L("rv.regex"), elem_id="rv-regex", scale=1, min_width=160)
        sort = gr.Dropdown([(tr(f"rv.sort.{s}", "en"), s) for s in H.SORTS], value="position", label=L("rv.sort"),
                           elem_id="rv-sort", scale=1, min_width=160)
    with gr.Row(equal_height=True):
        problem = gr.Dropdown([(tr("rv.all", "en"), H.ALL)], value=H.ALL, label=L("rv.problem"), elem_id="rv-problem", min_width=150)
        marks = [(tr("rv.all", "en"), H.ALL)] + [(tr(f"rv.mark.{m}", "en"), m) for m in ("unreviewed", "reviewed", "keep", "drop", "fix")]
        mark = gr.Dropdown(marks, value=H.ALL, label=L("rv.mark_filter"), elem_id="rv-mark-filter", min_width=150)
        lang = gr.Dropdown([(tr("rv.all", "en"), H.ALL)], value=H.ALL, label=L("rv.lang"), elem_id="rv-lang", min_width=150)
        dup = gr.Dropdown([(tr("rv.all", "en"), H.ALL)], value=H.ALL, label=L("rv.dup"), elem_id="rv-dup", min_width=150)
        mn = numbers.Number(None, precision=0, minimum=0, label=L("rv.min_tokens"), elem_id="rv-min-tokens", min_width=110)
        mx = numbers.Number(None, precision=0, minimum=0, label=L("rv.max_tokens"), elem_id="rv-max-tokens", min_width=110)
    return [search, regex, problem, mark, lang, dup, mn, mx, sort]


def _pii_ui(b: dict):
    """The personal-data box: kinds, names, scan, findings and the redact buttons (added to b)."""
    with gr.Accordion(L("rv.pii_title"), open=True, elem_id="rv-pii-box"):
        kinds = gr.CheckboxGroup([(tr(f"rv.kind.{k}", "en"), k) for k in pii.KINDS], value=list(pii.KINDS),
                                 label=L("rv.kinds"), elem_id="rv-kinds")
        names = gr.Textbox(label=L("rv.names"), elem_id="rv-names")
        b["scan"] = gr.Button(L("rv.scan"), size="sm", variant="primary", elem_id="rv-scan")
        scan_summary = gr.Markdown(elem_id="rv-scan-summary")
        hits = gr.Dataframe(hits_frame(None, "en"), label=L("rv.hits"), interactive=False, wrap=True, max_height=260,
                            column_widths=["12%", "26%", "34%", "28%"], elem_id="rv-hits")
        with gr.Row():
            b["redact_one"] = gr.Button(L("rv.redact_one"), size="sm", elem_id="rv-redact-one")
            b["redact_kinds"] = gr.Button(L("rv.redact_kinds"), size="sm", elem_id="rv-redact-kinds")
            b["redact_all"] = gr.Button(L("rv.redact_all"), size="sm", variant="stop", elem_id="rv-redact-all")
    return kinds, names, scan_summary, hits


def build(gui) -> ReviewTab:
    gr.HTML(f"<style>{CSS}</style>", padding=False)
    gr.Markdown("## " + L("rv.title"))
    gr.Markdown(L("rv.intro"), elem_classes=["muted"])
    flt = _filters_ui()
    counts = gr.Markdown(elem_id="rv-counts")
    b: dict[str, gr.Button] = {}
    with gr.Row():
        with gr.Column(scale=3):
            position = gr.Markdown(elem_id="rv-position")
            chat = gr.HTML(elem_id="rv-chat", min_height=120)
            with gr.Row():
                b["prev"] = gr.Button(L("rv.prev"), size="sm", elem_id="rv-prev", min_width=90)
                b["next"] = gr.Button(L("rv.next"), size="sm", elem_id="rv-next", min_width=90)
                b["keep"] = gr.Button(L("rv.keep"), size="sm", variant="primary", elem_id="rv-keep", min_width=90)
                b["drop"] = gr.Button(L("rv.drop"), size="sm", variant="stop", elem_id="rv-drop", min_width=90)
                b["fix"] = gr.Button(L("rv.fix"), size="sm", elem_id="rv-fix", min_width=90)
            note = gr.Textbox(label=L("rv.note"), elem_id="rv-note", max_lines=2)
            gr.Markdown(L("rv.keys"), elem_classes=["muted"])
            gr.Markdown("#### " + L("rv.edit_title"), elem_classes=["group-title"])
            turn = gr.Dropdown([], label=L("rv.turn"), elem_id="rv-turn")
            edit_text = gr.Textbox(label=L("rv.edit_text"), lines=4, max_lines=14, elem_id="rv-edit-text")
            b["save_edit"] = gr.Button(L("rv.save_edit"), size="sm", elem_id="rv-save-edit")
        with gr.Column(scale=2):
            message = gr.Markdown(elem_id="rv-message")
            b["undo"] = gr.Button(L("rv.undo"), size="sm", elem_id="rv-undo")
            with gr.Accordion(L("rv.bulk_title"), open=True, elem_id="rv-bulk-box"):
                bulk_mark = gr.Dropdown([(tr(f"rv.mark.{m}", "en"), m) for m in ("keep", "drop", "fix", "clear")], value="drop",
                                        label=L("rv.bulk_mark"), elem_id="rv-bulk-mark")
                b["bulk"] = gr.Button(L("rv.bulk"), size="sm", elem_id="rv-bulk")
            kinds, names, scan_summary, hits = _pii_ui(b)
            with gr.Accordion(L("rv.versions_title"), open=False, elem_id="rv-versions-box"):
                diff_a = gr.Dropdown([], label=L("rv.version_a"), elem_id="rv-diff-a")
                diff_b = gr.Dropdown([], label=L("rv.version_b"), elem_id="rv-diff-b")
                b["compare"] = gr.Button(L("rv.compare"), size="sm", elem_id="rv-compare")
            with gr.Accordion(L("rv.split_title"), open=False, elem_id="rv-split-box"):
                gr.Markdown(L("rv.split_intro"), elem_classes=["muted"])
                b["export"] = gr.Button(L("rv.export"), size="sm", elem_id="rv-export")
                export_file = gr.File(label=L("rv.export_file"), interactive=False, elem_id="rv-export-file")
                prefer_theirs = gr.Checkbox(label=L("rv.prefer_theirs"), elem_id="rv-prefer-theirs")
                # any file: core.data.import_marks refuses other names in the page's language (Gradio's
                # own refusal of a file type was a notice in English on every page)
                import_file = gr.UploadButton(L("rv.import"), size="sm", elem_id="rv-import")
    diff = gr.HTML(elem_id="rv-diff")
    row = gr.Textbox("", visible=False, label="row", elem_id="rv-row")
    query = gr.Textbox("", visible=False, label="query", elem_id="rv-query")
    hit_ids = gr.Textbox("", visible=False, label="finding ids", elem_id="rv-hit-ids")
    hit = gr.Textbox("", visible=False, label="finding", elem_id="rv-hit")
    said = gr.Textbox("", visible=False, label="said", elem_id="rv-said")
    compared = gr.Textbox("", visible=False, label="compared", elem_id="rv-compared")
    return ReviewTab(filters=flt, counts=counts, position=position, chat=chat, note=note, turn=turn, edit_text=edit_text,
                     row=row, query=query, buttons=b, bulk_mark=bulk_mark, message=message, said=said, diff_a=diff_a,
                     diff_b=diff_b, diff=diff, compared=compared,
                     kinds=kinds, names=names, scan_summary=scan_summary, hits=hits, hit_ids=hit_ids, hit=hit,
                     export_file=export_file, import_file=import_file, prefer_theirs=prefer_theirs)


def wire(t: ReviewTab, gui, lang, ds_id, dataset_setting, tab) -> None:
    """`ds_id`: the Dataset tab's selected dataset; `dataset_setting`: the `dataset` field training reads
    (answered with the reviewed version after every change); `tab`: this tab, whose opening loads the desk."""
    b = t.buttons
    view = [t.counts, t.position, t.chat, t.note, t.turn, t.edit_text, t.row, t.query]
    changed = [t.message] + view + [dataset_setting, t.diff_a, t.diff_b, t.said]

    def act(handler, *bound):
        """An action's event: its message (output 0) is also kept in every language in `said`."""
        return keep_said(partial(handler, gui, *bound), 0)
    widgets = [ds_id] + t.filters + [t.row]   # a filter change reads the widgets ...
    base = [ds_id, t.query, t.row]            # ... everything else the filters the view used
    private = dict(api_visibility="private")
    choices = t.filters[2:3] + t.filters[4:6] + [t.filters[8], t.filters[3], t.bulk_mark, t.kinds]
    opened = dict(inputs=widgets + [lang], outputs=choices + view + [t.diff_a, t.diff_b], show_progress_on=[t.counts])
    tab.select(partial(H.open_tab, gui), js=KEYS_JS, api_name="review_open", **opened)
    # the dataset may have changed since the last visit: a marks file exported then is another one's
    tab.select(lambda: None, outputs=[t.export_file], **private)
    lang.change(partial(H.relabel, gui), inputs=widgets + [t.query, lang], outputs=opened["outputs"], **private)
    lang.change(partial(H.redraw_scan, gui), inputs=[ds_id, t.kinds, t.names, t.hit_ids, lang],
                outputs=[t.scan_summary, t.hits, t.hit_ids], **private)
    show = dict(inputs=widgets + [lang], outputs=view)
    t.filters[0].submit(partial(H.show, gui), api_name="review_filter", **show)
    for w in t.filters[1:]:
        w.input(partial(H.show, gui), **show, **private)
    move = dict(inputs=base + [lang], outputs=view)
    b["prev"].click(partial(H.step, gui, -1), api_name="review_previous", **move)
    b["next"].click(partial(H.step, gui, 1), api_name="review_next", **move)
    for m in ("keep", "drop", "fix"):
        b[m].click(act(H.mark_one, m), inputs=base + [t.note, lang], outputs=changed, api_name=f"review_{m}")
    b["bulk"].click(act(H.mark_all), inputs=base + [t.bulk_mark, lang], outputs=changed, api_name="review_mark_all")
    t.turn.input(partial(H.turn_text, gui), inputs=[ds_id, t.row, t.turn], outputs=[t.edit_text], **private)
    rescan = dict(fn=partial(H.rescan, gui), inputs=[ds_id, t.kinds, t.names, t.hit_ids, lang],
                  outputs=[t.scan_summary, t.hits, t.hit_ids, t.hit], **private)
    b["save_edit"].click(act(H.save_edit), inputs=base + [t.turn, t.edit_text, lang], outputs=changed,
                         api_name="review_save_edit").then(**rescan)
    b["undo"].click(act(H.undo), inputs=base + [lang], outputs=changed, api_name="review_undo").then(**rescan)
    b["scan"].click(partial(H.scan, gui), inputs=[ds_id, t.kinds, t.names, lang], outputs=[t.scan_summary, t.hits, t.hit_ids],
                    show_progress_on=[t.scan_summary], api_name="review_scan")
    t.hits.select(H.pick_hit, inputs=[t.hit_ids], outputs=[t.hit, t.row], **private).then(
        partial(H.show_row, gui), **move, **private)
    for how in ("one", "kinds", "all"):
        b[f"redact_{how}"].click(act(H.redact_some, how), inputs=base + [t.hit, t.kinds, t.names, lang], outputs=changed,
                                 api_name=f"review_redact_{how}").then(**rescan)
    b["compare"].click(partial(H.compare, gui), inputs=[ds_id, t.diff_a, t.diff_b, lang], outputs=[t.diff, t.compared],
                       api_name="review_diff")
    lang.change(partial(H.compare_again, gui), inputs=[t.compared, lang], outputs=[t.diff], **private)
    b["export"].click(partial(H.export, gui), inputs=[ds_id, lang], outputs=[t.export_file], api_name="review_export_marks")
    t.import_file.upload(act(H.import_csv), inputs=base + [t.import_file, t.prefer_theirs, lang], outputs=changed,
                         api_name="review_import_marks")


# can take seconds on a large file (reading it, a scan, a rewrite): they keep Gradio's queue
SLOW = (H.open_tab, H.mark_all, H.scan, H.rescan, H.redact_some, H.compare, H.compare_again, H.import_csv, H.save_edit,
        H.undo)
