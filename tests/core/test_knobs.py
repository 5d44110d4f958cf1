"""Environment variables are declared (core.knobs), read only through it, and none overrides a setting."""
import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from core import knobs

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = [REPO / "app.py", *(p for d in ("cli", "core", "webui") for p in (REPO / d).rglob("*.py"))]
FAKES = [REPO / "tests/jobs/fake_recipe.py", REPO / "tests/webui/fake_recipe.py"]
ENV_READS = {"get", "getenv", "pop", "setdefault", "__getitem__"}


def tree_of(path: Path) -> ast.AST:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(path.read_text(), str(path))


def danlu_names(path: Path) -> list[tuple[int, str]]:
    """Every DANLU_ name a file mentions: in code, strings, help texts and docstrings."""
    import re
    return [(i, m) for i, line in enumerate(path.read_text().splitlines(), 1) for m in re.findall(r"DANLU_[A-Z0-9_]+", line)]


def _is_environ(node) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _is_knob(node) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "knobs"


def bare_reads(path: Path) -> list[str]:
    """DANLU_ names written out in code (rather than core.knobs' constants), and os.environ or
    os.getenv reads of a declared variable that bypass knobs.get()."""
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    out = []
    for node in ast.walk(tree_of(path)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("DANLU_") \
                and node.value.replace("_", "").isalnum() and node.value.isupper():
            out.append(f"{where}:{node.lineno}: {node.value!r} written out")
        elif isinstance(node, ast.keyword) and (node.arg or "").startswith("DANLU_"):
            out.append(f"{where}:{node.lineno}: {node.arg}= written out")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and _is_knob(node.args[0]) \
                and ((node.func.attr in ENV_READS and _is_environ(node.func.value)) or node.func.attr == "getenv"):
            out.append(f"{where}:{node.lineno}: read without knobs.get()")
        elif isinstance(node, ast.Subscript) and _is_environ(node.value) and _is_knob(node.slice) \
                and isinstance(node.ctx, ast.Load):
            out.append(f"{where}:{node.lineno}: read without knobs.get()")
    return out


def test_every_danlu_variable_mentioned_anywhere_is_declared():
    undeclared = [f"{p.relative_to(REPO)}:{i}: {name}" for p in PRODUCTION + FAKES + [REPO / "README.md"]
                  for i, name in danlu_names(p) if name not in knobs.KNOBS and name != "DANLU_FAKE_"]
    assert not undeclared, "declare these in core/knobs.py:\n" + "\n".join(undeclared)


def test_code_reads_them_only_through_core_knobs():
    found = [hit for p in PRODUCTION + FAKES if p.name != "knobs.py" for hit in bare_reads(p)]
    assert not found, "read these through core.knobs:\n" + "\n".join(found)


def test_the_scan_catches_a_bare_read(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('import os\nfrom core import knobs\nx = os.environ.get("DANLU_SOMETHING")\n'
                   'env = dict(os.environ, DANLU_HOME="/x")\ny = os.environ.get(knobs.HOME)\nz = os.environ[knobs.PORT]\n'
                   'os.environ[knobs.PORT] = "1"\n')
    assert len(bare_reads(bad)) == 4 and danlu_names(bad)[0][1] not in knobs.KNOBS


def test_reading_an_undeclared_variable_fails():
    with pytest.raises(KeyError, match="not declared"):
        knobs.get("DANLU_NO_SUCH_THING")


def test_test_hooks_are_named_as_such():
    for name in ("DANLU_FAULT", "DANLU_FAKE_GPUS", "DANLU_GUI_TEST_TRAIN_MODULE", "DANLU_STALL_MINUTES", "DANLU_MIN_FREE_MB"):
        assert knobs.KNOBS[name].kind == knobs.TEST_HOOK, name
    assert all(k.kind == knobs.TEST_HOOK for n, k in knobs.KNOBS.items() if n.startswith("DANLU_FAKE_"))
    out = subprocess.run([sys.executable, "-m", "core.knobs"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert all(name in out for name in knobs.KNOBS) and "test hook" in out


def test_the_supervisors_environment_does_not_override_stall_minutes(services, monkeypatch, tmp_path):
    """DANLU_STALL_MINUTES in the environment of whatever started the supervisor used to replace the
    config's stall_minutes silently; only a test's launch_env.json may shorten it now (and it says so)."""
    from core.supervise import Supervisor
    from core.rundir import RunDir, write_json
    from tests.jobs.util import demo_yaml
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    cfg = demo_yaml(run.config, stall_minutes=7)
    job = services.store.create(kind="train", run_dir=str(run.path), config_path=str(cfg))
    monkeypatch.setenv("DANLU_STALL_MINUTES", "0.05")
    assert Supervisor(services.workspace, job.id).stall_limit_s("training") == 7 * 60
    write_json(run.launch_env, {"DANLU_STALL_MINUTES": "0.05"})
    assert Supervisor(services.workspace, job.id).stall_limit_s("training") == pytest.approx(3.0)


@pytest.mark.parametrize("value", ["abc", "0", "-3", "nan", "inf", "1e999", "10 minutes"])
def test_a_numeric_knob_with_a_bad_value_is_named_in_words(monkeypatch, value):
    """DANLU_DIST_TIMEOUT_MIN=abc stopped a rank's set-up with a bare ValueError; now the error names
    the variable and its value, in the job's reason and hint."""
    from core.errors import DanluError
    monkeypatch.setenv(knobs.DIST_TIMEOUT_MIN, value)
    with pytest.raises(DanluError) as e:
        knobs.number(knobs.DIST_TIMEOUT_MIN, 10)
    assert "DANLU_DIST_TIMEOUT_MIN" in e.value.message and "not a positive number" in e.value.message
    assert "Unset DANLU_DIST_TIMEOUT_MIN" in e.value.hint


def test_a_numeric_knob_reads_numbers_and_falls_back_when_unset(monkeypatch):
    monkeypatch.delenv(knobs.DIST_TIMEOUT_MIN, raising=False)
    assert knobs.number(knobs.DIST_TIMEOUT_MIN, 10) == 10
    monkeypatch.setenv(knobs.DIST_TIMEOUT_MIN, " 2.5 ")
    assert knobs.number(knobs.DIST_TIMEOUT_MIN, 10) == 2.5
    monkeypatch.setenv(knobs.DIST_TIMEOUT_MIN, "")
    assert knobs.number(knobs.DIST_TIMEOUT_MIN) is None


def test_a_join_timeout_over_the_loading_grace_is_not_cut_short_as_stalled(services, monkeypatch, tmp_path):
    """Machine 0 waiting for the others has no rank and no progress yet: the stall watchdog counted that
    wait as loading and, with DANLU_JOIN_TIMEOUT_S=3600, stopped the job as "stalled" after 30 minutes.
    Now torchrun's own timeout decides while no rank has started, and the clock restarts when they start."""
    from core import launcher
    from core.supervise import LOADING_GRACE_MIN, Supervisor
    from tests.jobs.util import demo_yaml
    monkeypatch.setenv("DANLU_JOIN_TIMEOUT_S", "3600")
    run = tmp_path / "run"
    run.mkdir()
    argv = launcher.build_command(run / "config.yaml", 1, launcher.LaunchSpec(nnodes=2, master="127.0.0.1:29500"))
    job = services.store.create(kind="train", run_dir=str(run), config_path=str(demo_yaml(run / "config.yaml")), argv=argv)
    sup = Supervisor(services.workspace, job.id)
    assert sup.stall_limit_s("loading") == (3600 + LOADING_GRACE_MIN * 60)  # before: 30 minutes
    sup.since = 1000.0  # watch() starts the clock
    assert sup.stalled_s(2000.0, None) == 1000
    sup.ranks[4242] = 0  # the machines met: the ranks start loading
    assert sup.stall_limit_s("loading") == LOADING_GRACE_MIN * 60
    assert sup.stalled_s(2001.0, None) == 0  # the loading grace counts from here, not from the job's start
    assert sup.stalled_s(2100.0, 1) == 0 and sup.stalled_s(2160.0, 1) == 60
    one = services.store.create(kind="train", run_dir=str(run), config_path=job.config_path,
                                argv=launcher.build_command(run / "config.yaml", 2, launcher.LaunchSpec(nproc=2)))
    assert Supervisor(services.workspace, one.id).stall_limit_s("loading") == LOADING_GRACE_MIN * 60
