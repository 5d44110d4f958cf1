"""The executor's reconcile without a cluster: Slurm's commands answer what a real cluster answered in
a probe (tests/slurm/test_cluster.py runs the real thing), and the run folder holds what the batch
script and the ranks wrote."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from core import jobs as J
from core import launcher
from core.slurm import commands, executor
from core.slurm.commands import QueueEntry, SlurmError
from core.messages import Msg

SLURM_ID = "7"


@pytest.fixture
def cluster(monkeypatch):
    """Slurm's answers, set by each test: squeue's entries (or an error), sacct's state."""
    said = {"queue": {}, "accounting": "", "asked": 0}

    def queue(ids):
        said["asked"] += 1
        if isinstance(said["queue"], Exception):
            raise said["queue"]
        return {i: e for i, e in said["queue"].items() if i in ids}

    monkeypatch.setattr(commands, "queue", queue)
    monkeypatch.setattr(commands, "accounting", lambda job_id, name: said["accounting"])
    executor.forget_cache()
    yield said
    executor.forget_cache()


def slurm_job(services, tmp_path: Path, state: str = J.QUEUED, slurm_id: str = SLURM_ID) -> J.Job:
    run = tmp_path / "run"
    (run / "slurm").mkdir(parents=True)
    job = services.store.create(kind="train", name="demo", run_dir=str(run), executor="slurm", slurm_job_id=slurm_id,
                                nproc=2)
    for step in {J.QUEUED: [], J.RUNNING: [J.STARTING, J.RUNNING]}[state]:
        services.store.transition(job.id, step)
    return services.store.get(job.id)


def entry(job: J.Job, state: str, restarts: int = 0, reason: str = "") -> QueueEntry:
    """squeue's line for this job's Slurm job (its name is Danlu's: danlu-<first id>)."""
    return QueueEntry(job.slurm_job_id, state, restarts, "vm" if state != "PENDING" else "", reason, name=executor.slurm_name(job))


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def attempt_ran(job: J.Job, end: dict | None, started: int = 1_796_000_000) -> None:
    """The batch script's records of attempt 0: its start, and how it ended (None: it recorded no end)."""
    slurm, sid = Path(job.run_dir) / "slurm", job.slurm_job_id
    write(slurm / f"{sid}.attempt-0.json", {"slurm_job_id": sid, "attempt": 0, "nodes": "vm", "started": started})
    if end is not None:
        write(slurm / f"{sid}.attempt-0.end.json", {"slurm_job_id": sid, "attempt": 0, "requeue": 0, **end})


def test_a_job_that_ran_and_ended_while_nobody_looked_ends_in_its_state(services, cluster, tmp_path):
    """`train --slurm --detach`, then `jobs list` after Slurm has run it and forgotten it: the job still
    read Queued, for good (Succeeded does not follow Queued), its result unrecorded."""
    job = slurm_job(services, tmp_path)
    attempt_ran(job, {"returncode": 0, "stop": ""}, started=1_796_000_123)
    write(Path(job.run_dir) / "result.json", {"status": "succeeded"})
    launcher.reconcile(services.workspace)
    job = services.store.get(job.id)
    assert (job.state, job.started_at) == (J.SUCCEEDED, 1_796_000_123)


def test_a_job_preempted_while_nobody_looked_is_interrupted_not_left_queued(services, cluster, tmp_path):
    job = slurm_job(services, tmp_path)
    attempt_ran(job, {"returncode": 0, "stop": "preempted"})
    write(Path(job.run_dir) / "stopped.json", {"step": 5, "checkpoint_step": 5})
    cluster["queue"] = {SLURM_ID: entry(job, "PREEMPTED")}
    launcher.reconcile(services.workspace)
    job = services.store.get(job.id)
    assert (job.state, job.reason) == (J.INTERRUPTED, "preempted"), job.message


def test_a_controller_that_does_not_answer_is_asked_once_and_leaves_the_jobs_as_they_are(services, cluster, tmp_path,
                                                                                          monkeypatch):
    """squeue retries for ~10 s before it says the controller is down, and reconcile asked once per job:
    `jobs list` with the probe cluster's slurmctld stopped took 20 s for one job, the GUI's start more
    for several. Nothing changes state on a failed squeue; once it answers, the jobs go on."""
    jobs = [slurm_job(services, tmp_path / str(i), J.RUNNING, slurm_id=str(7 + i)) for i in range(3)]
    for job in jobs:
        attempt_ran(job, None)
    cluster["queue"] = SlurmError(Msg("cluster.failed", command="squeue", words="Unable to contact slurm controller"))
    launcher.reconcile(services.workspace)
    launcher.reconcile(services.workspace)
    assert cluster["asked"] == 1
    assert [services.store.get(j.id).state for j in jobs] == [J.RUNNING] * 3
    monkeypatch.setattr(executor, "DOWN_TTL_S", 0.0)  # later: it answers again
    cluster["queue"] = {j.slurm_job_id: entry(j, "RUNNING") for j in jobs}
    launcher.reconcile(services.workspace)
    assert cluster["asked"] == 2 and [services.store.get(j.id).state for j in jobs] == [J.RUNNING] * 3


def test_a_job_whose_node_failed_before_it_started_is_interrupted_not_left_queued(services, cluster, tmp_path):
    """Slurm ends a job NODE_FAIL (BOOT_FAIL: a cloud node that never came up) before its batch script
    ran: Interrupted does not follow Queued, and with no start record the job stayed Queued for good."""
    job = slurm_job(services, tmp_path)
    cluster["queue"] = {SLURM_ID: entry(job, "NODE_FAIL", reason="NodeDown")}
    launcher.reconcile(services.workspace)
    job = services.store.get(job.id)
    assert (job.state, job.reason, job.started_at) == (J.INTERRUPTED, "node_fail", None), job.message


@pytest.mark.parametrize("accounting", ["CANCELLED", ""])
def test_a_queued_job_cancelled_on_the_cluster_and_forgotten_reads_cancelled(services, cluster, tmp_path, accounting):
    """`train --slurm --detach`, the job waits (Resources), someone runs `scancel` on it, and Slurm forgets
    it (MinJobAge) before any Danlu looks: it ended Failed, 'ended before it started training', with a hint
    about shared filesystems (found on a one-node cluster with MinJobAge=2). sacct's CANCELLED, where the
    cluster keeps accounting, was never asked for a Queued job; without accounting, a job with no start
    record and no line of output never reached a node: it was taken out of the queue."""
    job = slurm_job(services, tmp_path)
    cluster["accounting"] = accounting
    launcher.reconcile(services.workspace)
    job = services.store.get(job.id)
    code = "cluster.cancelled_elsewhere" if accounting else "cluster.cancelled_waiting"
    assert (job.state, job.reason) == (J.CANCELLED, "cancelled"), job.message
    assert json.loads(job.message_msg)["code"] == code and "not from Danlu" in job.message


def test_a_job_that_reached_a_node_and_vanished_before_it_started_stays_a_start_failure(services, cluster, tmp_path):
    """Slurm's output file exists (slurmstepd made it on the node) but the batch script never recorded
    its start: something on the node failed, not a cancel while it waited."""
    job = slurm_job(services, tmp_path)
    (Path(job.run_dir) / "stdout.log").write_text("slurmstepd: error: execve(): bash: No such file or directory\n")
    launcher.reconcile(services.workspace)
    assert services.store.get(job.id).state == J.FAILED


def test_a_requeued_attempt_waits_while_slurm_closes_the_one_before(services, cluster, tmp_path):
    """A requeue (the script's after a time limit, or `scontrol requeue`): Slurm counts the restart at once
    and shows the job COMPLETING while the old attempt closes, then PENDING (BeginTime, 120 s on a default
    cluster). The next attempt's row went Running, 'about 39 s left', for all that time (found with
    `scontrol requeue` on a one-node cluster)."""
    first = slurm_job(services, tmp_path, J.RUNNING)
    attempt_ran(first, {"returncode": 1, "stop": "time_limit", "requeue": 1})
    cluster["queue"] = {SLURM_ID: entry(first, "COMPLETING", 1)}
    launcher.reconcile(services.workspace)
    assert services.store.get(first.id).state == J.INTERRUPTED
    second = services.store.get(executor.next_attempt_id(first.id))
    launcher.reconcile(services.workspace)
    assert services.store.get(second.id).state == J.QUEUED
    write(Path(first.run_dir) / "slurm" / f"{SLURM_ID}.attempt-1.json", {"slurm_job_id": SLURM_ID, "attempt": 1})
    cluster["queue"] = {SLURM_ID: entry(first, "RUNNING", 1)}
    executor.forget_cache()
    launcher.reconcile(services.workspace)
    assert services.store.get(second.id).state == J.RUNNING


def test_another_job_with_the_same_number_is_not_taken_for_this_one(services, cluster, tmp_path, monkeypatch):
    """A controller restarted without its saved state (a one-node cluster after `scontrol reconfigure`)
    counts job numbers from the start again: the number of a Danlu job Slurm had forgotten went to
    another job. Danlu matched its jobs by the number only: the ended job read Running for as long as the
    other ran, and Stop sent scancel to the other job. Slurm's job name (danlu-<id>) must match too."""
    job = slurm_job(services, tmp_path, J.RUNNING)
    attempt_ran(job, {"returncode": 0, "stop": ""})
    write(Path(job.run_dir) / "result.json", {"status": "succeeded"})
    other = SimpleNamespace(job_id=SLURM_ID, state="RUNNING", restarts=0, nodes="vm", reason="", time_limit="",
                            name="someone-elses-job")  # squeue's line of the other job
    cluster["queue"] = {SLURM_ID: other}
    launcher.reconcile(services.workspace)
    assert services.store.get(job.id).state == J.SUCCEEDED
    scancels = []
    monkeypatch.setattr(commands, "run", lambda argv, **kw: scancels.append(argv))
    job = slurm_job(services, tmp_path / "2", J.RUNNING)  # Stop pressed on a job Slurm has forgotten
    executor.SlurmExecutor().stop(services.workspace, job, grace=30)
    executor.SlurmExecutor().sweep(job)
    assert scancels and all(f"--jobname=danlu-{job.id}" in argv for argv in scancels), scancels  # Slurm checks it


def test_a_requeued_attempt_is_known_by_the_name_of_the_job_that_submitted():
    """Attempt rows (<id>-rN) are the same Slurm job: danlu-<first id>, as the batch script named it."""
    from core.slurm.script import job_name
    first = "20261205-030239-abc123"
    assert executor.slurm_name(SimpleNamespace(id=first + "-r2")) == job_name(first) == f"danlu-{first}"
