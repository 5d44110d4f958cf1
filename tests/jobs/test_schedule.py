"""GPU leases and the queue, with injected GPU lists (no process is started here)."""
import os
import threading

import pytest

from core import jobs as J
from core import launcher, procs
from core.errors import InputError
from core.executors import LocalExecutor
from tests.jobs.util import demo_config


@pytest.fixture
def no_spawn(monkeypatch):
    """schedule() records a 'supervisor' (this test process) instead of starting one."""
    started = []

    def fake_start(self, ws, job):
        started.append(job.id)
        return dict(supervisor_pid=os.getpid(), supervisor_ctime=procs.create_time(os.getpid()))
    monkeypatch.setattr(LocalExecutor, "start", fake_start)
    return started


def gpus(monkeypatch, n):
    monkeypatch.setattr(launcher, "detect_gpus", lambda: [dict(index=i) for i in range(n)])


def submit(services, **spec):
    return launcher.submit_train(services.workspace, demo_config(), launcher.LaunchSpec(**spec), origin="shell")


def finish(services, job, state=J.SUCCEEDED):
    s = services.store
    s.transition(job.id, J.RUNNING)
    assert s.transition(job.id, state)
    launcher.schedule(services.workspace)


def states(services, *jobs):
    return [services.store.get(j.id).state for j in jobs]


def test_overlapping_gpus_wait_and_start_by_themselves_in_order(services, monkeypatch, no_spawn):
    gpus(monkeypatch, 4)
    a = submit(services, gpus=[0, 1])
    b = submit(services, gpus=[1, 2])
    c = submit(services, gpus=[3])
    d = submit(services, gpus=[2])  # GPU 2 is free, but b waits for it first: no jumping the queue
    assert states(services, a, b, c, d) == [J.STARTING, J.QUEUED, J.STARTING, J.QUEUED]
    assert services.store.get(b.id).gpu_list == [1, 2]
    finish(services, a)
    assert states(services, b, d) == [J.STARTING, J.QUEUED]
    finish(services, b, J.FAILED)
    assert states(services, d) == [J.STARTING]
    assert no_spawn == [a.id, c.id, b.id, d.id]


def test_a_job_without_named_gpus_takes_free_ones(services, monkeypatch, no_spawn):
    gpus(monkeypatch, 4)
    a = submit(services, nproc=2)
    b = submit(services, nproc=2)
    c = submit(services, nproc=2)
    assert [services.store.get(j.id).gpu_list for j in (a, b, c)] == [[0, 1], [2, 3], [0, 1]]
    assert states(services, a, b, c) == [J.STARTING, J.STARTING, J.QUEUED]
    everything = submit(services)
    assert services.store.get(everything.id).gpu_list == [0, 1, 2, 3]


def test_on_the_cpu_one_job_runs_at_a_time(services, monkeypatch, no_spawn):
    gpus(monkeypatch, 0)
    a, b = submit(services), submit(services, nproc=2)
    assert services.store.get(a.id).gpu_list == ["cpu"] and services.store.get(b.id).nproc == 2
    assert states(services, a, b) == [J.STARTING, J.QUEUED]
    finish(services, a, J.CANCELLED)
    assert states(services, b) == [J.STARTING]


def test_cancelling_a_queued_job_lets_the_ones_behind_it_start(services, monkeypatch, no_spawn):
    gpus(monkeypatch, 2)
    a = submit(services, gpus=[0])
    b = submit(services, gpus=[0, 1])
    c = submit(services, gpus=[1])
    assert states(services, a, b, c) == [J.STARTING, J.QUEUED, J.QUEUED]
    launcher.cancel(services.workspace, b.id)
    assert states(services, a, b, c) == [J.STARTING, J.CANCELLED, J.STARTING]
    assert services.store.get(b.id).message == "Cancelled before it started."


def test_ten_concurrent_submits_one_starts_nine_queue(services, monkeypatch, no_spawn):
    gpus(monkeypatch, 1)
    out, errors = [], []

    def go():
        try:
            out.append(submit(services))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=go) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    got = sorted(services.store.get(j.id).state for j in out)
    assert got == [J.QUEUED] * 9 + [J.STARTING]
    assert len(no_spawn) == 1


@pytest.mark.parametrize("n_gpus, spec, words", [
    (0, dict(gpus=[0]), "no NVIDIA GPU"),
    (2, dict(gpus=[5]), "GPU [5] not found"),
    (2, dict(gpus=[0], nproc=2), "only 1 GPUs chosen"),
    (2, dict(nproc=0), "between 1 and 64"),
])
def test_impossible_device_requests_are_refused_in_words(services, monkeypatch, no_spawn, n_gpus, spec, words):
    gpus(monkeypatch, n_gpus)
    with pytest.raises(InputError) as e:
        submit(services, **spec)
    assert words in str(e.value)
    assert services.store.list() == [] and no_spawn == []


@pytest.mark.parametrize("model, words", [
    ("m" * 5000, "is neither a model preset, a hub id nor an existing folder"),
    ("/tmp/" + "m" * 5000, "folder not found: /tmp/mmm"),
    ("./no-such-model", "folder not found"),
])
def test_a_base_model_training_cannot_load_is_refused_before_a_job_starts(services, monkeypatch, no_spawn, model, words):
    """From the shell a 5,000-character base model started a job, whose recipe then stopped with OSError
    'File name too long' (its exists()); an unknown name or a missing folder also failed only in the job.
    Now each is refused in words, quoted short, with no job and no run folder."""
    gpus(monkeypatch, 0)
    with pytest.raises(InputError) as e:
        launcher.submit_train(services.workspace, demo_config(base_model=model), launcher.LaunchSpec(), origin="shell")
    assert words in str(e.value) and "base_model" in str(e.value) and len(str(e.value)) < 600, str(e.value)[:800]
    assert services.store.list() == [] and no_spawn == [] and not any(services.workspace.runs.iterdir())


def test_fake_gpus_from_the_environment(monkeypatch):
    from core.gpus import detect_gpus
    monkeypatch.setenv("DANLU_FAKE_GPUS", "3")
    assert [g["index"] for g in detect_gpus()] == [0, 1, 2]
    monkeypatch.setenv("DANLU_FAKE_GPUS", "2,5")
    assert [g["index"] for g in detect_gpus()] == [2, 5]


def test_multi_node_passes_torchrun_rendezvous_through(tmp_path):
    spec = launcher.LaunchSpec(nproc=8, nnodes=2, node_rank=1, master="10.0.0.1:29500")
    assert spec.problems() == []
    argv = launcher.build_command(tmp_path / "config.yaml", 8, spec)
    joined = " ".join(argv)
    assert "--nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --master-port 29500" in joined
    assert "--standalone" not in argv and "--nproc-per-node 8" in joined
    assert "--nnodes 2 --node-rank 1 --master 10.0.0.1:29500" in launcher.cli_command(tmp_path / "c.yaml", 8, spec)
    single = launcher.build_command(tmp_path / "config.yaml", 1, launcher.LaunchSpec(), single_direct=False)
    assert "--standalone" in single and "--nnodes" not in single


def test_the_machines_of_a_job_read_back_from_its_command(tmp_path, monkeypatch):
    """The status and the diagnosis know a job's machines from its argv (a resume reuses it), and how long
    they wait for each other: torchrun's 600 s, written out, or DANLU_JOIN_TIMEOUT_S."""
    from core.launch_commands import nodes_of
    spec = launcher.LaunchSpec(nproc=8, nnodes=3, node_rank=2, master="[fe80::1]:29500")
    argv = launcher.build_command(tmp_path / "config.yaml", 8, spec)
    assert "--rdzv-conf timeout=600" in " ".join(argv)
    assert nodes_of(argv) == dict(nnodes=3, node_rank=2, master="[fe80::1]:29500", timeout_s=600)
    assert nodes_of(argv + ["--resume"]) == nodes_of(argv)
    monkeypatch.setenv("DANLU_JOIN_TIMEOUT_S", "1800")
    assert nodes_of(launcher.build_command(tmp_path / "config.yaml", 8, spec))["timeout_s"] == 1800
    for one in (launcher.LaunchSpec(nproc=2), launcher.LaunchSpec(nproc=1)):
        assert nodes_of(launcher.build_command(tmp_path / "config.yaml", one.nproc, one)) is None


@pytest.mark.parametrize("master", ["node0.cluster.local:29500", "10.0.0.1:1", "[fe80::1]:29500", "gpu-01:65535"])
def test_machine_zero_may_be_a_host_name_or_an_address(master):
    assert launcher.LaunchSpec(nproc=1, nnodes=2, node_rank=1, master=master).problems() == []


@pytest.mark.parametrize("master", ["a" * 5000 + ":1", "x;rm -rf ~:29500", "host name:29500", "-x:1", "host:0",
                                    "host:" + "9" * 5000, "host.:29500", ("b" * 64) + ".example:29500"])
def test_a_machine_zero_that_cannot_be_is_refused_before_a_job_waits_for_it(master):
    """A 5,000-character host started a job that waited for a rendezvous that could never happen."""
    problems = launcher.LaunchSpec(nproc=1, nnodes=2, node_rank=1, master=master).problems()
    assert [p.where for p in problems] == ["--master"]
    assert len(str(problems[0].msg)) < 400  # the value quoted short


def test_one_local_process_starts_without_torchrun(tmp_path):
    """World size 1 needs no rendezvous: the recipe is the job's process (no agent that imports torch first)."""
    argv = launcher.build_command(tmp_path / "config.yaml", 1, launcher.LaunchSpec())
    assert argv[1:4] == ["-m", "core.recipes.train", "--config"] and "torch.distributed.run" not in argv
    two = launcher.build_command(tmp_path / "config.yaml", 2, launcher.LaunchSpec())
    assert "torch.distributed.run" in two and "--standalone" in two
    nodes = launcher.build_command(tmp_path / "config.yaml", 1, launcher.LaunchSpec(nnodes=2, master="h:1"))
    assert "torch.distributed.run" in nodes  # a node of several: torchrun's rendezvous


@pytest.mark.parametrize("spec, field", [
    (dict(nnodes=2), "--master"),
    (dict(nnodes=2, master="10.0.0.1"), "--master"),
    (dict(nnodes=2, master="10.0.0.1:99999"), "--master"),
    (dict(nnodes=2, node_rank=2, master="h:1"), "--node-rank"),
])
def test_multi_node_mistakes_name_the_option(spec, field):
    assert [p.where for p in launcher.LaunchSpec(**spec).problems()] == [field]
