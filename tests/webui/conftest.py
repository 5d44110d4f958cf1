"""GUI test fixtures: a live `python app.py --port P` server per test (its own workspace), Debian's
chromium through Playwright, and screenshots saved to test-artifacts/screenshots/."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ENV_DEFAULTS, REPO, free_port
from webui.starting import MARKER

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = REPO / "test-artifacts" / "screenshots"
FAKE_RECIPE = "tests.webui.fake_recipe"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    home: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> float:
    """Seconds until the app (not the starting page) answers 200 at `url`; fails with the server's log if it dies or never answers."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200 and MARKER not in r.read().decode(errors="replace"):
                    return time.time() - t0  # the app itself, not the CLI's "starting" page
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the server did not answer within {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def stop_jobs(home: Path) -> None:
    """Jobs are detached on purpose; a test must not leave one running."""
    from core import jobs as J
    from core import launcher
    from core.services import Services
    services = Services.create(home)
    for job in services.store.list(states=[J.QUEUED, *J.ACTIVE]):
        launcher.cancel(services.workspace, job.id, grace=5)
    for job in services.store.list(states=[J.QUEUED, *J.ACTIVE]):
        launcher.wait(services.workspace, job.id, timeout=60)


@contextmanager
def live_server(home: Path, env: dict | None = None, keep_jobs: bool = False):
    """`python app.py --port P` as a user starts it, in its own session, with DANLU_HOME=home.
    On exit the server stops and, unless keep_jobs, so does every job it left running."""
    port = free_port()
    e = dict(os.environ, DANLU_HOME=str(home), **ENV_DEFAULTS)
    e.update(env or {})
    log = home / f"server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port)], cwd=str(REPO), env=e,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}/", proc, home, log)
    try:
        wait_http(server.url, proc, log)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not keep_jobs:
            stop_jobs(home)


@pytest.fixture
def server(home):
    with live_server(home) as s:
        yield s


@pytest.fixture
def gui(services, gui_helper):
    """The handlers' per-server context; its Start training runs tests/webui/fake_recipe.py."""
    from webui.context import Gui
    return Gui(services=services, train_module=FAKE_RECIPE, _worker=gui_helper)


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact (the folder is git-ignored)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_app(page, url: str) -> None:
    page.goto(url, wait_until="load")
    page.locator("#tpl-demo").wait_for(state="visible", timeout=60_000)


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def run_evaluation(page, job_id: str, samples: int) -> None:
    """The Evaluate tab on the job just trained (it is preselected): `samples` prompts, to Succeeded."""
    from playwright.sync_api import expect
    tab(page, "Evaluate")
    expect(page.locator("#ev-run input")).to_have_value(re.compile(job_id))
    page.locator("#ev-max-samples input").fill(str(samples))
    page.get_by_role("button", name="Run evaluation").click()
    expect(page.locator("#ev-status")).to_contain_text("Succeeded", timeout=600_000)


@pytest.fixture
def uploads(home) -> Path:
    """Where the page's uploads land (webui.serving sets GRADIO_TEMP_DIR there): a handler test
    hands its files over from here, as Gradio would; a path from anywhere else is refused (core.trust)."""
    d = home / "gradio" / "uploads"
    d.mkdir(parents=True, exist_ok=True)
    return d
