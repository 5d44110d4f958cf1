"""The CLI's and the page's side of Slurm, without a cluster: flags, settings.yaml defaults, refusals
before anything is submitted, and how a Slurm job is shown (where it runs, why it waits)."""
import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from cli import train_cmd
from core import jobs as J
from core import launcher
from core.errors import InputError
from core.messages import keep
from core.presets import compose
from core.slurm.commands import pending_words
from core.slurm.spec import SlurmSpec
from tests.jobs.util import demo_config
from webui import fields, jobview
from webui.context import Gui
from webui.tabs import train_tab, train_where


def args(**kw) -> argparse.Namespace:
    base = dict(nproc=None, gpus=None, nnodes=1, node_rank=0, master=None, slurm=False, **{n: None for n in train_cmd.SLURM_FLAGS})
    return argparse.Namespace(**{**base, **kw})


def test_slurm_flags_take_settings_yaml_defaults(services):
    (services.workspace.root / "settings.yaml").write_text(
        'slurm:\n  partition: gpu\n  time: "02:00:00"\n  gpus_per_node: 8\n  requeue: true\n')
    spec = train_cmd.launch_spec(args(slurm=True, nodes=2, time="00:30:00"), services.workspace)
    assert spec.executor == "slurm"
    assert (spec.slurm.partition, spec.slurm.nodes, spec.slurm.gpus_per_node, spec.slurm.time, spec.slurm.requeue) == \
        ("gpu", 2, 8, "00:30:00", True)
    assert spec.slurm.cli_flags() == ["--slurm", "--nodes", "2", "--gpus-per-node", "8", "--partition", "gpu",
                                      "--time", "00:30:00", "--requeue"]


def test_flags_of_the_other_place_are_refused_by_name(services):
    with pytest.raises(InputError) as e:
        train_cmd.launch_spec(args(nodes=2, partition="gpu"), services.workspace)
    assert [p.where for p in e.value.problems] == ["--nodes", "--partition"]
    with pytest.raises(InputError) as e:
        train_cmd.launch_spec(args(slurm=True, gpus="0,1", master="10.0.0.1:29500"), services.workspace)
    assert [p.where for p in e.value.problems] == ["--gpus", "--master"]


def test_bad_slurm_settings_are_refused_before_anything_is_created(services):
    spec = launcher.LaunchSpec(executor="slurm", slurm=SlurmSpec(gpus_per_node=0, nproc=2, time="4 hours",
                                                                 partition="gpu;rm"))
    with pytest.raises(InputError) as e:
        launcher.submit_train(services.workspace, demo_config(max_steps=2), spec, origin="shell")
    assert {p.where for p in e.value.problems} == {"--time", "--partition"}
    assert services.store.list() == [] and list(services.workspace.runs.iterdir()) == []


def test_more_nodes_than_the_partition_has_are_refused_before_anything_is_created(services, monkeypatch):
    """sbatch takes such a job (without EnforcePartLimits) and Slurm keeps it pending, PartitionConfig,
    for good: `--nodes 5` on a probe cluster of one node sat Queued until cancelled by hand."""
    import socket

    from core.slurm import commands
    monkeypatch.setattr(commands, "partition_nodes", lambda partition="": [socket.gethostname()])
    monkeypatch.setattr(commands, "submit", lambda script: pytest.fail("submitted"))
    spec = launcher.LaunchSpec(executor="slurm", slurm=SlurmSpec(nodes=5, gpus_per_node=0, nproc=2))
    with pytest.raises(InputError) as e:
        launcher.submit_train(services.workspace, demo_config(max_steps=2), spec, origin="shell")
    assert [(p.where, p.msg.code) for p in e.value.problems] == [("--nodes", "cluster.too_many_nodes")]
    assert services.store.list() == [] and list(services.workspace.runs.iterdir()) == []


def test_a_time_limit_above_the_partitions_is_refused_before_anything_is_created(services, monkeypatch):
    """sbatch takes it (without EnforcePartLimits) and Slurm keeps it pending, PartitionTimeLimit, for good:
    --time 04:00:00 on a probe partition with MaxTime=01:00:00."""
    import socket

    from core.slurm import commands
    monkeypatch.setattr(commands, "partition_nodes", lambda partition="": [socket.gethostname()])
    monkeypatch.setattr(commands, "run", lambda argv, **kw: SimpleNamespace(stdout="debug*|1:00:00\nhigh|infinite\n"))
    monkeypatch.setattr(commands, "submit", lambda script: pytest.fail("submitted"))
    spec = launcher.LaunchSpec(executor="slurm", slurm=SlurmSpec(gpus_per_node=0, nproc=2, time="04:00:00"))
    with pytest.raises(InputError) as e:
        launcher.submit_train(services.workspace, demo_config(max_steps=2), spec, origin="shell")
    assert [(p.where, p.msg.code, p.msg.params["limit"]) for p in e.value.problems] == \
        [("--time", "cluster.time_over_limit", "01:00:00")]
    assert services.store.list() == [] and list(services.workspace.runs.iterdir()) == []


def test_the_page_refuses_a_bad_time_limit_in_words(services):
    gui = Gui(services=services)
    values = fields.config_values(compose("demo"), fields.NAMES)
    job_id, message, _ = train_tab.start_on_cluster(gui, "en", 2, "debug", 1, 0, "soon", False, *values)
    assert "Time limit (HH:MM:SS)" in message and "D-HH:MM:SS" in message  # the widget, and how to write it
    assert services.store.list() == []


@pytest.mark.parametrize("partition,nodes,gpus,time_limit,widget", [
    ("debug;id", 1, 0, "", "Partition"), ("$(id)", 1, 0, "", "Partition"),
    ("debug\n#SBATCH --wrap=id", 1, 0, "", "Partition"), ("debug\n", 1, 0, "", "Partition"),
    ("debug", 1, 0, "-1", "Time limit"), ("debug", 1, 0, "01:00:00\n#SBATCH --x", "Time limit"),
    ("debug", 0, 0, "", "Nodes"), ("debug", 10**9, 0, "", "Nodes"), ("debug", "1e999", 0, "", "Nodes"),
    ("debug", 1, float("nan"), "", "GPUs per node"), ("debug", 1, "NaN", "", "GPUs per node"),
])
def test_the_page_refuses_hostile_slurm_values_naming_the_field(services, monkeypatch, partition, nodes, gpus,
                                                                 time_limit, widget):
    """What a direct HTTP call may send to "Start on the cluster": nothing reaches sbatch or the script,
    and the problem names the field ("debug\n" passed the name check and was named as a flag, --partition)."""
    import socket

    from core.slurm import commands
    monkeypatch.setattr(commands, "partition_nodes", lambda p="": [socket.gethostname()] if p == "debug" else None)
    monkeypatch.setattr(commands, "partition_names", lambda: ["debug"])
    monkeypatch.setattr(commands, "submit", lambda script: pytest.fail("submitted"))
    values = fields.config_values(compose("demo"), fields.NAMES)
    _, message, _ = train_tab.start_on_cluster(Gui(services=services), "en", 2, partition, nodes, gpus, time_limit, False,
                                               *values)
    assert f"**{widget}" in message, message
    assert services.store.list() == []


def slurm_job(store: J.JobStore, job_id: str, state: str, run_dir: Path, **kw) -> J.Job:
    store.create(id=job_id, kind="train", name="demo", run_dir=str(run_dir), executor="slurm", slurm_job_id="7",
                 **kw)
    if state != J.QUEUED:
        for step in {J.RUNNING: [J.STARTING, J.RUNNING],
                     J.INTERRUPTED: [J.STARTING, J.RUNNING, J.INTERRUPTED]}[state]:
            store.transition(job_id, step)
    return store.get(job_id)


def test_the_job_table_and_status_say_where_a_job_runs_and_why_it_waits(services, tmp_path):
    store = services.store
    (tmp_path / "slurm").mkdir()
    (tmp_path / "slurm" / "7.attempt-0.json").write_text(json.dumps({"slurm_job_id": "7", "attempt": 0, "nodes": "gpu[01-02]"}))
    running = slurm_job(store, "20261202-000000-aaaaaa", J.RUNNING, tmp_path)
    assert train_where.where_text(running, "en") == "Slurm 7 · gpu[01-02]"
    local = store.create(kind="train", name="x", run_dir=str(tmp_path / "l"))
    assert train_where.where_text(local, "zh-CN") == "这台电脑"
    waiting = dict(id="j", state="queued", executor="slurm", slurm_job_id="8", reason="Priority",
                   **keep("message", pending_words("Priority")))  # as core.progress.status gives it
    assert "等待优先级更高的作业先开始" in jobview.status_markdown(waiting, "zh-CN")
    odd = dict(waiting, reason="AssocGrpGRES", **keep("message", pending_words("AssocGrpGRES")))
    assert "AssocGrpGRES" in jobview.status_markdown(odd, "en")  # a reason Danlu has no words for: Slurm's own
    assert "QoS の制限待ち（AssocGrpGRES）" in jobview.status_markdown(odd, "ja")
    old = dict(waiting, message="waiting for jobs with a higher priority to start first", message_msg=None)
    assert "higher priority" in jobview.status_markdown(old, "zh-CN")  # a row of an older Danlu: its words as they are


def test_the_page_follows_a_requeued_attempt_it_watched(services, tmp_path):
    gui = Gui(services=services)
    first = slurm_job(services.store, "20261202-000000-bbbbbb", J.INTERRUPTED, tmp_path)
    assert train_where.requeued_as(gui, first.id, f"{first.id}|RUNNING|en|x") == first.id  # no next attempt yet
    slurm_job(services.store, first.id + "-r1", J.QUEUED, tmp_path, parent_id=first.id)
    assert train_where.requeued_as(gui, first.id, f"{first.id}|RUNNING|en|x") == first.id + "-r1"
    assert train_where.requeued_as(gui, first.id, f"{first.id}|INTERRUPTED|en|x") == first.id  # picked on purpose
    assert train_where.requeued_as(gui, first.id, "") == first.id


def test_partitions_read_in_both_languages():
    from core.slurm.commands import Partition
    p = Partition(name="gpu", default=True, nodes=3, usable_nodes=2, gpus=24, gpus_free=13, max_gpus_free_per_node=8,
                  cpus_idle=100, time_limit="2-00:00:00")
    assert train_where.partition_label(p, "en") == "gpu (default) · 13 of 24 GPUs free · 2 node(s) · up to 2-00:00:00"
    assert train_where.partition_label(p, "zh-CN") == "gpu（默认） · 24 块 GPU 中 13 块空闲 · 2 个节点 · 最长 2-00:00:00"


def test_the_job_table_shows_one_row_per_danlu_job_not_one_per_attempt(services, tmp_path, capsys, monkeypatch):
    """A requeued Slurm job (time limit, preemption, scontrol requeue) went on in a row of its own,
    <id>-r1, and the interrupted attempt stayed beside it: the table and `jobs list` showed one training
    twice. The newest attempt's row stands for the job; `jobs show` still shows the attempt before."""
    from cli import jobs_cmd
    from core.slurm import commands, executor
    monkeypatch.setattr(commands, "queue", lambda ids: {"7": commands.QueueEntry("7", "RUNNING", 1, "vm", "",
                                                                                  name="danlu-20261202-000000-cccccc")})
    executor.forget_cache()
    first = slurm_job(services.store, "20261202-000000-cccccc", J.INTERRUPTED, tmp_path)
    second = slurm_job(services.store, first.id + "-r1", J.RUNNING, tmp_path, parent_id=first.id)
    local = services.store.create(kind="train", name="here", run_dir=str(tmp_path / "l"))
    services.store.transition(local.id, J.FAILED)  # ended: the listing's reconcile leaves it be
    rows, _ = train_tab._table(Gui(services=services), "en")
    assert sorted(r[0] for r in rows) == sorted([second.id, local.id])
    jobs_cmd.list_cmd(argparse.Namespace(json=True), services)
    assert sorted(r["id"] for r in json.loads(capsys.readouterr().out)) == sorted([second.id, local.id])
    assert services.store.get(first.id) is not None


@pytest.fixture
def controller_down(tmp_path, monkeypatch):
    """A cluster configuration whose controller does not run (Slurm's own `scontrol ping` says DOWN)."""
    import shutil
    import socket
    if shutil.which("scontrol") is None:
        pytest.skip("Slurm's scontrol is not installed (`make test` installs slurm-wlm)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once it is closed
    conf = tmp_path / "slurm.conf"
    conf.write_text(f"ClusterName=down\nSlurmctldHost=localhost\nSlurmctldPort={port}\nNodeName=localhost CPUs=1\n"
                    "PartitionName=debug Nodes=localhost Default=YES\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))


def test_a_cluster_whose_controller_is_down_is_said_so_and_offers_no_start(services, controller_down, monkeypatch):
    """With slurmctld down, "the cluster" stayed a choice like any other: after ~10 s (sinfo's retries)
    one line said it did not answer, "Start on the cluster" stayed offered and took as long again to be
    refused. Now the page says at once, in its language, that the cluster cannot be reached, and offers
    no start until Refresh finds it back; a start sent anyway is refused at once, in words."""
    from core.slurm import commands
    from webui.i18n import LANGUAGES, tr
    monkeypatch.setattr(commands, "partitions", lambda: pytest.fail("sinfo asked of a controller that is down"))
    for _, lang in LANGUAGES:
        _, line, start = train_where.partitions(lang, None)
        assert line == "⚠ " + tr("slurm.controller_down", lang) and start["interactive"] is False
    spec = launcher.LaunchSpec(executor="slurm", slurm=SlurmSpec(gpus_per_node=0, nproc=2))
    with pytest.raises(InputError) as e:
        launcher.submit_train(services.workspace, demo_config(max_steps=2), spec, origin="shell")
    assert [p.msg.code for p in e.value.problems] == ["cluster.controller_down"]
    assert e.value.title.code == "cluster.unreachable_title"
    assert services.store.list() == []


def test_a_cluster_that_answers_again_is_offered_a_start(monkeypatch):
    from core.slurm import commands
    monkeypatch.setattr(commands, "controller_down", lambda: False)
    monkeypatch.setattr(commands, "partitions", lambda: [commands.Partition(
        name="debug", default=True, nodes=1, usable_nodes=1, gpus=0, gpus_free=0, max_gpus_free_per_node=0,
        cpus_idle=4, time_limit="")])
    picker, _, start = train_where.partitions("en", None)
    assert picker["value"] == "debug" and start["interactive"] is True


def test_the_page_names_its_own_box_when_the_cluster_cannot_be_reached(services, controller_down):
    """"Start on the cluster" with the controller down was refused as a problem of "--slurm", a flag of
    the CLI the page does not have: it names the page's "Where to run" now, in each language."""
    from webui.i18n import tr
    values = fields.config_values(compose("demo"), fields.NAMES)
    _, message, _ = train_tab.start_on_cluster(Gui(services=services), "ja", 2, "debug", 1, 0, "", False, *values)
    for code, text in message.texts.items():
        assert f"**{tr('where.label', code)}" in text and "--slurm" not in text, (code, text)
    assert services.store.list() == []
