"""Chat-only demos: separate, inference-only web apps (their own processes) that colleagues can use.

    check_exposure(host, share, auth)      # InputError unless a login protects a non-loopback bind or a share link
    demo = start_demo(ws, "JOB_ID", origin=trust.SHELL, host="127.0.0.1", port=None, auth=("ann", "long-pass"), share=False)
    list_demos(ws)     # [{id, pid, url, share_url, share_error, model, adapter, host, port, login, started}]
    stop_demo(ws, demo["id"])
    turns = conversation(history)   # what a demo's caller sent as the conversation so far, as the model may read it

A demo is `python app.py demo MODEL [--adapter DIR] [--host H] [--port P] [--auth USER:PASS] [--share]`
(webui/demo_app.py): it shows a chat box and nothing else; the training console is never exposed.
While it runs it keeps a record in <workspace>/demos/<id>.json; a record whose process is gone (pid
and start time no longer match) is removed on the next listing. The GUI starts a demo with
start_demo, which passes the login in the environment (DANLU_DEMO_AUTH), never on the command line
where other users of the machine could read it with `ps`.

Pure Python (no torch, no gradio).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from core import exposure, knobs, procs, trust
from core.config import as_number, quoted
from core.errors import InputError, NotFound, Problem
from core.messages import Msg, verbatim
from core.workspace import REPO_ROOT, Workspace, atomic_write_text

AUTH_ENV = knobs.DEMO_AUTH
# The conversation a demo's page (or any caller) sends with each message: at most this many characters
# of text and this many turns reach the model; older turns are dropped (conversation). About 32,000
# tokens of English: more than the window of most models a demo serves, whose prompt is cut to the window
# from its oldest end anyway (core.engine.inference.prompt_ids).
HISTORY_CHARS = 128_000
HISTORY_TURNS = 256


def check_exposure(host: str, share: bool, auth) -> None:
    """A demo reachable from other computers, or through a public share link, needs a login."""
    exposure.check_exposure(
        host, share, auth,
        bind=Problem("--host", Msg("demo.host_open", host=host), Msg("demo.host_open.hint")),
        share_link=Problem("--share", Msg("demo.share_public"), Msg("cli.add_auth.hint")),
        title=Msg("demo.no_login_title"))


def conversation(history: list, max_chars: int = HISTORY_CHARS, max_turns: int = HISTORY_TURNS) -> list[dict]:
    """The newest turns of `history` (as Gradio's chat box hands it over: role, content as text blocks) that fit
    `max_chars` characters and `max_turns` turns, as [{role, content: text}], starting at a person's message.
    InputError (demo.bad_turn) for a turn that is not the person's text or the model's: a caller's "system"
    turn would speak over the demo owner's system prompt, and a tool's or a file's means nothing here.
    The newest turns are kept, as a chat's reader expects: the model's prompt loses its oldest tokens first
    anyway, and the worker is never sent (nor tokenizes) more than the limits, whatever a caller sends."""
    turns = [_turn(i, t) for i, t in enumerate(history)]
    kept, size = [], 0
    for turn in reversed(turns):
        size += len(turn["content"])
        if size > max_chars or len(kept) == max_turns:
            break
        kept.append(turn)
    kept.reverse()
    while kept and kept[0]["role"] != "user":  # a cut conversation starts at a person's message (templates
        kept.pop(0)                           # such as Llama 2's and Mistral's refuse one that does not)
    return kept


def _turn(i: int, turn) -> dict:
    role = turn.get("role") if isinstance(turn, dict) else None
    content = turn.get("content") if isinstance(turn, dict) else None
    if isinstance(content, (str, dict)):
        content = [content]
    blocks = content if isinstance(content, list) else [None]
    texts = [b if isinstance(b, str) else b.get("text") if isinstance(b, dict) and b.get("type", "text") == "text" else None
             for b in blocks]
    if role not in ("user", "assistant") or not all(isinstance(t, str) for t in texts):
        raise InputError(problems=[Problem("history", Msg("demo.bad_turn", n=i + 1))])
    return {"role": role, "content": "".join(texts)}


def demos_dir(ws: Workspace) -> Path:
    d = ws.root / "demos"
    d.mkdir(exist_ok=True)
    return d


def register(ws: Workspace, record: dict) -> dict:
    """Called by the demo process once it serves; returns the record with its id."""
    record = dict(record, id=record.get("id") or secrets.token_hex(4), pid=os.getpid(),
                  ctime=procs.create_time(os.getpid()), started=time.time())
    atomic_write_text(demos_dir(ws) / f"{record['id']}.json", json.dumps(record, indent=2))
    return record


def update(ws: Workspace, demo_id: str, **fields) -> None:
    path = demos_dir(ws) / f"{demo_id}.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    rec.update(fields)
    atomic_write_text(path, json.dumps(rec, indent=2))


def unregister(ws: Workspace, demo_id: str) -> None:
    try:
        (demos_dir(ws) / f"{demo_id}.json").unlink()
    except FileNotFoundError:
        pass


def list_demos(ws: Workspace) -> list[dict]:
    """Running demos, newest first; records of demos that are gone are cleaned up."""
    out = []
    for p in demos_dir(ws).glob("*.json"):
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if procs.alive(rec.get("pid"), rec.get("ctime")):
            out.append(rec)
        else:
            p.unlink(missing_ok=True)
    return sorted(out, key=lambda r: r.get("started", 0), reverse=True)


def stop_demo(ws: Workspace, demo_id: str, timeout: float = 15.0) -> dict:
    """SIGTERM (the demo closes its server and its chat worker), then SIGKILL if it does not end."""
    rec = next((r for r in list_demos(ws) if r["id"] == demo_id), None)
    if rec is None:
        raise NotFound(Msg("demo.none", id=repr(demo_id)), Msg("demo.none.hint"))
    try:
        p = psutil.Process(rec["pid"])
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except psutil.TimeoutExpired:
            p.kill()
            p.wait(5)
    except psutil.NoSuchProcess:
        pass
    unregister(ws, demo_id)
    return rec


def demo_command(model: str, adapter: str | None, host: str, port: int | None, share: bool,
                 title: str = "", system: str = "", lang: str = "en") -> list[str]:
    argv = [sys.executable, str(REPO_ROOT / "app.py"), "demo", model, "--host", host, "--lang", lang]
    if adapter:
        argv += ["--adapter", adapter]
    if port:
        argv += ["--port", str(int(port))]
    if share:
        argv.append("--share")
    if title:
        argv += ["--title", title]
    if system:
        argv += ["--system", system]
    return argv


def start_demo(ws: Workspace, model: str, adapter: str | None = None, *, origin: str, host: str = "127.0.0.1",
               port: int | None = None, auth: tuple[str, str] | None = None, share: bool = False,
               title: str = "", system: str = "", lang: str = "en", timeout: float = 300.0) -> dict:
    """Start a demo process (detached: it outlives the GUI until stopped) and wait until it serves.
    origin (core.trust): from the page, model and adapter folders must lie inside the allowed folders."""
    check_exposure(host, share, auth)
    if port is not None:  # from the page, what its box sent (a direct HTTP call: NaN, 1e999, text, 5,000 digits)
        n = as_number(port, int)
        if n is None or not 1024 <= n <= 65535:
            raise InputError(problems=[Problem("port", Msg("demo.port", port=quoted(port)))])
        port = n
    model, adapter = trust.check_chat(model, adapter, ws, origin)
    env = dict(os.environ, PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False")
    env[knobs.HOME] = str(ws.root)
    env.pop(AUTH_ENV, None)
    if auth:
        env[AUTH_ENV] = f"{auth[0]}:{auth[1]}"
    logs = ws.root / "logs"
    logs.mkdir(exist_ok=True)
    log_path = logs / f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(demo_command(model, adapter, host, port, share, title, system, lang), cwd=str(REPO_ROOT),
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    procs.reap_when_done(proc)
    deadline = time.time() + timeout
    while time.time() < deadline:
        rec = next((r for r in list_demos(ws) if r.get("pid") == proc.pid), None)
        if rec is not None:
            return dict(rec, log=str(log_path))
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1500:]
            at = tail.rfind("error: ")
            msg = tail[at + len("error: "):].strip() if at >= 0 else ""
            said = verbatim(msg) if msg else Msg("demo.died", rc=proc.returncode)  # the demo's own words (its log)
            raise InputError(problems=[Problem("demo", said, Msg("demo.see.hint", path=str(log_path)))], title=Msg("demo.title"))
        time.sleep(0.25)
    proc.terminate()
    raise InputError(problems=[Problem("demo", Msg("demo.slow", seconds=f"{timeout:.0f}"), Msg("demo.see.hint", path=str(log_path)))],
                     title=Msg("demo.title"))
