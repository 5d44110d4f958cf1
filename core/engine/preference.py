"""Preference pairs for DPO and ORPO: encoding, batching, answer log-probabilities and the losses.

    pair = encode_pair(tok, {"prompt": [...], "chosen": [...], "rejected": [...]}, max_len=1024)
    batch = collate_pairs([pair, ...], tok.pad_token_id)      # rows 0..B-1 chosen, B..2B-1 rejected
    logp, n = sequence_logps(net, batch)                       # [2B] summed answer log-probs, [2B] answer tokens
    loss, r_c, r_w = dpo_loss(logp[:B], logp[B:], ref[:B], ref[B:], beta)

Definitions follow TRL (trl 1.16 DPOTrainer, loss_type "sigmoid"; trl.experimental.orpo.ORPOTrainer)
and are checked against it on the same weights by tests/recipes/test_trl_parity.py.

Tokens: the prompt messages are rendered with the model's chat template and its generation prompt,
then prompt + answer; the answer is every token after the rendered prompt, so it ends with the
template's end-of-turn token (what supervised training learns too, core/data/render.py). TRL cuts
the completion at the first token where the two tokenisations differ; here a token is an answer
token when its characters start at or after the point where the two rendered texts differ.

Log-probabilities never materialise [tokens x vocabulary] float32 logits: the output layer's
forward is swapped, for the duration of one forward of the whole (wrapped) model, for a function
that receives the final hidden states, keeps only the answer positions (the prompt's logits are
never computed) and runs the output layer over chunks of them. Going through the wrapper's own
forward is what keeps DDP's gradient hooks and FSDP's gathering of the root unit (embeddings, final
norm, output layer) correct. Two chunked paths:
  - a frozen plain nn.Linear output layer (the QLoRA case: PEFT's "all-linear" leaves lm_head out,
    bitsandbytes never quantises it): a custom autograd function that, like Liger's fused linear
    cross-entropy, computes the hidden states' gradient chunk by chunk during the forward, so the
    backward costs one multiply and nothing vocabulary-sized is kept (Liger's kernel, which the
    supervised recipe uses, is not: liger-kernel 0.8.5 scales its precomputed gradient by ONE
    number in the backward, and DPO weighs every sequence differently);
  - anything else (LoRA on lm_head, a quantised or tied head under a wrapper): the layer's own
    forward over each chunk under activation checkpointing (the chunk's logits are recomputed in
    the backward, one chunk at a time).
Supported wrappers: none, PEFT, DistributedDataParallel, FSDP1 (core/engine/sharded.wrap) and any
mix of them whose innermost model has get_output_embeddings(). The frozen-head path needs nothing of
the output layer in the backward, so FSDP may free the root unit after the forward; the checkpointed
path re-reads the layer in the backward (fine for DDP and unsharded heads; not tried with a LoRA
output layer under FSDP over several GPUs). Models whose logits are post-processed after the output
layer: logit_scale / logits_scaling (Cohere, Granite) and final_logit_softcapping (Gemma 2/3) are
applied here; other post-processing is not. Tested on CPU (tests/recipes/test_preference.py):
plain PEFT with a frozen head, LoRA on the head, DDP and FSDP1 in one gloo process, values and
gradients against the full-logits computation; not yet run on a GPU.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.data.render import IGNORE

DEFAULT_CHUNK = 512  # answer tokens per output-layer chunk: 512 x 128k vocabulary x 4 bytes = 256 MiB


# ---------------------------------------------------------------------------------------------- encoding

@dataclass
class EncodedPair:
    chosen_ids: list[int]
    chosen_labels: list[int]      # the token id on answer tokens, IGNORE elsewhere
    rejected_ids: list[int]
    rejected_labels: list[int]
    truncated: bool = False       # cut to max_len (training counts these for its data report)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _tokens(tok, prompt: list[dict], answer: list[dict]) -> tuple[list[int], int]:
    """The conversation's token ids and how many of them belong to the prompt."""
    head = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(prompt + answer, tokenize=False)
    cut = _common_prefix(head, full)  # == len(head) for every prefix-stable template
    enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    n_prompt = 0
    for s, e in enc["offset_mapping"]:
        if s >= cut and e > s:
            break
        n_prompt += 1
    return ids, n_prompt


def _cut(prompt: list[int], answers: list[list[int]], max_len: int) -> tuple[list[int], list[list[int]], bool]:
    """Fit prompt + each answer in max_len: the prompt loses its start first (down to half of
    max_len, never below what it needs), then the answers lose their ends."""
    longest = max(len(a) for a in answers)
    if len(prompt) + longest <= max_len:
        return prompt, answers, False
    keep = max(max_len - longest, min(len(prompt), max_len // 2))
    prompt = prompt[len(prompt) - keep:] if keep > 0 else []
    return prompt, [a[:max_len - len(prompt)] for a in answers], True


def encode_pair(tok, example: dict, max_len: int) -> EncodedPair | None:
    """One normalised preference example (core/data: prompt, chosen, rejected message lists) as two
    token sequences with labels on the answer tokens only. None when no answer token is left to
    learn on one side (after truncation; the first token of a sequence is never predicted)."""
    seqs = [_tokens(tok, example["prompt"], example[side]) for side in ("chosen", "rejected")]
    # The prompt tokens of both sides are the same text; the shorter common part is the prompt.
    n_prompt = min(n for _, n in seqs)
    prompt = seqs[0][0][:n_prompt]
    answers = [ids[n_prompt:] for ids, _ in seqs]
    prompt, answers, cut = _cut(prompt, answers, max_len)
    out = []
    for ans in answers:
        ids = prompt + ans
        labels = [IGNORE] * len(prompt) + list(ans)
        if not any(lab != IGNORE for lab in labels[1:]):
            return None
        out += [ids, labels]
    return EncodedPair(*out, truncated=cut)


def collate_pairs(pairs: list[EncodedPair], pad_id: int, pad_to: int | None = None) -> dict:
    """Right-padded [2B, T] tensors: rows 0..B-1 the chosen answers, B..2B-1 the rejected ones, so
    one forward scores both sides. `pad_to`: a fixed width (one static shape for compiled layers)."""
    rows = [(p.chosen_ids, p.chosen_labels) for p in pairs] + [(p.rejected_ids, p.rejected_labels) for p in pairs]
    width = max([len(ids) for ids, _ in rows] + [pad_to or 0])
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r_ids, r_labels) in enumerate(rows):
        n = len(r_ids)
        ids[i, :n] = torch.tensor(r_ids, dtype=torch.long)
        labels[i, :n] = torch.tensor(r_labels, dtype=torch.long)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def real_tokens(batch: dict) -> int:
    """Tokens that are not padding (prompt + chosen + rejected, the prompt counted on both rows)."""
    return int(batch["attention_mask"].sum())


# ---------------------------------------------------------------------------------------------- log-probabilities

def _inner(model):
    """The transformers model under DDP / FSDP (.module) and PEFT (.get_base_model())."""
    seen = 0
    while seen < 8:
        seen += 1
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        elif hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        else:
            break
    return model


def _logit_transform(config) -> tuple[float, float | None]:
    """(scale, softcap) the model applies to its logits after the output layer."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    scale = getattr(cfg, "logit_scale", None)
    if scale is None and getattr(cfg, "logits_scaling", None):
        scale = 1.0 / cfg.logits_scaling
    return float(1.0 if scale is None else scale), getattr(cfg, "final_logit_softcapping", None)


def _token_logp(z: torch.Tensor, tgt: torch.Tensor, scale: float, cap: float | None):
    """log p(tgt) from raw output-layer values z [n, V] (float32), and the logits used."""
    z = z.float() if scale == 1.0 else z.float() * scale
    if cap:
        z = torch.tanh(z / cap) * cap
    return z.gather(1, tgt[:, None]).squeeze(1) - torch.logsumexp(z, dim=1), z


class _FrozenHeadLogp(torch.autograd.Function):
    """log p(tgt) through a frozen linear output layer, chunk by chunk; the gradient with respect
    to the hidden states is computed in the forward (d logp / d z = onehot - softmax), so neither
    the logits nor a recomputation are needed in the backward."""

    @staticmethod
    def forward(ctx, h, weight, bias, tgt, chunk, scale, cap, want_grad):
        out = h.new_empty(h.shape[0], dtype=torch.float32)
        grad = torch.empty_like(h) if want_grad else None
        with torch.autocast(h.device.type, enabled=False):
            for s in range(0, h.shape[0], chunk):
                hc, tc = h[s:s + chunk].to(weight.dtype), tgt[s:s + chunk]
                lp, z = _token_logp(F.linear(hc, weight, bias), tc, scale, cap)
                out[s:s + chunk] = lp
                if grad is not None:  # in place where it can be: [chunk x vocabulary] float32 is the big buffer
                    dz = torch.softmax(z, dim=1).neg_()
                    dz.scatter_add_(1, tc[:, None], torch.ones_like(dz[:, :1]))
                    if cap:
                        dz.mul_(1 - (z / cap) ** 2)
                    if scale != 1.0:
                        dz.mul_(scale)
                    del z
                    grad[s:s + chunk] = (dz.to(weight.dtype) @ weight).to(h.dtype)
        ctx.save_for_backward(grad)
        return out

    @staticmethod
    def backward(ctx, g):
        (grad,) = ctx.saved_tensors
        return grad * g[:, None].to(grad.dtype), None, None, None, None, None, None, None


def _head_logps(head, call, h: torch.Tensor, tgt: torch.Tensor, chunk: int, scale: float, cap: float | None):
    """log p(tgt) for hidden states h [n, H] through the output layer `head`, whose own forward is `call`."""
    w = getattr(head, "weight", None)
    plain = type(head) is torch.nn.Linear and w is not None and not w.requires_grad and \
        (head.bias is None or not head.bias.requires_grad)
    if plain:
        want_grad = torch.is_grad_enabled() and h.requires_grad
        return _FrozenHeadLogp.apply(h, w, head.bias, tgt, chunk, scale, cap, want_grad)
    parts = []
    for s in range(0, h.shape[0], chunk):
        def one(hc, tc=tgt[s:s + chunk]):
            return _token_logp(call(hc), tc, scale, cap)[0]
        hc = h[s:s + chunk]
        if torch.is_grad_enabled() and hc.requires_grad:
            parts.append(torch.utils.checkpoint.checkpoint(one, hc, use_reentrant=False))
        else:
            parts.append(one(hc))
    return torch.cat(parts) if parts else h.new_zeros(0, dtype=torch.float32)


@contextlib.contextmanager
def _answer_head(head, labels: torch.Tensor, chunk: int, scale: float, cap: float | None, sink: dict,
                 grad: bool = True):
    """Within the block, the output layer returns a [B, T, 1] placeholder and leaves the answer
    tokens' log-probabilities [B, T-1] (0 elsewhere) in sink["logp"]."""
    shifted = labels[:, 1:]
    mask = shifted != IGNORE
    patched = head.__dict__.get("forward")  # an instance-level forward someone set before us, kept
    call = head.forward

    def forward(hidden, *args, **kwargs):
        h = hidden[:, :-1][mask]
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):  # the head runs eagerly: same numbers either way
            tok = _head_logps(head, call, h, shifted[mask], chunk, scale, cap)
        # masked_scatter keeps the result connected to the model even when no label is valid
        sink["logp"] = tok.new_zeros(mask.shape).masked_scatter(mask, tok)
        return hidden[..., :1]

    head.forward = forward
    try:
        yield
    finally:
        if patched is None:
            del head.forward
        else:
            head.forward = patched


def sequence_logps(model, batch: dict, *, chunk: int = DEFAULT_CHUNK,
                   head_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of log p(label) over each row's answer tokens [2B] float32, answer tokens per row [2B]).

    `model`: the model as training calls it (plain, PEFT, DDP or FSDP around it); one forward of
    it runs, under whatever autocast / no_grad / adapter state the caller set. The batch's tensors
    are moved to the device of the model's input embeddings. head_grad=False: the output layer's
    part runs without gradients even where the model's are recorded (DPO's reference pass, which
    runs the decoder as training does only to get the same kernels): no gradient buffer for the
    hidden states, and the decoder's graph is freed as soon as the forward returns."""
    inner = _inner(model)
    head = inner.get_output_embeddings()
    device = inner.get_input_embeddings().weight.device
    if device.type == "meta":  # not expected; FSDP flat parameters keep their device
        device = batch["input_ids"].device
    ids = batch["input_ids"].to(device, non_blocking=True)
    mask = batch["attention_mask"].to(device, non_blocking=True)
    labels = batch["labels"].to(device, non_blocking=True)
    scale, cap = _logit_transform(inner.config)
    sink: dict = {}
    with _answer_head(head, labels, chunk, scale, cap, sink, head_grad):
        model(input_ids=ids, attention_mask=mask, use_cache=False)
    per_token = sink["logp"]
    return per_token.sum(dim=1), (labels[:, 1:] != IGNORE).sum(dim=1)


# ---------------------------------------------------------------------------------------------- losses

def dpo_loss(pol_c: torch.Tensor, pol_r: torch.Tensor, ref_c: torch.Tensor, ref_r: torch.Tensor, beta: float):
    """Sigmoid DPO (Rafailov et al. 2023), per pair: -log sigmoid(beta * ((pol_c - ref_c) - (pol_r - ref_r))).
    Inputs are summed answer log-probs [B]. Rewards (detached) = beta * (policy - reference), as TRL logs them."""
    chosen = pol_c.float() - ref_c.float()
    rejected = pol_r.float() - ref_r.float()
    loss = -F.logsigmoid(beta * (chosen - rejected))
    return loss, beta * chosen.detach(), beta * rejected.detach()


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0 without cancellation (two branches at -ln 2, Maechler 2012)."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo_loss(pol_c_sum: torch.Tensor, pol_r_sum: torch.Tensor, n_c: torch.Tensor, n_r: torch.Tensor, beta: float):
    """ORPO (Hong et al. 2024), per pair, on mean per-token answer log-probs m = sum / n:
        loss = -m_chosen - beta * log sigmoid(log odds(chosen) - log odds(rejected)),  log odds(m) = m - log(1 - e^m)
    Rewards (detached) = beta * m, as TRL's ORPOTrainer logs them. Its odds-ratio term is TRL's exactly;
    the NLL term is on the chosen answer's tokens (TRL's experimental trainer also counts the prompt's)."""
    mc = pol_c_sum.float() / n_c.clamp(min=1).to(torch.float32)
    mr = pol_r_sum.float() / n_r.clamp(min=1).to(torch.float32)
    log_odds = (mc - mr) - (log1mexp(mc) - log1mexp(mr))
    loss = -mc - beta * F.logsigmoid(log_odds)
    return loss, beta * mc.detach(), beta * mr.detach()


def pair_sums(chosen_reward: torch.Tensor, rejected_reward: torch.Tensor) -> torch.Tensor:
    """[sum of the reward margins, pairs whose chosen reward is higher] of a batch, detached, float64:
    what a training step adds up over its micro-batches and ranks (core.engine.methods.Preference.loss)."""
    margin = chosen_reward - rejected_reward
    return torch.stack([margin.sum(), (margin > 0).float().sum()]).detach().double()


def pair_stats(chosen_reward: torch.Tensor, rejected_reward: torch.Tensor) -> tuple[float, float]:
    """(mean reward margin, preference accuracy) of one batch, from pair_sums: the numbers training logs,
    which tests/recipes/test_trl_parity.py compares with TRL's."""
    sums = pair_sums(chosen_reward, rejected_reward) / max(chosen_reward.numel(), 1)
    return float(sums[0]), float(sums[1])
