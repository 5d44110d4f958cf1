"""Run Danlu's training recipe exactly as the GUI launches it, on synthetic data, and measure it.

    python bench/danlu_run.py --model /tmp/llama-8b --mb 4 --nproc 1 --out $OUT/danlu.jsonl [--set key=value ...]
    python bench/danlu_run.py ... --data rows.jsonl     # your own rows (e.g. bench/bigger.py's real-data lengths)

It writes a config (the defaults of TrainConfig plus the benchmark's fixed settings below), runs
`python app.py train CONFIG --nproc N` (launcher -> supervisor -> torchrun -> core/recipes/train.py),
and reads the run's metrics.jsonl: steady-state tokens/s over the timed steps (the warm-up steps,
which include torch.compile, are excluded, as in the peer baseline harness), peak GPU memory
(torch.cuda.max_memory_allocated, weights included), the loss curve, and the seconds from the
start of `app.py train` (what the Start button does) to the first loss point.

tokens/s counts real tokens only: the recipe logs the real (unpadded) tokens of each step, summed
over the timed steps here. Synthetic data matches the baseline harness: every sequence is --seq
real tokens (no padding), labels on every token, random words of the model's word-level tokenizer.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
H100_BF16_DENSE = 989e12


def param_count(cfg: dict) -> int:
    h, L, i = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    hd = h // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i + 2 * h
    emb = cfg["vocab_size"] * h
    return emb * (1 if cfg.get("tie_word_embeddings") else 2) + L * per_layer + h


def make_data(path: Path, rows: int, seq: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # several benchmark lanes may race here
    with open(tmp, "w") as f:
        for _ in range(rows):
            words = " ".join(f"w{rng.randrange(4, 1000)}" for _ in range(seq - 1))  # + </s> = seq tokens
            f.write(json.dumps({"text": words}) + "\n")
    os.replace(tmp, path)


def parse_args(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mb", type=int, required=True)
    ap.add_argument("--nproc", type=int, default=1)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--tag", default="danlu")
    ap.add_argument("--out", required=True)
    ap.add_argument("--home", default="/tmp/danlu-bench")
    ap.add_argument("--timeout", type=int, default=400)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--gpus", help="GPU indices, e.g. 2,3 (default: the first --nproc GPUs)")
    ap.add_argument("--data", help="a JSONL of {\"text\": ...} rows to train on instead of full synthetic rows")
    return ap.parse_args(argv)


def write_config(args, work: Path) -> Path:
    total = args.warmup + args.steps
    data = Path(args.data) if args.data else work / f"synthetic-{args.seq}-{total * args.mb * args.nproc}.jsonl"
    if not data.exists():
        make_data(data, total * args.mb * args.nproc, args.seq)
    cfg = {"base_model": args.model, "dataset": str(data), "dataset_format": "text", "quantization": "4bit",
           "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear",
           "learning_rate": 2e-4, "lr_scheduler": "constant", "warmup_ratio": 0.0, "max_steps": total,
           "micro_batch_size": args.mb, "gradient_accumulation_steps": 1, "max_seq_length": args.seq,
           "packing": True, "val_fraction": 0.0, "eval_steps": 0, "save_steps": 0, "logging_steps": 1,
           "seed": 0, "run_name": f"{args.tag}-mb{args.mb}-x{args.nproc}-g{(args.gpus or 'first').replace(',', '')}"}
    import yaml
    path = work / f"{cfg['run_name']}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_app(args, cfg_path: Path, env: dict) -> tuple[object, float, Path]:
    """`python app.py train CONFIG` as the Start button runs it; (return code, its start time, log)."""
    argv = [sys.executable, str(REPO / "app.py"), "train", str(cfg_path), "--nproc", str(args.nproc)]
    if shutil.which("nvidia-smi"):
        argv += ["--gpus", args.gpus or ",".join(str(i) for i in range(args.nproc))]
    for s in args.sets:
        argv += ["--set", s]
    log = cfg_path.with_suffix(".log")
    t0 = time.time()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(argv, cwd=str(REPO), env=env, stdout=f, stderr=subprocess.STDOUT,
                                timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    return rc, t0, log


def measure(args, run: Path, t0: float) -> dict:
    """tokens/s of the timed steps, peak memory, losses and Start-to-first-loss from the run's files."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from core.progress import seconds_between
    from core.rundir import RunDir, read_json, read_jsonl
    metrics = read_jsonl(RunDir(run).metrics)
    steps = {m["step"]: m for m in metrics if "loss" in m or m.get("nonfinite")}
    info = read_json(RunDir(run).run_info)
    out = dict(peak_gib=max((m["gpu_mem_gib"] for m in steps.values() if "gpu_mem_gib" in m), default=None),
               memory_plan=info.get("memory_plan"), speed=info.get("speed"), load_s=info.get("load_s"),
               losses=[round(steps[s]["loss"], 4) for s in sorted(steps) if steps[s].get("loss") is not None])
    if steps and "wall" in steps[min(steps)]:
        first = steps[min(steps)]
        out["seconds_to_first_loss"] = round(first["wall"] - t0, 1)
        # where those seconds went: app.py, the launcher and torchrun up to the recipe's clock start
        # (imports included), then the recipe's data and model (run_info), then set-up and step 1
        parts = info.get("startup_s") or {}
        before = round(first["wall"] - first["time"] - t0, 1)
        out["startup_s"] = dict(before_recipe=before, **parts, to_first_loss_in_recipe=first["time"])
        if "imports" in parts:  # the recipe's own Python start and imports are inside before_recipe
            out["startup_s"]["launch"] = round(before - parts["imports"], 1)
    total = args.warmup + args.steps
    span = 0.0
    if args.warmup in steps and total in steps:
        span = seconds_between(steps[args.warmup], steps[total])
    if span > 0:  # a span below the clock's tick gives no rate rather than a division by zero
        timed = [steps[s] for s in range(args.warmup + 1, total + 1) if s in steps]
        tokens = sum(m["tokens"] for m in timed) if all("tokens" in m for m in timed) \
            else args.steps * args.mb * args.seq * args.nproc  # older recipes: full rows assumed
        n = param_count(json.loads((Path(args.model) / "config.json").read_text()))
        tps = tokens / span
        out.update(tokens_per_s=round(tps, 1), tokens_per_s_per_gpu=round(tps / args.nproc, 1),
                   step_s_mean=round(span / args.steps, 4), timed_tokens=tokens, n_params=n,
                   mfu=round(6 * n * tps / args.nproc / H100_BF16_DENSE, 4),
                   warmup_s=round(steps[args.warmup]["time"], 1))
    return out


def main(argv=None):
    args = parse_args(argv)
    work = Path(args.home) / "bench-inputs"
    work.mkdir(parents=True, exist_ok=True)
    cfg_path = write_config(args, work)
    run_name = cfg_path.stem
    env = dict(os.environ, DANLU_HOME=args.home, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    rc, t0, log = run_app(args, cfg_path, env)
    wall = time.time() - t0
    jobs = json.loads(subprocess.run([sys.executable, str(REPO / "app.py"), "jobs", "list", "--json"], cwd=str(REPO),
                                     env=env, capture_output=True, text=True).stdout or "[]")
    job = next((j for j in jobs if j["name"] == run_name), None)
    if rc == "timeout" and job is not None:
        # the job outlives the CLI that started it (jobs are detached): stop it, or it would share
        # the GPU with the next benchmark run
        subprocess.run([sys.executable, str(REPO / "app.py"), "jobs", "cancel", job["id"], "--wait", "60"], cwd=str(REPO),
                       env=env, capture_output=True, text=True, timeout=90)
    rec = dict(stack="danlu", tag=args.tag, micro_batch=args.mb, gpus=args.nproc, gpu_ids=args.gpus, seq=args.seq, rc=rc,
               warmup=args.warmup, steps=args.steps, wall_s=round(wall, 1), sets=args.sets, data=args.data)
    if job is None:
        rec.update(status="error", error=log.read_text()[-2000:])
    else:
        rec.update(measure(args, Path(job["run_dir"]), t0))
        if job["state"] == "succeeded" and "tokens_per_s" in rec:
            rec["status"] = "ok"
        else:
            rec.update(status="timeout" if rc == "timeout" else job["state"],
                       error=(job.get("message") or "") + "\n" + log.read_text()[-3000:])
    with open(args.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print("RESULT " + json.dumps({k: v for k, v in rec.items() if k not in ("losses", "error")}), flush=True)
    if rec.get("status") != "ok":
        print(rec.get("error", "")[-3000:])


if __name__ == "__main__":
    main()
