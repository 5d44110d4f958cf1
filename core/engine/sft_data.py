"""Turn examples into token ids with a loss mask, split train/validation, pack, and batch.

The loss mask comes from the model's own chat template (core/data/render.py, shared with the
Dataset tab's preview so the two cannot drift): each assistant turn's characters are found by
rendering the conversation up to that turn, so only the assistant's words (and the template's
end-of-turn token after them) are learned.

Packing: documents of any length are packed into sequences of at most max_seq_length tokens, and
every packed batch is padded to one width for the whole run (one static shape for the compiled
layers). Each document restarts its position ids at 0 and there is no attention mask, so
transformers (masking_utils.find_packed_sequence_indices, 5.x) derives a block-diagonal causal
mask from the position ids for sdpa and eager attention (only without a KV cache: add_lora turns
use_cache off); flash_attention_2 gets each micro-batch joined into one row (collate's `flat`), the
only shape in which its varlen kernel reads boundaries from position ids. Documents never attend to
each other. The padding forms a "document" of its own that no label reads. Only real tokens are
counted (n_tokens).
"""
from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass, field

import torch

from core.data.render import IGNORE, has_target, render


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


@dataclass
class EncodeStats:
    examples: int = 0
    truncated: int = 0
    dropped_no_target: int = 0
    tokens: int = 0
    notes: list[str] = field(default_factory=list)


def encode_example(tok, example: dict, max_len: int, train_on_inputs: bool, stats: EncodeStats) -> list[Encoded]:
    stats.examples += 1
    r = render(tok, example, train_on_inputs)
    if r.is_text:
        # a long document becomes several training sequences, not a truncated one
        ids = r.ids
        chunks = [ids[i:i + max_len] for i in range(0, len(ids), max_len)] or [[]]
        out = [Encoded(c, list(c)) for c in chunks if len(c) > 1]
        stats.tokens += sum(len(c.input_ids) for c in out)
        return out
    ids, labels = r.ids, r.labels
    if len(ids) > max_len:
        stats.truncated += 1
        ids, labels = ids[:max_len], labels[:max_len]
    if not has_target(labels):
        stats.dropped_no_target += 1
        return []
    stats.tokens += len(ids)
    return [Encoded(ids, labels)]


def encode_all(tok, examples: list[dict], max_len: int, train_on_inputs: bool) -> tuple[list[Encoded], EncodeStats]:
    stats = EncodeStats()
    out: list[Encoded] = []
    for ex in examples:
        out += encode_example(tok, ex, max_len, train_on_inputs, stats)
    return out, stats


def split(examples: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic split by a hash of each example, so it never depends on row order or world size."""
    if val_fraction <= 0 or len(examples) < 2:
        return list(examples), []
    keyed = sorted(range(len(examples)), key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    n_val = max(1, int(round(len(examples) * val_fraction)))
    n_val = min(n_val, len(examples) - 1)
    val_idx = set(keyed[:n_val])
    train = [e for i, e in enumerate(examples) if i not in val_idx]
    val = [e for i, e in enumerate(examples) if i in val_idx]
    return train, val


@dataclass
class Sequence:
    """One training row: one example, or several packed ones."""
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]


def pack(items: list[Encoded], max_len: int, seed: int) -> list[Sequence]:
    """Best-fit-decreasing into bins of max_len tokens: each document, longest first, goes into the
    fullest bin it still fits (a sorted list of free space, so n log n, not n x bins). Each document
    restarts its positions at 0 and its first label is masked, so nothing is learned across a
    document boundary: the loss equals the unpacked loss on the same rows."""
    order = sorted(range(len(items)), key=lambda i: -len(items[i].input_ids))
    bins: list[Sequence] = []
    free: list[tuple[int, int]] = []  # (tokens still free, bin index), sorted
    for i in order:
        it = items[i]
        n = len(it.input_ids)
        k = bisect.bisect_left(free, (n, -1))
        if k < len(free):
            space, b = free.pop(k)
        else:
            bins.append(Sequence([], [], []))
            space, b = max_len, len(bins) - 1
        seq = bins[b]
        seq.input_ids += it.input_ids
        seq.labels += [IGNORE] + it.labels[1:]
        seq.position_ids += list(range(n))
        if space > n:
            bisect.insort(free, (space - n, b))
    random.Random(seed).shuffle(bins)
    return bins


def batch_width(seqs: list[Sequence]) -> int | None:
    """The one width every packed batch of a run is padded to (None when there are none)."""
    return max((len(s.input_ids) for s in seqs), default=None)


def unpacked(items: list[Encoded]) -> list[Sequence]:
    return [Sequence(it.input_ids, it.labels, list(range(len(it.input_ids)))) for it in items]


def collate(rows: list[Sequence], pad_id: int, packed: bool, pad_to: int | None = None, flat: bool = False) -> dict:
    """Pad a list of sequences to one tensor batch. Packed batches carry position ids and no
    attention mask (transformers derives the per-document mask from the position ids). `flat`:
    the batch's rows joined into one row, for flash_attention_2, whose varlen path reads document
    boundaries from position ids only in a batch of one (transformers' _is_packed_sequence); every
    row starts with a masked label, so joining them learns exactly the same."""
    width = pad_to or max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r.input_ids)
        ids[i, :n] = torch.tensor(r.input_ids)
        labels[i, :n] = torch.tensor(r.labels)
        pos[i, :n] = torch.tensor(r.position_ids)
        pos[i, n:] = torch.arange(width - n)  # padding forms its own "document"
        mask[i, :n] = 1
    batch = {"input_ids": ids, "labels": labels, "position_ids": pos}
    if not packed:
        batch["attention_mask"] = mask
    batch["n_tokens"] = int(mask.sum())
    batch["n_targets"] = int((labels[:, 1:] != IGNORE).sum())
    if flat and packed:
        for k in ("input_ids", "labels", "position_ids"):
            batch[k] = batch[k].reshape(1, -1)
    return batch


def flat_batches(cfg) -> bool:
    """Packed micro-batches go to flash_attention_2 as one joined row (see collate)."""
    return bool(cfg.packing) and cfg.attn_implementation == "flash_attention_2"


def epoch_batches(seqs: list[Sequence], micro_batch: int, world: int, rank: int, seed: int, epoch: int) -> list[list[Sequence]]:
    """This rank's micro-batches for one epoch. Every rank gets the same count, so DDP stays in step."""
    order = list(range(len(seqs)))
    random.Random(seed * 1000 + epoch).shuffle(order)
    batches = [[seqs[i] for i in order[j:j + micro_batch]] for j in range(0, len(order), micro_batch)]
    per_rank = len(batches) // world
    return batches[rank::world][:per_rank]
