"""Why a job failed: the one table of failure reasons, their words and hints, and the signs of each
in an error's text. Plain Python (no torch), shared by the two places that name a failure:

    core.engine.common.classify   inside a rank, from the exception it raised (errors/rank<R>.json)
    core.diagnose.explain         in the supervisor, from exit codes, rank records and the log

Both read the same signs and say the same words for the same reason; a rank adds what only it
knows (this run's batch size in an out-of-memory hint, the free space in a disk-full message).
"""
from __future__ import annotations

from core.messages import Msg, said

# reason -> (message code, hint code): what error.json and `jobs show` say by default
REASONS: dict[str, tuple[str, str]] = {
    "cuda_oom": ("fail.cuda_oom", "fail.cuda_oom.hint"),
    "disk_full": ("fail.disk_full", "fail.free_disk.hint"),
    "nccl_timeout": ("fail.processes_lost", "fail.processes_lost.hint"),
    "peer_lost": ("fail.peer_lost", "fail.peer_lost.hint"),
    "remote_code": ("fail.remote_code", "fail.remote_code.hint"),
}

PEER_LOST_WORDS = ("connection closed by peer", "connection reset by peer", "broken pipe", "communicator was aborted",
                   "remote process exited")


def sign_in(text: str) -> str | None:
    """The reason an error's text (an exception or a log) shows, strongest sign first; None when none."""
    low = text.lower()
    if "cuda out of memory" in low or "outofmemoryerror" in low:
        return "cuda_oom"
    if "no space left on device" in low:
        return "disk_full"
    if "trust_remote_code" in low and "custom code" in low:
        return "remote_code"
    if any(w in low for w in ("nccl", "gloo", "collective", "process group")) and any(
            w in low for w in ("timeout", "timed out", "watchdog")):
        return "nccl_timeout"
    if any(w in low for w in PEER_LOST_WORDS):
        return "peer_lost"  # a consequence, not a cause: the job's diagnosis names the rank that went first
    return None


def described(reason: str, message: Msg | None = None, hint: Msg | None = None) -> dict:
    """{reason, message, hint, ...codes} with the table's words where no more precise ones are given."""
    msg_code, hint_code = REASONS[reason]
    return dict(reason=reason, **said(message or Msg(msg_code), hint or Msg(hint_code)))
