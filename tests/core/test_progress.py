"""core/progress.py: the clock arithmetic (metrics lines carry "wall" (1 ms) and "time" (10 ms)) and
the phase a status names."""
import json
import shutil

from core import jobs as J
from core import progress
from core.launch_commands import build_command
from core.launcher import LaunchSpec
from core.progress import seconds_between
from core.messages import Msg
from core.rundir import RunDir, write_json
from tests.jobs.util import job_in


def test_seconds_between_uses_the_millisecond_clock_when_both_lines_have_it():
    assert abs(seconds_between(dict(time=0.5, wall=100.000), dict(time=0.5, wall=100.004)) - 0.004) < 1e-9
    assert seconds_between(dict(time=0.5), dict(time=1.75, wall=3.0)) == 1.25  # an older line: "time" for both
    assert seconds_between(dict(time=0.5, wall=100.0), dict(time=0.5, wall=100.0)) == 0  # inside one tick


# ---- a job on several machines, before torchrun has started its ranks on this one --------------------
def running_job(services, run_dir, spec: LaunchSpec, nproc: int = 2) -> J.Job:
    """A RUNNING job whose argv is what the launcher writes for `spec`; nothing in its run directory yet."""
    run_dir.mkdir()
    job = services.store.create(kind="train", name="x", run_dir=str(run_dir), config_path=str(run_dir / "config.yaml"),
                                argv=build_command(run_dir / "config.yaml", nproc, spec), gpus=["cpu"], nproc=nproc)
    assert services.store.transition(job.id, J.STARTING) and services.store.transition(job.id, J.RUNNING)
    return services.store.get(job.id)


def test_a_job_on_several_machines_says_it_waits_for_them_until_a_rank_starts_here(services, tmp_path):
    """torchrun starts the ranks only once every machine has joined its rendezvous: until the supervisor
    finds a rank on this machine the job is waiting for the others, not loading the model."""
    job = running_job(services, tmp_path / "run", LaunchSpec(nnodes=2, node_rank=0, master="10.0.0.1:29500"))
    st = progress.status(job)
    assert st["phase"] == progress.WAITING and st["nodes"] == dict(nnodes=2, node_rank=0, master="10.0.0.1:29500",
                                                                   timeout_s=600)
    line = progress.status_line(st)
    assert line == ("Running, waiting for the other machines to join at 10.0.0.1:29500: training starts once all 2 "
                    "have joined (this is machine 0)")
    hint = str(progress.waiting_words(st)[1])
    assert "start the same command on each of the other machines" in hint and "--node-rank (0 to 1)" in hint
    assert "After 10 minutes without all of them the job fails." in hint
    # a resumed attempt keeps the earlier progress.json: while it waits, that step is not news
    write_json(RunDir(job.run_dir).progress, dict(phase="training", step=40, total_steps=140))
    assert progress.status(job)["phase"] == progress.WAITING and "step 40/140" not in progress.status_line(progress.status(job))
    # the rendezvous is over once a rank runs here: the recipe's own phase again
    write_json(RunDir(job.run_dir).progress, dict(phase="loading", step=0, total_steps=None))
    write_json(RunDir(job.run_dir).heartbeat, dict(job_id=job.id, ranks={"4242": 0}))
    st = progress.status(job)
    assert st["phase"] == "loading" and progress.status_line(st) == "Running, loading the model and data"
    assert progress.waiting_words(st) is None


def test_a_job_on_one_machine_keeps_its_words_while_it_loads(services, tmp_path):
    for nproc in (2, 1):  # torchrun --standalone, and one plain process
        st = progress.status(running_job(services, tmp_path / f"n{nproc}", LaunchSpec(), nproc))
        assert st["phase"] is None and st["nodes"] is None
        assert progress.status_line(st) == "Running, loading the model and data"


def test_a_job_another_one_continued_keeps_its_own_progress(services, tmp_path):
    """Found by a CLI probe: after `jobs resume`, the cancelled job's line in `jobs list` read 'Cancelled, step
    280/280 (100%), loss 0.1896' once the resumed job finished: the run's progress and curve, not its own."""
    run = RunDir(tmp_path / "run")
    job = job_in(services.store, run.path, J.STARTING, J.RUNNING, J.CANCELLING, J.CANCELLED)
    lines = [dict(step=s, loss=5.0 - s / 100, time=s, wall=job.ended_at - 30 + s) for s in (10, 20)]
    lines += [dict(step=20, eval_loss=4.5, time=21)]  # a validation line has no wall clock
    lines += [dict(step=s, loss=0.2, time=s, wall=job.ended_at + 60 + s) for s in (30, 280)]  # the next job's
    lines += [dict(step=280, eval_loss=0.5, time=300)]
    run.metrics.write_text("".join(json.dumps(x) + "\n" for x in lines))
    write_json(run.progress, dict(phase="done", step=280, total_steps=280))
    write_json(run.run_info, dict(total_steps=280))
    run.attempt(job.id).mkdir(parents=True)  # the resume moved this job's own files there
    st = progress.status(job)
    assert st["step"] == 20 and st["last_metrics"]["loss"] == 4.8 and st["total_steps"] == 280
    assert progress.status_line(st).startswith("Cancelled, step 20/280 (7%), loss 4.8000, validation loss 4.5000"), \
        progress.status_line(st)


def test_a_stopped_job_whose_end_was_noticed_late_keeps_its_own_loss(services, tmp_path):
    """Found by the Slurm probe: a requeued attempt's end is written when Danlu next looks, perhaps after the next
    attempt has logged (or by a node whose clock is behind this one's): its status showed the next one's loss."""
    run = RunDir(tmp_path / "run")
    job = job_in(services.store, run.path, J.STARTING, J.RUNNING, J.CANCELLING, J.CANCELLED)
    lines = [dict(step=s, loss=5.0 - s / 100, time=s, wall=job.ended_at - 90 + s) for s in (10, 20, 40)]
    lines += [dict(step=s, loss=0.2, time=s - 40, wall=job.ended_at - 20 + s / 10) for s in (50, 60)]  # the next one's
    run.metrics.write_text("".join(json.dumps(x) + "\n" for x in lines))
    write_json(run.run_info, dict(total_steps=280))
    run.attempt(job.id).mkdir(parents=True)
    write_json(RunDir(run.attempt(job.id)).stopped, dict(step=40, checkpoint_step=40))
    st = progress.status(job)
    assert st["step"] == 40 and st["last_metrics"]["step"] == 40 and st["last_metrics"]["loss"] == 4.6


def test_a_job_another_one_continued_no_longer_asks_for_resume(services, tmp_path):
    """Found by the same probe: `jobs show` of the stopped job still said "Press Resume to continue from the
    last checkpoint" after another job had continued it (its Resume is refused, naming that job)."""
    run = RunDir(tmp_path / "run")
    job = job_in(services.store, run.path, J.STARTING, J.RUNNING, J.FAILED)
    services.store.update(job.id, hint=Msg("end.press_resume.hint"))
    job = services.store.get(job.id)
    write_json(run.error, dict(reason="crashed", message="It crashed.", hint="Press Resume to continue."))
    assert progress.status(job)["hint"].startswith("Press Resume") and not progress.status(job)["continued"]
    run.attempt(job.id).mkdir(parents=True)
    shutil.move(str(run.error), str(run.attempt(job.id) / "error.json"))
    st = progress.status(job)
    assert st["continued"] and st["hint"] == st["error"]["hint"] == (
        "a later job continued this run from its checkpoint: follow that one (the newest in the job table, or jobs list)")
    write_json(run.heartbeat, dict(job_id="20261204-150000-abcdef"))  # the next attempt's supervisor started
    st = progress.status(job)
    assert st["hint"] == st["error"]["hint"] == ("job 20261204-150000-abcdef continued this run from its checkpoint: "
                                                 "follow that one (the job table, or jobs show 20261204-150000-abcdef)")
    assert st["hint_msg"]["code"] == "job.continued_by.hint"


def test_a_resumed_job_says_the_time_left_at_its_own_speed(services, tmp_path):
    """The time left came from the first line of the run to the last: a job resumed an hour after the first
    attempt stopped counted that hour as training time (here 12 steps in an hour and 2 s: about 5 hours left
    for 76 steps, where the steps take 1 s each)."""
    run = RunDir(tmp_path / "run")
    job = job_in(services.store, run.path, J.STARTING, J.RUNNING)
    t0 = 1_800_000_000.0
    first = [dict(step=s, loss=1.0, time=s * 1.0, wall=t0 + s) for s in (10, 20)]  # the first attempt: 1 s a step
    second = [dict(step=s, loss=1.0, time=5.0 + s - 22, wall=t0 + 3600 + s) for s in (22, 24)]  # an hour later
    run.metrics.write_text("".join(json.dumps(x) + "\n" for x in first + second))
    write_json(run.progress, dict(phase="training", step=24, total_steps=100))
    st = progress.status(services.store.get(job.id))
    assert st["eta_s"] == 76.0


# ---- a run folder whose files were overwritten by hand or by another program -----------------------------
def test_junk_in_a_run_folder_neither_fails_the_listing_nor_shows_as_progress(ws):
    """Bytes that are not UTF-8 in metrics.jsonl failed the whole read (`jobs list` failed for every job), and
    values of another type failed the arithmetic of the status line and of `jobs show`."""
    store = J.JobStore(ws.db_path)
    job = job_in(store, ws.runs / "junk", J.STARTING, J.FAILED)
    run = RunDir(job.run_dir)
    run.metrics.write_bytes(b'{"step": 1, "loss": 2.5, "time": 1.0}\n\xfb\xff not text\n[1, 2]\n'
                            b'{"step": "x", "loss": 1.0}\n{"step": 2, "loss": "low"}\n{"step": true, "loss": 1.0}\n')
    run.progress.write_text('{"step": "lots", "total_steps": [1], "phase": 5}')
    run.run_info.write_text('{"total_steps": "many"}')
    run.error.write_text('{"reason": 5, "message": ["a"], "log_tail": {"a": 1}, "hint": "free some disk"}')
    st = progress.status(store.get(job.id))
    assert [r["step"] for r in progress.read_metrics(run.path)] == [1]
    assert (st["step"], st["total_steps"], st["phase"], st["last_metrics"]["loss"]) == (1, None, None, 2.5)
    assert st["error"] == {"hint": "free some disk"}
    assert progress.status_line(st).startswith("Failed") and "loss 2.5000" in progress.status_line(st)


def test_a_resumed_job_still_loading_names_no_step_nor_time_left_of_the_attempt_before(services, tmp_path):
    """Found by the browser walk: resumed at step 19 (the stop's checkpoint), the new job's line read
    'Running, step 15/60 (25%), ..., about 27 s left' while it loaded: the earlier attempt's last logged
    step and speed (the recipe writes progress.json with phase "loading" and step 0 at its start)."""
    run = RunDir(tmp_path / "run")
    job = job_in(services.store, run.path, J.STARTING, J.RUNNING)
    t0 = 1_800_000_000.0
    earlier = [dict(step=s, loss=1.0, time=s * 1.0, wall=t0 + s) for s in (5, 10, 15)]
    run.metrics.write_text("".join(json.dumps(x) + "\n" for x in earlier))
    write_json(run.run_info, dict(total_steps=60))
    write_json(run.progress, dict(phase="loading", step=0, total_steps=None))
    st = progress.status(services.store.get(job.id))
    assert st["step"] == 0 and st["eta_s"] is None
    assert progress.status_line(st).startswith("Running, loading the model and data"), progress.status_line(st)
