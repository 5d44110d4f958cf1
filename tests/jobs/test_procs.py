"""core.procs: children Danlu starts and does not wait for are reaped, not left as zombies."""
import subprocess
import sys
import time

import psutil

from core import procs


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_finished_child_is_reaped_when_asked_and_stays_a_zombie_otherwise():
    left = subprocess.Popen([sys.executable, "-c", "pass"])
    reaped = subprocess.Popen([sys.executable, "-c", "pass"])
    procs.reap_when_done(reaped)
    deadline = time.time() + 20
    while time.time() < deadline and not (_zombie(left.pid) and reaped.returncode is not None):
        time.sleep(0.05)
    assert _zombie(left.pid)  # the control: without a wait, a finished child stays in the process table
    assert not _zombie(reaped.pid) and not procs.alive(reaped.pid, None)
    left.wait()
