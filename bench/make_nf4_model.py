"""Build a random-weight Llama-shaped checkpoint directly in bitsandbytes' saved 4-bit format.

    python bench/make_nf4_model.py 70b /dev/shm/llama-70b-nf4 --device cuda
    python bench/make_nf4_model.py 70b /dev/shm/llama-70b-nf4-fsdp --device cuda --quant-storage bfloat16  # for FSDP
    python bench/make_nf4_model.py tiny /tmp/tiny-nf4 --device cpu --seed 0

Why: a 70B model is 141 GB in bf16, more than a device machine's disk, so the usual way (build bf16,
save, let transformers quantize at load) cannot be used. Here each decoder layer is drawn on
--device, quantized there, its packed bytes copied to host memory and written with a few
neighbouring layers as one safetensors shard (~4 GB); the whole bf16 model is never in memory
anywhere. The 70B nf4 folder is about 39 GB.

The result is what `save_pretrained` writes for a model loaded with
BitsAndBytesConfig(load_in_4bit, nf4, double quantisation, bf16 compute; blocksize 64), so
`AutoModelForCausalLM.from_pretrained(path)` (and Unsloth) load it as a pre-quantized model:
- every q/k/v/o/gate/up/down weight of the decoder layers is stored as `<name>.weight` (the packed
  4-bit bytes, shape (numel/2, 1) as uint8) plus `quant_state.as_dict(packed=True)`'s entries under
  `<name>.weight.<key>`: `absmax`, `quant_map`, `nested_absmax`, `nested_quant_map` and
  `quant_state.bitsandbytes__nf4` (the non-tensor fields packed as JSON bytes);
- embed_tokens, lm_head and the norms stay bf16 (transformers' bnb loader does not quantize them);
- config.json carries `quantization_config` = BitsAndBytesConfig(...).to_dict(), what such a save
  carries (tests/bench/test_make_nf4_model.py compares both with transformers' own save).

Weights: normal(0, 0.02) like transformers' init (norms are ones), each tensor from its own
generator seeded from --seed and its place, so `bf16_tensors()` regenerates any of them on the same
kind of device (CPU and CUDA draw different numbers from one seed; the test regenerates on CPU). Throughput does not depend on weight values. A word-level tokenizer ("w4" ..
"w999", like the bench's synthetic rows) is saved beside it.

--quant-storage bfloat16: the packed bytes stored as bf16 (what FSDP needs: one dtype per layer;
core.engine.common.bnb_config asks for the same when it quantizes for FSDP itself).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

LLAMA31_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
# Llama-3.1-8B / -70B's public shapes (8b as in the baseline harness's common.py); tiny for the CPU test
SHAPES = {
    "tiny": dict(hidden_size=64, num_hidden_layers=3, intermediate_size=192, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1024, tie_word_embeddings=False),
    "8b": dict(hidden_size=4096, num_hidden_layers=32, intermediate_size=14336, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False),
    "70b": dict(hidden_size=8192, num_hidden_layers=80, intermediate_size=28672, num_attention_heads=64,
                num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False),
}
NORMS = ("input_layernorm", "post_attention_layernorm")
BLOCKSIZE = 64
STD = 0.02  # transformers' initializer_range for Llama
SHARD_BYTES = 4 * 10 ** 9  # save_pretrained's max_shard_size="4GB"
WORDS = 1000  # tokenizer: <pad> <s> </s> <unk>, then w4 .. w999


def config_kwargs(shape: str) -> dict:
    kw = dict(SHAPES[shape])
    kw.update(hidden_act="silu", max_position_embeddings=131072, rms_norm_eps=1e-5, bos_token_id=1,
              eos_token_id=2, pad_token_id=0, initializer_range=STD, rope_parameters=dict(LLAMA31_ROPE))
    return kw


def linear_shapes(kw: dict) -> dict[str, tuple[int, int]]:
    """(out, in) of each quantized Linear of one decoder layer."""
    h, i = kw["hidden_size"], kw["intermediate_size"]
    hd = h // kw["num_attention_heads"]
    q, kv = kw["num_attention_heads"] * hd, kw["num_key_value_heads"] * hd
    return {"self_attn.q_proj": (q, h), "self_attn.k_proj": (kv, h), "self_attn.v_proj": (kv, h),
            "self_attn.o_proj": (h, q), "mlp.gate_proj": (i, h), "mlp.up_proj": (i, h), "mlp.down_proj": (h, i)}


def bnb_config(storage: str = "uint8"):
    import torch
    from transformers import BitsAndBytesConfig
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_storage=getattr(torch, storage))


# ---- weights -----------------------------------------------------------------------------------------

def _normal(shape, seed: int, slot: int, device):
    """bf16 normal(0, STD) from a generator of its own: the same numbers whatever was drawn before."""
    import torch
    g = torch.Generator(device=device).manual_seed(seed * 1_000_003 + slot)
    return torch.empty(shape, dtype=torch.bfloat16, device=device).normal_(0.0, STD, generator=g)


def _slot(layer: int, k: int) -> int:
    """Each tensor's generator slot: 0 embed_tokens, 1 lm_head, then 8 per layer (7 linears)."""
    return 2 + layer * 8 + k


def bf16_tensors(kw: dict, item, seed: int, device="cpu"):
    """(name, bf16 tensor) of one item of the file order: "embed" (embed_tokens), a decoder layer's
    number, or "head" (the final norm and lm_head)."""
    import torch
    h = kw["hidden_size"]
    if item == "embed":
        yield "model.embed_tokens.weight", _normal((kw["vocab_size"], h), seed, 0, device)
    elif item == "head":
        yield "model.norm.weight", torch.ones(h, dtype=torch.bfloat16, device=device)
        yield "lm_head.weight", _normal((kw["vocab_size"], h), seed, 1, device)
    else:
        for k, (name, shape) in enumerate(linear_shapes(kw).items()):
            yield f"model.layers.{item}.{name}.weight", _normal(shape, seed, _slot(item, k), device)
        for name in NORMS:
            yield f"model.layers.{item}.{name}.weight", torch.ones(h, dtype=torch.bfloat16, device=device)


def file_order(kw: dict) -> list:
    return ["embed", *range(kw["num_hidden_layers"]), "head"]


def quantized_tensors(kw: dict, item, seed: int, device, storage: str) -> dict:
    """One item's tensors as the saved 4-bit model holds them (the decoder layers' Linear weights
    packed, the rest bf16), in host memory."""
    import torch
    from bitsandbytes.functional import quantize_4bit
    out = {}
    for name, w in bf16_tensors(kw, item, seed, device):
        if isinstance(item, int) and w.dim() == 2:
            packed, state = quantize_4bit(w, blocksize=BLOCKSIZE, quant_type="nf4", compress_statistics=True,
                                          quant_storage=getattr(torch, storage))
            del w  # free the bf16 copy before the next weight is drawn
            out[name] = packed.cpu()
            for key, t in state.as_dict(packed=True).items():
                out[f"{name}.{key}"] = t.cpu()
        else:
            out[name] = w.cpu()
    return out


# ---- shards ----------------------------------------------------------------------------------------

def item_bytes(kw: dict, item) -> int:
    """About how many bytes an item takes on disk (to plan the shards before drawing anything)."""
    h, v = kw["hidden_size"], kw["vocab_size"]
    if not isinstance(item, int):
        return v * h * 2
    n = sum(a * b for a, b in linear_shapes(kw).values())
    return n // 2 + n // BLOCKSIZE + 2 * h * 2


def plan_shards(kw: dict, limit: int = SHARD_BYTES) -> list[list]:
    """Items grouped into files of at most `limit` bytes (one item alone may be bigger), in order."""
    shards, cur, size = [], [], 0
    for it in file_order(kw):
        b = item_bytes(kw, it)
        if cur and size + b > limit:
            shards.append(cur)
            cur, size = [], 0
        cur.append(it)
        size += b
    return shards + [cur]


def write_checkpoint(shape: str, path: Path, *, seed: int = 0, device: str = "cpu", storage: str = "uint8",
                     limit: int = SHARD_BYTES) -> dict:
    """Write the shards (and their index when more than one), config.json and the tokenizer. One
    shard is written (safetensors lets go of the GIL) while the next is drawn: at most two in memory."""
    from concurrent.futures import ThreadPoolExecutor

    from safetensors.torch import save_file
    import shutil
    kw = config_kwargs(shape)
    path.mkdir(parents=True, exist_ok=True)
    plan = plan_shards(kw, limit)
    need, free = sum(item_bytes(kw, it) for it in file_order(kw)), shutil.disk_usage(path).free
    if need > free:  # e.g. a container's /dev/shm of 64 MB: say so now, not after a minute of writing
        raise SystemExit(f"{path} has {free / 1e9:.1f} GB free; the {shape} checkpoint needs about {need / 1e9:.1f} GB")
    names = ["model.safetensors"] if len(plan) == 1 else \
        [f"model-{i + 1:05d}-of-{len(plan):05d}.safetensors" for i in range(len(plan))]
    weight_map, total, t0 = {}, 0, time.time()
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending = None
        for group, fname in zip(plan, names):
            tensors = {}
            for it in group:
                tensors.update(quantized_tensors(kw, it, seed, device, storage))
            weight_map.update(dict.fromkeys(tensors, fname))
            total += sum(t.numel() * t.element_size() for t in tensors.values())
            if pending is not None:
                pending.result()
            pending = writer.submit(save_file, tensors, str(path / fname), metadata={"format": "pt"})
            del tensors
            print(f"  {fname}: {group[0]} .. {group[-1]} (+{time.time() - t0:.1f}s)", flush=True)
        pending.result()
    if len(plan) > 1:
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    write_config(kw, path, storage)
    make_tokenizer(path)
    return dict(shards=len(plan), bytes=total, tensors=len(weight_map))


def write_config(kw: dict, path: Path, storage: str) -> None:
    import torch
    from transformers import LlamaConfig
    cfg = LlamaConfig(**kw)
    cfg.architectures = ["LlamaForCausalLM"]
    cfg.dtype = torch.bfloat16
    cfg.quantization_config = bnb_config(storage).to_dict()
    cfg.save_pretrained(str(path))


def make_tokenizer(path: Path) -> None:
    """A word-level tokenizer for the bench's synthetic rows ("w4 w17 ..."); Unsloth's loader and
    Danlu's both want one in the folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({f"w{i}": i for i in range(4, WORDS)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", model_max_length=131072, padding_side="right")
    fast.save_pretrained(str(path))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("path", type=Path)
    ap.add_argument("--device", default=None, help="where weights are drawn and quantized (default: cuda if present)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quant-storage", default="uint8", choices=["uint8", "bfloat16"])
    ap.add_argument("--shard-gb", type=float, default=SHARD_BYTES / 1e9)
    args = ap.parse_args(argv)
    import torch
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.time()
    out = write_checkpoint(args.shape, args.path, seed=args.seed, device=device, storage=args.quant_storage,
                           limit=int(args.shard_gb * 1e9))
    size = sum(f.stat().st_size for f in args.path.iterdir() if f.is_file())
    print(f"built {args.shape} nf4 ({out['tensors']} tensors, {out['shards']} shards, {size / 1e9:.2f} GB on disk) "
          f"on {device} in {time.time() - t0:.1f}s -> {args.path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
