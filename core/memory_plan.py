"""The memory plan: per layer, keep the activations, recompute them, or recompute and offload.

    p = plan_memory(shape, mode="auto", micro_batch_size=4, seq=2048, free_gib=139.0)
    p.keep, p.recompute, p.offload   # 32, 0, False on an H200: every layer keeps its activations
    p.layer_modes()                  # ["keep", ...] in layer order (the LAST `keep` layers keep theirs)
    p.why                            # the choice in words (a core.messages.Msg; str() is its English)

Speed against memory, per decoder layer (measured on the 8B shape at micro-batch 4 x 2048, H200):
keeping a layer's activations costs about 1.1 GiB and is the fastest (every layer kept: 15,704
tokens/s at 41 GiB); recomputing it in the backward pass keeps only its input (64 MiB) and costs a
second forward of the layer (all recomputed: 11,873 tokens/s); offloading that input to host memory
as well saves the 64 MiB for about 1% more time (9.1 GiB in all). "auto" keeps as many layers as
the free memory allows, recomputes the rest, and offloads only when even that does not fit;
"lowest" is the plan of the two settings gradient_checkpointing and offload_activations (by
default: every layer recomputed and offloaded, the least GPU memory).

The kept layers are the last ones: their backward runs first, so their memory is free again before
the recomputed layers need a working set of their own.

Long rows: a recomputed layer's working set is mostly its MLP's [tokens x intermediate] buffers
(nine of them at the backward's peak, 3.9 GiB at 16k tokens on the 8B shape, measured on an H200).
The MLP treats every token alone, so from MLP_TILE_TOKENS tokens per row on (and when the layers
are compiled, whose backward then recomputes and differentiates one piece at a time) it runs in
`mlp_tiles` pieces of the row (core.engine.speed.tile_mlp): the same numbers, a working set about
1/mlp_tiles the size.

Sharding (FSDP, 4-bit weights split across the GPUs) is chosen when the weights do not fit one GPU
but fit when split (`choose_sharding`). Pure Python: the page and the recipe share these numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.memory import BYTES_PER_PARAM, CONTEXT_GIB, GIB, Shape, loss_bytes, mlp_live_bytes
from core.messages import Msg

SAFETY = 0.9          # of the free memory: allocator fragmentation, kernels' workspaces
MLP_TILE_TOKENS = 4096  # rows longer than this run a recomputed layer's MLP in pieces of about this size
HEADROOM_GIB = 1.0    # and a little more, for what the model here does not count
# At most this many pieces. Measured on an H200 (8B, compiled, lowest memory, one row): in 16 pieces
# (64k tokens) the compiled backward held 44 of the 48 pieces' buffers at once, as if whole
# (bench/results/memory-peak-64k-lowest-16pieces-h200.txt); in 8 pieces, 11, at 64k, 128k and 256k tokens. The
# peak at 128k fell from 31.7 to 25.5 GiB at the same speed, at 256k from 59.4 to 44.5 GiB.
MLP_TILES_MAX = 8
MODES = ("auto", "lowest")


@dataclass(frozen=True)
class Parts:
    """Bytes of one process's run, by part (see core.memory.estimate, which this refines)."""
    weights: float      # frozen base weights (0 once loaded: they are already out of the free memory)
    fixed: float        # LoRA weights + gradients + AdamW state, the loss, the CUDA context
    keep: float         # one layer's saved activations when it is not recomputed
    input: float        # one layer's input, all that recomputation keeps
    live: float         # the working set of the layer being recomputed in the backward pass


def parts(shape: Shape, *, micro_batch_size: int, seq: int, quantization: str = "4bit", lora_rank: int = 16,
          fused_loss: bool = True, act_bytes: int = 2, loaded: bool = False, shards: int = 1, mlp_tiles: int = 1) -> Parts:
    tokens = micro_batch_size * seq
    weights = shape.linear_params_per_layer * shape.layers * BYTES_PER_PARAM[quantization] + shape.embedding_params * 2
    if shards > 1:  # FSDP: this GPU's share, plus two layers gathered whole (the one in use, the next)
        weights = weights / shards + 2 * shape.linear_params_per_layer * BYTES_PER_PARAM[quantization]
    lora = shape.lora_params_per_rank * lora_rank * 16 / shards  # FSDP splits the adapter and its AdamW state too
    loss = loss_bytes(shape, tokens, fused_loss)
    per_layer = tokens * (shape.hidden * 8 + shape.intermediate * 3) * act_bytes
    context = 0.0 if loaded else CONTEXT_GIB * GIB
    live = tokens * shape.hidden * 8 * act_bytes + mlp_live_bytes(shape, tokens, mlp_tiles, act_bytes)
    return Parts(weights=0.0 if loaded else weights, fixed=lora + loss + context, keep=per_layer,
                 input=tokens * shape.hidden * act_bytes, live=live)


def layers_compiled(compile: bool, on_gpu: bool, sharded: bool) -> bool:
    """Whether the recipe compiles the decoder layers (core.engine.speed.apply): on a GPU, unless FSDP
    splits the model. The page's estimate and the recipe's plan both ask here."""
    return bool(compile) and on_gpu and not sharded


def mlp_tiles(seq: int, tiled: bool) -> int:
    """Pieces a recomputed layer's MLP runs in for rows of `seq` tokens (1: whole); `tiled`: the
    layers are compiled, the only place where pieces lower the peak (an eager recomputation makes
    every piece's buffers before the first is differentiated)."""
    return min(MLP_TILES_MAX, max(1, -(-seq // MLP_TILE_TOKENS))) if tiled and seq > MLP_TILE_TOKENS else 1


@dataclass(frozen=True)
class Plan:
    mode: str             # auto | lowest
    layers: int
    keep: int             # the last `keep` layers keep their activations
    offload: bool         # the recomputed layers' inputs wait in host memory
    need_gib: float       # the estimated peak of this plan
    free_gib: float       # what it was planned against
    why: Msg | str = ""
    mlp_tiles: int = 1    # a recomputed layer's MLP runs in this many pieces of the row

    @property
    def recompute(self) -> int:
        return self.layers - self.keep

    @property
    def checkpointing(self) -> bool:
        return self.recompute > 0

    def layer_modes(self) -> list[str]:
        rest = "offload" if self.offload else "recompute"
        return [rest] * self.recompute + ["keep"] * self.keep

    def to_dict(self) -> dict:
        return dict(mode=self.mode, layers=self.layers, keep=self.keep, recompute=self.recompute, offload=self.offload,
                    need_gib=round(self.need_gib, 1), free_gib=round(self.free_gib, 1), why=str(self.why),
                    mlp_tiles=self.mlp_tiles if self.checkpointing else 1)


def need_bytes(p: Parts, layers: int, keep: int, offload: bool) -> float:
    recompute = layers - keep
    saved = keep * p.keep + (2 * p.input if offload and recompute else recompute * p.input)
    return p.weights + p.fixed + saved + (p.live if recompute else 0.0)


def plan_memory(shape: Shape, *, mode: str = "auto", free_gib: float, gradient_checkpointing: bool = True,
                offload_activations: bool = True, can_offload: bool = True, tiled: bool = False, **kw) -> Plan:
    """The plan for `mode`; `kw` are parts()'s (micro_batch_size, seq, quantization, lora_rank, ...);
    `tiled`: long rows may run a recomputed layer's MLP in pieces (compiled layers only)."""
    tiles = mlp_tiles(kw.get("seq", 0), tiled)
    p = parts(shape, mlp_tiles=tiles, **kw)
    L = shape.layers
    if mode == "lowest":
        keep = 0 if gradient_checkpointing else L
        offload = gradient_checkpointing and offload_activations and can_offload
    else:
        keep, offload = _auto(p, L, max(0.0, free_gib * SAFETY - HEADROOM_GIB) * GIB, can_offload)
    need = need_bytes(p, L, keep, offload) / GIB
    why = _why(mode, L, keep, offload, need, free_gib)
    if tiles > 1 and keep < L:
        share = round(100 * mlp_live_bytes(shape, 1, tiles) / mlp_live_bytes(shape, 1, 1))
        why = Msg("plan.with_tiles", plan=why, tiles=tiles, share=share)
    return Plan(mode, L, keep, offload, need, free_gib, why, tiles if keep < L else 1)


def _auto(p: Parts, L: int, budget: float, can_offload: bool) -> tuple[int, bool]:
    """The most layers kept that fit the budget; then recompute; offload only when nothing else fits."""
    if need_bytes(p, L, L, False) <= budget:
        return L, False
    if need_bytes(p, L, 0, False) > budget:
        return 0, can_offload
    # need grows by (keep - input) per kept layer; solve for the largest count that fits
    room = budget - need_bytes(p, L, 0, False)
    k = int(room // max(1.0, p.keep - p.input))
    return max(0, min(L - 1, k)), False


def _why(mode: str, L: int, keep: int, offload: bool, need: float, free: float) -> Msg:
    """The plan in words."""
    n, f = f"{need:.1f}", f"{free:.1f}"
    if mode == "lowest":
        if keep == L:
            return Msg("plan.keep_all_set", need=n)
        where = Msg("plan.where_offload") if offload else Msg("plan.where_input")
        return Msg("plan.lowest_set", where=where, need=n)
    if keep == L:
        return Msg("plan.keep_all", need=n, free=f)
    if keep > 0:
        return Msg("plan.keep_some", keep=keep, layers=L, rest=L - keep, free=f, need=n)
    if offload:
        return Msg("plan.offload_all", need=n, free=f)
    return Msg("plan.recompute_all", free=f, need=n)


# --- several GPUs: each holds the whole model (DDP), or a share of it (FSDP) -----------------------
SHARDING = ("auto", "off", "fsdp")


@dataclass(frozen=True)
class Sharding:
    fsdp: bool
    why: Msg | str  # "" when there is nothing to say


def choose_sharding(shape: Shape, *, mode: str, gpus: int, free_gib: float, unit: str = "GPU", **kw) -> Sharding:
    """FSDP when asked, or ("auto") when the run does not fit one GPU at its lowest memory but
    does with the weights split over `gpus`. `unit`: what a process runs on (GPU, or CPU process
    in tests). `kw`: parts()'s arguments."""
    units = Msg("plan.units_gpu" if unit == "GPU" else "plan.units_cpu")
    unit = Msg("plan.unit_gpu" if unit == "GPU" else "plan.unit_cpu")
    if gpus < 2:
        return Sharding(False, "" if mode != "fsdp" else Msg("shard.one", unit=unit))
    if mode == "off":
        return Sharding(False, "")
    budget = max(0.0, free_gib * SAFETY - HEADROOM_GIB) * GIB
    whole = need_bytes(parts(shape, **kw), shape.layers, 0, True)
    split = need_bytes(parts(shape, shards=gpus, **kw), shape.layers, 0, True)
    if mode == "fsdp":
        return Sharding(True, Msg("shard.set", gpus=gpus, units=units, split=f"{split / GIB:.1f}", unit=unit))
    if whole <= budget or split > budget:
        return Sharding(False, "" if whole <= budget else
                        Msg("shard.too_big", gpus=gpus, units=units, split=f"{split / GIB:.1f}", unit=unit,
                            free=f"{free_gib:.1f}"))
    return Sharding(True, Msg("shard.auto", unit=unit, whole=f"{whole / GIB:.1f}", free=f"{free_gib:.1f}", gpus=gpus,
                              units=units, split=f"{split / GIB:.1f}"))
