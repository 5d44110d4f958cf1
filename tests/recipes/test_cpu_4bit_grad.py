"""bitsandbytes on a CPU with AVX512-BF16 repacks a 4-bit layer's weights at its first eval-mode
forward without gradients, and its matmul on repacked weights has no backward: after a validation
pass (or DPO's reference pass) the gradient stopped at every frozen layer. Training keeps the usual
layout (core.engine.common.keep_4bit_differentiable)."""
from __future__ import annotations

import pytest
import torch

bnb = pytest.importorskip("bitsandbytes")

from core.engine.common import keep_4bit_differentiable  # noqa: E402


def layer() -> torch.nn.Module:
    torch.manual_seed(0)
    w = torch.randn(128, 256) / 16
    q = bnb.nn.Linear4bit(256, 128, bias=False, compute_dtype=torch.float32, quant_type="nf4")
    q.weight = bnb.nn.Params4bit(w, requires_grad=False, quant_type="nf4")
    return torch.nn.Sequential(q.to("cpu"))


def input_grad_after_an_eval_pass(model, x: torch.Tensor) -> torch.Tensor | None:
    model.eval()
    with torch.no_grad():
        model(x)
    model.train()
    x = x.clone().requires_grad_(True)
    model(x).pow(2).sum().backward()
    return x.grad


def test_the_gradient_still_flows_through_a_4bit_layer_after_an_eval_pass():
    model = layer()
    assert keep_4bit_differentiable(model) in (0, 1)  # 0 on a CPU without AVX512-BF16: nothing to keep
    q = model[0]
    x = torch.randn(4, 256)
    grad = input_grad_after_an_eval_pass(model, x)
    assert not getattr(q.weight.quant_state, "packing_format_for_cpu", False)
    dense = bnb.functional.dequantize_4bit(q.weight.data, q.weight.quant_state)
    xd = x.clone().requires_grad_(True)
    (xd @ dense.t()).pow(2).sum().backward()  # the same weights, dense
    assert grad is not None and torch.allclose(grad, xd.grad, rtol=1e-4, atol=1e-5)


def test_without_it_the_gradient_is_lost_where_bitsandbytes_repacks():
    model = layer()
    if not getattr(model[0], "support_avx512bf16_for_cpu", False):
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes does not repack here")
    assert input_grad_after_an_eval_pass(model, torch.randn(4, 256)) is None  # the defect this guards against


def test_the_training_recipe_builds_its_4bit_model_with_the_gradient_kept(home):
    """The recipe's own build_model on the demo model, 4-bit on this CPU: after an eval-mode pass
    without gradients, the LoRA weights of the first layer still get a gradient."""
    from core.config import TrainConfig
    from core.engine.common import setup_dist
    from core.models import resolve_model
    from core.recipes.train import build_model

    cfg = TrainConfig(quantization="4bit", compile=False)
    d = setup_dist()
    model, net, _fsdp, _info = build_model(cfg, d, resolve_model(cfg.base_model, builtin="require"), 32, None)
    ids = torch.arange(1, 17).unsqueeze(0)
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    model.train()
    net(input_ids=ids, labels=ids).loss.backward()
    first = [p for n, p in model.named_parameters() if p.requires_grad and ".layers.0." in n and "lora_B" in n]  # A gets none while B is 0
    assert first and all(p.grad is not None and p.grad.abs().sum() > 0 for p in first)
