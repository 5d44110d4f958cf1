"""The chat worker removes its socket and the private folder holding it on its way out: when the GUI
process was killed, the worker saw its parent gone and exited, leaving /tmp/danlu-chat-XXXX/ behind
(only core.chat's stop() removed it; dozens were left by test runs)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO

# a GUI process in short: starts a chat worker (no model: none is loaded before a chat), says where, waits
PARENT = """import sys
from core.chat import _Worker
from core.workspace import Workspace
w = _Worker(Workspace.open(sys.argv[1]), "cpu")
w.wait_ready(120)
print(w.proc.pid, w.dir, flush=True)
sys.stdin.read()
"""


def ended(p: psutil.Process, timeout: float) -> bool:
    """Exited: gone, or a zombie its living parent has not reaped (psutil's wait() waits for that too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", ["parent killed", "worker terminated"])
def test_the_worker_removes_its_socket_folder_on_its_way_out(home, how):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(home)], cwd=str(REPO), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    worker = None
    try:
        pid, folder = parent.stdout.readline().split()
        worker, folder = psutil.Process(int(pid)), Path(folder)
        assert folder.name.startswith("danlu-chat-") and [p.name for p in folder.iterdir()] == ["sock"]
        if how == "parent killed":
            parent.kill()  # SIGKILL: the parent removes nothing
            parent.wait()
        else:
            worker.terminate()
        assert ended(worker, 120)  # it notices its parent gone within seconds
        assert not folder.exists()
    finally:
        parent.kill()
        parent.wait()
        if worker is not None and worker.is_running():
            worker.kill()


def test_only_a_private_folder_holding_nothing_else_is_removed(tmp_path):
    from core.engine.chat_worker import remove_socket
    import socket
    for name, extra in (("danlu-chat-a", None), ("danlu-chat-b", "notes.txt"), ("elsewhere", None)):
        folder = tmp_path / name
        folder.mkdir()
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(folder / "sock"))
        s.close()
        if extra:
            (folder / extra).write_text("not ours")
        remove_socket(str(folder / "sock"))
        assert not (folder / "sock").exists()
        assert folder.exists() == (name != "danlu-chat-a")
    plain = tmp_path / "danlu-chat-c"
    plain.mkdir()
    (plain / "sock").write_text("a file, not a socket")
    remove_socket(str(plain / "sock"))
    assert (plain / "sock").exists()


def test_a_worker_that_dies_before_serving_leaves_no_folder(home, monkeypatch):
    from core import chat
    from core.workspace import Workspace
    monkeypatch.setattr(chat, "WORKER_MODULE", "core.engine.no_such_worker")  # python -m fails at once
    w = chat._Worker(Workspace.open(home), "cpu")
    with pytest.raises(chat.ChatError):
        w.wait_ready(120)
    assert not w.dir.exists()


def test_a_conversation_longer_than_the_models_context_keeps_its_newest_tokens(monkeypatch):
    """A message of a million characters, sent to the demo's API past its box's 8,000-character limit,
    went whole into generate(): the tiny model answered it for over ten minutes while every other chat of
    that model waited (one answer at a time per model). The prompt is cut to the context window, less
    the answer's tokens, as evaluation and probes already cut theirs."""
    from types import SimpleNamespace

    from core.engine import chat_worker, inference

    class Tok:  # one token per character
        def apply_chat_template(self, msgs, tokenize=False, add_generation_prompt=True):
            return "".join(m["content"] for m in msgs)

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [ord(c) for c in text]}

    seen = {}

    class Generation:  # answers nothing: only the prompt it was given matters here
        stats: dict = {}

        def __iter__(self):
            return iter(())

    def fake_generate(model, tok, ids, s, stop):
        seen["ids"] = ids
        return Generation()

    monkeypatch.setattr(inference, "stream_generate", fake_generate)
    model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=4096))
    monkeypatch.setitem(chat_worker._SESSIONS, "s", dict(model=model, tok=Tok(), lock=threading.Lock()))
    monkeypatch.setattr(chat_worker, "send", lambda conn, obj: None)
    text = "a" * 1_000_000 + "the question"
    chat_worker.op_stream(None, dict(session="s", messages=[{"role": "user", "content": text}],
                                     settings=dict(max_new_tokens=96)))
    assert len(seen["ids"]) == 4096 - 96 and "".join(map(chr, seen["ids"])).endswith("the question")
    assert inference.prompt_room(SimpleNamespace(config=SimpleNamespace()), 96) is None
