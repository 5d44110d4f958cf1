"""webui.live: one reading of the jobs for every open page, never stale after a write."""
import subprocess
import sys
import time

from core import jobs as J
from webui.live import LiveJobs


def test_a_write_from_another_connection_is_seen_at_once(services):
    live = LiveJobs(services.workspace, services.store)
    assert live.jobs() == []
    other = J.JobStore(services.workspace.db_path)  # as the CLI or a supervisor would write
    a = other.create(kind="train", name="a", run_dir=str(services.workspace.runs / "a"))
    assert [j.id for j in live.jobs()] == [a.id]
    other.transition(a.id, J.CANCELLED)
    assert live.job(a.id).state == J.CANCELLED


def test_unchanged_table_is_not_read_again(services, monkeypatch):
    live = LiveJobs(services.workspace, services.store)
    services.store.create(kind="train", name="a", run_dir=str(services.workspace.runs / "a"))
    live.jobs()
    reads = []
    original = services.store.list
    monkeypatch.setattr(services.store, "list", lambda *a, **k: reads.append(1) or original(*a, **k))
    for _ in range(20):
        live.jobs()
    assert reads == []


def test_a_running_job_whose_supervisor_died_is_settled(services):
    store, ws = services.store, services.workspace
    run_dir = ws.runs / "dead"
    run_dir.mkdir(parents=True)
    job = store.create(kind="train", name="dead", run_dir=str(run_dir))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.transition(job.id, J.STARTING, supervisor_pid=gone.pid, supervisor_ctime=time.time() - 100)
    store.transition(job.id, J.RUNNING)
    live = LiveJobs(ws, store)
    deadline = time.time() + 10
    while live.job(job.id).state in J.ACTIVE and time.time() < deadline:
        time.sleep(0.2)
    assert live.job(job.id).state == J.INTERRUPTED  # no success recorded: never a false success


def test_memo_computes_once_per_key(services):
    live = LiveJobs(services.workspace, services.store)
    calls = []
    for _ in range(5):
        assert live.memo(("k", 1), lambda: calls.append(1) or "v") == "v"
    live.memo(("k", 2), lambda: calls.append(2) or "w")
    assert calls == [1, 2]
