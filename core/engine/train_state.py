"""What a training run saves and restores: checkpoints (adapter, optimizer, scheduler, trainer
state; core/engine/checkpoint.py writes them atomically), the final adapter folder, and the disk
check before each save.

The adapter is read from the trainable parameters themselves (sharded.adapter_state_dict), never
through model.state_dict(): under FSDP that would gather every frozen 4-bit weight from all ranks.
Resume is in two parts: the adapter before the model is wrapped (DDP or FSDP), the optimizer and
the schedule after they exist.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from core.config import to_dict
from core.errors import InputError, Problem
from core.messages import Msg
from core.engine import checkpoint as ckpt
from core.engine.common import DiskFull, barrier, fault, log, write_json
from core.engine.sharded import adapter_state_dict
from core.rundir import RunDir, adapter_info_path


def adapter_state(model) -> dict:
    return adapter_state_dict(model)


def save_checkpoint(r) -> None:
    """A checkpoint of the run's state (core.engine.state.Run) at its current step; all ranks call it."""
    barrier(r.d)
    if r.d.main:
        cfg = r.cfg
        check_disk(r.run_dir, r.model, r.step)
        peft_cfg = r.model.peft_config["default"].to_dict()
        state = dict(step=r.step, epoch=r.epoch, world_size=r.d.world, micro_batch_size=cfg.micro_batch_size,
                     gradient_accumulation_steps=cfg.gradient_accumulation_steps, dataset_sha256=r.dataset_sha,
                     config=to_dict(cfg), scheduler=r.sched.state_dict(), time=time.time(), data=r.data_info)
        path = ckpt.save(r.files.checkpoints, r.step, adapter_state(r.model), peft_cfg, r.opt.state_dict(), state)
        ckpt.prune(r.files.checkpoints, cfg.save_total_limit)
        print(f"[danlu] checkpoint saved: {path.name}", flush=True)
    barrier(r.d)


def check_disk(run_dir: Path, model, step: int) -> None:
    """Before the run and before each save: room for a checkpoint (adapter + optimizer) and the logs?"""
    need = sum(p.numel() * 4 * 3 for p in model.parameters() if p.requires_grad) + 50 * 2**20
    free = ckpt.free_bytes(run_dir)
    if fault("enospc", step) or free < need:
        raise DiskFull(Msg("fail.low_disk", free=free // 2**20, path=str(run_dir), need=need // 2**20),
                       hint=Msg("fail.free_disk.hint"))


def read_checkpoint(run_dir: Path, d, dataset_sha: str):
    """(folder, adapter, optimizer state, trainer state) of the newest valid checkpoint, or None."""
    path = ckpt.newest_valid(RunDir(run_dir).checkpoints, log=lambda m: log(d, m))
    if path is None:
        log(d, "[danlu] no complete checkpoint found: starting from step 0")
        return None
    adapter, opt_state, state = ckpt.load(path)
    if state.get("dataset_sha256") != dataset_sha:
        raise InputError(problems=[Problem("dataset", Msg("train.dataset_changed"), Msg("train.dataset_changed.hint"))],
                         title=Msg("train.cannot_resume_title"))
    return path, adapter, opt_state, state


def restore_adapter(model, saved) -> None:
    """The checkpoint's adapter into the model; a checkpoint without every adapter weight is refused
    (PEFT would only warn and train on from a fresh adapter)."""
    from peft import set_peft_model_state_dict
    if saved is None:
        return
    missing = set(adapter_state_dict(model)) - set(saved[1])
    if missing:
        raise RuntimeError(f"checkpoint {saved[0].name} lacks {len(missing)} of the adapter's weights "
                           f"(e.g. {sorted(missing)[0]}); it cannot be resumed")
    set_peft_model_state_dict(model, saved[1])


def restore_optimizer(opt, sched, saved, d) -> int:
    """The optimizer and schedule of the checkpoint; returns its step (0 without one)."""
    if saved is None:
        return 0
    path, _, opt_state, state = saved
    opt.load_state_dict(opt_state)
    sched.load_state_dict(state["scheduler"])
    if state.get("world_size") != d.world:
        log(d, f"[danlu] note: resuming with {d.world} processes instead of {state.get('world_size')}; data order differs")
    log(d, f"[danlu] resumed from {path.name}")
    return int(state["step"])


def save_adapter(model, tok, cfg, run_dir: Path, fsdp: bool = False):
    """adapter/ is written to a temporary folder and renamed, so it exists only when complete."""
    final, tmp = RunDir(run_dir).adapter, RunDir(run_dir).adapter_partial
    shutil.rmtree(tmp, ignore_errors=True)
    if fsdp:  # PEFT's save_pretrained would call model.state_dict(): the same two files, written here
        write_peft_adapter(model, tmp)
    else:
        model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)  # carries the chat template that training used
    write_json(adapter_info_path(tmp), dict(base_model=cfg.base_model, quantization=cfg.quantization,
                                        chat_template=cfg.chat_template, trust_remote_code=cfg.trust_remote_code))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def write_peft_adapter(model, folder: Path) -> None:
    """adapter_config.json and adapter_model.safetensors, as PeftModel.save_pretrained writes them."""
    import copy
    from safetensors.torch import save_file
    folder.mkdir(parents=True, exist_ok=True)
    conf = copy.deepcopy(model.peft_config["default"])
    conf.inference_mode = True
    conf.save_pretrained(str(folder))
    save_file({k: v.to("cpu").contiguous() for k, v in adapter_state_dict(model).items()},
              folder / "adapter_model.safetensors", metadata={"format": "pt"})
