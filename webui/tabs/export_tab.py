"""Export tab: merge a training run's adapter into its base model as one ordinary Hugging Face model
folder (a merge job, never in this process), with its progress, size and path, and the list of
exports. Everything comes from core.export."""
from __future__ import annotations

import time
from functools import partial
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from core import export as X
from core.errors import DanluError, InputError
from webui.i18n import L, error_text, has, tr
from webui.jobview import finished_runs, job_status
from webui.tabs.hyperparams_tab import problems_markdown

POLL_S = 1.5
EXPORT_COLUMNS = ["name", "size", "created", "base_model", "smoke_test", "path"]


@dataclass(frozen=True)
class ExportTab:
    run: gr.Dropdown
    name: gr.Textbox
    dtype: gr.Dropdown
    start: gr.Button
    job: gr.Textbox          # the merge job in flight (hidden)
    status: gr.Markdown
    failure: gr.Markdown
    result: gr.Markdown
    exports: gr.Dataframe
    timer: gr.Timer


def suggest_name(gui, run: str | None) -> str:
    """Inputs: the chosen run. Outputs: a free export name: the job's name and the date."""
    job = gui.store.get(run) if run else None
    if job is None:
        return ""
    base = "".join(c if c.isalnum() or c in "-_." else "-" for c in (job.name or "model")).strip("-.") or "model"
    name, n = f"{base}-{time.strftime('%Y%m%d')}", 2
    while (gui.ws.exports / name).exists():
        name, n = f"{base}-{time.strftime('%Y%m%d')}-{n}", n + 1
    return name


def start_merge(gui, lang: str, run: str | None, name: str, dtype: str):
    """Inputs: language, training job, export name, number format. Outputs: merge job id, message, timer."""
    if not run:
        return gr.skip(), tr("ex.no_run", lang), gr.skip()
    name = (name or "").strip() or suggest_name(gui, run)  # no name typed: the suggested one
    try:
        job = X.submit_merge(gui.ws, run, name, dtype=dtype or "bf16")
    except InputError as e:
        return gr.skip(), problems_markdown(e.problems, lang, "ex.cannot_start"), gr.skip()
    except DanluError as e:
        return gr.skip(), f"⚠ {error_text(e, lang)}", gr.skip()
    return job.id, f"▶ {tr('ex.started', lang)} `{job.id}`", gr.Timer(active=True)


def size_text(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def exports_frame(gui, lang: str) -> pd.DataFrame:
    rows = [[e["name"], size_text(e["size_bytes"]), time.strftime("%Y-%m-%d %H:%M", time.localtime(e["created"])),
             e.get("base_model") or "", smoke_word(e.get("smoke_test"), lang), e["path"]] for e in X.list_exports(gui.ws)]
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
    size = size_text(res["total_bytes"]) if res.get("total_bytes") is not None else "?"
    smoke = res.get("smoke_test") or {}
    text = f"**{tr('ex.done', lang)}** `{path}` · {tr('ex.col.size', lang)} {size}"
    if smoke.get("reply") is not None:
        text += f"\n\n{tr('ex.smoke', lang)} ({smoke_word(smoke.get('status'), lang)}): “{smoke['reply']}”"
    return text


def poll(gui, lang: str, merge_job: str | None):
    """The Timer: the merge job's status and, when it ends, where the model is. Outputs: status, failure,
    result, exports table, timer."""
    status, failure, job = job_status(gui, merge_job, lang)
    if job is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
    if not job.terminal:
        return status, failure, gr.skip(), gr.skip(), gr.skip()
    return status, failure, result_markdown(gui, job, lang), exports_frame(gui, lang), gr.Timer(active=False)


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
    start = gr.Button(L("ex.start"), variant="primary", elem_id="ex-start")
    job = gr.Textbox("", visible=False, label="merge job", elem_id="ex-job")
    status = gr.Markdown(elem_id="ex-status")
    failure = gr.Markdown(visible=False, elem_id="ex-failure", elem_classes=["failure"])
    result = gr.Markdown(elem_id="ex-result")
    exports = gr.Dataframe(value=exports_frame(gui, "en"), label=L("ex.exports"), interactive=False, wrap=True,
                           elem_id="ex-exports", max_height=360)
    timer = gr.Timer(POLL_S, active=False)
    return ExportTab(run=run, name=name, dtype=dtype, start=start, job=job, status=status, failure=failure,
                     result=result, exports=exports, timer=timer)


def wire(t: ExportTab, gui, lang) -> None:
    """This tab's own events (the language and tab-switch wiring is in webui/app.py)."""
    t.start.click(partial(start_merge, gui), inputs=[lang, t.run, t.name, t.dtype], outputs=[t.job, t.status, t.timer],
                  api_name="merge_export")
    t.run.change(partial(suggest_name, gui), inputs=[t.run], outputs=[t.name], api_visibility="private")
    t.timer.tick(partial(poll, gui), inputs=[lang, t.job], outputs=[t.status, t.failure, t.result, t.exports, t.timer],
                 api_visibility="private")
