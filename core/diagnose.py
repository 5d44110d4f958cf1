"""Why a job failed, in words, with the rank that caused it and the end of that rank's log.

The evidence, from strongest to weakest:
  1. the rank the supervisor saw vanish first (it polls the ranks a few times a second);
  2. errors/rank<R>.json, which a rank writes when it fails with a Python exception (core.engine.common);
     a rank that only lost contact with a dead peer writes reason "peer_lost": a consequence, never the cause;
  3. torchrun's failure summary in the log (exit code per rank; a negative code is a signal), or
     the exit code of a job's one process started without torchrun;
  4. words in the log (CUDA out of memory, No space left on device, NCCL timeout): core.failures' signs,
     the same table of reasons and words that a rank's own record uses.
torchrun's own "Root Cause" is only a tie-breaker: it orders failures by whole seconds, so when a
killed rank takes its peers down within the same second it often names the wrong one.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.failures import described, sign_in
from core.launch_commands import join_minutes
from core.messages import Msg, recorded, said, verbatim
from core.rundir import RunDir, read_json

ENTRY = re.compile(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*(\d+)\)\s*\n\s*exitcode\s*:\s*(-?\d+)")
SIGNAMES = {9: "SIGKILL", 15: "SIGTERM", 6: "SIGABRT", 11: "SIGSEGV", 7: "SIGBUS", 2: "SIGINT", 1: "SIGHUP"}
# machine 0's TCP store when it gives up at the rendezvous (torch.distributed.DistStoreError)
JOINED = re.compile(r"waiting for clients\. (\d+)/(\d+) clients joined")
# machine 0 cannot open the rendezvous port: another program listens there (c10d's TCPStore server)
PORT_TAKEN = re.compile(r"failed to listen on .*(EADDRINUSE|address already in use)", re.IGNORECASE)
# another machine reached host:port, but what answered there is not machine 0's TCPStore
NOT_A_STORE = "Ping failed, invalid value returned from server"
# another machine cannot look up the master's name (c10d logs getaddrinfo's error on each try)
NAME_UNKNOWN = re.compile(r"network addresses of \((.+?), \d+\) cannot be retrieved \(gai error: ")
TAIL_LINES = 60
TAIL_CHARS = 6000

HOST_OOM_HINT = Msg("fail.host_oom.hint")


@dataclass(frozen=True)
class RankExit:
    rank: int
    local_rank: int
    exitcode: int
    root: bool  # torchrun listed it as the root cause


def torchrun_failures(log_text: str) -> list[RankExit]:
    """Every rank in the last failure summary torchrun printed."""
    start = log_text.rfind("Failures:")
    if start < 0:
        return []
    text = log_text[start:]
    root_at = text.find("Root Cause")
    out = {}
    for m in ENTRY.finditer(text):
        r = RankExit(int(m.group(1)), int(m.group(2)), int(m.group(3)), root_at >= 0 and m.start() > root_at)
        out[r.rank] = r
    return list(out.values())


def read_rank_errors(run_dir: Path) -> dict[int, dict]:
    out = {}
    for p in RunDir(run_dir).rank_errors():
        e = read_json(p)
        if not e:  # torn or unreadable: no evidence
            continue
        try:
            out[int(e.get("rank", p.stem[4:]))] = e
        except (TypeError, ValueError):
            continue
    return out


def find_cause(failures: list[RankExit], rank_errors: dict[int, dict], first_gone: list[int]) -> int | None:
    """The rank whose failure took the job down, or None when no rank can be named."""
    failed = {f.rank for f in failures if f.exitcode != 0}
    if len(first_gone) == 1 and (not failures or first_gone[0] in failed):
        return first_gone[0]
    own = sorted((e for e in rank_errors.values() if e.get("reason") != "peer_lost"), key=lambda e: e.get("time", 0))
    if own:
        return int(own[0]["rank"])
    # A signal the launcher did not send (it sends SIGTERM to the survivors) came from outside: the OOM killer, a user
    killed = [f for f in failures if f.exitcode < 0 and f.exitcode != -15 and f.rank not in rank_errors]
    if killed:
        return sorted(killed, key=lambda f: (not f.root, f.rank))[0].rank
    roots = [f for f in failures if f.root]
    if roots:
        return roots[0].rank
    if rank_errors:
        return min(rank_errors.values(), key=lambda e: e.get("time", 0))["rank"]
    return None


def explain(run_dir: Path, rc: int | None, log_text: str, *, first_gone: list[int] | None = None,
            nproc: int = 1, direct: bool = False, nodes: dict | None = None) -> dict:
    """reason, message, hint (English and codes, core.messages.said), rank and log_tail for a failed
    attempt. log_text: this attempt's stdout.log. direct: the job's one process was its rank 0
    (no torchrun), so its exit code is the rank's. nodes: a job on several machines
    (core.launch_commands.nodes_of)."""
    failures = torchrun_failures(log_text)
    if direct and not failures and rc not in (None, 0):
        failures = [RankExit(0, 0, rc, True)]
    rank_errors = read_rank_errors(run_dir)
    cause = find_cause(failures, rank_errors, first_gone or [])
    exit_of = {f.rank: f for f in failures}
    who = Msg("fail.who_rank", rank=cause) if cause is not None else Msg("fail.who_process")
    err = rank_errors.get(cause) if cause is not None else None
    sign = sign_in(log_text)
    never_met = rendezvous_failure(log_text, nodes) if nodes and not failures and not rank_errors else None
    if never_met:
        info = never_met
    elif err and err.get("reason") != "peer_lost":
        reason, message = err.get("reason", "crashed"), recorded(err, "message") or ""
        if cause is not None and (nproc > 1 or cause > 0):
            message = Msg("fail.rank_crashed" if reason == "crashed" else "fail.rank", rank=cause, message=message)
        info = dict(reason=reason, **said(message if isinstance(message, Msg) else verbatim(message), recorded(err, "hint")))
    elif cause in exit_of and exit_of[cause].exitcode < 0:
        sig = -exit_of[cause].exitcode
        if sig == 9:
            info = dict(reason="killed", **said(Msg("fail.sigkill", who=who), HOST_OOM_HINT))
        else:
            info = dict(reason="crashed", **said(Msg("fail.signal", who=who, signal=str(SIGNAMES.get(sig, sig))),
                                                 Msg("fail.signal.hint")))
    elif sign not in (None, "peer_lost"):  # a lost peer in the log is a consequence, never the cause
        info = described(sign)
    elif not failures and rc is not None and rc < 0:
        info = dict(reason="killed", **said(Msg("fail.launcher_killed", signal=str(SIGNAMES.get(-rc, -rc))),
                                            Msg("fail.launcher_killed.hint")))
    else:
        code = exit_of[cause].exitcode if cause in exit_of else rc
        info = dict(reason="crashed", **said(Msg("fail.exit_code", who=who, code=str(code)), Msg("fail.see_log.hint")))
    info["rank"] = cause
    info["log_tail"] = rank_tail(log_text, exit_of[cause].local_rank if cause in exit_of else cause) or log_text[-TAIL_CHARS:]
    return info


def rendezvous_failure(log_text: str, nodes: dict) -> dict | None:
    """The machines never all met at torchrun's rendezvous, so no rank started. Machine 0 hosts it and
    says how many machines joined when it gives up; another machine either never reached machine 0 or
    waited there for the rest; or the meeting could not even begin at --master (unreachable_master).
    None when the log shows none of these."""
    unreachable = unreachable_master(log_text, nodes)
    if unreachable:
        return unreachable
    where = dict(master=nodes["master"], nnodes=nodes["nnodes"], minutes=join_minutes(nodes))
    hint = Msg("fail.machines_missing.hint", master=nodes["master"], last=nodes["nnodes"] - 1, minutes=where["minutes"])
    joined = JOINED.findall(log_text)
    # torch's words only: Danlu's own lines (the command, with its --rdzv-conf timeout=) are no evidence
    low = "\n".join(line for line in log_text.lower().splitlines() if not line.startswith("[danlu]"))
    if joined:
        message = Msg("fail.machines_joined", joined=int(joined[-1][0]), **where)
    elif "trying to connect to" in low and "timed out" in low:  # DistNetworkError: machine 0 never answered
        message = Msg("fail.machine0_unreachable", node_rank=nodes["node_rank"], **where)
        hint = Msg("fail.machine0_unreachable.hint", master=nodes["master"])
    elif "in _rendezvous" in low and ("timeout" in low or "timed out" in low):  # the agent gave up on the rest
        message = Msg("fail.machines_missing", **where)
    else:
        return None
    return dict(reason="machines_missing", **said(message, hint))


def unreachable_master(log_text: str, nodes: dict) -> dict | None:
    """The rendezvous could not even begin at --master: machine 0 found its port taken by another
    program, or another machine could not look up machine 0's name, or reached a program there that is
    not machine 0's training. None when the log shows none of these. (core.rendezvous refuses the first
    two before a job starts when it can tell; these are what is left: a port taken just after that
    check, a name service that did not answer in time.)"""
    master, node_rank = nodes["master"], nodes["node_rank"]
    host, _, port = master.rpartition(":")
    other = str(int(port) + 1 if port.isdigit() and int(port) < 65535 else 29500)
    if PORT_TAKEN.search(log_text):
        return dict(reason="port_in_use", **said(Msg("fail.port_in_use", master=master, port=port, node_rank=node_rank),
                                                 Msg("fail.port_in_use.hint", port=port, other=other)))
    if NOT_A_STORE in log_text:
        return dict(reason="port_in_use", **said(Msg("fail.port_not_machine0", master=master, node_rank=node_rank),
                                                 Msg("fail.port_not_machine0.hint", port=port, other=other)))
    if host in NAME_UNKNOWN.findall(log_text):
        return dict(reason="master_not_found", **said(
            Msg("fail.master_not_found", master=master, host=host, node_rank=node_rank),
            Msg("fail.master_not_found.hint", host=host)))
    return None


def rank_tail(log_text: str, local_rank: int | None) -> str:
    """The last lines one rank printed (torchrun --tee prefixes each with [default<local rank>]:)."""
    if local_rank is None:
        return ""
    prefix = f"[default{local_rank}]:"
    lines = [line[len(prefix):] for line in log_text.splitlines() if line.startswith(prefix)]
    return "\n".join(lines[-TAIL_LINES:])[-TAIL_CHARS:]


def read_from(path: Path, offset: int, max_bytes: int = 256_000, whole_lines: bool = False) -> str:
    """The text of `path` after `offset` (this attempt's part of an appended log), at most its last max_bytes
    (whole_lines: the line those cut into left out)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(offset, size - max_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return text.split("\n", 1)[-1] if whole_lines and size - max_bytes > offset else text


def resume_hint(run_dir: Path) -> Msg:
    """The hint for a run whose folder is at hand (the supervisor, the launcher): a complete checkpoint
    there, or the step the stop said it saved (machine 1, 2, ... of a job started on each machine hold
    no checkpoint; a resume there starts from machine 0's, core.engine.train_state.agreed_checkpoint)."""
    run = RunDir(run_dir)
    return resume_hint_for(run.has_checkpoint() or bool(read_json(run.stopped).get("checkpoint_step")))


def resume_hint_for(saved: bool) -> Msg:
    """Resume continues from the newest complete checkpoint; a run stopped before its first one
    starts again from step 0, and the hint says that instead of promising 'the last checkpoint'."""
    return Msg("end.press_resume.hint") if saved else Msg("end.resume_from_start.hint")
