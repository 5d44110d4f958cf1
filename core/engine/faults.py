"""Test-only fault injection, shared by the real recipes and the tests' fake recipe (no torch here).

    DANLU_FAULT="name[@step][:rank],..."     e.g. crash@3:1 (rank 1 raises from step 3 on), nan@5,
                                             slow@2 (every step from step 2 on takes a second longer)

A fault fires at its step and at every later step (a hang or a NaN stays), on every rank unless one
is named. The launcher hands DANLU_FAULT to a single attempt only: a resumed job runs without it.
"""
from __future__ import annotations

import sys
import time

from core import knobs


def fault(name: str, step: int | None = None, rank: int | None = None) -> bool:
    spec = knobs.get(knobs.FAULT, "")
    for item in filter(None, (s.strip() for s in spec.split(","))):
        fname, _, rest = item.partition("@")
        fstep, _, frank = rest.partition(":")
        if fname != name:
            continue
        if fstep and step is not None and step < int(fstep):
            continue
        if frank and rank is not None and int(frank) != rank:
            continue
        return True
    return False


def step_hook(r, when: str) -> None:
    """The one place test faults enter a training run (core.engine.state.Run), called by the loop
    around each step, never from inside it. "before" step N: nan@N makes the trainable weights NaN,
    so step N's loss is NaN as a real divergence's would be; "after": crash, hang, spam, slow."""
    step, rank = r.step, r.d.rank
    if when == "before":
        if fault("nan", step + 1):
            for p in r.trainable:
                p.data.fill_(float("nan"))
        return
    if fault("crash", step, rank):
        raise RuntimeError(f"injected crash at step {step} on rank {rank}")
    if fault("hang", step, rank):
        time.sleep(10_000)
    if fault("spam", step, rank):
        spam(int(knobs.get(knobs.SPAM_MB, "50")))
    if fault("slow", step, rank):
        time.sleep(1.0)  # a step that takes a second longer (time-limit tests); a signal still stops the run


def spam(megabytes: int) -> None:
    """Write lots of output (the supervisor must drain it to a file without stalling)."""
    line = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(line)
    sys.stdout.flush()
