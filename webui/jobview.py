"""How a job is shown in words, shared by the Train, Evaluate and Export tabs: the status line with
progress and time left, and the reason and what to do when it ended badly. Reads only what
core.progress.status(job) returns."""
from __future__ import annotations

import hashlib

import gradio as gr

from core import jobs as J
from core import progress
from core.job_table_file import JobTableError
from core.messages import Msg
from core.rundir import RunDir, read_json
from webui.i18n import duration, error_text, has, recorded_text, said_in_all, say, tr


def finished_runs(gui) -> list[tuple[str, str]]:
    """(label, job id) of every training job that succeeded, newest first: what can be evaluated, exported
    or chatted with; not machine 1, 2, ... of a job on several machines (machine 0 keeps the adapter)."""
    return [(f"{j.name} · {j.id}", j.id) for j in gui.store.list(states=[J.SUCCEEDED], kind="train")
            if not read_json(RunDir(j.run_dir).result).get("adapter_on_machine_0")]


def refresh_new_runs(gui, lang: str, run: str | None, status: str | None, seen: str | None):
    """Inputs: language, the chosen run, the tab's status line, `seen` the newest run the tab's picker
    listed last time (None: not yet on this page). The picker lists every finished training run
    (finished_runs); a run finished since `seen` is chosen, else the chosen one is kept: the picker kept
    the run that was newest when the server started, and a Korean newcomer evaluated and exported that
    older run after training a new one (a walk in Korean). Outputs: picker, status line
    (with_table_status), the newest run."""
    newest = []

    def picker():
        choices = finished_runs(gui)
        ids = [v for _, v in choices]
        newest.append(ids[0] if ids else None)
        return gr.update(choices=choices, value=run if run in ids and ids[0] == seen else newest[0])
    return (*with_table_status(gui, lang, status, picker, 1), newest[0] if newest else gr.skip())


def with_table_status(gui, lang: str, status, read, outputs: int):
    """read()'s `outputs` outputs, then a tab's status line: a handler that reads the job table beside a line
    (Evaluate, Export, Chat, Hyperparams). When the table cannot be read, the line says why in the Train tab's
    words (trouble_text) and read's outputs are left as they are (the pickers keep their runs: the page stays
    usable); it failed without a word. After a good reading, a line that said so (it names the table's file)
    is emptied, any other kept."""
    try:
        out = read()
    except JobTableError as e:
        return (gr.skip(),) * outputs + (trouble_said(e, lang),)
    said_trouble = isinstance(status, str) and str(gui.store.db_path) in status
    return (*(out if outputs > 1 else (out,)), "" if said_trouble else gr.skip())


def job_status(gui, job_id: str | None, lang: str) -> tuple[str, object, J.Job | None]:
    """(status line, failure box update, job) for any job id; empty when there is none. The status line
    is said in every language (i18n.Said): after a language switch it is shown again in the new one."""
    job = gui.store.get(job_id) if job_id else None
    if job is None:
        return "", gr.update(value="", visible=False), None
    st = progress.status(job)
    return said_in_all(lambda code: status_markdown(st, code), lang), failure_update(st, lang), job


def failure_again(gui, lang: str, job_id: str | None):
    """A language switch's answer for a tab's failure box (Evaluate, Export): why its job ended badly,
    in `lang`; no change when no job is shown."""
    job = gui.store.get(job_id) if job_id else None
    return gr.skip() if job is None else failure_update(progress.status(job), lang)


def status_markdown(st: dict, lang: str) -> str:
    """'Running · step 40/140 (29%) · loss 1.2345 · validation loss 1.3 · time left: about 20 s'."""
    parts = [f"**{tr('state.' + st['state'].upper(), lang)}**", f"`{st['id']}`"]
    waiting = progress.waiting_words(st)
    if waiting:  # a job on several machines, before torchrun has started its ranks here
        parts.append(say(waiting[0], lang))
    elif st.get("step") and st.get("total_steps"):
        pct = 100 * st["step"] / st["total_steps"]
        parts.append(f"{tr('st.step', lang)} {st['step']}/{st['total_steps']} ({pct:.0f}%)")
    elif st["state"] in ("running", "starting") and st.get("phase") in (None, "loading"):
        parts.append(tr("st.loading", lang))
    elif st["state"] == "queued" and st.get("executor") == "slurm":
        parts.append(recorded_text(st, "message", lang) or tr("slurm.waiting", lang))  # Slurm's reason, in words
    elif st["state"] == "queued":  # a CPU job waits for a job on this computer, not for GPUs it has none of
        parts.append(tr("st.queued_cpu" if "cpu" in (st.get("gpus") or []) else "st.queued", lang))
    if st.get("kind") != "train" and st.get("phase") and st["state"] == "running":
        phase = str(st["phase"])  # eval and merge name their phase (generating, saving, ...)
        parts.append(tr("phase." + phase, lang) if has("phase." + phase) else phase)
    lm, le = st.get("last_metrics"), st.get("last_eval")
    if lm and lm.get("loss") is not None:
        parts.append(f"{tr('st.loss', lang)} {lm['loss']:.4f}")
    if le:
        parts.append(f"{tr('st.eval_loss', lang)} {le['eval_loss']:.4f}")
    if st.get("eta_s") is not None:
        parts.append(f"{tr('st.eta', lang)} {duration(st['eta_s'], lang)}")
    if st.get("executor") == "slurm" and st.get("slurm_job_id"):
        parts.append(f"Slurm {st['slurm_job_id']}" + (f" · {st['slurm_nodes']}" if st.get("slurm_nodes") else ""))
    runtime = (st.get("result") or {}).get("runtime_s")
    if st["state"] == "succeeded" and runtime is not None:
        parts.append(f"{tr('st.took', lang)} {duration(runtime, lang)}")
    if progress.adapter_elsewhere(st):
        parts.append(recorded_text(st, "message", lang))
    what_to_do = f"\n\n**{tr('train.what_to_do', lang)}** {say(waiting[1], lang)}" if waiting else ""
    return " · ".join(parts) + what_to_do


def failure_update(st: dict, lang: str):
    """The reason and what to do, in words, above the log; hidden unless the job ended badly."""
    text = failure_text(st, lang)
    return gr.update(value=text or "", visible=text is not None, elem_classes=box_classes(st["state"]))


def box_classes(state: str) -> list[str]:
    """The box's look: red for a failure only; a job stopped by its person (or interrupted, then resumable)
    is no failure, and was drawn as one (a browser walk)."""
    return ["failure"] if str(state).lower() == "failed" else ["failure", "calm"]


def reason_words(reason: str, lang: str) -> str:
    """A failure's reason code in words; a code without words is shown as it is."""
    return tr("reason." + reason, lang) if has("reason." + reason) else reason


def failure_text(st: dict, lang: str) -> str | None:
    """failure_update's text, or None when the job did not end badly."""
    if st["state"] not in ("failed", "interrupted", "cancelled"):
        return None
    err = st.get("error") or {}
    reason = err.get("reason") or st.get("reason") or ""
    message = recorded_text(err, "message", lang) or recorded_text(st, "message", lang)  # error.json's words, else the job table's
    if reason == "cancelled" and message == say(Msg("end.cancelled"), lang):
        message = ""  # the reason already says it: "Cancelled — stopped by you" then "Cancelled by the user." (a browser walk)
    hint = recorded_text(err, "hint", lang) or recorded_text(st, "hint", lang)
    icon = "✕" if st["state"] == "failed" else "‖"
    text = f"{icon} **{tr('state.' + st['state'].upper(), lang)}**" + (f" — {reason_words(reason, lang)}" if reason else "")
    if message:
        text += f"\n\n{message}"
    if hint:
        text += f"\n\n**{tr('train.what_to_do', lang)}** {hint}"
    return text


def trouble_text(e, lang: str) -> str:
    """A job table that cannot be read (core.job_table_file.JobTableError), in words: what, where, what to do."""
    return f"⚠ {error_text(e, lang)}"


def trouble_said(e, lang: str):
    """trouble_text in every language (i18n.Said): a tab's status line, said again after a language switch."""
    return said_in_all(lambda code: trouble_text(e, code), lang)


def table_trouble(e, lang: str, seen: str) -> tuple:
    """The Train tab's refresh_job outputs when the job table cannot be read (locked, damaged, read-only, gone): the status
    line says what happened, where, and what to do; the table keeps what it showed. `seen` marks the words
    shown, so an unchanged trouble sends nothing and the next good reading redraws everything."""
    text = trouble_text(e, lang)
    mark = "!" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    if seen == mark:
        return (gr.skip(),) * 11
    off = gr.update(interactive=False)  # Stop, Resume and Retry need the table too
    return (text, gr.update(value="", visible=False), gr.skip(), gr.skip(), gr.skip(), mark, off, off,
            gr.skip(), gr.skip(), off)
