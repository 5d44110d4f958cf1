"""SlurmSpec: every bad value named at once, settings.yaml defaults, time limits."""
import pytest

from core.errors import InputError
from core.slurm.spec import SlurmSpec, format_time, parse_time, settings_spec, warn_seconds, with_overrides


def test_a_good_spec_has_no_problems():
    spec = SlurmSpec(nodes=2, gpus_per_node=8, cpus_per_node=64, mem="480G", time="1-12:00:00", partition="gpu,gpu-long",
                     account="lab_1", qos="normal", requeue=True, extra_sbatch=["--constraint=h100", "#SBATCH --exclusive"],
                     setup=["module load cuda/12.4"])
    assert spec.problems() == []
    assert spec.world_size == 16 and spec.procs_per_node == 8 and spec.cpus == 64
    assert spec.sbatch_lines() == ["#SBATCH --constraint=h100", "#SBATCH --exclusive"]


def test_every_problem_at_once_names_the_flag():
    spec = SlurmSpec(nodes=0, gpus_per_node=-1, nproc=0, mem="lots", time="4 hours", partition="gpu; rm -rf /",
                     account="a b", qos="x\ny", extra_sbatch=["constraint=h100", "--ok\n#SBATCH --evil"], setup=["a\nb"])
    where = {p.where for p in spec.problems()}
    assert {"--nodes", "--gpus-per-node", "--nproc", "--mem", "--time", "--partition", "--account", "--qos",
            "--extra-sbatch[0]", "--extra-sbatch[1]", "--setup[0]"} <= where


def test_a_line_break_at_the_end_is_no_part_of_a_name():
    """`$` matches before a final line break: account "lab\n" (a CLI flag, settings.yaml) passed and ended its
    #SBATCH line early in the script."""
    spec = SlurmSpec(partition="gpu\n", account="lab\n", qos="normal\n", mem="64G\n")
    assert [p.where for p in spec.problems()] == ["--partition", "--account", "--qos", "--mem"]


def test_processes_per_node_cannot_exceed_gpus():
    assert [p.where for p in SlurmSpec(gpus_per_node=2, nproc=4).problems()] == ["--nproc"]
    assert SlurmSpec(gpus_per_node=0, nproc=2).procs_per_node == 2  # CPU nodes: processes as asked
    assert SlurmSpec(gpus_per_node=0).procs_per_node == 1


@pytest.mark.parametrize("text,seconds", [("00:01:00", 60), ("04:00:00", 14400), ("1-12:00:00", 129600),
                                          ("100:00:00", 360000)])
def test_time_limits(text, seconds):
    assert parse_time(text) == seconds
    assert parse_time(format_time(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "60", "1:2", "00:00:00", "00:61:00", "x", "1-2"])
def test_not_time_limits(text):
    assert parse_time(text) is None


def test_the_warning_before_the_time_limit_grows_with_it():
    assert warn_seconds(SlurmSpec(time="00:01:00")) == 10
    assert warn_seconds(SlurmSpec(time="00:10:00")) == 100
    assert warn_seconds(SlurmSpec(time="04:00:00")) == 300
    assert warn_seconds(SlurmSpec()) == 300  # the partition's own limit: unknown here


def test_settings_yaml_defaults_and_overrides():
    spec = settings_spec({"slurm": {"partition": "gpu", "gpus_per_node": 4, "time": "02:00:00", "setup": "module load x"}})
    assert (spec.partition, spec.gpus_per_node, spec.time, spec.setup) == ("gpu", 4, "02:00:00", ["module load x"])
    spec = with_overrides(spec, nodes=2, partition=None, time="00:30:00")
    assert (spec.nodes, spec.partition, spec.time) == (2, "gpu", "00:30:00")
    assert settings_spec({}) == SlurmSpec()


def test_bad_settings_are_named_with_their_key():
    with pytest.raises(InputError) as e:
        settings_spec({"slurm": {"partiton": "gpu", "time": 14400, "nodes": "two"}})
    where = {p.where for p in e.value.problems}
    assert where == {"settings.yaml: slurm.partiton", "settings.yaml: slurm.time", "settings.yaml: slurm.nodes"}
    assert any('"04:00:00"' in p.hint for p in e.value.problems)  # YAML read 04:00:00 as a number
    with pytest.raises(InputError):
        settings_spec({"slurm": ["gpu"]})


@pytest.mark.parametrize("line", ["--job-name=mine", "#SBATCH --job-name mine", "-J mine", "-Jmine", "--job-n=mine"])
def test_extra_sbatch_may_not_rename_the_job(line):
    """Danlu knows its Slurm job by number and name (a controller that lost its state reuses numbers): a
    --job-name in slurm.extra_sbatch (the last #SBATCH line wins) made Danlu take its running job for gone."""
    problems = SlurmSpec(extra_sbatch=["--exclusive", line]).problems()
    assert [(p.where[-3:], p.msg.code) for p in problems] == [("[1]", "cluster.own_job_name")]


def test_other_options_that_start_alike_are_fine():
    assert SlurmSpec(extra_sbatch=["--exclusive", "--gres=gpu:1", "-N1"]).problems() == []
