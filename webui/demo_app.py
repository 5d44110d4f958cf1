"""The shareable chat-only demo: a separate, inference-only Gradio app in its own process.

    python app.py demo MODEL [--adapter DIR] [--host H] [--port P] [--auth USER:PASS] [--share]

It has a chat box, a message field and a few answer settings, and nothing else: no file
components, no training controls, no paths. A share link exposes every route of the app it
belongs to (reliability.md, finding 5), which is why this is its own app and process rather than
a tab of the training console. With a login, Gradio answers 401 to every API route (/config,
/gradio_api/info, /gradio_api/queue/join, ...) until the login cookie is presented.

Its callers may be strangers, over the HTTP API with any values: the demo says only its own worded
errors (Said). Anything else that goes wrong - a value Gradio itself cannot read (its pydantic text,
which quotes the value), Gradio's own message about missing inputs, a request body of the wrong shape,
an exception of the demo's own code - answers one generic sentence; the details go to the demo's log
only (only_worded_errors, launch).

The model lives in a chat worker process (core.chat), not in this one.
"""
from __future__ import annotations

import signal
import threading
import time

import gradio as gr
from starlette.middleware import Middleware

from core import demos
from core.chat import ChatEngine, ChatError
from core.config import as_number, quoted
from core.errors import DanluError, InputError
from core.messages import Msg
from webui import numbers
from webui.i18n import error_text, lang_code, say, tr
from webui.serving import BodyLimit, OriginGuard

SHARE_WAIT_S = 8.0  # how long to wait for a share link before saying it is not coming
UPLOAD_LIMIT = "1kb"  # the demo takes no files; keep Gradio's upload route from accepting big bodies
# the most bytes of any request: the page's own stay far below (a message of 8,000 characters and the turns
# the model reads, demos.HISTORY_CHARS, at 4 bytes a character in UTF-8: under 600 KB)
BODY_LIMIT = 2 * 2**20
# the most answers waiting for the model (each holding its request): without a bound a caller could queue
# thousands of 2 MB requests in the demo's memory; beyond it a request is told the chat is busy
QUEUE_LIMIT = 32
MESSAGE_LIMIT = 8000  # characters of one message: the page's box takes no more; a direct call is held to it too
# the sliders' bounds, which a direct call is held to too: 32,768 new tokens (core's bound) would hold a
# shared demo's model for minutes per request
TEMPERATURE = (0.0, 1.5)
ANSWER_TOKENS = (16, 1024)


class Said(gr.Error):
    """An error the demo words itself: the only kind its callers see as it is (only_worded_errors)."""


def build_demo(engine: ChatEngine, session_id: str, title: str, system: str = "", description: str = "",
               lang: str = "en", sampling: dict | None = None) -> gr.Blocks:
    """The demo's page, in `lang` (the GUI starts it in its own page's language; `demo --lang`). `sampling`:
    the model's recommended temperature and top_p (core.model_sampling), where the answers start."""
    start = dict({"temperature": 0.7, "top_p": 0.9}, **(sampling or {}))
    def respond(message: str, history: list, temperature: float, max_new_tokens: int):
        message = (message or "").strip()
        history = list(history or [])
        if not message:
            yield history, ""
            return
        if len(message) > MESSAGE_LIMIT:  # only a direct HTTP call sends more than the box takes
            raise Said(say(Msg("demo.too_long", n=len(message), limit=MESSAGE_LIMIT), lang))
        temperature = page_setting(temperature, TEMPERATURE, float, "chat.temperature", lang)
        max_new_tokens = page_setting(max_new_tokens, ANSWER_TOKENS, int, "chat.max_new_tokens", lang)
        try:
            turns = demos.conversation(history)
        except InputError as e:
            raise Said(say(e.problems[0].msg, lang))
        # the page shows what the model still reads: a long chat's requests stay as small as the limits
        history = history[len(history) - len(turns):] + [{"role": "user", "content": message},
                                                         {"role": "assistant", "content": ""}]
        yield history, ""
        answer = ""
        try:
            for delta in engine.stream(session_id, turns + [{"role": "user", "content": message}], system=system,
                                       temperature=temperature, top_p=start["top_p"], max_new_tokens=max_new_tokens):
                answer += delta
                history[-1] = {"role": "assistant", "content": answer}
                yield history, ""
        except DanluError as e:
            raise Said(worker_words(e, lang))
        if not answer:
            history[-1] = {"role": "assistant", "content": tr("chat.empty_answer", lang)}
            yield history, ""

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## {title}" + (f"\n{description}" if description else ""))
        chatbot = gr.Chatbot(label=tr("chat.answers", lang), height=480, allow_file_downloads=False, feedback_options=None,
                             allow_tags=False, buttons=["copy"])
        message = gr.Textbox(label=tr("chat.message", lang), placeholder=tr("chat.message_placeholder", lang), lines=1,
                             max_length=MESSAGE_LIMIT)
        with gr.Row():
            send = gr.Button(tr("chat.send", lang), variant="primary")
            clear = gr.Button(tr("chat.clear", lang))
        with gr.Accordion(tr("chat.sampling", lang), open=False):
            temperature = numbers.Slider(*TEMPERATURE, value=min(start["temperature"], TEMPERATURE[1]), step=0.05, label=tr("chat.temperature", lang),
                                         info=tr("chat.temperature_help", lang))
            max_new = numbers.Slider(*ANSWER_TOKENS, value=256, step=16, label=tr("chat.max_new_tokens", lang),
                                     info=tr("chat.max_new_tokens_help", lang))
        inputs = [message, chatbot, temperature, max_new]
        newest_turns_only(app, chatbot)
        message.submit(respond, inputs, [chatbot, message], api_name="chat", concurrency_limit=4)
        send.click(respond, inputs, [chatbot, message], api_name="send", concurrency_limit=4)
        clear.click(lambda: ([], ""), None, [chatbot, message], api_name="clear")
    return app


def page_setting(value, bounds: tuple, kind: type, label: str, lang: str):
    """A slider's value as `kind`, or a Said naming the slider and its bounds (a direct call sends anything:
    NaN, 1e999, text, 32768)."""
    n = as_number(value, kind)
    lo, hi = bounds
    if n is None or not lo <= n <= hi:
        raise Said(say(Msg("demo.setting", name=tr(label, lang), lo=f"{lo:g}", hi=f"{hi:g}", value=quoted(value)), lang))
    return n


def worker_words(e: DanluError, lang: str) -> str:
    """What the demo says for an error of its chat worker: Danlu's words as they are, except an unexpected
    failure's (chat.failed), which quote the exception (a template's, a path of the owner's machine): the
    generic sentence for those, the details staying in the worker's log."""
    if getattr(getattr(e, "msg", None), "code", None) == "chat.failed":
        return say(Msg("demo.failed"), lang)
    return error_text(e, lang)


def newest_turns_only(app: gr.Blocks, chatbot: gr.Chatbot) -> None:
    """The conversation a request sends is cut to its newest turns (demos.HISTORY_TURNS) before Gradio reads
    it: Gradio checks and copies every turn before the handler runs (100,000 one-word turns, a 3 MB body,
    took 20 s of the demo's processor). Gradio 6 calls process_api with keywords (route_utils)."""
    process = app.process_api

    async def process_api(*args, **kwargs):
        block_fn, inputs = kwargs.get("block_fn"), kwargs.get("inputs")
        if isinstance(inputs, list) and hasattr(block_fn, "inputs"):
            kwargs["inputs"] = [v[-demos.HISTORY_TURNS:] if c is chatbot and isinstance(v, list) else v
                                for c, v in zip(block_fn.inputs, inputs)] + inputs[len(block_fn.inputs):]
        return await process(*args, **kwargs)

    app.process_api = process_api


def only_worded_errors(app: gr.Blocks, lang: str = "en") -> None:
    """Every error an event of `app` ends in reaches its caller as a Said: Danlu's own as it is, anything
    else as the generic sentence (demo.failed). Gradio shows a gr.Error's text whatever show_error says,
    and with show_error off it sends no words at all for another exception; its own gr.Errors (a value a
    component refuses) quote Gradio's words and the value, so they are replaced too. The traceback still
    goes to the demo's log (Gradio prints it: the Said names its cause)."""
    process = app.process_api

    async def process_api(*args, **kwargs):
        try:
            return await process(*args, **kwargs)
        except Said:
            raise
        except Exception as e:  # not BaseException: a cancelled event stays cancelled
            raise Said(say(Msg("demo.failed"), lang)) from e

    app.process_api = process_api


def _answer(code: str, status: int, lang: str):
    """A handler for a request Gradio never reads (a body that is not its shape: FastAPI would answer its
    pydantic details, quoting the value; anything else that breaks before an event): the demo's words."""
    def handler(request, exc):
        from starlette.responses import JSONResponse
        return JSONResponse({"error": say(Msg(code), lang)}, status_code=status)
    return handler


UNPARSED = "There was an error parsing the body"  # FastAPI's words for a body that is not JSON it reads


def _http_words(lang: str):
    """Starlette's HTTPException handler, except for two answers said in the demo's words instead: Gradio's
    503 of a full queue ("Queue is full. Max size is 32 and size is 32.") and FastAPI's 400 for a body it
    could not parse (JSON nested 1,000 deep, a number of 5,000 digits). Any other (a wrong login) as it is."""
    from fastapi.exception_handlers import http_exception_handler
    full, unread = _answer("demo.busy", 503, lang), _answer("demo.unreadable", 400, lang)

    async def handler(request, exc):
        if exc.status_code == 503:
            return full(request, exc)
        if exc.status_code == 400 and exc.detail == UNPARSED:
            return unread(request, exc)
        return await http_exception_handler(request, exc)
    return handler


def launch(app: gr.Blocks, host: str, port: int | None, auth: tuple[str, str] | None, lang: str = "en") -> None:
    """Serve `app` in the background, with nothing open that the chat does not need (see the module)."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    only_worded_errors(app, lang)
    app.queue(default_concurrency_limit=4, max_size=QUEUE_LIMIT)
    app.launch(server_name=host, server_port=port, auth=auth, share=False, prevent_thread_lock=True, quiet=True,
               footer_links=[], max_file_size=UPLOAD_LIMIT, show_error=False,
               strict_cors=True, ssr_mode=False, mcp_server=False,
               # FastAPI's own schema pages are not behind the login: switch them off; other sites' pages
               # may not post to the demo (same guard as the GUI)
               app_kwargs=dict(openapi_url=None, docs_url=None, redoc_url=None,
                               middleware=[Middleware(OriginGuard), Middleware(BodyLimit, limit=BODY_LIMIT,
                                                                               words=say(Msg("demo.too_big"), lang))],
                               exception_handlers={RequestValidationError: _answer("demo.unreadable", 422, lang),
                                                   HTTPException: _http_words(lang),
                                                   Exception: _answer("demo.failed", 500, lang)}))


def start_share_link(app: gr.Blocks, on_done) -> threading.Thread:
    """Ask Gradio's tunnel service for a public link in the background: offline it fails at once, but on a
    network that silently drops packets it can take a minute, and the local server must not wait for it."""
    from gradio import networking

    def run():
        try:
            url = networking.setup_tunnel(local_host=app.server_name, local_port=app.server_port,
                                          share_token=app.share_token, share_server_address=None,
                                          share_server_tls_certificate=None)
            on_done(url.replace("http://", "https://", 1), None)
        except Exception as e:
            on_done(None, f"{type(e).__name__}: {e}")
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def serve(ws, engine: ChatEngine, session_id: str, *, label: str, adapter: str | None, host: str, port: int | None,
          auth: tuple[str, str] | None, share: bool, title: str = "", system: str = "", lang: str = "en", out=print,
          sampling: dict | None = None) -> int:
    """Run the demo until SIGTERM / Ctrl-C. Prints where it serves, and what became of the share link.
    `lang`: the page's language (one of webui.i18n.CODES)."""
    lang = lang_code(lang)
    title = title or tr("chat.demo_heading", lang, model=label)
    app = build_demo(engine, session_id, title, system, lang=lang, sampling=sampling)
    launch(app, host, port, auth, lang)
    local = app.local_url
    rec = demos.register(ws, dict(url=local, host=host, port=app.server_port, model=label, adapter=adapter,
                                  login=bool(auth), share=share, share_url=None, share_error=None))
    out(f"[demo] chat demo {rec['id']} for {label} at {local}" + (" (login required)" if auth else "") +
        "; stop it with Ctrl-C or from the GUI", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: stop.set())
    if share:
        result: dict = {}
        done = threading.Event()

        def on_done(url, err):
            result.update(url=url, err=err)
            done.set()
            demos.update(ws, rec["id"], share_url=url, share_error=err)
            if url and late.is_set():
                out(f"[demo] the public link is ready after all: {url}", flush=True)
        late = threading.Event()
        start_share_link(app, on_done)
        t0 = time.time()
        if done.wait(SHARE_WAIT_S) and result.get("url"):
            out(f"[demo] public link: {result['url']} (login required; it expires within a week)", flush=True)
        elif done.is_set():
            out(f"[demo] the public share link could not be created ({result.get('err')}); this machine may be offline. "
                f"Still serving locally at {local}", flush=True)
        else:
            late.set()
            out(f"[demo] no public share link after {time.time() - t0:.0f} s (no internet connection?). "
                f"Still serving locally at {local}; the link is printed here if it arrives later", flush=True)
            demos.update(ws, rec["id"], share_error=f"no answer from the share service within {SHARE_WAIT_S:.0f} s")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        out("[demo] stopping", flush=True)
        demos.unregister(ws, rec["id"])
        try:
            app.close()
        finally:
            engine.close()
    return 0


__all__ = ["build_demo", "serve", "ChatError"]
