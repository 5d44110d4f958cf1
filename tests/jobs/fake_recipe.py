"""A fast stand-in for core.recipes.train with the same file contract, for job-system tests.

    launcher.submit_train(ws, cfg, spec, module="tests.jobs.fake_recipe", origin="shell")

It runs under the real torchrun (one process per rank) but imports no torch, so a job takes about
as long as torchrun's own start-up. Like the real recipe it reads RUN/config.yaml (max_steps,
logging_steps, save_steps) and writes the run record through core.rundir: progress.json,
metrics.jsonl, checkpoints/step-NNNNNNN (manifest last, renamed into place), result.json on success
and stopped.json when SIGTERM asks it to stop. It honours DANLU_FAULT (crash, hang, spam, nan, and
deaf: ignore SIGTERM) from core.engine.faults, and DANLU_FAKE_STEP_S, seconds per step (default 0.05).
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from pathlib import Path

import yaml

from core import knobs
from core.engine.faults import fault
from core.rundir import CHECKPOINT_PREFIX, RunDir, append_jsonl, checkpoint_name, write_json
from core.workspace import MANIFEST

stop_requested = False


def on_term(signum, frame):
    global stop_requested
    stop_requested = True


def newest_checkpoint(root: Path) -> int:
    steps = [int(p.name[len(CHECKPOINT_PREFIX):]) for p in root.glob(CHECKPOINT_PREFIX + "*")
             if (p / MANIFEST).exists()]
    return max(steps, default=0)


def save_checkpoint(root: Path, step: int) -> None:
    final = root / checkpoint_name(step)
    tmp = root / f".{final.name}.partial"
    tmp.mkdir(parents=True, exist_ok=True)
    write_json(tmp / "trainer_state.json", {"step": step})
    write_json(tmp / MANIFEST, {"step": step, "files": {}})
    os.replace(tmp, final)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    # "deaf": a process that ignores SIGTERM (stuck in a driver call), so only the SIGKILL after the grace ends it
    signal.signal(signal.SIGTERM, signal.SIG_IGN if fault("deaf") else on_term)
    run = RunDir.of_config(args.config)
    cfg = yaml.safe_load(Path(args.config).read_text())
    rank = int(os.environ.get("RANK", 0))
    total = int(cfg.get("max_steps") or 10)
    log_every, save_every = int(cfg.get("logging_steps") or 1), int(cfg.get("save_steps") or 0)
    step_s = float(knobs.get(knobs.FAKE_STEP_S, "0.05"))
    start = newest_checkpoint(run.checkpoints) if args.resume else 0
    t0 = time.time()
    print(f"[fake] rank {rank}: {total} steps from step {start}", flush=True)
    step = start
    while step < total:
        time.sleep(step_s)
        step += 1
        if fault("crash", step, rank):
            raise RuntimeError(f"injected crash at step {step} on rank {rank}")
        if fault("spam", step, rank):
            line = "y" * 1023 + "\n"
            for _ in range(int(knobs.get(knobs.SPAM_MB, "50")) * 1024):
                sys.stdout.write(line)
            sys.stdout.flush()
        while fault("hang", step, rank) and not stop_requested:
            time.sleep(0.1)  # hung, but a SIGTERM still ends it (as the real recipe's StopFlag would)
        loss = float("nan") if fault("nan", step) else 2.0 / step
        if rank == 0 and step % log_every == 0:
            append_jsonl(run.metrics, {"step": step, "loss": loss if math.isfinite(loss) else None,
                                       "time": round(time.time() - t0, 3)}, durable=False)
            write_json(run.progress, {"phase": "training", "step": step, "total_steps": total}, durable=False)
        if rank == 0 and save_every and step % save_every == 0:
            save_checkpoint(run.checkpoints, step)
        if stop_requested:
            if rank == 0:
                write_json(run.stopped, {"step": step})
            print(f"[fake] rank {rank}: stopped at step {step}", flush=True)
            return 0
    if rank == 0:
        write_json(run.result, {"status": "succeeded", "steps": step, "world_size": os.environ.get("WORLD_SIZE"),
                                             "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})
        write_json(run.progress, {"phase": "done", "step": step, "total_steps": total})
    print(f"[fake] rank {rank}: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
