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
from core.messages import Msg
from core.paths import DRIVE_RE, exists, is_dir, looks_like_url, resolve_user_path

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
        raise InputError(problems=[Problem("base_model", Msg("model.url", name=repr(name)), Msg("model.url.hint"))])
    path = Path(name).expanduser()
    if path.is_absolute() or name.startswith((".", "~")) or exists(path):
        return ModelRef("local", str(check_local_model(path)))
    if HUB_ID.match(name) and ".." not in name:
        return ModelRef("hub", name)
    raise InputError(problems=[Problem("base_model", Msg("model.unknown", name=repr(name)), Msg("model.unknown.hint"))])


def base_model_problems(base_model: str, ws) -> list[Problem]:
    """What stops training from loading `base_model`, found before a job starts (the launcher): an
    unknown name, a web address, a folder that is missing (a pasted text too long to be one included)
    or holds no safetensors weights. [] for presets, builtin:... and hub ids (fetched by the job)."""
    if not base_model.strip() or "\x00" in base_model:
        return []  # "no base model chosen" and a NUL are the settings check's to say
    try:
        resolve_model(base_model, ws, builtin="path")  # "path": the supervisor builds the demo model
    except InputError as e:
        return e.problems
    return []


def is_local_model_text(text: str, ws) -> bool:
    """Does this base_model value name a folder (rather than a preset, builtin or hub id)?"""
    from core import demo_model, presets
    t = text.strip()
    if demo_model.is_builtin(t) or presets.model_for(t) is not None:
        return False
    if HUB_ID.match(t) and ".." not in t:
        # owner/name on huggingface.co (loaded with safetensors only and without remote code),
        # unless the workspace has a folder of that name
        return (Path(ws.root) / t).is_dir()
    return True


def check_model_field(text, ws, *, field: str = "model", roots: list[Path] | None = None) -> str:
    """A model typed in the browser (the Chat tab's model box, a base model): names pass unchanged
    (presets, builtin:..., hub ids owner/name, export names, job ids: the loaders look those up
    themselves); anything path-like must be a folder inside the allowed roots (core.paths) and comes
    back absolute; URLs, NUL and UNC paths are refused before any file system access."""
    t = (text or "").strip() if isinstance(text, str) else text
    if not isinstance(t, str) or not t:
        return t or ""
    if "\x00" in t or looks_like_url(t) or t.startswith(("\\\\", "//")):
        resolve_user_path(t, ws, field=field, roots=roots)  # raises on the text alone: never looked up, never fetched
    if not _looks_like_path(t) or not is_local_model_text(t, ws):
        return t
    return str(resolve_user_path(t, ws, field=field, roots=roots, must_exist=True, kind="dir"))


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith((".", "~")) or bool(DRIVE_RE.match(text))


def check_local_model(path: Path) -> Path:
    """A local model folder must exist, hold a config.json and safetensors weights."""
    path = path.resolve()
    problems = []
    if not is_dir(path):  # a name too long to exist too
        problems.append(Problem("base_model", Msg("any.folder_not_found_at", path=str(path)), Msg("any.check_path")))
    else:
        if not (path / "config.json").is_file():
            problems.append(Problem("base_model", Msg("model.no_config", path=str(path)), Msg("model.no_config.hint")))
        has_st = any(path.glob("*.safetensors"))
        pickles = [p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
        if not has_st and pickles:
            problems.append(Problem("base_model", Msg("model.only_pickles", path=str(path), files=", ".join(pickles[:3])),
                                    Msg("model.only_pickles.hint")))
        elif not has_st:
            problems.append(Problem("base_model", Msg("model.no_weights", path=str(path)), Msg("model.no_weights.hint")))
    if problems:
        raise InputError(problems=problems, title=Msg("model.title"))
    return path

