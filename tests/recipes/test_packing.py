"""Packing must not change what is learned: rows of different lengths packed into fixed-width
sequences give the same loss and the same gradients as the same rows one by one (documents never
attend to each other: per-document position ids, no attention mask, transformers' block-diagonal
mask), and only real tokens are counted. The memory plan's per-layer choice is applied and learns
the same as checkpointing every layer."""
import copy

import pytest
import torch

from core.config import TrainConfig
from core.memory_plan import Plan
from core.engine.common import Dist
from core.engine.sft_data import IGNORE, Encoded, batch_width, collate, pack
from core.engine.speed import apply_plan, decoder_layers
from core.recipes.train import add_lora

CPU = Dist(0, 1, 0, torch.device("cpu"), None)


@pytest.fixture(scope="module")
def tiny(demo_model_dir):
    from transformers import AutoModelForCausalLM
    return {impl: AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32, attn_implementation=impl)
            for impl in ("sdpa", "eager")}


def rows(lengths, seed=0) -> list[Encoded]:
    """Realistic rows: a prompt that is not learned, then an answer that is; every third row is a
    plain document whose every token is learned (its first one too, unless packing masks it)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(lengths):
        ids = torch.randint(5, 390, (n,), generator=g).tolist()
        cut = 0 if i % 3 == 0 else max(1, n // 3)
        out.append(Encoded(ids, [IGNORE] * cut + ids[cut:]))
    return out


def loss_sum_unpacked(model, items) -> tuple[torch.Tensor, int]:
    total, n = 0.0, 0
    for it in items:
        ids, labels = torch.tensor([it.input_ids]), torch.tensor([it.labels])
        k = int((labels[:, 1:] != IGNORE).sum())
        total = total + model(input_ids=ids, labels=labels, num_items_in_batch=1).loss  # a sum with 1 item
        n += k
    return total, n


def loss_sum_packed(model, items, max_len) -> tuple[torch.Tensor, int, int]:
    seqs = pack(items, max_len, seed=3)
    b = collate(seqs, pad_id=0, packed=True, pad_to=batch_width(seqs) + 7)  # padding too
    assert "attention_mask" not in b
    n_targets, n_tokens = b.pop("n_targets"), b.pop("n_tokens")
    return model(**b, num_items_in_batch=1).loss, n_targets, n_tokens


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_a_packed_batch_has_the_unpacked_loss_and_gradients(tiny, impl):
    items = rows([37, 5, 120, 64, 18, 90, 2, 33])
    base = add_lora(copy.deepcopy(tiny[impl]), TrainConfig(quantization="none", dataset="x", lora_dropout=0.0), CPU)
    for p in base.parameters():  # LoRA B starts at zero; give it values so its gradients mean something
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05, generator=torch.Generator().manual_seed(1))
    a, n_a = loss_sum_unpacked(base, items)
    a.backward()
    grads_a = [p.grad.clone() for p in base.parameters() if p.requires_grad]
    base.zero_grad()
    b, n_b, tokens = loss_sum_packed(base, items, max_len=160)
    b.backward()
    grads_b = [p.grad.clone() for p in base.parameters() if p.requires_grad]
    assert n_a == n_b and tokens == sum(len(it.input_ids) for it in items)  # only real tokens counted
    assert float(b.detach()) == pytest.approx(float(a.detach()), rel=1e-5)
    for x, y in zip(grads_a, grads_b):  # fp32, summed in another order: equal to about 1e-6 of their size
        assert float((x - y).norm()) <= 1e-5 * float(x.norm()), float((x - y).norm() / x.norm())


def test_a_flattened_batch_learns_the_same(tiny):
    """flash_attention_2 gets packed micro-batches as one joined row (its varlen path needs a batch
    of one); joined, the rows give the same loss (checked here with sdpa's block mask)."""
    items = rows([37, 5, 120, 64, 18, 90, 2, 33])
    seqs = pack(items, 160, seed=3)
    model = tiny["sdpa"]
    with torch.no_grad():
        two_d = collate(seqs, pad_id=0, packed=True, pad_to=batch_width(seqs))
        flat = collate(seqs, pad_id=0, packed=True, pad_to=batch_width(seqs), flat=True)
        assert flat["input_ids"].shape == (1, len(seqs) * batch_width(seqs)) and flat["n_targets"] == two_d["n_targets"]
        a = model(**{k: v for k, v in two_d.items() if not k.startswith("n_")}, num_items_in_batch=1, use_cache=False).loss
        b = model(**{k: v for k, v in flat.items() if not k.startswith("n_")}, num_items_in_batch=1, use_cache=False).loss
    assert float(b) == pytest.approx(float(a), rel=1e-5)


def test_packing_fills_bins_and_resets_positions():
    items = rows([300, 250, 200, 120, 90, 60, 40, 30, 10, 5])
    seqs = pack(items, 512, seed=0)
    assert sorted(x for s in seqs for x in s.input_ids) == sorted(x for it in items for x in it.input_ids)
    assert all(len(s.input_ids) <= 512 for s in seqs) and len(seqs) == 3  # 1105 tokens: best fit needs 3 bins
    for s in seqs:
        starts = [i for i, p in enumerate(s.position_ids) if p == 0]
        assert all(s.labels[i] == IGNORE for i in starts)  # no label reads across a document boundary
    width = batch_width(seqs)
    batch = collate(seqs[:2], pad_id=0, packed=True, pad_to=width)
    assert batch["input_ids"].shape == (2, width) and batch["n_tokens"] == sum(len(s.input_ids) for s in seqs[:2])


def test_packing_many_rows_is_fast():
    import time
    items = [Encoded([1] * n, [1] * n) for n in torch.randint(20, 900, (20_000,), generator=torch.Generator().manual_seed(0)).tolist()]
    t0 = time.process_time()  # this process's CPU time: a loaded machine stretches the wall clock (13 s seen), not this
    seqs = pack(items, 2048, seed=0)
    assert time.process_time() - t0 < 10  # 0.6 s here; the former first-fit took 1.7 s (and 60 s for 100,000 rows)
    fill = sum(len(s.input_ids) for s in seqs) / (len(seqs) * 2048)
    assert fill > 0.97


def lora_twins(tiny):
    """Two LoRA copies of the demo model with the same adapter weights, every layer checkpointed."""
    cfg = TrainConfig(quantization="none", dataset="x", lora_dropout=0.0)
    torch.manual_seed(0)
    a = add_lora(copy.deepcopy(tiny["sdpa"]), cfg, CPU, checkpointing=True)
    b = add_lora(copy.deepcopy(tiny["sdpa"]), cfg, CPU, checkpointing=True)
    b.load_state_dict(a.state_dict())
    return a, b


def assert_same_loss_and_grads(models, x, rtol: float, atol: float) -> None:
    out = []
    for m in models:
        m.train()
        loss = m(input_ids=x, labels=x, use_cache=False).loss
        loss.backward()
        out.append((loss.item(), [p.grad.clone() for p in m.parameters() if p.requires_grad]))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-6)
    assert len(out[0][1]) == len(out[1][1]) > 0
    for g1, g2 in zip(out[0][1], out[1][1]):
        assert torch.allclose(g1, g2, rtol=rtol, atol=atol)


def test_the_plan_checkpoints_only_the_layers_it_does_not_keep(tiny):
    everything, mixed = lora_twins(tiny)
    apply_plan(mixed, Plan("auto", 2, keep=1, offload=False, need_gib=0.0, free_gib=1.0))
    _, layers = decoder_layers(mixed)
    assert [layer.gradient_checkpointing for layer in layers] == [True, False]  # the last layer keeps its activations
    x = torch.randint(5, 390, (2, 40), generator=torch.Generator().manual_seed(2))
    assert_same_loss_and_grads((everything, mixed), x, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("compiled", [False, True])
def test_a_tiled_mlp_learns_the_same(tiny, compiled):
    """The plan's MLP pieces (long rows, recomputed layers) give the loss and LoRA gradients of the
    whole MLP, eager and inside the compiled checkpointed layer; kept layers are not tiled. Compiled,
    only the tiled layer is, with Inductor's decompositions and partitioner (the checkpoint's
    recomputation placed in the backward graph, what the tiling must survive) and no code generation:
    Inductor's C++ kernels for the CPU are not the GPU's Triton ones, and building them for four
    layers took 132 s cold on 2 cores (278 s in a loaded suite); this takes 5-7 s."""
    from torch._dynamo.utils import counters
    from core.engine.speed import compile_layers
    whole, tiled = lora_twins(tiny)
    apply_plan(whole, Plan("lowest", 2, keep=0, offload=False, need_gib=0.0, free_gib=1.0))
    apply_plan(tiled, Plan("auto", 2, keep=1, offload=False, need_gib=0.0, free_gib=1.0, mlp_tiles=3))
    _, layers = decoder_layers(tiled)
    assert [getattr(layer.mlp, "_danlu_tiles", 1) for layer in layers] == [3, 1]
    if compiled:
        compile_layers(layers[:1], in_graph=True, dynamic=False, backend="aot_eager_decomp_partition")
        assert layers[0]._danlu_ckpt_in_graph and not layers[0].gradient_checkpointing  # the checkpoint is in the graph
    graphs = counters["stats"]["unique_graphs"]
    x = torch.randint(5, 390, (2, 64), generator=torch.Generator().manual_seed(3))
    assert_same_loss_and_grads((whole, tiled), x, rtol=1e-4, atol=1e-6)
    if compiled:  # the layer ran compiled (Dynamo falls back to eager when a trace fails, unseen)
        assert counters["stats"]["unique_graphs"] > graphs
