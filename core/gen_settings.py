"""The sampling settings of an answer (chat, evaluation, the merge's smoke test) and their bounds, without
torch: the page's process checks what its sliders sent where it enters (core.chat.sampling), with the
bounds the chat worker checks again.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import Problem
from core.messages import Msg

# each setting's bounds and whether the lowest is allowed itself (top_p: above 0); messages gen.<name>
BOUNDS = {"temperature": (0.0, 5.0, True), "top_p": (0.0, 1.0, False), "max_new_tokens": (1, 32768, True),
          "repetition_penalty": (0.5, 3.0, True)}
HINTS = ("temperature", "top_p", "repetition_penalty")  # the settings with a hint (what is usual)


def problem(name: str, number, shown: str) -> Problem | None:
    """`number` (None: no number at all) against `name`'s bounds; the message quotes `shown`."""
    lo, hi, lo_ok = BOUNDS[name]
    if number is not None and (lo <= number if lo_ok else lo < number) and number <= hi:
        return None
    return Problem(name, Msg(f"gen.{name}", value=shown), Msg(f"gen.{name}.hint") if name in HINTS else None)


@dataclass
class GenSettings:
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 256
    repetition_penalty: float = 1.1
    min_new_tokens: int = 0  # benchmarks only: force a fixed length

    @property
    def greedy(self) -> bool:
        return self.temperature <= 1e-5

    def problems(self) -> list[Problem]:
        from core.config_io import quoted  # a whole number of 5,000 digits is quoted short, not str()'s ValueError
        found = (problem(name, getattr(self, name), quoted(getattr(self, name))) for name in BOUNDS)
        return [p for p in found if p is not None]
