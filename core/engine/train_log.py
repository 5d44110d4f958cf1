"""What the training recipe logs and measures between its steps: metrics lines, validation loss,
the loss curve rewound on resume, and the agreement of all ranks on stopping.

    metrics.jsonl   one line per log: step, epoch, loss, lr, grad_norm, tokens (real tokens in the
                    window, all ranks), tokens_per_s (of those), time (since the recipe started),
                    wall (the clock: Start to first loss, measured from outside), gpu_mem_gib; or an eval line

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
from core.engine.sft_data import collate, flat_batches
from core.rundir import after_checkpoint, read_jsonl
from core.workspace import atomic_write_text


@torch.no_grad()
def evaluate(model, val, cfg, d, pad_id, autocast, width: int | None = None):
    """Mean loss per answer token over this rank's share of the validation sequences."""
    if not val:
        return None
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=d.device)
    mine = val[d.rank::d.world]
    for i in range(0, len(mine), cfg.micro_batch_size):
        b = collate(mine[i:i + cfg.micro_batch_size], pad_id, cfg.packing, width, flat_batches(cfg))
        n = b.pop("n_targets")
        b.pop("n_tokens")
        if n == 0:
            continue
        with autocast:
            out = model(**{k: v.to(d.device) for k, v in b.items()}, num_items_in_batch=n)
        total += torch.tensor([float(out.loss) * n, n], dtype=torch.float64, device=d.device)
    all_reduce_sum(total, d)
    model.train()
    return float(total[0] / total[1]) if total[1] > 0 else None


def stop_requested(stop: StopFlag, d) -> bool:
    """All ranks agree on stopping at the same step, otherwise the next all-reduce would hang."""
    flag = torch.tensor([1.0 if stop.requested else 0.0], device=d.device)
    if d.world > 1:
        all_reduce_sum(flag, d)
    return bool(flag.item() > 0)


def log_step(cfg, d, step, epoch, steps_per_epoch, total_steps, window, grad_norm, sched, metrics_path,
             progress_path, t_start, bad_logs) -> int:
    """One metrics line (rank 0) for the steps since the last; returns the count of non-finite logs in a row."""
    stats = torch.tensor([float(window["loss"]), float(window["tokens"])], dtype=torch.float64, device=d.device)
    all_reduce_sum(stats, d)
    targets = window["targets"]
    loss = float(stats[0]) / targets if targets else float("nan")
    now = time.time()
    tps = float(stats[1]) / max(1e-9, now - window["t"])  # real tokens only: padding is never counted
    gn = float(grad_norm) if isinstance(grad_norm, torch.Tensor) else float(grad_norm)
    window.update(loss=0.0, targets=0, tokens=0, t=now)
    finite = math.isfinite(loss) and math.isfinite(gn)
    bad_logs = 0 if finite else bad_logs + 1
    if d.main:
        rec = dict(step=step, epoch=round(step / steps_per_epoch, 4), loss=loss if finite or math.isfinite(loss) else None,
                   lr=sched.get_last_lr()[0], grad_norm=gn if math.isfinite(gn) else None,
                   tokens=int(stats[1]), tokens_per_s=round(tps, 1), time=round(now - t_start, 2), wall=round(now, 3))
        if not finite:
            rec["nonfinite"] = True
        if d.cuda:
            rec["gpu_mem_gib"] = round(torch.cuda.max_memory_allocated(d.device) / 2**30, 2)
        append_jsonl(metrics_path, rec)
        write_json(progress_path, dict(phase="training", step=step, total_steps=total_steps, epoch=rec["epoch"], time=now),
                   durable=False)  # rewritten every log; the metrics line above is the durable record
        eta = (now - t_start) / max(1, step) * (total_steps - step)
        print(f"step {step}/{total_steps} | epoch {rec['epoch']:.2f} | loss {loss:.4f} | lr {rec['lr']:.2e} | "
              f"grad norm {gn:.3f} | {tps:,.0f} tok/s | eta {eta:.0f}s", flush=True)
    if bad_logs >= cfg.nan_patience:
        raise Diverged(Msg("fail.diverged", n=bad_logs, step=step), hint=Msg("fail.diverged.hint"))
    return bad_logs


def log_eval(model, val, cfg, d, pad_id, autocast, step, steps_per_epoch, metrics_path, t_start, width=None):
    if not val:
        return None
    eval_loss = evaluate(model, val, cfg, d, pad_id, autocast, width)
    if d.main and eval_loss is not None:
        append_jsonl(metrics_path, dict(step=step, epoch=round(step / steps_per_epoch, 4), eval_loss=eval_loss,
                                        time=round(time.time() - t_start, 2)))
        print(f"step {step} | eval loss {eval_loss:.4f}", flush=True)
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
