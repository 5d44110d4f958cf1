"""The per-job supervisor: a detached process that owns one job's torchrun agent from start to end.

    python -m core.supervise --workspace WS --job ID     (started by core.launcher, never by hand)

It starts the job's argv with all output going to <run>/stdout.log (a file, never a pipe that
only a reader drains), writes heartbeat.json every few seconds, records every process of the job
(pid + start time) in the job table, watches for a cancel request and for stalls, and when the
agent exits it makes sure no process of the job is left, works out what happened in words,
writes exit.json atomically and records the final state. Then it starts any queued job that was
waiting for these GPUs.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path

import psutil

from core import bytecode, diagnose
from core import jobs as J
from core import knobs, procs
from core.launch_commands import is_direct, nodes_of
from core.messages import Msg, recorded, said
from core.rundir import RunDir, add_to_json, read_json, write_json
from core.workspace import REPO_ROOT, Workspace, path_identity, python_path

POLL_S = 0.25
HEARTBEAT_S = 2.0
LOADING_GRACE_MIN = 30.0  # model download/load may take long before the first step
DEFAULT_GRACE_S = 30.0    # SIGTERM -> SIGKILL: long enough for the ranks to save a checkpoint
MIN_FREE_MB = 200         # below this the run could not even write its logs and first checkpoint
UNKILLABLE_S = 120.0      # give up sweeping after this (a process stuck in the kernel, e.g. a dead GPU)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--job", required=True)
    args = ap.parse_args(argv)
    ws = Workspace.open(args.workspace)
    Supervisor(ws, args.job).run()
    return 0


class Supervisor:
    def __init__(self, ws: Workspace, job_id: str):
        self.ws, self.store = ws, J.JobStore(ws.db_path)
        self.job = self.store.get(job_id)
        self.run_dir = Path(self.job.run_dir)
        self.rundir = RunDir(self.run_dir)
        self.launch_env = read_json(self.rundir.launch_env)
        self.log_path = self.rundir.stdout_log
        self.log_offset = 0               # where this attempt's output starts in the (appended) stdout.log
        self.cancel_at: float | None = None
        self.termed = False
        self.killed_at: float | None = None
        self.grace = DEFAULT_GRACE_S
        self.stalled: Msg | None = None
        self.write_error: OSError | None = None       # the run folder could not be written (heartbeat)
        self.unwritable: OSError | None = None        # ... and that stopped the job
        self.folder = path_identity(self.run_dir)         # the run folder itself: deleted (or replaced) stops the job;
        self.marker = self.rundir.config if self.rundir.config.exists() else None  # (a new folder may reuse the inode)
        self.folder_gone = False
        self.terminated_by_signal: int | None = None
        self.recorded: dict[int, float | None] = {}   # pid -> start time of every process seen under the agent
        self.saved_count = 0                          # how many of them the job table knows
        self.ranks: dict[int, int] = {}               # pid -> global rank
        self.gone: dict[int, float] = {}              # rank -> when the supervisor saw it vanish
        self.direct = is_direct(self.job.argv_list)   # the agent is the job's one rank (no torchrun)
        self.nodes = nodes_of(self.job.argv_list)     # a job on several machines: theirs and the join timeout
        self.last_step: int | None = None             # the stall clock (stalled_s)
        self.since = time.time()
        self.started = False

    # ---- life cycle -----------------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            self._run()
        except BaseException:  # a bug here must still leave an honest record and no stray process
            traceback.print_exc()
            sys.stderr.flush()
            self.finish(None, failure=dict(reason="supervisor_error", **said(
                Msg("end.supervisor_error", error=traceback.format_exc()[-1500:]), Msg("end.supervisor_error.hint"))))

    def claimed(self, timeout: float = 60.0) -> bool:
        """Run only once the table names this process as the job's supervisor. schedule() records the
        pid in the transaction that marks the job STARTING; if that transaction never commits, nobody
        else believes this process owns the job, so it must not start training."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.store.get(self.job.id)
            if job is None or job.terminal:
                return False
            if job.supervisor_pid == os.getpid():
                return True
            if job.supervisor_pid is not None:
                return False  # another supervisor owns it
            time.sleep(0.05)
        return False

    def _run(self) -> None:
        if not self.claimed():
            print(f"[danlu] job {self.job.id} is not assigned to supervisor {os.getpid()}; leaving it alone", flush=True)
            return
        job = self.store.get(self.job.id)
        if job.state == J.CANCELLING or self.rundir.cancel_request.exists():
            self.finish(None, cancelled=True)
            return
        free_mb = shutil.disk_usage(self.run_dir).free / 2**20
        min_free = float(self.knob(knobs.MIN_FREE_MB, MIN_FREE_MB))
        if free_mb < min_free:
            self.finish(None, failure=dict(reason="disk_full", **said(
                Msg("end.low_disk", free=f"{free_mb:.0f}", path=str(self.run_dir), need=f"{min_free:.0f}"),
                Msg("end.low_disk.hint"))))
            return
        prepared = self.prepare()
        if prepared is not None:
            self.finish(None, **prepared)
            return
        try:
            agent = self.start()
        except OSError as e:
            self.finish(None, failure=dict(reason="start_failed", **said(Msg("end.start_failed", error=str(e)),
                                                                          Msg("end.start_failed.hint"))))
            return
        self.remember(agent.pid)
        self.store.update(self.job.id, agent_pid=agent.pid, agent_ctime=self.recorded.get(agent.pid))
        self.store.transition(self.job.id, J.RUNNING)  # no-op when a cancel already moved it to CANCELLING
        self.watch(agent)
        self.finish(agent.returncode)

    def knob(self, name: str, default):
        """A test hook (core.knobs) from this attempt's launch_env.json, else default: the environment
        of whatever started the supervisor (the GUI, a shell) never changes how a job is watched."""
        return self.launch_env.get(name) or default

    def prepare(self) -> dict | None:
        """Build what the ranks only load, before any rank starts (prepare.json, written by the
        launcher: the built-in demo model). None when ready; else finish()'s arguments."""
        from core import demo_model
        needs = read_json(self.rundir.prepare).get("builtin_models") or []
        if all(demo_model.is_complete(demo_model.builtin_path(n, self.ws)) for n in needs):
            return None
        argv = [sys.executable, "-m", "core.demo_model", "--workspace", str(self.ws.root)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=python_path(), **{procs.MARKER: self.job.id})
        with open(self.log_path, "ab") as out:
            child = subprocess.Popen(argv, cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, close_fds=True)
        self.remember(child.pid)
        self.save_recorded()
        while child.poll() is None:
            if self.cancel_at is None:
                self.check_cancel_request(time.time())
            if self.cancel_at is not None:  # a half-built model is thrown away by the next build
                child.kill()
                child.wait()
                return dict(cancelled=True)
            time.sleep(POLL_S)
        if child.returncode != 0:
            return dict(failure=dict(reason="start_failed", **said(Msg("end.demo_model_failed", rc=child.returncode),
                                                                    Msg("end.demo_model_failed.hint"))))
        return None

    def start(self) -> subprocess.Popen:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=python_path(),
                   HF_HUB_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false",
                   # NVLink multicast off: it can take a shared host's GPUs out of service
                   NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1", NVSHMEM_DISABLE_NVLS="1")
        env[knobs.HOME] = str(self.ws.root)
        env.pop(knobs.FAULT, None)  # fault injection comes only from this attempt's launch_env.json
        env[procs.MARKER] = self.job.id
        gpus = self.job.gpu_list
        env["CUDA_VISIBLE_DEVICES"] = "" if gpus == ["cpu"] else ",".join(str(g) for g in gpus)
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # the indices are nvidia-smi's (core.gpus)
        if self.direct:  # the one rank, started without torchrun: what torchrun would have told it
            env.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1")
        env.update({k: str(v) for k, v in self.launch_env.items()})
        env, bytecode_note = bytecode.job_env(env, self.ws.root / "cache")
        with open(self.log_path, "ab") as out:
            self.log_offset = out.tell()
            out.write(f"[danlu] job {self.job.id} started {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                      f"{' '.join(self.job.argv_list[1:])}\n".encode())
            if bytecode_note:
                out.write(f"{bytecode_note}\n".encode())
            if self.knob(knobs.STALL_MINUTES, None):  # a test hook is never silent
                out.write(f"[danlu] test hook {knobs.STALL_MINUTES}={self.knob(knobs.STALL_MINUTES, None)}: it replaces "
                          "stall_minutes for this attempt\n".encode())
            out.flush()
            return subprocess.Popen(self.job.argv_list, cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, close_fds=True)

    def _on_signal(self, signum, frame):
        # The supervisor itself is being stopped (shutdown): stop the job the same way a cancel does.
        self.terminated_by_signal = signum
        if self.cancel_at is None:
            self.cancel_at = time.time()

    # ---- watching ---------------------------------------------------------------------------
    def watch(self, agent: subprocess.Popen) -> None:
        last_beat, self.since = 0.0, time.time()
        while agent.poll() is None:
            now = time.time()
            if now - last_beat >= HEARTBEAT_S:
                last_beat = now
                self.heartbeat(agent)
                if self.write_error is not None and self.cancel_at is None:
                    # nothing of the run can be kept any more (a checkpoint would fail too): stop it, saying why
                    self.unwritable, self.cancel_at = self.write_error, now
                if self.folder_gone and self.cancel_at is None:
                    self.cancel_at = now  # its settings, log and checkpoints are gone: training on makes an orphan
                step, phase = self.progress()
                limit = self.stall_limit_s(phase)
                if self.cancel_at is None and self.stalled_s(now, step) > limit:
                    self.stalled = Msg("end.stalled", minutes=f"{limit / 60:.1f}", step=self.last_step or 0)
                    self.cancel_at = now
            if len(self.ranks) < self.job.nproc:
                self.discover_ranks(agent)
            self.note_gone_ranks(now)
            if self.cancel_at is None:
                self.check_cancel_request(now)
            if self.cancel_at is not None and self.killed_at is None:
                if not self.termed:
                    self.termed = True
                    # SIGTERM, not SIGKILL: torchrun forwards it to the ranks, which save a checkpoint and stop
                    agent.send_signal(signal.SIGTERM)  # nothing when it has ended
                elif now - self.cancel_at > self.grace:
                    self.killed_at = now
                    procs.signal_all(self.tree(agent), signal.SIGKILL)
            time.sleep(POLL_S)
        self.note_gone_ranks(time.time())

    def check_cancel_request(self, now: float) -> None:
        req = self.rundir.cancel_request
        if not req.exists():
            return
        self.cancel_at = now
        try:
            self.grace = float(read_json(req).get("grace", self.grace))
        except (TypeError, ValueError):
            pass

    def tree(self, agent: subprocess.Popen) -> list[psutil.Process]:
        out = procs.children(agent.pid, recursive=True)
        try:
            out.insert(0, psutil.Process(agent.pid))
        except psutil.NoSuchProcess:
            pass
        return out

    def remember(self, pid: int) -> None:
        if pid not in self.recorded:
            self.recorded[pid] = procs.create_time(pid)

    def discover_ranks(self, agent: subprocess.Popen) -> None:
        """The agent's direct children are the ranks (their own subprocesses are not); a job started
        without torchrun is its own rank 0."""
        if self.direct:
            self.remember(agent.pid)
            self.ranks[agent.pid] = 0
            self.save_recorded()
            return
        for p in procs.children(agent.pid):
            if p.pid not in self.ranks:
                rank = procs.env_value(p.pid, "RANK")
                if rank is not None and rank.isdigit():
                    self.remember(p.pid)
                    self.ranks[p.pid] = int(rank)
        self.save_recorded()

    def heartbeat(self, agent: subprocess.Popen) -> None:
        """Record every process under the agent (pid + start time) in the job table and heartbeat.json."""
        for p in procs.children(agent.pid, recursive=True):
            self.remember(p.pid)
        self.save_recorded()
        if self.deleted():  # a rank's next write makes a new, empty folder: write nothing into it
            self.folder_gone = True
            return
        try:
            write_json(self.rundir.heartbeat, {"job_id": self.job.id, "time": time.time(), "supervisor_pid": os.getpid(),
                                            "agent_pid": agent.pid, "pids": sorted(self.recorded), "ranks": self.ranks})
        except OSError as e:  # a full disk, a drive gone read-only or unmounted: not a bug of the supervisor
            self.write_error = self.write_error or e

    def deleted(self) -> bool:
        """The run folder was deleted since the start (another folder or nothing at its place, or its config gone)."""
        return path_identity(self.run_dir) != self.folder or (self.marker is not None and not self.marker.exists())

    def save_recorded(self) -> None:
        """The job table keeps every pid + start time, so a cancel can find them even without this supervisor."""
        if len(self.recorded) != self.saved_count:
            self.saved_count = len(self.recorded)
            self.store.update(self.job.id, worker_pids=json.dumps([[p, t] for p, t in self.recorded.items()]))

    def note_gone_ranks(self, now: float) -> None:
        """The rank that disappears first is the one that failed first (torchrun only knows whole seconds)."""
        for pid, rank in self.ranks.items():
            if rank not in self.gone and not procs.alive(pid, self.recorded.get(pid)):
                self.gone[rank] = now

    def first_gone(self) -> list[int]:
        if not self.gone:
            return []
        first = min(self.gone.values())
        return sorted(r for r, t in self.gone.items() if t == first)

    def progress(self) -> tuple[int | None, str]:
        p = read_json(self.rundir.progress)
        return (p.get("step"), p.get("phase", "")) if p else (None, "loading")

    def stalled_s(self, now: float, step: int | None) -> float:
        """How long nothing has moved. A new step restarts the clock, and so does the ranks' start: a job
        on several machines first waits for all of them at torchrun's rendezvous (stall_limit_s)."""
        started = bool(self.ranks)
        if step != self.last_step or started != self.started:
            self.last_step, self.since, self.started = step, now, started
        return now - self.since

    def stall_limit_s(self, phase: str) -> float:
        """stall_minutes, at least LOADING_GRACE_MIN while the model loads; while the machines of a job
        still join (no rank started yet) torchrun's own join timeout decides, this is only a backstop
        (a DANLU_JOIN_TIMEOUT_S over 30 minutes was cut short here as "stalled")."""
        minutes = float(self.knob(knobs.STALL_MINUTES, 0)) or self.config_stall_minutes()
        if phase in ("", "loading"):
            minutes = max(minutes, LOADING_GRACE_MIN)
        if self.nodes and not self.ranks:
            minutes = max(minutes, self.nodes["timeout_s"] / 60 + LOADING_GRACE_MIN)
        return minutes * 60

    def config_stall_minutes(self) -> float:
        try:
            import yaml
            return float(yaml.safe_load(Path(self.job.config_path).read_text()).get("stall_minutes", 20))
        except Exception:
            return 20.0

    # ---- the end --------------------------------------------------------------------------
    def sweep(self) -> list[int]:
        """SIGKILL every process of the job (marked or recorded) until none is left; [] when clean."""
        deadline = time.time() + UNKILLABLE_S
        while True:
            left = procs.kill_job_processes(self.job.id, exclude={os.getpid()}, recorded=self.recorded.items())
            if not left or time.time() > deadline:
                return left
            print(f"[danlu] processes {left} of job {self.job.id} are still alive; trying again", flush=True)

    def finish(self, returncode: int | None, cancelled: bool = False, failure: dict | None = None) -> None:
        leftovers = self.sweep()
        self.folder_gone = self.folder_gone or self.deleted()  # a rank may have failed on it first
        cancelled = cancelled or (self.cancel_at is not None and self.stalled is None and self.unwritable is None
                                  and not self.folder_gone)
        state, info = (J.FAILED, failure) if failure else self.outcome(returncode, cancelled)
        if leftovers:
            # Not CANCELLED/SUCCEEDED while a process still holds memory or a GPU: say so.
            state = J.FAILED
            info = dict(reason="unkillable", rank=None, **said(
                Msg("end.unkillable", pids=str(leftovers), message=recorded(info, "message") or ""),
                Msg("end.unkillable.hint")))
        exit_info = dict(job_id=self.job.id, returncode=returncode, state=state, ended_at=time.time(),
                         signal=-returncode if returncode is not None and returncode < 0 else None, **info)
        try:
            write_json(self.rundir.exit, exit_info)
            if state == J.FAILED:
                add_to_json(self.rundir.error, info)
        except OSError as e:  # the job table is the record that counts: the end goes there all the same
            with contextlib.suppress(OSError):  # supervisor.log may be on that very disk
                print(f"[danlu] could not write the end of job {self.job.id} into {self.run_dir}: {e}", file=sys.stderr, flush=True)
        try:
            self.store.transition(self.job.id, state, exit_code=returncode, reason=info.get("reason", ""),
                                  message=recorded(info, "message"), hint=recorded(info, "hint"))
            from core.launcher import schedule
            schedule(self.ws)
        except sqlite3.Error as e:  # the table emptied or damaged under this process: not a bug of the job's
            with contextlib.suppress(OSError):  # exit.json holds the end; the next listing records it
                print(f"[danlu] could not record the end of job {self.job.id} in the job table ({e}); "
                      f"{self.rundir.exit} holds it", file=sys.stderr, flush=True)

    def outcome(self, rc: int | None, cancelled: bool) -> tuple[str, dict]:
        if self.folder_gone:  # even a result written since: its settings and log are gone with the folder
            return J.FAILED, dict(reason="run_dir_deleted", **said(Msg("end.run_dir_deleted", path=str(self.run_dir)),
                                                                   Msg("end.run_dir_deleted.hint")))
        result = read_json(self.rundir.result)
        if result.get("status") == "succeeded":
            # result.json is written last, after the adapter is complete: the work is done whatever
            # happened next (a stop request that arrived just then, a process that failed while closing)
            if rc == 0 and not cancelled and result.get("adapter_on_machine_0"):
                done = Msg("end.finished_on_machine_0", master=(self.nodes or {}).get("master", "?"))
            elif rc == 0 and not cancelled:
                done = Msg("end.finished")
            elif cancelled:
                done = Msg("end.finished_after_stop")
            else:
                done = Msg("end.finished_rc", rc=rc)
            return J.SUCCEEDED, dict(reason="", **said(done))
        if rc == 0 and self.job.kind != "train" and not cancelled:
            return J.SUCCEEDED, dict(reason="", **said(Msg("end.finished")))
        if cancelled and self.terminated_by_signal is None:
            return J.CANCELLED, dict(reason="cancelled", **said(Msg("end.cancelled"), diagnose.resume_hint(self.run_dir)))
        if self.terminated_by_signal is not None:
            return J.INTERRUPTED, dict(reason="interrupted", **said(Msg("end.supervisor_signal", signal=self.terminated_by_signal),
                                                                   diagnose.resume_hint(self.run_dir)))
        if self.stalled:
            return J.FAILED, dict(reason="stalled", **said(self.stalled, Msg("end.stalled.hint")))
        if self.unwritable is not None:
            e = self.unwritable
            return J.FAILED, dict(reason="disk_full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "run_dir_unwritable",
                                  **said(Msg("end.run_dir_unwritable", path=str(self.run_dir), error=e.strerror or str(e)),
                                         Msg("end.run_dir_unwritable.hint")))
        if rc == 0 and self.rundir.stopped.exists():
            why = Msg("end.stopped_elsewhere") if self.nodes and self.nodes["node_rank"] > 0 else Msg("end.outside_signal")
            return J.INTERRUPTED, dict(reason="interrupted", **said(why, diagnose.resume_hint(self.run_dir)))
        log_text = diagnose.read_from(self.log_path, self.log_offset)
        return J.FAILED, diagnose.explain(self.run_dir, rc, log_text, first_gone=self.first_gone(), nproc=self.job.nproc,
                                       direct=self.direct, nodes=self.nodes)

if __name__ == "__main__":
    sys.exit(main())
