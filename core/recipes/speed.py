"""Speed features of the training recipe, each switchable in TrainConfig and each a no-op on CPU.

    fused_loss  Liger's fused linear cross-entropy: the vocabulary-sized logits are never
                materialised (-5 GiB at micro-batch 4 on an 8B model). Only this Liger kernel is
                used: its RoPE and RMSNorm kernels break torch.compile graphs (liger-kernel 0.8.5).
    compile     torch.compile of every decoder layer (regional compilation): one graph reused by
                all layers, LoRA and the nf4 matmul inside it, checkpointing around it.

Measured effects are in docs/performance.md.
"""
from __future__ import annotations

import torch


def autocast_dtype(cfg, d) -> torch.dtype:
    from core.recipes.common import compute_dtype
    return compute_dtype(cfg, d)


def decoder_layers(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", None)
    layers = getattr(inner, "layers", None)
    return base, layers


def apply(model, cfg, d) -> list[str]:
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
    if cfg.compile and layers is not None:
        import torch._dynamo
        for k in ("recompile_limit", "cache_size_limit"):
            if hasattr(torch._dynamo.config, k):
                setattr(torch._dynamo.config, k, 32)
        dynamic = None if not cfg.packing else False  # packed batches have a fixed length
        for layer in layers:
            layer.compile(dynamic=dynamic)
        feats.append("compile")
    return feats
