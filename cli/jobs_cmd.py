"""`jobs list|show|cancel|resume|retry|logs|delete`: the job table from the command line."""
from __future__ import annotations

import json
import time

from cli.main import number
from core import jobs as J
from core import launcher, progress, trust
from core.config import parse_override
from core.slurm.executor import newest_attempts


def register(sub):
    p = sub.add_parser("jobs", help="list and control jobs")
    js = p.add_subparsers(dest="jobs_verb", metavar="ACTION", required=True)
    lst = js.add_parser("list", help="all jobs, newest first")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=list_cmd)
    show = js.add_parser("show", help="one job: state, reason, run dir, last metrics")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=show_cmd)
    c = js.add_parser("cancel", help="stop a job (it saves a checkpoint first)")
    c.add_argument("id")
    c.add_argument("--wait", type=number(float), default=60, help="seconds to wait for it to stop (0: don't wait)")
    c.set_defaults(func=cancel_cmd)
    r = js.add_parser("resume", help="continue a failed, cancelled or interrupted job from its last checkpoint")
    r.add_argument("id")
    r.set_defaults(func=resume_cmd)
    rt = js.add_parser("retry", help="start a new run from a job's config, with edits")
    rt.add_argument("id")
    rt.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    rt.set_defaults(func=retry_cmd)
    lg = js.add_parser("logs", help="print a job's log")
    lg.add_argument("id")
    lg.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    lg.set_defaults(func=logs_cmd)
    d = js.add_parser("delete", help="remove a finished job and its files")
    d.add_argument("id")
    d.set_defaults(func=delete_cmd)


def list_cmd(args, services) -> int:
    launcher.reconcile(services.workspace)
    rows = [progress.status(j) for j in newest_attempts(services.store.list())]  # one row per job
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("no jobs yet; start one with: python app.py train CONFIG")
        return 0
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))
        print(f"{r['id']}  {r['kind']:<5}  {r['state_word']:<11}  {when}  {r['name'][:30]:<30}  {progress.status_line(r)}")
    return 0


def show_cmd(args, services) -> int:
    job = launcher.get_job(services.workspace, args.id)
    launcher.reconcile(services.workspace, [job])
    st = progress.status(services.store.get(job.id))
    if args.json:
        print(json.dumps(st, indent=2, default=str))
        return 0
    print(f"job {st['id']} ({st['kind']}): {progress.status_line(st)}")
    print(f"run directory: {st['run_dir']}")
    waiting = progress.waiting_words(st)
    if waiting:
        print(f"what to do: {waiting[1]}")
    if st.get("hint"):
        print(f"what to do: {st['hint']}")
    if st.get("error", {}).get("log_tail"):
        print("--- end of the failing process's log ---")
        print(st["error"]["log_tail"][-3000:])
    return 0


def cancel_cmd(args, services) -> int:
    job = launcher.cancel(services.workspace, args.id)
    if args.wait and not job.terminal:
        job = launcher.wait(services.workspace, job.id, timeout=args.wait)
    print(f"job {job.id}: {J.STATE_WORDS[job.state]}")
    return 0 if job.state in J.TERMINAL or job.state == J.CANCELLING else 1


def resume_cmd(args, services) -> int:
    job = launcher.resume(services.workspace, args.id)
    print(f"resuming {args.id} as job {job.id} ({J.STATE_WORDS[job.state].lower()})")
    print(job.id)
    return 0


def retry_cmd(args, services) -> int:
    edits = dict(parse_override(s) for s in args.sets)
    job = launcher.retry(services.workspace, args.id, edits, origin=trust.SHELL)
    print(f"retrying {args.id} as job {job.id}")
    print(job.id)
    return 0


def logs_cmd(args, services) -> int:
    job = launcher.get_job(services.workspace, args.id)
    if args.follow:
        from cli.train_cmd import follow
        return follow(services, job.id)
    print(progress.log_tail(job, max_bytes=10_000_000), end="")
    return 0


def delete_cmd(args, services) -> int:
    launcher.delete(services.workspace, args.id)
    print(f"deleted job {args.id}")
    return 0
