"""Symbolic links planted in the workspace (exports/, runs/): listing, sizing and acting on its folders
never follow one out of it, nor into another of its folders."""
from __future__ import annotations

import os

from core.export import list_exports


def test_exports_listing_neither_follows_nor_sizes_links(ws, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "big.bin").write_bytes(b"x" * 100_000)
    (ws.exports / "linked").symlink_to(elsewhere)  # a link to / was walked whole: the listing never came back
    real = ws.exports / "real"
    real.mkdir()
    (real / "model.safetensors").write_bytes(b"y" * 10)
    (real / "file-link").symlink_to(elsewhere / "big.bin")
    (real / "folder-link").symlink_to(elsewhere)
    rows = list_exports(ws)
    assert [(r["name"], r["size_bytes"]) for r in rows] == [("real", 10)]
    assert (elsewhere / "big.bin").stat().st_size == 100_000 and os.path.islink(ws.exports / "linked")


def test_chat_does_not_load_an_export_through_a_link(ws, tmp_path):
    from core.chat import _export_dir
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (ws.exports / "bot").symlink_to(model)
    assert _export_dir(ws, "bot") is None


def _ended_job(store, run_dir):
    from core import jobs as J
    job = store.create(kind="train", name="x", run_dir=str(run_dir), argv=["python"], gpus=["cpu"], nproc=1)
    assert store.transition(job.id, J.STARTING) and store.transition(job.id, J.FAILED)
    return store.get(job.id)


def test_a_linked_run_folder_is_neither_deleted_resumed_nor_written_through(ws, tmp_path):
    import pytest

    from core import jobs as J
    from core import launcher
    from core.errors import JobError
    store = J.JobStore(ws.db_path)
    other = ws.runs / "other"
    other.mkdir()
    (other / "stdout.log").write_text("the other run's log\n")
    (ws.runs / "into-other").symlink_to(other)  # deleting this job deleted the other run's folder
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws.runs / "out").symlink_to(outside)  # its job copy was written outside the workspace
    into, out = _ended_job(store, ws.runs / "into-other"), _ended_job(store, ws.runs / "out")
    assert not (outside / "jobs").exists() and not (other / "jobs").exists()
    for job in (into, out):
        for act in (launcher.delete, launcher.resume):
            with pytest.raises(JobError) as e:
                act(ws, job.id)
            assert "symbolic link" in str(e.value) and f"rm {job.run_dir}" in e.value.hint
    assert (other / "stdout.log").is_file() and {j.id for j in store.list()} == {into.id, out.id}


def test_copies_are_not_written_or_read_through_a_linked_jobs_folder(ws, tmp_path):
    from core import jobs as J
    elsewhere = tmp_path / "elsewhere-jobs"
    elsewhere.mkdir()
    (elsewhere / "20990101-000000-abcdef.json").write_text("{}")
    run = ws.runs / "r"
    run.mkdir()
    (run / "jobs").symlink_to(elsewhere)
    store = J.JobStore(ws.db_path)
    job = _ended_job(store, run)
    assert [p.name for p in elsewhere.iterdir()] == ["20990101-000000-abcdef.json"]
    launcher_delete_keeps = elsewhere / f"{job.id}.json"
    launcher_delete_keeps.write_text("{}")  # a file of that name out there is not the job's copy to remove
    store.delete(job.id)
    assert launcher_delete_keeps.is_file()
    s = ws.runs / "s"
    s.mkdir()
    keep = _ended_job(store, s)
    (s / "jobs").rename(tmp_path / "moved-jobs")
    (s / "jobs").symlink_to(tmp_path / "moved-jobs")  # the job's own copy, now behind a link
    ws.db_path.unlink()
    assert (s / "jobs" / f"{keep.id}.json").is_file()
    assert J.JobStore(ws.db_path).list() == []  # the rebuild reads no copy through the link
