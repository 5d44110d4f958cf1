"""The sampling an answer starts from for a chosen model: its own recommendation (generation_config.json,
core.gen_settings.model_defaults) found where the model resolves to (core.chat.resolve_target), without
loading or building it; the CLI's chat and the Chat tab's sliders start there.
"""
from __future__ import annotations

from pathlib import Path

from core.chat import resolve_target
from core.errors import DanluError
from core.gen_settings import model_defaults


def default_sampling(ws, model: str | None, adapter: str | None = None, *, origin: str) -> tuple[dict, bool]:
    """The temperature and top_p an answer starts from for `model` (+ `adapter`): the model's recommended
    ones (model_defaults: the adapter's folder first, then the model's; a merged export's
    own folder), else Danlu's. Never loads or builds a model; a name that resolves to nothing gets Danlu's
    (loading it says why). Returns (values, whether they came from the model)."""
    try:
        target = resolve_target(ws, model, adapter, origin=origin, builtin="path")
    except DanluError:
        return model_defaults([])
    return model_defaults([target.adapter, target.model if target.local else _hub_cached(target.model)])


def _hub_cached(repo: str) -> str | None:
    """The folder of a hub model's cached generation_config.json, when it was downloaded (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache  # no torch; only the cache's folders are read
        found = try_to_load_from_cache(repo, "generation_config.json")
    except Exception:  # noqa: BLE001 - an odd id or cache: no recommendation, Danlu's defaults
        return None
    return str(Path(found).parent) if isinstance(found, str) else None
