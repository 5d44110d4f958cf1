"""The browser app: build_ui(services) -> gr.Blocks, with all cross-tab wiring in this one file.

Each tab module builds its layout and owns its handlers (small named functions over plain
values); this file connects one tab's widgets to another's events. Long work is always a job
(core.launcher); the page only keeps ids and polls files with gr.Timer.
"""
from __future__ import annotations

import json
import threading
from functools import partial

import gradio as gr

from core.job_table_file import JobTableError
from webui import choices, fields, jobview, serving
from webui.context import Gui
from webui.i18n import I18N, L, LANGUAGES, keep_said, say_again
from webui.page_script import CSS, LOAD_LANGUAGE_JS, SCROLL_LOG_JS, SET_LANGUAGE_JS, TAB_KEYS
from webui.tabs import (chat_share, chat_tab, dataset_grid, dataset_tab, evaluate_tab, export_tab, hyperparams_tab,
                        review_handlers, review_tab, templates_tab, train_tab, train_where)

# handlers that stay on Gradio's queue: they can take seconds, or their refusal must reach the page
KEEP_QUEUED = (dataset_tab.upload_and_check, dataset_tab.check_current,
              dataset_tab.check_chosen,
              dataset_tab.check_rows_and_picker, chat_share.start_demo,
              # Gradio's page shows no error box for an unqueued event's refusal: a first row of -5
              # typed there went unanswered, and so did Download for a dataset whose file was deleted
              # (both downloads also copy or write a dataset-sized file)
              dataset_grid.grid, dataset_tab.download, review_handlers.export,
              chat_share.stop_demo, *review_tab.SLOW,
              # they wait on the cluster's controller (up to 30 s)
              train_tab.start_on_cluster, train_where.partitions_if_slurm)


def build_ui(services, gui: Gui | None = None) -> gr.Blocks:
    gui = gui or Gui.create(services)
    with gr.Blocks(title="Danlu 丹炉", analytics_enabled=False) as blocks:
        box = fields.snapshot_box()  # what events read the settings from (see there)
        with gr.Row(elem_id="header", equal_height=True):
            gr.Markdown("# Danlu 丹炉\n" + L("app.tagline"), elem_id="title")
            lang = gr.Radio(choices=LANGUAGES, value="en", label=L("app.language"), elem_id="language",
                            scale=0, min_width=540)  # five languages side by side, none cut off
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab(L("tab.templates"), id="templates", elem_id="tab-templates") as t_tpl:
                tpl = templates_tab.build(gui)
            with gr.Tab(L("tab.dataset"), id="dataset", elem_id="tab-dataset") as t_ds:
                ds = dataset_tab.build(gui)
            with gr.Tab(L("tab.review"), id="review", elem_id="tab-review") as t_rv:
                rv = review_tab.build(gui)
            with gr.Tab(L("tab.hyperparams"), id="hyperparams", elem_id="tab-hyperparams") as t_hp:
                hp = hyperparams_tab.build(gui, elsewhere=("base_model", *ds.widgets))
            with gr.Tab(L("tab.train"), id="train", elem_id="tab-train") as t_tr:
                tr = train_tab.build(gui)
            with gr.Tab(L("tab.evaluate"), id="evaluate", elem_id="tab-evaluate") as t_ev:
                ev = evaluate_tab.build(gui)
            with gr.Tab(L("tab.export"), id="export", elem_id="tab-export") as t_ex:
                ex = export_tab.build(gui)
            with gr.Tab(L("tab.chat"), id="chat", elem_id="tab-chat") as t_ch:
                ch = chat_tab.build(gui)
        widgets = {"base_model": tpl.base_model, **ds.widgets, **hp.widgets}
        settings = [widgets[n] for n in fields.NAMES]
        fields.wire_snapshot(box, widgets)
        tabs = [t_tpl, t_ds, t_hp, t_tr, t_ev, t_ex, t_ch, t_rv]  # the timers' owners are picked by position

        blocks.load(None, outputs=[lang], js=LOAD_LANGUAGE_JS, api_visibility="private")
        show = dataset_tab.wire(ds, gui, lang, *(widgets[n] for n in ("base_model", "max_seq_length", "train_on_inputs",
                                                                      "chat_template")))
        _wire_templates(gui, tpl, ds, settings, box, hp, lang, show)
        _wire_settings(gui, blocks, hp, tr, settings, box, tpl.model_info, lang)
        _wire_train(gui, blocks, tr, box, lang)
        evaluate_tab.wire(ev, gui, lang)
        export_tab.wire(ex, gui, lang)
        chat_tab.wire(ch, gui, lang)
        review_tab.wire(rv, gui, lang, ds.ds_id, ds.widgets["dataset"], t_rv)
        _wire_tab_switches(gui, tabs, tr, ev, ex, ch, lang)
        if "start_adapter" in hp.widgets:  # the finished runs a preference run may start from
            t_hp.select(keep_said(partial(hyperparams_tab.start_adapter_choices, gui), 1),
                        inputs=[lang, hp.widgets["start_adapter"], hp.loaded],
                        outputs=[hp.widgets["start_adapter"], hp.loaded, hp.said], api_visibility="private")
        # each line a handler wrote (a Said) and the hidden box keeping its words in every language
        said = [(tr.message, tr.said), (tpl.chosen, tpl.said), (hp.loaded, hp.said), (hp.command, hp.command_said),
                (ds.clean_message, ds.said), (rv.message, rv.said), (ev.status, ev.said), (ex.status, ex.said),
                (ch.note, ch.said), (ch.demo_message, ch.demo_said)]
        _wire_language(gui, lang, tpl, ds, hp, tr, ev, ex, ch, box, said)
    choices.refuse_in_words(blocks, lang)  # a value a picker does not take is refused in the page's words (see there)
    serving.progress_only_where_asked(blocks)  # the page's per-event cost stays small (see there)
    serving.cheap_skips(blocks)  # the timers' many skipped outputs cost next to nothing (see there)
    # quick answers skip the queue's event stream; what can take long keeps it (see there)
    serving.quick_without_queue(blocks, keep_queued=KEEP_QUEUED)
    return blocks


def _wire_tab_switches(gui, tabs, tr, ev, ex, ch, lang):
    """Only the visible tab polls: its timer runs, the others stop. A tab that lists runs or exports
    reads them again when it is opened (a job may have finished meanwhile)."""
    timers = [tr.timer, ev.timer, ex.timer]
    owner = {3: tr.timer, 4: ev.timer, 5: ex.timer}
    for i, tab in enumerate(tabs):
        mine = owner.get(i)
        # in the page alone: a server event costs the page a pass over every component any event has
        # touched, twice (see SET_LANGUAGE_JS), and a tab switch needs none
        tab.select(None, outputs=timers, js=_timers_js([t is mine for t in timers]), api_visibility="private")
    t_ev, t_ex, t_ch = tabs[4], tabs[5], tabs[6]
    # the status line says why when the job table cannot be read (jobview.with_table_status)
    # the newest run each picker listed (jobview.refresh_new_runs); hidden boxes: a State makes the page hold a stream
    seen_ev, seen_ex, seen_ch = (gr.Textbox("", visible=False, label=f"{t} newest run", elem_id=f"{t}-newest")
                                 for t in ("ev", "ex", "chat"))
    t_ev.select(keep_said(partial(jobview.refresh_new_runs, gui), 1), inputs=[lang, ev.run, ev.status, seen_ev],
                outputs=[ev.run, ev.status, seen_ev, ev.said], api_visibility="private").then(
        # the chosen run's results and intro: a page opened in English (no language change at load) showed
        # none, and the intro named ROUGE and BLEU for a DPO run picked when the server started
        partial(evaluate_tab.show_results, gui), inputs=[lang, ev.run],
        outputs=[ev.summary, ev.table, ev.csv, ev.probes, ev.intro], api_visibility="private")
    t_ex.select(keep_said(partial(jobview.refresh_new_runs, gui), 1), inputs=[lang, ex.run, ex.status, seen_ex],
                outputs=[ex.run, ex.status, seen_ex, ex.said], api_visibility="private").then(
        partial(_name_if_empty, gui), inputs=[ex.run, ex.name], outputs=[ex.name], api_visibility="private")
    t_ex.select(partial(export_tab.exports_frame, gui), inputs=[lang], outputs=[ex.exports], api_visibility="private")
    t_ex.select(partial(export_tab.plan_markdown, gui), inputs=[lang, ex.run, ex.formats], outputs=[ex.plan],
                api_visibility="private")  # the free disk space is read again each time the tab opens
    t_ch.select(keep_said(partial(chat_tab.refresh_on_open, gui), 2), inputs=[lang, ch.model, ch.adapter, ch.note, seen_ch],
                outputs=[ch.model, ch.adapter, ch.note, seen_ch, ch.said], api_visibility="private")


def _name_if_empty(gui, run, name):
    return gr.skip() if (name or "").strip() else export_tab.name_for(gui, run)


def _timers_js(active: list[bool]) -> str:
    """The page switches its timers on and off itself (the same property update the server would send)."""
    return "() => " + json.dumps([{"__type__": "update", "active": a} for a in active])


def _wire_language(gui, lang, tpl, ds, hp, tr, ev, ex, ch, box, said):
    """The page translates labels itself; what handlers composed is rendered again in the new language.
    `said`: (line, box) pairs: each tab's action line, said again from its words kept in every language."""
    # the tab names are renamed in the page (SET_LANGUAGE_JS); what shows at once (the cards) comes
    # back in one light answer (with every tab's action line, said again), the rest in a second one
    light = [(templates_tab.render_cards, [lang], tpl.cards)] + [(say_again, [lang, kept], [line]) for line, kept in said]
    # why an evaluation or an export failed, and what to do, and where the export is: rendered again
    # from the job (a few file reads)
    light += [(partial(jobview.failure_again, gui), [lang, ev.job], [ev.failure]),
              (partial(export_tab.job_again, gui), [lang, ex.job], [ex.failure, ex.result])]
    steps = [
        (partial(templates_tab.describe_model, gui), [tpl.base_model, lang], [tpl.model_info]),
        (hyperparams_tab.describe_recipe, [hp.recipe, lang], [hp.recipe_info]),
        (partial(train_tab.refresh_gpus, gui), [lang, tr.gpus], [tr.gpus]),
        (fields.with_settings(partial(_check_settings, gui)), [lang, tr.gpus, box], [hp.problems, hp.memory]),
        (partial(_train_view, gui), [lang, tr.job],
         [tr.status, tr.failure, tr.log, tr.loss_plot, tr.lr_plot, tr.seen, tr.stop, tr.resume, tr.margin_plot,
          tr.accuracy_plot, tr.retry, tr.table, tr.table_seen]),
        (partial(evaluate_tab.show_results, gui), [lang, ev.run], [ev.summary, ev.table, ev.csv, ev.probes, ev.intro]),
        (partial(export_tab.exports_frame, gui), [lang], [ex.exports]),
        (partial(chat_tab.refresh_choices, gui), [lang, ch.model, ch.adapter], [ch.model, ch.adapter]),
        (partial(chat_share.demo_table, gui), [lang], [ch.demos, ch.demo_pick]),
    ]
    # what would widen that answer past the page's input budget follows it: the export plan, and the
    # Dataset tab (its check and rows again, or the refusal it shows; the picker's labels; the length
    # summary said again)
    after = [(partial(export_tab.plan_markdown, gui), [lang, ex.run, ex.formats], [ex.plan]),
             (partial(dataset_tab.check_again, gui),
              [ds.ds_id, ds.widgets["dataset_format"], ds.widgets["column_map"], ds.summary_said, ds.problems, lang],
              [ds.summary, ds.problems, ds.counts, ds.widgets["dataset"]]),
             (partial(dataset_tab.grid, gui), [ds.ds_id, ds.grid_start, lang], [ds.grid]),
             (partial(dataset_tab.relabel_picker, gui), [lang], [ds.picker]),
             (say_again, [lang, ds.lengths_said], [ds.lengths])]
    fn, inputs, outputs = combined(light, first=lang)
    first = lang.change(fn, inputs=inputs, outputs=outputs, js=SET_LANGUAGE_JS, api_visibility="private")
    # after the light answer, not beside it, so the tab names never wait behind the heavier re-render
    # (measured: no change in the switch's time; it is the page's own re-translation, see the README)
    fn, inputs, outputs = combined(steps, first=lang)
    then = first.then(fn, inputs=inputs, outputs=outputs, api_visibility="private")
    fn, inputs, outputs = combined(after, first=lang)
    then.then(fn, inputs=inputs, outputs=outputs, api_visibility="private")


def combined(steps, first):
    """Several (fn, inputs, outputs) as one handler: inputs are the union (`first` leading), outputs
    the concatenation. A fn with one output returns its value; with several, a sequence of them."""
    inputs = [first]
    for _, ins, _ in steps:
        inputs += [c for c in ins if all(c is not i for i in inputs)]
    outputs = [o for _, _, outs in steps for o in outs]

    def run(*values):
        value_of = {id(c): v for c, v in zip(inputs, values)}
        out = []
        for fn, ins, outs in steps:
            try:
                result = fn(*(value_of[id(c)] for c in ins))
            except JobTableError:  # one step's job table unread leaves its outputs; the Train tab's status says why
                result = gr.skip() if len(outs) == 1 else (gr.skip(),) * len(outs)
            out += [result] if len(outs) == 1 else list(result)
        return out
    return run, inputs, outputs


def _train_view(gui, lang, job_id):
    """The Train tab's status, plots and job table rendered again in the new language (also when the
    tab's timer is off: no job yet, or another tab open)."""
    try:
        view = train_tab.refresh_job(gui, job_id, "", lang)
        table, _picker, table_sig = train_tab.refresh_jobs(gui, lang, job_id, "")
    except JobTableError as e:  # said in the new language too
        return (*jobview.table_trouble(e, lang, ""), gr.skip(), gr.skip())
    return (*view, table, table_sig)


def _load_jobs(gui, lang, job_id, sig):
    """The page's first job table. Outputs: table, job picker, signature, status line (why a job table cannot
    be read, in words: else "No job yet" over an empty table)."""
    try:
        return (*train_tab.refresh_jobs(gui, lang, job_id, sig), gr.skip())
    except JobTableError as e:
        return gr.skip(), gr.skip(), "", jobview.trouble_text(e, lang)


def _wire_templates(gui, tpl, ds, settings, box, hp, lang, then_show):
    """A template fills the settings (their check and memory estimate follow from the box's change). The
    Dataset tab then checks its sample file as Check would (its rows and lengths follow: `then_show`):
    it went on describing the dataset chosen before, no longer selected."""
    sample = dict(fn=keep_said(keep_said(partial(dataset_tab.check_chosen, gui), 5), 1),  # the cleaning message, the summary
                  inputs=[ds.widgets[n] for n in ("dataset", "dataset_format", "column_map")] + [lang],
                  outputs=[ds.ds_id, ds.summary, ds.problems, ds.counts, ds.widgets["dataset"], ds.clean_message, ds.said,
                           ds.summary_said], show_progress_on=[ds.summary], api_visibility="private")
    for name, button in tpl.buttons.items():
        apply = fields.with_settings(partial(templates_tab.apply_template, gui, name))
        chosen = button.click(keep_said(apply, len(settings) + 1), inputs=[lang, box],  # the note: said again after a switch
                              outputs=settings + [hp.recipe, tpl.chosen, tpl.model_info, hp.recipe_info, ds.ds_id, tpl.said],
                              js=fields.CURRENT_JS, api_name=f"use_template_{name.replace('-', '_')}")
        then_show(chosen.success(**sample), checked=True)
    tpl.custom_model.submit(partial(templates_tab.use_custom_model, gui), inputs=[tpl.custom_model, lang],
                            outputs=[tpl.base_model, tpl.model_info], api_name="use_custom_model")
    # typed or picked by the user; a template, the free field or a loaded config describes the model in
    # its own answer
    tpl.base_model.input(partial(templates_tab.describe_model, gui), inputs=[tpl.base_model, lang], outputs=[tpl.model_info],
                         api_visibility="private")


def _wire_settings(gui, blocks, hp, tr, settings, box, model_info, lang):
    """Any change of a setting (typed, or filled by a template, recipe or loaded file) changes the box,
    which re-checks the settings and the memory estimate in one event."""
    checked = dict(inputs=[lang, tr.gpus, box], outputs=[hp.problems, hp.memory], api_visibility="private")
    recheck = fields.with_settings(partial(_check_settings, gui))
    box.change(recheck, trigger_mode="always_last", **checked)
    tr.gpus.input(recheck, **checked)
    blocks.load(recheck, **checked)
    hyperparams_tab.wire_method(hp)
    hp.recipe.input(hyperparams_tab.describe_recipe, inputs=[hp.recipe, lang], outputs=[hp.recipe_info],
                    api_visibility="private")  # a template describes its recipe in its own answer
    hp.recipe.input(hyperparams_tab.apply_recipe, inputs=[hp.recipe], outputs=settings, api_name="apply_recipe")
    hp.save.click(keep_said(fields.with_settings(partial(hyperparams_tab.save_settings, gui)), 2), inputs=[lang, box],
                  outputs=[hp.saved_file, hp.problems, hp.loaded, hp.said], js=fields.CURRENT_JS, api_name="save_config")
    hp.load.upload(keep_said(fields.with_settings(partial(_load_config, gui), lang_at=1), len(settings)),
                   inputs=[hp.load, lang, box],
                   outputs=settings + [hp.loaded, model_info, hp.said], js=fields.CURRENT_JS, api_name="load_config")
    hp.show_command.click(keep_said(fields.with_settings(partial(hyperparams_tab.show_command, gui)), 0),
                          inputs=[lang, tr.gpus, tr.nproc, box], outputs=[hp.command, hp.command_said],
                          js=fields.CURRENT_JS, api_name="show_command")  # its note: said again after a switch


def _load_config(gui, path, lang: str, *current) -> list:
    """Load config's answer: the settings the file changes, its notes, and what the loaded model is
    (one answer, as a template's; an unchanged model keeps its description)."""
    out = hyperparams_tab.load_settings(gui, path, lang, *current)
    model = out[fields.NAMES.index("base_model")]
    return out + [gr.skip() if model == gr.skip() else templates_tab.describe_model(gui, model, lang)]


def _check_settings(gui, lang, chosen, *values) -> tuple[str, str]:
    """Inputs: language, GPU choice, every setting. Outputs: the problems in words, the memory estimate."""
    by_name = dict(zip(fields.NAMES, values))
    memory = [by_name[n] for n in hyperparams_tab.MEMORY_INPUTS]
    return (hyperparams_tab.validate_settings(gui, lang, *values),
            hyperparams_tab.memory_fit(gui, lang, chosen, *memory))


def _wire_train(gui, blocks, tr, box, lang):
    refresh_outputs = [tr.status, tr.failure, tr.log, tr.loss_plot, tr.lr_plot, tr.seen, tr.stop, tr.resume,
                       tr.margin_plot, tr.accuracy_plot, tr.retry]
    refresh = partial(train_tab.refresh_job, gui)
    tr.start.click(keep_said(fields.with_settings(partial(train_tab.start_training, gui)), 1),
                   inputs=[lang, tr.gpus, tr.nproc, box], outputs=[tr.job, tr.message, tr.timer, tr.said],
                   js=fields.CURRENT_JS, api_name="start_training")
    tr.where.start.click(keep_said(fields.with_settings(partial(train_tab.start_on_cluster, gui)), 1),
                         inputs=[lang, tr.nproc, *tr.where.inputs, box], outputs=[tr.job, tr.message, tr.timer, tr.said],
                         js=fields.CURRENT_JS, api_name="start_training_slurm")
    train_where.wire(tr.where, lang, tr.gpus, tr.start)
    tr.stop.click(keep_said(partial(train_tab.stop_job, gui), 0), inputs=[lang, tr.job], outputs=[tr.message, tr.said],
                  api_name="stop_job")
    tr.resume.click(keep_said(partial(train_tab.resume_job, gui), 1), inputs=[lang, tr.job],
                    outputs=[tr.job, tr.message, tr.said], api_name="resume_job")
    tr.retry.click(keep_said(partial(train_tab.retry_job, gui), 1), inputs=[lang, tr.job],
                   outputs=[tr.job, tr.message, tr.said], api_name="retry_job")
    tr.table.select(train_tab.select_row, outputs=[tr.job], api_visibility="private")
    ev = tr.job.change(train_tab.remember, inputs=[tr.job], outputs=[tr.remembered], api_visibility="private")
    ev.then(refresh, inputs=[tr.job, tr.seen, lang], outputs=refresh_outputs, api_visibility="private")
    # a tick is a few file reads: unqueued, as every quick answer (serving.quick_without_queue)
    tr.timer.tick(partial(train_tab.refresh, gui), inputs=[lang, tr.job, tr.seen, tr.table_seen, tr.said],
                  outputs=refresh_outputs + [tr.table, tr.job, tr.table_seen, tr.message, tr.said], api_name="refresh_job")
    tr.log.change(None, js=SCROLL_LOG_JS, api_visibility="private")  # in the page only: newest line in view
    load = blocks.load(partial(train_tab.initial_job, gui), inputs=[tr.remembered], outputs=[tr.job, tr.remembered],
                     api_visibility="private")
    load.then(partial(_load_jobs, gui), inputs=[lang, tr.job, tr.table_seen],
              outputs=[tr.table, tr.job, tr.table_seen, tr.status], api_visibility="private")


def launch(services, host="127.0.0.1", port=7860, share=False, auth=None, max_file_size="2gb", block=True,
           before_serving=None):
    """Build and serve the app. `before_serving` runs right before the port is bound (the CLI closes its
    "starting" page there)."""
    gui = Gui.create(services)
    # before build_ui: it moves Gradio's upload cache into the workspace and quiets per-event costs
    serve = serving.launch_options(gui.ws)
    blocks = build_ui(services, gui)
    blocks.queue(default_concurrency_limit=8)
    if before_serving is not None:
        before_serving()
    blocks.launch(server_name=host, server_port=port, share=share, auth=auth, max_file_size=max_file_size,
                prevent_thread_lock=True, footer_links=[], i18n=I18N, css=CSS, theme=_theme(), quiet=True, **serve)
    # Gradio's own banner suggests `share=True` in code; Danlu's way to share needs a login (SECURITY.md)
    local = host in ("127.0.0.1", "localhost", "::1")
    print(f"Danlu is running at {blocks.local_url} " + ("(this computer only)" if local else f"(bound to {host}; login required)")
          + ". Ctrl-C stops the app; training jobs keep running."
          + (" To reach it from elsewhere: python app.py --host 0.0.0.0 --auth USER:PASS" if local else ""), flush=True)
    # the cleaning helper starts once the page had time to load (both need the CPU at first)
    warm = threading.Timer(10.0, gui.warm_helper)
    warm.daemon = True
    warm.start()
    if share:
        print(f"Share link: {blocks.share_url}" if blocks.share_url else
              "Danlu: the share link could not be created (no internet?); the app still runs locally.", flush=True)
    if block:
        blocks.block_thread()
    return blocks


def _theme():
    return gr.themes.Default(primary_hue="orange", secondary_hue="stone", neutral_hue="stone",
                          font=["system-ui", "-apple-system", "Segoe UI", "Noto Sans", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
