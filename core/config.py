"""TrainConfig: the single source of truth for every training setting.

One name per setting. The field name below is the GUI widget key, the preset key, the YAML key,
the `--set key=value` override and the attribute the recipe reads. Each field's metadata carries
its label, help for a non-expert, bounds or choices, and whether it is "advanced" (hidden in an
accordion in the GUI).

    cfg = load_config("x.yaml", overrides=["lora_rank=32"])   # raises ConfigError with every problem
    problems = validate(cfg)                                  # [] when usable
    save_config(cfg, "run/config.yaml")                       # YAML with a comment per field

Pure Python: imports neither torch nor gradio.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError, Problem
from core.paths import looks_like_url

FORMATS = ("auto", "messages", "sharegpt", "alpaca", "prompt_completion", "text")


def setting(default, label: str, help: str, *, group: str, advanced: bool = False,
            min=None, max=None, choices=None, kind: str | None = None, path: str | None = None):
    """A TrainConfig field with its user-facing metadata. path: "file" or "model" when the value
    names something on disk; core.trust checks every such field when a config comes from the page."""
    meta = dict(label=label, help=help, group=group, advanced=advanced,
                min=min, max=max, choices=tuple(choices) if choices else None, kind=kind, path=path)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # --- model -----------------------------------------------------------------------------
    base_model: str = setting(
        "builtin:danlu-tiny", "Base model",
        "The model to fine-tune: a model preset name (e.g. qwen2.5-0.5b-instruct), a Hugging Face "
        "hub id (e.g. Qwen/Qwen2.5-0.5B-Instruct) or a local folder. 'builtin:danlu-tiny' is the "
        "tiny demo model Danlu builds on this machine; it trains in seconds but knows nothing.",
        group="model", path="model")
    quantization: str = setting(
        "4bit", "Quantization",
        "How the frozen base model is stored while training. 4bit (QLoRA) uses about a quarter of "
        "the memory of 'none' with little loss in quality; 8bit sits between. Choose 'none' only "
        "for small models or when you have memory to spare.",
        group="model", choices=("4bit", "8bit", "none"))
    trust_remote_code: bool = setting(
        False, "Run the model's own code",
        "Some hub models ship Python code that runs on your machine when loaded. Leave this off "
        "unless you trust the model's authors: the code can do anything your account can.",
        group="model", advanced=True)
    chat_template: str = setting(
        "auto", "Chat template",
        "How conversations are turned into text. 'auto' uses the model's own template, or ChatML "
        "when the model has none (base models). Training, evaluation and chat all use the same one.",
        group="model", advanced=True, choices=("auto", "chatml"))
    precision: str = setting(
        "auto", "Compute precision",
        "Number format for the math. 'auto' picks bf16 on GPUs that support it and fp32 on CPU.",
        group="model", advanced=True, choices=("auto", "bf16", "fp16", "fp32"))

    # --- data ------------------------------------------------------------------------------
    dataset: str = setting(
        "", "Dataset file",
        "The training data: a JSONL, JSON, CSV, TSV, Parquet or Excel file of examples.",
        group="data", kind="path", path="file")
    dataset_format: str = setting(
        "auto", "Dataset format",
        "How examples are laid out. 'auto' detects it: messages (OpenAI chat), sharegpt "
        "(conversations with from/value), alpaca (instruction/input/output), prompt_completion, "
        "or text (plain documents).",
        group="data", choices=FORMATS)
    column_map: dict = setting(
        {}, "Column names",
        "Only when your columns are named differently: map the expected name to yours, e.g. "
        "prompt: question, completion: answer.",
        group="data", advanced=True)
    max_seq_length: int = setting(
        1024, "Maximum length (tokens)",
        "Examples longer than this are cut. Longer allows longer answers but needs more memory. "
        "512-2048 suits most chat data.",
        group="data", min=16, max=131072)
    packing: bool = setting(
        True, "Pack short examples together",
        "Joins several short examples into one sequence (each still sees only itself), so no "
        "compute is wasted on padding. Faster; turn off only for tiny datasets.",
        group="data")
    val_fraction: float = setting(
        0.05, "Validation share",
        "Part of the data held back to measure progress on examples the model never trains on. "
        "0.05 = 5%. 0 turns validation off.",
        group="data", min=0.0, max=0.5)
    train_on_inputs: bool = setting(
        False, "Also learn the prompts",
        "Off: the model learns only to write the assistant's answers (usual). On: it also learns "
        "to reproduce the user's messages.",
        group="data", advanced=True)

    # --- LoRA ------------------------------------------------------------------------------
    lora_rank: int = setting(
        16, "LoRA rank",
        "Size of the small trainable add-on. 8-16 suits style and format; 64 or more helps teach "
        "new knowledge but needs more memory and data.",
        group="lora", min=1, max=1024)
    lora_alpha: int = setting(
        32, "LoRA alpha",
        "Strength of the add-on. A common choice is twice the rank.",
        group="lora", min=1, max=4096)
    lora_dropout: float = setting(
        0.0, "LoRA dropout",
        "Randomly ignores part of the add-on while training to fight overfitting on small data. "
        "0-0.1 is typical; 0 is fastest.",
        group="lora", advanced=True, min=0.0, max=0.9)
    target_modules: str = setting(
        "all-linear", "Layers to adapt",
        "Which layers get a LoRA add-on. 'all-linear' (recommended) adapts every linear layer; or "
        "list names separated by commas, e.g. q_proj,v_proj.",
        group="lora", advanced=True)

    # --- training --------------------------------------------------------------------------
    learning_rate: float = setting(
        2e-4, "Learning rate",
        "How big each update is. 1e-4 to 3e-4 suits QLoRA. Too high and the loss jumps or "
        "becomes NaN; too low and nothing changes.",
        group="training", min=1e-8, max=1.0)
    lr_scheduler: str = setting(
        "cosine", "Learning-rate schedule",
        "How the learning rate changes over the run: cosine (smoothly down, recommended), linear "
        "(straight down) or constant.",
        group="training", choices=("cosine", "linear", "constant"))
    warmup_ratio: float = setting(
        0.03, "Warm-up share",
        "Part of the run during which the learning rate ramps up from zero, which avoids early "
        "instability. 0.03 = the first 3% of steps.",
        group="training", advanced=True, min=0.0, max=0.5)
    num_epochs: float = setting(
        3.0, "Epochs",
        "How many times the model sees the whole dataset. 1-3 for large datasets; more for small "
        "ones, watching that the validation loss does not rise.",
        group="training", min=0.01, max=1000.0)
    max_steps: int = setting(
        0, "Maximum steps",
        "Stop after this many optimizer steps; 0 means train for the number of epochs.",
        group="training", advanced=True, min=0, max=10_000_000)
    micro_batch_size: int = setting(
        4, "Batch size per device",
        "Examples processed at once on each GPU. Higher is faster until memory runs out; if you "
        "get an out-of-memory error, lower this first.",
        group="training", min=1, max=1024)
    gradient_accumulation_steps: int = setting(
        1, "Gradient accumulation",
        "Adds up this many batches before each update: a larger effective batch without more "
        "memory. Effective batch = batch size x this x number of GPUs.",
        group="training", advanced=True, min=1, max=1024)
    gradient_checkpointing: bool = setting(
        True, "Save memory (gradient checkpointing)",
        "Recomputes parts of the model instead of storing them: much less memory for about 25% "
        "more compute. Keep on for large models.",
        group="training")
    optimizer: str = setting(
        "adamw", "Optimizer",
        "adamw is the standard choice. paged_adamw_8bit stores its state in 8 bits (GPU only).",
        group="training", advanced=True, choices=("adamw", "paged_adamw_8bit"))
    weight_decay: float = setting(
        0.0, "Weight decay", "Pulls weights gently towards zero; 0-0.1.",
        group="training", advanced=True, min=0.0, max=1.0)
    max_grad_norm: float = setting(
        1.0, "Gradient clipping",
        "Caps the size of each update to keep training stable. 0 turns clipping off.",
        group="training", advanced=True, min=0.0, max=1000.0)
    seed: int = setting(
        42, "Random seed", "Same seed + same data + same settings = the same run.",
        group="training", advanced=True, min=0, max=2**31 - 1)

    # --- logging, evaluation, checkpoints --------------------------------------------------
    logging_steps: int = setting(
        5, "Log every N steps", "How often the loss is recorded and plotted.",
        group="logging", min=1, max=100_000)
    eval_steps: int = setting(
        50, "Validate every N steps",
        "How often the validation loss is measured. 0 = only at the end.",
        group="logging", min=0, max=1_000_000)
    save_steps: int = setting(
        100, "Checkpoint every N steps",
        "How often progress is saved so a stopped or crashed run can resume. 0 = only at the end.",
        group="logging", min=0, max=1_000_000)
    save_total_limit: int = setting(
        2, "Checkpoints to keep", "Older checkpoints are deleted to save disk space.",
        group="logging", advanced=True, min=1, max=1000)
    nan_patience: int = setting(
        3, "Stop after N bad logs",
        "Stop the run when the loss is not a number (NaN/inf) in this many logged steps in a row; "
        "the last good checkpoint is kept.",
        group="logging", advanced=True, min=1, max=1000)
    stall_minutes: float = setting(
        20.0, "Stalled after (minutes)",
        "Fail the run when no training step finishes for this long (a hung GPU or network).",
        group="logging", advanced=True, min=0.5, max=10_000.0)
    run_name: str = setting(
        "", "Run name", "A name to recognise this run by in the job table (optional).",
        group="logging", advanced=True)
    probe_prompts: list = setting(
        [], "Probe prompts",
        "Questions the model answers at every checkpoint and at the end, so you can watch its answers "
        "change while it trains (one per line; up to 10). Leave empty to skip.",
        group="logging", advanced=True, kind="lines")

    # --- speed (each has a CPU fallback; see docs/performance.md) --------------------------
    attn_implementation: str = setting(
        "sdpa", "Attention kernel",
        "sdpa is fast and works everywhere; eager is the slow reference implementation.",
        group="speed", advanced=True, choices=("sdpa", "eager", "flash_attention_2"))
    fused_loss: bool = setting(
        True, "Fused loss (less memory)",
        "Computes the loss without materialising the full vocabulary-sized output (GPU, Liger "
        "kernel). Saves many GiB on large-vocabulary models. Ignored on CPU.",
        group="speed", advanced=True)
    compile: bool = setting(
        True, "Compile layers",
        "Compiles each transformer layer with torch.compile on GPU: faster steps after a short "
        "warm-up. Ignored on CPU.",
        group="speed", advanced=True)
    offload_activations: bool = setting(
        True, "Keep saved activations in CPU memory",
        "With gradient checkpointing, each layer's saved input is moved to the computer's RAM until "
        "the backward pass needs it, while the GPU keeps computing: less GPU memory (about 1.7 GiB for "
        "an 8B model at batch 4 x 2048 tokens) for about 1% slower steps. GPU only.",
        group="speed", advanced=True)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in fields(TrainConfig)}
GROUPS = ("model", "data", "lora", "training", "logging", "speed")


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


def to_dict(cfg: TrainConfig) -> dict:
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)}


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


REMOTE_CODE_WARNING = ("trust_remote_code is on: loading {model} runs Python code shipped with the model, with "
                       "your account's rights. Keep it on only for models whose authors you trust.")


def config_warnings(cfg: TrainConfig) -> list[str]:
    """Settings that are allowed but risky; shown before a run starts and written into its log."""
    out = []
    if cfg.trust_remote_code:
        out.append(REMOTE_CODE_WARNING.format(model=cfg.base_model))
    return out


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
