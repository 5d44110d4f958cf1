"""QLoRA / LoRA fine-tuning: supervised (method sft) or from preference pairs (dpo, orpo). One
process per GPU (or CPU worker), started by torchrun (the launcher starts a job of one process on
one machine as plain python: world size 1 needs no rendezvous).

    # 1 GPU (or CPU): what the launcher runs, or the same under torchrun
    python -m core.recipes.train --config RUN/config.yaml
    torchrun --standalone --nproc-per-node 1 -m core.recipes.train --config RUN/config.yaml
    # N GPUs on this machine
    torchrun --standalone --nproc-per-node N -m core.recipes.train --config RUN/config.yaml
    # N machines with G GPUs each: on machine R (0 .. N-1), with HOST = machine 0's address
    torchrun --nnodes N --node-rank R --master-addr HOST --master-port 29500 --nproc-per-node G \\
        -m core.recipes.train --config RUN/config.yaml
    # continue from the newest complete checkpoint in RUN/checkpoints
    ... -m core.recipes.train --config RUN/config.yaml --resume
    # preference tuning: the same commands; the config says `method: dpo` (or orpo), `pref_beta`,
    # and optionally `start_adapter: /abs/path/RUN/adapter` (app.py train resolves a job id to it)

`python app.py train cfg.yaml [--nproc N]` builds exactly these commands (Show command in the GUI).
The run directory is the config file's folder. The recipe writes there:
    metrics.jsonl   one line per log (step, epoch, loss, lr, grad_norm, tokens_per_s, time; dpo/orpo
                    add reward_margin, pref_accuracy) or eval (eval_loss; eval_reward_margin, eval_pref_accuracy)
    progress.json   phase, step / total steps (what the supervisor's stall watchdog reads)
    reference_logps.json   dpo: the starting weights' answer log-probs of every pair (read on resume)
    checkpoints/    step-NNNNNNN/ (adapter, optimizer, trainer state, manifest written last)
    adapter/        the final LoRA adapter + tokenizer and chat template
    probes.jsonl    answers to cfg.probe_prompts at each checkpoint and at the end (when any are set)
    result.json     on success;  error.json (+ errors/rank<R>.json) with reason and hint on failure

What happens, top to bottom (run_recipe around it: rank set-up, failure record, exit code): set up
the process group (NCCL on GPUs, gloo on CPU), read the data, split off the validation examples,
and let the method encode them (core/engine/methods.py: sft renders each conversation through the
model's chat template with the loss on assistant tokens only, and packs; dpo/orpo encode each pair
as a chosen and a rejected sequence), load the base model on this rank's device (nf4 4-bit with
double quantisation and bf16 compute on CUDA; into host memory first when FSDP will split it), plan
the memory (core/memory_plan.py: which layers keep their activations, which are recomputed or
offloaded), add LoRA (or load start_adapter as the trainable adapter), wrap in DDP (or FSDP:
core/engine/sharded.py), dpo: the starting weights' log-probs of every pair (core/engine/reference.py),
then loop over the run's state (core/engine/state.py): micro-batches with gradient accumulation,
the method's loss, clipping, AdamW, the learning-rate schedule, logging, validation and atomic
checkpoints. SIGTERM (the Stop button) saves a checkpoint and ends the loop. Test faults enter
through one hook around each step (core/engine/faults.py).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from core.config import load_config
from core.data import load_examples
from core.engine import memory_trace, sharded, speed, train_state
from core.engine.common import (StopFlag, all_reduce_sum, barrier, keep_4bit_differentiable, keeps_record,
                                load_base_model, load_tokenizer, log, write_json)
from core.engine.faults import step_hook
from core.engine.inference import check_adapter_dir
from core.engine.methods import Preference, method_for
from core.engine.probes import answer_probes
from core.engine.recipe import run_recipe
from core.engine.sft_data import epoch_batches, split
from core.engine.state import Run
from core.engine.train_log import log_eval, log_step, read_losses, rewind_jsonl, stop_requested  # noqa: F401
from core.engine.train_state import check_disk  # noqa: F401  (tests call train.check_disk)
from core.errors import InputError, Problem
from core.messages import Msg
from core.method_check import data_problems
from core.model_folder import context_window
from core.models import resolve_model
from core.risks import model_context_window
from core.rundir import RunDir, read_json
from core.workspace import sha256_file


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


def prepare_data(cfg, tok, d, method, shown: str | None = None):
    """The dataset read, split (the same split evaluation uses) and encoded by the method. shown: the
    file's name as the person gave it (cfg.dataset is the run's pinned copy, named by its hash)."""
    loaded = load_examples(cfg.dataset, cfg.dataset_format, cfg.column_map, display_name=shown)
    problems = data_problems(cfg.method, loaded.format)
    if problems:  # the launcher refuses this before a job starts; a hand-started recipe says it too
        raise InputError(problems=problems, title=Msg("train.method_data_title"))
    train_ex, val_ex = split(loaded.examples, cfg.val_fraction, cfg.seed)
    enc = method.encode(cfg, tok, train_ex, val_ex)
    if not enc.train:
        raise InputError(problems=[Problem("dataset", Msg("train.nothing_to_learn"), Msg("train.nothing_to_learn.hint"))],
                         title=Msg("train.nothing_title"))
    enc.info = dict(format=loaded.format, rows=loaded.rows, train_examples=len(train_ex), val_examples=len(val_ex),
                    method=method.name, **enc.info)
    what = "pairs" if isinstance(method, Preference) else "sequences"
    log(d, f"[danlu] data: {loaded.rows} rows ({loaded.format}) -> {len(train_ex)} train / {len(val_ex)} validation; "
           f"{enc.info['truncated']} cut to {cfg.max_seq_length} tokens; {enc.info['dropped_no_target']} without answer "
           f"tokens dropped; {len(enc.train)} training {what}{method.note}")
    return enc


def add_lora(model, cfg, d, checkpointing: bool | None = None):
    """LoRA on the frozen model. `checkpointing`: the memory plan's choice (speed.apply_plan then
    switches it off for the layers that keep their activations); None: cfg.gradient_checkpointing."""
    from peft import LoraConfig, get_peft_model
    for p in model.parameters():
        p.requires_grad_(False)
    if cfg.gradient_checkpointing if checkpointing is None else checkpointing:
        # Non-reentrant checkpointing works with DDP and torch.compile. We do not call
        # prepare_model_for_kbit_training: its fp32 upcast of embeddings/norms/lm_head costs ~28%
        # speed and ~5 GiB on an 8B model for no gain with bf16 compute.
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    if cfg.start_adapter:  # a finished run's adapter, trained on (its own rank and layers)
        from peft import PeftModel
        return PeftModel.from_pretrained(model, str(start_adapter_dir(cfg)), is_trainable=True)
    targets = cfg.target_modules.strip()
    lcfg = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, bias="none",
                      task_type="CAUSAL_LM",
                      target_modules="all-linear" if targets == "all-linear" else [t.strip() for t in targets.split(",")])
    return get_peft_model(model, lcfg)


def start_adapter_dir(cfg) -> Path:
    """The launcher writes the adapter folder's absolute path (a job id is resolved when the job is
    submitted, core.method_check); a relative name here was never resolved and is refused."""
    path = Path(cfg.start_adapter).expanduser()
    if not path.is_absolute():
        raise InputError(problems=[Problem("start_adapter", Msg("train.start_adapter_relative", value=cfg.start_adapter),
                                           Msg("train.start_adapter_relative.hint"))],
                         title=Msg("train.start_adapter_title"))
    return check_adapter_dir(path)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg_path = Path(args.config).resolve()

    def body(ctx) -> int:
        ctx.cfg = load_config(cfg_path)
        return train(ctx.cfg, cfg_path.parent, ctx.d, resume=args.resume)
    return run_recipe(body, cfg_path.parent)


def train(cfg, run_dir: Path, d, resume: bool) -> int:
    r = start_run(cfg, run_dir, d, resume)
    if loop(r):
        return 0  # stopped on request: saved and said so
    finish(r)
    return 0


def start_run(cfg, run_dir: Path, d, resume: bool) -> Run:
    """Data, model, memory plan, wrapping, optimizer, resume: everything before the first step."""
    t_start = time.time()
    records = keeps_record(d, run_dir)
    if records:
        write_json(RunDir(run_dir).progress, dict(phase="loading", step=0, total_steps=None, time=t_start))
    speed.keep_compile_caches(run_dir)
    ref = resolve_model(cfg.base_model, builtin="require")  # prepared by the supervisor
    dataset_sha = sha256_file(Path(cfg.dataset))
    tok = load_tokenizer(ref.source, cfg, ref.local)
    t_tok = time.time()
    method = method_for(cfg)
    source = read_json(RunDir(run_dir).dataset_info).get("source")
    data = prepare_data(cfg, tok, d, method, Path(source).name if source else None)
    t_data = time.time()
    saved = train_state.read_checkpoint(run_dir, d, dataset_sha, records) if resume else None
    model, net, fsdp, info = build_model(cfg, d, ref, data.plan_seq, saved)
    # where a start's seconds go (the time to the first loss point is what a restart costs)
    info["startup_s"] = dict(imports=round(t_start - process_start(), 1), tokenizer=round(t_tok - t_start, 1),
                             data=round(t_data - t_tok, 1), model=round(time.time() - t_data, 1))
    steps_per_epoch, total_steps = count_steps(cfg, d, data.train)
    trainable = [p for p in model.parameters() if p.requires_grad]
    r = Run(cfg, d, run_dir, tok, method, model, net, fsdp, trainable, data.train, data.val, data.width, data.info,
            dataset_sha, steps_per_epoch, total_steps, info, t_start, records)
    r.opt = build_optimizer(cfg, trainable, d)
    r.sched = torch.optim.lr_scheduler.LambdaLR(r.opt, lr_lambda(cfg, total_steps))
    r.autocast = torch.autocast("cuda", dtype=speed.autocast_dtype(cfg, d)) if d.cuda else nullcontext()
    r.offload = speed.activation_offload(cfg, d, model.config.hidden_size, enabled=info["memory_plan"]["offload"])
    r.step = r.last_saved = train_state.restore_optimizer(r.opt, r.sched, saved, d)
    r.epoch = r.step // steps_per_epoch
    r.grad_norm = torch.zeros(())
    if records:
        for log_file in (r.metrics_path, r.files.probes):
            rewind_jsonl(log_file, r.step)
        train_state.check_disk(run_dir, model, r.step)  # fail now, not after an hour of training
        write_json(r.files.run_info, dict(data.info, steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                                          world_size=d.world, device=str(d.device), trainable_params=sum(
                                              p.numel() for p in trainable), dataset_sha256=dataset_sha,
                                          resumed_from_step=r.step, start_adapter=cfg.start_adapter, **info))
    method.before_training(r)  # dpo: the starting weights' log-probs (before Stop is armed: it is set-up)
    r.stop = StopFlag().install()
    log(d, f"[danlu] training {total_steps} steps ({steps_per_epoch} per epoch) with {method.name}, starting at step {r.step}")
    return r


def process_start() -> float:
    """When this process began: the seconds before start_run are Python's start and the imports."""
    import psutil
    return psutil.Process().create_time()


def build_model(cfg, d, ref, seq: int, saved):
    """The model as this run trains it: loaded (split over the GPUs when it must be), the memory plan
    applied per layer, LoRA, the speed features, then wrapped. Returns (model, net, fsdp, info)."""
    shard = sharded.decide(cfg, d, ref.source, ref.local, seq)
    t0 = time.time()
    model = load_base_model(ref.source, cfg, d, ref.local, sharded=shard.fsdp)
    if not d.cuda:
        keep_4bit_differentiable(model)  # validation and DPO's reference pass must not cut the gradient
    load_s = round(time.time() - t0, 1)
    # The same seed on every rank: the LoRA weights start identical (DDP needs that) and the run
    # can be repeated exactly ("same seed + same data + same settings = the same run").
    torch.manual_seed(cfg.seed)
    plan = speed.plan_for(model, cfg, d, seq, shards=d.world if shard.fsdp else 1)
    model = add_lora(model, cfg, d, checkpointing=plan.checkpointing)
    speed.apply_plan(model, plan)
    feats = speed.apply(model, cfg, d, allow_compile=not shard.fsdp)  # fused loss, compiled layers: GPU only
    if plan.offload and d.cuda:
        feats.append("offload_activations")
    sharded.remember_adapter_keys(model)
    train_state.restore_adapter(model, saved)  # before wrapping: DDP broadcasts it, FSDP leaves it whole
    net = model
    if shard.fsdp:
        net = sharded.wrap(model, d)
    elif d.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[d.local_rank] if d.cuda else None, find_unused_parameters=False)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(d, f"[danlu] model {cfg.base_model} on {d.device} x{d.world}{' (FSDP)' if shard.fsdp else ''} (loaded in {load_s} s), "
           f"quantization {cfg.quantization}, LoRA r={cfg.lora_rank}: {n_trainable / 1e6:.2f}M trainable parameters; "
           f"speed: {feats or 'none'}")
    log(d, f"[danlu] {plan.why}" + (f"\n[danlu] {shard.why}" if shard.why else ""))
    warn_beyond_window(d, cfg, model.config.to_dict())
    return model, net, shard.fsdp, dict(speed=feats, memory_plan=plan.to_dict(), load_s=load_s,
                                        sharding=dict(fsdp=shard.fsdp, why=str(shard.why)))


def warn_beyond_window(d, cfg, model_config: dict) -> None:
    """Rows longer than the model's context window: the launcher warned already when the window was
    known before loading (a preset, a local folder); a hub model outside the presets says it only now."""
    window = context_window(model_config)
    if model_context_window(cfg.base_model) is None and window and cfg.max_seq_length > window:
        log(d, f"[danlu] WARNING: {Msg('config.beyond_context', model=cfg.base_model, length=cfg.max_seq_length, window=window)}")


def count_steps(cfg, d, train_seqs) -> tuple[int, int]:
    batches0 = epoch_batches(train_seqs, cfg.micro_batch_size, d.world, d.rank, cfg.seed, 0)
    steps_per_epoch = len(batches0) // cfg.gradient_accumulation_steps
    if steps_per_epoch < 1:
        raise InputError(problems=[Problem("dataset", Msg("train.too_few", n=len(train_seqs), batch=cfg.micro_batch_size,
                                                          accum=cfg.gradient_accumulation_steps, world=d.world),
                                           Msg("train.too_few.hint"))],
                         title=Msg("train.too_few_title"))
    return steps_per_epoch, cfg.max_steps or max(1, math.ceil(cfg.num_epochs * steps_per_epoch))


def loop(r: Run) -> bool:
    """Train to the last step; True when a Stop ended it early (saved already). Test faults enter
    only through step_hook, around a step (core/engine/faults.py)."""
    cfg, ga = r.cfg, r.cfg.gradient_accumulation_steps
    skip = (r.step % r.steps_per_epoch) * ga
    r.model.train()
    memory_trace.start(r.d)  # a benchmark knob; off unless DANLU_MEMORY_SNAPSHOT is set
    first_step = r.step
    while r.step < r.total_steps:
        batches = epoch_batches(r.train_seqs, cfg.micro_batch_size, r.d.world, r.d.rank, cfg.seed, r.epoch)
        batches = batches[: r.steps_per_epoch * ga][skip:]
        skip = 0
        for w in range(0, len(batches), ga):
            step_hook(r, "before")
            one_step(r, batches[w:w + ga])
            step_hook(r, "after")
            memory_trace.after_step(r.d, r.step - first_step)
            if after_step(r):
                return True
            if r.step >= r.total_steps or w + ga >= len(batches):
                break
        if r.step < r.total_steps:
            r.epoch += 1
    return False


def one_step(r: Run, micro_batches: list) -> None:
    """One optimizer step over the micro-batches of one gradient-accumulation group; the method
    makes each batch and its loss (core/engine/methods.py)."""
    d, method = r.d, r.method
    group = [method.collate(r, b) for b in micro_batches]
    n_units = torch.tensor([sum(b["n_units"] for b in group)], dtype=torch.float64, device=d.device)
    all_reduce_sum(n_units, d)
    n_global = max(1.0, float(n_units))
    # DDP averages the ranks' gradients, so each rank's loss (sum / global count) is scaled back up;
    # FSDP here sums the adapter's gradients itself (sharded.sync_grads)
    scale = d.world if d.world > 1 and not r.fsdp else 1
    step_loss = 0.0
    for i, b in enumerate(group):
        r.window["tokens"] += b["n_tokens"]
        last = i == len(group) - 1
        sync = r.net.no_sync() if (d.world > 1 and not r.fsdp and not last) else nullcontext()
        with sync, r.offload():
            with r.autocast:
                loss, sums = method.loss(r, r.net, b, n_global)
            (loss * scale).backward()
        step_loss += loss.detach().float()
        if sums is not None:
            r.window["sums"] = sums if r.window["sums"] is None else r.window["sums"] + sums
    if r.fsdp:
        sharded.sync_grads(r.trainable, d)
    if r.cfg.max_grad_norm > 0:
        r.grad_norm = torch.nn.utils.clip_grad_norm_(r.trainable, r.cfg.max_grad_norm)
    r.opt.step()
    r.sched.step()
    r.opt.zero_grad(set_to_none=True)
    r.step += 1
    r.window["loss"] += step_loss * n_global if isinstance(step_loss, torch.Tensor) else step_loss
    r.window["units"] += n_global


def after_step(r: Run) -> bool:
    """Logging, validation, checkpoints and Stop after a step; True when the run must end now."""
    cfg, d, step = r.cfg, r.d, r.step
    if step % cfg.logging_steps == 0 or step == r.total_steps:
        log_step(r)
    if cfg.eval_steps and step % cfg.eval_steps == 0 and step < r.total_steps:
        log_eval(r)
    stop_now = stop_requested(r.stop, d)
    if (cfg.save_steps and step % cfg.save_steps == 0 and step < r.total_steps) or (stop_now and step > r.last_saved):
        if r.bad_logs == 0:  # never checkpoint weights that produced NaN
            train_state.save_checkpoint(r)
            r.last_saved = step
            if not stop_now:  # a Stop should not wait for answers
                probes(r)
    if stop_now:
        log(d, f"[danlu] stopped on request at step {step}; the newest checkpoint is step {r.last_saved}")
        if r.records:
            write_json(r.files.stopped, dict(step=step, checkpoint_step=r.last_saved, time=time.time()))
            # the step the job shows (status line, job table) is progress.json's, written at logging steps:
            # a run stopped at 582 showed 580 beside a log and a checkpoint at 582
            write_json(r.progress_path, dict(phase="stopped", step=step, total_steps=r.total_steps, time=time.time()))
        barrier(d)
    return stop_now


def probes(r: Run) -> None:
    if r.fsdp:  # rank 0 alone cannot run a model whose weights are split over all ranks
        if r.cfg.probe_prompts:
            log(r.d, "[danlu] probe prompts are not answered while the model is split over the GPUs (FSDP)")
        return
    answer_probes(r.model, r.tok, r.cfg, r.d, r.step, r.run_dir, r.autocast)


def finish(r: Run) -> None:
    """Final validation, the adapter, result.json (on machine 1, 2, ...: without the adapter, which machine 0
    keeps)."""
    d, step = r.d, r.step
    eval_loss = log_eval(r)
    if r.records:
        write_json(r.progress_path, dict(phase="saving", step=step, total_steps=r.total_steps, time=time.time()))
    if d.main:
        train_state.save_adapter(r.model, r.tok, r.cfg, r.run_dir, r.fsdp)
    probes(r)
    barrier(d)
    if r.records:
        peak = torch.cuda.max_memory_allocated(d.device) / 2**30 if d.cuda else None
        losses = read_losses(r.metrics_path)
        kept = dict(adapter_dir=str(r.files.adapter)) if d.main else dict(adapter_dir=None, adapter_on_machine_0=True)
        write_json(r.files.result, dict(
            status="succeeded", steps=step, total_steps=r.total_steps, epochs=round(step / r.steps_per_epoch, 3),
            first_loss=losses[0] if losses else None, final_loss=losses[-1] if losses else None, eval_loss=eval_loss,
            runtime_s=round(time.time() - r.t_start, 1), peak_gpu_mem_gib=round(peak, 2) if peak else None,
            **kept, world_size=d.world, method=r.method.name, **r.last_eval))
        write_json(r.progress_path, dict(phase="done", step=step, total_steps=r.total_steps, time=time.time()))
        where = f"adapter in {r.files.adapter}" if d.main else "the adapter is on machine 0"
        print(f"[danlu] done: {step} steps, final loss {losses[-1] if losses else float('nan'):.4f}, {where}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
