"""The Train tab for a stopped job whose run a later job went on with (launcher.resume)."""
from core import jobs as J
from core.rundir import RunDir
from webui.tabs import train_tab as tt


def test_resume_is_offered_until_another_job_continued_the_run(gui, tmp_path):
    """A stopped job whose run a later job went on with kept Resume enabled (it is refused, naming that job)."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    job = gui.store.create(kind="train", name="x", run_dir=str(run.path), config_path=str(run.config),
                           argv=["python"], gpus=["cpu"], nproc=1)
    for state in (J.STARTING, J.RUNNING, J.CANCELLING, J.CANCELLED):
        assert gui.store.transition(job.id, state)
    assert tt.refresh_job(gui, job.id, "", "en")[7]["interactive"] is True
    run.attempt(job.id).mkdir(parents=True)  # what launcher.resume does before it starts the next job
    assert tt.refresh_job(gui, job.id, "", "en")[7]["interactive"] is False
