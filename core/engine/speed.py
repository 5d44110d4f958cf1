"""Speed features of the training recipe, each switchable in TrainConfig and each a no-op on CPU.

    fused_loss  Liger's fused linear cross-entropy: the vocabulary-sized logits are never
                materialised (-5 GiB at micro-batch 4 on an 8B model). Only this Liger kernel is
                used: its RoPE and RMSNorm kernels break torch.compile graphs (liger-kernel 0.8.5).
    compile     torch.compile of every decoder layer (regional compilation): one graph reused by
                all layers, LoRA and the nf4 matmul inside it. With gradient checkpointing on, the
                checkpoint is moved INSIDE the compiled region, so the recomputation becomes part of
                one compiled backward graph instead of a second eager-dispatched forward (measured on
                an H100: the outside-the-graph recompute cost almost as much as forward + backward at
                micro-batch 1, which is launch-bound).

Measured effects are in docs/performance.md.
"""
from __future__ import annotations

import functools
import os

import torch
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

from core import knobs
from core.memory_plan import layers_compiled


def autocast_dtype(cfg, d) -> torch.dtype:
    from core.engine.common import compute_dtype
    return compute_dtype(cfg, d)


def decoder_layers(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", None)
    layers = getattr(inner, "layers", None)
    return base, layers


def plan_for(model, cfg, d, seq: int, shards: int = 1):
    """The memory plan for this run (core/memory_plan.py), against this rank's free memory (the
    tightest rank's, so every rank plans the same): on a GPU after the weights are on it, on the
    CPU the RAM the workers share. `shards` > 1: the weights are still in host memory, FSDP will
    put 1/shards of them on the GPU."""
    from core.memory import Shape
    from core.memory_plan import plan_memory
    from core.engine.sharded import free_gib, min_over_ranks
    shape = Shape.from_hf_config(model.config.to_dict())
    free = min_over_ranks(free_gib(d), d)
    act_bytes = torch.finfo(autocast_dtype(cfg, d)).bits // 8
    mode = cfg.memory_plan if shape is not None else "lowest"
    shape = shape or Shape(hidden=model.config.hidden_size, layers=len(decoder_layers(model)[1] or []) or 1,
                           intermediate=4 * model.config.hidden_size, vocab=1, heads=1, kv_heads=1)
    return plan_memory(shape, mode=mode, free_gib=free, gradient_checkpointing=cfg.gradient_checkpointing,
                       offload_activations=cfg.offload_activations, can_offload=d.cuda, tiled=will_compile(cfg, d, shards),
                       micro_batch_size=cfg.micro_batch_size,
                       seq=seq, quantization=cfg.quantization, lora_rank=cfg.lora_rank, fused_loss=cfg.fused_loss and d.cuda,
                       act_bytes=act_bytes, loaded=shards == 1, shards=shards)


def will_compile(cfg, d, shards: int = 1) -> bool:
    """speed.apply compiles the decoder layers (the recipe passes allow_compile=False under FSDP)."""
    return layers_compiled(cfg.compile, d.cuda, sharded=shards > 1)


def apply_plan(model, plan) -> None:
    """Per decoder layer: the kept ones are not checkpointed (add_lora switched checkpointing on for
    all when any layer is recomputed); transformers reads each layer's own flag. The recomputed
    layers' MLPs run in the plan's pieces of the row."""
    _, layers = decoder_layers(model)
    if layers is None:
        return
    for layer, mode in zip(layers, plan.layer_modes()):
        if hasattr(layer, "gradient_checkpointing"):
            layer.gradient_checkpointing = mode != "keep"
        if mode != "keep":
            tile_mlp(layer, plan.mlp_tiles)


def tile_mlp(layer, tiles: int) -> bool:
    """Run the layer's MLP on `tiles` pieces of the row, one after the other. The MLP treats each
    token alone, so the result is the same; inside a compiled, checkpointed layer the backward then
    recomputes and differentiates one piece at a time, and its [tokens x intermediate] buffers are
    one piece's (core/memory_plan.py). The number of pieces is fixed, not their size, so rows of
    another width do not make another graph."""
    mlp = getattr(layer, "mlp", None)
    if mlp is None or tiles <= 1 or getattr(mlp, "_danlu_tiles", 1) > 1:
        return False
    whole = mlp.forward

    def forward(x, *args, **kwargs):
        if x.dim() < 2 or x.shape[-2] < 2 * tiles:
            return whole(x, *args, **kwargs)
        return torch.cat([whole(part, *args, **kwargs) for part in x.tensor_split(tiles, dim=-2)], dim=-2)

    mlp.forward = forward
    mlp._danlu_tiles = tiles
    return True


def keep_compile_caches(run_dir) -> None:
    """torch.compile's caches (Inductor's graphs and kernels, Triton's binaries) in the workspace
    (WORKSPACE/cache/compile), not in /tmp: a second run of the same shape, even after a reboot,
    skips most of the compile time. A value the user set is kept."""
    from pathlib import Path
    from core.workspace import default_home
    run_dir = Path(run_dir)
    ws = run_dir.parent.parent if run_dir.parent.name == "runs" else default_home()
    root = ws / "cache" / "compile"
    for var, sub in (("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("TRITON_CACHE_DIR", "triton")):
        if not os.environ.get(var):
            os.environ[var] = str(root / sub)
            (root / sub).mkdir(parents=True, exist_ok=True)


def apply(model, cfg, d, allow_compile: bool = True) -> list[str]:
    """Apply what helps on this device; return the names of the features in effect."""
    feats = []
    if not d.cuda:
        return feats
    base, layers = decoder_layers(model)
    if cfg.fused_loss:
        try:
            from liger_kernel.transformers import _apply_liger_kernel_to_instance
            _apply_liger_kernel_to_instance(model=base, rope=False, rms_norm=False, swiglu=False,
                                            cross_entropy=False, fused_linear_cross_entropy=True)
            feats.append("fused_loss")
        except Exception as e:  # missing package or an unsupported architecture: plain loss
            print(f"[danlu] fused loss unavailable ({type(e).__name__}: {e}); using the standard loss", flush=True)
    if cfg.compile and layers is not None and allow_compile:
        in_graph = knobs.get(knobs.CKPT_IN_GRAPH, "1") != "0"
        # packed batches have one width for the whole run (sft_data.batch_width): one static graph
        compile_layers(layers, in_graph, dynamic=None if not cfg.packing else False)
        ckpt = any(getattr(layer, "_danlu_ckpt_in_graph", False) for layer in layers)
        feats += ["compile"] + (["checkpoint_in_graph"] if ckpt else [])
    return feats


def compile_layers(layers, in_graph: bool, dynamic=None, backend: str | None = None) -> None:
    """Regional compilation: every decoder layer gets Module.compile(); the layers that the memory
    plan checkpoints share one graph (with the checkpoint inside when `in_graph`), the kept ones another."""
    import torch._dynamo
    for k in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, k):
            setattr(torch._dynamo.config, k, 32)
    kw = {"dynamic": dynamic} | ({"backend": backend} if backend else {})
    for layer in layers:
        if in_graph and getattr(layer, "gradient_checkpointing", False):
            checkpoint_inside(layer)
            layer._danlu_ckpt_in_graph = True
        layer.compile(**kw)


def checkpoint_inside(layer) -> None:
    """Checkpoint the layer's forward from inside the compiled call, not around it.

    transformers' own per-layer checkpointing is switched off for this layer; Dynamo then traces
    torch.utils.checkpoint as one region whose recomputation AOTAutograd places in the compiled
    backward graph.
    """
    layer.gradient_checkpointing = False
    inner = layer.forward
    kw = {}
    if knobs.get(knobs.CKPT_POLICY, "all") == "all":
        # Without a policy the compiler's partitioner keeps the outputs of some ops (here the nf4
        # matmuls) instead of recomputing them, which saves less memory; MUST_RECOMPUTE everything
        # gives true checkpointing (only the layer input is kept).
        kw["context_fn"] = functools.partial(create_selective_checkpoint_contexts, _recompute_everything)

    def forward(*args, **kwargs):
        if layer.training and torch.is_grad_enabled():
            return checkpoint(inner, *args, use_reentrant=False, **kw, **kwargs)
        return inner(*args, **kwargs)

    layer.forward = forward


def _recompute_everything(ctx, op, *args, **kwargs):
    return CheckpointPolicy.MUST_RECOMPUTE


def activation_offload(cfg, d, hidden_size: int, enabled: bool | None = None):
    """A context factory: within one micro-batch's forward and backward, the large saved activations
    (the layer inputs kept by gradient checkpointing: 64 MiB per layer for an 8B model at 4 x 2048
    tokens) live in pinned CPU memory instead of on the GPU. A no-op context when off or on CPU.

    The copies run on a side stream so they overlap compute: forward copies each layer input out as
    soon as it is produced; backward, when it asks for layer i's input, also starts bringing back
    layer i-1's, which the next backward step needs. The first version copied on the compute stream
    and cost 8% of the step at micro-batch 4 on an H100."""
    from contextlib import contextmanager, nullcontext
    wanted = (cfg.offload_activations and cfg.gradient_checkpointing) if enabled is None else enabled
    if not (wanted and d.cuda):  # `enabled`: the memory plan's choice
        return nullcontext
    side = torch.cuda.Stream()
    pool: dict = {}  # (shape, dtype) -> free pinned host buffers, reused across micro-batches

    def offloadable(t) -> bool:
        # only activation-sized tensors: (..., hidden) in the compute dtype, never parameters
        return not (isinstance(t, torch.nn.Parameter) or t.device.type != "cuda" or t.dim() < 2
                    or t.shape[-1] != hidden_size or t.numel() < (1 << 20))

    @contextmanager
    def offload():
        saved: list[_Offloaded] = []

        def pack(t):
            if not offloadable(t):
                return t
            entry = _Offloaded(t, pool, side, len(saved))
            if saved:  # the previous layer's copy out was issued a layer ago: its GPU input can go
                saved[-1].settle()
            saved.append(entry)
            return entry

        def unpack(packed):
            if not isinstance(packed, _Offloaded):
                return packed
            out = packed.take()
            if packed.index > 0:  # backward runs layers in reverse: fetch the one it needs next
                saved[packed.index - 1].prefetch()
            return out

        try:
            with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
                yield
        finally:
            for entry in saved:  # a tensor never unpacked (e.g. no backward) returns its buffer too
                entry.release()

    return offload


class _Offloaded:
    """One saved activation in pinned host memory, with events ordering its two copies.

    Every GPU buffer here belongs to the compute stream: the copies on the side stream are ordered
    against it with events, never with record_stream. A buffer handed to another stream with
    record_stream is freed only once the GPU has caught up with the CPU, which runs several layers
    ahead: on an H200 at 16k tokens eight prefetched layer inputs (1 GiB) were still held at the
    backward's peak. A compute-stream buffer is reusable as soon as it is dropped."""

    def __init__(self, t: torch.Tensor, pool: dict, side, index: int):
        self.index, self.side, self.pool = index, side, pool
        self.key, self.device, self.gpu = (tuple(t.shape), t.dtype), t.device, None
        free = pool.setdefault(self.key, [])
        self.host = free.pop() if free else torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        side.wait_stream(torch.cuda.current_stream())  # t is complete before the copy reads it
        with torch.cuda.stream(side):
            self.host.copy_(t, non_blocking=True)
            self.copied = torch.cuda.Event()
            self.copied.record(side)
        self.src = t  # held until settle(): the copy out reads it
        self.fetched = None

    def settle(self) -> None:
        """Drop the GPU original once the compute stream waits for its copy out (issued a layer
        earlier, so the wait costs nothing): it is then freed in the compute stream's order."""
        if self.src is not None:
            torch.cuda.current_stream().wait_event(self.copied)
            self.src = None

    def prefetch(self) -> None:
        if self.fetched is not None or self.host is None or self.src is not None:  # src: take() uses it as is
            return
        compute = torch.cuda.current_stream()
        self.gpu = torch.empty(self.key[0], dtype=self.key[1], device=self.device)  # a compute-stream buffer
        self.side.wait_stream(compute)  # the buffer's earlier users, queued on the compute stream, come first
        with torch.cuda.stream(self.side):  # the side stream already finished the copy out (stream order)
            self.gpu.copy_(self.host, non_blocking=True)
            self.fetched = torch.cuda.Event()
            self.fetched.record(self.side)

    def take(self) -> torch.Tensor:
        if self.host is None and self.gpu is None:
            raise RuntimeError("an offloaded activation was used twice in one backward (retain_graph is not supported "
                               "with offload_activations)")
        if self.src is not None:  # the last layer's input is still on the GPU: no copy back
            out, self.src = self.src, None
            torch.cuda.current_stream().wait_event(self.copied)  # its copy out ends before it can be freed
        else:
            self.prefetch()
            torch.cuda.current_stream().wait_event(self.fetched)
            out, self.gpu = self.gpu, None
        self.release()
        return out

    def release(self) -> None:
        # The host buffer is written next by a later copy out on the same side stream, which runs
        # after this entry's copy back: stream order keeps it safe to hand back now.
        self.settle()
        if self.gpu is not None:  # prefetched, never taken: the copy back must end before the buffer is reused
            torch.cuda.current_stream().wait_event(self.fetched)
            self.gpu = None
        if self.host is not None:
            self.pool.setdefault(self.key, []).append(self.host)
            self.host = None
