"""Evaluate tab: run an evaluation of a finished training run (a job, never in this process) and show
the results: loss and scores, and every held-out prompt with the base model's and the fine-tuned
model's answers side by side, with the CSV to download. All of it comes from core.evaluation."""
from __future__ import annotations

import shutil
from functools import partial
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from core import evaluation as E
from core import jobs as J
from core import trust
from core.errors import DanluError, InputError
from core.job_table_file import JobTableError
from core.messages import recorded_all
from core.rundir import RunDir
from webui import numbers
from webui.i18n import L, error_text, keep_said, said_in_all, say, tr
from webui.jobview import finished_runs, job_status, trouble_said, trouble_text
from webui.serving import downloads_dir
from webui.tabs.hyperparams_tab import problems_markdown

# the columns of core.evaluation.table_rows, in its order, as UI text keys
TABLE_KEYS = ["ev.col.prompt", "ev.col.reference", "ev.col.base", "ev.col.tuned", "ev.col.base_rouge",
              "ev.col.tuned_rouge", "ev.col.base_bleu", "ev.col.tuned_bleu", "ev.col.base_exact", "ev.col.tuned_exact"]
# a preference run's table_rows: both reference answers and the tuned one
PAIR_TABLE_KEYS = ["ev.col.prompt", "ev.col.chosen", "ev.col.rejected", "ev.col.tuned", "ev.col.base_margin",
                   "ev.col.tuned_margin"]
ANSWER_KEYS = {"ev.col.prompt", "ev.col.reference", "ev.col.base", "ev.col.tuned", "ev.col.chosen", "ev.col.rejected"}
POLL_S = 1.5


@dataclass(frozen=True)
class EvaluateTab:
    intro: gr.Markdown       # what the evaluation measures: the selected run's method decides (show_results)
    run: gr.Dropdown
    max_samples: gr.Number
    max_new_tokens: gr.Number
    start: gr.Button
    job: gr.Textbox          # the evaluation job in flight (hidden)
    status: gr.Markdown
    said: gr.Textbox         # the status line in every language (JSON, hidden), for a language switch
    failure: gr.Markdown
    summary: gr.Markdown
    table: gr.Dataframe
    csv: gr.File
    probes: gr.Dataframe
    timer: gr.Timer


def start_eval(gui, lang: str, run: str | None, max_samples, max_new_tokens):
    """Inputs: language, training job, sample count, answer length. Outputs: eval job id, message (in
    every language: i18n.Said), timer."""
    if not run:  # the summary below already says to pick one: said twice, one under the other (a walk)
        return gr.skip(), said_in_all(lambda code: "", lang), gr.skip()
    try:
        job = E.submit_eval(gui.ws, run, origin=trust.BROWSER, max_samples=_or(max_samples, 200),
                            max_new_tokens=_or(max_new_tokens, 128))  # core checks what the boxes sent
    except InputError as e:
        return gr.skip(), said_in_all(lambda code: problems_markdown(e.problems, code, "ev.cannot_start", labels="ev."), lang), gr.skip()
    except DanluError as e:
        return gr.skip(), said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang), gr.skip()
    return job.id, said_in_all(lambda code: f"▶ {tr('ev.started', code)} `{job.id}`", lang), gr.Timer(active=True)


def _or(value, default):
    """An emptied number box (None, or 0 as the page reads an empty box) is the default."""
    return default if value is None or value == "" or (value == 0 and not isinstance(value, bool)) else value


def show_results(gui, lang: str, run: str | None):
    """Inputs: language, training job. Outputs: summary, results table, CSV file, probe answers, intro (a
    preference run's evaluation is accuracy and margin: the intro named ROUGE and BLEU for a DPO run too)."""
    try:
        job = gui.store.get(run) if run else None
    except JobTableError as e:  # the summary says why (it failed without a word); the results keep what they show
        return trouble_text(e, lang), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    report = E.read_eval(job.run_dir) if job else None
    probes = probe_frame(E.read_probes(job.run_dir) if job else [], lang)
    pairs = bool(job) and E.is_preference_run(job.run_dir, report)
    intro, keys = (tr("ev.intro_pref", lang), PAIR_TABLE_KEYS) if pairs else (tr("ev.intro", lang), TABLE_KEYS)
    if not report:  # no run chosen (none has finished yet) is not "not evaluated yet"
        return (tr("ev.none_yet" if job else "ev.no_run", lang), table_update([], lang, keys),
                gr.update(value=None, visible=False), probes, intro)
    return (summary_markdown(report, lang), table_update(E.table_rows(report), lang, keys), csv_update(gui, job),
            probes, intro)


def summary_markdown(report: dict, lang: str) -> str:
    if E.is_preference(report):
        return preference_markdown(report, lang)
    m = report.get("metrics", {})
    b, t = m.get("base", {}), m.get("tuned", {})
    rows = [f"| | {tr('ev.col.base', lang)} | {tr('ev.col.tuned', lang)} |", "|---|---|---|"]
    if report.get("eval_loss") is not None:
        rows.append(f"| {tr('ev.loss', lang)} | {_num(report.get('base_eval_loss'))} | {_num(report.get('eval_loss'))} |")
        rows.append(f"| {tr('ev.perplexity', lang)} | {_num(report.get('base_perplexity'))} | "
                    f"{_num(report.get('perplexity'))} |")
    for key, name in (("rouge_l", "ROUGE-L"), ("bleu", "BLEU")):
        rows.append(f"| {name} | {_num(b.get(key))} | {_num(t.get(key))} |")
    rows.append(f"| {tr('ev.exact', lang)} | {_pct(b.get('exact_match'))} | {_pct(t.get('exact_match'))} |")
    head = f"**{tr('ev.summary', lang)}** ({report.get('n_samples', 0)} {tr('ev.prompts', lang)})"
    notes = notes_markdown(report, lang)
    return head + "\n\n" + "\n".join(rows) + notes


def preference_markdown(report: dict, lang: str) -> str:
    """A preference run: how often, and by how much, the chosen answer scores above the rejected one,
    with the starting weights and after tuning (and the loss on the chosen answers)."""
    p = report["preference"]
    rows = [f"| | {tr('ev.col.base', lang)} | {tr('ev.col.tuned', lang)} |", "|---|---|---|",
            f"| {tr('ev.pref_accuracy', lang)} | {_pct(p.get('base_accuracy'))} | {_pct(p.get('tuned_accuracy'))} |",
            f"| {tr('ev.pref_margin', lang)} | {_num(p.get('base_margin'))} | {_num(p.get('tuned_margin'))} |"]
    if report.get("eval_loss") is not None:
        rows.append(f"| {tr('ev.loss', lang)} | {_num(report.get('base_eval_loss'))} | {_num(report.get('eval_loss'))} |")
    head = f"**{tr('ev.summary', lang)}** ({p.get('pairs', 0)} {tr('ev.pairs', lang)})"
    notes = notes_markdown(report, lang)
    return head + "\n\n" + "\n".join(rows) + f"\n\n<span class='muted'>{tr('ev.pref_explain', lang)}</span>" + notes


def notes_markdown(report: dict, lang: str) -> str:
    """What the results leave out (e.g. only the first N prompts answered), in `lang`, in small print."""
    return "".join(f"\n\n<span class='muted'>{say(m, lang)}</span>" for m in recorded_all(report, "notes"))


def _num(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def results_frame(rows: list[list], lang: str, keys: list[str] = TABLE_KEYS) -> pd.DataFrame:
    """The exact-match columns in words: core writes "yes"/"no", which stood in English on every page (a walk in Korean)."""
    words = {"yes": tr("ev.exact_yes", lang), "no": tr("ev.exact_no", lang)}
    exact = [i for i, k in enumerate(keys) if k.endswith("_exact")]
    rows = [[words.get(v, v) if i in exact else v for i, v in enumerate(row)] for row in rows]
    return pd.DataFrame(rows, columns=[tr(k, lang) for k in keys])


def column_widths(keys: list[str]) -> list[str]:
    """Scores take at most 34% of the width (0.022 on one line), the answers share the rest. Left to Gradio,
    a long base answer took the table's whole width and the fine-tuned answer, the one to compare, sat off
    the right edge (a walk in Japanese; every language alike)."""
    scores = [k for k in keys if k not in ANSWER_KEYS]
    score = min(34 / len(scores), 8)
    answer = (100 - score * len(scores)) / (len(keys) - len(scores))
    return [f"{answer if k in ANSWER_KEYS else score:.1f}%" for k in keys]


def table_update(rows: list[list], lang: str, keys: list[str] = TABLE_KEYS) -> dict:
    return gr.update(value=results_frame(rows, lang, keys), column_widths=column_widths(keys))


def probe_frame(probes: list[dict], lang: str) -> pd.DataFrame:
    cols = [tr("ev.col.step", lang), tr("ev.col.prompt", lang), tr("ev.col.answer", lang)]
    return pd.DataFrame([[p.get("step"), p.get("prompt"), p.get("answer")] for p in probes], columns=cols)


def csv_update(gui, job: J.Job):
    """eval.csv of the run, copied where the page may offer it for download."""
    src = RunDir(job.run_dir).eval_csv
    if not src.is_file():
        return gr.update(value=None, visible=False)
    dest = downloads_dir(gui.ws) / f"eval-{job.id}.csv"
    shutil.copyfile(src, dest)
    return gr.update(value=str(dest), visible=True)


def poll(gui, lang: str, eval_job: str | None, run: str | None):
    """The Timer: the evaluation job's status; when it ends, its results. Outputs: status, failure box,
    summary, table, CSV, probes, intro, timer."""
    try:
        status, failure, job = job_status(gui, eval_job, lang)
    except JobTableError as e:  # the status line says why; the job goes on and the timer with it
        return (trouble_said(e, lang),) + (gr.skip(),) * 7
    if job is None:
        return (gr.skip(),) * 7 + (gr.Timer(active=False),)
    if not job.terminal:
        return (status, failure) + (gr.skip(),) * 5 + (gr.skip(),)
    return (status, failure, *show_results(gui, lang, run), gr.Timer(active=False))


def build(gui) -> EvaluateTab:
    gr.Markdown("## " + L("ev.title"))
    intro = gr.Markdown(L("ev.intro"), elem_classes=["muted"], elem_id="ev-intro")
    runs = finished_runs(gui)
    with gr.Row(equal_height=True):
        run = gr.Dropdown(choices=runs, value=runs[0][1] if runs else None, label=L("ev.run"), info=L("ev.run_help"),
                          elem_id="ev-run", scale=3)
        max_samples = numbers.Number(200, precision=0, label=L("ev.max_samples"), info=L("ev.max_samples_help"),
                                     elem_id="ev-max-samples", scale=1)
        max_new_tokens = numbers.Number(128, precision=0, label=L("ev.max_new_tokens"), info=L("ev.max_new_tokens_help"),
                                        elem_id="ev-max-new-tokens", scale=1)
    start = gr.Button(L("ev.start"), variant="primary", elem_id="ev-start")
    job = gr.Textbox("", visible=False, label="evaluation job", elem_id="ev-job")
    status = gr.Markdown(elem_id="ev-status")
    said = gr.Textbox("", visible=False, label="said", elem_id="ev-said")
    failure = gr.Markdown(visible=False, elem_id="ev-failure", elem_classes=["failure"])
    summary = gr.Markdown(elem_id="ev-summary")
    table = gr.Dataframe(value=results_frame([], "en"), label=L("ev.table"), interactive=False, wrap=True,
                         column_widths=column_widths(TABLE_KEYS), elem_id="ev-table", max_height=480)
    csv = gr.File(label=L("ev.csv"), visible=False, interactive=False, elem_id="ev-csv")
    with gr.Accordion(L("ev.probes"), open=False):
        probes = gr.Dataframe(value=probe_frame([], "en"), label=L("ev.probes_table"), interactive=False, wrap=True,
                              elem_id="ev-probes", max_height=360)
    timer = gr.Timer(POLL_S, active=False)
    return EvaluateTab(intro=intro, run=run, max_samples=max_samples, max_new_tokens=max_new_tokens, start=start, job=job,
                       status=status, said=said, failure=failure, summary=summary, table=table, csv=csv, probes=probes, timer=timer)


def wire(t: EvaluateTab, gui, lang) -> None:
    """This tab's own events (the language and tab-switch wiring is in webui/app.py)."""
    t.start.click(keep_said(partial(start_eval, gui), 1), inputs=[lang, t.run, t.max_samples, t.max_new_tokens],
                  outputs=[t.job, t.status, t.timer, t.said], api_name="run_evaluation")
    t.run.change(partial(show_results, gui), inputs=[lang, t.run], outputs=[t.summary, t.table, t.csv, t.probes, t.intro],
                 api_name="show_evaluation")
    t.timer.tick(keep_said(partial(poll, gui), 0), inputs=[lang, t.job, t.run],
                 outputs=[t.status, t.failure, t.summary, t.table, t.csv, t.probes, t.intro, t.timer, t.said],
                 api_visibility="private")
