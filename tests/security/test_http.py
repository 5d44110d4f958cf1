"""The live GUI server (`python app.py --port P`) serves only what webui.serving allows: private
workspace files stay unreadable over HTTP, another site's page cannot post to it, and uploads land
inside the workspace."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from tests.webui.conftest import live_server

pytestmark = pytest.mark.slow


def http(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = "danlu-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_live_gui_serves_nothing_private_and_refuses_other_sites(home):
    (home / "settings.yaml").write_text("secret: do-not-serve\n")
    with live_server(home) as s:
        base = s.url.rstrip("/")
        host = base.split("//", 1)[1]
        # private workspace files: never 200, whatever the spelling
        for private in ("jobs.sqlite", "settings.yaml", "models/danlu-tiny/config.json"):
            for spelling in (str(home / private), str(home / "gui-downloads" / ".." / private)):
                status, body = http(f"{base}/gradio_api/file={quote(spelling)}")
                assert status != 200, (spelling, status)
                assert b"do-not-serve" not in body
        # the GUI's own download folder is served
        (home / "gui-downloads").mkdir(exist_ok=True)
        (home / "gui-downloads" / "ok.csv").write_text("a,b\n1,2\n")
        status, body = http(f"{base}/gradio_api/file={quote(str(home / 'gui-downloads' / 'ok.csv'))}")
        assert status == 200 and body == b"a,b\n1,2\n"
        # a cross-site upload (CVE-2024-1727 style) is refused before Gradio reads it
        body, ctype = multipart("evil.jsonl", b'{"a": 1}\n')
        status, _ = http(f"{base}/gradio_api/upload", body, {"Content-Type": ctype, "Origin": "https://evil.example"})
        assert status == 403
        status, _ = http(f"{base}/gradio_api/upload", body, {"Content-Type": ctype, "Origin": "null"})
        assert status == 403
        # the page's own upload works and lands inside the workspace
        status, reply = http(f"{base}/gradio_api/upload", body, {"Content-Type": ctype, "Origin": f"http://{host}"})
        assert status == 200, reply
        stored = json.loads(reply)[0]
        assert stored.startswith(str(home / "gradio" / "uploads")), stored
