"""The chat worker removes its socket and the private folder holding it on its way out: when the GUI
process was killed, the worker saw its parent gone and exited, leaving /tmp/danlu-chat-XXXX/ behind
(only core.chat's stop() removed it; dozens were left by test runs)."""
from __future__ import annotations

import os
import subprocess
import sys
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
