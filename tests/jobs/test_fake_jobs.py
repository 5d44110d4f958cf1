"""The job system end to end with the real supervisor and torchrun, and a fast fake recipe."""
import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from core import jobs as J
from core import launcher, procs
from core.errors import InputError, JobError
from tests.jobs.util import FAKE, assert_no_process_left, demo_config, progress_step, wait_for

pytestmark = pytest.mark.slow  # starts real supervisors and torchrun (with the fast fake recipe)


def submit(services, env=None, cfg=None, **spec):
    return launcher.submit_train(services.workspace, cfg or demo_config(max_steps=5, logging_steps=1),
                                 launcher.LaunchSpec(env=env or {}, **spec), module=FAKE, origin="shell")


def test_a_job_that_prints_50_mb_with_nobody_reading_completes(services):
    job = submit(services, env={"DANLU_FAULT": "spam@2:0", "DANLU_SPAM_MB": "50"}, cfg=demo_config(max_steps=2))
    job = launcher.wait(services.workspace, job.id, timeout=180)
    assert job.state == J.SUCCEEDED, job.message
    assert (Path(job.run_dir) / "stdout.log").stat().st_size > 50 * 2**20


def _submit_in_child(home, out):
    from core.services import Services
    services = Services.create(home)
    out.put(submit(services, cfg=demo_config(max_steps=3, logging_steps=1)).id)


def test_ten_concurrent_starts_on_one_device_set_run_one_at_a_time(services, home):
    """Ten processes submit at once on the CPU lease: one runs, nine wait QUEUED, and each starts by
    itself when the one before it ends (this test only reads the table; nothing else schedules)."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    ps = [ctx.Process(target=_submit_in_child, args=(home, out)) for _ in range(10)]
    for p in ps:
        p.start()
    ids = [out.get(timeout=120) for _ in ps]
    for p in ps:
        p.join(timeout=60)
    snapshot = [services.store.get(i).state for i in ids]
    # Every job waits its turn: queued, the one running, or done. How many are done by now is the machine's
    # pace (two of the fast fake jobs had finished on a loaded machine, where '>= 8 queued' failed); that
    # none overlapped is checked from their start and end times below.
    assert set(snapshot) <= {J.QUEUED, J.STARTING, J.RUNNING, J.SUCCEEDED}, snapshot
    assert sum(s in (J.STARTING, J.RUNNING) for s in snapshot) <= 1, snapshot
    store = services.store

    def all_done():
        jobs = [store.get(i) for i in ids]
        assert sum(j.state in J.ACTIVE for j in jobs) <= 1, [j.state for j in jobs]  # never two at once
        return all(j.terminal for j in jobs) and jobs
    jobs = wait_for(all_done, timeout=240, poll=0.2, what="ten queued jobs to finish in turn")
    assert [j.state for j in jobs] == [J.SUCCEEDED] * 10
    runs = sorted((j.started_at, j.ended_at) for j in jobs)
    for (s1, e1), (s2, e2) in zip(runs, runs[1:]):
        assert s2 >= e1, "two jobs on the same lease overlapped"


def test_fake_gpu_leases_reach_the_jobs_and_free_gpus_run_in_parallel(services, monkeypatch):
    monkeypatch.setenv("DANLU_FAKE_GPUS", "2")
    slow = {"DANLU_FAKE_STEP_S": "0.3"}
    a = submit(services, env=slow, gpus=[0])
    b = submit(services, env=slow, gpus=[1])
    c = submit(services, gpus=[0, 1])
    assert all(services.store.get(j.id).state in J.ACTIVE for j in (a, b))
    assert services.store.get(c.id).state == J.QUEUED
    done = [launcher.wait(services.workspace, j.id, timeout=120) for j in (a, b, c)]
    assert [j.state for j in done] == [J.SUCCEEDED] * 3
    assert done[2].started_at >= max(done[0].ended_at, done[1].ended_at)
    assert done[0].started_at < done[1].ended_at and done[1].started_at < done[0].ended_at  # side by side
    visible = [json.loads((Path(j.run_dir) / "result.json").read_text())["cuda_visible_devices"] for j in done]
    assert visible == ["0", "1", "0,1"]


def test_no_progress_for_n_minutes_fails_as_stalled(services):
    job = submit(services, env={"DANLU_FAULT": "hang@2", "DANLU_STALL_MINUTES": "0.05"})
    job = launcher.wait(services.workspace, job.id, timeout=120)
    assert job.state == J.FAILED and job.reason == "stalled", (job.reason, job.message)
    assert "No training step finished" in job.message
    assert "test hook DANLU_STALL_MINUTES=0.05" in (Path(job.run_dir) / "stdout.log").read_text()  # never silent
    assert_no_process_left(services, job)


def test_too_little_disk_before_start_fails_without_starting(services):
    job = submit(services, env={"DANLU_MIN_FREE_MB": str(10**12)})
    job = launcher.wait(services.workspace, job.id, timeout=60)
    assert job.state == J.FAILED and job.reason == "disk_full"
    assert "MB are free" in job.message and job.agent_pid is None
    assert json.loads((Path(job.run_dir) / "error.json").read_text())["reason"] == "disk_full"


def test_delete_refuses_while_running_then_removes_the_run(services):
    job = submit(services, env={"DANLU_FAKE_STEP_S": "0.5"}, cfg=demo_config(max_steps=200, logging_steps=1))
    wait_for(lambda: services.store.get(job.id).state == J.RUNNING, 60, what="RUNNING")
    with pytest.raises(JobError) as e:
        launcher.delete(services.workspace, job.id)
    assert "running" in str(e.value) and "cancel" in e.value.hint
    assert Path(job.run_dir).is_dir()
    launcher.cancel(services.workspace, job.id, grace=10)
    assert launcher.wait(services.workspace, job.id, timeout=60).state == J.CANCELLED
    launcher.delete(services.workspace, job.id)
    assert services.store.get(job.id) is None and not Path(job.run_dir).exists()


def failed_job(services):
    job = submit(services, env={"DANLU_FAULT": "crash@3"}, cfg=demo_config(max_steps=6, logging_steps=1, save_steps=2))
    job = launcher.wait(services.workspace, job.id, timeout=120)
    assert job.state == J.FAILED and job.reason == "crashed"
    return job


def test_resume_refuses_when_the_config_changed(services):
    job = failed_job(services)
    cfg = Path(job.config_path)
    cfg.write_text(cfg.read_text().replace("learning_rate: 0.01", "learning_rate: 0.02"))
    with pytest.raises(InputError) as e:
        launcher.resume(services.workspace, job.id)
    assert "config changed" in str(e.value) and "Retry" in str(e.value)
    assert len(services.store.list()) == 1


def test_resume_refuses_when_the_dataset_changed(services):
    job = failed_job(services)
    import yaml
    dataset = Path(yaml.safe_load(Path(job.config_path).read_text())["dataset"])
    with open(dataset, "a") as f:
        f.write('{"messages": [{"role": "user", "content": "new"}, {"role": "assistant", "content": "row"}]}\n')
    with pytest.raises(InputError) as e:
        launcher.resume(services.workspace, job.id)
    assert "dataset" in str(e.value) and "changed" in str(e.value)


def test_resume_and_retry_of_a_failed_fake_job(services):
    job = failed_job(services)
    resumed = launcher.resume(services.workspace, job.id)
    assert resumed.id != job.id and resumed.parent_id == job.id and resumed.run_dir == job.run_dir
    assert "--resume" in resumed.argv_list
    resumed = launcher.wait(services.workspace, resumed.id, timeout=120)
    assert resumed.state == J.SUCCEEDED, resumed.message  # the fault was for the first attempt only
    run = Path(job.run_dir)
    assert json.loads((run / "attempts" / job.id / "launch_env.json").read_text()) == {"DANLU_FAULT": "crash@3"}
    assert not (run / "launch_env.json").exists()
    with pytest.raises(JobError):  # the run was continued already
        launcher.resume(services.workspace, job.id)
    retried = launcher.retry(services.workspace, job.id, {"learning_rate": 0.005}, origin="shell")
    assert retried.run_dir != job.run_dir and retried.parent_id == job.id
    assert "learning_rate: 0.005" in Path(retried.config_path).read_text()
    launcher.cancel(services.workspace, retried.id, grace=5)
    assert launcher.wait(services.workspace, retried.id, timeout=60).terminal


def test_a_killed_supervisor_leaves_training_running_and_reconcile_records_the_end(services):
    """Only the supervisor dies (not its job): training goes on, and reconcile records the truth."""
    job = submit(services, env={"DANLU_FAKE_STEP_S": "0.2"}, cfg=demo_config(max_steps=20, logging_steps=1))
    wait_for(lambda: services.store.get(job.id).state == J.RUNNING, 60, what="RUNNING")
    os.kill(services.store.get(job.id).supervisor_pid, signal.SIGKILL)
    time.sleep(0.5)
    launcher.reconcile(services.workspace)
    assert services.store.get(job.id).state == J.RUNNING  # its ranks still train
    job = launcher.wait(services.workspace, job.id, timeout=120)
    assert job.state == J.SUCCEEDED and "supervisor had gone" in job.message


def test_cancel_without_a_supervisor_sweeps_the_job(services):
    job = submit(services, env={"DANLU_FAKE_STEP_S": "0.5"}, cfg=demo_config(max_steps=200, logging_steps=1), nproc=2)
    wait_for(lambda: services.store.get(job.id).state == J.RUNNING and len(services.store.get(job.id).worker_list) >= 3,
             60, what="RUNNING with the agent and two ranks recorded")
    sup = services.store.get(job.id)
    os.kill(sup.supervisor_pid, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: a cancel in the same instant still sees the supervisor and
    # leaves the ending to it (or to the next reconcile); this test is about the cancel that finds it gone
    wait_for(lambda: not procs.alive(sup.supervisor_pid, sup.supervisor_ctime), 10, what="the supervisor gone")
    recorded = services.store.get(job.id).worker_list
    assert len(recorded) >= 3  # the agent and two ranks
    job = launcher.cancel(services.workspace, job.id)
    assert job.state == J.CANCELLED
    assert procs.job_processes(job.id, recorded) == []
    assert not any(psutil.pid_exists(pid) and procs.alive(pid, t) for pid, t in recorded)


def test_a_shutdown_signal_to_the_supervisor_stops_the_job_as_interrupted(services):
    job = submit(services, env={"DANLU_FAKE_STEP_S": "0.2"}, cfg=demo_config(max_steps=300, logging_steps=1, save_steps=5))
    wait_for(lambda: services.store.get(job.id).state == J.RUNNING and (Path(job.run_dir) / "metrics.jsonl").exists(),
             60, what="RUNNING")
    os.kill(services.store.get(job.id).supervisor_pid, signal.SIGTERM)  # what a system shutdown sends
    job = launcher.wait(services.workspace, job.id, timeout=60)
    assert job.state == J.INTERRUPTED and "Resume" in job.hint
    assert (Path(job.run_dir) / "stopped.json").exists()  # the ranks were asked to save and stop
    assert_no_process_left(services, job)


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_period(services):
    job = submit(services, env={"DANLU_FAULT": "deaf", "DANLU_FAKE_STEP_S": "0.2"},
                 cfg=demo_config(max_steps=300, logging_steps=1), nproc=2)
    wait_for(lambda: len(services.store.get(job.id).worker_list) >= 3 and (Path(job.run_dir) / "metrics.jsonl").exists(),
             60, what="two ranks training")
    t0 = time.time()
    launcher.cancel(services.workspace, job.id, grace=2)
    job = launcher.wait(services.workspace, job.id, timeout=60, poll=0.1)
    assert job.state == J.CANCELLED, job.message
    assert time.time() - t0 >= 2  # SIGTERM first, SIGKILL only after the grace
    assert not (Path(job.run_dir) / "stopped.json").exists()  # the ranks never heard the SIGTERM
    assert_no_process_left(services, job)


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.3])
def test_a_cancel_racing_the_natural_end_records_one_consistent_end(services, delay):
    job = submit(services, env={"DANLU_FAKE_STEP_S": "0.1"}, cfg=demo_config(max_steps=4, logging_steps=1))
    wait_for(lambda: progress_step(job.run_dir) >= 3, 60, what="the last steps")
    time.sleep(delay)
    launcher.cancel(services.workspace, job.id, grace=5)
    job = launcher.wait(services.workspace, job.id, timeout=60)
    exit_info = json.loads((Path(job.run_dir) / "exit.json").read_text())
    assert job.state in (J.SUCCEEDED, J.CANCELLED) and exit_info["state"] == job.state
    finished = (Path(job.run_dir) / "result.json").exists()
    assert (job.state == J.SUCCEEDED) == finished  # SUCCEEDED exactly when the run recorded its result
    assert_no_process_left(services, job)
