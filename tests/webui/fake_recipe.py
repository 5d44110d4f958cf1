"""A fake training recipe for GUI tests: torchrun starts it like the real one, and it writes the same
run record (core.rundir: progress.json, metrics.jsonl, result.json) quickly, with no model.

    DANLU_FAKE_STEPS      steps to run (default 60)
    DANLU_FAKE_STEP_S     seconds per step (default 0.1)
    DANLU_FAKE_FAIL_AT    fail at this step the way the real recipe records a failure (errors/rank0.json)

Every metrics line carries `wall`, the wall-clock time it was written, so a test can check that
nothing (a blocked pipe, a busy GUI) held the job back. SIGTERM stops it like the Stop button
stops the real recipe: it writes stopped.json and exits 0.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time

from core import knobs
from core.rundir import RunDir, append_jsonl, claim_json, write_json


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    run = RunDir.of_config(args.config)
    steps = int(knobs.get(knobs.FAKE_STEPS, "60"))
    fail_at = int(knobs.get(knobs.FAKE_FAIL_AT, "0"))
    step_s = float(knobs.get(knobs.FAKE_STEP_S, "0.1"))
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    t0 = time.time()
    write_json(run.progress, dict(phase="training", step=0, total_steps=steps, time=t0), durable=False)
    for step in range(1, steps + 1):
        time.sleep(step_s)
        now = time.time()
        rec = dict(step=step, epoch=step / steps, loss=3.0 / (1 + step / 10), lr=1e-3 * (1 - step / steps),
                   grad_norm=1.0, tokens_per_s=1000.0, time=round(now - t0, 3), wall=now)
        append_jsonl(run.metrics, rec, durable=False)
        write_json(run.progress, dict(phase="training", step=step, total_steps=steps, time=now), durable=False)
        print(f"step {step}/{steps} | loss {rec['loss']:.4f}", flush=True)
        if step == fail_at:
            return fail(run, step)
        if stop["now"]:
            write_json(run.stopped, dict(step=step, checkpoint_step=step, time=now))
            return 0
    write_json(run.result, dict(status="succeeded", steps=steps, total_steps=steps, runtime_s=round(time.time() - t0, 2)))
    return 0


def fail(run: RunDir, step: int) -> int:
    info = dict(reason="diverged", rank=0, time=time.time(),
                message=f"The loss was not a number (NaN) in 3 logged steps in a row, up to step {step}.",
                hint="Lower the learning rate (e.g. halve it) and resume or retry.")
    write_json(run.rank_error(0), info)
    claim_json(run.error, info)
    print(f"[danlu] rank 0 failed: diverged: {info['message']}", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
