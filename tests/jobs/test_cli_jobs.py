"""`python app.py jobs ...` as a user types it, on jobs run by the fake recipe."""
import json
from pathlib import Path

import pytest

from core import jobs as J
from core import launcher
from tests.conftest import run_app
from tests.jobs.util import FAKE, demo_config, wait_for

pytestmark = pytest.mark.slow  # starts real supervisors and torchrun (with the fast fake recipe)


def test_jobs_verbs_from_start_to_delete(home, services):
    assert json.loads(run_app("jobs", "list", "--json", home=home).stdout) == []
    job = launcher.submit_train(services.workspace, demo_config(max_steps=400, logging_steps=1),
                                launcher.LaunchSpec(env={"DANLU_FAKE_STEP_S": "0.2"}), module=FAKE, origin="shell")
    wait_for(lambda: (Path(job.run_dir) / "metrics.jsonl").exists(), 60, what="first metrics")

    r = run_app("jobs", "delete", job.id, home=home)
    assert r.returncode == 2 and "running" in r.stderr and "jobs cancel" in r.stderr
    assert Path(job.run_dir).is_dir()

    st = json.loads(run_app("jobs", "show", job.id[:17], "--json", home=home).stdout)  # a unique prefix works
    assert st["id"] == job.id and st["state"] == "running" and st["run_dir"] == job.run_dir
    assert st["last_metrics"]["step"] >= 1 and st["total_steps"] == 400
    for key in ("reason", "message", "hint", "gpus", "nproc", "eta_s", "step"):
        assert key in st

    r = run_app("jobs", "logs", job.id, home=home)
    assert r.returncode == 0 and "[fake] rank 0: 400 steps" in r.stdout

    r = run_app("jobs", "cancel", job.id, home=home)
    assert r.returncode == 0 and "Cancelled" in r.stdout, r.stdout + r.stderr
    rows = json.loads(run_app("jobs", "list", "--json", home=home).stdout)
    assert [(x["id"], x["state"], x["reason"]) for x in rows] == [(job.id, "cancelled", "cancelled")]

    r = run_app("jobs", "resume", job.id, home=home)
    assert r.returncode == 0, r.stderr
    new_id = r.stdout.strip().splitlines()[-1]
    assert services.store.get(new_id).parent_id == job.id
    r = run_app("jobs", "cancel", new_id, home=home)
    assert r.returncode == 0

    r = run_app("jobs", "logs", new_id, "--follow", home=home, timeout=60)  # returns once the job has ended
    assert r.returncode == 1 and "Cancelled" in r.stdout  # not a success, so not exit code 0

    r = run_app("jobs", "delete", job.id, home=home)
    assert r.returncode == 0 and Path(job.run_dir).is_dir()  # the resumed job still uses the run folder
    assert run_app("jobs", "delete", new_id, home=home).returncode == 0
    assert not Path(job.run_dir).exists()
    assert services.store.list() == []


def test_unknown_job_ids_are_input_errors(home):
    for verb in ("show", "cancel", "resume", "logs", "delete"):
        r = run_app("jobs", verb, "nope", home=home)
        assert r.returncode == 2 and "no job 'nope'" in r.stderr and "jobs list" in r.stderr


def test_resume_of_a_running_or_finished_job_says_why_not(home, services):
    job = launcher.submit_train(services.workspace, demo_config(max_steps=2), launcher.LaunchSpec(), module=FAKE, origin="shell")
    assert launcher.wait(services.workspace, job.id, timeout=60).state == J.SUCCEEDED
    r = run_app("jobs", "resume", job.id, home=home)
    assert r.returncode == 2 and "only failed, cancelled or interrupted jobs resume" in r.stderr
    assert "Retry" in r.stderr


def test_unusable_data_fails_in_words_naming_the_persons_file(home, tmp_path):
    """Found by a CLI probe: `train c.yaml --set dataset=bin.jsonl` (a file training cannot use) printed a
    Python traceback under the worded reason, and named the run's pinned copy ('03d6a9771076a833.jsonl
    cannot be used for training') instead of the file the person gave."""
    from tests.jobs.util import demo_yaml
    data = tmp_path / "my-data.jsonl"
    data.write_bytes(bytes(range(256)) * 20)
    r = run_app("train", demo_yaml(tmp_path / "c.yaml", dataset=str(data)), home=home, timeout=240)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "my-data.jsonl cannot be used for training" in out and "this is a binary file" in out, out
    assert "Traceback" not in out, out
    st = json.loads(run_app("jobs", "list", "--json", home=home).stdout)[0]
    assert st["state"] == "failed" and st["reason"] == "data_error" and "my-data.jsonl" in st["message"], st
