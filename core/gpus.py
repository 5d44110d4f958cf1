"""What accelerators this machine has, asked of nvidia-smi (no torch import in the GUI process)."""
from __future__ import annotations

import os
import shutil
import subprocess

# Tests only: DANLU_FAKE_GPUS=4 (or "0,1,2,3") makes the launcher believe in that many GPUs, so the
# lease and queue logic runs for real (also in spawned CLI processes) on a machine without any.
FAKE_ENV = "DANLU_FAKE_GPUS"


def detect_gpus() -> list[dict]:
    """[{index, name, memory_total_mib, memory_free_mib}], or [] on a machine without NVIDIA GPUs."""
    fake = os.environ.get(FAKE_ENV, "").strip()
    if fake:
        idx = [int(x) for x in fake.split(",")] if "," in fake else list(range(int(fake)))
        return [dict(index=i, name="fake GPU (tests)", memory_total_mib=0, memory_free_mib=0) for i in idx]
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            try:
                gpus.append(dict(index=int(parts[0]), name=parts[1], memory_total_mib=int(parts[2]),
                                 memory_free_mib=int(parts[3])))
            except ValueError:
                continue
    return gpus
