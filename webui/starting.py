"""A "Danlu is starting" page served the moment `python app.py` runs.

Importing Gradio and building the app takes seconds (3-7 s on a busy 2-core machine); a browser
opened meanwhile would get "connection refused". This tiny standard-library server answers at once
on the same address and port with a static page that polls until the real app is up, then
reloads. It shows nothing but that sentence, so it needs no login; it is closed right before
Gradio binds the port. No gradio import here: that is the point.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = "danlu-starting-page"
PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Danlu 丹炉</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;color:#44403c;display:flex;align-items:center;
justify-content:center;height:90vh;margin:0}}p{{color:#a8a29e}}</style></head>
<body id="{MARKER}"><div><h1>Danlu 丹炉</h1><div>Starting… 正在启动……</div>
<p>This page opens the app by itself in a few seconds. 几秒后自动打开。</p></div>
<script>
async function poll() {{
  try {{
    const r = await fetch(location.href, {{cache: "no-store"}});
    const t = await r.text();
    if (!t.includes("{MARKER}")) {{ location.reload(); return; }}
  }} catch (e) {{}}
  setTimeout(poll, 400);
}}
setTimeout(poll, 400);
</script></body></html>
""".encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        # The page itself at "/" only; the app's routes (files, API) answer 503 "not yet", so no client
        # mistakes this page for a reply from the app.
        page = self.path.split("?", 1)[0] == "/"
        body = PAGE if page else b"Danlu is starting; try again in a few seconds.\n"
        self.send_response(200 if page else 503)
        self.send_header("Content-Type", "text/html; charset=utf-8" if page else "text/plain; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        if not page:
            self.send_header("Retry-After", "2")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet: the terminal shows Gradio's own line when the app is up
        pass


class StartingPage:
    """Serve the page on host:port until close(); does nothing when the port cannot be bound (Gradio
    then reports the busy port in its own words)."""

    def __init__(self, host: str, port: int):
        self._server = None
        try:
            self._server = ThreadingHTTPServer((host, port), _Handler)
        except OSError:
            return
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def serving(self) -> bool:
        return self._server is not None

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
