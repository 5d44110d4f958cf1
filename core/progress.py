"""Read a run directory for display: metrics, progress with ETA, log tail, failure details.

Everything here reads files the recipe and supervisor wrote, so it works the same after a page
reload or a server restart. Reads are incremental where it matters (the log tail seeks from the end).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from core import jobs as J
from core.diagnose import read_from
from core.executors import executor_for
from core.launch_commands import join_minutes, nodes_of
from core.messages import Msg
from core.rundir import RunDir, read_json, read_jsonl

WAITING = "waiting_for_machines"  # the phase of a job on several machines before torchrun starts its ranks


NUMBERS = ("epoch", "loss", "eval_loss", "lr", "grad_norm", "tokens_per_s", "time", "wall", "reward_margin",
           "pref_accuracy", "eval_reward_margin", "eval_pref_accuracy")


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every complete line of metrics.jsonl (a line being written right now is skipped) that is a record of a
    step: its step a whole number, its values numbers. Another line (a file edited or overwritten by hand) is
    skipped: the status, `jobs list` and the plots did arithmetic with it and failed for every job."""
    return [r for r in read_jsonl(RunDir(run_dir).metrics) if _whole(r.get("step"))
            and all(r.get(k) is None or _number(r[k]) for k in NUMBERS)]


ERROR_FIELDS = dict(reason=str, message=str, hint=str, message_msg=dict, hint_msg=dict, rank=int, log_tail=str)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _step_info(data: dict) -> dict:
    """progress.json's or run_info.json's step, total_steps and phase, each only when it has its type."""
    return {k: v for k, v in data.items() if (k in ("step", "total_steps") and _whole(v))
            or (k == "phase" and isinstance(v, str))}


def split_metrics(records: list[dict]) -> tuple[list[dict], list[dict]]:
    train = [r for r in records if r.get("loss") is not None or r.get("nonfinite")]
    evals = [r for r in records if r.get("eval_loss") is not None]
    return train, evals


def seconds_between(first: dict, last: dict) -> float:
    """Seconds between two metrics lines: on their wall clocks (1 ms) when both have one, else on
    "time" since the start (10 ms, older runs). Two quick steps can fall inside one tick: 0."""
    key = "wall" if "wall" in first and "wall" in last else "time"
    return last[key] - first[key]


def log_tail(job: J.Job, max_bytes: int = 20_000) -> str:
    """The end of the job's log (its executor's: stdout.log for a local job), whole lines only."""
    return read_from(executor_for(job).logs(job), 0, max_bytes, whole_lines=True)


def status(job: J.Job) -> dict:
    """State, progress, ETA and the last metrics of a job, in one dict (jobs show --json, GUI status line)."""
    run = RunDir(job.run_dir)
    # a resumed job's own files moved to attempts/<its id>/ when the next attempt started
    own = run.attempt(job.id)
    continued = own.is_dir()
    files = RunDir(own if continued else run.path)
    records = read_metrics(run.path)
    # progress.json goes on with the attempt that continued the run: this job's own step is where it stopped
    prog = _step_info(read_json(files.stopped) if continued else read_json(run.progress))
    if continued and job.ended_at:  # the run's curve goes on with the job that continued it: this one's ends here
        later = next((i for i, r in enumerate(records) if r.get("wall", 0) > job.ended_at), len(records))
        records = records[:later]  # lines are in order; validation lines carry no wall clock
    if continued and prog.get("step"):  # nor past its stop: an end noticed late (a Slurm job's, a requeue's)
        records = [r for r in records if r.get("step", 0) <= prog["step"]]  # or a node's clock behind this one's
    train, evals = split_metrics(records)
    info = _step_info(read_json(run.run_info))
    total = prog.get("total_steps") or info.get("total_steps")
    # a resumed attempt that is still loading has trained nothing yet: the run's last line is an earlier
    # attempt's (its step and speed made a wrong "step 15/60, about 27 s left" for a run resumed at 19)
    loading = prog.get("phase") == "loading"
    step = prog.get("step") or (train[-1]["step"] if train and not loading else 0)
    waiting = waiting_for_machines(job)
    eta = None
    mine = latest_attempt(train)
    if job.state == J.RUNNING and not waiting and mine and total and step:
        first = mine[0]
        span_steps = step - first["step"]
        span_time = seconds_between(first, train[-1])
        if span_steps > 0 and span_time > 0:
            eta = span_time / span_steps * (total - step)
    out = dict(
        id=job.id, kind=job.kind, name=job.name, state=job.state.lower(), state_word=J.STATE_WORDS[job.state],
        run_dir=str(run.path), reason=job.reason, message=job.message, hint=job.hint, exit_code=job.exit_code,
        message_msg=_json_or_none(job.message_msg), hint_msg=_json_or_none(job.hint_msg),
        created_at=job.created_at, started_at=job.started_at, ended_at=job.ended_at, gpus=job.gpu_list,
        nproc=job.nproc, parent_id=job.parent_id, executor=job.executor, phase=WAITING if waiting else prog.get("phase"),
        step=step, total_steps=total, nodes=nodes_of(job.argv_list) if job.executor == "local" else None,
        eta_s=round(eta, 1) if eta is not None else None,
        last_metrics=train[-1] if train else None, last_eval=evals[-1] if evals else None,
        result=read_json(files.result) or None,
    )
    if job.executor == "slurm":
        from core.slurm.executor import attempt_nodes, attempts
        out.update(slurm_job_id=job.slurm_job_id, slurm_nodes=attempt_nodes(job), attempts=attempts(run.path))
    if job.state == J.FAILED:
        err = read_json(files.error)
        out["error"] = {k: err[k] for k, kind in ERROR_FIELDS.items() if isinstance(err.get(k), kind)
                        and not isinstance(err[k], bool)}  # of its type: a file written by hand is no record
    if continued:  # what it said to do ("press Resume") was done: a later job went on with the run
        later = read_json(run.heartbeat).get("job_id") or read_json(run.exit).get("job_id")
        done = Msg("job.continued_by.hint", id=later) if later and later != job.id else Msg("job.continued_later.hint")
        for part in (out, out.get("error") or {}):
            part.update(hint=str(done), hint_msg=done.to_dict())
    out["continued"] = continued
    return out


def latest_attempt(train: list[dict]) -> list[dict]:
    """The lines of the newest attempt: "time" counts from each attempt's start, so it goes back where a
    resume began. Its speed alone gives the time left: the pause between two attempts (a day, perhaps)
    made it far too long. Clock-free, so a compute node's clock that differs from this one's is no matter."""
    start = next((i for i in range(len(train) - 1, 0, -1) if train[i].get("time", 0) < train[i - 1].get("time", 0)), 0)
    return train[start:]


def waiting_for_machines(job: J.Job) -> bool:
    """A job on several machines waits at torchrun's rendezvous: its agent runs here but has started no
    rank on this machine yet (torchrun starts them only once every machine has joined; the supervisor's
    heartbeat lists the ranks it found). How many machines joined is not known here: machine 0 counts
    them and says so only when it gives up (core.diagnose)."""
    if job.state != J.RUNNING or job.executor != "local" or nodes_of(job.argv_list) is None:
        return False
    return not read_json(RunDir(job.run_dir).heartbeat).get("ranks")


def waiting_words(st: dict) -> tuple[Msg, Msg] | None:
    """What a status says while its job waits for the other machines, and what to do if that takes long."""
    n = st.get("nodes")
    if st.get("phase") != WAITING or not n:
        return None
    return (Msg("job.waiting_machines", master=n["master"], nnodes=n["nnodes"], node_rank=n["node_rank"]),
            Msg("job.waiting_machines.hint", master=n["master"], last=n["nnodes"] - 1, minutes=join_minutes(n)))


def _json_or_none(text: str):
    """A message's code as the job table keeps it (JSON), or None (a row of an older Danlu)."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def status_line(st: dict) -> str:
    """One human line: 'Running: step 40/140 (29%), loss 1.23, about 20 s left'."""
    word = st["state_word"]
    parts = [word]
    waiting = waiting_words(st)
    if waiting:
        parts.append(str(waiting[0]))
    elif st.get("step") and st.get("total_steps"):
        pct = 100 * st["step"] / st["total_steps"]
        parts.append(f"step {st['step']}/{st['total_steps']} ({pct:.0f}%)")
    elif st["state"] == "running" and st.get("phase") in (None, "loading"):
        parts.append("loading the model and data")
    lm = st.get("last_metrics")
    if lm and lm.get("loss") is not None:
        parts.append(f"loss {lm['loss']:.4f}")
    le = st.get("last_eval")
    if le:
        parts.append(f"validation loss {le['eval_loss']:.4f}")
    if st.get("eta_s") is not None:
        parts.append(f"about {fmt_duration(st['eta_s'])} left")
    if (st["state"] in ("failed", "interrupted", "cancelled") or adapter_elsewhere(st)) and st.get("message"):
        parts.append(st["message"])
    if st.get("executor") == "slurm":
        where = f"Slurm job {st.get('slurm_job_id') or '(not submitted)'}"
        if st["state"] == "queued" and st.get("message"):
            where += f": {st['message']}"
        parts.append(where + (f" on {st['slurm_nodes']}" if st.get("slurm_nodes") and st["state"] != "queued" else ""))
    return ", ".join(parts)


def adapter_elsewhere(st: dict) -> bool:
    """Machine 1, 2, ... of a finished job on several machines: its message says machine 0 has the adapter."""
    return st["state"] == "succeeded" and bool((st.get("result") or {}).get("adapter_on_machine_0"))


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
