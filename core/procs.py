"""Process identity and clean-up.

A bare pid is not an identity: pids are reused. A process is "the same" only when its pid and its
start time both match what we recorded. Every process of a job carries DANLU_JOB_ID=<id> in its
environment, so a sweep can find ranks that torchrun started in their own sessions even when the
recorded tree is incomplete (torchrun starts each worker with start_new_session=True).
"""
from __future__ import annotations

import os
import signal
import time

import psutil

MARKER = "DANLU_JOB_ID"


def create_time(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def alive(pid: int | None, ctime: float | None) -> bool:
    """True when `pid` runs and is the very process we started (start time matches)."""
    if not pid:
        return False
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return ctime is None or abs(p.create_time() - ctime) < 0.05
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def marked(job_id: str) -> list[psutil.Process]:
    """Every live process whose environment says it belongs to job_id."""
    needle = f"{MARKER}={job_id}".encode()
    me = os.getpid()
    out = []
    for pid in psutil.pids():
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle + b"\0" in env or env.endswith(needle):
            try:
                p = psutil.Process(pid)
                if p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
    return out


def signal_all(procs: list[psutil.Process], sig: int) -> None:
    for p in procs:
        try:
            p.send_signal(sig)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def kill_job_processes(job_id: str, timeout: float = 10.0, exclude: set[int] | None = None) -> list[int]:
    """SIGKILL every process marked with job_id until none is left; return pids still alive (should be [])."""
    exclude = exclude or set()
    deadline = time.time() + timeout
    while True:
        procs = [p for p in marked(job_id) if p.pid not in exclude]
        if not procs:
            return []
        signal_all(procs, signal.SIGKILL)
        psutil.wait_procs(procs, timeout=1.0)
        if time.time() > deadline:
            return [p.pid for p in procs if p.is_running()]
