"""`train CONFIG`: the same launcher the GUI uses. Foreground by default (prints progress, exit
code 0 on success); `--detach` prints the job id as its last line and returns at once."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from core import jobs as J
from core import launcher, progress, trust
from core.config import config_warnings, load_config
from core.errors import InputError, Problem
from core.executors import executor_for


def register(sub):
    p = sub.add_parser("train", help="fine-tune with a config YAML")
    p.add_argument("config", help="config YAML (start from `copy-preset`)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set lora_rank=32 (repeatable)")
    p.add_argument("--nproc", type=int, help="processes on this machine: one per GPU (default: all chosen GPUs, or 1 on CPU)")
    p.add_argument("--gpus", help="GPU indices to use, e.g. 0,1 (default: all)")
    p.add_argument("--nnodes", type=int, default=1, help="number of machines (multi-node)")
    p.add_argument("--node-rank", type=int, default=0, help="this machine's number, 0 .. nnodes-1")
    p.add_argument("--master", help="ADDR:PORT of machine 0 (multi-node)")
    p.add_argument("--detach", action="store_true", help="start and return; print the job id")
    p.add_argument("--name", default="", help="a name for the job table")
    p.set_defaults(func=train_cmd)


def parse_gpus(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(problems=[Problem("--gpus", f"{text!r} is not a list of GPU numbers", "e.g. --gpus 0,1")])


def train_cmd(args, services) -> int:
    cfg = load_config(args.config, args.sets)
    for warning in config_warnings(cfg):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    spec = launcher.LaunchSpec(nproc=args.nproc, gpus=parse_gpus(args.gpus), nnodes=args.nnodes,
                               node_rank=args.node_rank, master=args.master)
    job = launcher.submit_train(services.workspace, cfg, spec, origin=trust.SHELL, name=args.name)
    if args.detach:
        print(f"started job {job.id} ({J.STATE_WORDS[job.state].lower()}); follow it with: python app.py jobs logs {job.id} --follow")
        print(job.id)
        return 0
    print(f"job {job.id}: {' '.join(job.argv_list[1:])}", flush=True)
    return follow(services, job.id, cancel_on_interrupt=True)


def follow(services, job_id: str, cancel_on_interrupt: bool = False, out=sys.stdout) -> int:
    """Print the job's log as it grows until it ends; exit code 0 only when it succeeded."""
    ws, store = services.workspace, services.store
    job = store.get(job_id)
    log_path = executor_for(job).logs(job)
    pos, announced = 0, None
    strip = job.nproc == 1
    while True:
        try:
            job = store.get(job_id)
            if job.state != announced and job.state in (J.QUEUED,):
                print(f"[danlu] job {job.id} is queued: waiting for its GPUs to be free", file=out, flush=True)
            announced = job.state
            pos = _print_new(log_path, pos, strip, out)
            if job.terminal:
                break
            launcher.reconcile(ws, [job])
            time.sleep(0.5)
        except KeyboardInterrupt:
            if not cancel_on_interrupt:
                raise
            print(f"\n[danlu] stopping job {job_id} (it saves a checkpoint first)...", file=out, flush=True)
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
