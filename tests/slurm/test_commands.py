"""Reading Slurm's output (squeue, scontrol, sinfo) and saying what it means in words. The texts are
Slurm 22.05's formats; tests/slurm/test_cluster.py reads the same commands from a real cluster."""
import pytest

from core.slurm import commands as C

SQUEUE = """4242|RUNNING|0|gpu[01-02]|04:00:00|None|
4243|PENDING|0||04:00:00|Resources|
4244|PENDING|1||1:00|BeginTime|
4245|COMPLETED|0|gpu03|04:00:00|None|
4246|PENDING|0||UNLIMITED|ReqNodeNotAvail, UnavailableNodes:gpu04|
"""

SINFO_NODES = """gpu01|gpu*|mixed|gpu:h100:8(S:0-1)|gpu:h100:3(IDX:0-2)|48/80/0/128|
gpu02|gpu*|idle|gpu:h100:8(S:0-1)|gpu:h100:0(IDX:N/A)|0/128/0/128|
gpu03|gpu*|drained|gpu:h100:8(S:0-1)|gpu:h100:0(IDX:N/A)|0/0/128/128|
gpu03|long|drained|gpu:h100:8(S:0-1)|gpu:h100:0(IDX:N/A)|0/0/128/128|
cpu01|cpu|idle|(null)|(null)|0/64/0/64|
"""


def test_squeue_lines_become_entries():
    q = C.parse_queue(SQUEUE)
    assert q["4242"] == C.QueueEntry("4242", "RUNNING", 0, "gpu[01-02]", "", "04:00:00")
    assert q["4244"].restarts == 1 and q["4244"].reason == "BeginTime"
    assert q["4246"].reason == "ReqNodeNotAvail, UnavailableNodes:gpu04"
    assert C.parse_queue("") == {}


@pytest.mark.parametrize("gres,n", [("gpu:h100:8(S:0-1)", 8), ("gpu:4,gpu:v100:2", 6), ("(null)", 0), ("", 0),
                                    ("gpu:a100:3(IDX:0-2)", 3), ("gpu:h100:0(IDX:N/A)", 0), ("mps:100,gpu:2", 2)])
def test_gpus_in_a_gres_string(gres, n):
    assert C.count_gpus(gres) == n


def test_partitions_count_free_gpus_on_usable_nodes_only():
    parts = {p.name: p for p in C.summarize(C.parse_nodes(SINFO_NODES),
                                            {"gpu*": "2-00:00:00", "long": "7-00:00:00", "cpu": "infinite", "empty": "1:00:00"})}
    gpu = parts["gpu"]
    assert gpu.default and (gpu.nodes, gpu.usable_nodes, gpu.gpus, gpu.gpus_free, gpu.max_gpus_free_per_node) == (3, 2, 24, 13, 8)
    assert gpu.label() == "gpu (default) · 13 of 24 GPUs free · 2 nodes · up to 2-00:00:00"
    assert (parts["long"].gpus_free, parts["long"].usable_nodes) == (0, 0)  # its only node is drained
    assert parts["cpu"].label() == "cpu · no GPUs, 64 CPUs free · 1 node"
    assert parts["empty"].nodes == 0  # a partition without nodes is still listed


@pytest.mark.parametrize("reason,words", [
    ("Resources", "waiting for resources"), ("Priority", "higher priority"), ("BeginTime", "requeued job waits"),
    ("ReqNodeNotAvail, UnavailableNodes:gpu04", "not available"), ("QOSMaxGRESPerUser", "limit of your account or QoS"),
    ("AssocGrpGRES", "limit of your account or QoS"), ("Cleaning", "waiting (Slurm's reason: Cleaning)"), ("None", "waiting to be scheduled")])
def test_why_a_job_waits_in_words(reason, words):
    assert words in str(C.pending_words(reason))


def test_slurm_errors_in_words_with_a_hint():
    text = "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    assert C.slurm_words(text) == "Invalid partition name specified"
    assert "sinfo" in str(C.hint_for(text))
    assert "no GPUs" in str(C.hint_for("sbatch: error: Invalid generic resource (gres) specification"))


def test_a_missing_command_says_what_to_do(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(C.SlurmError) as e:
        C.submit("/x/job.sbatch")
    assert "sbatch" in str(e.value) and "login node" in e.value.hint


def test_an_allocation_danlu_runs_in_does_not_leak_into_its_jobs(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "99")
    monkeypatch.setenv("SLURM_CONF", "/etc/x/slurm.conf")
    env = C.env()
    assert "SLURM_JOB_ID" not in env and env["SLURM_CONF"] == "/etc/x/slurm.conf" and env["SLURM_TIME_FORMAT"] == "standard"


def test_sacct_gives_the_whole_jobs_state():
    text = "4242|CANCELLED by 1000|danlu-a\n4242.batch|CANCELLED|batch\n4242.0|FAILED|python\n"
    assert C.parse_accounting(text, "4242", "danlu-a") == "CANCELLED"
    assert C.parse_accounting("4243|TIMEOUT|danlu-a\n", "4242", "danlu-a") == ""


def test_sacct_gives_the_state_of_the_job_of_that_name_not_of_another_with_its_number():
    """The controller counted from its first id again: sacct --duplicates lists both jobs of number 4242."""
    text = "4242|COMPLETED|danlu-a\n4242.batch|COMPLETED|batch\n4242|RUNNING|someone-else\n"
    assert C.parse_accounting(text, "4242", "danlu-a") == "COMPLETED"
    assert C.parse_accounting(text, "4242", "danlu-b") == ""


def test_squeue_lines_carry_the_jobs_name():
    q = C.parse_queue("7|RUNNING|0|vm|UNLIMITED|None|danlu-a|\n8|PENDING|0||UNLIMITED|Resources|odd|name|\n")
    assert (q["7"].name, q["8"].name, q["8"].reason) == ("danlu-a", "odd|name", "Resources")


def test_scancel_acts_only_on_the_job_of_that_name(monkeypatch):
    """A job number alone may be another job's now: Slurm signals the job only where the name matches too
    (measured on the one-node test cluster: `scancel --jobname=other 1` left job 1 running)."""
    said = []
    monkeypatch.setattr(C, "run", lambda argv, **kw: said.append(argv))
    C.kill_job("7", "danlu-a")
    C.signal_job("7", "danlu-a", batch=True)
    assert said == [["scancel", "--jobname=danlu-a", "7"], ["scancel", "--signal=TERM", "--batch", "--jobname=danlu-a", "7"]]


def test_tools_without_a_cluster_are_not_a_cluster(monkeypatch, tmp_path):
    """Where slurm-wlm is installed but nothing is set up (CI before its cluster starts), the page
    offers no cluster; a missing sbatch says no at once."""
    monkeypatch.delenv("SLURM_CONF", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert C.configured() is False


def test_tools_set_up_for_no_cluster_say_so_in_words(monkeypatch, tmp_path):
    """slurm-wlm installed, no slurm.conf anywhere: `cluster` printed sinfo's fatal line ("Could not
    establish a configuration source", after lines of DNS errors) and exited 1 as if work had failed."""
    import sys
    from tests.conftest import run_app
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sinfo", "scontrol", "sbatch"):
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\necho '{name}: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host' >&2\n"
                        f"echo '{name}: fatal: Could not establish a configuration source' >&2\nexit 1\n")
        tool.chmod(0o755)
    monkeypatch.delenv("SLURM_CONF", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(C.NoCluster) as e:
        C.partitions()
    assert "set up for no cluster" in str(e.value) and "SLURM_CONF" in e.value.hint and "fatal" not in str(e.value)
    out = run_app("cluster", home=tmp_path / "home", env={"PATH": f"{bin_dir}:{sys.prefix}/bin:/usr/bin:/bin"})
    assert out.returncode == 2, out.stderr
    assert "set up for no cluster" in out.stderr and "fatal" not in out.stderr + out.stdout


def test_a_reason_slurm_writes_as_a_sentence_is_shown_whole():
    """Slurm 22.05 gave a job waiting behind a higher partition's the reason "Nodes required for job are
    DOWN, DRAINED or reserved for jobs in higher priority partitions" (probe cluster); the words were cut
    at its first comma, as a code's list is ("ReqNodeNotAvail, UnavailableNodes:gpu04"): "... are DOWN"."""
    text = "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions"
    assert C.pending_words(text).params == {"key": text}
    assert C.pending_words("ReqNodeNotAvail, UnavailableNodes:gpu04").code == "cluster.pending.ReqNodeNotAvail"


SINFO_LIMITS = "debug*|1:00:00\nlong|7-00:00:00\nshort|30:00\nday|1-12\nfree|infinite\n"


@pytest.mark.parametrize("partition,seconds", [("", 3600), ("debug", 3600), ("long", 7 * 86400), ("short", 1800),
                                               ("day", 36 * 3600), ("debug,long", 7 * 86400), ("free", None),
                                               ("debug,free", None), ("nowhere", None)])
def test_the_longest_time_limit_of_the_partitions(partition, seconds):
    assert C.longest_time_limit(SINFO_LIMITS, partition) == seconds
