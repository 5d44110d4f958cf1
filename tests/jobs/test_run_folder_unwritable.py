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
