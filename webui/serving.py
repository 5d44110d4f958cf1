"""What the GUI's web server may serve, and to whom. Used by webui.app.launch; no gradio import here.

    kwargs = serving.launch_options(ws)     # call BEFORE building the Blocks (it sets Gradio's cache dir)
    blocks.launch(..., **kwargs)

* Gradio's upload/output cache moves into the workspace (<ws>/gradio/uploads): uploads land on the
  workspace's disk, and the only files Gradio serves are that cache plus the GUI's own download
  folder (<ws>/gui-downloads). The job table, settings, runs, datasets, models and exports are
  blocked outright, so even a later allowed_paths mistake cannot expose them.
* Cross-site requests are refused (OriginGuard). CORS only hides the reply from another site's
  script; a "simple" cross-site POST (a multipart upload to http://127.0.0.1:7860, CVE-2024-1727)
  still reaches the server. A browser always sends Origin on such requests, so a request whose
  Origin names another site - or is "null" - gets 403 before Gradio sees it.
* No SSR node server, no MCP server, strict CORS: nothing listens or answers that we did not ask for.

Behind a reverse proxy that rewrites the Host header, list the public origin in
DANLU_ALLOWED_ORIGINS (comma-separated, e.g. https://danlu.example.com); proxies that keep Host
(`proxy_set_header Host $host`) or send X-Forwarded-Host need nothing.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from urllib.parse import urlsplit

from core import knobs

PRIVATE = ("jobs.sqlite", "jobs.sqlite-wal", "jobs.sqlite-shm", "settings.yaml", "runs", "datasets", "models",
           "exports")
ALLOWED_ORIGINS_ENV = knobs.ALLOWED_ORIGINS


def upload_dir(ws) -> Path:
    return Path(ws.root) / "gradio" / "uploads"


def downloads_dir(ws) -> Path:
    """The one folder the page offers files from (launch's allowed_paths), made when missing."""
    d = Path(ws.root) / "gui-downloads"
    d.mkdir(parents=True, exist_ok=True)
    return d


def launch_options(ws) -> dict:
    """Set Gradio's cache folders into the workspace and return the launch() keyword arguments."""
    from starlette.middleware import Middleware
    uploads, downloads = upload_dir(ws), downloads_dir(ws)
    for d in (uploads, Path(ws.root) / "gradio" / "examples"):
        d.mkdir(parents=True, exist_ok=True)
    # Read by Gradio when components are built and when the server starts: set before both.
    os.environ["GRADIO_TEMP_DIR"] = str(uploads)
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(Path(ws.root) / "gradio" / "examples")
    quiet_per_event_overheads()
    return dict(allowed_paths=[str(downloads)], blocked_paths=[str(Path(ws.root) / p) for p in PRIVATE],
                strict_cors=True, ssr_mode=False, mcp_server=False,
                app_kwargs={"middleware": [Middleware(OriginGuard)]})


def quiet_per_event_overheads() -> None:
    """Two costs Gradio pays on every event, measured with bench/load_gui.py (50 polling tabs):
    * after each event its queue rebuilds a pandas summary of up to 10,000 past events for the
      monitoring page, which Danlu does not use: the largest single cost under load. Summarise
      at most every 10,000 events over the last 1,000.
    * each event tries `import matplotlib` twice (to switch its backend); matplotlib is not
      installed, so each try searches sys.path on disk. Mark it absent once, so the try fails at
      once - only when it really is not installed.
    Must run before the queue is created (blocks.queue())."""
    import importlib.util
    import sys
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "10000")
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # `import matplotlib` now raises ImportError without a disk search


SKIP = {"__type__": "update"}  # what gr.skip() returns


def progress_only_where_asked(blocks) -> None:
    """Gradio's progress overlay only on the components an event names (show_progress_on), none
    elsewhere.

    By default every output of every event gets the overlay, and Gradio 6's page then keeps each such
    output in its loading-status list for good: on every status change of any event it looks each
    entry up in the whole component tree and copies its props. A template click fills ~40 settings,
    so after one click each later event paid for all of them, and a plot or log as output costs a copy
    of its data each time. Measured with bench/gui_latency.py on 2 cores while a job trained: Use this
    template answered in 0.54-0.66 s with the default, 0.19-0.24 s without. Events that can take a
    while (a big file's check, cleaning, a chat reply) name one small status component instead."""
    for fn in blocks.fns.values():
        if fn.show_progress_on is None:
            fn.show_progress_on = []


def quick_without_queue(blocks, keep_queued=()) -> None:
    """Events whose handler answers at once skip Gradio's queue: one plain request and its reply,
    instead of joining the queue and following an event stream (queued, started, done), each step
    of which makes the page walk its loading-status list (see progress_only_where_asked). Measured
    with bench/gui_latency.py on 2 cores while a job trained: Chat's Clear (already unqueued)
    answered in 31-41 ms where queued presses took 100-200 ms.

    Kept on the queue: generators (Gradio streams them only there: cleaning that loads a tokenizer,
    the token lengths, chat replies) and the handlers in `keep_queued`, which can take seconds
    (checking a big file, starting or stopping a demo): the queue limits how many run at once, and
    their reply does not ride on one long HTTP request. The one place that decides: no event sets
    queue= itself."""
    keep = {_inner(f) for f in keep_queued}
    for fn in blocks.fns.values():
        if fn.fn is None or fn.types_generator or _inner(fn.fn) in keep:
            continue
        fn.queue = False


def _inner(fn):
    """The function under functools.partial layers."""
    while hasattr(fn, "func"):
        fn = fn.func
    return fn


def cheap_skips(blocks) -> None:
    """Send gr.skip() outputs without Gradio's per-output rebuild.

    Gradio 6 treats a skipped output like any property update: it builds a new copy of the component
    and regenerates that component's config (its API schema included) in the session, then sends
    {"__type__": "update"}, which changes nothing in the page. The Train tab's timer returns mostly
    skips (nothing new since the last tick), so under 50 polling tabs these rebuilds were most of the
    server's work (py-spy on bench/load_gui.py). Here, bare skips of ordinary components are answered
    with that same {"__type__": "update"} directly, and Gradio's own postprocessing runs for the other
    outputs only. Stateful outputs (gr.State) keep Gradio's path: a skipped State sends None there."""
    original = blocks.postprocess_data

    async def postprocess_data(block_fn, predictions, state):
        outputs = block_fn.outputs
        if (getattr(block_fn, "batch", False) or getattr(block_fn, "is_validator_function", False)
                or not isinstance(predictions, (list, tuple)) or len(predictions) != len(outputs) or len(outputs) < 2):
            return await original(block_fn, predictions, state)
        keep = [i for i, (block, value) in enumerate(zip(outputs, predictions))
                if getattr(block, "stateful", True) or not (isinstance(value, dict) and value == SKIP)]
        if len(keep) == len(outputs):
            return await original(block_fn, predictions, state)
        out = [dict(SKIP) for _ in outputs]
        if keep:
            part = copy.copy(block_fn)
            part.outputs = [outputs[i] for i in keep]
            values = [predictions[i] for i in keep]
            done = await original(part, values if len(keep) > 1 else values[0], state)
            for i, value in zip(keep, done):
                out[i] = value
        return out

    blocks.postprocess_data = postprocess_data


def _split_host(netloc: str) -> tuple[str, str | None]:
    """("host", "port" or None) from "host:port", "[::1]:7860" or "host"."""
    parts = urlsplit("//" + netloc.strip().lower())
    try:
        port = str(parts.port) if parts.port is not None else None
    except ValueError:
        port = "invalid"
    return parts.hostname or "", port


def origin_allowed(origin: str, host: str, forwarded_host: str | None = None, extra: tuple[str, ...] = ()) -> bool:
    """Is a request from page `origin` to this server (reached as `host`) same-site?"""
    origin = origin.strip().lower().rstrip("/")
    if origin in extra:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed iframes, file:// pages) and anything odd
    o_host, o_port = _split_host(parts.netloc)
    for candidate in filter(None, (host, forwarded_host)):
        h_host, h_port = _split_host(candidate.split(",")[0])
        if o_host != h_host:
            continue
        if o_port is None or h_port is None or o_port == h_port:
            # A port is compared only when both name one: behind a TLS proxy the page says
            # https://name while the proxy may forward Host "name".
            return True
    return False


class OriginGuard:
    """ASGI middleware: 403 for any HTTP or websocket request that carries a cross-site Origin."""

    def __init__(self, app):
        self.app = app
        self.extra = tuple(o.strip().lower().rstrip("/") for o in knobs.get(ALLOWED_ORIGINS_ENV, "").split(",")
                           if o.strip())

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            origin = headers.get("origin")
            if origin is not None and not origin_allowed(origin, headers.get("host", ""),
                                                         headers.get("x-forwarded-host"), self.extra):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = b"Cross-site request refused: Danlu answers only pages it served itself."
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: 413 with `words` (JSON {"error": words}) for an HTTP request whose body is larger than
    `limit` bytes, before the app reads any of it. Starlette reads and FastAPI parses a whole body before a
    route looks at it: a 300 MB body held 1.7 GB of the demo's memory. The body is read here, up to `limit`
    (a Content-Length above it is refused unread), and handed on as it came."""

    def __init__(self, app, limit: int, words: str):
        self.app, self.limit, self.words = app, limit, words

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            return await self.refuse(send)
        held, size = [], 0
        while True:
            message = await receive()
            held.append(message)
            size += len(message.get("body", b""))
            if size > self.limit:  # a body sent in chunks, without a length
                return await self.refuse(send)
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay():
            return held.pop(0) if held else await receive()
        await self.app(scope, replay, send)

    async def refuse(self, send) -> None:
        import json
        body = json.dumps({"error": self.words}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
