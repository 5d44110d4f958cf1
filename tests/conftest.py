"""Shared fixtures. Every test gets its own workspace ($DANLU_HOME); the demo model is built once
per session and copied in (it is 0.5 MB). No test touches the network."""
from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENV_DEFAULTS = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
for k, v in ENV_DEFAULTS.items():
    os.environ.setdefault(k, v)


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU (skipped on CPU machines and in CI)")
    config.addinivalue_line("markers", "slow: runs real training processes")
    config.addinivalue_line("markers", "browser: drives Debian's chromium with Playwright")


def pytest_collection_modifyitems(config, items):
    import shutil as sh
    if sh.which("nvidia-smi") is None:
        skip = pytest.mark.skip(reason="no NVIDIA GPU on this machine")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory) -> Path:
    from core.demo_model import ensure_demo_model
    from core.workspace import Workspace
    ws = Workspace.open(tmp_path_factory.mktemp("demo-ws"))
    return ensure_demo_model(ws)


@pytest.fixture(scope="module")
def tok(demo_model_dir):
    """The demo model's tokenizer, opened as the recipes open it."""
    from core.data.render import open_tokenizer
    return open_tokenizer(str(demo_model_dir), local=True)


def train_template(tmp_path_factory, demo_model_dir, template: str, name: str, **edits) -> dict:
    """{home, preset, job}: a starter template trained once as a user does (copy-preset, edit, train), in a
    workspace of its own with the demo model in place, for a fixture that several tests read."""
    import json

    import yaml
    home = tmp_path_factory.mktemp(name)
    (home / "models").mkdir()
    shutil.copytree(demo_model_dir, home / "models" / "danlu-tiny")
    cfg = home / f"{template}.yaml"
    r = run_app("copy-preset", template, cfg, home=home)
    assert r.returncode == 0, r.stderr
    preset = yaml.safe_load(cfg.read_text())
    cfg.write_text(yaml.safe_dump({**preset, **edits}))
    r = run_app("train", cfg, "--name", name, home=home, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    job = next(j for j in json.loads(run_app("jobs", "list", "--json", home=home).stdout) if j["kind"] == "train")
    assert job["state"] == "succeeded", job
    return dict(home=home, preset=preset, job=job)


@pytest.fixture(scope="session")
def preference_run(tmp_path_factory, demo_model_dir) -> dict:
    """The preference template trained once (train_template), for both the preference journey (tests/eval)
    and the DPO recipe's checks (tests/recipes), which each trained it. Logging every step (the recipe's
    checks read step 1's loss); the rest as the template sets it."""
    return train_template(tmp_path_factory, demo_model_dir, "preference-keeper", "pref-journey", logging_steps=1)


@pytest.fixture
def home(tmp_path, demo_model_dir, monkeypatch) -> Path:
    """A fresh workspace with the demo model already in place; DANLU_HOME points at it."""
    h = tmp_path / "home"
    (h / "models").mkdir(parents=True)
    shutil.copytree(demo_model_dir, h / "models" / "danlu-tiny")
    monkeypatch.setenv("DANLU_HOME", str(h))
    return h


@pytest.fixture
def ws(tmp_path):
    """An empty workspace (no demo model), for tests of the workspace's files alone."""
    from core.workspace import Workspace
    return Workspace.open(tmp_path / "ws")


@pytest.fixture(scope="session")
def gui_helper():
    """One helper process (webui.context.Gui.offload) for the Gui of every test that passes it as _worker:
    each Gui started its own on its first tokenizer call (an interpreter importing transformers, seconds
    each) and kept it until the session ended. Its calls take their workspace as an argument, so one
    helper serves every test's. Started here, with the session's environment rather than a test's."""
    from webui.context import Gui
    starter = Gui(services=None)
    starter.offload(os.getpid)
    yield starter._worker
    starter._worker.shutdown(cancel_futures=True)


@pytest.fixture
def services(home):
    from core.services import Services
    return Services.create(home)


def run_app(*args, home: Path, env: dict | None = None, timeout: float = 300, cwd: Path | None = None):
    """Run `python app.py ARGS` as a user would; returns CompletedProcess (text)."""
    e = dict(os.environ, DANLU_HOME=str(home), **ENV_DEFAULTS)
    e.update(env or {})
    return subprocess.run([sys.executable, str(REPO / "app.py"), *map(str, args)], cwd=str(cwd or REPO), env=e,
                          capture_output=True, text=True, timeout=timeout)


def load_script(rel: str):
    """A script of the repository that is no package module (bench/, tools/), loaded as a module for its tests."""
    spec = importlib.util.spec_from_file_location(Path(rel).stem, REPO / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole session, shared by every folder's browser tests: Playwright's sync
    API runs one event loop per thread, so a second sync_playwright() beside a live one fails."""
    from tests.webui.conftest import CHROMIUM, CHROMIUM_ARGS
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}: run `make chromium`")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
