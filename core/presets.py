"""Presets as data: models, recipes and starter templates (XTuner's list-cfg / copy-cfg).

    presets/models/<name>.yaml     a base model: hub id, shape, licence (its name; what a person should
                                   know about it, e.g. "gated on the hub", in license_note), memory needed
    presets/recipes/<name>.yaml    hyperparameters (a subset of TrainConfig)
    presets/templates/<name>.yaml  model + recipe + dataset format + a small sample dataset

`compose(name)` turns any preset into a complete TrainConfig mapping; the layers stack as
defaults < recipe < model < template settings. Names are unique across the three kinds.

A preset carries its own translations: `translations: {zh-CN: {description: ..., ...}, ja: ...}`,
one entry per language of the page for each of its TRANSLATED texts (the page shows them;
tests/webui/test_i18n.py checks every language is there).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.config import TrainConfig, from_dict, save_config, to_dict
from core.errors import InputError, NotFound, Problem
from core.messages import Msg
from core.workspace import PRESETS_DIR
from core.yaml_text import KeyTwice, key_twice_problem, load_yaml_text

KINDS = {"model": "models", "recipe": "recipes", "template": "templates"}
REQUIRED = {
    "model": ("name", "description", "base_model", "family", "params_billion", "license", "context_window",
              "shape", "vram_qlora_gib", "vram_basis"),
    "recipe": ("name", "description", "settings"),
    "template": ("name", "description", "use_case", "model", "recipe", "dataset_format", "dataset",
                 "time_needed", "memory_needed"),
}


# the texts of a preset that the page shows, by kind: each has a translation per language
TRANSLATED = {"model": ("description", "vram_basis", "license_note"), "recipe": ("description",),
              "template": ("use_case", "description", "time_needed", "memory_needed")}


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str
    path: Path
    data: dict

    @property
    def description(self) -> str:
        return self.data.get("description", "")

    def summary(self) -> dict:
        return {"name": self.name, "kind": self.kind, "description": self.description}


# parsed files by path, kept while the file's size and time stay the same: the GUI reads presets on
# every template click and settings change, and parsing all of them took ~70 ms each time
_parsed: dict[Path, tuple[tuple[int, int], dict]] = {}


def _load_file(path: Path, kind: str) -> Preset:
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _parsed.get(path)
    if cached is None or cached[0] != stamp:
        data, problem = read_preset(path, str(path))
        if problem is not None:  # a preset file someone edited: which file, which line, not PyYAML's words
            raise InputError(problems=[problem], title=Msg("error.source", source=str(path)))
        cached = _parsed[path] = (stamp, data or {})
    data = copy.deepcopy(cached[1])  # callers may change what they get; the cache stays as read
    return Preset(name=data.get("name", path.stem), kind=kind, path=path, data=data)


def read_preset(path: Path, where: str) -> tuple[object, Problem | None]:
    """A preset file's YAML, read as a person's YAML is (core.yaml_text): a key written twice is a problem
    naming the file and the line (yaml.safe_load kept the last value silently), as in a config file."""
    try:
        return load_yaml_text(path.read_text(encoding="utf-8")), None
    except KeyTwice as e:
        return None, key_twice_problem(e, where)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        return None, Problem(f"{where}:{mark.line + 1}" if mark else where, Msg("presets.bad_yaml", error=str(e)))


def all_presets(root: Path = PRESETS_DIR) -> list[Preset]:
    out = []
    for kind, sub in KINDS.items():
        for path in sorted((root / sub).glob("*.yaml")):
            out.append(_load_file(path, kind))
    return out


def list_presets(kind: str | None = None, root: Path = PRESETS_DIR) -> list[dict]:
    return [p.summary() for p in all_presets(root) if kind is None or p.kind == kind]


def get(name: str, kind: str | None = None, root: Path = PRESETS_DIR) -> Preset:
    matches = [p for p in all_presets(root) if p.name == name and (kind is None or p.kind == kind)]
    if not matches:
        names = ", ".join(p.name for p in all_presets(root) if kind is None or p.kind == kind)
        raise NotFound(Msg("presets.none", kind=Msg("presets.kind." + kind) if kind else Msg("presets.preset"), name=repr(name)),
                       Msg("presets.choose.hint", names=names))
    return matches[0]


def model_for(base_model: str, root: Path = PRESETS_DIR) -> Preset | None:
    """The model preset whose name or hub id is `base_model`, if any."""
    for p in all_presets(root):
        if p.kind == "model" and base_model in (p.name, p.data.get("base_model")):
            return p
    return None


def compose(name: str, root: Path = PRESETS_DIR) -> dict:
    """A complete config mapping for any preset. Recipes and models borrow the demo's missing parts."""
    preset = get(name, root=root)
    if preset.kind == "template":
        template = preset
    else:
        template = get("demo", "template", root)
    if preset.kind == "recipe":
        recipe = preset
    else:  # a model alone gets the everyday recipe, not the demo's CPU settings
        recipe = get("balanced" if preset.kind == "model" else template.data["recipe"], "recipe", root)
    model = get(template.data["model"], "model", root) if preset.kind != "model" else preset
    layers = [to_dict(TrainConfig()), recipe.data.get("settings") or {}, model.data.get("settings") or {},
              {"base_model": model.data["base_model"]}]
    layers.append({"dataset": str((template.path.parent / template.data["dataset"]).resolve()),
                   "dataset_format": template.data["dataset_format"]})
    if preset.kind == "template":
        layers.append(template.data.get("settings") or {})
    out: dict = {}
    for layer in layers:
        out.update(layer)
    return out


def copy_preset(name: str, dest: str | Path, root: Path = PRESETS_DIR) -> Path:
    """Write a complete, valid config YAML for preset `name` (xtuner copy-cfg)."""
    preset = get(name, root=root)
    cfg = from_dict(compose(name, root), source=Msg("presets.source", name=name))
    note = {"template": "", "recipe": "\nThe dataset is the demo's: point `dataset` at your own file.",
            "model": "\nThe dataset is the demo's: point `dataset` at your own file."}[preset.kind]
    header = (f"Danlu training config, from the {preset.kind} preset '{name}'.{note}\n"
              f"Run it:  python app.py train {Path(dest).name}   (add --nproc N for N GPUs)")
    return save_config(cfg, dest, header=header)


def validate_preset_file(path: Path, kind: str, root: Path = PRESETS_DIR) -> list[Problem]:
    """Every problem with one preset file (used by the preset tests)."""
    where = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    data, problem = read_preset(path, where)
    if problem is not None:
        return [problem]
    if not isinstance(data, dict):
        return [Problem(where, Msg("presets.not_mapping"))]
    problems = [Problem(where, Msg("presets.missing_key", key=repr(k))) for k in REQUIRED[kind] if k not in data]
    if data.get("name") != path.stem:
        problems.append(Problem(where, Msg("presets.name", name=repr(data.get("name")), stem=repr(path.stem))))
    settings = data.get("settings") or {}
    try:
        from_dict(settings, source=where)
    except InputError as e:
        problems += e.problems
    window = data.get("context_window", 1)
    if kind == "model" and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        problems.append(Problem(f"{where} context_window", Msg("presets.context_window", value=repr(window))))
    if kind == "template":
        for ref, k in (("model", "model"), ("recipe", "recipe")):
            try:
                get(data.get(ref, ""), k, root)
            except NotFound as e:
                problems.append(Problem(f"{where} {ref}", e.as_msg()))
        ds = path.parent / str(data.get("dataset", ""))
        if not ds.is_file():
            problems.append(Problem(f"{where} dataset", Msg("presets.no_sample", name=repr(data.get("dataset")))))
    return problems + translation_problems(where, kind, data.get("translations", {}))


def translation_problems(where: str, kind: str, translations) -> list[Problem]:
    """`translations:` maps each language to texts of this preset, each one of TRANSLATED[kind], none empty."""
    keys = TRANSLATED[kind]
    if not isinstance(translations, dict) or not all(isinstance(t, dict) for t in translations.values()):
        return [Problem(f"{where} translations", Msg("presets.translations", keys=", ".join(keys)))]
    problems = []
    for lang, texts in translations.items():
        for key, text in texts.items():
            if key not in keys:
                problems.append(Problem(f"{where} translations", Msg("presets.translation_key", key=key, lang=lang)))
            elif not isinstance(text, str) or not text.strip():
                problems.append(Problem(f"{where} translations", Msg("presets.translation_empty", key=key, lang=lang)))
    return problems
