"""The chat worker: a process that holds chat models and generates, so the GUI process never loads torch.

    python -m core.engine.chat_worker --socket /tmp/danlu-chat-XXXX/sock --parent-pid PID
        (started by core.chat.ChatEngine; the shared secret comes in $DANLU_CHAT_AUTHKEY)

Protocol: multiprocessing.connection over a Unix socket in a private (0700) folder, with an
authkey handshake. Each request is one connection; every message is JSON sent with send_bytes (no
pickle crosses the socket). Requests and replies:

    {"op": "ping"}                              -> {"ok": true, "pid", "device", "sessions"}
    {"op": "load", "model", "adapter", "quantization", "template", "trust_remote_code"}
                                                -> {"ok": true, "session", "info"}
    {"op": "stream", "session", "messages", "system", "settings": {...}}
                                                -> {"delta": "..."} ... then {"done": true, "stats": {...}}
    {"op": "unload", "session"}                 -> {"ok": true, "sessions"}
    {"op": "shutdown"}                          -> {"ok": true}, then the process exits
Errors: {"ok": false, "error": {"message", "hint", "where"}}. When the reader closes the
connection mid-answer (Stop button, closed tab) generation stops at the next token. The worker
exits by itself when the process that started it is gone, and on every way out it can see (that, a
shutdown request, SIGTERM, an error) removes its socket and the private folder holding it: the folder
was left in /tmp when the GUI process was killed (only core.chat's stop() removed it).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import queue
import secrets
import signal
import stat
import sys
import threading
import time
import traceback
from multiprocessing.connection import Listener

import psutil

from core import knobs

_SESSIONS: dict[str, dict] = {}
_LOCK = threading.Lock()


def send(conn, obj) -> None:
    conn.send_bytes(json.dumps(obj, ensure_ascii=False).encode("utf-8"))


def error_reply(exc: BaseException) -> dict:
    from core.errors import DanluError, InputError
    from core.messages import Msg, said
    if isinstance(exc, InputError):
        return dict(ok=False, error=dict(**said(exc.as_msg()), where=""))
    if isinstance(exc, DanluError):
        return dict(ok=False, error=dict(**said(exc.msg, exc.hint_msg), where=exc.where))
    text = f"{type(exc).__name__}: {exc}"
    if "out of memory" in text.lower():
        return dict(ok=False, error=dict(**said(Msg("chat.oom"), Msg("chat.oom.hint")), where=""))
    return dict(ok=False, error=dict(**said(Msg("chat.failed", error=text[:800]), Msg("chat.failed.hint")), where=""))


def op_load(req: dict) -> dict:
    from core.engine.inference import load_for_chat
    model, tok, info = load_for_chat(req["model"], req.get("adapter"), device=req.get("device", "auto"),
                                     quantization=req.get("quantization", "auto"), template=req.get("template", "auto"),
                                     trust_remote_code=bool(req.get("trust_remote_code")), local=req.get("local", True))
    sid = secrets.token_hex(6)
    with _LOCK:
        _SESSIONS[sid] = dict(model=model, tok=tok, info=info, lock=threading.Lock(), label=req.get("label", ""))
    print(f"[chat] loaded session {sid}: {info.to_dict()}", flush=True)
    return dict(ok=True, session=sid, info=info.to_dict())


def op_stream(conn, req: dict) -> None:
    from core.errors import InputError, Problem
    from core.messages import Msg
    from core.engine.inference import GenSettings, prompt_ids, prompt_room, stream_generate
    sess = _SESSIONS.get(req.get("session", ""))
    if sess is None:
        raise InputError(problems=[Problem("session", Msg("chat.session_gone"), Msg("chat.session_gone.hint"))])
    s = GenSettings(**{k: v for k, v in (req.get("settings") or {}).items() if k in GenSettings.__dataclass_fields__})
    if s.problems():
        raise InputError(problems=s.problems(), title=Msg("chat.settings_title"))
    # a conversation longer than the model's window keeps its newest tokens (prompt_ids), as evaluation does;
    # what the turns say is text, never control tokens (the system prompt is the one who loaded the model's)
    ids = prompt_ids(sess["tok"], req.get("messages") or [], req.get("system") or "", as_text=True,
                     max_prompt_tokens=req.get("max_prompt_tokens") or prompt_room(sess["model"], s.max_new_tokens))
    stop = threading.Event()
    # one answer at a time per model: two threads in one model's generate() would interleave on the GPU
    with sess["lock"]:
        gen = stream_generate(sess["model"], sess["tok"], ids, s, stop)
        it = iter(gen)
        try:
            for delta in it:
                send(conn, {"delta": delta})
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            stop.set()
            it.close()
            return
    send(conn, {"done": True, "stats": gen.stats})


def op_unload(req: dict) -> dict:
    with _LOCK:
        sess = _SESSIONS.pop(req.get("session", ""), None)
    if sess is not None:
        with sess["lock"]:
            sess.clear()
        del sess
        free_memory()
    return dict(ok=True, sessions=list(_SESSIONS))


def free_memory() -> dict:
    gc.collect()
    out = dict(rss_mib=round(psutil.Process().memory_info().rss / 2**20, 1))
    if "torch" in sys.modules:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            out["cuda_allocated_mib"] = round(torch.cuda.memory_allocated() / 2**20, 1)
    return out


# Answers are generated in the process's main thread, one at a time, in arrival order. Measured on an
# H200 with an nf4 8B model (bench/gpu_merge_chat.py): the same decode loop ran at 15.8 tokens/s in
# a main thread and 7.1 in a connection thread (decode is bound by Python and kernel launches).
_ANSWERS: "queue.Queue[tuple]" = queue.Queue()


def handle(conn) -> None:
    """A connection's thread: reads the request; answers it here, or queues a stream for the main thread."""
    try:
        req = json.loads(conn.recv_bytes().decode("utf-8"))
    except (EOFError, OSError, ValueError):
        conn.close()
        return
    if req.get("op") == "stream":
        _ANSWERS.put((conn, req))
    else:
        serve(conn, req)


def answer_forever() -> None:
    while True:
        conn, req = _ANSWERS.get()
        serve(conn, req)


def serve(conn, req: dict) -> None:
    try:
        op = req.get("op")
        if op == "ping":
            send(conn, dict(ok=True, pid=os.getpid(), sessions=list(_SESSIONS),
                            device=os.environ.get("CUDA_VISIBLE_DEVICES", "")))
        elif op == "load":
            send(conn, op_load(req))
        elif op == "stream":
            op_stream(conn, req)
        elif op == "unload":
            reply = op_unload(req)
            reply.update(memory=free_memory())
            send(conn, reply)
        elif op == "shutdown":
            send(conn, dict(ok=True))
            conn.close()
            print("[chat] shutting down on request", flush=True)
            leave(0)  # the main thread waits for answers; exiting is also the surest way to free GPU memory
        else:
            from core.messages import Msg, said
            send(conn, dict(ok=False, error=dict(**said(Msg("chat.unknown_request", op=repr(op))), where="")))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass
    except BaseException as e:  # one bad request must not take down the models of everyone else
        traceback.print_exc()
        try:
            send(conn, error_reply(e))
        except OSError:
            pass
    finally:
        conn.close()


def watch_parent(pid: int, ctime: float | None) -> None:
    """Exit when the GUI/CLI process that started us is gone, so no model stays in memory orphaned."""
    while True:
        time.sleep(2.0)
        try:
            p = psutil.Process(pid)
            gone = p.status() == psutil.STATUS_ZOMBIE or (ctime is not None and abs(p.create_time() - ctime) > 0.05)
        except psutil.NoSuchProcess:
            gone = True
        if gone:
            print("[chat] the parent process is gone: exiting", flush=True)
            leave(0)


_SOCKET: list[str] = []  # the socket this worker listens on, once bound (leave() removes it)


def leave(rc: int) -> None:
    """Exit now (os._exit: the main thread may be generating), the socket and its folder removed first."""
    for path in _SOCKET:
        remove_socket(path)
    os._exit(rc)


def remove_socket(path: str) -> None:
    """The socket, then its folder when that is core.chat's private one (danlu-chat-*) and nothing else
    is left in it: rmdir removes only an empty folder, so nothing but the socket is ever deleted."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except OSError:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.basename(folder).startswith("danlu-chat-"):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--parent-pid", type=int, required=True)
    ap.add_argument("--parent-ctime", type=float)
    args = ap.parse_args(argv)
    key = bytes.fromhex(knobs.take(knobs.CHAT_AUTHKEY))
    signal.signal(signal.SIGTERM, lambda *_: leave(128 + signal.SIGTERM))
    threading.Thread(target=watch_parent, args=(args.parent_pid, args.parent_ctime), daemon=True).start()
    try:
        listener = Listener(args.socket, family="AF_UNIX", authkey=key)
        _SOCKET.append(args.socket)
        os.chmod(args.socket, 0o600)
        print(f"[chat] worker {os.getpid()} listening on {args.socket} (CUDA_VISIBLE_DEVICES="
              f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')!r})", flush=True)
        threading.Thread(target=accept_forever, args=(listener,), daemon=True).start()
        answer_forever()
    finally:  # an error, or Ctrl-C in a terminal
        for path in _SOCKET:
            remove_socket(path)


def accept_forever(listener) -> None:
    while True:
        try:
            conn = listener.accept()
        except Exception as e:  # a client that failed the authkey handshake, or a dropped connection
            print(f"[chat] refused a connection: {type(e).__name__}: {e}", flush=True)
            continue
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
