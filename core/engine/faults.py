"""Test-only fault injection, shared by the real recipes and the tests' fake recipe (no torch here).

    DANLU_FAULT="name[@step][:rank],..."     e.g. crash@3:1 (rank 1 raises from step 3 on), nan@5,
                                             slow@2 (every step from step 2 on takes a second longer)

A fault fires at its step and at every later step (a hang or a NaN stays), on every rank unless one
is named. The launcher hands DANLU_FAULT to a single attempt only: a resumed job runs without it.
"""
from __future__ import annotations

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
