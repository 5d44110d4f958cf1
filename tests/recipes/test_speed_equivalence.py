"""Speed must not change what is learned: the compiled layers with the checkpoint inside the
compiled region give the same losses and gradients as the plain eager model.

On CPU we compile with the `aot_eager` backend: it runs the same Dynamo tracing, the same
checkpoint region and the same AOTAutograd forward/backward partition (with recomputation) as on a
GPU, only without Inductor's generated kernels.
"""
import copy

import pytest
import torch

from core.config import TrainConfig
from core.engine.common import Dist
from core.engine.speed import compile_layers, decoder_layers
from core.recipes.train import add_lora


def losses(model, batches, lr=1e-2):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    out = []
    for x in batches:
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        out.append(loss.item())
    return out


@pytest.mark.slow
def test_checkpoint_inside_compiled_layers_learns_the_same(home):
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    d = Dist(0, 1, 0, torch.device("cpu"), None)
    cfg = TrainConfig(quantization="none", dataset="x", gradient_checkpointing=True)
    base = AutoModelForCausalLM.from_pretrained(home / "models" / "danlu-tiny", dtype=torch.float32)
    plain = add_lora(copy.deepcopy(base), TrainConfig(quantization="none", dataset="x", gradient_checkpointing=False), d)
    fast = add_lora(copy.deepcopy(base), cfg, d)
    fast.load_state_dict(plain.state_dict())  # identical LoRA initialisation
    _, layers = decoder_layers(fast)
    compile_layers(layers, in_graph=True, backend="aot_eager")
    plain.train(), fast.train()
    g = torch.Generator().manual_seed(1)
    batches = [torch.randint(5, 300, (2, 48), generator=g)] * 8  # one batch again: the loss must fall
    from torch._dynamo.utils import counters
    counters.clear()
    a, b = losses(plain, batches), losses(fast, batches)
    assert counters["stats"]["unique_graphs"] >= 1, "the layers were not compiled"
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert a[-1] < a[0] * 0.95  # it learns at all
    for x, y in zip(a, b):
        assert abs(x - y) < 1e-4 * max(1.0, abs(x)), (a, b)
