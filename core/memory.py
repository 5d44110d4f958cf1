"""Estimate GPU memory for a LoRA/QLoRA run, so the GUI can warn before a job runs out of memory.

The model is counted part by part (frozen weights at their storage width, LoRA weights with fp32
AdamW state, saved activations, the loss), which is what `torch.cuda.max_memory_allocated` sees.
Checked against the H100/H200 baseline in ../shared/reference/gpu-baseline.md (Llama-3.1-8B shape,
seq 2048, fused loss, checkpointing): measured 6.6 / 9.8 / 12.6 GiB at micro-batch 1 / 4 / 8; this
estimate gives 7.3 / 10.0 / 13.5 before the CUDA context (about 0.5-1 GiB per process), which
`total_gib` adds on top.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.messages import Msg

GIB = 2 ** 30
# bytes per frozen parameter: nf4 packs 2 per byte plus a double-quantised scale per 64 values
BYTES_PER_PARAM = {"4bit": 0.52, "8bit": 1.02, "none": 2.0}
CONTEXT_GIB = 0.8


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied_embeddings: bool = False
    head_dim: int = 0  # 0: hidden // heads (Gemma sets its own)

    @property
    def kv_width(self) -> int:
        return self.kv_heads * (self.head_dim or self.hidden // self.heads)

    @property
    def q_width(self) -> int:
        return self.heads * (self.head_dim or self.hidden // self.heads)

    @classmethod
    def from_dict(cls, d: dict) -> "Shape":
        return cls(hidden=int(d["hidden"]), layers=int(d["layers"]), intermediate=int(d["intermediate"]),
                   vocab=int(d["vocab"]), heads=int(d["heads"]), kv_heads=int(d.get("kv_heads", d["heads"])),
                   tied_embeddings=bool(d.get("tied_embeddings", False)), head_dim=int(d.get("head_dim", 0)))

    @classmethod
    def from_hf_config(cls, c: dict) -> "Shape | None":
        try:
            return cls(hidden=c["hidden_size"], layers=c["num_hidden_layers"],
                       intermediate=c.get("intermediate_size") or 4 * c["hidden_size"],
                       vocab=c["vocab_size"], heads=c["num_attention_heads"],
                       kv_heads=c.get("num_key_value_heads") or c["num_attention_heads"],
                       tied_embeddings=bool(c.get("tie_word_embeddings", False)),
                       head_dim=int(c.get("head_dim") or 0))
        except (KeyError, TypeError):
            return None

    @property
    def linear_params_per_layer(self) -> int:
        h, q, kv = self.hidden, self.q_width, self.kv_width
        return h * q * 2 + h * kv * 2 + 3 * h * self.intermediate

    @property
    def lora_params_per_rank(self) -> int:
        """Sum over adapted linears of (in + out) for one rank, all-linear targets."""
        h, q, kv, i = self.hidden, self.q_width, self.kv_width, self.intermediate
        per_layer = (h + q) * 2 + (h + kv) * 2 + (h + i) * 3
        return per_layer * self.layers

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def total_params(self) -> int:
        return self.linear_params_per_layer * self.layers + self.embedding_params


@dataclass(frozen=True)
class Estimate:
    weights_gib: float
    lora_gib: float
    activations_gib: float
    loss_gib: float
    context_gib: float

    @property
    def total_gib(self) -> float:
        return self.weights_gib + self.lora_gib + self.activations_gib + self.loss_gib + self.context_gib

    def to_dict(self) -> dict:
        d = {k: round(getattr(self, k), 2) for k in ("weights_gib", "lora_gib", "activations_gib", "loss_gib", "context_gib")}
        d["total_gib"] = round(self.total_gib, 2)
        return d


def estimate(shape: Shape, *, quantization: str = "4bit", lora_rank: int = 16, micro_batch_size: int = 4,
             max_seq_length: int = 1024, gradient_checkpointing: bool = True, fused_loss: bool = True,
             act_bytes: int = 2, offload_activations: bool = False, mlp_tiles: int = 1) -> Estimate:
    """`mlp_tiles`: the pieces a recomputed layer's MLP runs in (core.memory_plan.mlp_tiles)."""
    tokens = micro_batch_size * max_seq_length
    weights = shape.linear_params_per_layer * shape.layers * BYTES_PER_PARAM[quantization] \
        + shape.embedding_params * 2
    lora = shape.lora_params_per_rank * lora_rank * 16  # fp32 weight + grad + two AdamW moments
    # one layer's working set while it runs forward/backward (attention via SDPA, no n^2 scores)
    layer_live = tokens * shape.hidden * 8 * act_bytes + mlp_live_bytes(shape, tokens, mlp_tiles, act_bytes)
    layer_input = tokens * shape.hidden * act_bytes  # what checkpointing keeps per layer
    if gradient_checkpointing and offload_activations:
        acts = 2 * layer_input + layer_live  # the rest waits in host memory; one in use, one prefetched
    elif gradient_checkpointing:
        acts = layer_input * shape.layers + layer_live
    else:
        acts = layer_live * shape.layers
    return Estimate(weights / GIB, lora / GIB, acts / GIB, loss_bytes(shape, tokens, fused_loss) / GIB, CONTEXT_GIB)


def mlp_live_bytes(shape: Shape, tokens: int, tiles: int = 1, act_bytes: int = 2) -> float:
    """The [tokens x intermediate] buffers of a recomputed layer's MLP at the backward's peak: three
    whole ones, or, run in `tiles` pieces of the row (core.memory_plan.mlp_tiles), three of the piece
    at work and one whole row's worth. Measured on an H200 (8B, 8 pieces, rows of 64k, 128k and 256k
    tokens): 11 piece-sized buffers alive at the peak (bench/results/memory-peak-{64k-lowest-8pieces,
    128k-lowest,256k-lowest}-h200.txt)."""
    whole = tokens * shape.intermediate * act_bytes
    return 3 * whole if tiles <= 1 else whole * (1 + 3 / tiles)


def loss_bytes(shape: Shape, tokens: int, fused_loss: bool) -> float:
    """The loss's memory: fused, one chunk of logits and, per token, three fp32 copies of the hidden
    size; unfused, the fp32 logits and their gradient. Three copies is a calibration, not a count:
    with one, the plan was 7-10% under the peaks measured on an H200 at 64k-256k tokens per row
    (bench/results/long-memory-h200.jsonl); with three it is from 0.4% under (16k) to 8% over (256k). What the loss holds at its
    own peak is more still: 13.6 GiB made at the loss call at 128k tokens, about 109 KiB a token
    (bench/results/memory-peak-128k-auto-h200.txt), but the recomputed layers' peak comes later,
    when most of that is gone."""
    if fused_loss:
        return tokens * shape.hidden * 4 * 3 + 1024 * shape.vocab * 4
    return tokens * shape.vocab * 4 * 2


def sequences_per_example(method: str) -> int:
    """Sequences one example puts through the model in a training step: a preference step (dpo, orpo)
    runs the chosen and the rejected answer of each pair in one forward (core/engine/preference.py),
    twice a supervised step's rows at the same micro-batch. DPO's reference log-probabilities are
    computed once before the first step, so they add nothing here."""
    return 2 if method in ("dpo", "orpo") else 1


def fit_advice(est: Estimate, free_gib: float) -> Msg:
    """Plain words: will it fit, and if not what to change first."""
    need = est.total_gib
    if need <= free_gib * 0.9:
        return Msg("memory.fits", need=f"{need:.1f}", free=f"{free_gib:.1f}")
    steps = []
    if est.activations_gib + est.loss_gib > est.weights_gib * 0.5:
        steps.append(Msg("memory.smaller_batch"))
    steps.append(Msg("memory.4bit"))
    return Msg("memory.no_fit", need=f"{need:.1f}", free=f"{free_gib:.1f}", steps=steps)


def model_shape(base_model: str, ws, *, origin: str):
    """(Shape, name) of a model from its preset or its local folder's config.json; (None, why) when
    unknown. origin (core.trust): a folder named in the page must lie inside the allowed folders."""
    from core import presets, trust
    from core.model_folder import folder_config
    p = presets.model_for((base_model or "").strip())
    if p is not None and p.data.get("shape"):
        return Shape.from_dict(p.data["shape"]), p.name
    base_model = trust.check_base_model(base_model, ws, origin)
    path = Path(base_model or "").expanduser()
    shape = Shape.from_hf_config(folder_config(base_model))
    if shape:
        return shape, path.name
    return None, base_model
