"""What accelerators this machine has, asked of nvidia-smi (no torch import in the GUI process)."""
from __future__ import annotations

import os
import shutil
import subprocess

from core import knobs

# Tests only: DANLU_FAKE_GPUS=4 (or "0,1,2,3") makes the launcher believe in that many GPUs, so the
# lease and queue logic runs for real (also in spawned CLI processes) on a machine without any.
FAKE_ENV = knobs.FAKE_GPUS


def detect_gpus() -> list[dict]:
    """[{index, name, memory_total_mib, memory_free_mib}] of the GPUs this process may use, or [] on a
    machine without NVIDIA GPUs. Indices are nvidia-smi's (PCI bus order); jobs get them with
    CUDA_DEVICE_ORDER=PCI_BUS_ID, so an index means the same card to CUDA. A CUDA_VISIBLE_DEVICES set
    for Danlu itself (indices or UUIDs) limits the list: Danlu then never starts work on other cards."""
    fake = knobs.get(FAKE_ENV, "").strip()
    if fake:
        idx = [int(x) for x in fake.split(",")] if "," in fake else list(range(int(fake)))
        return [dict(index=i, name="fake GPU (tests)", memory_total_mib=0, memory_free_mib=0) for i in idx]
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index,uuid,name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return visible(parse_smi(out), os.environ.get("CUDA_VISIBLE_DEVICES"))


def parse_smi(out: str) -> list[dict]:
    """nvidia-smi's CSV lines (index, uuid, name, total MiB, free MiB) -> GPU dicts."""
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 5:
            try:
                gpus.append(dict(index=int(parts[0]), uuid=parts[1], name=parts[2], memory_total_mib=int(parts[3]),
                                 memory_free_mib=int(parts[4])))
            except ValueError:
                continue
    return gpus


def visible(gpus: list[dict], cuda_visible: str | None) -> list[dict]:
    """The GPUs CUDA_VISIBLE_DEVICES allows (unset: all; empty or -1: none), in its order."""
    if cuda_visible is None:
        return gpus
    chosen = []
    for entry in (e.strip() for e in cuda_visible.split(",")):
        if not entry or entry.startswith("-"):
            break  # CUDA stops at the first invalid entry
        match = [g for g in gpus if (entry.isdigit() and g["index"] == int(entry))
                 or (not entry.isdigit() and g.get("uuid", "").startswith(entry))]
        if not match:
            break
        chosen += [g for g in match if g not in chosen]
    return chosen
