"""Rows longer than the model's context window: said before the run for presets and local folders
(core.risks, tested in tests/webui/test_memory_plan_page.py), and by the recipe once a hub model
outside the presets has loaded, since only then is its config known."""
from types import SimpleNamespace

import torch

from core.engine.common import Dist
from core.recipes import train

CPU = Dist(0, 1, 0, torch.device("cpu"), None)


def said(capsys, base_model: str, seq: int, config: dict) -> str:
    train.warn_beyond_window(CPU, SimpleNamespace(base_model=base_model, max_seq_length=seq), config)
    return capsys.readouterr().out


def test_a_hub_model_outside_the_presets_is_warned_about_once_loaded(capsys):
    out = said(capsys, "someone/long-model", 8192, dict(max_position_embeddings=4096))
    assert "WARNING" in out and "context window of someone/long-model (4096 tokens)" in out
    assert said(capsys, "someone/long-model", 4096, dict(max_position_embeddings=4096)) == ""
    assert said(capsys, "someone/multimodal", 9000, dict(text_config=dict(max_position_embeddings=8192))) != ""
    assert said(capsys, "someone/no-window", 10**6, dict(hidden_size=8)) == ""


def test_a_model_the_launcher_knew_is_not_warned_about_twice(capsys):
    # the demo model's preset says 4096: the launcher wrote the warning into the log already
    assert said(capsys, "builtin:danlu-tiny", 8192, dict(max_position_embeddings=4096)) == ""
