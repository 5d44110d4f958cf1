"""Training through a real Slurm cluster (tests/slurm/cluster.py: one node, this machine): the demo
model on the CPU, two training processes on the node. Each case ends with nothing left: Slurm's
queue empty and no process of the job on the machine.

    the CLI, past a time limit      Interrupted (time_limit), requeued, resumed from its checkpoint, Succeeded
    the GUI, restarted mid-job      Start on the cluster in Chromium; the server is killed; a new one reattaches
    Stop                            the ranks save a checkpoint; Cancelled
    a scancel from outside          the ranks save a checkpoint; Cancelled, not requeued
    a preemption (grace time)       the ranks save; Interrupted (preempted), requeued and resumed, Succeeded
    a rank killed                   Failed, naming the rank
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core import jobs as J
from core import launcher, procs
from core.engine import checkpoint as ckpt
from core.slurm.spec import SlurmSpec
from tests.conftest import ENV_DEFAULTS, REPO, run_app
from tests.slurm.cluster import HIGH
from tests.jobs.util import demo_config, demo_yaml, progress_step, rank_pids, read_jsonl, wait_for

pytestmark = pytest.mark.slow
SHORT = dict(logging_steps=1, eval_steps=0, save_steps=0)
TWO_ON_CPU = ["--slurm", "--gpus-per-node", "0", "--nproc", "2"]


def training(job, min_step: int, timeout: float = 120):
    wait_for(lambda: progress_step(job.run_dir) >= min_step, timeout, poll=0.2,
             what=f"job {job.id} to reach step {min_step}")


def assert_nothing_left(slurm, *jobs):
    """Slurm's queue is empty (a finished job may show COMPLETING for a moment) and no process carries
    the jobs' mark (the batch script, srun, torchrun and the ranks all do: DANLU_JOB_ID)."""
    wait_for(lambda: not slurm.squeue(), 60, poll=0.5, what="the Slurm queue to empty")
    for job in jobs:
        wait_for(lambda: not procs.marked(job.id), 30, poll=0.5, what=f"the processes of job {job.id} to end")


def submit(services, max_steps: int, requeue: bool = False, **env):
    spec = launcher.LaunchSpec(executor="slurm", slurm=SlurmSpec(gpus_per_node=0, nproc=2, requeue=requeue), env=env)
    job = launcher.submit_train(services.workspace, demo_config(max_steps=max_steps, **SHORT), spec, origin="shell")
    assert job.executor == "slurm" and job.slurm_job_id.isdigit() and job.state == J.QUEUED
    return job


def test_the_cli_trains_through_a_time_limit_requeued_and_resumed(home, services, slurm, tmp_path):
    """train --slurm --requeue, in the foreground. Once the ranks train, the cluster's admin shortens
    the job's time limit to one minute (`scontrol update`): Slurm warns the job (--signal=B:USR1@N),
    the ranks save, the attempt ends Interrupted, the script requeues it, the next attempt resumes
    from that checkpoint without the slow-down and finishes; the CLI follows both and exits 0.
    (Slurm checks time limits about twice a minute and may warn up to a minute early: shortening the
    limit after the first steps makes the warning come after a checkpoint can be saved, however slow
    the machine.)"""
    cfg = demo_yaml(tmp_path / "c.yaml", max_steps=60, **SHORT)
    env = dict(os.environ, DANLU_HOME=str(home), DANLU_FAULT="slow@2", **ENV_DEFAULTS)  # 1 s more per step
    out = open(tmp_path / "cli.out", "w+")
    cli = subprocess.Popen([sys.executable, str(REPO / "app.py"), "train", str(cfg), *TWO_ON_CPU, "--time", "00:05:00",
                            "--requeue"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        first = wait_for(lambda: [j for j in services.store.list() if j.slurm_job_id], 60, what="the Slurm job")[0]
        training(first, 2)
        limit = lambda minutes: subprocess.run(["scontrol", "update", f"JobId={first.slurm_job_id}",  # noqa: E731
                                                f"TimeLimit={minutes}"], check=True)
        limit(1)
        end = Path(first.run_dir) / "slurm" / f"{first.slurm_job_id}.attempt-0.end.json"
        wait_for(end.exists, 90, poll=0.2, what="the first attempt to end")
        limit(5)  # a limit belongs to the job: the requeued attempt would be warned again after a minute
        assert cli.wait(timeout=240) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
    out.seek(0)
    text = out.read()
    first, second = services.store.get(first.id), services.store.get(first.id + "-r1")
    assert (first.state, first.reason) == (J.INTERRUPTED, "time_limit"), (first.message, text[-3000:])
    assert second is not None and second.state == J.SUCCEEDED and second.parent_id == first.id, text[-3000:]
    assert f"following the next attempt, job {second.id}" in text
    run = Path(first.run_dir)
    saved = json.loads((run / "attempts" / first.id / "stopped.json").read_text())["checkpoint_step"]
    assert saved >= 2 and f"step {saved}" in first.message
    assert json.loads((run / "run_info.json").read_text())["resumed_from_step"] == saved
    steps = [m["step"] for m in read_jsonl(run / "metrics.jsonl") if "loss" in m]
    assert steps == list(range(1, 61))  # the curve continues from the checkpoint, no step twice
    st = json.loads(run_app("jobs", "show", second.id, "--json", home=home).stdout)
    assert (st["executor"], st["slurm_job_id"], st["state"]) == ("slurm", first.slurm_job_id, "succeeded")
    assert [(a["attempt"], a["stop"], a["requeue"]) for a in st["attempts"]] == [(0, "time_limit", 1), (1, "", 0)]
    assert_nothing_left(slurm, first, second)


@pytest.fixture
def spaced(tmp_path, demo_model_dir, monkeypatch):
    """A workspace whose path has a space in it (~/My Danlu): sbatch splits #SBATCH lines at spaces."""
    import shutil

    from core.services import Services
    home = tmp_path / "My Danlu"
    shutil.copytree(demo_model_dir, home / "models" / "danlu-tiny")
    monkeypatch.setenv("DANLU_HOME", str(home))
    return Services.create(home)


def test_stop_saves_a_checkpoint_and_cancels(spaced, slurm):
    services = spaced
    job = submit(services, 300, DANLU_FAULT="slow@2")
    training(job, 2)
    launcher.cancel(services.workspace, job.id)
    job = launcher.wait(services.workspace, job.id, timeout=120, poll=0.5)
    assert (job.state, job.reason) == (J.CANCELLED, "cancelled"), job.message
    stopped = json.loads((Path(job.run_dir) / "stopped.json").read_text())
    saved = ckpt.newest_valid(Path(job.run_dir) / "checkpoints")
    assert saved is not None and saved.name == f"step-{stopped['checkpoint_step']:07d}"
    assert f"step {stopped['checkpoint_step']}" in job.message
    end = json.loads((Path(job.run_dir) / "slurm" / f"{job.slurm_job_id}.attempt-0.end.json").read_text())
    assert (end["stop"], end["requeue"]) == ("cancel", 0)
    assert_nothing_left(slurm, job)


def test_a_scancel_from_outside_saves_a_checkpoint_cancels_and_is_not_requeued(services, slurm):
    """A plain `scancel` (the user in a shell, an admin) was taken for the time limit: "reached its time limit",
    and with requeue on the job requeued itself (the time limit's warning was SIGTERM too)."""
    job = submit(services, 300, requeue=True, DANLU_FAULT="slow@2")
    training(job, 2)
    subprocess.run(["scancel", job.slurm_job_id], check=True, timeout=30)
    job = launcher.wait(services.workspace, job.id, timeout=120, poll=0.5)
    assert (job.state, job.reason, job.message) == (J.CANCELLED, "cancelled", "Cancelled on the cluster (scancel), not from Danlu.")
    end = json.loads((Path(job.run_dir) / "slurm" / f"{job.slurm_job_id}.attempt-0.end.json").read_text())
    assert (end["stop"], end["requeue"]) == ("outside", 0)
    assert ckpt.newest_valid(Path(job.run_dir) / "checkpoints") is not None  # Resume continues from it
    assert_nothing_left(slurm, job)
    assert [j.id for j in services.store.list()] == [job.id]  # no requeued attempt


def test_a_preemption_with_a_grace_time_saves_is_interrupted_requeued_and_resumed(services, slurm):
    """A job of a higher partition takes the node. With a grace time Slurm sends SIGTERM to the job steps
    only: the ranks saved and stopped, the batch shell heard nothing, and Slurm recorded the job as ended
    (COMPLETED or FAILED by srun's exit code), not PREEMPTED and not requeued: Danlu said "stopped by a
    signal from outside" and, requeue ticked, nothing continued. The script now asks for the job's
    PreemptTime, the attempt is Interrupted (preempted), and the next one resumes from its checkpoint."""
    job = submit(services, 30, requeue=True, DANLU_FAULT="slow@2")
    training(job, 2)
    subprocess.run(["sbatch", "--parsable", f"--partition={HIGH}", "--exclusive", "--output=/dev/null", "--wrap=sleep 2"],
                   check=True, timeout=30, capture_output=True)
    first = launcher.wait(services.workspace, job.id, timeout=150, poll=0.5)
    assert (first.state, first.reason) == (J.INTERRUPTED, "preempted"), first.message
    run = Path(first.run_dir)
    end = json.loads((run / "slurm" / f"{first.slurm_job_id}.attempt-0.end.json").read_text())
    assert (end["stop"], end["requeue"]) == ("preempted", 1)
    second = wait_for(lambda: services.store.get(first.id + "-r1"), 30, what="the next attempt's job row")
    second = launcher.wait(services.workspace, second.id, timeout=240, poll=0.5)
    assert second.state == J.SUCCEEDED and second.parent_id == first.id, second.message
    saved = json.loads((run / "attempts" / first.id / "stopped.json").read_text())["checkpoint_step"]
    assert "preemption" in first.message and f"step {saved}" in first.message
    assert json.loads((run / "run_info.json").read_text())["resumed_from_step"] == saved
    assert [m["step"] for m in read_jsonl(run / "metrics.jsonl") if "loss" in m] == list(range(1, 31))
    assert_nothing_left(slurm, first, second)


def test_a_killed_rank_fails_the_job_naming_it(services, slurm):
    job = submit(services, 300, DANLU_FAULT="slow@2")
    training(job, 2)
    ranks = rank_pids(job.id)
    assert sorted(ranks) == [0, 1]
    os.kill(ranks[1], signal.SIGKILL)  # as the out-of-memory killer would
    job = launcher.wait(services.workspace, job.id, timeout=120, poll=0.5)
    assert (job.state, job.reason) == (J.FAILED, "killed"), job.message
    assert job.message.startswith("Rank 1 was killed"), job.message
    st = json.loads(run_app("jobs", "show", job.id, "--json", home=services.workspace.root).stdout)
    assert st["error"]["rank"] == 1 and st["exit_code"] not in (0, None)
    assert_nothing_left(slurm, job)


def test_what_the_cluster_cannot_run_is_refused_in_words(home, services, slurm, tmp_path):
    """A partition it does not have: refused before a job is made. GPUs its nodes do not have: sbatch
    refuses, the job is recorded as Failed (submit_failed) with Slurm's words and a hint. Both exit 2."""
    cfg = demo_yaml(tmp_path / "c.yaml", max_steps=2, **SHORT)
    r = run_app("train", cfg, *TWO_ON_CPU, "--partition", "gpu", "--detach", home=home)
    assert r.returncode == 2 and "no partition 'gpu'" in r.stderr and "its partitions: debug, high" in r.stderr, r.stderr
    assert services.store.list() == []
    r = run_app("train", cfg, "--slurm", "--detach", home=home)  # one GPU per node by default
    assert r.returncode == 2 and "Slurm did not take job" in r.stderr and "0 GPUs per node" in r.stderr, r.stderr
    [job] = services.store.list()
    assert (job.state, job.reason) == (J.FAILED, "submit_failed") and "generic resource" in job.message
    assert not slurm.squeue()
    r = run_app("cluster", "--json", home=home)  # what the page lists, for the shell
    parts = json.loads(r.stdout)["partitions"]
    assert [(p["name"], p["default"], p["nodes"], p["gpus"]) for p in parts] == [("debug", True, 1, 0), ("high", False, 1, 0)]


@pytest.mark.browser
def test_the_gui_starts_a_slurm_job_and_a_restarted_gui_reattaches(home, slurm, browser):
    from playwright.sync_api import expect

    from core.services import Services
    from tests.webui.conftest import live_server, open_app, shot, tab
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    ctx.set_default_timeout(30_000)
    page = ctx.new_page()
    try:
        with live_server(home, keep_jobs=True) as server:
            open_app(page, server.url)
            page.locator("#tpl-demo").click()
            tab(page, "Train")
            page.get_by_label("Slurm cluster").check()
            expect(page.get_by_role("combobox", name="Partition")).to_have_value(re.compile("^debug"))  # from sinfo
            page.locator("#train-slurm-gpus input").fill("0")
            page.locator("#train-nproc input").fill("2")
            page.get_by_role("button", name="Start on the cluster").click()
            expect(page.locator("#train-message")).to_contain_text("Started job", timeout=30_000)
            job_id = re.search(r"\d{8}-\d{6}-[0-9a-f]{6}", page.locator("#train-message").inner_text()).group(0)
            job = Services.create(home).store.get(job_id)
            expect(page.locator("#train-jobs")).to_contain_text(f"Slurm {job.slurm_job_id}")
            shot(page, "slurm-started")
            os.killpg(server.proc.pid, signal.SIGKILL)  # the GUI dies; the job lives on the cluster
            server.proc.wait(timeout=30)
        assert any(line.startswith(job.slurm_job_id + " ") for line in slurm.squeue())
        assert not Services.create(home).store.get(job_id).terminal
        with live_server(home) as server:
            open_app(page, server.url)
            tab(page, "Train")
            expect(page.locator("#train-status")).to_contain_text(job_id)
            expect(page.locator("#train-status")).to_contain_text("Succeeded", timeout=150_000)
            expect(page.locator("#train-jobs")).to_contain_text(f"Slurm {job.slurm_job_id} · {slurm.host}")
            shot(page, "slurm-reattached")
    finally:
        ctx.close()
    job = Services.create(home).store.get(job_id)
    assert job.state == J.SUCCEEDED and job.nproc == 2
    assert json.loads((Path(job.run_dir) / "result.json").read_text())["world_size"] == 2
    assert_nothing_left(slurm, job)
