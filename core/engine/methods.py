"""Training methods: what differs between supervised and preference training is only the batch and
the loss. Everything else (data loading and the split, the speed features, the memory plan, DDP and
FSDP, gradient accumulation, checkpoints, resume, Stop, logging, validation) is the training loop's
(core/recipes/train.py over core.engine.state.Run) and the same for every method.

    method = method_for(cfg)                        # SFT(), DPO() or ORPO()
    data = method.encode(cfg, tok, train_examples, val_examples)     # Encoded: items, counts, width
    batch = method.collate(r, items)               # model inputs + "n_units" and "n_tokens"
    loss, sums = method.loss(r, net, batch, n_global)   # loss: this micro-batch's sum / n_global

A *unit* is what the loss averages over: an answer token for SFT, a pair for DPO and ORPO.
`n_global` is the units of the whole optimizer step on all ranks, so summing the micro-batches'
losses (and the ranks' gradients) gives the step's mean exactly. `sums` are the method's extra
metrics summed over the micro-batch's units (`method.metrics` names them; the log divides by the
units): for preference training, the reward margin and the share of pairs ranked right.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from core.engine import preference as P
from core.engine.sft_data import batch_width, collate, encode_all, flat_batches, pack, unpacked


@dataclass
class Encoded:
    """A method's training and validation items (any objects its collate takes) and what the data report says."""
    train: list
    val: list
    info: dict = field(default_factory=dict)
    width: int | None = None   # one padded width for every batch (packed SFT: static shapes for compile)
    plan_seq: int = 0          # tokens per micro-batch row for the memory plan


class SFT:
    """Supervised: learn the assistant's answers token by token (a pair trains on prompt + chosen)."""
    name = "sft"
    metrics: tuple[str, ...] = ()
    note = ""

    def encode(self, cfg, tok, train_ex: list[dict], val_ex: list[dict]) -> Encoded:
        train_ex, val_ex = [as_conversation(e) for e in train_ex], [as_conversation(e) for e in val_ex]
        train_enc, stats = encode_all(tok, train_ex, cfg.max_seq_length, cfg.train_on_inputs)
        val_enc, _ = encode_all(tok, val_ex, cfg.max_seq_length, cfg.train_on_inputs)
        train = pack(train_enc, cfg.max_seq_length, cfg.seed) if cfg.packing else unpacked(train_enc)
        val = pack(val_enc, cfg.max_seq_length, cfg.seed) if cfg.packing else unpacked(val_enc)
        width = batch_width(train + val) if cfg.packing else None
        info = dict(train_sequences=len(train), val_sequences=len(val), truncated=stats.truncated,
                    dropped_no_target=stats.dropped_no_target, train_tokens=stats.tokens)
        self.note = " (packed)" if cfg.packing else ""
        return Encoded(train, val, info, width, width or batch_width(train) or cfg.max_seq_length)

    def collate(self, r, items: list) -> dict:
        b = collate(items, r.tok.pad_token_id, r.cfg.packing, r.width, flat_batches(r.cfg))
        b["n_units"] = b.pop("n_targets")
        return b

    def loss(self, r, net, batch: dict, n_global: float):
        inputs = {k: v.to(r.d.device, non_blocking=True) for k, v in batch.items() if k not in ("n_units", "n_tokens")}
        out = net(**inputs, num_items_in_batch=n_global)
        return out.loss, None

    def before_training(self, r) -> None:
        pass


def as_conversation(example: dict) -> dict:
    """A preference pair read for supervised training: the prompt followed by the chosen answer."""
    if "chosen" in example and "prompt" in example and "messages" not in example:
        return {"messages": list(example["prompt"]) + list(example["chosen"])}
    return example


@dataclass
class PairItem:
    """One encoded pair and, for DPO, its reference log-probabilities (the starting weights')."""
    pair: P.EncodedPair
    ref: tuple[float, float] | None = None


class Preference:
    """DPO and ORPO: one forward of [chosen; rejected] rows, summed answer log-probs, a loss per pair."""
    name = "pref"
    metrics = ("reward_margin", "pref_accuracy")
    needs_reference = False
    note = ""

    def encode(self, cfg, tok, train_ex: list[dict], val_ex: list[dict]) -> Encoded:
        counts = dict(truncated=0, dropped_no_target=0, train_tokens=0)

        def items(examples, is_train):
            out = []
            for ex in examples:
                pair = P.encode_pair(tok, ex, cfg.max_seq_length)
                if pair is None:
                    counts["dropped_no_target"] += is_train
                    continue
                counts["truncated"] += is_train and pair.truncated
                counts["train_tokens"] += is_train and (len(pair.chosen_ids) + len(pair.rejected_ids))
                out.append(PairItem(pair))
            return out
        train, val = items(train_ex, True), items(val_ex, False)
        longest = max((max(len(i.pair.chosen_ids), len(i.pair.rejected_ids)) for i in train + val), default=cfg.max_seq_length)
        info = dict(train_sequences=len(train), val_sequences=len(val), train_pairs=len(train), val_pairs=len(val), **counts)
        # the memory plan sees rows of `plan_seq` tokens: each pair is two rows (chosen and rejected)
        return Encoded(train, val, info, None, 2 * longest)

    def collate(self, r, items: list) -> dict:
        b = P.collate_pairs([i.pair for i in items], r.tok.pad_token_id)
        b["n_tokens"] = P.real_tokens(b)
        b["n_units"] = len(items)
        if self.needs_reference and items and items[0].ref is not None:
            b["ref"] = torch.tensor([i.ref[0] for i in items] + [i.ref[1] for i in items], dtype=torch.float32)
        return b

    def scores(self, r, net, batch: dict):
        """(loss per pair [B], chosen reward [B], rejected reward [B]) for this method."""
        raise NotImplementedError

    def loss(self, r, net, batch: dict, n_global: float):
        loss, chosen, rejected = self.scores(r, net, batch)
        return loss.sum() / n_global, P.pair_sums(chosen, rejected)

    def before_training(self, r) -> None:
        pass


class DPO(Preference):
    """Sigmoid DPO against the starting weights' log-probs, computed once before step 1 (core.engine.reference)."""
    name = "dpo"
    needs_reference = True

    def scores(self, r, net, batch):
        logp, _n = P.sequence_logps(net, batch)
        ref = batch["ref"].to(logp.device)
        half = logp.shape[0] // 2
        return P.dpo_loss(logp[:half], logp[half:], ref[:half], ref[half:], r.cfg.pref_beta)

    def before_training(self, r) -> None:
        from core.engine.reference import attach_reference
        attach_reference(r, self)


class ORPO(Preference):
    """ORPO: the chosen answer's NLL plus the odds-ratio term; no reference pass."""
    name = "orpo"

    def scores(self, r, net, batch):
        logp, n = P.sequence_logps(net, batch)
        half = logp.shape[0] // 2
        return P.orpo_loss(logp[:half], logp[half:], n[:half], n[half:], r.cfg.pref_beta)


METHODS = {"sft": SFT, "dpo": DPO, "orpo": ORPO}


def method_for(cfg):
    return METHODS[cfg.method]()
