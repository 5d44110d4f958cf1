"""The same GPU memory cap for a peer's process as Danlu's knob DANLU_GPU_MEMORY_CAP_GIB gives its own
ranks (bench/bigger.py's fit-24 group puts this folder first on the peer's PYTHONPATH; Python imports
sitecustomize at start-up). Not used by Danlu itself."""
import os

_cap = os.environ.get("DANLU_GPU_MEMORY_CAP_GIB")
if _cap:
    import torch
    if torch.cuda.is_available():
        _total = torch.cuda.get_device_properties(0).total_memory / 2**30
        torch.cuda.set_per_process_memory_fraction(min(1.0, float(_cap) / _total), 0)
        print(f"[gpu_cap] this process may use {float(_cap):.0f} of {_total:.0f} GiB", flush=True)
