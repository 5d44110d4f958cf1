"""A job on several machines with only machine 0 started: the real supervisor and torchrun on this CPU
machine, a rendezvous that gives up after a few seconds (DANLU_JOIN_TIMEOUT_S)."""
import io
import socket
import threading

import pytest

from core import jobs as J
from cli import train_cmd
from core import launcher, progress, rendezvous
from core.errors import InputError
from core.rundir import RunDir, read_json
from tests.conftest import free_port
from tests.jobs.util import FAKE, assert_no_process_left, demo_config, read_jsonl, wait_for

pytestmark = pytest.mark.slow  # starts a real supervisor and torchrun


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


@pytest.fixture
def answering_port():
    """A program that is not Danlu holds a port of this computer and answers whatever it is sent."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:  # the 0.2 s timeout: look at stop again
                continue
            with conn:
                try:
                    conn.recv(64)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                except OSError:
                    pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(10)
    server.close()


def fail_alone(services, monkeypatch, master: str, node_rank: int) -> J.Job:
    """One machine of a two-machine job started alone with a 4 s rendezvous, to its end."""
    monkeypatch.setenv("DANLU_JOIN_TIMEOUT_S", "4")
    job = launcher.submit_train(services.workspace, demo_config(max_steps=2), launcher.LaunchSpec(
        nnodes=2, node_rank=node_rank, master=master), module=FAKE, origin="shell")
    try:
        job = launcher.wait(services.workspace, job.id, timeout=180)
        assert job.state == J.FAILED, (job.state, job.message)
        assert_no_process_left(services, job)
        return job
    finally:  # a failed check leaves no torchrun waiting
        if not services.store.get(job.id).terminal:
            launcher.cancel(services.workspace, job.id)
            launcher.wait(services.workspace, job.id, timeout=60)


def test_a_port_another_program_holds_is_named_on_machine_0_and_on_machine_1(services, monkeypatch, answering_port):
    """Before, both: "The 2 machines never all joined at 127.0.0.1:PORT within 0.1 minutes" (machine 0 failed at once).
    Machine 0 refuses the port before the job starts (core.rendezvous); should another program take it after
    that check, torchrun's failure says so too. Machine 1 reaches that program and says it is not machine 0."""
    master = f"127.0.0.1:{answering_port}"
    with pytest.raises(InputError) as refused:
        launcher.submit_train(services.workspace, demo_config(), launcher.LaunchSpec(nnodes=2, node_rank=0, master=master),
                              module=FAKE, origin="shell")
    assert [p.msg.code for p in refused.value.problems] == ["launch.port_taken"]
    monkeypatch.setattr(rendezvous, "port_refused", lambda port: None)  # as if it was taken just after the check
    job = fail_alone(services, monkeypatch, master, node_rank=0)
    assert job.reason == "port_in_use" and job.message == (
        f"This machine (machine 0) could not open port {answering_port} for the other machines to join at {master}: "
        "another program here already uses that port (perhaps another training job), so training never started.")
    assert f"(for example {answering_port + 1})" in job.hint
    job = fail_alone(services, monkeypatch, master, node_rank=1)
    assert job.reason == "port_in_use" and job.message == (
        f"This machine (machine 1) reached {master}, but the program answering there is not machine 0's training, "
        "so training never started.")


def test_a_master_name_that_cannot_be_looked_up_is_named(services, monkeypatch):
    """Before: "This machine (machine 1) could not reach machine 0 at no-such-host.invalid:PORT within 0.1 minutes"
    with "Start machine 0's command first" (.invalid is a name no network resolves, RFC 2606). The submit refuses
    a name the name service denies (tests/core/test_rendezvous.py); one it answered too late for reaches torchrun."""
    monkeypatch.setattr(rendezvous, "unknown_name", lambda host: False)
    job = fail_alone(services, monkeypatch, f"no-such-host.invalid:{free_port()}", node_rank=1)
    assert job.reason == "master_not_found" and job.message.startswith(
        "This machine (machine 1) could not find machine 0: the name no-such-host.invalid in --master "), job.message
    assert job.hint.startswith("Check the spelling of no-such-host.invalid in --master"), job.hint


@pytest.fixture
def two_machines(services, home, tmp_path):
    """Machine 0 (the test's workspace) and machine 1 (a second workspace, as on another computer)."""
    import shutil

    from core.services import Services
    other = tmp_path / "machine-1"
    shutil.copytree(home / "models", other / "models")
    return services, Services.create(other)


def start_on_both(machines, monkeypatch, fault: str = "", **cfg):
    """The same training started on both machines, as `train --nnodes 2 --node-rank R --master M` does."""
    monkeypatch.setenv("DANLU_FAULT", fault)
    master = f"127.0.0.1:{free_port()}"
    return [launcher.submit_train(m.workspace, demo_config(**cfg), launcher.LaunchSpec(nnodes=2, node_rank=rank, master=master),
                                  origin="shell") for rank, m in enumerate(machines)], master


def test_machine_1_records_the_run_it_trains_and_ends_as_machine_0_does(two_machines, monkeypatch):
    """Only rank 0 wrote progress, metrics and result.json: machine 1's job said 'loading the model and data'
    all along, its stall watchdog would have stopped the whole run after 30 minutes, and a finished run ended
    there 'Failed, Rank 1 exited with code 0.'"""
    (job0, job1), master = start_on_both(two_machines, monkeypatch, max_steps=4, logging_steps=1)
    (s0, s1) = two_machines
    try:
        ends = [launcher.wait(m.workspace, j.id, timeout=240) for m, j in zip(two_machines, (job0, job1))]
        assert [j.state for j in ends] == [J.SUCCEEDED, J.SUCCEEDED], [(j.state, j.message) for j in ends]
        assert ends[1].message == (f"Finished. The adapter and the checkpoints are on machine 0 ({master}): evaluate, "
                                   "export or chat there.")
        runs = [RunDir(j.run_dir) for j in ends]
        assert [m["loss"] for m in read_jsonl(runs[1].metrics) if "loss" in m] == \
               [m["loss"] for m in read_jsonl(runs[0].metrics) if "loss" in m]  # the same all-reduced losses
        assert len(read_jsonl(runs[1].metrics)) >= 4 and read_json(runs[1].progress)["step"] == 4
        assert runs[0].adapter.is_dir() and not runs[1].adapter.exists()
        line = progress.status_line(progress.status(ends[1]))
        assert line.startswith("Succeeded, step 4/4 (100%), loss ") and "on machine 0" in line, line
        assert finished_here(s1) == [] and finished_here(s0) == [job0.id]  # machine 1 holds no adapter to offer
    finally:
        stop_all(two_machines, (job0, job1))


def test_a_stop_on_machine_0_ends_machine_1_as_stopped_there(two_machines, monkeypatch):
    (job0, job1), _ = start_on_both(two_machines, monkeypatch, fault="slow@2", max_steps=40, logging_steps=1)
    (s0, s1) = two_machines
    try:
        wait_for(lambda: read_json(RunDir(job1.run_dir).progress).get("step", 0) >= 2, 180, what="machine 1's step 2")
        launcher.cancel(s0.workspace, job0.id)
        ends = [launcher.wait(m.workspace, j.id, timeout=120) for m, j in zip(two_machines, (job0, job1))]
        assert [j.state for j in ends] == [J.CANCELLED, J.INTERRUPTED], [(j.state, j.message) for j in ends]
        assert ends[1].message == "Another machine of this job stopped it; machine 0 saved a checkpoint first."
        assert ends[1].hint == "Press Resume to continue from the last checkpoint."  # machine 0's (it said: from the beginning)
    finally:
        stop_all(two_machines, (job0, job1))


def finished_here(services) -> list[str]:
    """What this machine's Evaluate, Export and Chat offer (the runs that hold their adapter)."""
    from webui.context import Gui
    from webui.jobview import finished_runs
    return [job_id for _, job_id in finished_runs(Gui(services=services))]


def stop_all(machines, jobs) -> None:
    for m, j in zip(machines, jobs):
        if not m.store.get(j.id).terminal:
            launcher.cancel(m.workspace, j.id)
            launcher.wait(m.workspace, j.id, timeout=60)



def test_a_resume_on_every_machine_continues_each_from_machine_0s_checkpoint(two_machines, monkeypatch):
    """Machine 0 alone holds the checkpoints. Before, `jobs resume` on each machine: machine 0 went on from
    step 2, machine 1 (no checkpoint) from step 0, with its own learning rate, optimizer and batches, and
    logged the shared losses as steps 1-4; when machine 0 reached step 6 the two hung in mismatched
    collectives (both RUNNING until the 10-minute collective timeout). Now machine 0 sends checkpoint 2."""
    (job0, job1), _ = start_on_both(two_machines, monkeypatch, fault="crash@3:0", max_steps=6, logging_steps=1,
                                    eval_steps=0, save_steps=2)
    jobs = (job0, job1)
    try:
        ends = [launcher.wait(m.workspace, j.id, timeout=180) for m, j in zip(two_machines, jobs)]
        assert [j.state for j in ends] == [J.FAILED, J.FAILED], [(j.state, j.message) for j in ends]
        assert not RunDir(job1.run_dir).checkpoints.exists()
        monkeypatch.delenv("DANLU_FAULT")
        jobs = [launcher.resume(m.workspace, j.id) for m, j in zip(two_machines, jobs)]
        ends = [launcher.wait(m.workspace, j.id, timeout=120) for m, j in zip(two_machines, jobs)]
        assert [j.state for j in ends] == [J.SUCCEEDED, J.SUCCEEDED], [(j.state, j.message) for j in ends]
        runs = [RunDir(j.run_dir) for j in ends]
        assert [read_json(run.run_info)["resumed_from_step"] for run in runs] == [2, 2]
        assert [read_json(run.result)["steps"] for run in runs] == [6, 6]
        assert "received checkpoint step-0000002 from machine 0" in runs[1].stdout_log.read_text()
        losses = [[(m["step"], m["loss"]) for m in read_jsonl(run.metrics) if "loss" in m] for run in runs]
        assert [step for step, _ in losses[1]] == [1, 2, 3, 4, 5, 6] and losses[1] == losses[0]
    finally:
        stop_all(two_machines, jobs)
