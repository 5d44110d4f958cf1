"""Checkpoints that are either complete or invisible.

A checkpoint is written into `checkpoints/.step-000040.partial/`, then a `manifest.json` with the
size and sha256 of every file is written last, then the folder is renamed to `step-000040/`.
Resume walks from the newest checkpoint to the oldest and takes the first whose manifest and files
check out, so a checkpoint torn by a crash, a full disk or a corrupted file is skipped, never loaded.
Everything is safetensors + JSON: nothing here unpickles.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from core.rundir import CHECKPOINT_PREFIX as PREFIX, checkpoint_name
from core.workspace import MANIFEST, atomic_write_bytes, fsync_dir, manifest_problem, read_manifest, write_manifest


def flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """torch optimizer state_dict -> (tensors for safetensors, JSON for the rest)."""
    tensors, meta = {}, {"param_groups": state["param_groups"], "scalars": {}}
    for idx, st in state["state"].items():
        for k, v in st.items():
            key = f"{idx}.{k}"
            if isinstance(v, torch.Tensor):
                tensors[key] = v.detach().to("cpu").contiguous().clone()
            else:
                meta["scalars"][key] = v
    return tensors, meta


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def _publish(ckpt_root: Path, name: str, fill) -> Path:
    """Write one checkpoint atomically: `fill(folder)` writes its files, the manifest last, into a fresh
    partial folder, which is then renamed to `name`; return that final folder."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final, tmp = ckpt_root / name, ckpt_root / f".{name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    fill(tmp)
    if final.exists():  # a re-save of the same step (resume then stop at once): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(ckpt_root)
    return final


def save(ckpt_root: Path, step: int, adapter_state: dict[str, torch.Tensor], adapter_config: dict,
         optimizer_state: dict, trainer_state: dict) -> Path:
    """Write one checkpoint atomically; return its final folder."""
    def fill(tmp: Path) -> None:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in adapter_state.items()}, tmp / "adapter_model.safetensors")
        (tmp / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2, default=str))
        opt_tensors, opt_meta = flatten_optimizer(optimizer_state)
        save_file(opt_tensors, tmp / "optimizer.safetensors")
        (tmp / "optimizer.json").write_text(json.dumps(opt_meta, default=float))
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2, default=float))
        write_manifest(tmp, sorted(p for p in tmp.iterdir() if p.is_file()), step=step)
    return _publish(ckpt_root, checkpoint_name(step), fill)


def verify(path: Path) -> str | None:
    """None when the checkpoint is complete and intact, else the reason it is not."""
    if not (path / MANIFEST).is_file():
        return "no manifest (the save did not finish)"
    try:
        files = read_manifest(path)
    except (ValueError, KeyError, OSError) as e:
        return f"unreadable manifest ({e})"
    return manifest_problem(path, files)


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    if not ckpt_root.is_dir():
        return []
    return sorted((p for p in ckpt_root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)),
                  key=lambda p: int(p.name[len(PREFIX):]), reverse=True)


def newest_valid(ckpt_root: Path, log=print) -> Path | None:
    for p in list_checkpoints(ckpt_root):
        problem = verify(p)
        if problem is None:
            return p
        log(f"[danlu] skipping checkpoint {p.name}: {problem}")
    return None


def files_of(path: Path) -> dict[str, bytes]:
    """A verified checkpoint's files by name (its manifest included), for a machine that lacks it."""
    return {name: (path / name).read_bytes() for name in [*read_manifest(path), MANIFEST]}


def write_copy(ckpt_root: Path, name: str, files: dict[str, bytes]) -> Path:
    """Another machine's checkpoint (files_of) written here as save() writes one. The caller verifies it
    (the manifest holds every sha256)."""
    if name != checkpoint_name(int(name[len(PREFIX):])):
        raise ValueError(f"not a checkpoint's name: {name!r}")
    def fill(tmp: Path) -> None:
        for fname in sorted(files, key=lambda f: f == MANIFEST):  # the manifest last
            atomic_write_bytes(tmp / Path(fname).name, files[fname])
    return _publish(ckpt_root, name, fill)


def load(path: Path) -> tuple[dict, dict, dict]:
    """(adapter tensors, optimizer state_dict, trainer_state) of a verified checkpoint."""
    adapter = load_file(path / "adapter_model.safetensors")
    opt = unflatten_optimizer(load_file(path / "optimizer.safetensors"), json.loads((path / "optimizer.json").read_text()))
    state = json.loads((path / "trainer_state.json").read_text())
    return adapter, opt, state


def prune(ckpt_root: Path, keep: int) -> None:
    """Delete the oldest checkpoints beyond `keep`; never the newest valid one."""
    for p in list_checkpoints(ckpt_root)[keep:]:
        shutil.rmtree(p, ignore_errors=True)
    for p in ckpt_root.glob(".*.partial"):
        shutil.rmtree(p, ignore_errors=True)
