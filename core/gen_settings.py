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


# what a model's own generation_config.json may set as an answer's defaults: the ranges the Chat tab's
# sliders offer (webui/tabs/chat_tab.py); a value outside them is not a recommendation Danlu can follow
MODEL_RANGES = {"temperature": (0.0, 2.0), "top_p": (0.05, 1.0)}


def model_defaults(folders) -> tuple[dict, bool]:
    """The default temperature and top_p of an answer: those the first of `folders` holding a
    generation_config.json recommends (do_sample false: greedy, temperature 0), each missing or out of
    range one Danlu's (GenSettings). Plain JSON, no torch: the page asks this when a model is picked.
    Returns (values, whether any value came from the model)."""
    import json
    import math
    from pathlib import Path
    values = {"temperature": GenSettings.temperature, "top_p": GenSettings.top_p}
    for folder in folders:
        path = Path(folder) / "generation_config.json" if folder else None
        if path is None or not path.is_file():
            continue
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # a broken file recommends nothing
            return values, False
        cfg = cfg if isinstance(cfg, dict) else {}
        found = {}
        for name, (lo, hi) in MODEL_RANGES.items():
            v = cfg.get(name)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi:
                found[name] = float(v)
        if cfg.get("do_sample") is False:  # transformers' greedy: the temperature it sets is not used
            found["temperature"] = 0.0
        return {**values, **found}, bool(found)
    return values, False
