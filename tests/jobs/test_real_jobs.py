"""The guarantees of issue 3 on the real path: app.py / launcher -> supervisor -> torchrun -> the
QLoRA recipe on the demo model (CPU, gloo). Each test prints its measured time as `[timing] ...`
(run with -s to see them)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from core import jobs as J
from core import launcher, procs, progress
from core.engine import checkpoint as ckpt
from tests.conftest import ENV_DEFAULTS, REPO, run_app
from tests.jobs.util import (assert_no_process_left, demo_config, demo_yaml, progress_step, rank_pids, read_jsonl,
                             wait_for)

pytestmark = pytest.mark.slow
SHORT = dict(logging_steps=1, eval_steps=0, save_steps=0)


def wait_training(services, job, min_step=2, timeout=180):
    wait_for(lambda: progress_step(job.run_dir) >= min_step, timeout, what=f"job {job.id} to reach step {min_step}")
    return services.store.get(job.id)


def metric_steps(run_dir) -> list[int]:
    return [m["step"] for m in read_jsonl(Path(run_dir) / "metrics.jsonl") if "loss" in m or m.get("nonfinite")]


def test_killing_the_cli_that_started_a_job_does_not_stop_it(home, services, tmp_path):
    cfg = demo_yaml(tmp_path / "c.yaml", max_steps=8, **SHORT)
    out = open(tmp_path / "cli.out", "w")
    env = dict(os.environ, DANLU_HOME=str(home), **ENV_DEFAULTS)
    # its own process group, so killing the group is like closing the terminal it ran in
    cli = subprocess.Popen([sys.executable, str(REPO / "app.py"), "train", str(cfg)], cwd=REPO, env=env,
                           stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    job_id = wait_for(lambda: services.store.list() and services.store.list()[0].id, 60, what="the job row")
    job = wait_training(services, services.store.get(job_id), min_step=1)
    os.killpg(cli.pid, signal.SIGKILL)
    cli.wait(timeout=30)
    assert services.store.get(job_id).state == J.RUNNING
    job = launcher.wait(services.workspace, job_id, timeout=240)
    assert job.state == J.SUCCEEDED, job.message
    r = run_app("jobs", "show", job_id, "--json", home=home)  # a new process sees it all
    st = json.loads(r.stdout)
    assert st["state"] == "succeeded" and st["step"] == 8 and st["last_metrics"]["step"] == 8
    assert st["result"]["steps"] == 8 and st["run_dir"] == job.run_dir
    assert metric_steps(job.run_dir) == list(range(1, 9))


def test_cancel_a_running_two_process_job(services):
    job = launcher.submit_train(services.workspace, demo_config(max_steps=500, **SHORT), launcher.LaunchSpec(nproc=2), origin="shell")
    job = wait_training(services, job)
    ranks = rank_pids(job.id)
    assert sorted(ranks) == [0, 1]
    before = procs.job_processes(job.id, job.worker_list)
    assert len(before) >= 4  # supervisor, torchrun agent, two ranks
    t0 = time.time()
    launcher.cancel(services.workspace, job.id)
    job = launcher.wait(services.workspace, job.id, timeout=60, poll=0.1)
    took = time.time() - t0
    print(f"\n[timing] cancel of a 2-process job: CANCELLED after {took:.1f} s")
    assert job.state == J.CANCELLED and job.reason == "cancelled", (job.state, job.message)
    assert took < 30
    assert_no_process_left(services, job)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in before)
    stopped = json.loads((Path(job.run_dir) / "stopped.json").read_text())  # the recipe saved and stopped
    saved = ckpt.newest_valid(Path(job.run_dir) / "checkpoints")
    assert saved is not None and saved.name == f"step-{stopped['checkpoint_step']:07d}"


def test_a_job_stopped_between_logged_steps_shows_the_step_it_stopped_at(services):
    """The status line and the job table read progress.json, written at logging steps: a run stopped at
    step 582 (its log and checkpoint say so) showed 580 (a browser walk)."""
    cfg = demo_config(max_steps=500, logging_steps=4, eval_steps=0, save_steps=0)
    job = launcher.submit_train(services.workspace, cfg, launcher.LaunchSpec(nproc=1, env={"DANLU_FAULT": "slow@1"}),
                                origin="shell")  # a step takes a second: the Stop lands a step or two after step 4
    job = wait_training(services, job, min_step=4)
    launcher.cancel(services.workspace, job.id)
    job = launcher.wait(services.workspace, job.id, timeout=90, poll=0.1)
    assert job.state == J.CANCELLED, job.message
    stopped = json.loads((Path(job.run_dir) / "stopped.json").read_text())
    assert progress.status(job)["step"] == stopped["step"] == stopped["checkpoint_step"], stopped


def test_sigkill_of_one_rank_fails_the_job_and_names_the_rank(services):
    job = launcher.submit_train(services.workspace, demo_config(max_steps=500, **SHORT), launcher.LaunchSpec(nproc=2), origin="shell")
    job = wait_training(services, job)
    victim = rank_pids(job.id)[1]
    t0 = time.time()
    os.kill(victim, signal.SIGKILL)  # what the kernel's out-of-memory killer does
    job = launcher.wait(services.workspace, job.id, timeout=90, poll=0.1)
    took = time.time() - t0
    print(f"\n[timing] SIGKILL of rank 1: FAILED after {took:.1f} s")
    assert job.state == J.FAILED, job.message
    assert job.reason == "killed" and "Rank 1" in job.message and "memory" in job.message, job.message
    assert took < 30
    err = json.loads((Path(job.run_dir) / "error.json").read_text())
    assert err["rank"] == 1 and err["log_tail"]
    assert_no_process_left(services, job)


def test_nan_loss_fails_as_diverged_and_keeps_the_last_good_checkpoint(home, tmp_path):
    cfg = demo_yaml(tmp_path / "c.yaml", max_steps=40, logging_steps=1, eval_steps=0, save_steps=2, nan_patience=3)
    r = run_app("train", cfg, "--detach", home=home, env={"DANLU_FAULT": "nan@3"})
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip().splitlines()[-1]
    from core.services import Services
    services = Services.create(home)
    assert services.store.get(job_id) is not None  # the last line is the job id
    job = launcher.wait(services.workspace, job_id, timeout=180)
    assert job.state == J.FAILED and job.reason == "diverged", (job.reason, job.message)
    metrics = read_jsonl(Path(job.run_dir) / "metrics.jsonl")
    assert [m["step"] for m in metrics if m.get("nonfinite")] == [3, 4, 5]  # stopped after 3 bad logs
    assert metrics[-1]["step"] == 5
    names = [p.name for p in ckpt.list_checkpoints(Path(job.run_dir) / "checkpoints")]
    assert names == ["step-0000002"]  # nothing saved from NaN weights
    st = json.loads(run_app("jobs", "show", job_id, "--json", home=home).stdout)
    assert st["state"] == "failed" and st["reason"] == "diverged" and st["run_dir"] == job.run_dir
    assert st["last_metrics"]["step"] == 5 and st["error"]["hint"] and "NaN" in st["message"]
    assert st["error"]["log_tail"]


def test_disk_full_corrupted_checkpoint_and_power_cut_each_resume_from_the_right_step(home, services):
    """One run, three attempts (each real run costs a model load, so they share one run folder):
    1. the disk fills up before the save at step 6: FAILED(disk_full), checkpoint 4 still loads;
    2. checkpoint 4 gets corrupted; Resume skips it and continues from 2, saves 4 again, then a power
       cut kills every process of the job: the next `jobs list` says INTERRUPTED;
    3. `jobs resume` continues from 4 to the end: the step count goes on above 4, the earlier
       metrics lines are kept and no step appears twice."""
    cfg = demo_config(max_steps=8, logging_steps=1, eval_steps=0, save_steps=2)
    job = launcher.submit_train(services.workspace, cfg, launcher.LaunchSpec(env={"DANLU_FAULT": "enospc@6"}), origin="shell")
    run = Path(job.run_dir)
    job = launcher.wait(services.workspace, job.id, timeout=240)
    assert job.state == J.FAILED and job.reason == "disk_full", (job.reason, job.message)
    assert "Free some disk space" in job.hint
    newest = ckpt.newest_valid(run / "checkpoints")
    assert newest.name == "step-0000004" and ckpt.verify(newest) is None
    adapter, opt, state = ckpt.load(newest)  # the previous checkpoint still loads
    assert state["step"] == 4 and adapter and opt["state"]

    weights = newest / "adapter_model.safetensors"  # a bad disk flips bytes in the newest checkpoint
    data = bytearray(weights.read_bytes())
    data[-10:] = b"\xff" * 10
    weights.write_bytes(bytes(data))
    # rank 0 hangs at step 5, after the new checkpoint 4, so the power cut lands at a known point
    second = launcher.resume(services.workspace, job.id, env={"DANLU_FAULT": "hang@5:0"})
    wait_for(lambda: services.store.get(second.id).state == J.RUNNING and progress_step(run) == 4
             and (run / "checkpoints" / "step-0000004" / "manifest.json").is_file()
             and "resumed from step-0000002" in (run / "stdout.log").read_text(), 240, what="step 4 saved again")
    log = (run / "stdout.log").read_text()
    assert "skipping checkpoint step-0000004: adapter_model.safetensors is corrupted" in log
    # the failed attempt logged steps 3-6 after checkpoint 2: kept aside, out of the curve
    assert [m["step"] for m in read_jsonl(run / "metrics.after-checkpoint.jsonl")] == [3, 4, 5, 6]
    time.sleep(1.0)
    victims = procs.job_processes(second.id, services.store.get(second.id).worker_list)
    assert len(victims) >= 2  # the supervisor and the rank (one process: no torchrun agent between)
    for p in victims:  # the power cut: every process of the job at once, no chance to write anything
        p.kill()
    psutil.wait_procs(victims, timeout=10)
    t0 = time.time()
    r = run_app("jobs", "list", "--json", home=home)
    took = time.time() - t0
    print(f"\n[timing] power cut: the next `jobs list` showed INTERRUPTED after {took:.1f} s")
    row = next(j for j in json.loads(r.stdout) if j["id"] == second.id)
    assert row["state"] == "interrupted" and "Resume" in row["hint"]
    assert not (run / "exit.json").exists()

    r = run_app("jobs", "resume", second.id, home=home)
    assert r.returncode == 0, r.stderr
    third = r.stdout.strip().splitlines()[-1]
    assert services.store.get(third).parent_id == second.id
    done = launcher.wait(services.workspace, third, timeout=240)
    assert done.state == J.SUCCEEDED, done.message
    assert json.loads((run / "run_info.json").read_text())["resumed_from_step"] == 4
    assert "resumed from step-0000004" in (run / "stdout.log").read_text()
    assert metric_steps(run) == list(range(1, 9))  # earlier lines kept, the count continued above 4
    assert json.loads((run / "result.json").read_text())["steps"] == 8
    st = json.loads(run_app("jobs", "show", second.id, "--json", home=home).stdout)
    assert st["state"] == "interrupted"  # an earlier attempt keeps its own truth
