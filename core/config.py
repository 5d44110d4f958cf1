"""TrainConfig: the single source of truth for every training setting.

One name per setting. The field name below is the GUI widget key, the preset key, the YAML key,
the `--set key=value` override and the attribute the recipe reads. Each field's metadata carries
its label, help for a non-expert, bounds or choices, and whether it is "advanced" (hidden in an
accordion in the GUI).

    cfg = load_config("x.yaml", overrides=["lora_rank=32"])   # raises ConfigError with every problem
    problems = validate(cfg)                                  # [] when usable
    save_config(cfg, "run/config.yaml")                       # YAML with a comment per field

Reading, checking and writing configs (load_config, validate, to_yaml, ...) live in
core/config_io.py and are importable from here. Pure Python: imports neither torch nor gradio.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from core.errors import ConfigError  # noqa: F401  (re-exported: callers catch it from here)
from core.messages import register_field_labels

FORMATS = ("auto", "messages", "sharegpt", "alpaca", "prompt_completion", "text", "preference")
METHODS = ("sft", "dpo", "orpo")


def setting(default, label: str, help: str, *, group: str, advanced: bool = False,
            min=None, max=None, choices=None, kind: str | None = None, path: str | None = None,
            max_chars: int | None = None):
    """A TrainConfig field with its user-facing metadata. path: "file" or "model" when the value
    names something on disk; core.trust checks every such field when a config comes from the page.
    max_chars: the longest text a text setting takes (a paste of a whole file is refused, in words)."""
    meta = dict(label=label, help=help, group=group, advanced=advanced, min=min, max=max,
                choices=tuple(choices) if choices else None, kind=kind, path=path, max_chars=max_chars)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


# the longest path Linux opens (PATH_MAX): a longer one names no file, and a megabyte of it sent to the app's
# HTTP API was written out into the config that Show command and Save config make (3.5 s of the server's time)
PATH_CHARS = 4096


@dataclass
class TrainConfig:
    # --- model -----------------------------------------------------------------------------
    base_model: str = setting(
        "builtin:danlu-tiny", "Base model",
        "The model to fine-tune: a model preset name (e.g. qwen2.5-0.5b-instruct), a Hugging Face "
        "hub id (e.g. Qwen/Qwen2.5-0.5B-Instruct) or a local folder. 'builtin:danlu-tiny' is the "
        "tiny demo model Danlu builds on this machine; it trains in seconds but knows nothing.",
        group="model", path="model", max_chars=PATH_CHARS)
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
    start_adapter: str = setting(
        "", "Continue from a finished run",
        "Start from the adapter a finished run produced instead of a fresh one: its job id (e.g. "
        "20261202-...) or its run folder. The usual order is supervised training first, then "
        "preference tuning from its adapter. Leave empty to start from the base model.",
        group="model", advanced=True, path="adapter", max_chars=PATH_CHARS)

    # --- data ------------------------------------------------------------------------------
    dataset: str = setting(
        "", "Dataset file",
        "The training data: a JSONL, JSON, CSV, TSV, Parquet or Excel file of examples.",
        group="data", kind="path", path="file", max_chars=PATH_CHARS)
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
        group="data", min=16, max=1048576)
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
        group="lora", advanced=True, max_chars=1000)

    # --- training --------------------------------------------------------------------------
    method: str = setting(
        "sft", "Method",
        "What the model learns from. sft: write answers like the examples (each row has one good "
        "answer). dpo: teach from pairs of a better and a worse answer, staying close to the starting "
        "model. orpo: learn from pairs in one step from the base model, without a second pass through "
        "the starting model (faster, less memory). dpo and orpo need a dataset of pairs.",
        group="training", choices=METHODS)
    pref_beta: float = setting(
        0.1, "Preference strength",
        "For dpo and orpo. How strongly the better answer is pushed above the worse one. dpo: higher "
        "keeps the model closer to where it started (0.1 is usual). orpo: the weight of the pair term "
        "beside learning the better answer (0.1 is usual).",
        group="training", advanced=True, min=0.001, max=10.0)
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
        "more compute. Keep on for large models. Used as set when the memory plan is 'lowest'.",
        group="training")
    memory_plan: str = setting(
        "auto", "Memory plan",
        "How the GPU's memory is spent on speed. auto: when training starts, Danlu measures the free "
        "memory and keeps as many layers' intermediate results as fit (fastest), recomputing the rest; "
        "the memory estimate below says what it chose and why. lowest: the least GPU memory, as 'Save "
        "memory' and 'Keep saved activations in CPU memory' are set.",
        group="training", choices=("auto", "lowest"))
    sharding: str = setting(
        "auto", "Split the model over GPUs",
        "With several GPUs. auto: each GPU holds the whole model when it fits (fastest), otherwise the "
        "model's 4-bit weights are split over the GPUs (FSDP). off: never split. fsdp: always split.",
        group="training", advanced=True, choices=("auto", "off", "fsdp"))
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
        group="logging", advanced=True, max_chars=100)
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
register_field_labels(lambda name: FIELDS[name].metadata["label"] if name in FIELDS else None)  # Msg("field.x")
GROUPS = ("model", "data", "lora", "training", "logging", "speed")


def to_dict(cfg: TrainConfig) -> dict:
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)}


# Reading, checking and writing configs live in core/config_io.py; they are importable from here
# (module __getattr__, PEP 562) so callers keep one place to import settings from.
IO_NAMES = ("coerce", "from_dict", "validate", "resolve_path", "parse_override", "read_yaml", "load_config",
            "to_yaml", "save_config", "load_yaml_text", "int_or_text", "as_number", "quoted", "whole", "unknown_key",
            "out_of_bounds")


def __getattr__(name: str):
    if name in IO_NAMES:
        from core import config_io
        return getattr(config_io, name)
    raise AttributeError(f"module 'core.config' has no attribute {name!r}")
