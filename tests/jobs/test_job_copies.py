"""The job table survives its own loss: every row is copied into its run folder (runs/<run>/jobs/<id>.json)
and a workspace whose jobs.sqlite is gone, empty or moved aside gets its job list back from them."""
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core import job_copies
from core import jobs as J
from core import launcher, procs, supervise
from core.errors import InputError
from core.messages import Msg
from core.rundir import RunDir, read_json, write_json
from core.workspace import Workspace
from tests.conftest import run_app
from tests.jobs.util import FAKE, demo_config, job_in, wait_for


def lose_table(db: Path, how: str) -> None:
    """What a person or a crash leaves: no table file, a zero-byte one, or the file moved aside."""
    idle = J._IDLE.pop(str(db), None)
    if idle is not None:
        idle.close()
    for extra in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        extra.unlink(missing_ok=True)
    if how == "deleted":
        db.unlink()
    elif how == "zero bytes":
        db.write_bytes(b"")
    else:
        db.rename(db.with_name(db.name + ".broken"))


def rows(store) -> list[dict]:
    return [j.to_dict() for j in store.list()]


def test_every_change_of_a_row_is_copied_into_its_run_folder(tmp_path):
    ws = Workspace.open(tmp_path / "home")
    store = J.JobStore(ws.db_path)
    job = job_in(store, ws.run_dir("a"), J.STARTING, J.RUNNING)
    copy = RunDir(job.run_dir).job_copy(job.id)
    assert json.loads(copy.read_text())["state"] == J.RUNNING
    store.update(job.id, worker_pids=json.dumps([[123, 4.5]]))
    assert json.loads(copy.read_text())["worker_pids"] == "[[123, 4.5]]"
    store.transition(job.id, J.FAILED, reason="oom", message=Msg("end.cancelled"))
    saved = json.loads(copy.read_text())
    assert saved["state"] == J.FAILED and saved["reason"] == "oom" and json.loads(saved["message_msg"])["code"] == "end.cancelled"


@pytest.mark.parametrize("how", ["deleted", "zero bytes", "moved aside"])
def test_a_lost_job_table_is_rebuilt_from_the_run_folders(tmp_path, how):
    ws = Workspace.open(tmp_path / "home")
    store = J.JobStore(ws.db_path)
    done = job_in(store, ws.run_dir("done"), J.STARTING, J.RUNNING, J.SUCCEEDED)
    stopped = job_in(store, ws.run_dir("stopped"), J.STARTING, J.RUNNING)
    store.transition(stopped.id, J.CANCELLED, reason="cancelled", message=Msg("end.cancelled"))
    resumed = store.create(kind="train", name="x", run_dir=stopped.run_dir, parent_id=stopped.id,
                           argv=[sys.executable, "-m", "core.recipes.train", "--resume"])
    store.transition(resumed.id, J.STARTING)
    store.transition(resumed.id, J.RUNNING)
    store.transition(resumed.id, J.FAILED, reason="oom", message=Msg("end.cancelled"), exit_code=1)
    before = rows(store)
    waiting = job_in(store, ws.run_dir("waiting"))
    assert len(list(ws.runs.glob("*/jobs/*.json"))) == 4  # the resumed run's folder holds both of its jobs

    lose_table(ws.db_path, how)
    rebuilt = J.JobStore(ws.db_path)
    after = rows(rebuilt)
    assert [r for r in after if r["id"] != waiting.id] == before  # every field, ids, states, reasons, words
    assert {done.id, stopped.id, resumed.id} == {r["id"] for r in before}
    # a job still waiting when the table was lost is not started behind the person's back
    back = rebuilt.get(waiting.id)
    assert back.state == J.CANCELLED and back.reason == "cancelled" and "rebuilt" in back.message
    assert json.loads(back.message_msg)["code"] == "job.rebuilt_queued"
    assert launcher.schedule(ws) == []


def test_a_queued_job_cancelled_by_the_rebuild_says_what_to_do(tmp_path):
    """Every other reason a job ends with comes with a hint; this one had none, so the Train tab and
    `jobs show` said what happened and not how to get the job going again."""
    from core import progress
    from webui.jobview import failure_text
    home = tmp_path / "home"
    ws = Workspace.open(home)
    waiting = job_in(J.JobStore(ws.db_path), ws.run_dir("waiting"))
    lose_table(ws.db_path, "deleted")
    back = J.JobStore(ws.db_path).get(waiting.id)
    assert json.loads(back.hint_msg) == {"code": "job.rebuilt_queued.hint", "params": {"id": waiting.id}}
    assert f"Resume (jobs resume {waiting.id})" in back.hint  # the Train tab's button for a cancelled job
    st = progress.status(back)
    assert st["hint"] == back.hint
    page = failure_text(st, "zh-CN")  # the Train tab's words for the job, in the page's language
    assert f"继续”（jobs resume {waiting.id}）" in page
    r = run_app("jobs", "show", waiting.id, home=home)
    assert r.returncode == 0, r.stderr
    assert f"what to do: {back.hint}" in r.stdout


@pytest.mark.parametrize("how", ["deleted", "zero bytes"])
def test_a_store_that_outlives_its_table_sees_the_rebuilt_one(tmp_path, how):
    """The GUI server keeps one JobStore for its life: the table lost under it (found in a browser walk:
    every poll then raised 'no such table: jobs' and the page showed no job)."""
    ws = Workspace.open(tmp_path / "home")
    store = J.JobStore(ws.db_path)
    job = job_in(store, ws.run_dir("r"), J.STARTING, J.RUNNING, J.SUCCEEDED)
    lose_table(ws.db_path, how)
    assert [j.id for j in store.list(kind="train")] == [job.id]
    assert store.get(job.id).state == J.SUCCEEDED


HOLD_OPEN = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA schema_version').fetchone(); "
             "print('open', flush=True); sys.stdin.readline(); c.close()")


def test_a_table_emptied_under_a_process_that_holds_it_open_is_rebuilt(tmp_path):
    """Found probing by hand: ': > jobs.sqlite' under a running GUI (or supervisor), which keeps one idle
    connection: every other connection waited 30 s and failed with 'database is locked', the GUI said
    'No job yet', the CLI called the table damaged, and the last holder to exit left 16 KiB that are
    not a database. Nothing here closes the other process's connection or deletes -wal and -shm."""
    ws = Workspace.open(tmp_path / "home")
    store = J.JobStore(ws.db_path)
    job = job_in(store, ws.run_dir("r"), J.STARTING, J.RUNNING, J.SUCCEEDED)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, str(ws.db_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        ws.db_path.write_bytes(b"")
        t = time.monotonic()
        assert [(j.id, j.state) for j in store.list()] == [(job.id, J.SUCCEEDED)]  # this process's idle one too
        assert time.monotonic() - t < 20
        later = job_in(store, ws.run_dir("later"), J.STARTING)  # and it takes writes
        assert {j.id for j in J.JobStore(ws.db_path).list()} == {job.id, later.id}
    finally:
        holder.communicate("\n", timeout=60)  # it closes its connection: SQLite's last close checkpoints
    assert {j.id for j in J.JobStore(ws.db_path).list()} == {job.id, later.id}  # the holder's exit spoils nothing


def test_a_lock_file_that_cannot_be_opened_leaves_the_table_to_sqlite(tmp_path):
    """A folder named jobs.sqlite.lock (or a read-only workspace) raised IsADirectoryError (PermissionError)
    from every connection, a traceback where SQLite would have made the table or said why not."""
    ws = Workspace.open(tmp_path / "home")
    (ws.root / "jobs.sqlite.lock").mkdir()
    store = J.JobStore(ws.db_path)
    job = job_in(store, ws.run_dir("r"), J.STARTING)
    assert [j.id for j in store.list()] == [job.id]


def test_a_forgotten_job_does_not_come_back(tmp_path):
    ws = Workspace.open(tmp_path / "home")
    store = J.JobStore(ws.db_path)
    first = job_in(store, ws.run_dir("r"), J.STARTING, J.RUNNING, J.CANCELLED)
    second = store.create(kind="train", name="x", run_dir=first.run_dir, parent_id=first.id)
    launcher.delete(ws, first.id)  # the run folder stays: the second job uses it
    assert Path(first.run_dir).is_dir()
    lose_table(ws.db_path, "deleted")
    assert [j.id for j in J.JobStore(ws.db_path).list()] == [second.id]


def a_good_job_and_a_folder_for_bad_copies(tmp_path):
    """(workspace, a finished job, its copy's row, a run folder with an empty jobs/ for copies to try)."""
    ws = Workspace.open(tmp_path / "home")
    good = job_in(J.JobStore(ws.db_path), ws.run_dir("good"), J.STARTING, J.RUNNING, J.SUCCEEDED)
    row = json.loads(RunDir(good.run_dir).job_copy(good.id).read_text())
    folder = ws.run_dir("bad")
    (folder / "jobs").mkdir(parents=True)
    return ws, good, row, folder


def test_copies_danlu_did_not_write_are_skipped(tmp_path):
    ws, good, row, folder = a_good_job_and_a_folder_for_bad_copies(tmp_path)
    hostile = {
        "torn": None, "list": [row], "state": {**row, "id": "state", "state": "PWNED"},
        "other-id": row, "argv-list": {**row, "id": "argv-list", "argv": ["sh", "-c", "id"]},
        "nproc-text": {**row, "id": "nproc-text", "nproc": "1"}, "nproc-bool": {**row, "id": "nproc-bool", "nproc": True},
        "elsewhere": {**row, "id": "elsewhere", "run_dir": "/etc"}, "no-kind": {k: v for k, v in row.items() if k != "kind"} | {"id": "no-kind"},
    }
    for name, data in hostile.items():
        (folder / "jobs" / f"{name}.json").write_text('{"id": "torn", ' if data is None else json.dumps(data))
    (folder / "jobs" / "huge.json").write_bytes(b"[" * 100_000)
    lose_table(ws.db_path, "zero bytes")
    assert [j.id for j in J.JobStore(ws.db_path).list()] == [good.id]


def test_a_copy_naming_an_executor_danlu_does_not_have_is_skipped(tmp_path):
    """Found by hand: a copy of a running job naming the executor "Local" was restored, and every
    `jobs list` (and reconcile) then stopped with "unexpected ValueError: no executor called 'Local'"."""
    ws, good, row, folder = a_good_job_and_a_folder_for_bad_copies(tmp_path)
    odd = {**row, "id": "odd-executor", "state": J.RUNNING, "run_dir": str(folder), "executor": "Local"}
    (folder / "jobs" / "odd-executor.json").write_text(json.dumps(odd))
    lose_table(ws.db_path, "deleted")
    r = run_app("jobs", "list", home=ws.root)
    assert r.returncode == 0 and good.id in r.stdout and "odd-executor" not in r.stdout, r.stdout + r.stderr
    from core.executors import EXECUTORS
    assert set(J.EXECUTOR_NAMES) == set(EXECUTORS)  # every executor's copies are restored


def test_a_copy_that_is_a_link_a_pipe_or_a_device_is_not_read(tmp_path):
    """Found probing by hand: a FIFO named like a copy hung the rebuild for ever, inside the write
    transaction every other Danlu process waits for; a link to a copy outside the workspace was read and
    restored as a job (a link to /dev/zero would have filled the memory: not tried here for that reason)."""
    ws, good, row, folder = a_good_job_and_a_folder_for_bad_copies(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "linked.json").write_text(json.dumps({**row, "id": "linked", "run_dir": str(folder)}))
    (folder / "jobs" / "linked.json").symlink_to(outside / "linked.json")
    (folder / "jobs" / "folder.json").mkdir()
    big = {**row, "id": "big", "run_dir": str(folder), "message": "x" * (job_copies.COPY_MAX_BYTES + 1)}
    (folder / "jobs" / "big.json").write_text(json.dumps(big))
    os.mkfifo(folder / "jobs" / "pipe.json")
    lose_table(ws.db_path, "deleted")
    seen = []
    reader = threading.Thread(target=lambda: seen.append([j.id for j in J.JobStore(ws.db_path).list()]), daemon=True)
    reader.start()
    reader.join(60)
    if reader.is_alive():  # let the stuck open() go before failing
        os.close(os.open(folder / "jobs" / "pipe.json", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the rebuild hung on a pipe named like a copy")
    assert seen == [[good.id]]


def test_a_table_from_before_the_copies_gets_them_when_opened(tmp_path):
    """Found probing by hand: a workspace made before the copies (rows, no runs/*/jobs/) that lost its
    table afterwards listed no job at all ("no jobs yet"), its runs still on disk."""
    ws = Workspace.open(tmp_path / "home")
    store = J.JobStore(ws.db_path)
    done = job_in(store, ws.run_dir("done"), J.STARTING, J.RUNNING, J.SUCCEEDED)
    failed = job_in(store, ws.run_dir("failed"), J.STARTING, J.RUNNING, J.FAILED)
    for folder in ws.runs.glob("*/jobs"):  # what an older Danlu left
        for copy in folder.iterdir():
            copy.unlink()
        folder.rmdir()
    with store._conn() as c:
        c.execute("PRAGMA user_version = 0")
    J.JobStore(ws.db_path)  # the first process of the new Danlu that opens the workspace
    assert sorted(p.stem for p in ws.runs.glob("*/jobs/*.json")) == sorted([done.id, failed.id])
    lose_table(ws.db_path, "deleted")
    assert {(j.id, j.state) for j in J.JobStore(ws.db_path).list()} == {(done.id, J.SUCCEEDED), (failed.id, J.FAILED)}


def test_a_copy_restores_only_a_command_danlu_makes(tmp_path):
    """Found probing by hand: `jobs resume` runs a job's argv, and a copy's argv ["sh", "-c", ...] (a run
    folder brought in from elsewhere, or edited) was restored as is."""
    ws = Workspace.open(tmp_path / "home")
    store = J.JobStore(ws.db_path)
    good = job_in(store, ws.run_dir("r"), J.STARTING, J.RUNNING, J.CANCELLED)
    ranks = str(RunDir(good.run_dir).ranks)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--max-restarts", "0",
                "--log-dir", ranks, "--standalone", "-m", "core.recipes.train", "--config", "c.yaml"]
    commands = {
        "direct": ([sys.executable, "-m", "core.recipes.train", "--config", "c.yaml"], True),
        "other-python": (["/tmp/evil/python", "-m", "core.recipes.train"], True),  # this Python runs it
        "torchrun": (torchrun, True),
        "shell": (["/bin/sh", "-c", "touch /tmp/pwned"], False),
        "not-ours": ([sys.executable, "-m", "http.server"], False),
        "no-python": (torchrun[:3] + ["--no-python", "/tmp/evil", "-m", "core.recipes.train"], False),
        "log-elsewhere": ([a if a != ranks else "/etc/cron.d" for a in torchrun], False),
        "path-module": ([sys.executable, "-m", "../../tmp/evil"], False),
    }
    row = json.loads(RunDir(good.run_dir).job_copy(good.id).read_text())
    for name, (argv, _) in commands.items():
        RunDir(good.run_dir).job_copy(name).write_text(json.dumps({**row, "id": name, "argv": json.dumps(argv)}))
    lose_table(ws.db_path, "deleted")
    rebuilt = J.JobStore(ws.db_path)
    for name, (argv, ours) in commands.items():
        assert rebuilt.get(name).argv_list == ([sys.executable, *argv[1:]] if ours else []), name


def test_a_job_whose_command_was_not_restored_does_not_resume(tmp_path):
    """It had started a job of argv ["--resume"] that failed with "No such file or directory: '--resume'"."""
    ws = Workspace.open(tmp_path / "home")
    store = J.JobStore(ws.db_path)
    job = job_in(store, ws.run_dir("r"), J.STARTING, J.RUNNING, J.CANCELLED)
    store.update(job.id, argv="[]")  # what the rebuild restores for a command Danlu does not make
    with pytest.raises(InputError) as e:
        launcher.resume(ws, job.id)
    assert [p.msg.code for p in e.value.problems] == ["job.no_command"]
    assert [j.id for j in store.list()] == [job.id]


def test_a_copy_names_only_processes_of_its_own_job(tmp_path):
    """Found probing by hand: a copy of a running job naming another process (its pid and start time, read
    from /proc) made `jobs cancel` SIGKILL that process once the table was rebuilt from it."""
    ws = Workspace.open(tmp_path / "home")
    job = job_in(J.JobStore(ws.db_path), ws.run_dir("r"), J.STARTING, J.RUNNING)
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    victim = subprocess.Popen(sleep)
    ours = subprocess.Popen(sleep, env={**os.environ, procs.MARKER: job.id})
    try:
        pids = [[p.pid, procs.create_time(p.pid)] for p in (victim, ours)]
        copy = RunDir(job.run_dir).job_copy(job.id)
        row = json.loads(copy.read_text())
        copy.write_text(json.dumps({**row, "worker_pids": json.dumps(pids), "supervisor_pid": victim.pid,
                                    "supervisor_ctime": pids[0][1], "agent_pid": ours.pid, "agent_ctime": pids[1][1]}))
        lose_table(ws.db_path, "deleted")
        back = J.JobStore(ws.db_path).get(job.id)
        assert back.worker_list == [tuple(pids[1])]
        assert not procs.alive(back.supervisor_pid, back.supervisor_ctime) and procs.alive(back.agent_pid, back.agent_ctime)
        assert [p.pid for p in procs.job_processes(back.id, back.worker_list)] == [ours.pid]  # what a cancel kills
    finally:
        for p in (victim, ours):
            p.kill()
            p.wait()


@pytest.mark.parametrize("states", [(J.STARTING,), (J.STARTING, J.RUNNING), (J.STARTING, J.CANCELLING)])
def test_a_restored_unfinished_job_that_names_no_supervisor_ends_like_other_dead_jobs(tmp_path, states):
    """Found by hand: a copy left RUNNING (or STARTING) with no supervisor, and no process of the job,
    was restored and then read as a job being handed over (no owner recorded yet) at every start:
    "Running" forever. The hand-over it would wait for was in the lost table."""
    ws = Workspace.open(tmp_path / "home")
    job = job_in(J.JobStore(ws.db_path), ws.run_dir("r"), *states)
    assert job.supervisor_pid is None
    lose_table(ws.db_path, "deleted")
    launcher.reconcile(ws)
    back = J.JobStore(ws.db_path).get(job.id)
    assert (back.state, back.reason) == ((J.CANCELLED, "cancelled") if J.CANCELLING in states else (J.INTERRUPTED, "interrupted"))


def test_a_moved_workspace_points_its_rebuilt_jobs_at_their_new_folders(tmp_path):
    ws = Workspace.open(tmp_path / "old")
    job = job_in(J.JobStore(ws.db_path), ws.run_dir("r"), J.STARTING, J.RUNNING, J.SUCCEEDED)
    lose_table(ws.db_path, "deleted")
    os.rename(ws.root, tmp_path / "new")
    moved = Workspace.open(tmp_path / "new")
    back = J.JobStore(moved.db_path).get(job.id)
    assert back.run_dir == str(moved.run_dir("r")) and back.config_path == str(moved.run_dir("r") / "config.yaml")


@pytest.mark.slow  # real supervisors with the fast fake recipe
def test_after_losing_jobs_sqlite_the_cli_lists_shows_and_resumes_the_jobs(home, services):
    ws = services.workspace
    done = launcher.submit_train(ws, demo_config(max_steps=2), launcher.LaunchSpec(), module=FAKE, origin="shell")
    assert launcher.wait(ws, done.id, timeout=90).state == J.SUCCEEDED
    stopped = launcher.submit_train(ws, demo_config(max_steps=400, logging_steps=1, save_steps=2),
                                    launcher.LaunchSpec(env={"DANLU_FAKE_STEP_S": "0.1"}), module=FAKE, origin="shell")
    wait_for(lambda: RunDir(stopped.run_dir).has_checkpoint(), 90, what="a checkpoint")
    assert run_app("jobs", "cancel", stopped.id, home=home).returncode == 0
    before = json.loads(run_app("jobs", "list", "--json", home=home).stdout)

    lose_table(ws.db_path, "deleted")
    r = run_app("jobs", "list", "--json", home=home)
    assert r.returncode == 0, r.stderr
    after = json.loads(r.stdout)
    assert [(x["id"], x["state"], x["reason"], x["message"]) for x in after] == \
           [(x["id"], x["state"], x["reason"], x["message"]) for x in before]
    assert {x["state"] for x in after} == {"succeeded", "cancelled"}
    r = run_app("jobs", "resume", stopped.id, home=home)  # the rebuilt row is a job like any other
    assert r.returncode == 0, r.stderr
    new_id = r.stdout.strip().splitlines()[-1]
    assert services.store.get(new_id).parent_id == stopped.id
    assert run_app("jobs", "cancel", new_id, home=home).returncode == 0


def test_a_job_table_that_cannot_be_written_at_the_end_leaves_the_true_end_in_exit_json(services, monkeypatch):
    """Found probing by hand: jobs.sqlite emptied (': > jobs.sqlite') under a running job left every
    connection 'database is locked'. The supervisor's last write failed, it took that for a bug of its own
    and overwrote exit.json with 'Danlu's job supervisor failed: <traceback>', so a training that had
    finished (150/150, adapter written) was listed as Failed once the table was moved aside and rebuilt."""
    ws = services.workspace
    job = job_in(services.store, ws.run_dir("r"), J.STARTING, J.RUNNING)
    run = RunDir(job.run_dir)
    write_json(run.result, {"status": "succeeded"})
    sup = supervise.Supervisor(ws, job.id)

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(sup.store, "transition", locked)
    monkeypatch.setattr(sup, "_run", lambda: sup.finish(0))
    sup.run()
    assert read_json(run.exit)["state"] == J.SUCCEEDED and not run.error.exists()
    lose_table(ws.db_path, "deleted")  # what the person does: moves the damaged table aside
    launcher.reconcile(ws)
    back = J.JobStore(ws.db_path).get(job.id)
    assert (back.state, back.message) == (J.SUCCEEDED, "Finished.")
