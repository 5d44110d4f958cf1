"""Where the GPU memory of a training step goes: torch's allocator history for the first steps.

    DANLU_MEMORY_SNAPSHOT=/tmp/snap.pickle python app.py train cfg.yaml    # a benchmark knob
    python bench/memory_peak.py /tmp/snap.pickle                          # what was alive at the peak

Only rank 0 of a CUDA run records (the history slows every allocation, so it stops after STEPS steps
and the file is written then); nothing happens on a CPU or when the knob is unset.
"""
from __future__ import annotations

import torch

from core import knobs

STEPS = 2


def start(d) -> bool:
    """Begin recording when asked; True when recording."""
    if not (d.cuda and d.main and knobs.get(knobs.MEMORY_SNAPSHOT)):
        return False
    torch.cuda.memory._record_memory_history(stacks="python", max_entries=500_000)
    return True


def after_step(d, step: int) -> None:
    """Write the snapshot and stop recording after the STEPS-th step of the run."""
    path = knobs.get(knobs.MEMORY_SNAPSHOT)
    if not (path and d.cuda and d.main) or step != STEPS:
        return
    torch.cuda.memory._dump_snapshot(path)
    torch.cuda.memory._record_memory_history(enabled=None)
