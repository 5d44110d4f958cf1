"""How an attempt of a Slurm job ended, in Danlu's states and words, from what Slurm says and what
the attempt left in the run folder. Pure: the facts are gathered by core.slurm.executor.

The run's own files come first (they are the truth for the result): result.json -> Succeeded. Then
what Danlu asked for (Stop -> Cancelled), then what the batch script recorded (slurm/ID.attempt-N.end.json:
the time limit, a folder the nodes could not see), then Slurm's own word for the job (TIMEOUT,
PREEMPTED, NODE_FAIL, OUT_OF_MEMORY, CANCELLED by someone else), and last the log, read by
core.diagnose like a local job's, which names the rank that failed first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from core import diagnose
from core import jobs as J
from core.messages import Msg, recorded, said

# Slurm job states in which the job still holds (or waits for) its nodes
WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
STARTING = {"CONFIGURING"}
RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "SUSPENDED", "STOPPED"}
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
         "OUT_OF_MEMORY", "REVOKED"}


@dataclass
class AttemptFacts:
    """Everything known about attempt `attempt` of a Slurm job (files of that attempt, Slurm's view now)."""
    attempt: int
    slurm_job_id: str
    slurm_state: str = ""          # "" when Slurm no longer knows the job (it forgets ended jobs after MinJobAge)
    slurm_restarts: int = -1       # how often Slurm has requeued it; -1 unknown
    slurm_reason: str = ""
    time_limit: str = ""
    started: dict = field(default_factory=dict)   # slurm/attempt-N.json
    ended: dict = field(default_factory=dict)     # slurm/attempt-N.end.json
    result: dict = field(default_factory=dict)
    stopped: dict = field(default_factory=dict)
    cancel_requested: bool = False
    log_text: str = ""
    nproc: int = 1
    run_dir: Path | None = None    # this attempt's files (errors/), for core.diagnose
    checkpoint_saved: bool = False  # the run folder holds a complete checkpoint (Resume continues from it)

    @property
    def requeued(self) -> bool:
        """A later attempt follows: the script asked for it, or Slurm requeued the job itself."""
        return self.ended.get("requeue") == 1 or self.slurm_restarts > self.attempt

    @property
    def over(self) -> bool:
        """Nothing of this attempt runs any more (a recorded end alone is not enough: srun may be closing)."""
        if self.slurm_restarts > self.attempt:
            return True
        return self.slurm_state == "" or self.slurm_state in ENDED or (
            bool(self.ended) and self.slurm_state in WAITING)


# slurmstepd's line in the job's output when Slurm itself ends a job or step: "*** JOB 12 ON vm CANCELLED
# AT 2026-12-04T23:19:51 DUE TO PREEMPTION ***" (a plain scancel names no cause)
KILLED_RE = re.compile(r"\*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT \S+ DUE TO (PREEMPTION|TIME LIMIT|NODE FAILURE|JOB REQUEUE)")
KILLED = {"PREEMPTION": "preempted", "TIME LIMIT": "time_limit", "NODE FAILURE": "node_fail", "JOB REQUEUE": "requeued"}


def killed_for(log_text: str) -> str:
    """Why Slurm says it ended this attempt, in its own line in the log ("preempted", "time_limit",
    "node_fail", "requeued"), or "": the word that is left once Slurm has forgotten the job (no accounting)."""
    m = KILLED_RE.search(log_text or "")
    return KILLED[m.group(1)] if m else ""


def resume_hint(f: AttemptFacts) -> Msg:
    """As a local run's (core.diagnose), from what the attempt left: a complete checkpoint in the run
    folder, or the step the stop said it saved."""
    return diagnose.resume_hint_for(bool(f.checkpoint_saved or f.stopped.get("checkpoint_step")))


def saved_words(f: AttemptFacts) -> Msg | str:
    step = f.stopped.get("checkpoint_step")
    return Msg("cluster.saved", step=step) if step else ""


def outcome(f: AttemptFacts) -> tuple[str, dict]:
    """(final state, {reason, message, hint (English and codes, core.messages.said)[, rank, log_tail]})
    of an attempt that is over."""
    if f.result.get("status") == "succeeded":
        return J.SUCCEEDED, dict(reason="", **said(Msg("end.finished_after_stop" if f.cancel_requested else "end.finished")))
    if f.cancel_requested:
        return J.CANCELLED, dict(reason="cancelled", **said(Msg("cluster.cancelled", saved=saved_words(f)), resume_hint(f)))
    stop, killed = f.ended.get("stop", ""), killed_for(f.log_text)
    then = Msg("cluster.requeued_then") if f.requeued else ""
    if stop == "time_limit" or f.slurm_state in ("TIMEOUT", "DEADLINE") or killed == "time_limit":
        limit = f" ({f.time_limit})" if f.time_limit else ""
        return J.INTERRUPTED, dict(reason="time_limit", **said(Msg("cluster.time_limit", limit=limit, saved=saved_words(f),
                                                                   then=then),
                                                               None if f.requeued else Msg("cluster.time_limit.hint")))
    if stop == "not_shared":
        return J.FAILED, dict(reason="not_shared", **said(Msg("cluster.not_shared"), Msg("cluster.not_shared.hint")))
    if stop == "prepare_failed":
        return J.FAILED, dict(reason="start_failed", **said(Msg("cluster.prepare_failed"), Msg("cluster.prepare_failed.hint")))
    if killed == "requeued" and stop != "preempted":  # `scontrol requeue` from a shell: the batch shell took it for a scancel
        return J.INTERRUPTED, dict(reason="requeued", **said(Msg("cluster.requeued_elsewhere", saved=saved_words(f), then=then),
                                                             None if f.requeued else resume_hint(f)))
    if f.slurm_state == "PREEMPTED" or "preempted" in (stop, killed) or (f.requeued and not f.ended) or \
            (f.stopped and f.requeued):
        return J.INTERRUPTED, dict(reason="preempted", **said(Msg("cluster.preempted", saved=saved_words(f), then=then),
                                                              None if f.requeued else resume_hint(f)))
    if f.slurm_state in ("NODE_FAIL", "BOOT_FAIL") or killed == "node_fail":  # the batch shell may have heard SIGTERM
        state = f.slurm_state if f.slurm_state in ("NODE_FAIL", "BOOT_FAIL") else "NODE_FAIL"
        return J.INTERRUPTED, dict(reason="node_fail", **said(Msg("cluster.node_fail", state=state, then=then),
                                                              None if f.requeued else resume_hint(f)))
    if stop == "outside":  # a plain scancel (not a preemption, which requeues or says PREEMPTED: above)
        return J.CANCELLED, dict(reason="cancelled", **said(Msg("cluster.cancelled_elsewhere"), resume_hint(f)))
    if f.slurm_state == "OUT_OF_MEMORY":
        return J.FAILED, dict(reason="killed", **said(Msg("cluster.oom"), Msg("cluster.oom.hint")))
    if f.stopped:
        return J.INTERRUPTED, dict(reason="interrupted", **said(Msg("cluster.outside_signal", saved=saved_words(f)),
                                                                resume_hint(f)))
    if f.slurm_state == "CANCELLED" and not f.ended:
        return J.CANCELLED, dict(reason="cancelled", **said(Msg("cluster.cancelled_elsewhere"), resume_hint(f)))
    if f.started and not f.ended and not f.slurm_state:
        # Slurm has forgotten it (no accounting) and its batch shell, which records every end of the
        # training itself, was killed first: the job was taken away from outside, not a failure of the run
        return J.INTERRUPTED, dict(reason="interrupted", **said(Msg("cluster.vanished", saved=saved_words(f)),
                                                                resume_hint(f)))
    if not f.started and not f.slurm_state and not f.log_text.strip():
        # Slurm has forgotten a job (no accounting) that never reached a node: no start record and not a
        # line of output (slurmstepd makes the log as the batch script starts, in a folder Danlu checked
        # the nodes see before submitting). A waiting job leaves the queue that way when it is scancelled
        return J.CANCELLED, dict(reason="cancelled", **said(Msg("cluster.cancelled_waiting"), resume_hint(f)))
    return J.FAILED, failure(f)


def failure(f: AttemptFacts) -> dict:
    if not f.started:
        state = f.slurm_state or Msg("cluster.state_forgotten")
        return dict(reason="start_failed", **said(Msg("cluster.start_failed", id=f.slurm_job_id, state=state),
                                                  Msg("cluster.start_failed.hint", id=f.slurm_job_id)))
    rc = f.ended.get("returncode")
    if not f.ended:
        rc = None
    info = diagnose.explain(f.run_dir or Path("."), rc, f.log_text, nproc=f.nproc)
    if not f.ended and f.slurm_state:
        slurm = f.slurm_state + (", " + f.slurm_reason if f.slurm_reason else "")
        info.update(said(Msg("cluster.with_state", message=recorded(info, "message"), slurm=slurm), recorded(info, "hint")))
    return info


def attempt_log(text: str, slurm_job_id: str, attempt: int) -> str:
    """This attempt's part of the appended stdout.log: from its own start line to the next attempt's."""
    mark = f"[danlu] Slurm job {slurm_job_id}, attempt {attempt},"
    start = text.rfind(mark)
    if start < 0:
        return text
    nxt = text.find(f"[danlu] Slurm job {slurm_job_id}, attempt {attempt + 1},", start)
    return text[start:nxt if nxt >= 0 else len(text)]
