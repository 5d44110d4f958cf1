"""Export tab: merge a training run's adapter into its base model and write the chosen formats (merged
safetensors, GGUF types, the LoRA adapter alone, an Ollama Modelfile) as one export job, never in this
process; before it starts, each format's expected size and time and the free disk space; while it runs,
its step; afterwards each format's check, and the list of exports. Everything comes from core.export."""
from __future__ import annotations

import re
import time
from functools import partial
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from core import export as X
from core import progress, trust
from core.errors import DanluError, InputError
from core.job_table_file import JobTableError
from core.messages import size_msg
from core.export_formats import FORMATS
from webui.i18n import L, duration, error_text, has, keep_said, number, recorded_text, said_in_all, say, tr
from webui.jobview import failure_update, finished_runs, job_status, trouble_said
from webui.tabs.hyperparams_tab import problems_markdown

POLL_S = 1.5
EXPORT_COLUMNS = ["name", "size", "created", "base_model", "formats", "smoke_test", "path"]
# the folder gets the most room and the name wraps: left to Gradio, a long export name widened its column and
# the folder, the one to copy, sat off the right edge (as evaluate_tab.column_widths does for the answers)
EXPORT_WIDTHS = ["20%", "7%", "11%", "13%", "10%", "8%", "31%"]


@dataclass(frozen=True)
class ExportTab:
    run: gr.Dropdown
    name: gr.Textbox
    dtype: gr.Dropdown
    formats: gr.CheckboxGroup
    system: gr.Textbox
    plan: gr.Markdown
    start: gr.Button
    stop: gr.Button
    job: gr.Textbox          # the merge job in flight (hidden)
    status: gr.Markdown
    said: gr.Textbox         # the status line in every language (JSON, hidden), for a language switch
    failure: gr.Markdown
    result: gr.Markdown
    exports: gr.Dataframe
    timer: gr.Timer


def suggest_name(gui, run: str | None) -> str:
    """Inputs: the chosen run. Outputs: a free export name: the job's name and the date."""
    job = gui.store.get(run) if run else None
    if job is None:
        return ""
    # a name core.export.check_export_name takes: it refused the suggestion for a job named "_test", "a..b"
    # or longer than about 90 characters, and the empty box sends the suggestion
    base = "".join(c if c.isalnum() or c in "-_." else "-" for c in (job.name or "model"))
    base = re.sub(r"\.{2,}", ".", base).lstrip("-_.")[:80].rstrip("-.") or "model"
    name, n = f"{base}-{time.strftime('%Y%m%d')}", 2
    while (gui.ws.exports / name).exists():
        name, n = f"{base}-{time.strftime('%Y%m%d')}-{n}", n + 1
    return name


def name_for(gui, run: str | None):
    """The run picker's change: suggest_name, or the name left as it is when the job table cannot be read
    (the plan line below says why: plan_markdown)."""
    try:
        return suggest_name(gui, run)
    except JobTableError:
        return gr.skip()


def start_merge(gui, lang: str, run: str | None, name: str, dtype: str, formats: list | None = None, system: str = ""):
    """Inputs: language, training job, export name, number format, formats, system prompt. Outputs: merge job
    id, message (in every language: i18n.Said), timer."""
    if not run:
        return gr.skip(), said_in_all(lambda code: tr("ex.no_run", code), lang), gr.skip()
    try:
        name = (name or "").strip() or suggest_name(gui, run)  # no name typed: the suggested one
        plan = X.export_plan(gui.ws, run, formats or None)
        if plan.get("enough_disk") is False:
            return gr.skip(), said_in_all(lambda code: f"⚠ {tr('ex.plan.short', code)}", lang), gr.skip()
        job = X.submit_merge(gui.ws, run, name, origin=trust.BROWSER, dtype=dtype or "bf16", formats=formats or None,
                             system=system or "")
    except InputError as e:  # a box named as the page names it (ex.name: "Export name"), not by core's key
        return gr.skip(), said_in_all(lambda code: problems_markdown(e.problems, code, "ex.cannot_start", labels="ex."),
                                      lang), gr.skip()
    except DanluError as e:
        return gr.skip(), said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang), gr.skip()
    return job.id, said_in_all(lambda code: f"▶ {tr('ex.started', code)} `{job.id}`", lang), gr.Timer(active=True)


def stop_export(gui, lang: str, job_id: str | None) -> str:
    """Inputs: language, the export job. Outputs: message (in every language: i18n.Said). The job removes its
    partial folder and ends Cancelled."""
    from core import launcher
    try:
        job = gui.store.get(job_id) if job_id else None
        if job is None or job.terminal or job.kind != "merge":  # the hidden box sent with a training job's id stopped it
            return said_in_all(lambda code: tr("ex.no_job", code), lang)
        job = launcher.cancel(gui.ws, job.id)
    except DanluError as e:
        return said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang)
    return said_in_all(lambda code: f"■ {tr('ex.stopping', code)} `{job.id}`", lang)


def format_choices() -> list[tuple]:
    return [(L("ex.fmt." + name), name) for name in FORMATS]


def duration_text(seconds: float, lang: str) -> str:
    return tr("time.under_second", lang) if seconds < 1 else duration(seconds, lang)


def plan_markdown(gui, lang: str, run: str | None, formats: list | None) -> str:
    """Inputs: language, training run, chosen formats. Outputs: each format's expected size and time for this
    model, the disk needed and free, and the one-time llama.cpp note."""
    if not run:
        return ""
    try:
        plan = X.export_plan(gui.ws, run, formats or None)
    except DanluError as e:
        return f"⚠ {error_text(e, lang)}"
    lines = [f"**{tr('ex.plan', lang)}** · {tr('ex.plan.params', lang)} `{plan['base_model']}`: " + params_text(plan["params"], lang)]
    if plan["rows"]:
        lines += ["", f"| {tr('ex.plan.format', lang)} | {tr('ex.plan.size', lang)} | {tr('ex.plan.time', lang)} |",
                  "| --- | ---: | ---: |"]
        lines += [f"| {tr('ex.fmt.' + r['format'], lang)} | {size_text(r['bytes'], lang)} | {duration_text(r['seconds'], lang)} |"
                  for r in plan["rows"]]
        lines += ["", f"{disk_text(plan['need_bytes'], plan['free_bytes'], lang)} · {tr('ex.plan.approx', lang)}"]
        if plan["enough_disk"] is False:
            lines.append(f"\n⚠ {tr('ex.plan.short', lang)}")
    if plan["tools_note"]:
        lines += ["", f"ℹ {tr('ex.plan.tools', lang)}"]
    return "\n".join(lines)


def params_text(params: int | None, lang: str) -> str:
    """8.03 billion parameters; a small model's whole count (the demo's read "0.000139 billion")."""
    if not params:
        return tr("ex.plan.unknown", lang)
    if params < 1e9:
        return f"{number(params, lang)} {tr('ex.plan.parameters', lang)}"
    return f"{params / 1e9:.3g} {tr('ex.plan.billion', lang)}"

def disk_text(need: int, free: int, lang: str) -> str:
    """The disk an export needs and what is free, as one sentence of `lang` (put together from pieces around
    the sizes it read 'Disco: necesita unos 1,2 GB · 50 GB libres', and '50 GB 空き' in Japanese)."""
    return tr("ex.plan.disk", lang, need=size_text(need, lang), free=size_text(free, lang))


def size_text(n: int, lang: str) -> str:
    """A size in `lang`, as core's messages say sizes (core.messages.size_msg)."""
    return say(size_msg(n), lang)


def exports_frame(gui, lang: str) -> pd.DataFrame:
    rows = [[e["name"], size_text(e["size_bytes"], lang), time.strftime("%Y-%m-%d %H:%M", time.localtime(e["created"])),
             e.get("base_model") or "", ", ".join(e.get("formats") or []), smoke_word(e.get("smoke_test"), lang), e["path"]]
            for e in X.list_exports(gui.ws)]
    return pd.DataFrame(rows, columns=[tr("ex.col." + c, lang) for c in EXPORT_COLUMNS])


def smoke_word(status: str | None, lang: str) -> str:
    """The smoke test's outcome (passed, failed, skipped) in `lang`."""
    return tr("smoke." + status, lang) if status and has("smoke." + status) else (status or "")


def result_markdown(gui, job, lang: str) -> str:
    """Where the merged model is, how big, and what it answered in the smoke test."""
    res = X.read_merge_result(job)
    path = res.get("export_dir")
    if not path:
        return ""
    size = size_text(res["total_bytes"], lang) if res.get("total_bytes") is not None else "?"
    smoke = res.get("smoke_test") or {}
    text = f"**{tr('ex.done', lang)}** `{path}` · {tr('ex.col.size', lang)} {size}"
    if smoke.get("reply") is not None:
        text += f"\n\n{tr('ex.smoke', lang)} ({smoke_word(smoke.get('status'), lang)}): “{smoke['reply']}”"
    checks = res.get("formats") or {}
    if checks:
        text += f"\n\n**{tr('ex.checks', lang)}**\n\n" + "\n".join(
            f"- {'✓' if c.get('status') == 'passed' else '✗'} `{f}` {', '.join(f'`{x}`' for x in c.get('files', [])[:2])}: "
            f"{recorded_text(c, 'summary' if c.get('status') == 'passed' else 'error', lang)}" for f, c in checks.items())
    return text


def poll(gui, lang: str, merge_job: str | None):
    """The Timer: the merge job's status and, when it ends, where the model is. Outputs: status, failure,
    result, exports table, timer."""
    try:
        status, failure, job = job_status(gui, merge_job, lang)
    except JobTableError as e:  # the status line says why; the job goes on and the timer with it
        return (trouble_said(e, lang),) + (gr.skip(),) * 4
    if job is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
    if not job.terminal:
        return status, failure, gr.skip(), gr.skip(), gr.skip()
    return status, failure, result_markdown(gui, job, lang), exports_frame(gui, lang), gr.Timer(active=False)


def job_again(gui, lang: str, merge_job: str | None):
    """A language switch's answer for the failure box and the result block: the job's, in `lang`."""
    job = gui.store.get(merge_job) if merge_job else None
    if job is None:
        return gr.skip(), gr.skip()
    return failure_update(progress.status(job), lang), result_markdown(gui, job, lang) if job.terminal else gr.skip()


def build(gui) -> ExportTab:
    gr.Markdown("## " + L("ex.title"))
    gr.Markdown(L("ex.intro"), elem_classes=["muted"])
    runs = finished_runs(gui)
    first = runs[0][1] if runs else None
    with gr.Row(equal_height=True):
        run = gr.Dropdown(choices=runs, value=first, label=L("ex.run"), info=L("ex.run_help"), elem_id="ex-run", scale=3)
        name = gr.Textbox(suggest_name(gui, first), label=L("ex.name"), info=L("ex.name_help"), elem_id="ex-name",
                          scale=2)
        dtype = gr.Dropdown(["bf16", "fp16"], value="bf16", label=L("ex.dtype"), info=L("ex.dtype_help"),
                            elem_id="ex-dtype", scale=1)
    formats = gr.CheckboxGroup(format_choices(), value=["safetensors"], label=L("ex.formats"), info=L("ex.formats_help"),
                               elem_id="ex-formats")
    system = gr.Textbox("", label=L("ex.system"), info=L("ex.system_help"), elem_id="ex-system", lines=1, max_lines=6)
    plan = gr.Markdown(plan_markdown(gui, "en", first, ["safetensors"]), elem_id="ex-plan")
    with gr.Row():
        start = gr.Button(L("ex.start"), variant="primary", elem_id="ex-start", scale=4)
        stop = gr.Button(L("ex.stop"), variant="stop", elem_id="ex-stop", scale=1)
    job = gr.Textbox("", visible=False, label="merge job", elem_id="ex-job")
    status = gr.Markdown(elem_id="ex-status")
    said = gr.Textbox("", visible=False, label="said", elem_id="ex-said")
    failure = gr.Markdown(visible=False, elem_id="ex-failure", elem_classes=["failure"])
    result = gr.Markdown(elem_id="ex-result")
    exports = gr.Dataframe(value=exports_frame(gui, "en"), label=L("ex.exports"), interactive=False, wrap=True,
                           column_widths=EXPORT_WIDTHS, elem_id="ex-exports", max_height=360)
    timer = gr.Timer(POLL_S, active=False)
    return ExportTab(run=run, name=name, dtype=dtype, formats=formats, system=system, plan=plan, start=start, stop=stop, job=job,
                     status=status, said=said, failure=failure, result=result, exports=exports, timer=timer)


def wire(t: ExportTab, gui, lang) -> None:
    """This tab's own events (the language and tab-switch wiring is in webui/app.py)."""
    t.start.click(keep_said(partial(start_merge, gui), 1), inputs=[lang, t.run, t.name, t.dtype, t.formats, t.system],
                  outputs=[t.job, t.status, t.timer, t.said], api_name="merge_export")
    t.stop.click(keep_said(partial(stop_export, gui), 0), inputs=[lang, t.job], outputs=[t.status, t.said],
                 api_name="stop_export")
    t.run.change(partial(name_for, gui), inputs=[t.run], outputs=[t.name], api_visibility="private")
    for trigger in (t.run.change, t.formats.change):
        trigger(partial(plan_markdown, gui), inputs=[lang, t.run, t.formats], outputs=[t.plan], api_visibility="private")
    t.timer.tick(keep_said(partial(poll, gui), 0), inputs=[lang, t.job],
                 outputs=[t.status, t.failure, t.result, t.exports, t.timer, t.said],
                 api_visibility="private")
