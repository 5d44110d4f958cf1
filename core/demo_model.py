"""The built-in demo model: a tiny Llama with its own byte-level BPE tokenizer and chat template.

Generated deterministically on first use into `<workspace>/models/danlu-tiny/` (no weights are
committed, nothing is downloaded): the tokenizer is trained on the demo dataset's text, the weights
come from a fixed seed. Two builds give byte-identical files.

`initializer_range=0.2` (not the usual 0.02) matters: with tiny random weights the frozen output
layer gives near-uniform logits and LoRA cannot move the loss much; with 0.2 the demo visibly
learns (loss 5.9 -> under 1 in a few epochs).

    python -c "from core.demo_model import ensure_demo_model; print(ensure_demo_model())"
"""
from __future__ import annotations

import fcntl
import json
import shutil
from pathlib import Path

from core.workspace import PRESETS_DIR, Workspace

DEMO_NAME = "danlu-tiny"
BUILTIN_PREFIX = "builtin:"
DEMO_DATA = PRESETS_DIR / "templates" / "data" / "demo.jsonl"
SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|im_start|>", "<|im_end|>"]

# ChatML; also Danlu's named fallback for base models that ship no chat template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_EXTRA_TEXT = [
    "The furnace keeper answers questions about fire, pills and furnaces.",
    "Hello, how are you? I am fine, thank you. What is your question?",
    "One two three four five six seven eight nine ten hours.",
]


def is_builtin(name: str) -> bool:
    return name.startswith(BUILTIN_PREFIX)


def builtin_path(name: str, ws: Workspace) -> Path:
    return ws.models / name[len(BUILTIN_PREFIX):]


def _corpus() -> list[str]:
    lines = list(_EXTRA_TEXT)
    with open(DEMO_DATA, encoding="utf-8") as f:
        for line in f:
            for m in json.loads(line)["messages"]:
                lines.append(m["content"])
    return lines


def build(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny model and tokenizer to `out_dir` (which must not exist)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|im_end|>",
                                     pad_token="<|pad|>")
    hf_tok.chat_template = CHATML_TEMPLATE

    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=len(hf_tok), max_position_embeddings=4096,
                      initializer_range=0.2, bos_token_id=hf_tok.bos_token_id,
                      eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    hf_tok.save_pretrained(out_dir)
    for p in out_dir.iterdir():  # safetensors are written 0600; let other local users read the demo
        p.chmod(0o644)
    return out_dir


def ensure_demo_model(ws: Workspace | None = None, name: str = BUILTIN_PREFIX + DEMO_NAME) -> Path:
    """Return the demo model folder, building it once (safe when several processes race)."""
    ws = ws or Workspace.open()
    target = builtin_path(name, ws)
    if name != BUILTIN_PREFIX + DEMO_NAME:
        from core.errors import NotFound
        raise NotFound(f"unknown built-in model {name!r}", f"the only built-in model is {BUILTIN_PREFIX}{DEMO_NAME}")
    if (target / "config.json").exists():
        return target
    lock_path = ws.models / f".{DEMO_NAME}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").exists():
            return target
        tmp = ws.models / f".{DEMO_NAME}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        build(tmp)
        tmp.rename(target)
    return target
