"""What the training recipe logs and measures between its steps: metrics lines, validation loss,
the loss curve rewound on resume, and the agreement of all ranks on stopping.

    metrics.jsonl   one line per log: step, epoch, loss, lr, grad_norm, the method's metrics
                    (dpo/orpo: reward_margin, pref_accuracy), tokens (real tokens in the window, all
                    ranks), tokens_per_s (of those), time (since the recipe started), wall (the clock:
                    Start to first loss, measured from outside), gpu_mem_gib; or an eval line
                    (eval_loss, and eval_reward_margin, eval_pref_accuracy for dpo/orpo)

Every function takes the run's state (core.engine.state.Run).

Imported by core/recipes/train.py (which re-exports rewind_jsonl and read_losses).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from core.messages import Msg
from core.engine.common import Diverged, StopFlag, all_reduce_sum, append_jsonl, write_json
from core.engine.state import new_window
from core.rundir import after_checkpoint, read_jsonl
from core.workspace import atomic_write_text


def rank_batches(items: list, micro_batch: int, d, same_count: bool) -> list[tuple[list, bool]]:
    """This rank's share of `items` in micro-batches, each with whether it counts. same_count: every
    rank runs as many forwards (FSDP gathers weights in each; a rank with fewer items repeats one
    batch that does not count)."""
    mine = items[d.rank::d.world]
    out = [(mine[i:i + micro_batch], True) for i in range(0, len(mine), micro_batch)]
    if same_count and items:
        per_rank = -(-len(items) // d.world)                      # the most items any rank has
        out += [(items[:1], False)] * (-(-per_rank // micro_batch) - len(out))
    return out


@torch.no_grad()
def evaluate(r, items: list | None = None):
    """(mean loss per unit, [mean of each method metric]) over the validation items, all ranks; None without any."""
    items = r.val_seqs if items is None else items
    if not items:
        return None
    net, method = r.eval_net, r.method
    net.eval()
    total = torch.zeros(2 + len(method.metrics), dtype=torch.float64, device=r.d.device)
    for group, counts in rank_batches(items, r.cfg.micro_batch_size, r.d, r.fsdp):
        b = method.collate(r, group)
        n = b["n_units"]
        if n == 0:
            continue
        with r.autocast:
            loss, sums = method.loss(r, net, b, n)
        if counts:
            total[0] += float(loss) * n
            total[1] += n
            if sums is not None:
                total[2:] += sums.to(total.device)
    all_reduce_sum(total, r.d)
    net.train()
    if total[1] <= 0:
        return None
    return float(total[0] / total[1]), [float(v / total[1]) for v in total[2:]]


def stop_requested(stop: StopFlag, d) -> bool:
    """All ranks agree on stopping at the same step, otherwise the next all-reduce would hang."""
    flag = torch.tensor([1.0 if stop.requested else 0.0], device=d.device)
    if d.world > 1:
        all_reduce_sum(flag, d)
    return bool(flag.item() > 0)


def log_step(r) -> None:
    """One metrics line (rank 0) for the steps since the last; counts non-finite logs in a row
    (r.bad_logs) and stops the run when there are cfg.nan_patience of them."""
    d, w, names = r.d, r.window, r.method.metrics
    sums = w["sums"].tolist() if w["sums"] is not None else [0.0] * len(names)
    stats = torch.tensor([float(w["loss"]), float(w["tokens"]), *sums], dtype=torch.float64, device=d.device)
    all_reduce_sum(stats, d)
    units = w["units"]
    loss = float(stats[0]) / units if units else float("nan")
    extra = {name: float(v) / units if units else None for name, v in zip(names, stats[2:].tolist())}
    now = time.time()
    tps = float(stats[1]) / max(1e-9, now - w["t"])  # real tokens only: padding is never counted
    gn = float(r.grad_norm)
    r.window = new_window()
    finite = math.isfinite(loss) and math.isfinite(gn)
    r.bad_logs = 0 if finite else r.bad_logs + 1
    if r.records:  # rank 0, and machine 1, 2, ...'s first process in its own folder
        rec = dict(step=r.step, epoch=round(r.step / r.steps_per_epoch, 4), loss=loss if math.isfinite(loss) else None,
                   lr=r.sched.get_last_lr()[0], grad_norm=gn if math.isfinite(gn) else None,
                   **{k: (v if v is not None and math.isfinite(v) else None) for k, v in extra.items()},
                   tokens=int(stats[1]), tokens_per_s=round(tps, 1), time=round(now - r.t_start, 2), wall=round(now, 3))
        if not finite:
            rec["nonfinite"] = True
        if d.cuda:
            rec["gpu_mem_gib"] = round(torch.cuda.max_memory_allocated(d.device) / 2**30, 2)
        append_jsonl(r.metrics_path, rec)
        write_json(r.progress_path, dict(phase="training", step=r.step, total_steps=r.total_steps, epoch=rec["epoch"],
                                         time=now), durable=False)  # rewritten every log; the metrics line is the record
        eta = (now - r.t_start) / max(1, r.step) * (r.total_steps - r.step)
        print(f"step {r.step}/{r.total_steps} | epoch {rec['epoch']:.2f} | loss {loss:.4f}{_said(extra)} | "
              f"lr {rec['lr']:.2e} | grad norm {gn:.3f} | {tps:,.0f} tok/s | eta {eta:.0f}s", flush=True)
    if r.bad_logs >= r.cfg.nan_patience:
        raise Diverged(Msg("fail.diverged", n=r.bad_logs, step=r.step), hint=Msg("fail.diverged.hint"))


def _said(extra: dict, prefix: str = "") -> str:
    """The method's metrics on the console line: ' | reward margin 0.1234 | pref accuracy 0.7500'."""
    return "".join(f" | {prefix}{k.replace('_', ' ')} {v:.4f}" for k, v in extra.items() if v is not None)


def log_eval(r):
    """Validation now: an eval line in metrics.jsonl (eval_loss and eval_<metric>); returns eval_loss."""
    out = evaluate(r)
    if out is None:
        return None
    eval_loss, values = out
    extra = dict(zip(r.method.metrics, values))
    r.last_eval = {f"eval_{k}": v for k, v in extra.items()}
    if r.records:
        append_jsonl(r.metrics_path, dict(step=r.step, epoch=round(r.step / r.steps_per_epoch, 4), eval_loss=eval_loss,
                                          **{f"eval_{k}": v for k, v in extra.items()},
                                          time=round(time.time() - r.t_start, 2)))
        print(f"step {r.step} | eval loss {eval_loss:.4f}{_said(extra, 'eval ')}", flush=True)
    return eval_loss


def rewind_jsonl(path: Path, step: int) -> None:
    """A resumed run continues the loss curve (and the probe answers) from its checkpoint: lines that
    the attempt that stopped logged after that step move to <name>.after-checkpoint.jsonl, so no
    step appears twice."""
    if not path.exists():
        return
    keep, drop, torn = [], [], False
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            rec_step = json.loads(line).get("step", 0)
        except ValueError:
            torn = True  # a half-written last line from a killed attempt
            continue
        (keep if rec_step <= step else drop).append(line if line.endswith("\n") else line + "\n")
    if drop:
        with open(after_checkpoint(path), "a", encoding="utf-8") as f:
            f.writelines(drop)
    if drop or torn:
        atomic_write_text(path, "".join(keep))


def read_losses(path: Path) -> list[float]:
    return [rec["loss"] for rec in read_jsonl(path) if rec.get("loss") is not None]
