"""What an export can contain, in one table: the `--format` names, the files each writes, and what
each is expected to cost for a model of a given size. Pure Python (no torch), shared by the CLI,
the Export tab and the export recipe.

    fmts = parse_formats("q4_k_m,q8_0,ollama")    # ['q4_k_m', 'q8_0', 'ollama'] or InputError naming the bad one
    gguf_file("my-bot", "q4_k_m")                 # 'my-bot-Q4_K_M.gguf'
    rows = estimates(fmts, params=8.03e9, gpu=True)   # [{format, bytes, seconds}] shown before an export

Formats: `safetensors` (the merged Hugging Face folder; the default), GGUF types for llama.cpp /
LM Studio / Ollama (`f16`, `bf16`, `q8_0`, `q6_k`, `q5_k_m`, `q4_k_m`, `q3_k_m`), `lora` (the PEFT
adapter alone, in `lora/`) and `ollama` (a Modelfile next to a GGUF; it brings `q4_k_m` along
when no GGUF type was asked for).
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError, Problem

DEFAULT_FORMATS = ("safetensors",)
SUGGESTED_GGUF = "q4_k_m"


@dataclass(frozen=True)
class Format:
    name: str            # the --format word (lower case)
    kind: str            # safetensors | gguf | lora | ollama
    label: str           # shown in the GUI and CLI
    bits: float = 0.0    # bits per weight on disk (GGUF types)
    llama_ftype: str = ""  # llama.cpp's LLAMA_FTYPE_* name


# Bits per weight: the block formats' own size (Q8_0 34 bytes / 32 weights = 8.5; Q6_K 210/256;
# Q5_K 176/256; Q4_K 144/256; Q3_K 110/256) plus the "_M" mixes, which keep some tensors (attention
# values, feed-forward down, the output layer) one or two types higher: about +0.2-0.45 bits for a
# Llama-shaped model. Estimates, not promises; the manifest records the real size.
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("safetensors", "safetensors", "merged model (Hugging Face safetensors)"),
    Format("f16", "gguf", "GGUF F16 (full precision)", 16.0, "MOSTLY_F16"),
    Format("bf16", "gguf", "GGUF BF16 (full precision)", 16.0, "MOSTLY_BF16"),
    Format("q8_0", "gguf", "GGUF Q8_0 (near lossless)", 8.5, "MOSTLY_Q8_0"),
    Format("q6_k", "gguf", "GGUF Q6_K", 6.5625, "MOSTLY_Q6_K"),
    Format("q5_k_m", "gguf", "GGUF Q5_K_M", 5.7, "MOSTLY_Q5_K_M"),
    Format("q4_k_m", "gguf", "GGUF Q4_K_M (suggested: small, good quality)", 4.85, "MOSTLY_Q4_K_M"),
    Format("q3_k_m", "gguf", "GGUF Q3_K_M (smallest, lower quality)", 3.9, "MOSTLY_Q3_K_M"),
    Format("lora", "lora", "LoRA adapter only (PEFT, vLLM)"),
    Format("ollama", "ollama", "Ollama Modelfile"),
)}
GGUF_TYPES = tuple(n for n, f in FORMATS.items() if f.kind == "gguf")
# the GGUF an Ollama Modelfile points at, best first
OLLAMA_PREFERENCE = ("q4_k_m", "q5_k_m", "q6_k", "q8_0", "q3_k_m", "f16", "bf16")


def parse_formats(value) -> list[str]:
    """'q4_k_m,q8_0,ollama' (or a list) -> the formats in table order, without repeats. Every unknown name
    is reported at once. `ollama` without a GGUF type adds q4_k_m (a Modelfile needs a GGUF to point at)."""
    if value is None or value == "" or value == []:
        return list(DEFAULT_FORMATS)
    words = value.split(",") if isinstance(value, str) else list(value)
    words = [str(w).strip().lower() for w in words if str(w).strip()]
    bad = [w for w in words if w not in FORMATS]
    if bad:
        raise InputError(problems=[Problem("format", f"{w!r} is not an export format",
                                           "choose from " + ", ".join(FORMATS)) for w in bad],
                         title="The export format cannot be used")
    if not words:
        return list(DEFAULT_FORMATS)
    chosen = set(words)
    if "ollama" in chosen and not chosen & set(GGUF_TYPES):
        chosen.add(SUGGESTED_GGUF)
    return [n for n in FORMATS if n in chosen]


def gguf_types(formats: list[str]) -> list[str]:
    return [f for f in formats if FORMATS[f].kind == "gguf"]


def gguf_file(name: str, fmt: str) -> str:
    """The file name of one GGUF type: 'NAME-Q4_K_M.gguf' (the convention on model hubs)."""
    return f"{name}-{fmt.upper()}.gguf"


def ollama_target(formats: list[str]) -> str | None:
    """Which GGUF type the Modelfile's FROM names."""
    return next((t for t in OLLAMA_PREFERENCE if t in formats), None)


# Throughput behind the time estimates, measured (a rough guide: a shared or slower disk changes them):
# - CPU rows: `python bench/export_rates_cpu.py` on this project's 2-core machine, a 75M-parameter
#   Llama with 768-wide rows (bench/results/export-rates-cpu.json): merge (load, fold a rank-16 LoRA,
#   save) 12M params/s; llama.cpp's converter 21M params/s (Python start-up included); quantising 73M
#   params/s per core to Q8_0 and 14.5M to Q4_K_M (the K-quants search their scales); loading a GGUF
#   and answering 16 tokens 214M params/s.
# - GPU merge: an 8B Llama on one H100, 87 s for load, merge, save, checksums and a test answer
#   (bench/results/merge-8b-h100.json). Quantising always runs on CPU cores.
RATES = dict(
    merge_params_per_s_cpu=12e6, merge_params_per_s_gpu=92e6, convert_params_per_s=21e6,
    quantize_params_per_s_per_core={"q8_0": 73e6, "k": 14.5e6}, verify_params_per_s=214e6,
)


def estimates(formats: list[str], params: float, *, gpu: bool, cores: int = 2, merge_dtype_bytes: int = 2) -> list[dict]:
    """Expected size (bytes) and time (seconds) of each requested format, for a model of `params` weights."""
    rows, ggufs = [], gguf_types(formats)
    merge_s = params / RATES["merge_params_per_s_gpu" if gpu else "merge_params_per_s_cpu"]
    for f in formats:
        fmt = FORMATS[f]
        if fmt.kind == "safetensors":
            size, secs = params * merge_dtype_bytes, merge_s
        elif fmt.kind == "gguf":
            size = params * fmt.bits / 8
            # the one conversion is shared among the GGUF types; f16/bf16 come from it almost as they are
            secs = params / RATES["convert_params_per_s"] / max(1, len(ggufs)) + params / RATES["verify_params_per_s"]
            if f not in ("f16", "bf16"):
                rate = RATES["quantize_params_per_s_per_core"]["q8_0" if f == "q8_0" else "k"]
                secs += params / (rate * max(1, cores))
        else:
            size, secs = 0, 1.0  # a few small files (the adapter is sized separately; a Modelfile is text)
        rows.append(dict(format=f, label=fmt.label, bytes=int(size), seconds=round(secs, 1)))
    if not any(FORMATS[f].kind == "safetensors" for f in formats):  # the merge runs anyway, into a scratch folder
        rows.append(dict(format="(merge)", label="merge step (scratch, removed afterwards)", bytes=int(params * merge_dtype_bytes),
                         seconds=round(merge_s, 1)))
    return rows


def scratch_bytes(formats: list[str], params: float, merge_dtype_bytes: int = 2) -> int:
    """Disk needed at the peak of an export: the merged weights, a full-precision GGUF to quantise from, and
    every requested file."""
    need = sum(r["bytes"] for r in estimates(formats, params, gpu=False, merge_dtype_bytes=merge_dtype_bytes))
    if gguf_types(formats) and not {"f16", "bf16"} & set(formats):
        need += params * 2
    return int(need)
