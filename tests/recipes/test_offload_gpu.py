"""Activation offload (core/engine/speed.py) moves only where tensors live, never their values: the
gradients with offload equal those without within the run-to-run noise of the GPU's own kernels
(attention and embedding backward use atomics, so two plain runs differ in the last bits too; a
race in the offload copies would give wrong activations, errors of the gradients' own size), and
less GPU memory is held. CUDA only
(on CPU the feature is off by design); run on a GPU machine with `pytest -m gpu tests/recipes`."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.gpu


def grads_and_peak(offload_on: bool, compiled: bool):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from core.engine import speed
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=512, intermediate_size=1408, num_hidden_layers=6, num_attention_heads=8,
                      num_key_value_heads=4, vocab_size=1000, max_position_embeddings=2048)
    model = LlamaForCausalLM(cfg).cuda().to(torch.bfloat16)
    model.train()
    layers = model.model.layers
    if compiled:
        speed.compile_layers(layers, in_graph=True, dynamic=False)
    else:
        for layer in layers:
            speed.checkpoint_inside(layer)
    ids = torch.randint(0, 1000, (4, 1024), generator=torch.Generator().manual_seed(1)).cuda()
    train = SimpleNamespace(offload_activations=offload_on, gradient_checkpointing=True)
    ctx = speed.activation_offload(train, SimpleNamespace(cuda=True), cfg.hidden_size)
    grads, peak = None, 0
    for _ in range(3):  # the pinned-buffer pool is reused from the second step on
        model.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with ctx():
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        grads = [p.grad.float().cpu() for p in model.parameters() if p.grad is not None]
    return grads, peak


@pytest.mark.parametrize("compiled", [False, True])
def test_offload_changes_nothing_but_memory(compiled):
    plain, plain_peak = grads_and_peak(False, compiled)
    again, _ = grads_and_peak(False, compiled)
    off, off_peak = grads_and_peak(True, compiled)
    assert len(plain) == len(off) == len(again) > 0
    for a, b, c in zip(plain, off, again):
        scale = a.abs().max().item() + 1e-12
        noise = (a - c).abs().max().item()
        err = (a - b).abs().max().item()
        assert err <= max(4 * noise, 2e-2 * scale), (err, noise, scale)
    # Compiled layers save their checkpointed input through autograd, where offload takes it (an 8B
    # model at 4 x 2048 tokens: 10.8 -> 9.1 GiB, bench/run_gpu.sh); eager non-reentrant checkpointing
    # keeps inputs by reference, so there only the head's input moves. This model is small (4 MiB
    # per layer input) and copies still in flight hold their memory: a strict drop is what holds.
    assert off_peak < plain_peak if compiled else off_peak <= plain_peak, (off_peak, plain_peak)
