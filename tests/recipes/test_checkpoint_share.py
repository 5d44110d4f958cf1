"""A job on two machines resumes: machine 0 holds the checkpoint, machine 1 a run folder of its own
(core.engine.train_state.agreed_checkpoint). Two gloo processes, no model: seconds."""
import json
import os
import subprocess
import sys

import torch

from core.engine import checkpoint as ckpt
from core.rundir import RunDir
from tests.conftest import REPO, free_port


def resume_on_both(run_dirs) -> list[dict]:
    """Each rank's report (tests/recipes/checkpoint_share_child.py): machine R's single process."""
    port = free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "tests.recipes.checkpoint_share_child", str(run_dir)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, RANK=str(rank), GROUP_RANK=str(rank), LOCAL_RANK="0", WORLD_SIZE="2",
                                       MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), CUDA_VISIBLE_DEVICES=""))
             for rank, run_dir in enumerate(run_dirs)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def machine_0(tmp_path):
    run = RunDir(tmp_path / "machine-0")
    opt = {"state": {0: {"step": torch.tensor(2.0), "exp_avg": torch.ones(4)}}, "param_groups": [{"lr": 0.1, "params": [0]}]}
    for step in (2, 4):
        ckpt.save(run.checkpoints, step, {"lora_A": torch.full((4,), float(step))}, {"r": 8}, opt, {"step": step})
    run.reference.write_text('{"train": [[-1.0, -2.0]], "val": []}')  # dpo's
    return run


def test_machine_1_gets_machine_0s_newest_checkpoint_and_reference(tmp_path):
    run0, run1 = machine_0(tmp_path), RunDir(tmp_path / "machine-1")
    run1.path.mkdir()
    assert resume_on_both([run0.path, run1.path]) == [dict(path=str(run0.checkpoints / "step-0000004"), checked=False),
                                                        dict(path=str(run1.checkpoints / "step-0000004"), checked=True)]
    got = run1.checkpoints / "step-0000004"
    assert ckpt.verify(got) is None and ckpt.files_of(got) == ckpt.files_of(run0.checkpoints / "step-0000004")
    assert run1.reference.read_bytes() == run0.reference.read_bytes()
    assert [p.name for p in ckpt.list_checkpoints(run1.checkpoints)] == ["step-0000004"]  # only what the resume needs


def test_machines_sharing_one_folder_send_and_check_nothing(tmp_path):
    """A Slurm job's machines share the run folder: machine 1 re-hashed every file of the checkpoint (the
    optimizer state too) on the shared storage at each resume, for nothing (found re-reading the change)."""
    run0 = machine_0(tmp_path)
    newest = str(run0.checkpoints / "step-0000004")
    assert resume_on_both([run0.path, run0.path]) == [dict(path=newest, checked=False), dict(path=newest, checked=False)]


def test_a_machine_that_cannot_keep_it_stops_every_rank_with_the_same_words(tmp_path):
    run0, run1 = machine_0(tmp_path), RunDir(tmp_path / "machine-1")
    run1.path.mkdir()
    run1.checkpoints.write_text("not a folder")  # as a full or read-only disk would: the copy cannot be written
    reports = resume_on_both([run0.path, run1.path])
    assert reports[0] == reports[1] and reports[0]["code"] == "train.checkpoint_not_everywhere", reports
    assert reports[0]["message"] == ("Machine 0 resumes from its checkpoint step-0000004, but it could not be sent to "
                                     "machine 1 (that machine's log says why), so no machine resumed: they would have "
                                     "trained on from different steps.")
    assert reports[0]["hint"].startswith("Copy checkpoints/step-0000004 from machine 0's run folder")
