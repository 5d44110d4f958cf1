"""Train tab: GPU picker, Start / Stop / Resume, the job table, status with ETA, log tail and live
loss and learning-rate plots (and, for preference runs, reward margin and preference accuracy).

Nothing here keeps a process: Start asks core.launcher for a job and keeps its id; a gr.Timer
re-reads the job table and the run directory (core.progress). So a page reload or a server restart
finds every job again, and closing the browser never touches a running job.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from core import jobs as J
from core import launcher, progress, trust
from core.errors import DanluError, InputError
from core.job_table_file import JobTableError
from core.rundir import RunDir, read_json
from core.slurm.executor import newest_attempts
from webui import fields, numbers
from webui.i18n import L, error_text, has, said_again, said_in_all, tr
from webui.jobview import box_classes, failure_text, status_markdown, table_trouble
from webui.live import file_stamp
from webui.tabs import train_where
from webui.tabs.train_plots import AXIS_FORMATS, SERIES_EVAL, SERIES_TRAIN, all_frames, plot_frames, pref_updates
from webui.tabs.hyperparams_tab import launch_spec, problems_markdown

POLL_S = 1.0
LOG_LINES = 200
TABLE_LIMIT = 200
TABLE_STEP_S = 5.0
PLOT_EVERY_S = 2.0  # redrawing plots in every open page each second costs more than it shows
STOPPING = ("train.stopping", "train.stopping_plain")  # Stop's line: a checkpoint is saved first; none to save


@dataclass(frozen=True)
class TrainTab:
    gpus: gr.CheckboxGroup
    nproc: gr.Number
    where: train_where.WherePanel  # this computer or a Slurm cluster
    start: gr.Button
    stop: gr.Button
    resume: gr.Button
    retry: gr.Button               # a new run with the selected job's settings (what the hints' "Retry" names)
    message: gr.Markdown
    said: gr.Textbox               # the message in every language (JSON), for a language switch
    job: gr.Dropdown               # the selected job (also restores it after a reload)
    remembered: gr.BrowserState     # the selected job id in this browser's localStorage
    table: gr.Dataframe
    status: gr.Markdown
    failure: gr.Markdown
    loss_plot: gr.LinePlot
    lr_plot: gr.LinePlot
    margin_plot: gr.LinePlot       # preference runs only (hidden for sft)
    accuracy_plot: gr.LinePlot
    log: gr.Textbox
    timer: gr.Timer
    seen: gr.Textbox               # what the last refresh showed, so an unchanged job sends nothing
    table_seen: gr.Textbox


# ---- devices ---------------------------------------------------------------------------------
def gpu_choices(gpus: list[dict], lang: str) -> tuple[list[tuple[str, object]], list]:
    """Choices and default value of the GPU picker: every detected GPU with its free memory, or the CPU."""
    if not gpus:
        return [(tr("train.cpu_only", lang), "cpu")], ["cpu"]
    choices = [(f"GPU {g['index']} · {g['name']} · {g['memory_free_mib'] / 1024:.1f} / "
                f"{g['memory_total_mib'] / 1024:.1f} GiB {tr('train.free', lang)}", g["index"]) for g in gpus]
    return choices, [g["index"] for g in gpus]


def refresh_gpus(gui, lang: str, chosen: list):
    """Inputs: language, current choice. Outputs: the GPU picker with fresh free-memory figures."""
    choices, default = gpu_choices(gui.gpus(), lang)
    keep = [c for c in chosen or [] if c in [v for _, v in choices]]
    return gr.update(choices=choices, value=keep or default)


# ---- actions ---------------------------------------------------------------------------------
def start_training(gui, lang: str, chosen_gpus: list, nproc, *values, where: str = train_where.LOCAL, **slurm):
    """Inputs: language, GPU choice, process count, every setting (where: this computer, or the Slurm
    cluster with `slurm` = partition, nodes, gpus_per_node, time_limit, requeue). Outputs: selected job
    id, message, timer. Problems are shown in words (naming the settings) instead of starting."""
    cfg, problems = fields.build_config(dict(zip(fields.NAMES, values)), gui.ws)
    if cfg is None:
        return gr.skip(), said_in_all(lambda code: problems_markdown(problems, code), lang), gr.skip()
    try:
        if where == train_where.SLURM:
            spec = launcher.LaunchSpec(executor="slurm", slurm=train_where.spec_from_page(gui, lang, nproc, **slurm))
        else:
            spec = launch_spec(chosen_gpus, nproc, lang)
        job = launcher.submit_train(gui.ws, cfg, spec, origin=trust.BROWSER,
                                    module=gui.train_module, name=cfg.run_name or job_name(gui, cfg.dataset))
    except InputError as e:
        def shown(code):  # in each language the page may switch to, naming that language's boxes
            return train_where.named_on_page(e.problems, code) if where == train_where.SLURM else e.problems
        return gr.skip(), said_in_all(lambda code: problems_markdown(shown(code), code), lang), gr.skip()
    except DanluError as e:
        return gr.skip(), said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang), gr.skip()
    return job.id, said_in_all(lambda code: f"▶ {tr('train.started', code)} `{job.id}`", lang), gr.Timer(active=True)


def start_on_cluster(gui, lang: str, nproc, partition, nodes, gpus_per_node, time_limit, requeue, *values):
    """Inputs: language, processes per node (CPU nodes), the Slurm settings, every setting. Outputs: as
    Start training. The job is submitted to the Slurm cluster (webui/tabs/train_where.py)."""
    return start_training(gui, lang, [], nproc, *values, where=train_where.SLURM, partition=partition, nodes=nodes,
                          gpus_per_node=gpus_per_node, time_limit=time_limit, requeue=bool(requeue))


def job_name(gui, dataset: str) -> str:
    """A name for the job table: the uploaded file's own name (the workspace keeps it under a generated
    one), else the file's name."""
    from core.data import list_datasets
    for info in list_datasets(gui.ws):
        paths = {info["original_path"], info["current_path"], info.get("training_path"),
                 *(p for v in info.get("versions", []) for p in (v["path"], v.get("train")))}
        if dataset in paths:
            return Path(info["display_name"]).stem
    return Path(dataset).stem


def stop_job(gui, lang: str, job_id: str | None) -> str:
    """Inputs: language, selected job. Outputs: message. A job that has logged a step saves a checkpoint,
    then ends as Cancelled; one still loading promises no checkpoint (it usually has none to save)."""
    if not job_id:
        return said_in_all(lambda code: tr("train.no_job", code), lang)
    try:
        job = launcher.cancel(gui.ws, job_id)
    except DanluError as e:
        return said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang)
    key = STOPPING[0] if (read_json(RunDir(job.run_dir).progress).get("step") or 0) > 0 else STOPPING[1]
    return said_in_all(lambda code: _stop_line(key, job.id, code), lang)


def _stop_line(key: str, job_id: str, lang: str) -> str:
    return f"■ {tr(key, lang)} `{job_id}`"


def stop_line_ended(gui, job_id: str | None, kept: str):
    """Outputs: the message line and its kept words (tr.said), emptied once the job whose Stop they say has
    ended (its status and failure box say how); else no change. "Stopping" stayed above a Cancelled job."""
    job = gui.live.job(job_id)
    if job is None or not job.terminal or said_again("en", kept) not in {_stop_line(k, job.id, "en") for k in STOPPING}:
        return gr.skip(), gr.skip()
    return "", ""


def resume_job(gui, lang: str, job_id: str | None):
    """Inputs: language, selected job. Outputs: the new job's id, message. Continues from the newest checkpoint."""
    return _next_job(gui, lang, job_id, lambda: launcher.resume(gui.ws, job_id), "train.resumed")


def retry_job(gui, lang: str, job_id: str | None):
    """Inputs: language, selected job. Outputs: the new job's id, message. A new run, in a run folder of its
    own, from the selected job's config.yaml (as `jobs retry ID`); settings changed on the page are Start
    training's."""
    return _next_job(gui, lang, job_id, lambda: launcher.retry(gui.ws, job_id, origin=trust.BROWSER,
                                                               module=gui.train_module), "train.retried")


def _next_job(gui, lang: str, job_id: str | None, start, started_key: str):
    """Resume's and Retry's answer: the job `start()` made and a message, or why it made none."""
    if not job_id:
        return gr.skip(), said_in_all(lambda code: tr("train.no_job", code), lang)
    try:
        job = start()
    except InputError as e:
        return gr.skip(), said_in_all(lambda code: problems_markdown(e.problems, code), lang)
    except DanluError as e:
        return gr.skip(), said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang)
    return job.id, said_in_all(lambda code: f"▶ {tr(started_key, code)} `{job.id}`", lang)


# ---- the job table ---------------------------------------------------------------------------
def _table(gui, lang: str) -> tuple[list[list], str]:
    """The table's rows and their signature, computed once per change for every open page (webui.live).
    A running job's step is refreshed every TABLE_STEP_S: the status line above counts every step, and
    sending the whole table to every page each second would cost more than it shows."""
    jobs = newest_attempts(gui.live.jobs())[:TABLE_LIMIT]  # a requeued Slurm job: its newest attempt
    tick = int(time.monotonic() // TABLE_STEP_S)
    key = tuple((j.id, j.state, tick if j.state in J.ACTIVE else None) for j in jobs)

    def compute():
        rows = [_row(gui, j, lang) for j in jobs]
        return rows, hashlib.blake2b(repr([lang] + rows).encode(), digest_size=12).hexdigest()
    return gui.live.memo(("table", lang, key), compute)


def _row(gui, job: J.Job, lang: str) -> list:
    if progress.waiting_for_machines(job):  # no step yet: torchrun starts the ranks once every machine joined
        step = tr("jobs.waiting_machines", lang)
    elif job.state in J.ACTIVE:
        step = _step_text(job)
    else:
        step = gui.live.memo(("step", job.id, job.state), lambda: "" if job.state == J.QUEUED else _ended_step_text(job))
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
    kind = tr("jobs.kind." + job.kind, lang) if has("jobs.kind." + job.kind) else job.kind  # a newer kind: its code
    return [job.id, job.name, kind, tr("state." + job.state, lang), step, created,
            train_where.where_text(job, lang)]


def _step_text(job: J.Job) -> str:
    p = read_json(RunDir(job.run_dir).progress)
    return f"{p['step']}/{p['total_steps']}" if p.get("step") and p.get("total_steps") else ""


def _ended_step_text(job: J.Job) -> str:
    """An ended job's step as its status says it: the run folder's progress.json is a later attempt's once
    another job continued the run (a resumed run's first job showed the resumed one's step)."""
    st = progress.status(job)
    return f"{st['step']}/{st['total_steps']}" if st.get("step") and st.get("total_steps") else ""


def job_choices(rows: list[list]) -> list[tuple[str, str]]:
    return [(f"{r[0]} · {r[1]} · {r[2]}", r[0]) for r in rows]


def refresh_jobs(gui, lang: str, job_id: str | None, sig: str):
    """Inputs: language, selected job, last table signature. Outputs: table, job picker, signature.
    Sends nothing when no job changed."""
    rows, new_sig = _table(gui, lang)
    if new_sig == sig:
        return gr.skip(), gr.skip(), gr.skip()
    table = pd.DataFrame(rows, columns=[tr("jobs." + c, lang) for c in TABLE_COLUMNS])
    # the picker's choices only, never its value: a poll that left before Start (or Resume, Retry) answered
    # wrote back the job it was sent, and the page went on showing that one (a cancelled job's line under
    # "Started job ..." for the whole run: the Chinese walk); nor can 10**30 sent to the API come back
    return table, gr.update(choices=job_choices(rows)), new_sig


def initial_job(gui, remembered: str | None):
    """Inputs: the job this browser looked at last. Outputs: job picker value and the remembered id.
    Falls back to the newest training job, so a fresh page re-attaches to the run in progress (webui.app's
    _load_jobs says why a job table cannot be read)."""
    try:
        if remembered and gui.store.get(remembered):
            return remembered, remembered
        jobs = gui.store.list(kind="train")
    except JobTableError:
        return gr.skip(), gr.skip()
    newest = jobs[0].id if jobs else None
    return newest, newest


def remember(job_id: str | None) -> str | None:
    """Inputs: the selected job. Outputs: the same id, kept in this browser's localStorage (an id of
    another type, sent to the API, is none: 10**30 could not even be sent back as JSON)."""
    return job_id if isinstance(job_id, str) else None


def select_row(evt: gr.SelectData):
    """Inputs: a click in the job table. Outputs: the job picker value. A row a direct call sent that is no
    row of the table (5: a TypeError, a 500) picks nothing."""
    row = evt.row_value
    return row[0] if isinstance(row, list) and row and isinstance(row[0], str) else gr.skip()


def refresh(gui, lang: str, job_id: str | None, seen: str, table_seen: str, kept: str = ""):
    """The Timer's one call: the job table, the selected job's live view (see refresh_job), then the
    message line, emptied when it says a Stop of that job and the job has ended (stop_line_ended); or why
    the job table cannot be read (table_trouble)."""
    try:
        job_id = train_where.requeued_as(gui, job_id, seen)  # a Slurm job that requeued itself: show its next attempt
        table, picker, table_sig = refresh_jobs(gui, lang, job_id, table_seen)
        return refresh_job(gui, job_id, seen, lang) + (table, picker, table_sig) + stop_line_ended(gui, job_id, kept)
    except JobTableError as e:
        return table_trouble(e, lang, seen) + (gr.skip(),) * 5  # the table keeps its rows, the line its words


# ---- one job's live view -----------------------------------------------------------------------
def refresh_job(gui, job_id: str | None, seen: str, lang: str):
    """Inputs: selected job, what was shown last, language. Outputs: status, failure box, log, loss plot,
    learning-rate plot, seen, Stop button, Resume button, reward-margin plot, preference-accuracy plot, Retry button. Sends only what changed since `seen`, and
    redraws the plots at most every PLOT_EVERY_S (the first points and the end at once). What is sent is
    read once per change for every open page (webui.live)."""
    job = gui.live.job(job_id)
    if job is None:
        empty = (tr("train.no_job_yet", lang), gr.update(value="", visible=False), "", *plot_frames([]), "none",
                 gr.update(interactive=False), gr.update(interactive=False), *pref_updates(None, None, lang),
                 gr.update(interactive=False))
        return empty if seen != "none" else (gr.skip(),) * 11
    run = RunDir(job.run_dir)
    metrics, log = file_stamp(run.metrics), file_stamp(run.stdout_log)
    ident = f"{job.id}|{job.state}|{lang}"
    sig = f"{ident}|{metrics}|{log}|{file_stamp(run.progress)}|{file_stamp(run.attempt(job.id))}"  # the last: a later job went on
    last_sig, plotted_size, plotted_at = _parse_seen(seen)
    if sig == last_sig and plotted_size == metrics[0]:
        return (gr.skip(),) * 11  # nothing new: the page keeps what it shows, `seen` included
    same_job = last_sig.startswith(f"{job.id}|")
    same_state = last_sig.startswith(ident + "|")
    status, failure, continued = gui.live.memo(("status", sig), lambda: _status_texts(job, lang))
    log_out = gr.skip() if same_state and last_sig.split("|")[4] == str(log) else \
        gui.live.memo(("log", job.id, job.nproc, log), lambda: log_text(job))
    now = time.time()
    plot_due = plotted_size != metrics[0] and (
        not same_job or plotted_size <= 0 or job.terminal or now - plotted_at >= PLOT_EVERY_S)
    if plot_due:
        loss_df, lr_df, margin_df, acc_df = gui.live.memo(("plots", job.id, metrics), lambda: all_frames(run.path))
        margin_out, acc_out = pref_updates(margin_df, acc_df, lang)
        plotted_size, plotted_at = metrics[0], now
    else:
        loss_df = lr_df = margin_out = acc_out = gr.skip()
    if same_state:  # the failure box and the buttons follow the state alone
        failure_out = stop_out = resume_out = retry_out = gr.skip()
    else:
        failure_out = gr.update(value=failure or "", visible=failure is not None, elem_classes=box_classes(job.state))
        stop_out = gr.update(interactive=job.state in (J.QUEUED, *J.ACTIVE))
        resume_out = gr.update(interactive=job.kind == "train" and job.state in launcher.RESUMABLE and not continued)
        retry_out = gr.update(interactive=job.kind == "train" and job.terminal)
    return (status, failure_out, log_out, loss_df, lr_df, f"{sig}#{plotted_size}#{plotted_at:.3f}", stop_out, resume_out,
            margin_out, acc_out, retry_out)


def _status_texts(job: J.Job, lang: str) -> tuple[str, str | None, bool]:
    """The status line, the failure box's text (None: hidden) and whether a later job continued the run."""
    st = progress.status(job)
    return status_markdown(st, lang), failure_text(st, lang), st["continued"]


def _parse_seen(seen: str) -> tuple[str, int, float]:
    """'signature#plotted metrics size#plotted time' -> parts; anything else means nothing was shown."""
    parts = (seen or "").rsplit("#", 2)
    if len(parts) != 3:
        return "", -2, 0.0
    try:
        return parts[0], int(parts[1]), float(parts[2])
    except ValueError:
        return "", -2, 0.0


def log_text(job: J.Job) -> str:
    text = progress.log_tail(job, max_bytes=40_000)
    if job.nproc == 1:
        text = text.replace("[default0]:", "")  # one process: the rank prefix is noise
    return "\n".join(text.splitlines()[-LOG_LINES:])


TABLE_COLUMNS = ["job", "name", "kind", "state", "step", "created", "where"]


# ---- layout ----------------------------------------------------------------------------------
def build(gui) -> TrainTab:
    choices, value = gpu_choices(gui.gpus(), "en")
    with gr.Row():
        gpus = gr.CheckboxGroup(choices=choices, value=value, label=L("train.gpus"), info=L("train.gpus_help"),
                                interactive=bool(gui.gpus()), elem_id="train-gpus", scale=3)
        nproc = numbers.Number(value=1, precision=0, label=L("train.nproc"), info=L("train.nproc_help"),
                               minimum=1, maximum=64, elem_id="train-nproc", scale=1, visible=not gui.gpus())
    where = train_where.build(gui)
    with gr.Row():
        start = gr.Button(L("train.start"), variant="primary", elem_id="train-start", scale=2)
        where.start = gr.Button(L("slurm.start"), variant="primary", elem_id="train-slurm-start", scale=2, visible=False)
        stop = gr.Button(L("train.stop"), variant="stop", elem_id="train-stop", interactive=False, scale=1)
        resume = gr.Button(L("train.resume"), elem_id="train-resume", interactive=False, scale=1)
        retry = gr.Button(L("train.retry"), elem_id="train-retry", interactive=False, scale=1)
    message = gr.Markdown(elem_id="train-message")
    said = gr.Textbox("", visible=False, label="said", elem_id="train-said")  # hidden: see `seen` below
    with gr.Row():
        job = gr.Dropdown(choices=[], value=None, label=L("train.job"), info=L("train.job_help"),
                          allow_custom_value=True, elem_id="train-job", scale=3)
    status = gr.Markdown(L("train.no_job_yet"), elem_id="train-status")
    failure = gr.Markdown(visible=False, elem_id="train-failure", elem_classes=["failure"])
    with gr.Row(equal_height=True):
        colors = {SERIES_TRAIN: "#ea580c", SERIES_EVAL: "#2563eb"}
        # the legend would be cut off below the plot; the label names the colours instead
        loss_plot = gr.LinePlot(x="step", y="loss", color="series", color_map=colors, colors_in_legend=[],
                                label=L("train.loss_plot"), x_title=L("axis.step"),
                                y_title=L("axis.loss"), height=320, elem_id="train-loss-plot", scale=3, **AXIS_FORMATS)
        lr_plot = gr.LinePlot(x="step", y="learning_rate", label=L("train.lr_plot"), x_title=L("axis.step"),
                              y_title=L("axis.learning_rate"), height=320, elem_id="train-lr-plot", scale=2,
                              **AXIS_FORMATS)
    with gr.Row(equal_height=True):  # preference runs (dpo, orpo) only: refresh_job shows them
        margin_plot = gr.LinePlot(x="step", y="reward_margin", color="series", color_map=colors, colors_in_legend=[],
                                  label=L("train.margin_plot"), x_title=L("axis.step"), y_title=L("axis.reward_margin"), height=320,
                                  elem_id="train-margin-plot", visible=False, **AXIS_FORMATS)
        accuracy_plot = gr.LinePlot(x="step", y="pref_accuracy", color="series", color_map=colors, colors_in_legend=[],
                                    label=L("train.accuracy_plot"), x_title=L("axis.step"), y_title=L("axis.pref_accuracy"),
                                    y_lim=[0, 1], height=320, elem_id="train-accuracy-plot", visible=False, **AXIS_FORMATS)
    log = gr.Textbox(label=L("train.log"), lines=12, max_lines=12, autoscroll=True, interactive=False,
                     elem_id="train-log", elem_classes=["log"])
    table = gr.Dataframe(value=pd.DataFrame(columns=[tr("jobs." + c, "en") for c in TABLE_COLUMNS]), label=L("train.jobs"),
                         interactive=False, wrap=False, elem_id="train-jobs", max_height=320)
    remembered = gr.BrowserState(None, storage_key="danlu-train-job", secret="danlu-job-ids-are-not-secret")
    timer = gr.Timer(POLL_S, active=False)
    # Hidden textboxes, not gr.State: any gr.State makes every page hold a heartbeat stream open, and a
    # browser allows only six connections per host, so a seventh tab of the app would never load.
    seen = gr.Textbox("", visible=False, label="shown", elem_id="train-seen")
    table_seen = gr.Textbox("", visible=False, label="table shown", elem_id="train-table-seen")
    return TrainTab(table_seen=table_seen, gpus=gpus, nproc=nproc, where=where, start=start, stop=stop, resume=resume, retry=retry, message=message, said=said, job=job,
                    remembered=remembered, table=table, status=status, failure=failure, loss_plot=loss_plot,
                    lr_plot=lr_plot, margin_plot=margin_plot, accuracy_plot=accuracy_plot, log=log, timer=timer,
                    seen=seen)
