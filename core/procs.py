"""Process identity and clean-up.

A bare pid is not an identity: pids are reused. A process is "the same" only when its pid and its
start time both match what we recorded. Every process of a job carries DANLU_JOB_ID=<id> in its
environment, so a sweep can find ranks that torchrun started in their own sessions even when the
recorded tree is incomplete (torchrun starts each worker with start_new_session=True).
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import psutil

from core import knobs

MARKER = knobs.JOB_ID


def reap_when_done(proc: subprocess.Popen) -> None:
    """Wait for a child we started and do not otherwise wait for (a job's supervisor, a demo, the demo
    model's builder) in a daemon thread, so a long-lived GUI leaves no zombie in the process table."""
    threading.Thread(target=proc.wait, daemon=True, name=f"reap-{proc.pid}").start()


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


def children(pid: int, recursive: bool = False) -> list[psutil.Process]:
    """The processes `pid` started (recursive: theirs too); [] when it is gone."""
    try:
        return psutil.Process(pid).children(recursive=recursive)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def env_value(pid: int, name: str) -> str | None:
    """One variable of a process's start-up environment, or None."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return None
    key = name.encode() + b"="
    for item in env.split(b"\0"):
        if item.startswith(key):
            return item[len(key):].decode(errors="replace")
    return None


def recorded_alive(recorded) -> list[psutil.Process]:
    """The processes of [(pid, start time), ...] that still run and are the very ones recorded."""
    out = []
    for pid, ctime in recorded:
        if ctime is not None and alive(pid, ctime):  # no start time: it was gone when recorded
            try:
                out.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
    return out


def carries_mark(pid: int, job_id: str) -> bool:
    """The process `pid` has MARKER=job_id in its environment: Danlu started it for that job."""
    try:
        with open(f"/proc/{int(pid)}/environ", "rb") as f:
            env = f.read()
    except (OSError, ValueError, OverflowError):
        return False
    return b"\0" + f"{MARKER}={job_id}".encode() + b"\0" in b"\0" + env + b"\0"


def marked(job_id: str) -> list[psutil.Process]:
    """Every live process whose environment says it belongs to job_id."""
    me = os.getpid()
    out = []
    for pid in psutil.pids():
        if pid == me:
            continue
        if carries_mark(pid, job_id):
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


def job_processes(job_id: str, recorded=(), exclude: set[int] | None = None) -> list[psutil.Process]:
    """Every live process of a job: marked with its id, or recorded (pid + start time) by its supervisor."""
    exclude = (exclude or set()) | {os.getpid()}
    found = {p.pid: p for p in marked(job_id) + recorded_alive(recorded) if p.pid not in exclude}
    return list(found.values())


def kill_job_processes(job_id: str, timeout: float = 10.0, exclude: set[int] | None = None, recorded=()) -> list[int]:
    """SIGKILL every process of the job until none is left; return pids still alive (should be [])."""
    recorded = list(recorded)
    deadline = time.time() + timeout
    while True:
        procs = job_processes(job_id, recorded, exclude)
        if not procs:
            return []
        signal_all(procs, signal.SIGKILL)
        psutil.wait_procs(procs, timeout=1.0)
        if time.time() > deadline:
            return [p.pid for p in procs if p.is_running()]
