"""The chat-only demo: refuses to go public without a login, answers 401 without it, serves chat with it,
reports a share link that cannot be made (offline) and keeps serving, and is listed and stopped."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ENV_DEFAULTS, REPO, free_port, run_app


@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--host", "192.168.1.10"], ["--share"],
                                  ["--host", "0.0.0.0", "--share"]])
def test_demo_refuses_to_go_public_without_a_login(home, args):
    t0 = time.time()
    r = run_app("demo", "builtin:danlu-tiny", *args, home=home, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Refusing to start the demo without a login" in r.stderr and "--auth" in r.stderr
    assert time.time() - t0 < 30  # refused before any model is loaded
    assert not (home / "logs").exists()  # and no chat worker was started


def test_demo_bad_login_format_is_refused(home):
    r = run_app("demo", "builtin:danlu-tiny", "--auth", "no-colon", home=home, timeout=60)
    assert r.returncode == 2 and "USER:PASS" in r.stderr


def wait_for(path: Path, pattern: str, proc, timeout: float = 180) -> re.Match:
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, path.read_text(errors="replace")) if path.exists() else None
        if m:
            return m
        if proc.poll() is not None:
            raise AssertionError(f"demo exited {proc.returncode}:\n{path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not seen in {timeout} s:\n{path.read_text(errors='replace')[-3000:]}")


@pytest.mark.slow
def test_demo_with_login_guards_every_api_route_and_serves_chat(trained, tmp_path):
    from gradio_client import Client

    from core import demos
    from core.workspace import Workspace
    home, job_id = trained["home"], trained["job_id"]
    ws = Workspace.open(home)
    port = free_port()
    log = tmp_path / "demo.log"
    env = dict(os.environ, DANLU_HOME=str(home), **ENV_DEFAULTS)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "demo", job_id, "--auth", "ann:secret-pass",
                                 "--port", str(port), "--share", "--title", "Furnace bot"], cwd=str(REPO), env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for(log, r"\[demo\] chat demo \w+ for .* at http://127\.0\.0\.1:\d+", proc)
        t_serving = time.time()
        # offline, the share link fails fast: the demo says so and keeps serving locally
        wait_for(log, r"share link could not be created|no public share link after", proc, timeout=30)
        assert time.time() - t_serving < 20
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=30) as c:
            for method, route in [("GET", "/config"), ("GET", "/gradio_api/info"), ("POST", "/gradio_api/queue/join"),
                                  ("POST", "/gradio_api/call/chat"), ("POST", "/gradio_api/run/chat"),
                                  ("POST", "/gradio_api/upload"), ("GET", "/gradio_api/file=/etc/passwd"),
                                  ("GET", "/gradio_api/openapi.json"), ("GET", "/monitoring")]:
                r = c.request(method, base + route, json={"data": ["hi", [], 0, 16], "fn_index": 0, "session_hash": "x"}
                              if method == "POST" else None)
                assert r.status_code in (401, 403), (method, route, r.status_code, r.text[:200])
            for route in ("/openapi.json", "/docs", "/redoc"):  # FastAPI's schema pages are switched off
                assert c.get(base + route).status_code in (401, 403, 404), route
            assert c.post(base + "/login", data={"username": "ann", "password": "wrong"}).status_code in (400, 401)
            assert c.get(base + "/config").status_code == 401
            assert c.post(base + "/login", data={"username": "ann", "password": "secret-pass"}).status_code == 200
            cfg = c.get(base + "/config")
            assert cfg.status_code == 200
            # chat only: no file, upload or training components in the page
            types = {comp["type"] for comp in cfg.json()["components"]}
            assert "chatbot" in types and not types & {"file", "uploadbutton", "image", "dataframe", "fileexplorer"}
        client = Client(base + "/", auth=("ann", "secret-pass"), verbose=False)
        history, cleared = client.predict("What colour does the tin furnace burn?", [], 0.0, 16, api_name="/chat")
        assert cleared == "" and history[-1]["role"] == "assistant"
        answer = "".join(b["text"] for b in history[-1]["content"] if b.get("type") == "text")
        assert answer.strip(), history
        again, _ = client.predict("What colour does the tin furnace burn?", [], 0.0, 16, api_name="/chat")
        assert again[-1] == history[-1]  # greedy decoding: the same reply, whatever words the tiny model chose
        # the GUI's view: the demo is listed, with its share failure recorded, and can be stopped
        [rec] = demos.list_demos(ws)
        assert rec["port"] == port and rec["login"] and rec["share_url"] is None and rec["share_error"]
        demos.stop_demo(ws, rec["id"])
        proc.wait(30)
        assert demos.list_demos(ws) == []
        assert "[demo] stopping" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_stale_demo_records_are_dropped(home):
    import json

    from core import demos
    from core.workspace import Workspace
    ws = Workspace.open(home)
    (demos.demos_dir(ws) / "dead.json").write_text(json.dumps(dict(id="dead", pid=2**22 - 1, ctime=1.0, url="x")))
    assert demos.list_demos(ws) == []
    assert not (demos.demos_dir(ws) / "dead.json").exists()
    with pytest.raises(Exception, match="no running demo"):
        demos.stop_demo(ws, "dead")
