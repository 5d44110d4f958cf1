"""A disk that fills up in the middle of a checkpoint save (reliability.md b.9). The job-level runs
(injected ENOSPC during training, then resume) are in tests/jobs; these show what a real "No space
left on device" inside the save leaves behind: the new checkpoint is invisible, the previous one
still verifies and loads, and the reason is "disk_full"."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.engine import checkpoint as ckpt
from core.engine.common import classify

REPO = Path(__file__).resolve().parents[2]
OPT = {"state": {}, "param_groups": [{"lr": 0.1, "params": []}]}


def test_enospc_in_the_middle_of_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    good = {"lora_A": torch.arange(16.0).reshape(4, 4)}
    ckpt.save(root, 10, good, {"r": 4}, OPT, {"step": 10})
    real_save = ckpt.save_file
    calls = []

    def filling_disk(tensors, path, *a, **k):
        calls.append(Path(path).name)
        if len(calls) == 2:  # the optimizer file: half of it reaches the disk, then the disk is full
            Path(path).write_bytes(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(tensors, path, *a, **k)

    monkeypatch.setattr(ckpt, "save_file", filling_disk)
    with pytest.raises(OSError) as e:
        ckpt.save(root, 20, {"lora_A": torch.zeros(4, 4)}, {"r": 4}, OPT, {"step": 20})
    assert classify(e.value)["reason"] == "disk_full"
    assert [p.name for p in ckpt.list_checkpoints(root)] == ["step-0000010"]  # the torn one has no name yet
    newest = ckpt.newest_valid(root, log=lambda m: None)
    adapter, _, state = ckpt.load(newest)
    assert state["step"] == 10 and torch.equal(adapter["lora_A"], good["lora_A"])
    ckpt.prune(root, 2)
    assert not list(root.glob(".*.partial"))  # the half-written folder is cleaned up


def can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "-rm", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d"],
                       capture_output=True, timeout=30)
    return r.returncode == 0


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs `unshare -rm` and tmpfs mounts (user namespaces)")
def test_a_really_full_disk_during_a_save(tmp_path):
    """A 3 MB tmpfs in a private mount namespace: the second save really runs out of space."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run(["unshare", "-rm", sys.executable, str(REPO / "tests" / "security" / "disk_full_child.py")],
                       cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert "No space left on device" in report["raised"] and report["reason"] == "disk_full", report
    assert report["listed"] == ["step-0000010"] and report["newest"] == "step-0000010", report
    assert report["loaded_step"] == 10 and report["loaded_ok"], report
    assert report["partials_after_prune"] == [], report
