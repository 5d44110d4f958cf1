"""Model folders saved already quantized by bitsandbytes (a "bnb-4bit" checkpoint): such weights load
as saved whatever the `quantization` setting asks (core.engine.common.load_base_model), so the
settings check, the memory estimate, Chat and Export read what the folder says. A leaf module: it
imports nothing from core (core.config uses it)."""
from __future__ import annotations

import json
from pathlib import Path


def bnb_bits(quantization_config) -> str | None:
    """'4bit' or '8bit' for a config.json's bitsandbytes `quantization_config`; None for anything else."""
    if not isinstance(quantization_config, dict) or quantization_config.get("quant_method") != "bitsandbytes":
        return None
    return "4bit" if quantization_config.get("load_in_4bit") else "8bit"


def folder_saved_bits(base_model: str) -> str | None:
    """'4bit' / '8bit' when `base_model` is a local folder whose weights are saved quantized by
    bitsandbytes: such a checkpoint loads as saved whatever the `quantization` setting asks
    (core.engine.common.load_base_model). None for anything else (a hub id is read once downloaded,
    by core.engine.common.saved_quantization, which returns the whole config)."""
    path = Path(str(base_model or "")).expanduser()
    try:
        if not (path.is_absolute() and (path / "config.json").is_file()):
            return None
        return bnb_bits(json.loads((path / "config.json").read_text(encoding="utf-8")).get("quantization_config"))
    except (OSError, ValueError, AttributeError):
        return None
