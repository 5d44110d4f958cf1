"""The batch script (job.sbatch), read and run. CI has one node, so the multi-node script is checked
on paper: its #SBATCH lines, and a run of it under stand-ins for srun/scontrol/scancel and for
Python that record what each node would start (rendezvous, ranks, environment). The README shows
the very script rendered here for 2 nodes x 8 GPUs."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.slurm.executor import next_attempt_id
from core.slurm.script import ScriptJob, render
from core.slurm.spec import SlurmSpec
from tests.conftest import REPO

JOB = "20261202-120000-abc123"

# Stand-ins: srun runs its command once per node (as --ntasks-per-node=1 does), scontrol knows the
# node names, scancel sends SIGTERM to the recorded "ranks", and "python" records what it was asked.
SRUN = """#!/bin/bash
while [[ "$1" == --* ]]; do echo "$1" >> "$LOG.srun"; shift; done
rc=0; for node in $FAKE_NODES; do SLURMD_NODENAME=$node "$@" || rc=$?; done; exit $rc
"""
SCONTROL = """#!/bin/bash
echo "$*" >> "$LOG.scontrol"
[ "$1 $2" = "show hostnames" ] && for n in $FAKE_NODES; do echo $n; done
[ "$1 $2" = "show job" ] && echo "   PreemptEligibleTime=2026-12-02T10:00:00 PreemptTime=${FAKE_PREEMPTED:-None}"
exit 0
"""
SCANCEL = """#!/bin/bash
echo "$*" >> "$LOG.scancel"
for p in $(cat "$LOG.pids" 2>/dev/null); do kill -TERM $p 2>/dev/null; done; exit 0
"""
FAKE_PY = """#!{python}
import json, os, signal, sys, time
log = os.environ["LOG"]
env = {{k: os.environ.get(k) for k in ("DANLU_HOME", "DANLU_JOB_ID", "PYTHONPATH", "DANLU_FAULT", "NCCL_NVLS_ENABLE",
                                      "SLURMD_NODENAME", "PYTHONUNBUFFERED")}}
with open(log + ".py", "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "env": env}}) + "\\n")
if sys.argv[2] == "torch.distributed.run" and os.environ.get("FAKE_WAIT"):
    with open(log + ".pids", "a") as f:
        f.write(f"{{os.getpid()}}\\n")
    run = os.environ["FAKE_RUN"]
    def stop(*_):
        open(os.path.join(run, "stopped.json"), "w").write("{{}}")  # a rank saved and stopped
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    time.sleep(60)
sys.exit(int(os.environ.get("FAKE_RC", "0")))
"""


def two_by_eight(tmp: Path, **spec) -> ScriptJob:
    ws = tmp / "shared ws"  # a space in the path: every path is quoted
    return ScriptJob(job_id=JOB, run_dir=ws / "runs" / JOB, workspace=ws, repo=tmp / "danlu", python=str(tmp / "bin" / "python"),
                     spec=SlurmSpec(**{**dict(nodes=2, gpus_per_node=8, cpus_per_node=64, mem="480G", time="04:00:00",
                                              partition="gpu", account="lab", requeue=True,
                                              extra_sbatch=["--constraint=h100"]), **spec}),
                     env={"DANLU_FAULT": "crash@3:1"}, name="support bot")


def sbatch_options(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#SBATCH "):
            opt = line[len("#SBATCH "):].split(" #")[0].strip()
            key, _, value = opt.partition("=")
            out[key] = value
    return out


def test_the_sbatch_lines_of_two_nodes_with_eight_gpus(tmp_path):
    job = two_by_eight(tmp_path)
    opts = sbatch_options(render(job))
    assert opts == {"--job-name": f"danlu-{JOB}", "--nodes": "2", "--ntasks-per-node": "1", "--gpus-per-node": "8",
                    "--cpus-per-task": "64", "--mem": "480G", "--time": "04:00:00", "--partition": "gpu",
                    "--account": "lab", "--signal": "B:USR1@300", "--requeue": "",
                    "--output": f'"{job.run_dir}/stdout.log"', "--open-mode": "append", "--chdir": f'"{job.repo}"',
                    "--constraint": "h100"}


def test_one_cpu_node_has_no_gpu_line_and_a_standalone_rendezvous(tmp_path):
    text = render(two_by_eight(tmp_path, nodes=1, gpus_per_node=0, nproc=2, cpus_per_node=None, mem="", time="00:01:00",
                               partition="", account="", requeue=False, extra_sbatch=[]))
    opts = sbatch_options(text)
    assert "--gpus-per-node" not in opts and opts["--cpus-per-task"] == "2" and opts["--signal"] == "B:USR1@10"
    assert "--no-requeue" in opts and "--partition" not in opts
    assert "--standalone --nproc-per-node=2" in text and "rdzv" not in text
    assert "srun --ntasks-per-node=1 test -r" not in text  # one node: nothing to compare


def fake_cluster(tmp: Path, nodes: str = "gpu01 gpu02") -> dict:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL), ("scancel", SCANCEL),
                       ("python", FAKE_PY.format(python=sys.executable))):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp / "log"
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", LOG=str(log), FAKE_NODES=nodes,
                SLURM_JOB_ID="4242", SLURM_JOB_NODELIST="gpu[01-02]")


def calls(tmp: Path, kind: str) -> list:
    path = tmp / f"log.{kind}"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(x) for x in lines] if kind == "py" else lines


def write_script(job: ScriptJob) -> Path:
    job.run_dir.mkdir(parents=True, exist_ok=True)
    (job.run_dir / "config.yaml").write_text("base_model: x\n")
    path = job.run_dir / "job.sbatch"
    path.write_text(render(job))
    return path


def test_each_node_starts_one_torchrun_that_meets_at_the_first_node(tmp_path):
    job = two_by_eight(tmp_path)
    script = write_script(job)
    env = fake_cluster(tmp_path)
    r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = [c for c in calls(tmp_path, "py") if c["argv"][:2] == ["-m", "torch.distributed.run"]]
    assert [c["env"]["SLURMD_NODENAME"] for c in runs] == ["gpu01", "gpu02"]  # one torchrun per node
    for c in runs:
        argv = c["argv"]
        assert argv[2:9] == ["--nnodes=2", "--nproc-per-node=8", "--rdzv-backend=c10d",
                             "--rdzv-endpoint=gpu01:24242", "--rdzv-id=4242", "--max-restarts=0",
                             f"--log-dir={job.run_dir}/ranks"]
        assert argv[-4:] == ["-m", "core.recipes.train", "--config", f"{job.run_dir}/config.yaml"]  # no --resume yet
        assert c["env"] == {"DANLU_HOME": str(job.workspace), "DANLU_JOB_ID": JOB, "PYTHONPATH": str(job.repo),
                            "DANLU_FAULT": "crash@3:1", "NCCL_NVLS_ENABLE": "0", "SLURMD_NODENAME": c["env"]["SLURMD_NODENAME"],
                            "PYTHONUNBUFFERED": "1"}
    srun_opts = calls(tmp_path, "srun")
    assert {"--ntasks-per-node=1", "--cpus-per-task=64", "--kill-on-bad-exit=1"} <= set(srun_opts)
    assert "show hostnames gpu[01-02]" in calls(tmp_path, "scontrol")
    start = json.loads((job.run_dir / "slurm" / "4242.attempt-0.json").read_text())
    end = json.loads((job.run_dir / "slurm" / "4242.attempt-0.end.json").read_text())
    assert (start["slurm_job_id"], start["attempt"], start["nodes"]) == ("4242", 0, "gpu[01-02]")
    assert (end["returncode"], end["stop"], end["requeue"]) == (0, "", 0)


def test_a_requeued_attempt_resumes_without_fault_injection_and_keeps_the_last_attempts_files(tmp_path):
    job = two_by_eight(tmp_path)
    script = write_script(job)
    (job.run_dir / "stopped.json").write_text("{}")
    (job.run_dir / "errors").mkdir()
    env = dict(fake_cluster(tmp_path), SLURM_RESTART_COUNT="2", FAKE_RC="1")
    r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    previous = job.run_dir / "attempts" / next_attempt_id(JOB)
    assert previous.name == f"{JOB}-r1" and (previous / "stopped.json").exists() and (previous / "errors").is_dir()
    runs = [c for c in calls(tmp_path, "py") if c["argv"][:2] == ["-m", "torch.distributed.run"]]
    assert all(c["argv"][-1] == "--resume" and c["env"]["DANLU_FAULT"] is None for c in runs)
    end = json.loads((job.run_dir / "slurm" / "4242.attempt-2.end.json").read_text())
    assert (end["attempt"], end["returncode"], end["stop"]) == (2, 1, "")


@pytest.mark.parametrize("how", ["time_limit", "cancel", "outside", "preempted", "preempted_steps_only"])
def test_the_time_limit_signal_saves_and_requeues_and_a_stop_does_not(tmp_path, how):
    """The time limit's warning is SIGUSR1 (--signal=B:USR1@N); SIGTERM is Stop in Danlu (cancel.request
    written first), a preemption (Slurm set the job's PreemptTime) or a plain scancel from outside. Both were
    SIGTERM: a scancel was taken for the time limit, reported so, and with requeue on the job requeued itself
    (found by a reliability probe). A preemption with a grace time signals the job steps only: the shell
    recorded an end with no stop, and the job was neither requeued nor said to be preempted."""
    job = two_by_eight(tmp_path, nodes=1)
    script = write_script(job)
    env = dict(fake_cluster(tmp_path, nodes="gpu01"), FAKE_WAIT="1", FAKE_RUN=str(job.run_dir))
    if how == "cancel":
        (job.run_dir / "cancel.request").write_text("{}")  # Danlu writes it before it signals the job
    if how.startswith("preempted"):
        env["FAKE_PREEMPTED"] = "2026-12-02T10:05:00"
    shell = subprocess.Popen(["bash", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while not (tmp_path / "log.pids").exists() and time.time() < deadline:
        time.sleep(0.05)
    steps_only = how == "preempted_steps_only"
    if steps_only:  # GraceTime: Slurm's SIGTERM reaches the ranks, not the batch shell
        os.kill(int((tmp_path / "log.pids").read_text().split()[0]), signal.SIGTERM)
        how = "preempted"
    else:
        shell.send_signal(signal.SIGUSR1 if how == "time_limit" else signal.SIGTERM)  # to the batch shell only
    out, _ = shell.communicate(timeout=30)
    assert shell.returncode == 0, out
    assert calls(tmp_path, "scancel") == ([] if steps_only else ["--signal=TERM 4242"])  # passed on to the job steps
    end = json.loads((job.run_dir / "slurm" / "4242.attempt-0.end.json").read_text())
    assert (job.run_dir / "stopped.json").exists()
    requeued = how in ("time_limit", "preempted")
    assert (end["stop"], end["requeue"]) == (how, int(requeued))
    assert ("requeue 4242" in calls(tmp_path, "scontrol")) == requeued


def test_the_readme_shows_the_script_for_two_nodes_with_eight_gpus():
    """The README's example is this renderer's output, so the two cannot drift apart."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- slurm-example -->\n```bash\n(.*?)```", readme, re.S)
    assert block, "README.md lacks the slurm-example block"
    ws = Path("/shared/danlu")
    job = ScriptJob(job_id=JOB, run_dir=ws / "runs" / JOB, workspace=ws, repo=Path("/shared/opt/danlu"),
                    python="/shared/opt/danlu/.venv/bin/python", name="support bot",
                    spec=SlurmSpec(nodes=2, gpus_per_node=8, cpus_per_node=64, mem="480G", time="04:00:00",
                                   partition="gpu", account="my-lab", requeue=True, extra_sbatch=["--constraint=h100"]))
    assert block.group(1) == render(job)
