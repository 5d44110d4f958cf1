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

import torch.distributed as dist

from core.config import to_dict
from core.errors import DanluError, InputError, Problem
from core.messages import Msg, size_msg
from core.engine import checkpoint as ckpt
from core.engine.common import DiskFull, barrier, fault, log, write_json
from core.engine.sharded import adapter_state_dict
from core.rundir import RunDir, adapter_info_path
from core.workspace import MANIFEST, atomic_write_bytes, sha256_file


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
        raise DiskFull(Msg("fail.low_disk", free=size_msg(free), path=str(run_dir), need=size_msg(need)),
                       hint=Msg("fail.free_disk.hint"))


def read_checkpoint(run_dir: Path, d, dataset_sha: str, own_folder: bool):
    """(folder, adapter, optimizer state, trainer state) of the checkpoint every rank resumes from, or None.
    own_folder: this process keeps the run's record in its own folder (core.engine.common.keeps_record)."""
    path = agreed_checkpoint(run_dir, d, own_folder)
    if path is None:
        log(d, "[danlu] no complete checkpoint found: starting from step 0")
        return None
    adapter, opt_state, state = ckpt.load(path)
    if state.get("dataset_sha256") != dataset_sha:
        raise InputError(problems=[Problem("dataset", Msg("train.dataset_changed"), Msg("train.dataset_changed.hint"))],
                         title=Msg("train.cannot_resume_title"))
    return path, adapter, opt_state, state


def agreed_checkpoint(run_dir: Path, d, own_folder: bool) -> Path | None:
    """Machine 0's newest valid checkpoint, on every rank. A job started on each machine (train --nnodes)
    has a run folder per machine and rank 0 alone saves, so machine 1, 2, ... hold no checkpoint: each
    started again from step 0 while machine 0 went on from its checkpoint (other steps, learning rates
    and batches; the weights drifted apart, then the ranks hung in mismatched collectives). Machine 0
    sends the checkpoint's files, and dpo's reference log-probs, to the first process of each machine
    that lacks them; when a machine still lacks them after that, every rank stops with the same words.
    All ranks call it (collectives). own_folder: keeps_record's answer, true for the first process of a
    machine whose folder is its own; a Slurm job's machines share one folder, and check and send nothing."""
    run = RunDir(run_dir)
    newest = ckpt.newest_valid(run.checkpoints, log=lambda m: log(d, m)) if d.main else None
    if d.world == 1:
        return newest
    want = [None if newest is None else dict(
        name=newest.name, manifest=sha256_file(newest / MANIFEST),
        reference=sha256_file(run.reference) if run.reference.is_file() else None)]
    dist.broadcast_object_list(want, src=0)
    want = want[0]
    if want is None:
        return None
    node = int(os.environ.get("GROUP_RANK", "0"))  # torchrun's machine number
    held = [None] * d.world
    # each other machine's first process answers for its own folder (the others would only hash the same files again)
    checks = own_folder and not d.main
    dist.all_gather_object(held, (d.local_rank, node, not checks or holds(run, want)))
    lacking = sorted({n for _, n, ok in held if not ok})
    if lacking:
        log(d, f"[danlu] sending checkpoint {want['name']} to machine {', '.join(map(str, lacking))}")
        if d.main:
            files = dict(name=newest.name, files=ckpt.files_of(newest),
                         reference=run.reference.read_bytes() if want["reference"] else None)
            for rank, (local_rank, _, ok) in enumerate(held):
                if not ok and local_rank == 0:
                    dist.send_object_list([files], dst=rank)
        elif d.local_rank == 0 and not held[d.rank][2]:
            got = [None]
            dist.recv_object_list(got, src=0)
            try:
                ckpt.write_copy(run.checkpoints, got[0]["name"], got[0]["files"])
                if got[0]["reference"] is not None:
                    atomic_write_bytes(run.reference, got[0]["reference"])
                print(f"[danlu] received checkpoint {want['name']} from machine 0", flush=True)
            except (OSError, ValueError) as e:  # a full disk: the check below stops every rank
                print(f"[danlu] could not write checkpoint {want['name']} from machine 0 here: {e}", flush=True)
        barrier(d)
        dist.all_gather_object(held, (d.local_rank, node, not checks or holds(run, want)))
        lacking = sorted({n for _, n, ok in held if not ok})
        if lacking:
            where = dict(name=want["name"], machines=", ".join(map(str, lacking)))
            raise CheckpointMissing(Msg("train.checkpoint_not_everywhere", **where),
                                    Msg("train.checkpoint_not_everywhere.hint", **where))
    return run.checkpoints / want["name"]


def holds(run: RunDir, want: dict) -> bool:
    """This machine has machine 0's checkpoint (the same manifest, every file intact) and its reference."""
    path = run.checkpoints / want["name"]
    if not (path / MANIFEST).is_file() or sha256_file(path / MANIFEST) != want["manifest"] or ckpt.verify(path):
        return False
    return want["reference"] is None or (run.reference.is_file() and sha256_file(run.reference) == want["reference"])


class CheckpointMissing(DanluError):
    pass


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
