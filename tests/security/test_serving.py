"""webui.serving: what the GUI's server may serve and which pages may call it (no server here;
tests/security/test_http.py drives a live one)."""
from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from webui.serving import OriginGuard, launch_options, origin_allowed


@pytest.mark.parametrize("origin, host, fwd, ok", [
    ("http://127.0.0.1:7860", "127.0.0.1:7860", None, True),
    ("http://localhost:7860", "localhost:7860", None, True),
    ("https://danlu.example.com", "danlu.example.com", None, True),          # TLS proxy keeping Host
    ("https://danlu.example.com", "127.0.0.1:7860", "danlu.example.com", True),  # proxy sending X-Forwarded-Host
    ("https://evil.example", "127.0.0.1:7860", None, False),
    ("null", "127.0.0.1:7860", None, False),
    ("http://127.0.0.1:9999", "127.0.0.1:7860", None, False),                # another local app's page
    ("http://127.0.0.1.evil.example:7860", "127.0.0.1:7860", None, False),
    ("file://", "127.0.0.1:7860", None, False),
    ("javascript:alert(1)", "127.0.0.1:7860", None, False),
    ("https://danlu.example.com.evil.example", "danlu.example.com", None, False),
    ("http://[::1]:7860", "[::1]:7860", None, True),
    ("http://127.0.0.1:7860", "127.0.0.1:bad", None, False),
])
def test_origin_allowed(origin, host, fwd, ok):
    assert origin_allowed(origin, host, fwd) is ok


def test_extra_origins_for_host_rewriting_proxies():
    assert not origin_allowed("https://danlu.example.com", "127.0.0.1:7860")
    assert origin_allowed("https://danlu.example.com", "127.0.0.1:7860", extra=("https://danlu.example.com",))


def call_guard(headers: dict, scope_type="http", env_origins=""):
    import os
    sent, reached = [], []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    async def send(msg):
        sent.append(msg)

    old = os.environ.get("DANLU_ALLOWED_ORIGINS")
    os.environ["DANLU_ALLOWED_ORIGINS"] = env_origins
    try:
        guard = OriginGuard(app)
    finally:
        if old is None:
            del os.environ["DANLU_ALLOWED_ORIGINS"]
        else:
            os.environ["DANLU_ALLOWED_ORIGINS"] = old
    scope = {"type": scope_type, "path": "/gradio_api/upload",
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    # in a thread of its own: Playwright's sync API (the browser tests) keeps a loop running in this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, guard(scope, None, send)).result()
    return sent, reached


def test_guard_refuses_cross_site_before_the_app():
    sent, reached = call_guard({"host": "127.0.0.1:7860", "origin": "https://evil.example"})
    assert not reached and sent[0]["status"] == 403
    sent, reached = call_guard({"host": "127.0.0.1:7860", "origin": "null"}, scope_type="websocket")
    assert not reached and sent[0]["type"] == "websocket.close"


def test_guard_lets_same_site_and_originless_requests_through():
    assert call_guard({"host": "127.0.0.1:7860", "origin": "http://127.0.0.1:7860"})[1] == ["/gradio_api/upload"]
    assert call_guard({"host": "127.0.0.1:7860"})[1] == ["/gradio_api/upload"]  # curl, gradio_client
    assert call_guard({"host": "127.0.0.1:7860", "origin": "https://danlu.example.com"},
                      env_origins="https://danlu.example.com/")[1] == ["/gradio_api/upload"]


def test_launch_options_keep_gradio_inside_the_workspace(tmp_path, monkeypatch):
    from core.workspace import Workspace
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    monkeypatch.delenv("GRADIO_EXAMPLES_CACHE", raising=False)
    ws = Workspace.open(tmp_path / "ws")
    kw = launch_options(ws)
    import os
    assert os.environ["GRADIO_TEMP_DIR"].startswith(str(ws.root))
    assert os.environ["GRADIO_EXAMPLES_CACHE"].startswith(str(ws.root))
    assert kw["allowed_paths"] == [str(ws.root / "gui-downloads")]
    blocked = set(kw["blocked_paths"])
    for private in ("jobs.sqlite", "settings.yaml", "runs", "datasets", "models", "exports"):
        assert str(ws.root / private) in blocked
    assert kw["strict_cors"] is True and kw["ssr_mode"] is False and kw["mcp_server"] is False
