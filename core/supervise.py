"""The per-job supervisor: a detached process that owns one job's torchrun agent from start to end.

    python -m core.supervise --workspace WS --job ID     (started by core.launcher, never by hand)

It starts the job's argv with all output going to <run>/stdout.log (a file, never a pipe that
only a reader drains), writes heartbeat.json every few seconds, watches for a cancel request and
for stalls, and when the agent exits it makes sure no process of the job is left, works out what
happened in words, writes exit.json atomically and records the final state. Then it starts any
queued job that was waiting for these GPUs.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from core import jobs as J
from core import procs
from core.workspace import REPO_ROOT, Workspace, atomic_write_text, python_path

POLL_S = 0.25
HEARTBEAT_S = 2.0
LOADING_GRACE_MIN = 30.0  # model download/load may take long before the first step


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
        self.cancel_at: float | None = None
        self.killed_at: float | None = None
        self.stalled: str | None = None
        self.terminated_by_signal: int | None = None
        self.known_pids: set[int] = set()

    # ---- life cycle -----------------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        job = self.store.get(self.job.id)
        if job.state == J.CANCELLING or (self.run_dir / "cancel.request").exists():
            self.finish(None, cancelled=True)
            return
        try:
            agent = self.start()
        except OSError as e:
            self.finish(None, start_error=str(e))
            return
        self.store.update(self.job.id, agent_pid=agent.pid, agent_ctime=procs.create_time(agent.pid))
        self.store.transition(self.job.id, J.RUNNING)  # no-op when a cancel already moved it to CANCELLING
        self.watch(agent)
        self.finish(agent.returncode)

    def start(self) -> subprocess.Popen:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=python_path(), DANLU_HOME=str(self.ws.root),
                   HF_HUB_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false",
                   # NVLink multicast off: it can take a shared host's GPUs out of service
                   NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1", NVSHMEM_DISABLE_NVLS="1")
        env[procs.MARKER] = self.job.id
        gpus = self.job.gpu_list
        env["CUDA_VISIBLE_DEVICES"] = "" if gpus == ["cpu"] else ",".join(str(g) for g in gpus)
        launch_env = self.run_dir / "launch_env.json"
        if launch_env.exists():
            env.update({k: str(v) for k, v in json.loads(launch_env.read_text()).items()})
        out = open(self.run_dir / "stdout.log", "ab")
        try:
            return subprocess.Popen(self.job.argv_list, cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, close_fds=True)
        finally:
            out.close()

    def _on_signal(self, signum, frame):
        # The supervisor itself is being stopped (shutdown): stop the job the same way a cancel does.
        self.terminated_by_signal = signum
        if self.cancel_at is None:
            self.cancel_at = time.time()

    # ---- watching ---------------------------------------------------------------------------
    def watch(self, agent: subprocess.Popen) -> None:
        last_beat, last_step, last_change = 0.0, None, time.time()
        grace = 30.0
        while agent.poll() is None:
            now = time.time()
            if now - last_beat >= HEARTBEAT_S:
                last_beat = now
                self.heartbeat(agent)
                step, phase = self.progress()
                if step != last_step:
                    last_step, last_change = step, now
                limit = self.stall_limit_s(phase)
                if self.cancel_at is None and now - last_change > limit:
                    self.stalled = f"No training step finished for {limit / 60:.0f} minutes (last step: {last_step or 0})."
                    self.cancel_at = now
            if self.cancel_at is None:
                req = self.run_dir / "cancel.request"
                if req.exists():
                    self.cancel_at = now
                    try:
                        grace = float(json.loads(req.read_text()).get("grace", grace))
                    except (json.JSONDecodeError, OSError, ValueError):
                        pass
            if self.cancel_at is not None and self.killed_at is None:
                if not getattr(self, "_termed", False):
                    self._termed = True
                    # SIGTERM, not SIGKILL: torchrun forwards it to the ranks, which save a checkpoint and stop
                    try:
                        agent.send_signal(signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                elif now - self.cancel_at > grace:
                    self.killed_at = now
                    procs.signal_all(self.tree(agent), signal.SIGKILL)
            time.sleep(POLL_S)

    def tree(self, agent: subprocess.Popen) -> list[psutil.Process]:
        kids = procs.descendants(agent.pid)
        try:
            return [psutil.Process(agent.pid)] + kids
        except psutil.NoSuchProcess:
            return kids

    def heartbeat(self, agent: subprocess.Popen) -> None:
        pids = sorted({p.pid for p in procs.descendants(agent.pid)} | {agent.pid})
        self.known_pids.update(pids)
        atomic_write_text(self.run_dir / "heartbeat.json",
                          json.dumps({"job_id": self.job.id, "time": time.time(), "supervisor_pid": os.getpid(),
                                      "agent_pid": agent.pid, "pids": pids}))

    def progress(self) -> tuple[int | None, str]:
        try:
            p = json.loads((self.run_dir / "progress.json").read_text())
            return p.get("step"), p.get("phase", "")
        except (OSError, json.JSONDecodeError):
            return None, "loading"

    def stall_limit_s(self, phase: str) -> float:
        minutes = float(os.environ.get("DANLU_STALL_MINUTES", 0)) or self.config_stall_minutes()
        if phase in ("", "loading"):
            minutes = max(minutes, LOADING_GRACE_MIN)
        return minutes * 60

    def config_stall_minutes(self) -> float:
        try:
            import yaml
            return float(yaml.safe_load(Path(self.job.config_path).read_text()).get("stall_minutes", 20))
        except Exception:
            return 20.0

    # ---- the end --------------------------------------------------------------------------
    def finish(self, returncode: int | None, cancelled: bool = False, start_error: str | None = None) -> None:
        leftovers = procs.kill_job_processes(self.job.id, exclude={os.getpid()})
        cancelled = cancelled or (self.cancel_at is not None and self.stalled is None)
        state, info = self.outcome(returncode, cancelled, start_error)
        if leftovers:
            info["message"] += f" (processes {leftovers} could not be stopped)"
        exit_info = dict(job_id=self.job.id, returncode=returncode, state=state, ended_at=time.time(),
                         signal=-returncode if returncode is not None and returncode < 0 else None, **info)
        atomic_write_text(self.run_dir / "exit.json", json.dumps(exit_info, indent=2))
        if state == J.FAILED:
            self.write_error_json(info)
        self.store.transition(self.job.id, state, exit_code=returncode, reason=info.get("reason", ""),
                              message=info.get("message", ""), hint=info.get("hint", ""))
        from core.launcher import schedule
        schedule(self.ws)

    def outcome(self, rc: int | None, cancelled: bool, start_error: str | None) -> tuple[str, dict]:
        result = _read_json(self.run_dir / "result.json")
        if start_error:
            return J.FAILED, dict(reason="start_failed", message=f"The job could not start: {start_error}",
                                  hint="Check that the Python environment is complete (make run sets it up).")
        if rc == 0 and result.get("status") == "succeeded":
            return J.SUCCEEDED, dict(reason="", message="Finished.", hint="")
        if cancelled and self.terminated_by_signal is None:
            return J.CANCELLED, dict(reason="cancelled", message="Cancelled by the user.",
                                     hint="Press Resume to continue from the last checkpoint.")
        if self.terminated_by_signal is not None:
            return J.INTERRUPTED, dict(reason="interrupted", message="The job was stopped because its supervisor was "
                                       f"told to stop (signal {self.terminated_by_signal}, e.g. a shutdown).",
                                       hint="Press Resume to continue from the last checkpoint.")
        if self.stalled:
            return J.FAILED, dict(reason="stalled", message=self.stalled,
                                  hint="A GPU or process hung. Resume to continue from the last checkpoint; "
                                       "if it repeats, try fewer GPUs or check the machine.")
        if rc == 0 and self.job.kind != "train":
            return J.SUCCEEDED, dict(reason="", message="Finished.", hint="")
        return J.FAILED, diagnose(self.run_dir, rc)

    def write_error_json(self, info: dict) -> None:
        existing = _read_json(self.run_dir / "error.json")
        merged = dict(existing, **{k: v for k, v in info.items() if v not in (None, "")})
        atomic_write_text(self.run_dir / "error.json", json.dumps(merged, indent=2, default=str))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+)\s*\(local_rank:\s*(\d+)\).*?exitcode\s*:\s*(-?\d+)", re.S)
SIGNAMES = {9: "SIGKILL", 15: "SIGTERM", 6: "SIGABRT", 11: "SIGSEGV", 7: "SIGBUS"}


def diagnose(run_dir: Path, rc: int | None) -> dict:
    """Why a job failed, in words, with the failing rank and the end of its log."""
    log_text = tail_text(run_dir / "stdout.log", 64_000)
    rank, local_rank, exitcode = None, None, None
    m = None
    for m in ROOT_CAUSE.finditer(log_text):
        pass
    if m:
        rank, local_rank, exitcode = int(m.group(1)), int(m.group(2)), int(m.group(3))
    rank_errors = sorted((_read_json(p) for p in (run_dir / "errors").glob("rank*.json")), key=lambda e: e.get("time", 0))
    if rank_errors:
        first = rank_errors[0]
        info = dict(reason=first.get("reason", "crashed"), message=first.get("message", ""), hint=first.get("hint", ""),
                    rank=first.get("rank"))
        if info["reason"] == "crashed" and info["rank"] is not None:
            info["message"] = f"Rank {info['rank']} crashed. " + info["message"]
    elif exitcode is not None and exitcode < 0:
        sig = -exitcode
        if sig == 9:
            info = dict(reason="killed", rank=rank,
                        message=f"Rank {rank} was killed by the system (SIGKILL), usually because the machine ran out of memory (RAM).",
                        hint="Use fewer processes or a smaller batch, close other programs, or check `dmesg` for the out-of-memory killer.")
        else:
            info = dict(reason="crashed", rank=rank,
                        message=f"Rank {rank} stopped with signal {SIGNAMES.get(sig, sig)}.",
                        hint="See the log below; a SIGSEGV/SIGBUS usually means a broken driver or library install.")
    elif rc is not None and rc < 0:
        info = dict(reason="killed", rank=None, message=f"The training launcher was killed (signal {-rc}).",
                    hint="Something outside Danlu stopped it; press Resume to continue from the last checkpoint.")
    else:
        low = log_text.lower()
        if "cuda out of memory" in low or "outofmemoryerror" in low:
            info = dict(reason="cuda_oom", rank=rank, message="The GPU ran out of memory.",
                        hint="Lower 'Batch size per device' or 'Maximum length', or turn on gradient checkpointing.")
        elif "no space left on device" in low:
            info = dict(reason="disk_full", rank=rank, message="The disk is full.", hint="Free some disk space, then press Resume.")
        elif "nccl" in low and "timeout" in low:
            info = dict(reason="nccl_timeout", rank=rank, message="The GPUs stopped hearing from each other (NCCL timeout).",
                        hint="One process hung or died; retry, and if it repeats try fewer GPUs.")
        else:
            who = f"Rank {rank}" if rank is not None else "The training process"
            info = dict(reason="crashed", rank=rank, message=f"{who} exited with code {exitcode if exitcode is not None else rc}.",
                        hint="The log below shows what happened.")
    failing = info.get("rank") if info.get("rank") is not None else rank
    info["log_tail"] = rank_log_tail(run_dir, local_rank if local_rank is not None else failing) or log_text[-6000:]
    return info


def tail_text(path: Path, n: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def rank_log_tail(run_dir: Path, local_rank: int | None, n: int = 6000) -> str:
    """The end of one rank's own output (torchrun --log-dir keeps one folder per rank)."""
    if local_rank is None:
        return ""
    files = sorted((run_dir / "ranks").glob(f"*/attempt_*/{local_rank}/std*.log"), key=lambda p: p.stat().st_mtime)
    text = "".join(tail_text(p, n) for p in files[-2:])
    return text[-n:]


if __name__ == "__main__":
    sys.exit(main())
