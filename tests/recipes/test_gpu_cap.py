"""DANLU_GPU_MEMORY_CAP_GIB (a benchmark knob): a rank uses at most that much of its GPU, as a
smaller card would, and the memory plan plans against what is left of it. The GPU half runs on a
GPU machine (`pytest -m gpu tests/recipes`), in a child process: the cap would outlive the test."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.engine.common import gpu_memory_cap_gib

REPO = Path(__file__).resolve().parents[2]


def test_the_knob_is_read_as_gib(monkeypatch):
    monkeypatch.delenv("DANLU_GPU_MEMORY_CAP_GIB", raising=False)
    assert gpu_memory_cap_gib() is None
    monkeypatch.setenv("DANLU_GPU_MEMORY_CAP_GIB", "24")
    assert gpu_memory_cap_gib() == 24.0


CHILD = """
import torch
from core.engine.common import setup_dist
from core.engine.sharded import free_gib
d = setup_dist()
assert free_gib(d) <= 1.0, free_gib(d)
x = torch.empty(512 * 2**20, dtype=torch.uint8, device="cuda")   # half a GiB: inside the cap
try:
    torch.empty(2 * 2**30, dtype=torch.uint8, device="cuda")       # 2 GiB: over it
except torch.OutOfMemoryError:
    print("CAPPED")
"""


@pytest.mark.gpu
def test_a_rank_cannot_use_more_than_the_cap():
    env = dict(os.environ, DANLU_GPU_MEMORY_CAP_GIB="1", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", CHILD], cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "CAPPED" in r.stdout
