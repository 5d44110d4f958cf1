"""core/engine/preference.py: pairs through the chat template, batches, chunked answer log-probs
(values and gradients against the plain full-logits computation), and the two losses by hand.
TRL parity is in test_trl_parity.py."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from core.engine import preference as P  # noqa: E402

PAIR = {"prompt": [{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": "Name a colour."},
                   {"role": "assistant", "content": "Red."},
                   {"role": "user", "content": "Another?"}],
        "chosen": [{"role": "assistant", "content": "Blue."}],
        "rejected": [{"role": "assistant", "content": "I would rather not name any colour today."}]}
SHORT = {"prompt": [{"role": "user", "content": "Hi"}],
         "chosen": [{"role": "assistant", "content": "Hello!"}],
         "rejected": [{"role": "assistant", "content": "Go away."}]}


def peft_model(demo_model_dir, targets="all-linear", seed=0):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(str(demo_model_dir), dtype=torch.float32)
    for p in m.parameters():
        p.requires_grad_(False)
    pm = get_peft_model(m, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return pm


def answer_text(tok, ids, labels):
    return tok.decode([t for t, lab in zip(ids, labels) if lab != P.IGNORE])


def test_only_the_answer_and_its_end_of_turn_are_labelled(tok):
    pair = P.encode_pair(tok, PAIR, max_len=4096)
    head = tok.apply_chat_template(PAIR["prompt"], tokenize=False, add_generation_prompt=True)
    for side in ("chosen", "rejected"):
        ids, labels = getattr(pair, f"{side}_ids"), getattr(pair, f"{side}_labels")
        full = tok.apply_chat_template(PAIR["prompt"] + PAIR[side], tokenize=False)
        assert tok.decode(ids) == full
        assert answer_text(tok, ids, labels) == full[len(head):]  # "Blue.<|im_end|>\n": not the history's "Red."
        assert answer_text(tok, ids, labels).startswith(PAIR[side][0]["content"] + "<|im_end|>")
    assert not pair.truncated
    n_prompt = sum(1 for t in pair.chosen_labels if t == P.IGNORE)
    assert pair.chosen_ids[:n_prompt] == pair.rejected_ids[:n_prompt]
    assert all(t == P.IGNORE for t in pair.chosen_labels[:n_prompt])


def test_too_long_cuts_the_prompt_from_its_start_then_the_answers_from_their_end(tok):
    full = P.encode_pair(tok, PAIR, max_len=4096)
    n_prompt = sum(1 for t in full.chosen_labels if t == P.IGNORE)
    n_rej = len(full.rejected_ids) - n_prompt
    # room for the longer answer and n_rej + 2 prompt tokens (over half of max_len): the prompt keeps its end
    assert n_prompt > n_rej + 2
    cut = P.encode_pair(tok, PAIR, max_len=2 * n_rej + 2)
    kept = sum(1 for t in cut.rejected_labels if t == P.IGNORE)
    assert cut.truncated and kept == n_rej + 2
    assert cut.rejected_ids == full.rejected_ids[n_prompt - kept:]          # prompt end + whole answer
    assert cut.chosen_ids[:kept] == full.chosen_ids[n_prompt - kept:n_prompt]
    # answers longer than max_len: the prompt keeps half, the answers lose their ends
    short = P.encode_pair(tok, PAIR, max_len=8)
    assert len(short.rejected_ids) == 8 and sum(1 for t in short.rejected_labels if t == P.IGNORE) == 4
    assert short.rejected_ids[4:] == full.rejected_ids[n_prompt:n_prompt + 4]
    assert P.encode_pair(tok, PAIR, max_len=1) is None                       # no answer token left to predict


def test_collate_puts_chosen_rows_first_and_pads_right(tok):
    pairs = [P.encode_pair(tok, ex, 4096) for ex in (PAIR, SHORT)]
    b = P.collate_pairs(pairs, tok.pad_token_id, pad_to=100)
    assert b["input_ids"].shape == b["labels"].shape == b["attention_mask"].shape == (4, 100)
    rows = [pairs[0].chosen_ids, pairs[1].chosen_ids, pairs[0].rejected_ids, pairs[1].rejected_ids]
    for i, ids in enumerate(rows):
        assert b["input_ids"][i, :len(ids)].tolist() == ids and int(b["attention_mask"][i].sum()) == len(ids)
        assert set(b["labels"][i, len(ids):].tolist()) == {P.IGNORE}
        assert set(b["input_ids"][i, len(ids):].tolist()) == {tok.pad_token_id}
    assert P.real_tokens(b) == sum(map(len, rows))


def full_logits_logps(model, batch):
    """The plain computation: every position's logits, log_softmax, gather."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    lp = torch.log_softmax(out.logits[:, :-1].float(), dim=-1)
    lab = batch["labels"][:, 1:]
    mask = lab != P.IGNORE
    return (lp.gather(2, lab.clamp(min=0)[..., None]).squeeze(-1) * mask).sum(1), mask.sum(1)


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("targets", ["all-linear", ["q_proj", "v_proj", "lm_head"]],
                         ids=["frozen-head", "lora-on-head"])
def test_chunked_logps_and_gradients_equal_the_full_logits(demo_model_dir, tok, targets):
    model = peft_model(demo_model_dir, targets)
    head_is_plain = type(model.get_base_model().lm_head) is torch.nn.Linear
    assert head_is_plain == (targets == "all-linear")  # PEFT's all-linear leaves the output layer alone
    batch = P.collate_pairs([P.encode_pair(tok, ex, 4096) for ex in (PAIR, SHORT)], tok.pad_token_id)
    want, want_n = full_logits_logps(model, batch)
    (want * torch.tensor([1.0, -2.0, 0.5, 3.0])).sum().backward()
    g_want = grads(model)
    model.zero_grad()
    got, n = P.sequence_logps(model, batch, chunk=3)  # chunks smaller than one answer
    (got * torch.tensor([1.0, -2.0, 0.5, 3.0])).sum().backward()
    assert got.dtype == torch.float32 and torch.equal(n, want_n)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-4)
    for k, g in grads(model).items():
        assert (g - g_want[k]).norm() <= 1e-5 * g_want[k].norm(), k
    assert "forward" not in model.get_base_model().lm_head.__dict__  # the output layer is itself again


def test_the_output_layer_sees_only_answer_positions_in_chunks(demo_model_dir, tok, monkeypatch):
    model = peft_model(demo_model_dir)
    vocab = model.get_base_model().lm_head.out_features
    batch = P.collate_pairs([P.encode_pair(tok, ex, 4096) for ex in (PAIR, SHORT)], tok.pad_token_id)
    rows = []
    real = torch.nn.functional.linear

    def spy(x, w, b=None):
        out = real(x, w, b)
        if out.shape[-1] == vocab:
            rows.append(x.reshape(-1, x.shape[-1]).shape[0])
        return out
    monkeypatch.setattr(torch.nn.functional, "linear", spy)
    _, n = P.sequence_logps(model, batch, chunk=4)
    assert rows and max(rows) <= 4 and sum(rows) == int(n.sum())


def test_logit_scale_and_softcap_gradients(demo_model_dir):
    """The frozen-head function's hand-written gradient, with Cohere's scale and Gemma's softcap."""
    torch.manual_seed(0)
    h = torch.randn(7, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(50, 16, dtype=torch.float64)
    tgt = torch.randint(0, 50, (7,))
    for scale, cap in ((1.0, None), (0.25, None), (1.0, 3.0), (0.5, 2.0)):
        got = P._FrozenHeadLogp.apply(h, w, None, tgt, 3, scale, cap, True)
        (g_got,) = torch.autograd.grad((got * torch.arange(7.0)).sum(), h)
        z = (h @ w.T) * scale
        z = torch.tanh(z / cap) * cap if cap else z
        want = torch.log_softmax(z, 1).gather(1, tgt[:, None]).squeeze(1)
        (g_want,) = torch.autograd.grad((want * torch.arange(7.0)).sum(), h)
        assert torch.allclose(got.double(), want, atol=1e-5) and torch.allclose(g_got, g_want, atol=1e-5)


def test_no_grad_reference_pass_and_adapter_off(demo_model_dir, tok):
    model = peft_model(demo_model_dir)
    batch = P.collate_pairs([P.encode_pair(tok, PAIR, 4096)], tok.pad_token_id)
    with torch.no_grad():
        pol, _ = P.sequence_logps(model, batch)
        with model.disable_adapter():
            ref, _ = P.sequence_logps(model, batch)
            base, _ = full_logits_logps(model, batch)
    assert not pol.requires_grad and torch.allclose(ref, base, atol=1e-4) and not torch.allclose(pol, ref, atol=1e-2)


@pytest.mark.parametrize("targets", ["all-linear", ["q_proj", "v_proj", "lm_head"]],
                         ids=["frozen-head", "lora-on-head"])
def test_the_reference_pass_records_the_decoder_but_not_the_head(demo_model_dir, tok, targets, monkeypatch):
    """DPO's reference pass (nothing_saved, head_grad=False): the decoder layers run with gradients
    recorded, as in the training step (on a GPU, torch.compile runs the same kernels only then), but
    what they save for a backward is dropped, and the output layer runs without: the same log-probs
    to the last bit, and no [tokens x hidden] gradient buffer made by the frozen head."""
    model = peft_model(demo_model_dir, targets)
    batch = P.collate_pairs([P.encode_pair(tok, ex, 4096) for ex in (PAIR, SHORT)], tok.pad_token_id)
    layer = model.get_base_model().model.layers[-1]
    recorded = []
    hook = layer.register_forward_hook(lambda mod, args, out: recorded.append(
        (out[0] if isinstance(out, tuple) else out).requires_grad))
    buffers = []
    real = P._FrozenHeadLogp.forward

    def spy(ctx, h, weight, bias, tgt, chunk, scale, cap, want_grad):
        buffers.append(want_grad)
        return real(ctx, h, weight, bias, tgt, chunk, scale, cap, want_grad)
    monkeypatch.setattr(P._FrozenHeadLogp, "forward", staticmethod(spy))
    from core.engine.reference import nothing_saved
    with torch.enable_grad():
        train, _ = P.sequence_logps(model, batch, chunk=3)
        with nothing_saved():
            ref, _ = P.sequence_logps(model, batch, chunk=3, head_grad=False)
            kept_nothing, _ = P.sequence_logps(model, batch, chunk=3)  # the head recorded too: nothing to go back through
    hook.remove()
    assert recorded == [True, True, True]
    assert train.requires_grad and not ref.requires_grad and torch.equal(train.detach(), ref)
    assert buffers == ([True, False, True] if targets == "all-linear" else [])
    with pytest.raises(RuntimeError, match="keeps nothing"):
        kept_nothing.sum().backward()


def wrap(kind: str, model):
    """DDP, or FSDP1 as core/engine/sharded.wrap sets it up (decoder layers as units, LoRA left whole)."""
    import functools
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
    from torch.nn.parallel import DistributedDataParallel
    if kind == "ddp":
        return DistributedDataParallel(model)
    layer = type(model.get_base_model().model.layers[0])
    adapter = [m for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))]
    return FSDP(model, auto_wrap_policy=functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={layer}),
                ignored_states=adapter, use_orig_params=False, sharding_strategy=ShardingStrategy.FULL_SHARD,
                device_id=torch.device("cpu"))


@pytest.mark.parametrize("kind", ["ddp", "fsdp"])
def test_through_ddp_and_fsdp(demo_model_dir, tok, tmp_path, kind):
    """The wrapper's own forward runs (one gloo process): the same values and LoRA gradients."""
    import torch.distributed as dist
    model = peft_model(demo_model_dir)
    batch = P.collate_pairs([P.encode_pair(tok, ex, 4096) for ex in (PAIR, SHORT)], tok.pad_token_id)
    want, _ = full_logits_logps(model, batch)
    want.sum().backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    g_want = [p.grad.clone() for p in trainable]
    model.zero_grad()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        got, _ = P.sequence_logps(wrap(kind, model), batch, chunk=5)
        got.sum().backward()
    finally:
        dist.destroy_process_group()
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-4)
    for p, g in zip(trainable, g_want):
        assert p.grad is not None and (p.grad - g).norm() <= 1e-5 * g.norm()


def test_dpo_loss_by_hand():
    pol_c, pol_r = torch.tensor([-10.0, -4.0]), torch.tensor([-12.0, -3.0])
    ref_c, ref_r = torch.tensor([-11.0, -4.0]), torch.tensor([-11.0, -4.0])
    loss, rc, rr = P.dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=0.5)
    # pair 0: chosen +1 over the reference, rejected -1: -log sigmoid(0.5 * 2); pair 1: 0 and +1
    assert torch.allclose(loss, torch.tensor([-math.log(1 / (1 + math.exp(-1.0))), -math.log(1 / (1 + math.exp(0.5)))]))
    assert rc.tolist() == [0.5, 0.0] and rr.tolist() == [-0.5, 0.5]
    assert P.pair_stats(rc, rr) == (pytest.approx(0.25), 0.5)


def test_orpo_loss_by_hand():
    c_sum, r_sum, n_c, n_r = torch.tensor([-2.0]), torch.tensor([-6.0]), torch.tensor([4]), torch.tensor([3])
    loss, rc, rr = P.orpo_loss(c_sum, r_sum, n_c, n_r, beta=0.2)
    mc, mr = -0.5, -2.0

    def odds(m):
        return m - math.log(1 - math.exp(m))
    want = -mc - 0.2 * math.log(1 / (1 + math.exp(-(odds(mc) - odds(mr)))))
    assert loss.item() == pytest.approx(want, rel=1e-6)
    assert rc.item() == pytest.approx(0.2 * mc) and rr.item() == pytest.approx(0.2 * mr)
    # log(1 - e^m) stays finite next to 0 and far below it
    assert torch.isfinite(P.log1mexp(torch.tensor([-1e-7, -0.5, -50.0]))).all()


def test_each_reference_is_computed_as_the_pass_it_is_compared_with(demo_model_dir, tok, tmp_path, monkeypatch):
    """DPO's reference of a training pair runs as the training step (training mode, gradients
    recorded); of a validation pair as the validation pass (eval mode, no gradients). On a GPU the
    compiled kernels differ between the two and their rounding moves a summed log-prob by nats, so a
    validation reference taken the training way starts held-out margins off 0."""
    import contextlib
    from types import SimpleNamespace
    from core.engine.common import Dist
    from core.engine.methods import DPO
    from core.engine.reference import attach_reference
    from core.engine.train_log import evaluate
    model = peft_model(demo_model_dir)
    train, val = ([SimpleNamespace(pair=P.encode_pair(tok, ex, 4096), ref=None) for ex in (PAIR, SHORT)]
                  for _ in range(2))
    r = SimpleNamespace(eval_net=model, d=Dist(0, 1, 0, torch.device("cpu"), None), fsdp=False, tok=tok,
                        cfg=SimpleNamespace(micro_batch_size=2, pref_beta=0.1, start_adapter=None),
                        autocast=contextlib.nullcontext(), method=DPO(), step=0, train_seqs=train, val_seqs=val,
                        files=SimpleNamespace(reference=tmp_path / "reference_logps.json"),
                        progress_path=tmp_path / "progress.json", dataset_sha="x", records=True)
    modes = []
    real = P.sequence_logps
    monkeypatch.setattr(P, "sequence_logps", lambda net, batch, **kw: (
        modes.append((net.training, torch.is_grad_enabled())), real(net, batch, **kw))[1])
    with torch.enable_grad():
        attach_reference(r, r.method)
        loss, (margin, accuracy) = evaluate(r)
    assert modes == [(True, True), (False, False), (False, False)]  # training pairs, validation pairs, validation pass
    assert model.training  # left ready to train
    assert loss == pytest.approx(math.log(2), abs=1e-6) and margin == pytest.approx(0, abs=1e-6)
