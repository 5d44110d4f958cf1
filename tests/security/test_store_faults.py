"""A torn SQLite write: the job table survives a writer killed mid-transaction, a torn or garbled
WAL tail, a garbled WAL header or shared-memory file, and a damaged file is reported in words
(reliability.md b.2: job records survive a controller crash).

A "crash image" is a copy of jobs.sqlite and its -wal taken while a writer still holds the
database open: exactly what the disk holds if the machine lost power at that moment.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import jobs as J
from core.errors import DanluError

REPO = Path(__file__).resolve().parents[2]

# A writer in its own process: commits `n` jobs one transaction each (printing each id once it is
# committed), then opens one more transaction, writes into it and waits - never committing it.
WRITER = r"""
import sys, time, sqlite3
from core import jobs as J
db, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
store = J.JobStore(db)
hold = sqlite3.connect(db, isolation_level=None)  # a read snapshot held open: no checkpoint (core.jobs
hold.execute("BEGIN")                             # backfills after each write) copies the commits below into
hold.execute("SELECT count(*) FROM jobs").fetchall()  # the file; they stay in the WAL alone, as a crash finds them
for i in range(n):
    job = store.create(kind="train", name=f"committed-{i}", run_dir=f"/runs/{i}")
    print(job.id, flush=True)
c = sqlite3.connect(db, isolation_level=None)
c.execute("BEGIN IMMEDIATE")
for i in range(200):
    c.execute("INSERT INTO jobs (id, kind, state, run_dir, created_at) VALUES (?, 'train', 'QUEUED', '/x', 0)",
              (f"uncommitted-{i}",))
c.execute("UPDATE jobs SET name = 'clobbered'")
open(ready, "w").write("ready")
time.sleep(600)
"""


def start_writer(db: Path, n: int, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    ready = tmp_path / "ready"
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(n), str(ready)], cwd=REPO,
                         stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    deadline = time.time() + 60
    while not ready.exists():
        assert p.poll() is None, "writer died"
        assert time.time() < deadline, "writer never got ready"
        time.sleep(0.05)
    return p, ready


def kill(p: subprocess.Popen) -> list[str]:
    p.send_signal(signal.SIGKILL)
    out, _ = p.communicate(timeout=30)
    return out.split()


def crash_image(db: Path, dest: Path) -> Path:
    """Copy the database files as they are on disk right now."""
    dest.mkdir()
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(db) + suffix)
        if src.exists():
            shutil.copyfile(src, dest / (db.name + suffix))
    return dest / db.name


def integrity(db: Path) -> str:
    c = sqlite3.connect(db)
    try:
        return c.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        c.close()


def names(db: Path) -> list[str]:
    return sorted(j.name for j in J.JobStore(db).list())


def test_writer_killed_mid_transaction(tmp_path):
    db = tmp_path / "jobs.sqlite"
    J.JobStore(db).create(kind="train", name="before", run_dir="/runs/b")
    p, _ = start_writer(db, 5, tmp_path)
    committed = kill(p)
    assert len(committed) == 5
    store = J.JobStore(db)  # opens at once: the killed writer's lock is gone with its process
    assert names(db) == sorted(["before"] + [f"committed-{i}" for i in range(5)])
    assert not [j for j in store.list() if j.id.startswith("uncommitted")]
    assert integrity(db) == "ok"
    store.create(kind="train", name="after", run_dir="/runs/a")  # and takes new writes
    assert "after" in names(db)


def wal_image(tmp_path, n=3) -> tuple[Path, int]:
    """A crash image whose WAL holds `n` committed transactions (and the killed one's nothing)."""
    db = tmp_path / "live" / "jobs.sqlite"
    db.parent.mkdir()
    J.JobStore(db).create(kind="train", name="checkpointed", run_dir="/runs/c")
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # merged into the main file
    c.close()
    p, _ = start_writer(db, n, tmp_path)
    image = crash_image(db, tmp_path / "image")
    kill(p)
    wal = Path(str(image) + "-wal")
    assert wal.stat().st_size > 32, "the committed jobs should still be in the WAL"
    intact = crash_image(image, tmp_path / "intact")  # the image as it is: every commit, nothing else
    assert names(intact) == sorted(["checkpointed"] + [f"committed-{i}" for i in range(n)])
    page = 4096  # SQLite's default page size (jobs.sqlite never changes it)
    return image, page


def test_wal_with_a_torn_last_frame(tmp_path):
    image, page = wal_image(tmp_path)
    wal = Path(str(image) + "-wal")
    size = wal.stat().st_size
    with open(wal, "r+b") as f:
        f.truncate(size - (page + 24) // 2)  # the last frame (the last commit) is half written
    assert integrity(image) == "ok"
    got = names(image)
    assert "checkpointed" in got and "committed-0" in got and "committed-1" in got
    assert "committed-2" not in got  # the torn transaction is dropped whole, never half applied
    assert "clobbered" not in got


def test_wal_with_garbled_last_frame(tmp_path):
    image, page = wal_image(tmp_path)
    wal = Path(str(image) + "-wal")
    size = wal.stat().st_size
    with open(wal, "r+b") as f:
        f.seek(size - page // 2)
        f.write(os.urandom(256))  # bit rot inside the last frame: its checksum no longer matches
    assert integrity(image) == "ok"
    got = names(image)
    assert {"checkpointed", "committed-0", "committed-1"} <= set(got)
    assert "committed-2" not in got


def test_wal_with_garbled_header_and_shm(tmp_path):
    image, _ = wal_image(tmp_path)
    with open(str(image) + "-wal", "r+b") as f:
        f.write(os.urandom(32))  # the WAL header: SQLite ignores the whole WAL
    Path(str(image) + "-shm").write_bytes(os.urandom(32768))  # the index is rebuilt from the files
    assert integrity(image) == "ok"
    assert "checkpointed" in names(image)  # what reached the main file stays
    J.JobStore(image).create(kind="train", name="new", run_dir="/runs/n")
    assert "new" in names(image)


def test_a_damaged_database_is_reported_in_words(tmp_path):
    from core.services import Services
    home = tmp_path / "home"
    home.mkdir()
    (home / "jobs.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(DanluError) as e:
        Services.create(home)
    text = str(e.value)
    assert "jobs.sqlite" in text and "damaged" in text and "move" in e.value.hint


def test_cli_reports_a_damaged_database(tmp_path):
    from tests.conftest import run_app
    home = tmp_path / "home"
    home.mkdir()
    (home / "jobs.sqlite").write_bytes(b"\x00garbage" * 1000)
    r = run_app("jobs", "list", home=home, timeout=120)
    assert r.returncode == 1 and "damaged" in r.stderr and "Traceback" not in r.stderr


def test_the_idle_connection_blocks_nothing(tmp_path):
    """core.jobs keeps one idle connection per database (a poll's queries are then ~5x cheaper):
    writers and checkpoints from other processes still go through, and the number kept is bounded."""
    db = tmp_path / "jobs.sqlite"
    store = J.JobStore(db)
    assert str(db) in J._IDLE
    for i in range(20):
        store.create(id=f"job-{i}", kind="train", name=f"n{i}", run_dir="/r")
    r = subprocess.run([sys.executable, "-c", (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=5); "
        "c.execute(\"UPDATE jobs SET name = 'other' WHERE id = 'job-0'\"); c.commit(); "
        "print(c.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone())"), str(db)],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("(0,"), r.stdout  # 0 = the checkpoint was not blocked
    assert store.get("job-0").name == "other"
    for i in range(J.IDLE_MAX + 3):
        J.JobStore(tmp_path / f"ws{i}.sqlite")
    assert len(J._IDLE) <= J.IDLE_MAX


def test_a_backup_restored_over_the_table_is_read_not_the_old_files_wal(tmp_path):
    """`mv backup.sqlite jobs.sqlite` under a running GUI: its idle connection kept the old file's WAL at the
    path, SQLite read that WAL into the restored file (the old jobs showed) and a checkpoint wrote it in."""
    db = tmp_path / "ws" / "jobs.sqlite"
    db.parent.mkdir()
    store = J.JobStore(db)
    store.create(id="old-job", kind="train", name="old", run_dir="/r")
    assert Path(f"{db}-wal").stat().st_size > 0  # the old file's last commits, held beside it
    backup = tmp_path / "backup" / "jobs.sqlite"
    backup.parent.mkdir()
    J.JobStore(backup).create(id="restored-job", kind="train", name="restored", run_dir="/r")
    J._IDLE.pop(str(backup)).close()  # the backup is one whole file, as `sqlite3 .backup` makes it
    os.replace(backup, db)
    assert [j.id for j in store.list()] == ["restored-job"]
    assert J._IDLE[str(db)].file == (db.stat().st_dev, db.stat().st_ino)  # kept open again, on the restored file
    store.create(id="new-job", kind="train", name="new", run_dir="/r")
    assert checked_in_another_process(db) == ("ok", ["new-job", "restored-job"])


def test_a_table_copied_over_the_open_one_is_read_as_copied(tmp_path):
    """Found by hand: `cp other.sqlite jobs.sqlite` (the same file, rewritten: no rename to notice) under a
    GUI or supervisor holding the table open showed the old jobs, not the copied ones, in that process and
    in a fresh `jobs list`: SQLite read the old commits still in the WAL beside it over the copied pages
    (a mix of both where they touch other pages), and a later checkpoint would write them in."""
    db = tmp_path / "ws" / "jobs.sqlite"
    db.parent.mkdir()
    store = J.JobStore(db)
    for i in range(3):
        store.create(id=f"old-{i}", kind="train", name="old", run_dir="/r")
    other = tmp_path / "other" / "jobs.sqlite"
    other.parent.mkdir()
    J.JobStore(other).create(id="copied-job", kind="train", name="copied", run_dir="/r")
    J._IDLE.pop(str(other)).close()  # the other table is one whole file at rest
    inode = db.stat().st_ino
    shutil.copyfile(other, db)  # what cp does: the same file truncated and written
    assert db.stat().st_ino == inode and str(db) in J._IDLE
    assert [j.id for j in store.list()] == ["copied-job"]
    store.create(id="new-job", kind="train", name="new", run_dir="/r")
    assert checked_in_another_process(db) == ("ok", ["copied-job", "new-job"])


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs `unshare -rm` and tmpfs mounts (user namespaces)")
def test_a_read_only_or_full_disk_is_said_as_such_not_as_a_damaged_table():
    """Both were 'damaged: move the file aside', which helps with neither (a file cannot be moved on a
    read-only disk)."""
    r = subprocess.run(["unshare", "-rm", sys.executable, str(REPO / "tests" / "security" / "table_disk_child.py")],
                       cwd=str(REPO), env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "mount" in r.stderr and "ermission" in r.stderr:
        pytest.skip("tmpfs mounts are not allowed here")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"read-only": "db.readonly", "full": "db.full"}


def checked_in_another_process(db) -> tuple[str, list[str]]:
    """SQLite's integrity check and the job ids, as a fresh process (a `jobs list`) reads the file."""
    r = subprocess.run([sys.executable, "-c", (
        "import json, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "print(json.dumps([c.execute('PRAGMA integrity_check').fetchone()[0], "
        "sorted(r[0] for r in c.execute('SELECT id FROM jobs'))]))"),
        str(db)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    check, ids = json.loads(r.stdout)
    return check, ids
