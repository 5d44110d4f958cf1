"""How an attempt of a Slurm job ended: the run's files first, then Stop, the script's record,
Slurm's word, and last the log (which names the failing rank)."""
import pytest

from core import jobs as J
from core.slurm.outcome import AttemptFacts, attempt_log, outcome

STARTED = {"slurm_job_id": "7", "attempt": 0, "nodes": "vm", "started": 1}
TORCHRUN_FAILURE = """[default0]:step 3/40
Failures:
[1]:
  time      : 2026-12-02_10:00:01
  host      : vm
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 4242)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4242
Root Cause (first observed failure):
[0]:
  rank      : 0 (local_rank: 0)
  exitcode  : 1
"""


def facts(**kw):
    return AttemptFacts(**{**dict(attempt=0, slurm_job_id="7", slurm_state="COMPLETED", slurm_restarts=0,
                                  started=STARTED, ended={"returncode": 0, "stop": "", "requeue": 0}), **kw})


@pytest.mark.parametrize("kw,state,reason", [
    (dict(result={"status": "succeeded"}), J.SUCCEEDED, ""),
    (dict(result={"status": "succeeded"}, cancel_requested=True), J.SUCCEEDED, ""),
    (dict(cancel_requested=True, stopped={"checkpoint_step": 5}, ended={"returncode": 0, "stop": "cancel"}), J.CANCELLED, "cancelled"),
    (dict(ended={"returncode": 1, "stop": "time_limit", "requeue": 0}, stopped={"checkpoint_step": 6}), J.INTERRUPTED, "time_limit"),
    (dict(slurm_state="TIMEOUT", ended={}), J.INTERRUPTED, "time_limit"),
    (dict(slurm_state="PREEMPTED", ended={}), J.INTERRUPTED, "preempted"),
    (dict(slurm_state="PENDING", slurm_restarts=1, ended={}), J.INTERRUPTED, "preempted"),
    (dict(slurm_state="NODE_FAIL", ended={}), J.INTERRUPTED, "node_fail"),
    (dict(slurm_state="OUT_OF_MEMORY", ended={}), J.FAILED, "killed"),
    (dict(ended={"returncode": 3, "stop": "not_shared"}), J.FAILED, "not_shared"),
    (dict(slurm_state="CANCELLED", ended={}), J.CANCELLED, "cancelled"),
    # a plain scancel: the batch shell saw SIGTERM without cancel.request, every rank saved and stopped
    (dict(slurm_state="CANCELLED", stopped={"checkpoint_step": 4}, ended={"returncode": 0, "stop": "outside"}),
     J.CANCELLED, "cancelled"),
    (dict(slurm_state="PREEMPTED", stopped={"checkpoint_step": 4}, ended={"returncode": 0, "stop": "outside"}),
     J.INTERRUPTED, "preempted"),
    # the batch script saw the job's PreemptTime (Slurm has since forgotten the job: no word of its own)
    (dict(slurm_state="", stopped={"checkpoint_step": 4}, ended={"returncode": 0, "stop": "preempted"}),
     J.INTERRUPTED, "preempted"),
    (dict(stopped={"checkpoint_step": 2}, ended={"returncode": 1, "stop": ""}), J.INTERRUPTED, "interrupted"),
    (dict(slurm_state="FAILED", started={}, ended={}), J.FAILED, "start_failed"),
])
def test_outcomes(kw, state, reason):
    got_state, info = outcome(facts(**kw))
    assert (got_state, info["reason"]) == (state, reason), info


def killed(cause: str) -> str:
    """slurmstepd's line in the job's output (Slurm 22.05) when Slurm itself ends the job."""
    return f"[danlu] Slurm job 7, attempt 0, on vm\nslurmstepd-vm: error: *** JOB 7 ON vm CANCELLED AT 2026-12-04T23:30:06 {cause} ***\n"


FORGOTTEN = dict(slurm_state="", slurm_restarts=-1)  # squeue no longer lists it; no accounting (sacct refuses)


@pytest.mark.parametrize("kw,state,reason", [
    # the batch shell heard SIGTERM before Slurm's kill and took it for a scancel
    (dict(log_text=killed("DUE TO PREEMPTION"), ended={"returncode": 0, "stop": "outside"}, stopped={"checkpoint_step": 4}),
     J.INTERRUPTED, "preempted"),
    (dict(log_text=killed("DUE TO NODE FAILURE, SEE SLURMCTLD LOG FOR DETAILS"), ended={"returncode": 0, "stop": ""},
          stopped={"checkpoint_step": 5}), J.INTERRUPTED, "node_fail"),
    (dict(log_text=killed("DUE TO TIME LIMIT"), ended={}), J.INTERRUPTED, "time_limit"),
    # the batch shell itself was killed (a node lost): no end recorded, nothing in the log
    (dict(ended={}, stopped={}), J.INTERRUPTED, "interrupted"),
    (dict(log_text=killed("").replace(" ***", "***"), ended={"returncode": 0, "stop": "outside"}), J.CANCELLED, "cancelled"),
    # it never reached a node (no start record, no output): scancelled while it waited
    (dict(started={}, ended={}), J.CANCELLED, "cancelled"),
    (dict(started={}, ended={}, log_text="slurmstepd: error: execve(): No such file\n"), J.FAILED, "start_failed"),
])
def test_a_job_slurm_has_forgotten_ends_as_the_log_and_the_records_say(kw, state, reason):
    """Preempted, a node failed, or the job vanished: with no accounting Slurm forgets an ended job after
    MinJobAge, and these read 'cancelled on the cluster (scancel)', 'stopped by a signal from outside' or
    Failed (the batch script recorded no end). Found preempting jobs and downing the node of a probe cluster."""
    got_state, info = outcome(facts(**{**FORGOTTEN, **kw}))
    assert (got_state, info["reason"]) == (state, reason), info


def test_a_requeue_from_a_shell_is_no_preemption():
    """`scontrol requeue` by the user or an admin: the batch shell takes its SIGTERM for a scancel, Slurm
    starts the next attempt, and the attempt read 'Slurm stopped the job to give its nodes to another job'."""
    f = facts(log_text=killed("DUE TO JOB REQUEUE"), ended={"returncode": 0, "stop": "outside"},
              stopped={"checkpoint_step": 4}, slurm_state="PENDING", slurm_restarts=1)
    state, info = outcome(f)
    assert (state, info["reason"], info["message_msg"]["code"]) == (J.INTERRUPTED, "requeued", "cluster.requeued_elsewhere")
    assert f.requeued and info["hint"] == ""  # the next attempt continues by itself


def test_a_node_failure_the_batch_shell_heard_is_no_scancel():
    got_state, info = outcome(facts(slurm_state="NODE_FAIL", ended={"returncode": 0, "stop": "outside"}))
    assert (got_state, info["reason"]) == (J.INTERRUPTED, "node_fail"), info


def test_a_vanished_job_says_so_and_that_it_can_resume():
    state, info = outcome(facts(**FORGOTTEN, ended={}, stopped={"checkpoint_step": 3}, checkpoint_saved=True))
    assert state == J.INTERRUPTED and info["message_msg"]["code"] == "cluster.outside_signal"
    state, info = outcome(facts(**FORGOTTEN, ended={}, checkpoint_saved=True))
    assert info["message_msg"]["code"] == "cluster.vanished" and info["hint_msg"]["code"] == "end.press_resume.hint"


def test_a_requeued_time_limit_says_it_continues_by_itself():
    f = facts(ended={"returncode": 1, "stop": "time_limit", "requeue": 1}, stopped={"checkpoint_step": 6},
              slurm_state="PENDING", slurm_restarts=1, time_limit="00:01:00")
    assert f.over and f.requeued
    state, info = outcome(f)
    assert state == J.INTERRUPTED and "00:01:00" in info["message"] and "step 6" in info["message"]
    assert "requeued" in info["message"] and info["hint"] == ""


def test_a_killed_rank_is_named_from_torchruns_summary():
    state, info = outcome(facts(ended={"returncode": 1, "stop": ""}, slurm_state="FAILED", log_text=TORCHRUN_FAILURE,
                                nproc=2))
    assert (state, info["reason"], info["rank"]) == (J.FAILED, "killed", 1)
    assert info["message"].startswith("Rank 1 was killed")


def test_an_attempt_is_over_only_when_slurm_lets_go_of_it():
    assert not facts(slurm_state="RUNNING").over          # the end is recorded, srun is closing
    assert not facts(slurm_state="PENDING", ended={}).over  # not started yet
    assert facts(slurm_state="").over                       # Slurm forgot it
    assert facts(slurm_state="RUNNING", slurm_restarts=1).over  # the next attempt runs


def test_each_attempt_reads_its_own_part_of_the_log():
    log = ("[danlu] Slurm job 7, attempt 0, on vm\nA\n[danlu] Slurm job 7, attempt 1, on vm\nB\n"
           "[danlu] Slurm job 7, attempt 2, on vm\nC\n")
    assert attempt_log(log, "7", 1) == "[danlu] Slurm job 7, attempt 1, on vm\nB\n"
    assert attempt_log(log, "7", 2).endswith("C\n")


@pytest.mark.parametrize("kw", [dict(cancel_requested=True, ended={"returncode": 0, "stop": "cancel"}),
                                dict(slurm_state="PREEMPTED", ended={}), dict(slurm_state="NODE_FAIL", ended={}),
                                dict(ended={"returncode": 1, "stop": ""}, stopped={"at": 1}),
                                dict(slurm_state="CANCELLED", ended={})])
def test_the_resume_hint_says_whether_a_checkpoint_was_saved(kw):
    """As on one machine: before the first complete checkpoint, Resume starts over, and says so."""
    none = outcome(facts(**kw))[1]
    assert none["hint_msg"]["code"] == "end.resume_from_start.hint", none
    saved = outcome(facts(checkpoint_saved=True, **kw))[1]
    assert saved["hint_msg"]["code"] == "end.press_resume.hint"
