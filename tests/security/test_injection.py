"""Injection strings through every text field that reaches a command or a path (reliability.md
a.1, CVE-2024-52803: a web form's output_dir joined into a shell command).

Each hostile value must end up as plain data: no marker file appears (the strings would create one
under $T if any shell ran them), every process is started with an argv list and no shell, and
every path Danlu creates stays inside the workspace.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from core import jobs as J
from core import launcher
from core.config import TrainConfig, load_config
from core.errors import InputError, NotFound
from core.workspace import REPO_ROOT, Workspace

INJECTIONS = [
    "x; touch $T/pwned",
    "$(touch $T/pwned)",
    "`touch $T/pwned`",
    "x && touch $T/pwned || touch $T/pwned",
    "| touch $T/pwned",
    "a b",
    "../../etc",
    "/abs",
    "C:\\x",
    "nul\x00byte",
    "line\nbreak; touch $T/pwned",
    "--config=/etc/passwd",
]
DEMO_DATA = REPO_ROOT / "presets" / "templates" / "data" / "demo.jsonl"


@pytest.fixture
def marker_dir(tmp_path, monkeypatch) -> Path:
    """$T: where a shell that ran one of the strings would leave a file."""
    t = tmp_path / "T"
    t.mkdir()
    monkeypatch.setenv("T", str(t))
    return t


@pytest.fixture
def popen_calls(monkeypatch) -> list:
    """Record every process Danlu would start (and start none): argv and keyword arguments."""
    calls = []

    class FakePopen:
        def __init__(self, args, *a, **kw):
            calls.append((args, a, kw))
            self.pid = os.getpid()
            self.returncode = None

        def poll(self):
            return None

        def wait(self, timeout=None):  # core.procs.reap_when_done waits for what Danlu does not
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    monkeypatch.setattr(os, "system", lambda *a: pytest.fail(f"os.system called with {a}"))
    return calls


def assert_argv_lists(calls, *hostile: str):
    assert calls, "nothing was started"
    for args, a, kw in calls:
        assert isinstance(args, list) and all(isinstance(x, str) for x in args), args
        assert not kw.get("shell"), kw
        assert not a, "positional Popen options (bufsize, executable, shell...) are not used"
        for h in hostile:
            assert not any(h in x for x in args), f"{h!r} reached argv {args}"


def assert_no_marker(t: Path):
    assert not list(t.iterdir()), f"a shell ran: {list(t.iterdir())}"


@pytest.mark.parametrize("text", INJECTIONS)
def test_run_name_and_job_name_are_data(home, marker_dir, popen_calls, text):
    ws = Workspace.open(home)
    cfg = TrainConfig(dataset=str(DEMO_DATA), run_name=text)
    job = launcher.submit_train(ws, cfg, name=text, origin="shell")
    assert_argv_lists(popen_calls, text)
    assert Path(job.run_dir).resolve().parent == ws.runs.resolve()
    assert load_config(job.config_path).run_name == text  # round-trips through YAML unchanged
    assert "\n" not in job.name and "\x00" not in job.name
    assert_no_marker(marker_dir)


@pytest.mark.parametrize("text", INJECTIONS)
@pytest.mark.parametrize("field", ["dataset", "base_model"])
def test_gui_path_fields_refuse_hostile_values(home, marker_dir, popen_calls, field, text):
    ws = Workspace.open(home)
    values = {"dataset": "datasets/d.jsonl", field: text}
    shutil.copy(DEMO_DATA, ws.datasets / "d.jsonl")
    before = set(ws.runs.iterdir())
    with pytest.raises(InputError) as e:
        launcher.submit_train(ws, TrainConfig(**values), origin="browser")
    assert field in str(e.value)
    assert not popen_calls and set(ws.runs.iterdir()) == before  # refused before anything was made
    assert_no_marker(marker_dir)


def test_metacharacters_in_a_real_file_name_stay_literal(home, marker_dir, popen_calls):
    """A dataset legitimately named with spaces and shell characters is used as that file."""
    ws = Workspace.open(home)
    name = "my data; touch pwned $(id) `id`.jsonl"
    shutil.copy(DEMO_DATA, ws.datasets / name)
    job = launcher.submit_train(ws, TrainConfig(dataset=f"datasets/{name}"), origin="browser")
    assert_argv_lists(popen_calls, name)
    assert load_config(job.config_path).dataset == str(ws.datasets / name)
    assert_no_marker(marker_dir)


@pytest.mark.parametrize("text", INJECTIONS)
def test_cli_set_values_are_data(home, marker_dir, popen_calls, tmp_path, text, capsys):
    from cli.main import main
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {DEMO_DATA}\n")
    rc = main(["--home", str(home), "train", str(cfg), "--set", f"dataset={text}", "--detach"])
    assert rc == 2 and "dataset" in capsys.readouterr().err
    assert not popen_calls
    rc = main(["--home", str(home), "train", str(cfg), "--set", f"run_name={text}", f"--name={text}", "--detach"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert_argv_lists(popen_calls, text)
    assert_no_marker(marker_dir)


@pytest.mark.parametrize("text", INJECTIONS + ["%", "_", "2%", "*", ""])
@pytest.mark.parametrize("verb", ["show", "cancel", "logs", "resume", "delete"])
def test_job_ids_name_no_job(home, marker_dir, popen_calls, text, verb, capsys):
    """Wildcards ('%' and '_' in SQL LIKE) must not pick the only job; paths must not reach a file."""
    from cli.main import main
    ws = Workspace.open(home)
    J.JobStore(ws.db_path).create(kind="train", name="only", run_dir=str(ws.runs / "x"), state=J.SUCCEEDED)
    assert main(["--home", str(home), "jobs", verb, "--", text]) == 2
    assert "no job" in capsys.readouterr().err
    assert not popen_calls
    assert_no_marker(marker_dir)


def test_job_id_prefixes_still_work(home):
    ws = Workspace.open(home)
    job = J.JobStore(ws.db_path).create(kind="train", name="only", run_dir=str(ws.runs / "x"), state=J.SUCCEEDED)
    assert launcher.get_job(ws, job.id[:8]).id == job.id
    with pytest.raises(NotFound):
        launcher.get_job(ws, job.id[:8] + "%")


def test_a_long_job_id_is_quoted_as_its_head_and_its_length(tmp_path):
    """It was cut at 80 characters with its closing quote and length lost."""
    with pytest.raises(NotFound) as e:
        launcher.get_job(Workspace.open(tmp_path / "ws"), "x" * 5000)
    assert str(e.value).startswith("no job 'xxxxx") and "…' (5,000 characters)" in str(e.value)


@pytest.mark.slow
def test_hostile_values_through_the_real_supervisor_and_torchrun(home, marker_dir):
    """End to end with real processes (supervisor, torchrun, a stand-in recipe): the values arrive intact."""
    ws = Workspace.open(home)
    name = "d; touch pwned `id` $(id).jsonl"
    shutil.copy(DEMO_DATA, ws.datasets / name)
    run_name = "$(touch $T/pwned); `touch $T/pwned` | touch $T/pwned\nnext line"
    cfg = TrainConfig(dataset=f"datasets/{name}", run_name=run_name)
    job = launcher.submit_train(ws, cfg, name=run_name, module="tests.security.echo_recipe", origin="browser")
    job = launcher.wait(ws, job.id, timeout=180)
    assert job.state == J.SUCCEEDED, (job.message, (Path(job.run_dir) / "stdout.log").read_text()[-3000:])
    seen = json.loads((Path(job.run_dir) / "seen.json").read_text())
    assert seen["config"]["run_name"] == run_name
    assert seen["config"]["dataset"] == str(ws.datasets / name)
    assert seen["argv"][1:] == ["--config", job.config_path]
    assert_no_marker(marker_dir)


@pytest.mark.parametrize("text", INJECTIONS + ["%", "_"])
def test_store_find_treats_wildcards_as_text(home, text):
    """Every caller of JobStore.find (chat, merge, eval take job ids too), not only the CLI's jobs verbs."""
    ws = Workspace.open(home)
    J.JobStore(ws.db_path).create(kind="train", name="only", run_dir=str(ws.runs / "x"), state=J.SUCCEEDED)
    assert J.JobStore(ws.db_path).find(text) is None


@pytest.mark.parametrize("text", INJECTIONS)
def test_export_names_are_refused_or_stay_plain(home, marker_dir, popen_calls, text):
    from core.export import export_path, submit_merge
    ws = Workspace.open(home)
    with pytest.raises(InputError) as e:
        submit_merge(ws, "no-such-job", text, origin="browser")
    assert "name" in [p.where for p in e.value.problems]
    assert not popen_calls and not list(ws.exports.iterdir())
    assert_no_marker(marker_dir)
    with pytest.raises(InputError):
        export_path(ws, text)


def test_a_plain_export_name_is_one_folder_in_exports(home):
    from core.export import export_path
    ws = Workspace.open(home)
    assert export_path(ws, "support-bot_v1.2").parent == ws.exports.resolve()
