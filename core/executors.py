"""Executors: where and how a job's processes run. The launcher (core.launcher) decides WHEN a job
starts (the queue and its GPU leases) and records WHAT happened (states and reasons in the job table,
from the run's own files: core.rundir); an executor only runs the processes and answers for them.
Neither the job table nor the states know which executor ran a job: each row names its executor
("local" by default), and every step below goes through these five calls.

    ex = executor_for(job)
    fields = ex.start(ws, job)     # hand the job over; returns the job-table fields that identify it there
    ex.poll(job)                   # OWNED | UNCLAIMED | ORPHANED | GONE (below); reconcile asks this of every active job
    ex.cancel(ws, job, grace)      # ask it to stop: the ranks get SIGTERM (they save a checkpoint), anything
                                   #   left is killed after `grace` seconds; returns at once
    ex.sweep(job)                  # nobody owns it any more: stop whatever of it is left; True when nothing is
    ex.logs(job)                   # the log file that `jobs logs`, the CLI's follow and the Train tab show

poll() answers:
    OWNED      its owner runs there and will record the end itself (exit.json): leave it alone
    UNCLAIMED  handed over, but its owner is not recorded yet (schedule() records it in the same
               transaction that marks the job STARTING)
    ORPHANED   the owner is gone but processes of the job still run (they may finish on their own)
    GONE       nothing of it is left: the run's files say how it ended (result.json, stopped.json)

LocalExecutor, the one executor today: a detached supervisor per job on this machine
(`python -m core.supervise`, its own session, so closing the GUI or the terminal never signals
it), which owns the torchrun agent. A process belongs to a job by its pid and start time, or by
the DANLU_JOB_ID mark in its environment (core.procs).

An executor whose `schedules_itself` is true queues and records its jobs itself: SlurmExecutor
(core.slurm.executor), a Slurm cluster. The launcher then leaves the queue to it and calls instead:

    gpus, nproc = ex.allocate(ws, spec)     # check the LaunchSpec (and that the cluster can run it); no GPU lease
    header, n = ex.prepare_run(run_dir, spec, cli)  # record what it asks for; config.yaml's header, processes per node
    job = ex.submit(ws, job)                # hand it over at once (sbatch): it stays QUEUED while the cluster holds it
    ex.track(ws, job, jobs)                 # reconcile: the cluster's word and the run's files -> its state
                                            #   (queued ones too); True when the state changed
    job = ex.stop(ws, job, grace)           # Stop: dequeue a waiting job, or SIGTERM the ranks through the cluster
    ex.read_spec(run_dir)                   # what it asked for (Retry asks for the same)
start = `sbatch` of a script written into the run folder, returning the column that holds the
cluster's own job id (slurm_job_id); poll = `squeue` on that id; cancel = `scancel` with a signal
the ranks turn into a checkpoint (TERM); logs = the file the script's output is appended to.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core import jobs as J
from core import knobs, procs
from core.rundir import RunDir, write_json
from core.workspace import REPO_ROOT, Workspace, python_path

OWNED, UNCLAIMED, ORPHANED, GONE = "owned", "unclaimed", "orphaned", "gone"


class LocalExecutor:
    """A job's processes on this machine, under a detached supervisor (core.supervise)."""
    name = "local"
    schedules_itself = False  # the launcher's queue and GPU leases decide when it starts

    def start(self, ws: Workspace, job: J.Job) -> dict:
        run = RunDir(job.run_dir)
        log = open(run.supervisor_log, "ab")
        env = dict(os.environ, PYTHONPATH=python_path(), PYTHONUNBUFFERED="1")
        env[knobs.HOME] = str(ws.root)
        env[procs.MARKER] = job.id
        # start_new_session: closing the GUI or the terminal never signals the job
        p = subprocess.Popen([sys.executable, "-m", "core.supervise", "--workspace", str(ws.root), "--job", job.id],
                             cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        log.close()
        procs.reap_when_done(p)
        return dict(supervisor_pid=p.pid, supervisor_ctime=procs.create_time(p.pid))

    def poll(self, job: J.Job) -> str:
        if procs.alive(job.supervisor_pid, job.supervisor_ctime):
            return OWNED
        if procs.job_processes(job.id, job.worker_list):
            return ORPHANED
        return UNCLAIMED if job.supervisor_pid is None else GONE

    def cancel(self, ws: Workspace, job: J.Job, grace: float) -> None:
        """The supervisor reads cancel.request: SIGTERM to the agent, which forwards it to the ranks."""
        write_json(RunDir(job.run_dir).cancel_request, {"time": time.time(), "grace": grace})

    def sweep(self, job: J.Job) -> bool:
        import psutil
        left = procs.job_processes(job.id, job.worker_list)
        if left:
            procs.signal_all(left, signal.SIGTERM)  # the ranks save a checkpoint on SIGTERM
            psutil.wait_procs(left, timeout=5)
        return not procs.kill_job_processes(job.id, recorded=job.worker_list)

    def logs(self, job: J.Job) -> Path:
        return RunDir(job.run_dir).stdout_log


from core.slurm.executor import SlurmExecutor  # noqa: E402  (it needs nothing from this module)

EXECUTORS = {LocalExecutor.name: LocalExecutor(), SlurmExecutor.name: SlurmExecutor()}


def executor_for(job_or_name: J.Job | str):
    """The executor a job names (or the one called `name`)."""
    name = job_or_name if isinstance(job_or_name, str) else job_or_name.executor
    try:
        return EXECUTORS[name]
    except KeyError:
        raise ValueError(f"no executor called {name!r} (known: {', '.join(EXECUTORS)})") from None
