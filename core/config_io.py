"""Reading, checking and writing TrainConfig: values from YAML, the page or `--set` coerced to
each field's type, every problem at once, YAML with a comment per field.

Imported through core.config as before (`from core.config import load_config` works): core.config
holds the settings themselves and hands these names out on first use, so the two files stay small.
Pure Python: imports neither torch nor gradio.
"""
from __future__ import annotations

import dataclasses
import decimal
import difflib
import math
import numbers
import re
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from core.config import FIELDS, GROUPS, TrainConfig
from core.errors import ConfigError, InputError, Problem
from core.messages import Msg, label
from core.paths import exists, is_dir, looks_like_url, read_at_most
from core.yaml_text import MAX_VALUES, KeyTwice, TooBig, TooDeep, load_yaml_text  # noqa: F401  (load_yaml_text: core.config hands it out)

def _type_name(t) -> Msg:
    return Msg("type." + t.__name__)


def _field_type(name: str):
    t = FIELDS[name].type
    return {"str": str, "int": int, "float": float, "bool": bool, "dict": dict, "list": list}[t] \
        if isinstance(t, str) else t


# A number written out in digits, as Python reads one: text too large to hold that looks like this is a
# number out of its setting's bounds (5,000 digits, 1e999); "inf", "abc" and, for a whole number, "1.5" are not.
_D = r"[0-9](?:_?[0-9])*"
_WRITTEN = {int: re.compile(rf"[+-]?{_D}"), float: re.compile(rf"[+-]?(?:{_D}(?:\.(?:{_D})?)?|\.{_D})(?:[eE][+-]?{_D})?")}


# Full-width forms (U+FF01-FF5E) as their ASCII: a Japanese, Chinese or Korean input method types
# "０．１" for 0.1. int() reads full-width digits, float() not their point: "１２３" was taken and "０．１"
# refused with "write it like 0.0" (a walk in Korean), and the page's boxes sent to the API refused both.
_HALF = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}


def halfwidth(text: str) -> str:
    return text.translate(_HALF).strip()


def int_or_text(digits: str):
    """int(digits), or the digits as they are when Python will not read that many (4,300: its guard
    against slow conversions): readers of settings (YAML here, the page's JSON) hand such a number on as
    text, and coerce() says it is out of its setting's bounds instead of a ValueError stopping the read."""
    try:
        return int(digits)
    except ValueError:
        return digits


_TOO_MANY_DIGITS = 10 ** (sys.get_int_max_str_digits() or 4300)

# A comma in a number groups thousands (1,000 and 12,345,678: one to three digits, then groups of exactly
# three) or is a decimal comma, as much of Europe writes one (0,0002, 1,5). A browser's number box drops
# every comma but on the Spanish page (webui.page_script), so "0,0002" typed as the learning rate became
# 2 on the other pages (a walk in Japanese and Korean). Every route (the page's boxes, a loaded file, an
# HTTP call, --set) refuses a comma that cannot group, saying to write the point; the page checks what
# was typed against GROUPED itself (webui.fields), as the browser has already dropped the comma.
GROUPED = r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?"


def decimal_comma(value) -> str | None:
    """`value` with its comma written as a point (the example its refusal gives) when it is a number
    written with a comma that cannot group thousands; None for anything else."""
    if not isinstance(value, str):
        return None
    text = halfwidth(value)
    if "," not in text or not _WRITTEN[float].fullmatch(text.replace(",", "")) or re.fullmatch(GROUPED, text):
        return None
    return text.replace(",", ".") if text.count(",") == 1 and "." not in text else "0.5"  # 1,5,0: no one reading


def as_number(value, t):
    """`value` from outside a config (a box of the page sent straight to the HTTP API, a command line's option,
    a cleaning parameter, an admin's file) as an int or float `t`, for its caller's bounds to check: a number
    too large to hold (5,000 digits, as text or an int; 1e999) is infinity of its sign, so any bounds refuse
    it (said with quoted(value)); None when it is no such number (text, true, NaN and, for a whole number, 1.5)."""
    if isinstance(value, str):
        text = halfwidth(value)
        if not _WRITTEN[t].fullmatch(text):
            return None
        value = int_or_text(text) if t is int else float(text)  # float() of 5,000 digits is inf
        if isinstance(value, str):  # more digits than Python reads
            return -math.inf if text.startswith("-") else math.inf
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:  # value != value: NaN
        return None  # numbers.Real: numpy's numbers too (a table's cell)
    if not isinstance(value, numbers.Integral):
        value = float(value)
        if math.isinf(value):
            return value
    if t is float:
        try:
            return float(value)
        except OverflowError:  # an int no float holds
            return math.inf if value > 0 else -math.inf
    if isinstance(value, numbers.Integral):  # past Python's digits no message (str()) nor record (JSON) could hold it
        return int(value) if -_TOO_MANY_DIGITS < value < _TOO_MANY_DIGITS else math.inf if value > 0 else -math.inf
    return int(value) if value.is_integer() else None


def quoted(value) -> str:
    """A value as a message quotes it: str(), and an int of more digits than Python writes (str() raises
    ValueError past 4,300) through Decimal, which writes every digit; core.messages then cuts it short.
    Text is quoted as it is, spaces around it aside; a whole float as the whole number typed (-3 and 1000,
    not -3.0 and 1000.0: a walk in Japanese read "(現在は -3.0)" for the -3 it typed)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:
            return str(decimal.Decimal(value))
    return str(value)


def whole(value, where: str, lo: int, hi: int, default: int | None = None) -> int | None:
    """A whole number from lo to hi from outside a config (a number box of the page, a filter), `default` when
    empty, or InputError naming `where` and the bounds, the value quoted short."""
    if value is None or value == "":
        return default
    point = decimal_comma(value)
    if point is not None:
        raise InputError(problems=[Problem(where, Msg("any.decimal_comma", value=quoted(value)),
                                           Msg("config.decimal_comma.hint", example=point))])
    n = as_number(value, int)
    if n is None or not lo <= n <= hi:
        raise InputError(problems=[Problem(where, Msg("any.whole_range", lo=lo, hi=hi, value=quoted(value)))])
    return n


def _beyond(name: str, t, value) -> Problem | None:
    """The problem with a number too large for an int or a float to hold: out of the setting's bounds,
    said as any such value is (the message quotes it short); None when `value` is no number in digits."""
    text = value.strip() if isinstance(value, str) else str(value)
    meta = FIELDS[name].metadata
    if not _WRITTEN[t].fullmatch(text) or meta["min"] is None or meta["max"] is None:
        return None
    return out_of_bounds(name, "min" if text.startswith("-") else "max", text)


def out_of_bounds(name: str, side: str, value: str) -> Problem:
    """The problem with a setting's value below its minimum (side "min") or above its maximum ("max")."""
    n = quoted(FIELDS[name].metadata[side])
    if side == "max":
        return Problem(name, Msg("config.max", label=label(name), n=n, value=value), Msg("config.use_at_most", n=n))
    hint = Msg("config.rank_hint") if name == "lora_rank" else Msg("config.use_at_least", n=n)
    return Problem(name, Msg("config.min", label=label(name), n=n, value=value), hint)


def _number(name: str, t, value) -> tuple[Any, Problem | None] | None:
    """An int or float setting's value, or its problem; None when `value` is no such number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if t is int and not isinstance(value, str):
        return (int(value), None) if isinstance(value, int) or value.is_integer() else None
    if isinstance(value, str):
        value = halfwidth(value)
    try:
        number = t(value)
    except (ValueError, OverflowError):  # no number; or an int past Python's 4,300 digits, or one no float holds
        number = None
    if number is None or (t is float and math.isinf(number)):  # "inf" itself is the settings check's to say
        beyond = _beyond(name, t, value)
        if beyond is not None:
            return None, beyond
    return None if number is None else (number, None)


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
    elif t in (int, float):
        point = decimal_comma(value)
        if point is not None:
            return None, Problem(name, Msg("config.decimal_comma", label=label(name), value=quoted(value)),
                                 Msg("config.decimal_comma.hint", example=point))
        out = _number(name, t, value)
        if out is not None:
            return out
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
    return None, Problem(name, Msg("config.type", label=label(name), type=_type_name(t), value=repr(value)),
                         Msg("config.write_like", name=name, example=str(_example(name))))


def _example(name: str):
    default = FIELDS[name].default
    if default is dataclasses.MISSING:
        return "[first question, second question]" if _field_type(name) is list else "{}"
    if isinstance(default, bool):
        return str(default).lower()
    return default if default != "" else "..."


def unknown_key(key: Any, ignored: bool = False) -> Problem:
    """A key that names no setting, with the setting it is closest to ("did you mean 'lora_rank'?"):
    a misspelt key's value is otherwise lost without a word of which setting it meant. `ignored`: the
    page's Load config, which loads the rest of the file."""
    close = difflib.get_close_matches(str(key), FIELDS.keys(), n=1)
    hint = Msg("config.did_you_mean", name=close[0]) if close else Msg("config.see_copy")
    return Problem(str(key), Msg("config.unknown_ignored" if ignored else "config.unknown"), hint)


def from_dict(data: Any, source: str | Msg | None = None) -> TrainConfig:
    """Build a TrainConfig from a mapping; raise ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("", Msg("config.not_mapping", type=type(data).__name__),
                                   Msg("config.start_from_copy"))], source)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in FIELDS:
            problems.append(unknown_key(key))
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
        meta, value, name = f.metadata, getattr(cfg, f.name), label(f.name)
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(Problem(f.name, Msg("config.not_finite", label=name, value=str(value))))
            continue
        if meta["choices"] and value not in meta["choices"]:
            problems.append(Problem(f.name, Msg("config.choice", label=name, choices=", ".join(meta["choices"]),
                                                value=repr(value))))
        if meta["min"] is not None and isinstance(value, (int, float)) and value < meta["min"]:
            problems.append(out_of_bounds(f.name, "min", quoted(value)))
        if meta["max"] is not None and isinstance(value, (int, float)) and value > meta["max"]:
            problems.append(out_of_bounds(f.name, "max", quoted(value)))
        if meta["max_chars"] is not None and len(value) > meta["max_chars"]:
            problems.append(Problem(f.name, Msg("config.max_chars", label=name, count=len(value), n=meta["max_chars"]),
                                    Msg("config.max_chars.hint")))
    if not cfg.base_model.strip():
        problems.append(Problem("base_model", Msg("config.no_model"), Msg("config.no_model.hint")))
    if "\x00" in cfg.base_model or "\x00" in cfg.dataset:
        problems.append(Problem("dataset" if "\x00" in cfg.dataset else "base_model",
                                Msg("any.nul"), Msg("any.type_name_again")))
    if not cfg.dataset.strip():
        problems.append(Problem("dataset", Msg("config.no_dataset"), Msg("config.no_dataset.hint")))
    elif looks_like_url(cfg.dataset):
        problems.append(Problem("dataset", Msg("config.dataset_url", value=repr(cfg.dataset)),
                                Msg("config.dataset_url.hint")))
    elif check_files and "\x00" not in cfg.dataset:
        path = resolve_path(cfg.dataset, base_dir)
        if not exists(path):
            problems.append(Problem("dataset", Msg("any.file_not_found_at", path=cfg.dataset),
                                    Msg("config.dataset_missing.hint")))
        elif path.is_dir():
            problems.append(Problem("dataset", Msg("config.dataset_folder", path=cfg.dataset), Msg("config.dataset_folder.hint")))
        elif not path.is_file():  # /dev/zero, a pipe: pinning it (reading it whole) never ended
            problems.append(Problem("dataset", Msg("any.not_regular_at", path=cfg.dataset), Msg("config.dataset_folder.hint")))
    if cfg.lora_alpha and cfg.lora_rank and cfg.lora_alpha > 16 * cfg.lora_rank:
        problems.append(Problem("lora_alpha", Msg("config.alpha_huge", alpha=cfg.lora_alpha, rank=cfg.lora_rank),
                                Msg("config.alpha_huge.hint")))
    tm = cfg.target_modules.strip()
    if not tm:
        problems.append(Problem("target_modules", Msg("config.no_layers"), Msg("config.no_layers.hint")))
    elif tm != "all-linear" and len(tm) <= FIELDS["target_modules"].metadata["max_chars"] \
            and not all(_LAYER.fullmatch(part.strip()) for part in tm.split(",")):
        problems.append(Problem("target_modules", Msg("config.bad_layers", value=repr(tm)), Msg("config.bad_layers.hint")))
    if len(cfg.probe_prompts) > 10:
        problems.append(Problem("probe_prompts", Msg("config.too_many_probes", n=len(cfg.probe_prompts)),
                                Msg("config.too_many_probes.hint")))
    for i, prompt in enumerate(cfg.probe_prompts, 1):
        if not prompt.strip() or len(prompt) > 2000 or "\x00" in prompt:
            problems.append(Problem(f"probe_prompts[{i}]", Msg("config.bad_probe")))
    for key in cfg.column_map:
        if key not in ("messages", "conversations", "instruction", "input", "output", "prompt", "completion", "text", "system",
                       "chosen", "rejected"):
            problems.append(Problem(f"column_map.{key}", Msg("any.not_a_field"), Msg("config.column_map_key.hint")))
    return problems


# A layer's name as PyTorch names a module: letters, digits and "_", parts joined by dots (model.layers.0.mlp)
MAX_CONFIG_BYTES = 16 << 20  # a config is a few KB; probe prompts and a column map add little
_LAYER = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")


def resolve_path(value: str, base_dir: Path | None = None) -> Path:
    p = Path(value).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p.resolve()


def parse_override(item: str) -> tuple[str, Any]:
    """`key=value` from the command line; the value is read as YAML (so 2e-4, true, [a, b] work)."""
    if "=" not in item:
        raise ConfigError([Problem(item, Msg("config.override"), Msg("config.override.hint"))], "--set")
    key, raw = item.split("=", 1)
    key = key.strip()
    text = FIELDS.get(key) is not None and _field_type(key) is str
    try:
        value = load_yaml_text(raw) if raw.strip() else ""
    except KeyTwice as e:  # `column_map={a: 1, a: 2}` is a mapping: say which key to write once
        if text or FIELDS.get(key) is None:  # text stays text; an unknown key is said as one
            return key, raw
        raise ConfigError([Problem(key, Msg("config.set_key_twice", key=quoted(e.key)),
                                   Msg("config.set_key_twice.hint", key=quoted(e.key)))], "--set") from None
    except yaml.YAMLError:
        value = raw
    if text and not isinstance(value, str):
        value = raw  # "run_name=2024" stays text
    return key, value


def read_yaml(path: str | Path, shown_as: str | None = None) -> dict:
    """Read a YAML mapping; syntax errors name the line. shown_as: how the person knows the file (an upload's
    own name, not the server's folder of uploads that its path runs through)."""
    if not str(path).strip():  # Path("") is ".", which was said as "is a folder"
        raise ConfigError([Problem("config", Msg("config.no_file"), Msg("config.too_big.hint"))], "config")
    path = Path(path)
    name = shown_as or str(path)
    if not exists(path):
        raise ConfigError([Problem(name, Msg("any.file_not_found"), Msg("any.check_path"))], name)
    if is_dir(path):
        raise ConfigError([Problem(name, Msg("cli.is_folder"), Msg("any.check_path"))], name)
    data = read_at_most(path, MAX_CONFIG_BYTES)  # a pipe is read (train <(...)); /dev/zero is not read forever
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem(name, Msg("config.too_big", mb=MAX_CONFIG_BYTES >> 20), Msg("config.too_big.hint"))], name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1  # where the bad byte is, as an editor counts (from 1)
        where = dict(line=data.count(b"\n", 0, e.start) + 1, column=e.start - line_start + 1)
        raise ConfigError([Problem(name, Msg("config.not_utf8", **where), Msg("config.save_utf8"))], name)
    try:
        data = load_yaml_text(text)
    except KeyTwice as e:  # not YAML's "check indentation": which line to keep ({a: 1, a: 2}: which value)
        key = quoted(e.key)
        said = (Msg("config.key_twice_line", key=key), Msg("config.set_key_twice.hint", key=key)) if e.first == e.line \
            else (Msg("config.key_twice", key=key, first=e.first), Msg("config.key_twice.hint", key=key))
        raise ConfigError([Problem(f"{name}:{e.line}", *said)], name) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        detail = Msg("json.too_deep") if isinstance(e, TooDeep) else Msg("yaml.too_big", limit=MAX_VALUES) \
            if isinstance(e, TooBig) else str(getattr(e, "problem", None) or e)
        raise ConfigError([Problem(where, Msg("config.bad_yaml", detail=detail), Msg("config.bad_yaml.hint"))], name)
    return data if data is not None else {}


def load_config(path: str | Path, overrides: list[str] | None = None, *, check_files: bool = True) -> TrainConfig:
    """Read, override, coerce and validate. Relative dataset paths count from the file's folder."""
    data = read_yaml(path)
    path = Path(path)
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
