"""`train CONFIG`: the same launcher the GUI uses. Foreground by default (prints progress, exit
code 0 on success); `--detach` prints the job id as its last line and returns at once."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cli.main import number
from core import jobs as J
from core import launcher, progress, trust
from core.config import load_config
from core.risks import config_warnings
from core.errors import InputError, Problem
from core.messages import Msg
from core.executors import executor_for


def register(sub):
    p = sub.add_parser("train", help="fine-tune with a config YAML")
    p.add_argument("config", help="config YAML (start from `copy-preset`)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set lora_rank=32 (repeatable)")
    p.add_argument("--nproc", type=number(int), help="processes on this machine: one per GPU (default: all chosen GPUs, or 1 on CPU)")
    p.add_argument("--gpus", help="GPU indices to use, e.g. 0,1 (default: all)")
    p.add_argument("--nnodes", type=number(int), default=1, help="number of machines (multi-node)")
    p.add_argument("--node-rank", type=number(int), default=0, help="this machine's number, 0 .. nnodes-1")
    p.add_argument("--master", help="ADDR:PORT of machine 0 (multi-node)")
    p.add_argument("--detach", action="store_true", help="start and return; print the job id")
    p.add_argument("--name", default="", help="a name for the job table")
    g = p.add_argument_group("on a Slurm cluster (defaults: `slurm:` in the workspace's settings.yaml)")
    g.add_argument("--slurm", action="store_true", help="submit to the Slurm cluster that sbatch on PATH reaches")
    g.add_argument("--nodes", type=number(int), help="nodes (default 1)")
    g.add_argument("--gpus-per-node", type=number(int), help="GPUs per node, one process each (0: CPUs, with --nproc workers)")
    g.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    g.add_argument("--time", help="time limit HH:MM:SS or D-HH:MM:SS (default: the partition's)")
    g.add_argument("--account", help="Slurm account")
    g.add_argument("--qos", help="Slurm QoS")
    g.add_argument("--mem", help="memory per node, e.g. 64G")
    g.add_argument("--cpus-per-node", type=number(int), help="CPUs per node (default: one per process)")
    g.add_argument("--requeue", action=argparse.BooleanOptionalAction, default=None,
                   help="after a time limit or preemption, requeue and resume from the checkpoint by itself")
    p.set_defaults(func=train_cmd)


SLURM_FLAGS = ("nodes", "gpus_per_node", "partition", "time", "account", "qos", "mem", "cpus_per_node", "requeue")
LOCAL_FLAGS = (("gpus", None), ("nnodes", 1), ("node_rank", 0), ("master", None))


def launch_spec(args, ws) -> launcher.LaunchSpec:
    """The CLI's options as a LaunchSpec: this computer, or the Slurm cluster (--slurm). A flag of the
    other place is refused, naming it."""
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    if not args.slurm:
        stray = [flag(n) for n in SLURM_FLAGS if getattr(args, n) is not None]
        if stray:
            raise InputError(problems=[Problem(f, Msg("cli.slurm_only"), Msg("cli.slurm_only.hint"))
                                       for f in stray], title=Msg("cli.launch_title"))
        return launcher.LaunchSpec(nproc=args.nproc, gpus=parse_gpus(args.gpus), nnodes=args.nnodes,
                                   node_rank=args.node_rank, master=args.master)
    stray = [flag(n) for n, default in LOCAL_FLAGS if getattr(args, n) != default]
    if stray:
        raise InputError(problems=[Problem(f, Msg("cli.not_with_slurm"), Msg("cli.not_with_slurm.hint")) for f in stray],
                         title=Msg("cli.launch_title"))
    from core.slurm.executor import spec_for
    slurm = spec_for(ws, **{n: getattr(args, n) for n in SLURM_FLAGS}, nproc=args.nproc)
    return launcher.LaunchSpec(executor="slurm", slurm=slurm)


def parse_gpus(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(problems=[Problem("--gpus", Msg("cli.gpus", value=repr(text)), Msg("cli.gpus.hint"))])


def train_cmd(args, services) -> int:
    cfg = load_config(args.config, args.sets)
    spec = launch_spec(args, services.workspace)
    job = launcher.submit_train(services.workspace, cfg, spec, origin=trust.SHELL, name=args.name)
    if args.detach:  # followed, the log says the warnings at its top (core.launcher): said once, not twice
        for warning in config_warnings(cfg):
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        where = f", Slurm job {job.slurm_job_id}" if job.executor == "slurm" else ""
        print(f"started job {job.id} ({J.STATE_WORDS[job.state].lower()}{where}); follow it with: "
              f"python app.py jobs logs {job.id} --follow")
        print(job.id)
        return 0
    if job.executor == "slurm":
        print(f"job {job.id}: submitted to Slurm as job {job.slurm_job_id} ({executor_for(job).job_file(job.run_dir)})",
              flush=True)
    else:
        print(f"job {job.id}: {' '.join(job.argv_list[1:])}", flush=True)
    return follow(services, job.id, cancel_on_interrupt=True)


def follow(services, job_id: str, cancel_on_interrupt: bool = False, out=sys.stdout) -> int:
    """Print the job's log as it grows until it ends; exit code 0 only when it succeeded."""
    ws, store = services.workspace, services.store
    job = store.get(job_id)
    log_path = executor_for(job).logs(job)
    pos, announced, told_waiting = 0, None, False
    strip = job.nproc == 1
    while True:
        try:
            job = store.get(job_id)
            said = queued_words(job) if job.state == J.QUEUED else job.state
            if said != announced and job.state == J.QUEUED:
                print(f"[danlu] job {job.id} is queued: {said}", file=out, flush=True)
            if not told_waiting and still_waiting(job):  # torchrun prints nothing while it waits
                told_waiting = True
                words = progress.waiting_words(progress.status(job))
                print(f"[danlu] job {job.id} is {words[0]}\n[danlu] {words[1]}", file=out, flush=True)
            announced = said
            pos = _print_new(log_path, pos, strip, out)
            if job.terminal:
                later = requeued_as(store, job)
                if later is None:
                    break
                print(f"[danlu] job {job.id}: {progress.status_line(progress.status(job))}\n"
                      f"[danlu] following the next attempt, job {later.id}", file=out, flush=True)
                job_id = later.id
                continue
            launcher.reconcile(ws, [job])
            time.sleep(0.5)
        except KeyboardInterrupt:
            if not cancel_on_interrupt:
                raise
            saves = " (it saves a checkpoint first)" if job.kind == "train" else ""  # an eval or export just stops
            print(f"\n[danlu] stopping job {job_id}{saves}...", file=out, flush=True)
            launcher.cancel(ws, job_id)
            cancel_on_interrupt = False
    _print_new(log_path, pos, strip, out)
    st = progress.status(job)
    print(f"[danlu] job {job.id}: {progress.status_line(st)}", file=out, flush=True)
    if job.state == J.FAILED:
        if job.hint:
            print(f"[danlu] what to do: {job.hint}", file=out)
        return 1
    return 0 if job.state == J.SUCCEEDED else 1


WAITING_NOTE_S = 5.0  # follow() says a job waits for the other machines once it has waited this long


def still_waiting(job: J.Job) -> bool:
    """A job on several machines has waited WAITING_NOTE_S for the others: not said on every start (the
    rendezvous of machines that are all there takes a moment too)."""
    return (job.state == J.RUNNING and time.time() - (job.started_at or 0) > WAITING_NOTE_S
            and progress.waiting_for_machines(job))


def queued_words(job: J.Job) -> str:
    if getattr(job, "executor", "local") == "slurm":
        return f"Slurm job {job.slurm_job_id or '(not submitted yet)'}, {job.message or 'waiting to be scheduled'}"
    return "waiting for its GPUs to be free"


def requeued_as(store: J.JobStore, job: J.Job) -> J.Job | None:
    """The attempt that continues an interrupted Slurm job by itself (requeued), if any."""
    if getattr(job, "executor", "local") != "slurm" or job.state != J.INTERRUPTED:
        return None
    from core.slurm.executor import next_attempt_id
    return store.get(next_attempt_id(job.id))


def _print_new(path: Path, pos: int, strip: bool, out) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read()
    except OSError:
        return pos
    cut = data.rfind(b"\n") + 1  # only whole lines
    if cut:
        text = data[:cut].decode("utf-8", errors="replace")
        if strip:
            text = text.replace("[default0]:", "")
        out.write(text)
        out.flush()
    return pos + cut
