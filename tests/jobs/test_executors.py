"""The executor seam: the launcher, the job table and its states work with any executor that answers
start/poll/cancel/sweep/logs. A scripted executor (no process at all: the test plays the machine
that runs the job, writing its run record) stands in for a second one, such as a cluster."""
import pytest

from core import jobs as J
from core import launcher, progress
from core.executors import EXECUTORS, GONE, ORPHANED, OWNED, LocalExecutor, executor_for
from core.messages import Msg, said, size_msg
from core.rundir import RunDir, write_json
from tests.jobs.util import demo_config


class ScriptedExecutor:
    name = "scripted"
    schedules_itself = False

    def __init__(self):
        self.where: dict[str, str] = {}   # job id -> what poll() answers
        self.calls: list[tuple] = []

    def start(self, ws, job):
        self.calls.append(("start", job.id))
        self.where[job.id] = OWNED
        return {}

    def poll(self, job):
        return self.where[job.id]

    def cancel(self, ws, job, grace):
        self.calls.append(("cancel", job.id, grace))

    def sweep(self, job):
        self.calls.append(("sweep", job.id))
        self.where[job.id] = GONE
        return True

    def logs(self, job):
        return RunDir(job.run_dir).path / "scripted.log"


@pytest.fixture
def scripted(monkeypatch):
    ex = ScriptedExecutor()
    monkeypatch.setitem(EXECUTORS, ex.name, ex)
    return ex


def submit(services):
    return launcher.submit_train(services.workspace, demo_config(max_steps=2), launcher.LaunchSpec(executor="scripted"),
                                 origin="shell")


def test_a_job_names_its_executor_and_ends_from_its_own_record(services, scripted):
    job = submit(services)
    assert job.executor == "scripted" and job.state == J.STARTING and scripted.calls == [("start", job.id)]
    assert services.store.transition(job.id, J.RUNNING)
    launcher.reconcile(services.workspace)                       # owned there: left alone
    assert services.store.get(job.id).state == J.RUNNING
    run = RunDir(job.run_dir)
    write_json(run.exit, dict(job_id=job.id, state=J.SUCCEEDED, returncode=0, reason="", message="Finished.", hint=""))
    launcher.reconcile(services.workspace)
    job = services.store.get(job.id)
    assert job.state == J.SUCCEEDED and job.message == "Finished."
    assert progress.status(job)["executor"] == "scripted"
    run.path.joinpath("scripted.log").write_text("hello from the cluster\n")
    assert progress.log_tail(job) == "hello from the cluster\n"


def test_cancel_goes_through_the_executor_and_a_gone_job_is_finalised(services, scripted):
    job = submit(services)
    services.store.transition(job.id, J.RUNNING)
    launcher.cancel(services.workspace, job.id, grace=7)
    assert ("cancel", job.id, 7) in scripted.calls
    assert services.store.get(job.id).state == J.CANCELLING      # its owner records the end
    scripted.where[job.id] = ORPHANED                            # the owner died; processes are left
    launcher.reconcile(services.workspace)
    assert ("sweep", job.id) in scripted.calls
    assert services.store.get(job.id).state == J.CANCELLED


def test_a_resumed_job_keeps_its_executor(services, scripted):
    job = submit(services)
    services.store.transition(job.id, J.RUNNING)
    scripted.where[job.id] = GONE                                # vanished without a record
    launcher.reconcile(services.workspace)
    assert services.store.get(job.id).state == J.INTERRUPTED
    resumed = launcher.resume(services.workspace, job.id)
    assert resumed.executor == "scripted" and ("start", resumed.id) in scripted.calls


def test_a_rank_s_recorded_failure_wins_over_interrupted_when_no_end_was_written(services, scripted):
    """A full disk: the rank records disk_full, then the supervisor cannot write exit.json and dies.
    The next listing said 'Interrupted: the processes disappeared without recording how they ended'."""
    job = submit(services)
    services.store.transition(job.id, J.RUNNING)
    run = RunDir(job.run_dir)
    run.errors.mkdir(parents=True, exist_ok=True)
    write_json(run.rank_error(0), dict(rank=0, time=1.0, reason="disk_full", **said(
        Msg("fail.disk_full_saving_detail", detail=Msg("fail.low_disk", free=size_msg(0), path=str(run.path), need=size_msg(50 << 20))),
        Msg("fail.free_disk_runs.hint"))))
    scripted.where[job.id] = GONE                                # nothing of it is left, no exit.json
    launcher.reconcile(services.workspace)
    job = services.store.get(job.id)
    assert (job.state, job.reason) == (J.FAILED, "disk_full")
    assert "The disk is full" in str(job.message) and "Free some disk space" in str(job.hint)


def test_a_rank_that_only_lost_its_peer_is_no_cause_and_a_vanished_job_stays_interrupted(services, scripted):
    job = submit(services)
    services.store.transition(job.id, J.RUNNING)
    run = RunDir(job.run_dir)
    run.errors.mkdir(parents=True, exist_ok=True)
    write_json(run.rank_error(1), dict(rank=1, time=1.0, reason="peer_lost", message="lost rank 0"))
    scripted.where[job.id] = GONE
    launcher.reconcile(services.workspace)
    assert services.store.get(job.id).state == J.INTERRUPTED


def test_local_is_the_default_and_unknown_names_are_refused(services):
    assert isinstance(executor_for("local"), LocalExecutor)
    job = services.store.create(kind="train", run_dir="/r")
    assert job.executor == "local"
    with pytest.raises(ValueError, match="no executor called 'nowhere'"):
        launcher.submit_train(services.workspace, demo_config(), launcher.LaunchSpec(executor="nowhere"), origin="shell")
