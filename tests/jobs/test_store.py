"""The job table: transitions, terminal states, and races between processes."""
import multiprocessing as mp
import random
import sqlite3

import pytest

from core import jobs as J


@pytest.fixture
def store(tmp_path):
    return J.JobStore(tmp_path / "jobs.sqlite")


def new(store, state=J.QUEUED, **kw):
    job = store.create(kind="train", run_dir="/nowhere", **kw)
    path = {J.QUEUED: [], J.STARTING: [J.STARTING], J.RUNNING: [J.STARTING, J.RUNNING],
            J.CANCELLING: [J.STARTING, J.RUNNING, J.CANCELLING]}
    for s in path.get(state, [J.STARTING, J.RUNNING, state]):
        assert store.transition(job.id, s)
    return store.get(job.id)


def test_database_is_in_wal_mode(store):
    c = sqlite3.connect(store.db_path)
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_job_row_records_what_the_issue_asks_for(store):
    job = store.create(kind="train", run_dir="/r", config_path="/r/config.yaml", gpus=[0, 1], argv=["a"])
    d = job.to_dict()
    for key in ("state", "config_path", "run_dir", "gpus", "supervisor_pid", "supervisor_ctime", "agent_pid",
                "agent_ctime", "worker_pids", "created_at", "started_at", "ended_at", "exit_code", "reason"):
        assert key in d, key
    assert d["state"] == "queued" and d["gpus"] == [0, 1] and d["worker_pids"] == []


def test_the_normal_life_of_a_job(store):
    job = store.create(kind="train", run_dir="/r")
    assert store.transition(job.id, J.STARTING)
    assert store.transition(job.id, J.RUNNING)
    assert store.get(job.id).started_at is not None
    assert store.transition(job.id, J.SUCCEEDED, exit_code=0)
    job = store.get(job.id)
    assert job.state == J.SUCCEEDED and job.ended_at is not None and job.exit_code == 0


def test_moves_that_skip_a_step_are_refused(store):
    job = store.create(kind="train", run_dir="/r")
    assert not store.transition(job.id, J.RUNNING)      # QUEUED cannot run without STARTING
    assert not store.transition(job.id, J.INTERRUPTED)  # nothing ran, nothing was interrupted
    assert not store.transition(job.id, J.SUCCEEDED)
    assert not store.transition(job.id, J.QUEUED)
    assert store.get(job.id).state == J.QUEUED
    with pytest.raises(ValueError):
        store.transition(job.id, "DONE")
    with pytest.raises(ValueError):
        store.update(job.id, state=J.FAILED)


@pytest.mark.parametrize("terminal", sorted(J.TERMINAL))
def test_nothing_leaves_a_terminal_state(store, terminal):
    """Property: from every terminal state, every attempted move (with any fields) is refused."""
    rng = random.Random(terminal)
    job = new(store, terminal, )
    before = store.get(job.id)
    for _ in range(200):
        to = rng.choice(J.STATES)
        assert not store.transition(job.id, to, reason=f"attempt {to}", exit_code=rng.randint(-9, 9))
    after = store.get(job.id)
    assert after == before


def test_random_walks_never_leave_a_terminal_state(store):
    """Property: over many random sequences of moves, once terminal the row never changes again."""
    rng = random.Random(7)
    for _ in range(60):
        job = store.create(kind="train", run_dir="/r")
        frozen = None
        for _ in range(12):
            moved = store.transition(job.id, rng.choice(J.STATES), reason="x")
            cur = store.get(job.id)
            if frozen is not None:
                assert not moved and cur == frozen
            elif cur.state in J.TERMINAL:
                frozen = cur
        # every allowed source is a non-terminal state
    assert all(not (set(src) & J.TERMINAL) for src in J.ALLOWED_FROM.values())


def _race(db, job_id, to, barrier, out):
    store = J.JobStore(db)
    barrier.wait()
    out.put((to, store.transition(job_id, to, reason=to.lower())))


@pytest.mark.parametrize("state", [J.RUNNING, J.CANCELLING])
def test_cancel_racing_a_natural_exit_ends_in_exactly_one_terminal_state(store, state):
    """Several processes (supervisor: SUCCEEDED/FAILED, canceller: CANCELLED, reconcile: INTERRUPTED)
    move the same job at the same instant: exactly one wins and the row shows the winner."""
    ctx = mp.get_context("fork")
    for round_ in range(8):
        job = new(store, state)
        targets = [J.SUCCEEDED, J.CANCELLED, J.FAILED, J.INTERRUPTED]
        barrier, out = ctx.Barrier(len(targets)), ctx.Queue()
        ps = [ctx.Process(target=_race, args=(store.db_path, job.id, t, barrier, out)) for t in targets]
        for p in ps:
            p.start()
        results = [out.get(timeout=60) for _ in ps]
        for p in ps:
            p.join(timeout=60)
        winners = [t for t, moved in results if moved]
        assert len(winners) == 1, results
        final = store.get(job.id)
        assert final.state == winners[0] and final.reason == winners[0].lower()


def test_find_by_unique_prefix(store):
    a = store.create(kind="train", run_dir="/r", id="20260101-000000-aaaa")
    store.create(kind="train", run_dir="/r", id="20260101-000000-aabb")
    assert store.find("20260101-000000-aaaa").id == a.id
    assert store.find("20260101-000000-aaa").id == a.id
    assert store.find("20260101-000000-aa") is None  # ambiguous
    assert store.find("nope") is None


def test_an_old_database_gains_the_new_columns(tmp_path):
    db = tmp_path / "jobs.sqlite"
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', "
              "state TEXT NOT NULL, run_dir TEXT NOT NULL, created_at REAL NOT NULL)")
    c.execute("INSERT INTO jobs (id, kind, state, run_dir, created_at) VALUES ('x', 'train', 'SUCCEEDED', '/r', 1)")
    c.commit()
    c.close()
    store = J.JobStore(db)
    job = store.get("x")
    assert job.state == J.SUCCEEDED and job.worker_pids == "[]" and job.reason == ""


def test_a_clashing_generated_id_is_drawn_again_but_a_chosen_one_is_refused(store, monkeypatch):
    first = store.create(kind="train", run_dir="/r")
    drawn = iter([first.id, first.id, "20261127-000000-abcdef"])
    monkeypatch.setattr(J, "new_id", lambda: next(drawn))
    second = store.create(kind="train", run_dir="/r")  # the same second, the same suffix twice: drawn again
    assert second.id == "20261127-000000-abcdef" and store.get(first.id) is not None
    with pytest.raises(sqlite3.IntegrityError):
        store.create(id=first.id, kind="train", run_dir="/r")
