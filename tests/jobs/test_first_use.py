"""First use, from an empty workspace (issue 15): no demo model has been built, as on a new machine.

Every first-use path prepares the built-in model itself, once, before any rank starts: the GUI at
launch (racing a job started at once with two processes), `train --nproc 1` and `--nproc 2`, eval,
merge, chat and a shared demo. A builder killed half-way, or the tokenizer-only folder the old race
left behind, is rebuilt and never trusted."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core import demo_model
from core import jobs as J
from core.workspace import Workspace
from tests.conftest import ENV_DEFAULTS, REPO, run_app
from tests.core.test_demo_model import kill_builder_before_it_finishes, left_by_the_old_race
from tests.eval.test_demo import free_port, wait_for
from tests.jobs.util import wait_for as wait_until

pytestmark = pytest.mark.slow
QUICK = dict(max_steps=3, logging_steps=1, eval_steps=0, save_steps=0)


def short_config(home: Path, path: Path, **settings) -> Path:
    r = run_app("copy-preset", "demo", path, home=home)
    assert r.returncode == 0, r.stderr
    data = yaml.safe_load(path.read_text())
    data.update(QUICK, **settings)
    path.write_text(yaml.safe_dump(data))
    return path


def model_folder(home: Path) -> Path:
    return home / "models" / demo_model.DEMO_NAME


def train(home: Path, cfg: Path, nproc: int, said: list | None = None) -> dict:
    r = run_app("train", cfg, "--nproc", nproc, home=home, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    if said is not None:
        said.append(r.stdout + r.stderr)
    [job] = [j for j in json.loads(run_app("jobs", "list", "--json", home=home).stdout) if j["kind"] == "train"][:1]
    assert job["state"] == "succeeded", job
    assert demo_model.is_complete(model_folder(home))
    return job


def test_first_train_with_two_processes_on_an_empty_workspace(tmp_path):
    home = tmp_path / "new-home"  # not even created yet
    cfg = short_config(home, tmp_path / "d.yaml", max_seq_length=8192)  # past the demo model's window (4096)
    said = []
    train(home, cfg, nproc=2, said=said)
    log = next((home / "runs").iterdir()) / "stdout.log"
    assert "preparing the built-in demo model" in log.read_text()  # by the supervisor, before the ranks
    # the window's warning: once in the log, and the CLI following that log says it once, not twice
    assert log.read_text().count("context window of builtin:danlu-tiny") == 1
    assert said[0].count("context window of builtin:danlu-tiny") == 1, said[0][-3000:]


def test_two_processes_train_after_the_builder_was_killed_half_way(tmp_path):
    home = tmp_path / "home"
    r = kill_builder_before_it_finishes(Workspace.open(home))
    assert r.returncode < 0 and not model_folder(home).exists()
    train(home, short_config(home, tmp_path / "d.yaml"), nproc=2)


def test_eval_merge_chat_and_demo_each_prepare_a_missing_model(tmp_path, demo_model_dir):
    home = tmp_path / "home"
    job = train(home, short_config(home, tmp_path / "d.yaml"), nproc=1)
    ws = Workspace.open(home)

    shutil.rmtree(model_folder(home))
    left_by_the_old_race(ws, demo_model_dir)  # the state the old race left: tokenizer files alone
    r = run_app("eval", job["id"], "--max-samples", 2, "--max-new-tokens", 4, home=home, timeout=400)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    shutil.rmtree(model_folder(home))
    # into a folder the command line names (XTuner's SAVE_DIR): same .partial, manifest and smoke test
    # as an export by name (tests/eval/test_eval_export_chat.py); one merge serves both checks
    folder = tmp_path / "shared-models" / "bot"
    folder.parent.mkdir()
    r = run_app("merge", job["id"], folder, home=home, timeout=400)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (folder / "manifest.json").is_file() and sorted(p.name for p in folder.parent.iterdir()) == ["bot"]
    again = run_app("merge", job["id"], folder, home=home)
    assert again.returncode == 2 and "already exists" in again.stderr

    shutil.rmtree(model_folder(home))
    r = run_app("chat", job["id"], "--prompt", "Hello", "--max-new-tokens", 4, "--temperature", 0, home=home, timeout=300)
    assert r.returncode == 0 and r.stdout.strip(), r.stdout[-2000:] + r.stderr[-2000:]
    assert demo_model.is_complete(model_folder(home))

    shutil.rmtree(model_folder(home))
    log = tmp_path / "demo.log"
    env = dict(os.environ, DANLU_HOME=str(home), **ENV_DEFAULTS)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "demo", "builtin:danlu-tiny", "--port",
                                 str(free_port()), "--lang", "ko"], cwd=str(REPO), env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        url = wait_for(log, r"\[demo\] chat demo \w+ for .* at (http://127\.0\.0\.1:\d+)", proc).group(1)
        assert demo_model.is_complete(model_folder(home))
        import httpx
        from webui.i18n import tr
        props = [c.get("props", {}) for c in httpx.get(f"{url.rstrip('/')}/config", timeout=30).json()["components"]]
        assert tr("chat.send", "ko") in {str(p.get("value")) for p in props}  # the page in the language it was asked for
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_gui_on_an_empty_workspace_builds_the_model_while_a_two_process_job_starts(tmp_path):
    """Start training with Processes = 2 at once, before the GUI's own builder has finished: both go
    through one builder under a lock, the job's ranks only load the finished model."""
    from gradio_client import Client

    from core.config import from_dict, to_dict
    from core.presets import compose
    from tests.webui.conftest import live_server
    home = tmp_path / "home"
    home.mkdir()  # empty: the server log goes here
    with live_server(home) as s:
        box = json.dumps(to_dict(from_dict({**compose("demo"), **QUICK}, source="test")))
        # the last answer is the line in every language (webui.app.keep_said), for a language switch
        job_id, message, _, _ = Client(s.url, verbose=False).predict("en", ["cpu"], 2, box, api_name="/start_training")
        assert job_id, message
        store = J.JobStore(Workspace.open(home).db_path)
        job = wait_until(lambda: (j := store.get(job_id)).terminal and j, 400, what="the job to end")
        assert job.state == J.SUCCEEDED, (job.message, (Path(job.run_dir) / "stdout.log").read_text()[-3000:])
        assert job.nproc == 2 and demo_model.is_complete(model_folder(home))
