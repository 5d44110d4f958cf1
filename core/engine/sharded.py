"""FSDP for QLoRA: the frozen 4-bit base model split over the GPUs, the LoRA adapter whole on each.

    s = decide(cfg, d, source, local, seq)   # Sharding(fsdp, why): core/memory_plan.choose_sharding
    net = wrap(model, d)                      # FSDP around every decoder layer, and a root unit for the rest
    sync_grads(trainable, d)                  # the adapter's gradients summed over the ranks, as DDP would

Only the base model is split. Each decoder layer is one FSDP unit (its weights gathered just before
it runs, forward and backward, and freed after), the embeddings, final norm and output layer form
the root unit. All of a unit's parameters are frozen and of one dtype (the 4-bit bytes are stored as
the compute dtype: common.quantization_config), so FSDP's flat parameters need use_orig_params=False.
The LoRA modules are left out of FSDP (ignored_states): an 8B model's adapter is 42 M parameters,
so every rank keeps it whole, and checkpoints, resume and the saved adapter work exactly as without
FSDP; their gradients are summed in one all-reduce per step. The model is read into host memory
first (common.load_base_model(sharded=True)), so it is never whole on one GPU.

Verified on CPU with gloo (tests/recipes/test_sharded_cpu.py: two processes train the demo model
with the same losses as one). Not measured on GPUs yet; torch.compile is not used under FSDP
(FSDP1 swaps the layers' parameters for views of its flat parameters at every step).
"""
from __future__ import annotations

import functools
import os

import torch
import torch.distributed as dist

from core.engine.common import gpu_memory_cap_gib
from core.memory import GIB, Shape
from core.memory_plan import Sharding, choose_sharding


def free_gib(d) -> float:
    """Free memory for one process: this GPU's, or this machine's RAM shared by its processes."""
    if d.cuda:
        free = torch.cuda.mem_get_info(d.device)[0] / GIB
        cap = gpu_memory_cap_gib()  # a benchmark's smaller card: what is left of the cap
        return free if cap is None else min(free, cap - torch.cuda.memory_reserved(d.device) / GIB)
    import psutil
    return psutil.virtual_memory().available / GIB / max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def min_over_ranks(value: float, d) -> float:
    """Every rank plans against the tightest one, so all choose the same."""
    if d.world < 2:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=d.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return float(t.item())


def model_shape(source: str, local: bool, trust_remote_code: bool) -> Shape | None:
    from transformers import AutoConfig
    try:
        conf = AutoConfig.from_pretrained(source, local_files_only=local, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        return None
    return Shape.from_hf_config(conf.to_dict())


def decide(cfg, d, source: str, local: bool, seq: int) -> Sharding:
    """FSDP or not for this run (the same answer on every rank)."""
    if d.world < 2 or cfg.sharding == "off" or (cfg.sharding == "auto" and not d.cuda):
        return Sharding(False, "")  # one process; or CPU workers, which share one RAM anyway
    shape = model_shape(source, local, cfg.trust_remote_code)
    free = min_over_ranks(free_gib(d), d)
    if shape is None:
        return Sharding(cfg.sharding == "fsdp", "")
    act_bytes = 2 if d.cuda else 4
    return choose_sharding(shape, mode=cfg.sharding, gpus=d.world, free_gib=free, micro_batch_size=cfg.micro_batch_size,
                           seq=seq, quantization=cfg.quantization, lora_rank=cfg.lora_rank,
                           fused_loss=cfg.fused_loss and d.cuda, act_bytes=act_bytes, unit="GPU" if d.cuda else "CPU process")


def adapter_modules(model) -> list[torch.nn.Module]:
    """The modules that own a trainable parameter themselves (LoRA's A and B)."""
    return [m for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))]


def layer_class(model) -> type:
    from core.engine.speed import decoder_layers
    _, layers = decoder_layers(model)
    if layers is None or not len(layers):
        raise RuntimeError("this model has no list of decoder layers that FSDP could split")
    return type(layers[0])


def wrap(model, d):
    """The FSDP root around the PEFT model; the adapter stays whole on this rank's device."""
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
    policy = functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={layer_class(model)})
    adapter = adapter_modules(model)
    net = FSDP(model, auto_wrap_policy=policy, ignored_states=adapter, use_orig_params=False,
               sharding_strategy=ShardingStrategy.FULL_SHARD, device_id=d.device, limit_all_gathers=True)
    for m in adapter:  # ignored modules are not moved by FSDP
        m.to(d.device)
    return net


def sync_grads(params: list[torch.Tensor], d) -> None:
    """Sum the adapter's gradients over the ranks in one all-reduce (the loss is already divided by
    the global count of answer tokens, so the sum is the global gradient)."""
    grads = [p.grad for p in params if p.grad is not None]
    if d.world < 2 or not grads:
        return
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    for g, new in zip(grads, _unflatten_dense_tensors(flat, grads)):
        g.copy_(new)


def remember_adapter_keys(model) -> None:
    """PEFT's file names for the adapter's parameters, taken before wrapping, while the module names
    are still PEFT's own (FSDP inserts `_fsdp_wrapped_module` into them, which PEFT's filter does not
    know). The parameters themselves stay the same objects: FSDP leaves the adapter alone."""
    from peft import get_peft_model_state_dict
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    model._danlu_adapter_keys = {id(v): k for k, v in get_peft_model_state_dict(model, state_dict=named).items()}


def adapter_state_dict(model) -> dict[str, torch.Tensor]:
    """The adapter as PEFT saves it (adapter_model.safetensors names), read from the parameters
    themselves: model.state_dict() would gather every frozen 4-bit weight from all ranks under FSDP."""
    keys = getattr(model, "_danlu_adapter_keys", None)
    if keys is None:
        from peft import get_peft_model_state_dict
        return get_peft_model_state_dict(model)
    return {keys[id(p)]: p.detach() for p in model.parameters() if id(p) in keys}
