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
