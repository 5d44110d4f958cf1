"""QLoRA / LoRA supervised fine-tuning. One process per GPU (or CPU worker), started by torchrun.

    # 1 GPU (or CPU)
    torchrun --standalone --nproc-per-node 1 -m core.recipes.train --config RUN/config.yaml
    # N GPUs on this machine
    torchrun --standalone --nproc-per-node N -m core.recipes.train --config RUN/config.yaml
    # N machines with G GPUs each: on machine R (0 .. N-1), with HOST = machine 0's address
    torchrun --nnodes N --node-rank R --master-addr HOST --master-port 29500 --nproc-per-node G \\
        -m core.recipes.train --config RUN/config.yaml
    # continue from the newest complete checkpoint in RUN/checkpoints
    ... -m core.recipes.train --config RUN/config.yaml --resume

`python app.py train cfg.yaml [--nproc N]` builds exactly these commands (Show command in the GUI).
The run directory is the config file's folder. The recipe writes there:
    metrics.jsonl   one line per log (step, epoch, loss, lr, grad_norm, tokens_per_s, time) or eval
    progress.json   phase, step / total steps (what the supervisor's stall watchdog reads)
    checkpoints/    step-NNNNNNN/ (adapter, optimizer, trainer state, manifest written last)
    adapter/        the final LoRA adapter + tokenizer and chat template
    probes.jsonl    answers to cfg.probe_prompts at each checkpoint and at the end (when any are set)
    result.json     on success;  error.json (+ errors/rank<R>.json) with reason and hint on failure

What happens, top to bottom: set up the process group (NCCL on GPUs, gloo on CPU), read the data
and render it through the model's chat template (loss only on assistant tokens), split off the
validation examples, pack, load the base model on this rank's device (nf4 4-bit with double
quantisation and bf16 compute on CUDA), add LoRA, wrap in DDP, then loop: micro-batches with
gradient accumulation, clipping, AdamW, the learning-rate schedule, logging, validation and
atomic checkpoints. SIGTERM (the Stop button) saves a checkpoint and ends the loop.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from core import knobs
from core.config import load_config, to_dict
from core.data import load_examples
from core.errors import InputError, Problem
from core.models import resolve_model
from core.recipes import checkpoint as ckpt
from core.recipes import speed
from core.recipes.common import (Diverged, DiskFull, StopFlag, all_reduce_sum, barrier, fault, load_base_model,
                                 load_tokenizer, log, record_failure, setup_dist, write_json, append_jsonl)
from core.recipes.probes import answer_probes
from core.recipes.sft_data import collate, encode_all, epoch_batches, pack, split, unpacked
from core.rundir import RunDir, adapter_info_path, after_checkpoint, read_jsonl
from core.workspace import atomic_write_text, sha256_file


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="RUN/config.yaml; the run directory is its folder")
    ap.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    return ap.parse_args(argv)



def lr_lambda(cfg, total_steps: int):
    warmup = int(round(cfg.warmup_ratio * total_steps))

    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.lr_scheduler == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if cfg.lr_scheduler == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return f


def build_optimizer(cfg, params, d):
    if cfg.optimizer == "paged_adamw_8bit" and d.cuda:
        import bitsandbytes as bnb
        return bnb.optim.PagedAdamW8bit(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=d.cuda)


def prepare_data(cfg, tok, d, run_dir: Path):
    loaded = load_examples(cfg.dataset, cfg.dataset_format, cfg.column_map)
    train_ex, val_ex = split(loaded.examples, cfg.val_fraction, cfg.seed)
    train_enc, stats = encode_all(tok, train_ex, cfg.max_seq_length, cfg.train_on_inputs)
    val_enc, _ = encode_all(tok, val_ex, cfg.max_seq_length, cfg.train_on_inputs)
    if not train_enc:
        raise InputError(problems=[Problem("dataset", "no example has any answer tokens left to learn",
                                           "check that assistant answers are present and max_seq_length is large enough")],
                         title="Nothing to train on")
    train = pack(train_enc, cfg.max_seq_length, cfg.seed) if cfg.packing else unpacked(train_enc)
    val = pack(val_enc, cfg.max_seq_length, cfg.seed) if cfg.packing else unpacked(val_enc)
    info = dict(format=loaded.format, rows=loaded.rows, train_examples=len(train_ex), val_examples=len(val_ex),
                train_sequences=len(train), val_sequences=len(val), truncated=stats.truncated,
                dropped_no_target=stats.dropped_no_target, train_tokens=stats.tokens)
    log(d, f"[danlu] data: {loaded.rows} rows ({loaded.format}) -> {len(train_ex)} train / {len(val_ex)} validation; "
           f"{stats.truncated} cut to {cfg.max_seq_length} tokens; {stats.dropped_no_target} without answer tokens dropped; "
           f"{len(train)} training sequences{' (packed)' if cfg.packing else ''}")
    return train, val, info


def add_lora(model, cfg, d):
    from peft import LoraConfig, get_peft_model
    for p in model.parameters():
        p.requires_grad_(False)
    if cfg.gradient_checkpointing:
        # Non-reentrant checkpointing works with DDP and torch.compile. We do not call
        # prepare_model_for_kbit_training: its fp32 upcast of embeddings/norms/lm_head costs ~28%
        # speed and ~5 GiB on an 8B model for no gain with bf16 compute.
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    targets = cfg.target_modules.strip()
    lcfg = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, bias="none",
                      task_type="CAUSAL_LM",
                      target_modules="all-linear" if targets == "all-linear" else [t.strip() for t in targets.split(",")])
    return get_peft_model(model, lcfg)


@torch.no_grad()
def evaluate(model, val, cfg, d, pad_id, autocast):
    """Mean loss per answer token over this rank's share of the validation sequences."""
    if not val:
        return None
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=d.device)
    mine = val[d.rank::d.world]
    for i in range(0, len(mine), cfg.micro_batch_size):
        b = collate(mine[i:i + cfg.micro_batch_size], pad_id, cfg.packing)
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


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg_path = Path(args.config).resolve()
    run_dir = cfg_path.parent
    d = setup_dist()
    cfg = None
    try:
        cfg = load_config(cfg_path)
        return train(cfg, run_dir, d, resume=args.resume)
    except BaseException as exc:  # every failure leaves error.json with a reason, then re-raises
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        info = record_failure(run_dir, d.rank, exc, cfg)
        print(f"[danlu] rank {d.rank} failed: {info['reason']}: {info['message']}\n[danlu] hint: {info['hint']}",
              file=sys.stderr, flush=True)
        raise


def train(cfg, run_dir: Path, d, resume: bool) -> int:
    t_start = time.time()
    run = RunDir(run_dir)
    progress_path = run.progress
    if d.main:
        write_json(progress_path, dict(phase="loading", step=0, total_steps=None, time=t_start))
    ref = resolve_model(cfg.base_model, builtin="require")  # prepared by the supervisor
    dataset_sha = sha256_file(Path(cfg.dataset))
    tok = load_tokenizer(ref.source, cfg, ref.local)
    train_seqs, val_seqs, data_info = prepare_data(cfg, tok, d, run_dir)

    model = load_base_model(ref.source, cfg, d, ref.local)
    # The same seed on every rank: the LoRA weights start identical (DDP needs that) and the run
    # can be repeated exactly ("same seed + same data + same settings = the same run").
    torch.manual_seed(cfg.seed)
    model = add_lora(model, cfg, d)
    feats = speed.apply(model, cfg, d)  # fused loss, compiled layers: GPU only, each with a CPU fallback
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    log(d, f"[danlu] model {cfg.base_model} on {d.device} x{d.world}, quantization {cfg.quantization}, "
           f"LoRA r={cfg.lora_rank}: {n_trainable / 1e6:.2f}M trainable parameters; speed: {feats or 'none'}")

    batches0 = epoch_batches(train_seqs, cfg.micro_batch_size, d.world, d.rank, cfg.seed, 0)
    steps_per_epoch = len(batches0) // cfg.gradient_accumulation_steps
    if steps_per_epoch < 1:
        raise InputError(problems=[Problem("dataset", f"only {len(train_seqs)} training sequences: not enough for one step of "
                                                      f"{cfg.micro_batch_size} x {cfg.gradient_accumulation_steps} x {d.world} GPUs",
                                           "add examples, or lower micro_batch_size / gradient_accumulation_steps")],
                         title="The dataset is too small for these settings")
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.num_epochs * steps_per_epoch))

    ddp = model
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        ddp = DistributedDataParallel(model, device_ids=[d.local_rank] if d.cuda else None,
                                      find_unused_parameters=False)
    opt = build_optimizer(cfg, trainable, d)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, total_steps))
    autocast = torch.autocast("cuda", dtype=speed.autocast_dtype(cfg, d)) if d.cuda else nullcontext()
    offload = speed.activation_offload(cfg, d, model.config.hidden_size)
    if cfg.offload_activations and d.cuda:
        feats.append("offload_activations")

    step = 0
    if resume:
        step = restore(run_dir, model, opt, sched, cfg, d, dataset_sha)
    ckpt_root = run.checkpoints
    metrics_path = run.metrics
    if d.main:
        for log_file in (metrics_path, run.probes):
            rewind_jsonl(log_file, step)
        check_disk(run_dir, model, step)  # fail now, not after an hour of training
    stop = StopFlag().install()
    if d.main:
        write_json(run.run_info, dict(data_info, steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                                                   world_size=d.world, device=str(d.device), trainable_params=n_trainable,
                                                   dataset_sha256=dataset_sha, resumed_from_step=step, speed=feats))
    log(d, f"[danlu] training {total_steps} steps ({steps_per_epoch} per epoch), starting at step {step}")

    pad_id = tok.pad_token_id
    bad_logs, last_saved = 0, step
    window = dict(loss=0.0, targets=0, tokens=0, t=time.time())
    grad_norm = torch.zeros(())
    model.train()
    epoch = step // steps_per_epoch
    skip = (step % steps_per_epoch) * cfg.gradient_accumulation_steps
    while step < total_steps:
        batches = epoch_batches(train_seqs, cfg.micro_batch_size, d.world, d.rank, cfg.seed, epoch)
        batches = batches[: steps_per_epoch * cfg.gradient_accumulation_steps][skip:]
        skip = 0
        for w in range(0, len(batches), cfg.gradient_accumulation_steps):
            group = [collate(b, pad_id, cfg.packing) for b in batches[w:w + cfg.gradient_accumulation_steps]]
            n_targets = torch.tensor([sum(b["n_targets"] for b in group)], dtype=torch.float64, device=d.device)
            all_reduce_sum(n_targets, d)
            n_global = max(1.0, float(n_targets))
            step_loss = 0.0
            for i, b in enumerate(group):
                window["tokens"] += b.pop("n_tokens")
                b.pop("n_targets")
                sync = nullcontext() if (d.world == 1 or i == len(group) - 1) else ddp.no_sync()
                with sync, offload():
                    with autocast:
                        out = ddp(**{k: v.to(d.device, non_blocking=True) for k, v in b.items()}, num_items_in_batch=n_global)
                    loss = out.loss
                    if fault("nan", step + 1):
                        loss = loss * float("nan")
                    # loss is sum/global-count on this rank; DDP averages over ranks, so scale back up
                    (loss * d.world).backward()
                step_loss += loss.detach().float()
            if cfg.max_grad_norm > 0:
                grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            window["loss"] += step_loss * n_global if isinstance(step_loss, torch.Tensor) else step_loss
            window["targets"] += n_global
            if fault("crash", step, d.rank):
                raise RuntimeError(f"injected crash at step {step} on rank {d.rank}")
            if fault("hang", step, d.rank):
                time.sleep(10_000)
            if fault("slow", step, d.rank):
                time.sleep(1.0)  # a step that takes a second longer (time-limit tests); a signal still stops it
            if fault("spam", step, d.rank):
                spam(int(knobs.get(knobs.SPAM_MB, "50")))

            done_epoch = (w + cfg.gradient_accumulation_steps) >= len(batches)
            if step % cfg.logging_steps == 0 or step == total_steps:
                bad_logs = log_step(cfg, d, step, epoch, steps_per_epoch, total_steps, window, grad_norm, sched,
                                    metrics_path, progress_path, t_start, bad_logs)
            evaluated = cfg.eval_steps and step % cfg.eval_steps == 0 and step < total_steps
            if evaluated:
                log_eval(model, val_seqs, cfg, d, pad_id, autocast, step, epoch, steps_per_epoch, metrics_path, t_start)
            stop_now = stop_requested(stop, d)
            if (cfg.save_steps and step % cfg.save_steps == 0 and step < total_steps) or (stop_now and step > last_saved):
                if bad_logs == 0:  # never checkpoint weights that produced NaN
                    save_checkpoint(ckpt_root, step, model, opt, sched, cfg, d, epoch, dataset_sha, data_info, run_dir)
                    last_saved = step
                    if not stop_now:  # a Stop should not wait for answers
                        answer_probes(model, tok, cfg, d, step, run_dir, autocast)
            if stop_now:
                log(d, f"[danlu] stopped on request at step {step}; the newest checkpoint is step {last_saved}")
                if d.main:
                    write_json(run.stopped, dict(step=step, checkpoint_step=last_saved, time=time.time()))
                barrier(d)
                return 0
            if step >= total_steps:
                break
            if done_epoch:
                break
        epoch += 1

    eval_loss = log_eval(model, val_seqs, cfg, d, pad_id, autocast, step, epoch, steps_per_epoch, metrics_path, t_start)
    if d.main:
        write_json(progress_path, dict(phase="saving", step=step, total_steps=total_steps, time=time.time()))
        save_adapter(model, tok, cfg, run_dir)
        answer_probes(model, tok, cfg, d, step, run_dir, autocast)
    barrier(d)
    if d.main:
        peak = torch.cuda.max_memory_allocated(d.device) / 2**30 if d.cuda else None
        losses = read_losses(metrics_path)
        write_json(run.result, dict(
            status="succeeded", steps=step, total_steps=total_steps, epochs=round(step / steps_per_epoch, 3),
            first_loss=losses[0] if losses else None, final_loss=losses[-1] if losses else None, eval_loss=eval_loss,
            runtime_s=round(time.time() - t_start, 1), peak_gpu_mem_gib=round(peak, 2) if peak else None,
            adapter_dir=str(run.adapter), world_size=d.world))
        write_json(progress_path, dict(phase="done", step=step, total_steps=total_steps, time=time.time()))
        log(d, f"[danlu] done: {step} steps, final loss {losses[-1] if losses else float('nan'):.4f}, adapter in {run.adapter}")
    return 0


def stop_requested(stop: StopFlag, d) -> bool:
    """All ranks agree on stopping at the same step, otherwise the next all-reduce would hang."""
    flag = torch.tensor([1.0 if stop.requested else 0.0], device=d.device)
    if d.world > 1:
        all_reduce_sum(flag, d)
    return bool(flag.item() > 0)


def log_step(cfg, d, step, epoch, steps_per_epoch, total_steps, window, grad_norm, sched, metrics_path,
             progress_path, t_start, bad_logs) -> int:
    stats = torch.tensor([float(window["loss"]), float(window["tokens"])], dtype=torch.float64, device=d.device)
    all_reduce_sum(stats, d)
    targets = window["targets"]
    loss = float(stats[0]) / targets if targets else float("nan")
    now = time.time()
    tps = float(stats[1]) / max(1e-9, now - window["t"])
    gn = float(grad_norm) if isinstance(grad_norm, torch.Tensor) else float(grad_norm)
    window.update(loss=0.0, targets=0, tokens=0, t=now)
    finite = math.isfinite(loss) and math.isfinite(gn)
    bad_logs = 0 if finite else bad_logs + 1
    if d.main:
        rec = dict(step=step, epoch=round(step / steps_per_epoch, 4), loss=loss if finite or math.isfinite(loss) else None,
                   lr=sched.get_last_lr()[0], grad_norm=gn if math.isfinite(gn) else None,
                   tokens_per_s=round(tps, 1), time=round(now - t_start, 2))
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
        raise Diverged(f"The loss was not a number (NaN or infinite) in {bad_logs} logged steps in a row, up to step {step}.",
                       hint="Lower the learning rate (e.g. halve it) and resume or retry; the last good checkpoint is kept.")
    return bad_logs


def log_eval(model, val, cfg, d, pad_id, autocast, step, epoch, steps_per_epoch, metrics_path, t_start):
    if not val:
        return None
    eval_loss = evaluate(model, val, cfg, d, pad_id, autocast)
    if d.main and eval_loss is not None:
        append_jsonl(metrics_path, dict(step=step, epoch=round(step / steps_per_epoch, 4), eval_loss=eval_loss,
                                        time=round(time.time() - t_start, 2)))
        print(f"step {step} | eval loss {eval_loss:.4f}", flush=True)
    return eval_loss


def adapter_state(model) -> dict:
    from peft import get_peft_model_state_dict
    return get_peft_model_state_dict(model)


def save_checkpoint(root, step, model, opt, sched, cfg, d, epoch, dataset_sha, data_info, run_dir):
    barrier(d)
    if d.main:
        check_disk(run_dir, model, step)
        peft_cfg = model.peft_config["default"].to_dict()
        state = dict(step=step, epoch=epoch, world_size=d.world, micro_batch_size=cfg.micro_batch_size,
                     gradient_accumulation_steps=cfg.gradient_accumulation_steps, dataset_sha256=dataset_sha,
                     config=to_dict(cfg), scheduler=sched.state_dict(), time=time.time(), data=data_info)
        path = ckpt.save(root, step, adapter_state(model), peft_cfg, opt.state_dict(), state)
        ckpt.prune(root, cfg.save_total_limit)
        print(f"[danlu] checkpoint saved: {path.name}", flush=True)
    barrier(d)


def check_disk(run_dir: Path, model, step: int) -> None:
    """Before the run and before each save: room for a checkpoint (adapter + optimizer) and the logs?"""
    need = sum(p.numel() * 4 * 3 for p in model.parameters() if p.requires_grad) + 50 * 2**20
    free = ckpt.free_bytes(run_dir)
    if fault("enospc", step) or free < need:
        raise DiskFull(f"Only {free // 2**20} MB are free in {run_dir}; the next checkpoint needs about "
                       f"{need // 2**20} MB.", hint="Free some disk space, then press Resume.")


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


def restore(run_dir, model, opt, sched, cfg, d, dataset_sha) -> int:
    from peft import set_peft_model_state_dict
    path = ckpt.newest_valid(RunDir(run_dir).checkpoints, log=lambda m: log(d, m))
    if path is None:
        log(d, "[danlu] no complete checkpoint found: starting from step 0")
        return 0
    adapter, opt_state, state = ckpt.load(path)
    if state.get("dataset_sha256") != dataset_sha:
        raise InputError(problems=[Problem("dataset", "the dataset file changed since this run started",
                                           "resume needs the same data; start a new run (Retry) to use the new file")],
                         title="Cannot resume")
    set_peft_model_state_dict(model, adapter)
    opt.load_state_dict(opt_state)
    sched.load_state_dict(state["scheduler"])
    if state.get("world_size") != d.world:
        log(d, f"[danlu] note: resuming with {d.world} processes instead of {state.get('world_size')}; data order differs")
    log(d, f"[danlu] resumed from {path.name}")
    return int(state["step"])


def save_adapter(model, tok, cfg, run_dir: Path):
    """adapter/ is written to a temporary folder and renamed, so it exists only when complete."""
    import shutil
    final, tmp = RunDir(run_dir).adapter, RunDir(run_dir).adapter_partial
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)  # carries the chat template that training used
    write_json(adapter_info_path(tmp), dict(base_model=cfg.base_model, quantization=cfg.quantization,
                                        chat_template=cfg.chat_template, trust_remote_code=cfg.trust_remote_code))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def read_losses(path: Path) -> list[float]:
    return [rec["loss"] for rec in read_jsonl(path) if rec.get("loss") is not None]


def spam(megabytes: int):
    """Test-only: write lots of output (the supervisor must drain it to a file without stalling)."""
    line = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(line)
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
