"""What a local model folder's config.json says, read before the model loads: the settings check,
the memory estimate, Chat and Export use it. A leaf module: it imports nothing from core, so any
layer may use it (core.risks, core.engine, the page).

- Weights saved already quantized by bitsandbytes (a "bnb-4bit" checkpoint) load as saved whatever
  the `quantization` setting asks (core.engine.common.load_base_model).
- The context window: positions past it were never trained, and a model with learned position
  embeddings (GPT-2 and its kind) cannot run them at all.
"""
from __future__ import annotations

import json
from pathlib import Path

# config.json keys that name the longest sequence a model was built for, by model family
WINDOW_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def folder_config(base_model: str) -> dict:
    """The config.json of `base_model` when it is a local folder ({} for a hub id, a missing or
    unreadable file). Only absolute paths: callers have resolved and checked the folder already."""
    path = Path(str(base_model or "")).expanduser()
    try:
        if not (path.is_absolute() and (path / "config.json").is_file()):
            return {}
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def bnb_bits(quantization_config) -> str | None:
    """'4bit' or '8bit' for a config.json's bitsandbytes `quantization_config`; None for anything else."""
    if not isinstance(quantization_config, dict) or quantization_config.get("quant_method") != "bitsandbytes":
        return None
    return "4bit" if quantization_config.get("load_in_4bit") else "8bit"


def folder_saved_bits(base_model: str) -> str | None:
    """'4bit' / '8bit' when `base_model` is a local folder whose weights are saved quantized by
    bitsandbytes. None for anything else (a hub id is read once downloaded, by
    core.engine.common.saved_quantization, which returns the whole config)."""
    return bnb_bits(folder_config(base_model).get("quantization_config"))


def context_window(config: dict) -> int | None:
    """The longest sequence (tokens) a model's config says it was built for; None when it names none.
    A multimodal model's language part keeps it under `text_config`."""
    for cfg in (config, config.get("text_config")):
        if not isinstance(cfg, dict):
            continue
        for key in WINDOW_KEYS:
            value = cfg.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None
