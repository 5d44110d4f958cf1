"""A job on several machines with only machine 0 started: the real supervisor and torchrun on this CPU
machine, a rendezvous that gives up after a few seconds (DANLU_JOIN_TIMEOUT_S)."""
import io
import socket

import pytest

from core import jobs as J
from cli import train_cmd
from core import launcher, progress
from tests.jobs.util import FAKE, assert_no_process_left, demo_config, wait_for

pytestmark = pytest.mark.slow  # starts a real supervisor and torchrun


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_machine_0_alone_says_it_waits_for_the_others_then_that_they_never_joined(services, monkeypatch):
    monkeypatch.setenv("DANLU_JOIN_TIMEOUT_S", "4")
    master = f"127.0.0.1:{free_port()}"
    job = launcher.submit_train(services.workspace, demo_config(max_steps=2),
                                launcher.LaunchSpec(nnodes=2, node_rank=0, master=master), module=FAKE, origin="shell")
    try:
        lines = []  # every status line seen while it runs (before: "Running, loading the model and data")

        def said_waiting():
            job_now = services.store.get(job.id)
            lines.append(progress.status_line(progress.status(job_now)))
            return job_now.terminal or "waiting for the other machines" in lines[-1]
        wait_for(said_waiting, 30, poll=0.05, what="the job to wait for the other machine or end")
        assert lines[-1] == (f"Running, waiting for the other machines to join at {master}: training starts once all 2 "
                             "have joined (this is machine 0)"), sorted(set(lines))
        assert not [line for line in lines if "loading" in line], sorted(set(lines))
        monkeypatch.setattr(train_cmd, "WAITING_NOTE_S", 0.0)
        out = io.StringIO()
        assert train_cmd.follow(services, job.id, out=out) == 1  # what `python app.py train` prints meanwhile
        job = services.store.get(job.id)
        assert f"[danlu] job {job.id} is waiting for the other machines to join at {master}" in out.getvalue()
        assert "[danlu] If this takes long, start the same command on each of the other machines" in out.getvalue()
        assert job.state == J.FAILED and job.reason == "machines_missing", (job.reason, job.message)
        assert job.message == (f"The other machines never joined: after 0.1 minutes at {master}, only 1 of the 2 machines "
                               "(this one included) had joined, so training never started.")
        assert "--node-rank (0 to 1)" in job.hint
        assert_no_process_left(services, job)
    finally:  # a failed check leaves no torchrun waiting for ten minutes
        if not services.store.get(job.id).terminal:
            launcher.cancel(services.workspace, job.id)
            launcher.wait(services.workspace, job.id, timeout=60)
