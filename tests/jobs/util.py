"""Helpers for the job-system tests: demo configs, waiting for conditions, killing a job's processes."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil
import yaml

from core import procs
from core.config import TrainConfig, from_dict
from core.presets import compose
from core.rundir import read_json

FAKE = "tests.jobs.fake_recipe"


def job_in(store, folder: Path, *states: str):
    """A training job of the job table whose run folder is `folder` (made here), moved through `states`
    (e.g. STARTING, RUNNING, FAILED) as a supervisor would; the job as the table has it then."""
    folder.mkdir(parents=True, exist_ok=True)
    job = store.create(kind="train", name="x", run_dir=str(folder), config_path=str(folder / "config.yaml"),
                       argv=[sys.executable, "-m", "core.recipes.train", "--config", str(folder / "config.yaml")],
                       gpus=["cpu"], nproc=1)
    for state in states:
        assert store.transition(job.id, state)
    return store.get(job.id)


def demo_config(**edits) -> TrainConfig:
    """The demo template's config (tiny model, 124 rows), with edits such as max_steps=6."""
    return from_dict({**compose("demo"), **edits}, source="test")


def demo_yaml(path: Path, **edits) -> Path:
    data = compose("demo")
    data.update(edits)
    path.write_text(yaml.safe_dump(data))
    return path


def wait_for(cond, timeout: float, poll: float = 0.1, what: str = "condition"):
    """Poll cond() until it returns something truthy; fail with `what` after timeout seconds."""
    deadline = time.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def progress_step(run_dir) -> int:
    """The step a job's progress.json says (0 before it is written)."""
    return read_json(Path(run_dir) / "progress.json").get("step") or 0


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rank_pids(job_id: str) -> dict[int, int]:
    """{rank: pid} of a job's training processes, from their environment (torchrun sets RANK)."""
    out = {}
    for p in procs.marked(job_id):
        try:
            env = p.environ()
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if "RANK" in env and "torch.distributed.run" not in cmd and "core.supervise" not in cmd:
            out[int(env["RANK"])] = p.pid
    return out


def assert_no_process_left(services, job):
    """No training process is left when the end is recorded; the supervisor itself exits right after."""
    job = services.store.get(job.id)
    left = [p.pid for p in procs.job_processes(job.id, job.worker_list) if p.pid != job.supervisor_pid]
    assert left == [], f"processes {left} of job {job.id} outlived it"
    wait_for(lambda: not procs.alive(job.supervisor_pid, job.supervisor_ctime), 30, what="the supervisor to exit")
