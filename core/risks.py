"""Settings that are allowed but risky: said before a run starts (the CLI, the page's estimate) and
written at the top of the run's log and config (core.launcher). Each is a Msg with its own code, so
every language says it."""
from __future__ import annotations

from core import presets
from core.config import TrainConfig
from core.messages import Msg
from core.model_folder import context_window, folder_config, folder_saved_bits


def config_warnings(cfg: TrainConfig) -> list[Msg]:
    out = []
    if cfg.trust_remote_code:
        out.append(Msg("config.remote_code", model=cfg.base_model))
    saved = folder_saved_bits(cfg.base_model)
    if saved and saved != cfg.quantization:
        out.append(Msg("config.saved_quantization", model=cfg.base_model, saved=saved, setting=cfg.quantization))
    beyond = beyond_context(cfg.base_model, cfg.max_seq_length)
    return out + ([beyond] if beyond else [])


def model_context_window(base_model: str) -> int | None:
    """The model's context window: its preset's `context_window`, or a local folder's config.json;
    None when neither says (a hub id not in the presets is known only once it has loaded)."""
    preset = presets.model_for((base_model or "").strip())
    if preset is not None and preset.data.get("context_window"):
        return int(preset.data["context_window"])
    return context_window(folder_config(base_model))


def beyond_context(base_model: str, max_seq_length: int) -> Msg | None:
    """A warning when rows may be longer than the model was built for: positions past its window were
    never trained (quality drops), and a model with learned position embeddings cannot run them."""
    window = model_context_window(base_model)
    if window and int(max_seq_length) > window:
        return Msg("config.beyond_context", model=base_model, length=int(max_seq_length), window=window)
    return None
