"""Run inside a private mount namespace (unshare -rm): a workspace on a small tmpfs, its job table opened
once the disk is read-only and once it is full. Prints a JSON report {case: message code} on stdout."""
import json
import subprocess
import tempfile
from pathlib import Path

from core import jobs as J
from core.errors import DanluError
from core.services import Services

mnt = Path(tempfile.mkdtemp(prefix="danlu-tmpfs-"))
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
services = Services.create(mnt / "ws")
services.store.create(kind="train", name="one", run_dir=str(services.workspace.runs / "r"))
J._IDLE.pop(str(services.workspace.db_path)).close()  # the last connection: SQLite removes the WAL's files
report = {}


def code_of_opening() -> str:
    try:
        Services.create(mnt / "ws")
    except DanluError as e:
        return e.msg.code
    return "opened"


subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
report["read-only"] = code_of_opening()
subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
with open(mnt / "fill", "wb") as f:
    try:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    except OSError:
        pass
report["full"] = code_of_opening()
print(json.dumps(report))
