"""Run inside a private mount namespace (unshare -rm): mount a small tmpfs and fill it with real
checkpoint saves until the disk is full. Prints a JSON report on stdout."""
import json
import os
import subprocess
import tempfile

import torch

from core.engine import checkpoint as ckpt
from core.engine.common import classify

mnt = tempfile.mkdtemp(prefix="danlu-tmpfs-")
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt], check=True)
root = os.path.join(mnt, "checkpoints")
from pathlib import Path
root = Path(root)
opt_state = {"state": {}, "param_groups": [{"lr": 0.1, "params": []}]}
small = {"lora_A": torch.ones(64, 64)}                   # 16 KB: fits
big = {"lora_A": torch.ones(1024, 1024)}                 # 4 MB: does not fit on a 3 MB disk
ckpt.save(root, 10, small, {"r": 8}, opt_state, {"step": 10})
report = {}
try:
    ckpt.save(root, 20, big, {"r": 8}, opt_state, {"step": 20})
    report["raised"] = None
except Exception as e:  # safetensors reports ENOSPC as its own SafetensorError, not OSError
    report["raised"] = f"{type(e).__name__}: {e}"
    report["reason"] = classify(e)["reason"]
report["listed"] = [p.name for p in ckpt.list_checkpoints(root)]
newest = ckpt.newest_valid(root, log=lambda m: None)
report["newest"] = newest.name if newest else None
adapter, _, state = ckpt.load(newest)
report["loaded_step"] = state["step"]
report["loaded_ok"] = bool(torch.equal(adapter["lora_A"], small["lora_A"]))
ckpt.prune(root, 2)
report["partials_after_prune"] = [p.name for p in root.iterdir() if p.name.endswith(".partial")]
print(json.dumps(report))
