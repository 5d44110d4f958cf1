"""DPO's reference: the answer log-probabilities of the STARTING weights (the base model, or the base
with the start adapter), for every training and validation pair, computed once before step 1 with
the very model that then trains (no second copy in memory: before the first update the policy is
the reference), its decoder run exactly as the pass that scores the policy against it runs
(reference_logps says why).

They are kept in the run folder (RUN/reference_logps.json, core.rundir): a resumed attempt starts
from a checkpoint's weights, which are no longer the starting ones, so it reads them back instead.
JSON keeps every float exactly (Python writes the shortest repr that reads back the same).
"""
from __future__ import annotations

import contextlib

import torch

from core.engine import preference as P
from core.engine.common import all_reduce_sum, barrier, log, write_json
from core.engine.train_log import rank_batches
from core.errors import InputError, Problem
from core.messages import Msg
from core.rundir import read_json


@contextlib.contextmanager
def nothing_saved():
    """Gradients recorded, never used: every tensor the forward saves for a backward is dropped as it
    is saved (no copy on the GPU, none offloaded to the host). A backward inside raises."""
    def unpack(_):
        raise RuntimeError("the reference pass keeps nothing for a backward")
    with torch.autograd.graph.saved_tensors_hooks(lambda t: None, unpack):
        yield


def reference_logps(r, items: list, *, validation: bool = False) -> list[tuple[float, float]]:
    """(chosen, rejected) summed answer log-probs of each item under the model as it is now; the
    ranks share the pairs out and add their parts up. Each pair's reference is computed as the
    policy it will be compared with is: training pairs as the training step runs, validation pairs
    (validation=True) as the validation pass runs (train_log.evaluate: eval mode, no gradients), so
    a held-out pair's margin starts at 0 too and its accuracy is not moved by kernel rounding.

    Computed as the training step computes the policy's: training mode (dropout modules off) with
    the decoder's gradients recorded and dropped. On a GPU torch.compile builds other kernels for
    eval mode or no_grad, and their bf16 rounding, summed over 1,536 answer tokens, moved the first
    DPO loss off log 2 (0.60-0.82 instead of 0.6931 on the 8B shape: docs/performance.md). Nothing
    the forward saves for a backward is kept (nothing_saved), and the output layer, which runs
    eagerly, runs without gradients (head_grad=False): recording and keeping a micro-batch's graph
    made this pass the run's memory peak on the H200 (7.63-7.79 GiB at mb 1 against 7.56)."""
    out = torch.zeros(len(items), 2, dtype=torch.float64, device=r.d.device)
    net = r.eval_net
    with _run_as(net, validation):
        for group, counts in rank_batches(list(range(len(items))), r.cfg.micro_batch_size, r.d, r.fsdp):
            batch = P.collate_pairs([items[i].pair for i in group], r.tok.pad_token_id)
            with r.autocast:
                logp, _n = P.sequence_logps(net, batch, head_grad=False)
            if counts:
                half = len(group)
                out[group, 0] = logp[:half].double().to(out.device)
                out[group, 1] = logp[half:].double().to(out.device)
    all_reduce_sum(out, r.d)
    return [(float(c), float(w)) for c, w in out.tolist()]


@contextlib.contextmanager
def _run_as(net, validation: bool):
    """The mode of the pass the reference will be compared with: the validation pass's (eval mode,
    no gradients), or the training step's (training mode with dropout off, gradients recorded and
    dropped). Training mode again afterwards."""
    if validation:
        net.eval()
        with torch.no_grad():
            yield
        net.train()
        return
    net.train()
    dropouts = [m for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    for m in dropouts:
        m.eval()
    with nothing_saved():
        yield
    for m in dropouts:
        m.train()


def attach_reference(r, method) -> None:
    """Give every pair its reference log-probs: computed now on a fresh start, read back on a resume."""
    path = r.files.reference
    if r.step > 0:
        saved = read_json(path)
        if len(saved.get("train", [])) != len(r.train_seqs) or len(saved.get("val", [])) != len(r.val_seqs):
            raise InputError(problems=[Problem("method", Msg("train.reference_missing", path=str(path)),
                                               Msg("train.reference_missing.hint"))],
                             title=Msg("train.cannot_resume_title"))
        for items, values in ((r.train_seqs, saved["train"]), (r.val_seqs, saved["val"])):
            for item, (c, w) in zip(items, values):
                item.ref = (float(c), float(w))
        log(r.d, f"[danlu] reference log-probabilities of {len(r.train_seqs) + len(r.val_seqs)} pairs read from {path.name}")
        return
    if r.records:  # still set-up for the stall watchdog and the page (its loading allowance applies)
        write_json(r.progress_path, dict(phase="loading", step=0, total_steps=None, detail="reference"), durable=False)
    values = {}
    for name, items in (("train", r.train_seqs), ("val", r.val_seqs)):
        values[name] = reference_logps(r, items, validation=name == "val")
        for item, ref in zip(items, values[name]):
            item.ref = ref
    if r.d.main:
        write_json(path, dict(method=method.name, start_adapter=r.cfg.start_adapter, dataset_sha256=r.dataset_sha,
                              **values))
    barrier(r.d)
    log(r.d, f"[danlu] reference log-probabilities of {len(r.train_seqs) + len(r.val_seqs)} pairs computed "
             f"with the starting weights (kept in {path.name} for resume)")
