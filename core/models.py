"""Where a base model comes from: the built-in demo, a local folder, or a Hugging Face hub id.

`resolve_model("qwen2.5-0.5b-instruct")` -> ModelRef(kind="hub", source="Qwen/Qwen2.5-0.5B-Instruct").
Local folders must hold safetensors weights: Danlu never unpickles `.bin`/`.pt` files, which can
run code when loaded (the LLaMA-Factory CVE-2025-53002 class).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError, Problem

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


@dataclass(frozen=True)
class ModelRef:
    kind: str  # "builtin" | "local" | "hub"
    source: str  # folder path (builtin/local) or hub id

    @property
    def local(self) -> bool:
        return self.kind in ("builtin", "local")


def resolve_model(base_model: str, ws=None, *, builtin: str = "build") -> ModelRef:
    """Turn the `base_model` setting into something loadable, or raise InputError saying why not.
    builtin: what to do with the built-in demo model: "build" it when missing (single processes),
    "require" it built (training ranks, which must never build: core.demo_model), or only name
    its "path" (descriptions)."""
    from core import demo_model, presets

    name = base_model.strip()
    if demo_model.is_builtin(name):
        from core.workspace import Workspace
        ws = ws or Workspace.open()
        if builtin == "build":
            return ModelRef("builtin", str(demo_model.ensure_demo_model(ws, name)))
        if builtin == "require":
            return ModelRef("builtin", str(demo_model.require(name, ws)))
        return ModelRef("builtin", str(demo_model.builtin_path(name, ws)))
    preset = presets.model_for(name)
    if preset is not None and preset.data["base_model"] != name:
        return resolve_model(preset.data["base_model"], ws, builtin=builtin)
    if "://" in name or name.startswith(("http:", "https:", "file:")):
        raise InputError(problems=[Problem("base_model", f"{name!r} is a URL",
                                           "give a hub id like Qwen/Qwen2.5-0.5B-Instruct or a local folder")])
    path = Path(name).expanduser()
    if path.is_absolute() or name.startswith((".", "~")) or path.exists():
        return ModelRef("local", str(check_local_model(path)))
    if HUB_ID.match(name) and ".." not in name:
        return ModelRef("hub", name)
    raise InputError(problems=[Problem("base_model", f"{name!r} is neither a model preset, a hub id nor an existing folder",
                                       "pick a preset, type owner/name from huggingface.co, or a folder path")])


def model_shape(base_model: str, ws, *, origin: str):
    """(Shape, name) of a model from its preset or its local folder's config.json; (None, why) when
    unknown. origin (core.trust): a folder named in the page must lie inside the allowed folders."""
    import json

    from core import presets, trust
    from core.memory import Shape
    p = presets.model_for((base_model or "").strip())
    if p is not None and p.data.get("shape"):
        return Shape.from_dict(p.data["shape"]), p.name
    base_model = trust.check_base_model(base_model, ws, origin)
    path = Path(base_model or "").expanduser()
    if path.is_absolute() and (path / "config.json").is_file():
        try:
            shape = Shape.from_hf_config(json.loads((path / "config.json").read_text()))
        except (OSError, ValueError):
            shape = None
        if shape:
            return shape, path.name
    return None, base_model


def check_local_model(path: Path) -> Path:
    """A local model folder must exist, hold a config.json and safetensors weights."""
    path = path.resolve()
    problems = []
    if not path.is_dir():
        problems.append(Problem("base_model", f"folder not found: {path}", "check the path"))
    else:
        if not (path / "config.json").is_file():
            problems.append(Problem("base_model", f"{path} has no config.json", "point to a Hugging Face model folder"))
        has_st = any(path.glob("*.safetensors"))
        pickles = [p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
        if not has_st and pickles:
            problems.append(Problem("base_model", f"{path} has only pickle weights ({', '.join(pickles[:3])})",
                                    "Danlu loads safetensors only, because pickle files can run code; convert the model to safetensors"))
        elif not has_st:
            problems.append(Problem("base_model", f"{path} has no *.safetensors weights", "point to a folder with model weights"))
    if problems:
        raise InputError(problems=problems, title="The base model cannot be used")
    return path
