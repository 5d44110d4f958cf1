"""A run folder that can no longer be written (the disk filled up, the drive went read-only or was
unmounted) while a job runs: the supervisor's heartbeat failed with OSError, it took that for a bug of
its own, could not write exit.json either and died, and the next listing said the job's processes
had 'disappeared without recording how they ended' (found by the survival probe: a read-only bind
mount over a running job's folder)."""
import errno
import subprocess
import sys

from core import jobs as J
from core import supervise
from core.rundir import RunDir
from tests.jobs.util import demo_yaml


def test_a_run_folder_that_cannot_be_written_stops_the_job_and_the_table_says_why(services, monkeypatch, tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    job = services.store.create(kind="train", run_dir=str(run.path), config_path=str(demo_yaml(run.config)))
    assert services.store.transition(job.id, J.STARTING) and services.store.transition(job.id, J.RUNNING)
    sup = supervise.Supervisor(services.workspace, job.id)

    def read_only(path, data, durable=True):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(supervise, "write_json", read_only)  # heartbeat.json, exit.json, error.json
    agent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        sup.remember(agent.pid)
        sup.watch(agent)               # the first heartbeat fails: the job is stopped (SIGTERM), not left running
        sup.finish(agent.returncode)   # exit.json cannot be written: the job table records the end all the same
    finally:
        agent.kill()
        agent.wait()
    job = services.store.get(job.id)
    assert (job.state, job.reason) == (J.FAILED, "run_dir_unwritable")
    assert str(run.path) in str(job.message) and "Read-only file system" in str(job.message)
    assert "writable again" in str(job.hint)


def test_a_run_folder_deleted_while_the_job_runs_stops_it_saying_so(services):
    """The folder deleted mid-run: training re-created it and ended Succeeded in a folder without its
    config.yaml or log (noted by the survival probe); an export of it then had no settings to describe."""
    import os
    import shutil
    import psutil
    from core import launcher
    from tests.jobs.util import FAKE, demo_config, wait_for
    ws = services.workspace
    job = launcher.submit_train(ws, demo_config(max_steps=400, logging_steps=1), launcher.LaunchSpec(env={"DANLU_FAKE_STEP_S": "0.1"}),
                                module=FAKE, origin="shell")
    wait_for(lambda: RunDir(job.run_dir).metrics.exists(), 90, what="first metrics")
    trash = job.run_dir + ".deleted"  # out of its place at once (rmtree alone races the rank's next write)
    os.rename(job.run_dir, trash)
    shutil.rmtree(trash)
    done = launcher.wait(ws, job.id, timeout=120)
    assert (done.state, done.reason) == (J.FAILED, "run_dir_deleted"), (done.state, done.reason, done.message)
    assert job.run_dir in done.message and "jobs delete" in done.hint
    def left():  # the job's processes still there: its ranks, and its supervisor until it has exited
        return [p for p in psutil.process_iter(["environ", "cmdline"]) if (p.info["environ"] or {}).get("DANLU_JOB_ID") == job.id]
    assert not [p for p in left() if "core.supervise" not in p.info["cmdline"]]  # no rank outlives the end
    wait_for(lambda: not left(), 30, what="the supervisor to exit after writing the end")


def test_a_deleted_run_folder_stops_a_job_whose_processes_carry_on(services, tmp_path):
    """A rank that writes nothing for a while (or re-creates the folder with its next write) does not fail
    on the deletion: the supervisor's heartbeat notices and stops it."""
    import shutil
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    job = services.store.create(kind="train", run_dir=str(run.path), config_path=str(demo_yaml(run.config)))
    assert services.store.transition(job.id, J.STARTING) and services.store.transition(job.id, J.RUNNING)
    sup = supervise.Supervisor(services.workspace, job.id)
    agent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        sup.remember(agent.pid)
        shutil.rmtree(run.path)
        run.path.mkdir()               # made again, as a rank's next write would: another folder all the same
        sup.watch(agent)               # stopped (SIGTERM) at the first heartbeat, not after 120 s
        sup.finish(agent.returncode)
    finally:
        agent.kill()
        agent.wait()
    job = services.store.get(job.id)
    assert (job.state, job.reason) == (J.FAILED, "run_dir_deleted") and str(run.path) in job.message
    assert not run.heartbeat.exists()  # nothing written into the new folder as if it were the run's
