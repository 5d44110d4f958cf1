"""The Train tab for a stopped job whose run a later job went on with (launcher.resume)."""
from core import jobs as J
from core.rundir import RunDir
from tests.jobs.util import job_in
from webui.tabs import train_tab as tt


def test_resume_is_offered_until_another_job_continued_the_run(gui, tmp_path):
    """A stopped job whose run a later job went on with kept Resume enabled (it is refused, naming that job)."""
    run = RunDir(tmp_path / "run")
    job = job_in(gui.store, run.path, J.STARTING, J.RUNNING, J.CANCELLING, J.CANCELLED)
    assert tt.refresh_job(gui, job.id, "", "en")[7]["interactive"] is True
    run.attempt(job.id).mkdir(parents=True)  # what launcher.resume does before it starts the next job
    assert tt.refresh_job(gui, job.id, "", "en")[7]["interactive"] is False


def test_a_stopped_job_is_not_drawn_as_a_failure(gui, tmp_path):
    """A job its person stopped showed its box in a failure's red (a browser walk); only a failure is red."""
    from webui import jobview
    stopped = job_in(gui.store, tmp_path / "a", J.STARTING, J.RUNNING, J.CANCELLING, J.CANCELLED)
    failed = job_in(gui.store, tmp_path / "b", J.STARTING, J.RUNNING, J.FAILED)
    assert tt.refresh_job(gui, stopped.id, "", "en")[1]["elem_classes"] == ["failure", "calm"]
    assert tt.refresh_job(gui, failed.id, "", "en")[1]["elem_classes"] == ["failure"]
    assert jobview.failure_update(dict(state="interrupted", reason="interrupted"), "en")["elem_classes"] == ["failure", "calm"]
    assert jobview.failure_update(dict(state="failed", reason="crashed"), "en")["elem_classes"] == ["failure"]


def test_a_continued_jobs_step_is_where_it_stopped_not_the_next_attempts(gui, tmp_path):
    """Once a later job continued the run, progress.json is that job's: the first one's status fell back to
    its last logged step (56 for a stop at 60), and the job table showed the later job's step (619)."""
    from core import progress
    from core.rundir import write_json
    run = RunDir(tmp_path / "run")
    job = job_in(gui.store, run.path, J.STARTING, J.RUNNING, J.CANCELLING, J.CANCELLED)
    write_json(run.run_info, dict(total_steps=2000))
    run.metrics.write_text("".join(f'{{"step": {s}, "loss": 1.0, "wall": 1.0}}\n' for s in (7, 14, 56)))
    run.attempt(job.id).mkdir(parents=True)  # what launcher.resume does before it starts the next job
    write_json(RunDir(run.attempt(job.id)).stopped, dict(step=60, checkpoint_step=60))
    write_json(run.progress, dict(phase="training", step=619, total_steps=2000))  # the next attempt's
    assert progress.status(gui.store.get(job.id))["step"] == 60
    table, _, _ = tt.refresh_jobs(gui, "en", job.id, "")
    assert list(table.iloc[:, 4]) == ["60/2000"]
