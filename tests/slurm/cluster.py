"""A real one-node Slurm cluster in a temporary folder, for the tests: munged, slurmctld and slurmd
of Debian's slurm-wlm, with their own key, socket, ports, state and logs (nothing in /etc changes).

    cluster = LocalCluster(tmp_dir); cluster.start()    # sinfo shows the node idle within seconds
    ... every Slurm command reaches it through $SLURM_CONF (cluster.env) ...
    cluster.stop()                                       # cancels every job, stops every daemon it started

The daemons run as root (Slurm's own users are the machine's): `why_not()` says why a cluster
cannot start here (not root, the programs are missing), so the tests skip with that reason.
Set-up facts measured on this machine and on CI: Slurm 22.05, `sbatch` to COMPLETED in seconds;
no slurmdbd, so there is no `sacct` and `squeue`/`scontrol` are all there is. Two partitions on the
one node: `debug` (the default) and `high`, whose jobs preempt debug's (REQUEUE, 60 s grace time).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")
PARTITION = "debug"
HIGH = "high"  # the same node, a higher priority tier: a job there preempts debug's (after its GraceTime)


def why_not() -> str | None:
    """Why a test cluster cannot start here, or None."""
    missing = [p for p in (*DAEMONS, *CLIENTS) if shutil.which(p) is None
               and not Path("/usr/sbin", p).exists()]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} missing; `make test` installs slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "a test Slurm cluster needs root (slurmd starts jobs as their user); run the tests as root, as CI does"
    return None


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _node_line() -> str:
    """This machine as slurmd sees it (CPUs, sockets, memory), minus the uptime."""
    out = subprocess.run([_exe("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("NodeName="))
    fields = [f for f in line.split() if not f.startswith(("UpTime=", "RealMemory="))]
    mem = next((int(f.split("=")[1]) for f in line.split() if f.startswith("RealMemory=")), 4096)
    # leave the machine some memory of its own; Slurm refuses a node that reports less than configured
    return " ".join(fields + [f"RealMemory={max(1024, int(mem * 0.8))}", "State=UNKNOWN"])


class LocalCluster:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "sock"
        self.host = socket.gethostname().split(".")[0]
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    def pid(self, name: str) -> int | None:
        try:
            return int((self.root / f"{name}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def write_config(self) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        ctld_port, d_port = _free_ports(2)
        r = self.root
        self.conf.write_text("\n".join([
            "ClusterName=danlu-test", f"SlurmctldHost={self.host}", f"SlurmctldPort={ctld_port}", f"SlurmdPort={d_port}",
            # cred_expire is also how long a requeued job waits before it may start again (120 s by default)
            "AuthType=auth/munge", f"AuthInfo=socket={self.munge_socket},cred_expire=5", "CredType=cred/munge",
            "SlurmUser=root", "SlurmdUser=root", f"StateSaveLocation={r}/state", f"SlurmdSpoolDir={r}/spool",
            f"SlurmctldPidFile={r}/slurmctld.pid", f"SlurmdPidFile={r}/slurmd.pid",
            f"SlurmctldLogFile={r}/log/slurmctld.log", f"SlurmdLogFile={r}/log/slurmd.log",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory", "MpiDefault=none", "ReturnToService=2",
            "SchedulerType=sched/backfill", "SchedulerParameters=sched_interval=2,bf_interval=1",
            "JobCompType=jobcomp/none", "AccountingStorageType=accounting_storage/none", "KillWait=10",
            # preemption as many clusters set it up: a higher partition takes the nodes, the job is requeued
            # where it may be, and the preempted job's steps get SIGTERM a grace time before they are killed
            "PreemptType=preempt/partition_prio", "PreemptMode=REQUEUE",
            _node_line(), f"PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP "
                          "PriorityTier=1 GraceTime=60",
            f"PartitionName={HIGH} Nodes={self.host} MaxTime=INFINITE State=UP PriorityTier=10", ""]))

    def start(self, timeout: float = 60) -> None:
        self.write_config()
        m = self.root / "munge"
        self._run([_exe("munged"), "--force", f"--key-file={m}/munge.key", f"--socket={self.munge_socket}",
                   f"--pid-file={self.root}/munged.pid", f"--log-file={m}/log", f"--seed-file={m}/seed"])
        self._run([_exe("slurmctld"), "-c"])
        self._run([_exe("slurmd")])
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "--noheader", "--format=%T"], env=self.env, capture_output=True, text=True)
            if out.stdout.strip() == "idle":
                return
            time.sleep(0.3)
        logs = "\n".join(p.read_text()[-2000:] for p in (self.root / "log").glob("*.log"))
        self.stop()
        raise RuntimeError(f"the test Slurm cluster did not come up within {timeout:.0f} s:\n{logs}")

    def _run(self, argv: list[str]) -> None:
        # each daemon forks into the background and writes its pid file; the foreground part exits at once
        subprocess.run(argv, env=self.env, check=True, timeout=60, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def squeue(self) -> list[str]:
        out = subprocess.run(["squeue", "--noheader", "--format=%i %T"], env=self.env, capture_output=True, text=True)
        return [ln for ln in out.stdout.splitlines() if ln.strip()]

    def cancel_all(self, timeout: float = 60) -> None:
        for line in self.squeue():
            subprocess.run(["scancel", line.split()[0]], env=self.env, capture_output=True)
        deadline = time.time() + timeout
        while self.squeue() and time.time() < deadline:
            time.sleep(0.5)

    def stop(self, timeout: float = 30) -> list[str]:
        """Cancel every job, stop the daemons (each by its own pid), return the names of any that would not go."""
        self.cancel_all()
        pids = {name: self.pid(name) for name in ("slurmctld", "slurmd", "munged")}
        subprocess.run(["scontrol", "shutdown"], env=self.env, capture_output=True, timeout=30)
        for name in ("slurmctld", "slurmd"):
            _wait_gone(pids[name], timeout)
        subprocess.run([_exe("munged"), "--stop", f"--socket={self.munge_socket}"], env=self.env, capture_output=True,
                       timeout=30)
        _wait_gone(pids["munged"], timeout)
        return [name for name, pid in pids.items() if _alive(pid)]


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid: int | None, timeout: float) -> None:
    deadline = time.time() + timeout
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
