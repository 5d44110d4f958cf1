"""How an attempt of a Slurm job ended, in Danlu's states and words, from what Slurm says and what
the attempt left in the run folder. Pure: the facts are gathered by core.slurm.executor.

The run's own files come first (they are the truth for the result): result.json -> Succeeded. Then
what Danlu asked for (Stop -> Cancelled), then what the batch script recorded (slurm/ID.attempt-N.end.json:
the time limit, a folder the nodes could not see), then Slurm's own word for the job (TIMEOUT,
PREEMPTED, NODE_FAIL, OUT_OF_MEMORY, CANCELLED by someone else), and last the log, read by
core.diagnose like a local job's, which names the rank that failed first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core import diagnose
from core import jobs as J

# Slurm job states in which the job still holds (or waits for) its nodes
WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
STARTING = {"CONFIGURING"}
RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "SUSPENDED", "STOPPED"}
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
         "OUT_OF_MEMORY", "REVOKED"}
RESUME_HINT = "Press Resume to continue from the last checkpoint."


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


def saved_words(f: AttemptFacts) -> str:
    step = f.stopped.get("checkpoint_step")
    return f" It saved a checkpoint at step {step} first." if step else ""


def outcome(f: AttemptFacts) -> tuple[str, dict]:
    """(final state, {reason, message, hint[, rank, log_tail]}) of an attempt that is over."""
    if f.result.get("status") == "succeeded":
        note = " It had completed before the stop request took effect." if f.cancel_requested else ""
        return J.SUCCEEDED, dict(reason="", message="Finished." + note, hint="")
    if f.cancel_requested:
        return J.CANCELLED, dict(reason="cancelled", message="Cancelled by the user." + saved_words(f), hint=RESUME_HINT)
    stop = f.ended.get("stop", "")
    then = (f" Slurm requeued it: the next attempt continues from that checkpoint by itself." if f.requeued
            else "")
    if stop == "time_limit" or f.slurm_state == "TIMEOUT" or f.slurm_state == "DEADLINE":
        limit = f" ({f.time_limit})" if f.time_limit else ""
        return J.INTERRUPTED, dict(reason="time_limit", message=f"The job reached its time limit on the cluster{limit}."
                                   + saved_words(f) + then,
                                   hint="" if f.requeued else "Press Resume to continue from the last checkpoint; "
                                   "ask for a longer time limit, or tick requeue to have it continue by itself.")
    if stop == "not_shared":
        return J.FAILED, dict(reason="not_shared", message="A node of the job could not read the run folder: the "
                              "workspace is not on a filesystem that every node of the cluster shares.",
                              hint="Put the workspace on the cluster's shared filesystem (start Danlu with "
                                   "DANLU_HOME=/a/shared/folder), then press Retry.")
    if stop == "prepare_failed":
        return J.FAILED, dict(reason="start_failed", message="The built-in demo model could not be prepared on the "
                              "cluster's node; the log shows why.", hint="Check the disk space of the shared "
                              "workspace, then press Retry.")
    if f.slurm_state == "PREEMPTED" or (f.requeued and not f.ended) or (f.stopped and f.requeued):
        return J.INTERRUPTED, dict(reason="preempted", message="Slurm stopped the job to give its nodes to another "
                                   "job (preemption)." + saved_words(f) + then, hint="" if f.requeued else RESUME_HINT)
    if f.slurm_state in ("NODE_FAIL", "BOOT_FAIL"):
        return J.INTERRUPTED, dict(reason="node_fail", message=f"A node of the job failed ({f.slurm_state})." + then,
                                   hint="" if f.requeued else RESUME_HINT)
    if f.slurm_state == "OUT_OF_MEMORY":
        return J.FAILED, dict(reason="killed", message="A training process used more memory than the job asked for "
                              "on its node, and Slurm stopped it.", hint="Ask for more memory per node (settings.yaml: "
                              "slurm.mem), or lower 'Batch size per device' or 'Maximum length'; then press Resume.")
    if f.stopped:
        return J.INTERRUPTED, dict(reason="interrupted", message="The run was stopped by a signal from outside Danlu "
                                   "(the cluster or its admin)." + saved_words(f), hint=RESUME_HINT)
    if f.slurm_state == "CANCELLED" and not f.ended:
        return J.CANCELLED, dict(reason="cancelled", message="Cancelled on the cluster (scancel), not from Danlu.",
                                 hint=RESUME_HINT)
    return J.FAILED, failure(f)


def failure(f: AttemptFacts) -> dict:
    if not f.started:
        state = f.slurm_state or "unknown to Slurm by now"
        return dict(reason="start_failed", message=f"Slurm job {f.slurm_job_id} ended ({state}) before it started "
                    "training or wrote anything into the run folder.",
                    hint="The usual cause is a run folder the nodes cannot see (the workspace must be on a shared "
                         "filesystem) or a Python environment missing on the nodes; `scontrol show job "
                         f"{f.slurm_job_id}` and the cluster's logs say more.")
    rc = f.ended.get("returncode")
    if not f.ended:
        rc = None
    info = diagnose.explain(f.run_dir or Path("."), rc, f.log_text, nproc=f.nproc)
    if not f.ended and f.slurm_state:
        info["message"] += f" (Slurm: {f.slurm_state}{', ' + f.slurm_reason if f.slurm_reason else ''})"
    return info


def attempt_log(text: str, slurm_job_id: str, attempt: int) -> str:
    """This attempt's part of the appended stdout.log: from its own start line to the next attempt's."""
    mark = f"[danlu] Slurm job {slurm_job_id}, attempt {attempt},"
    start = text.rfind(mark)
    if start < 0:
        return text
    nxt = text.find(f"[danlu] Slurm job {slurm_job_id}, attempt {attempt + 1},", start)
    return text[start:nxt if nxt >= 0 else len(text)]
