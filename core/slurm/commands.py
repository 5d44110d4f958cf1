"""Slurm's own commands, run as argv lists with a timeout, and their output read into plain data.

    submit(script)            sbatch --parsable          -> Slurm's job id
    queue(ids)                squeue --states=all        -> {id: QueueEntry} (jobs Slurm still knows, with their names)
    signal_job(id, name)      scancel --signal=TERM      (the batch shell passes it to the ranks)
    kill_job(id, name)        scancel                    (Slurm's own SIGTERM, then SIGKILL)
    partitions()              sinfo                      -> [Partition] with their free GPUs
    pending_words(reason)     "Resources" -> Msg("cluster.pending.Resources"): "waiting for resources (...)"

A job number alone does not name a job: a controller restarted without its saved state counts from
its first id again, so the number of a job Slurm forgot may be another job's now. Every answer carries
the job's name (Danlu's own, danlu-<id>) for the executor to check, and scancel is given the name too:
Slurm then signals the job only where both match.

Whatever fails says so in words (a missing command, a refused submission with Slurm's reason).
The commands use the cluster their own configuration names ($SLURM_CONF or /etc/slurm).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from core.errors import DanluError
from core.messages import Msg

TIMEOUT_S = 30.0


class SlurmError(DanluError):
    """A Slurm command failed or is missing; the message says which and what Slurm said."""


class NoCluster(SlurmError):
    """Slurm's tools are installed but set up for no cluster (no slurm.conf, none served by DNS): how
    this computer is set up, not work that failed. Slurm's own words for it are lines of DNS errors."""
    exit_code = 2


NO_CONFIG = "could not establish a configuration source"  # every Slurm client's fatal line when it finds no slurm.conf


def env() -> dict:
    """The commands' environment: the user's own, with fixed output formats. SLURM_* variables of an
    allocation Danlu itself may run in (an interactive salloc) are left out, except SLURM_CONF, so
    they do not leak into the jobs it submits."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}
    out["SLURM_TIME_FORMAT"] = "standard"
    return out


def run(argv: list[str], timeout: float = TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which(argv[0])
    if exe is None:
        raise SlurmError(Msg("cluster.no_command", command=argv[0]), hint=Msg("cluster.no_command.hint"))
    try:
        proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=timeout, env=env(),
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SlurmError(Msg("cluster.timeout", command=" ".join(argv[:2]), s=f"{timeout:.0f}"),
                         hint=Msg("cluster.timeout.hint"))
    if check and proc.returncode != 0 and NO_CONFIG in (proc.stderr + proc.stdout).lower():
        raise NoCluster(Msg("cluster.not_configured", command=argv[0]), hint=Msg("cluster.not_configured.hint"))
    if check and proc.returncode != 0:
        raise SlurmError(Msg("cluster.failed", command=" ".join(argv[:2]), words=slurm_words(proc.stderr or proc.stdout)),
                         hint=hint_for(proc.stderr or proc.stdout))
    return proc


def configured(timeout: float = 3.0) -> bool:
    """Does this computer submit to a Slurm cluster? sbatch is on PATH and Slurm's configuration names
    a controller (up or not: `scontrol ping` says which). False fast where the tools are installed
    but no cluster is set up."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False
    try:
        proc = subprocess.run([shutil.which("scontrol"), "ping"], capture_output=True, text=True, timeout=timeout,
                              env=env(), stdin=subprocess.DEVNULL)
    except (subprocess.TimeoutExpired, OSError):
        return False
    return "Slurmctld" in proc.stdout


def controller_down(timeout: float = 3.0) -> bool:
    """`scontrol ping` says no controller is up (it answers at once; sinfo would retry for ~10 s first)."""
    exe = shutil.which("scontrol")
    if exe is None:
        return False
    try:
        proc = subprocess.run([exe, "ping"], capture_output=True, text=True, timeout=timeout, env=env(),
                              stdin=subprocess.DEVNULL)
    except (subprocess.TimeoutExpired, OSError):
        return False  # sinfo will say what is wrong, in Slurm's words
    return "is DOWN" in proc.stdout and "is UP" not in proc.stdout


def slurm_words(text: str) -> str:
    """Slurm's own error line, without its prefixes ("sbatch: error: Batch job submission failed: ")."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    line = lines[-1] if lines else "no message"
    for prefix in ("sbatch: error:", "squeue: error:", "scancel: error:", "scontrol: error:", "sinfo: error:",
                   "Batch job submission failed:", "slurm_load_jobs error:"):
        line = line.replace(prefix, "").strip()
    return line[:500]


HINTS = (  # words in Slurm's message -> the code of what to do (core/catalog_en.yaml)
    ("invalid partition", "cluster.hint.partition"),
    ("invalid account", "cluster.hint.account"),
    ("invalid qos", "cluster.hint.qos"),
    ("requested node configuration is not available", "cluster.hint.node_config"),
    ("invalid generic resource", "cluster.hint.no_gpus"),
    ("time limit", "cluster.hint.time_limit"),
    ("unable to contact slurm controller", "cluster.hint.controller"),
    ("node count specification invalid", "cluster.hint.node_count"),
)


def hint_for(text: str) -> Msg:
    low = (text or "").lower()
    for key, hint in HINTS:
        if key in low:
            return Msg(hint)
    return Msg("cluster.hint.other")


def submit(script_path) -> str:
    """sbatch the script; Slurm's job id."""
    out = run(["sbatch", "--parsable", str(script_path)]).stdout.strip()
    job_id = out.split(";")[0].strip()
    if not job_id.isdigit():
        raise SlurmError(Msg("cluster.no_job_id", answer=repr(out[:200])), hint=Msg("cluster.no_job_id.hint"))
    return job_id


@dataclass(frozen=True)
class QueueEntry:
    job_id: str
    state: str          # Slurm's word: PENDING, RUNNING, COMPLETED, TIMEOUT, ...
    restarts: int       # how often it was requeued (SLURM_RESTART_COUNT of the running attempt)
    nodes: str          # the node list, e.g. "gpu[01-02]"; empty while pending
    reason: str         # why it waits (PENDING) or why it ended
    time_limit: str = ""  # e.g. 04:00:00
    name: str = ""      # the job's name (--job-name): the same number may be another job's (module docstring)


QUEUE_FIELDS = "JobID:|,State:|,RestartCnt:|,NodeList:|,TimeLimit:|,Reason:|,Name:|"  # the name last: it may hold a |


def queue(job_ids: list[str]) -> dict[str, QueueEntry]:
    """What Slurm knows of these jobs, in any state (a finished job is kept for MinJobAge, 300 s
    by default; after that it is simply absent)."""
    ids = [str(j) for j in job_ids if str(j).isdigit()]
    if not ids:
        return {}
    proc = run(["squeue", "--noheader", "--states=all", f"--jobs={','.join(ids)}", f"--Format={QUEUE_FIELDS}"],
               check=False)
    if proc.returncode != 0:
        if "invalid job id" in (proc.stderr or "").lower():
            return {}  # none of them is known any more
        raise SlurmError(Msg("cluster.failed", command="squeue", words=slurm_words(proc.stderr)), hint=hint_for(proc.stderr))
    return parse_queue(proc.stdout)


def parse_queue(text: str) -> dict[str, QueueEntry]:
    out = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 6 or not parts[0].strip():
            continue
        job_id, state, restarts, nodes, limit, reason = (p.strip() for p in parts[:6])
        job_id = job_id.split("_")[0]  # an array task id would read 12_3
        nodes = "" if nodes in ("(null)", "None assigned") else nodes
        name = "|".join(parts[6:-1] if len(parts) > 7 else parts[6:]).strip()  # the line ends with the last |
        out[job_id] = QueueEntry(job_id, state.split()[0].rstrip("+") if state else "", _int(restarts), nodes,
                                 "" if reason in ("None", "(null)") else reason, limit, name)
    return out


def accounting(job_id: str, name: str) -> str:
    """The state sacct recorded for the job of this number and name (COMPLETED, TIMEOUT, NODE_FAIL, ...),
    for a job squeue has forgotten (it keeps ended jobs for MinJobAge, 300 s by default). "" where the
    cluster keeps no accounting (no slurmdbd: sacct then refuses) or sacct is missing. --duplicates:
    sacct otherwise answers only the newest job of a number, which may be another job (module docstring)."""
    if shutil.which("sacct") is None:
        return ""
    proc = run(["sacct", "--noheader", "--parsable2", "--duplicates", f"--jobs={job_id}", "--format=JobID,State,JobName"],
               check=False)
    return parse_accounting(proc.stdout, str(job_id), name) if proc.returncode == 0 else ""


def parse_accounting(text: str, job_id: str, name: str) -> str:
    """The whole job's line (not its .batch or .0 steps) of that name, the newest where several are:
    '4242|CANCELLED by 1000|danlu-x' -> 'CANCELLED'."""
    found = ""
    for line in text.splitlines():
        jid, _, rest = line.partition("|")
        state, _, job_name = rest.partition("|")
        if jid.strip() == job_id and state.strip() and job_name.strip() == name:
            found = state.split()[0].rstrip("+")
    return found


def signal_job(job_id: str, name: str, batch: bool = True) -> None:
    """SIGTERM to the batch shell (which passes it to every training process) or to the job steps; only
    where the job of that number has this name (Slurm checks both: no other job is signalled)."""
    argv = ["scancel", "--signal=TERM"] + (["--batch"] if batch else []) + [f"--jobname={name}", str(job_id)]
    run(argv, check=False)  # a job that has just ended cannot be signalled: nothing to do


def kill_job(job_id: str, name: str) -> None:
    """Slurm's own cancel: SIGTERM to everything of the job, SIGKILL after the cluster's KillWait; only
    where the job of that number has this name."""
    run(["scancel", f"--jobname={name}", str(job_id)], check=False)


def hostnames(nodelist: str) -> list[str]:
    if not nodelist:
        return []
    return run(["scontrol", "show", "hostnames", nodelist]).stdout.split()


def partition_nodes(partition: str = "") -> list[str] | None:
    """The host names of a partition's nodes (of a list of partitions, or of the default one when none
    is named); None when the cluster has no partition of that name."""
    table = {}
    for line in run(["sinfo", "--noheader", "--format=%P|%N"]).stdout.splitlines():
        name, _, nodes = line.partition("|")
        if name.strip():
            table.setdefault(name.strip(), []).append(nodes.strip())
    names = partition.split(",") if partition else [n.rstrip("*") for n in table if n.endswith("*")]
    known = {n.rstrip("*"): lists for n, lists in table.items()}
    if any(n not in known for n in names):
        return None
    return [h for n in names for nodelist in known[n] if nodelist and nodelist != "n/a" for h in hostnames(nodelist)]


def longest_time_limit(sinfo_text: str, partition: str = "") -> int | None:
    """The longest time limit in seconds of the named partitions (the default one when none is named),
    from `sinfo --format=%P|%l`; None where one has no limit, or one Danlu cannot read (let through)."""
    from core.slurm.spec import parse_time
    limits, default = {}, []
    for line in sinfo_text.splitlines():
        name, _, limit = (part.strip() for part in line.partition("|"))
        if name:
            limits[name.rstrip("*")] = limit
            default += [name.rstrip("*")] if name.endswith("*") else []
    seconds = []
    for name in partition.split(",") if partition else default:
        text = limits.get(name, "")
        text = "0:" + text if text.count(":") == 1 and "-" not in text else text  # sinfo writes 30 minutes as 30:00
        seconds.append(parse_time(text + ":00:00" if re.fullmatch(r"\d+-\d+", text) else text))
    return None if not seconds or None in seconds else max(seconds)


def partition_time_limit(partition: str = "") -> int | None:
    return longest_time_limit(run(["sinfo", "--noheader", "--format=%P|%l"]).stdout, partition)


def partition_names() -> list[str]:
    return [line.strip().rstrip("*") for line in run(["sinfo", "--noheader", "--format=%P"]).stdout.splitlines()
            if line.strip()]


def _int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        return 0


# ---- partitions and their free GPUs --------------------------------------------------------------
@dataclass(frozen=True)
class NodeInfo:
    name: str
    partition: str
    state: str
    gpus: int
    gpus_used: int
    cpus_idle: int
    cpus: int

    @property
    def usable(self) -> bool:
        bad = ("down", "drain", "fail", "maint", "reserved", "unknown", "not_responding", "future", "power")
        return not any(word in self.state.lower() for word in bad) and not self.state.endswith(("*", "~", "#", "!", "%"))

    @property
    def gpus_free(self) -> int:
        return max(0, self.gpus - self.gpus_used) if self.usable else 0


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    nodes: int
    usable_nodes: int
    gpus: int
    gpus_free: int
    max_gpus_free_per_node: int
    cpus_idle: int
    time_limit: str

    def label(self) -> str:
        """One line for a dropdown: 'gpu · 12 of 32 GPUs free · 4 nodes · up to 2-00:00:00'."""
        gpus = f"{self.gpus_free} of {self.gpus} GPUs free" if self.gpus else f"no GPUs, {self.cpus_idle} CPUs free"
        limit = "" if self.time_limit in ("", "infinite", "UNLIMITED") else f" · up to {self.time_limit}"
        nodes = f"{self.usable_nodes} node{'s' if self.usable_nodes != 1 else ''}"
        return f"{self.name}{' (default)' if self.default else ''} · {gpus} · {nodes}{limit}"


GRES_RE = re.compile(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)")
NODE_FIELDS = "NodeHost:|,Partition:|,StateLong:|,Gres:|,GresUsed:|,CPUsState:|"


def count_gpus(gres: str) -> int:
    """GPUs in a GRES string: 'gpu:a100:8(S:0-1)' -> 8, 'gpu:4,gpu:v100:2' -> 6, '(null)' -> 0."""
    return sum(int(m.group(1)) for m in GRES_RE.finditer(re.sub(r"\([^)]*\)", "", gres or "")))


def parse_nodes(text: str) -> list[NodeInfo]:
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 6 or not parts[0]:
            continue
        name, partition, state, gres, used, cpus = parts[:6]
        alloc, idle, _other, total = (_int(x) for x in (cpus.split("/") + ["0"] * 4)[:4])
        out.append(NodeInfo(name, partition, state, count_gpus(gres), count_gpus(used), idle, total))
    return out


def summarize(nodes: list[NodeInfo], limits: dict[str, str]) -> list[Partition]:
    """Per partition: nodes, usable nodes, GPUs, free GPUs (on usable nodes), idle CPUs, time limit."""
    names = list(dict.fromkeys(n.partition for n in nodes)) + [p for p in limits if p.rstrip("*") not in
                                                               {n.partition.rstrip("*") for n in nodes}]
    out = []
    for raw in names:
        mine = [n for n in nodes if n.partition == raw]
        out.append(Partition(name=raw.rstrip("*"), default=raw.endswith("*"), nodes=len(mine),
                             usable_nodes=sum(n.usable for n in mine), gpus=sum(n.gpus for n in mine),
                             gpus_free=sum(n.gpus_free for n in mine),
                             max_gpus_free_per_node=max((n.gpus_free for n in mine), default=0),
                             cpus_idle=sum(n.cpus_idle for n in mine if n.usable),
                             time_limit=limits.get(raw, limits.get(raw.rstrip("*"), ""))))
    return out


def partitions() -> list[Partition]:
    """The cluster's partitions with their free GPUs, read from sinfo (one line per node and partition)."""
    nodes = parse_nodes(run(["sinfo", "--noheader", "--Node", f"--Format={NODE_FIELDS}"]).stdout)
    limits = {}
    for line in run(["sinfo", "--noheader", "--format=%P|%l"]).stdout.splitlines():
        name, _, limit = line.partition("|")
        if name.strip():
            limits[name.strip()] = limit.strip()
    return summarize(nodes, limits)


# ---- why a job waits, in words --------------------------------------------------------------------
PENDING_REASONS = ("Resources", "Priority", "BeginTime", "Dependency", "JobHeldUser", "JobHeldAdmin", "ReqNodeNotAvail",
                   "PartitionTimeLimit", "PartitionNodeLimit", "PartitionConfig", "PartitionDown", "PartitionInactive",
                   "NodeDown", "BadConstraints", "Reservation", "Licenses", "None")  # each has cluster.pending.<reason>


def pending_words(reason: str) -> Msg:
    """Slurm's reason for a PENDING job, in words (a limit of the account or QoS is named as such)."""
    key = (reason or "").split(",")[0].strip()
    if " " in key:  # a sentence of Slurm's, not a code ("Nodes required for job are DOWN, DRAINED or ..."): whole
        return Msg("cluster.pending_other", key=reason.strip())
    if key in PENDING_REASONS or not key:
        return Msg("cluster.pending." + (key or "None"))
    if "Limit" in key or key.startswith(("QOS", "Assoc", "MaxGRES", "MaxCpu", "MaxNode")):
        return Msg("cluster.pending_limit", key=key)
    if "launch failed" in key.lower():
        return Msg("cluster.pending_launch")
    return Msg("cluster.pending_other", key=key)
