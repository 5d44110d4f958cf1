"""Where the GPU memory of a training step goes: torch's allocator history for the first steps.

    DANLU_MEMORY_SNAPSHOT=/tmp/snap.json python app.py train cfg.yaml    # a benchmark knob
    python bench/memory_peak.py /tmp/snap.json                           # what was alive at the peak

Only rank 0 of a CUDA run records (the history slows every allocation, so it stops after STEPS steps
and the file is written then); nothing happens on a CPU or when the knob is unset. The snapshot is
written as JSON, not as torch's pickle: Danlu never unpickles (tests/security/test_loading.py).
"""
from __future__ import annotations

import json

import torch

from core import knobs

STEPS = 2


def start(d) -> bool:
    """Begin recording when asked; True when recording."""
    if not (d.cuda and d.main and knobs.get(knobs.MEMORY_SNAPSHOT)):
        return False
    torch.cuda.memory._record_memory_history(stacks="python", max_entries=500_000)
    return True


def after_step(d, steps_done: int) -> None:
    """Write the snapshot and stop recording after this process's STEPS-th step (a resumed run
    counts from where it resumed)."""
    path = knobs.get(knobs.MEMORY_SNAPSHOT)
    if not (path and d.cuda and d.main) or steps_done != STEPS:
        return
    snapshot = torch.cuda.memory._snapshot()  # plain dicts, lists, numbers and strings
    with open(path, "w") as f:
        json.dump(snapshot, f, default=str)
    torch.cuda.memory._record_memory_history(enabled=None)
