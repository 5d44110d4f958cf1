"""What accelerators this machine has, asked of nvidia-smi (no torch import in the GUI process)."""
from __future__ import annotations

import shutil
import subprocess


def detect_gpus() -> list[dict]:
    """[{index, name, memory_total_mib, memory_free_mib}], or [] on a machine without NVIDIA GPUs."""
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
