"""Reading, checking and writing TrainConfig: values from YAML, the page or `--set` coerced to
each field's type, every problem at once, YAML with a comment per field.

Imported through core.config as before (`from core.config import load_config` works): core.config
holds the settings themselves and hands these names out on first use, so the two files stay small.
Pure Python: imports neither torch nor gradio.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from core.config import FIELDS, GROUPS, TrainConfig
from core.errors import ConfigError, Problem
from core.paths import looks_like_url

def _type_name(t) -> str:
    return {int: "a whole number", float: "a number", bool: "true or false", str: "text",
            dict: "a mapping (key: value)", list: "a list of text lines"}.get(t, str(t))


def _field_type(name: str):
    t = FIELDS[name].type
    return {"str": str, "int": int, "float": float, "bool": bool, "dict": dict, "list": list}[t] \
        if isinstance(t, str) else t


def coerce(name: str, value: Any) -> tuple[Any, Problem | None]:
    """Convert a YAML/GUI value to the field's type, or say in words why it can't be."""
    t = _field_type(name)
    if name == "target_modules" and isinstance(value, (list, tuple)):
        value = ",".join(str(v).strip() for v in value)
    if t is bool:
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.strip().lower() in ("true", "yes", "on", "1"), None
    elif t is int:
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            return value, None
        elif isinstance(value, float) and value.is_integer():
            return int(value), None
        elif isinstance(value, str):
            try:
                return int(value.strip()), None
            except ValueError:
                pass
    elif t is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value), None
        if isinstance(value, str):
            try:
                return float(value.strip()), None
            except ValueError:
                pass
    elif t is str:
        if isinstance(value, str):
            return value, None
        if value is None:
            return "", None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value), None
    elif t is list:  # a list of text lines (probe_prompts); one string is read as one item per line
        if isinstance(value, str):
            return [line.strip() for line in value.splitlines() if line.strip()], None
        if value is None:
            return [], None
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return [v for v in value], None
    elif t is dict:
        if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return dict(value), None
        if value is None:
            return {}, None
    label = FIELDS[name].metadata["label"]
    return None, Problem(name, f"{label} must be {_type_name(t)}, got {value!r}",
                         f"write it like: {name}: {_example(name)}")


def _example(name: str):
    default = FIELDS[name].default
    if default is dataclasses.MISSING:
        return "[first question, second question]" if _field_type(name) is list else "{}"
    if isinstance(default, bool):
        return str(default).lower()
    return default if default != "" else "..."


def from_dict(data: Any, source: str = "the config") -> TrainConfig:
    """Build a TrainConfig from a mapping; raise ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("", f"expected a mapping of settings, got {type(data).__name__}",
                                   "start from `python app.py copy-preset demo my.yaml`")], source)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS.keys(), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see `python app.py copy-preset demo x.yaml` for every setting"
            problems.append(Problem(str(key), "unknown setting", hint))
            continue
        v, p = coerce(key, value)
        if p:
            problems.append(p)
        else:
            values[key] = v
    cfg = TrainConfig(**values)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def validate(cfg: TrainConfig, *, check_files: bool = True, base_dir: Path | None = None) -> list[Problem]:
    """Every problem at once, each naming its field, in words a non-programmer can act on."""
    problems: list[Problem] = []
    for f in fields(cfg):
        meta, value = f.metadata, getattr(cfg, f.name)
        label = meta["label"]
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(Problem(f.name, f"{label} must be a finite number, got {value}"))
            continue
        if meta["choices"] and value not in meta["choices"]:
            problems.append(Problem(f.name, f"{label} must be one of {', '.join(meta['choices'])}; got {value!r}"))
        if meta["min"] is not None and isinstance(value, (int, float)) and value < meta["min"]:
            problems.append(Problem(f.name, f"{label} must be at least {meta['min']}, got {value}",
                                    _bound_hint(f.name, meta["min"])))
        if meta["max"] is not None and isinstance(value, (int, float)) and value > meta["max"]:
            problems.append(Problem(f.name, f"{label} must be at most {meta['max']}, got {value}"))
    if not cfg.base_model.strip():
        problems.append(Problem("base_model", "no base model chosen",
                                "pick a model preset, a hub id like Qwen/Qwen2.5-0.5B-Instruct, or a local folder"))
    if "\x00" in cfg.base_model or "\x00" in cfg.dataset:
        problems.append(Problem("dataset" if "\x00" in cfg.dataset else "base_model",
                                "contains a NUL character", "type the name again"))
    if not cfg.dataset.strip():
        problems.append(Problem("dataset", "no dataset chosen", "upload a file in the Dataset tab or set dataset: path/to/file.jsonl"))
    elif looks_like_url(cfg.dataset):
        problems.append(Problem("dataset", f"{cfg.dataset[:80]!r} is a web address, not a file",
                                "download it first, then point to the downloaded file (Danlu never fetches data URLs)"))
    elif check_files and "\x00" not in cfg.dataset:
        path = resolve_path(cfg.dataset, base_dir)
        if not path.exists():
            problems.append(Problem("dataset", f"file not found: {cfg.dataset}",
                                    "check the path; relative paths count from the config file's folder"))
        elif path.is_dir():
            problems.append(Problem("dataset", f"{cfg.dataset} is a folder, not a file", "point to one data file"))
    if cfg.lora_alpha and cfg.lora_rank and cfg.lora_alpha > 16 * cfg.lora_rank:
        problems.append(Problem("lora_alpha", f"alpha {cfg.lora_alpha} is over 16x the rank {cfg.lora_rank}; updates will be huge",
                                "use about twice the rank"))
    tm = cfg.target_modules.strip()
    if not tm:
        problems.append(Problem("target_modules", "no layers chosen", "use all-linear"))
    elif tm != "all-linear" and not all(part.strip().replace("_", "").replace(".", "").isalnum() for part in tm.split(",")):
        problems.append(Problem("target_modules", f"{tm!r} is not a comma-separated list of layer names",
                                "use all-linear, or e.g. q_proj,v_proj"))
    if len(cfg.probe_prompts) > 10:
        problems.append(Problem("probe_prompts", f"{len(cfg.probe_prompts)} probe prompts; at most 10",
                                "keep a few questions that show what the model should learn"))
    for i, prompt in enumerate(cfg.probe_prompts, 1):
        if not prompt.strip() or len(prompt) > 2000 or "\x00" in prompt:
            problems.append(Problem(f"probe_prompts[{i}]", "must be a non-empty question of at most 2000 characters"))
    for key in cfg.column_map:
        if key not in ("messages", "conversations", "instruction", "input", "output", "prompt", "completion", "text", "system"):
            problems.append(Problem(f"column_map.{key}", "is not a field Danlu expects",
                                    "keys are the expected names (prompt, completion, instruction, input, output, messages, conversations, text, system)"))
    return problems


def _bound_hint(name: str, minimum) -> str:
    if name == "lora_rank":
        return "rank 8-16 suits most uses"
    return f"use {minimum} or more"


def resolve_path(value: str, base_dir: Path | None = None) -> Path:
    p = Path(value).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p.resolve()


def parse_override(item: str) -> tuple[str, Any]:
    """`key=value` from the command line; the value is read as YAML (so 2e-4, true, [a, b] work)."""
    if "=" not in item:
        raise ConfigError([Problem(item, "an override must look like key=value", "e.g. --set lora_rank=32")], "--set")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if FIELDS.get(key) is not None and _field_type(key) is str and not isinstance(value, str):
        value = raw  # "run_name=2024" stays text
    return key, value


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; syntax errors name the line."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([Problem(str(path), "file not found", "check the path")], str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError([Problem(str(path), f"is not UTF-8 text (byte {e.start})", "save it as UTF-8")], str(path))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([Problem(where, f"not valid YAML ({getattr(e, 'problem', None) or e})",
                                   "check indentation and that each line is `key: value`")], str(path))
    return data if data is not None else {}


def load_config(path: str | Path, overrides: list[str] | None = None, *, check_files: bool = True) -> TrainConfig:
    """Read, override, coerce and validate. Relative dataset paths count from the file's folder."""
    path = Path(path)
    data = read_yaml(path)
    if isinstance(data, dict):
        for item in overrides or []:
            k, v = parse_override(item)
            data[k] = v
    cfg = from_dict(data, source=str(path))
    if cfg.dataset and "\x00" not in cfg.dataset and not looks_like_url(cfg.dataset) \
            and not Path(cfg.dataset).expanduser().is_absolute():  # validate() reports NUL and URLs in words
        cfg.dataset = str(resolve_path(cfg.dataset, path.parent))
    problems = validate(cfg, check_files=check_files)
    if problems:
        raise ConfigError(problems, str(path))
    return cfg


def to_yaml(cfg: TrainConfig, header: str = "") -> str:
    """YAML with each setting's label as a comment; reads back to the same TrainConfig."""
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()] if header else []
    for group in GROUPS:
        lines.append("")
        lines.append(f"# --- {group} ---")
        for f in fields(cfg):
            if f.metadata["group"] != group:
                continue
            value = getattr(cfg, f.name)
            dumped = yaml.safe_dump({f.name: value}, allow_unicode=True, default_flow_style=False,
                                    sort_keys=False, width=1000).rstrip()
            lines.append(f"# {f.metadata['label']}")
            lines.append(dumped)
    return "\n".join(lines).lstrip("\n") + "\n"


def save_config(cfg: TrainConfig, path: str | Path, header: str = "") -> Path:
    from core.workspace import atomic_write_text
    path = Path(path)
    atomic_write_text(path, to_yaml(cfg, header))
    return path


def merged(*layers: dict) -> dict:
    """Later layers win; used to stack defaults < recipe preset < template < user file < --set."""
    out: dict = {}
    for layer in layers:
        out.update({k: v for k, v in (layer or {}).items()})
    return out
