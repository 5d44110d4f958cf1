"""Unsloth on the real-data rows, step for step the tokens Danlu's recipe trains on (bench/bigger.py).

    PYTHONPATH=.site:.site_uns python3 bench/peer_packed.py --model /tmp/llama-8b --data rows.jsonl \\
        --mb 4 --seq 2048 --warmup 3 --steps 10 --out $OUT/peer.jsonl

The rows are read, rendered, packed into --seq-token bins and ordered by Danlu's own functions
(bench/bigger_data.danlu_steps: load_examples, encode_all, pack, epoch_batches), so each step
holds exactly the real tokens of the recipe's step. Unsloth gets them padding-free, as TRL's
padding-free collator hands them over: the micro-batch's bins joined into one row with
per-document position ids, from which Unsloth finds the document boundaries (its varlen attention).
Model and LoRA as the peer harness (../shared/bench-baseline/qlora_bench.py --impl unsloth): 4-bit
nf4, r 16 / alpha 32 / dropout 0 on the seven linear layers, Unsloth's gradient checkpointing,
bf16 autocast, paged AdamW 8-bit, lr 2e-4 constant, a device sync after every step. tokens/s
counts real tokens over the timed steps; peak = torch.cuda.max_memory_allocated.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
import unsloth  # noqa: F401,E402  (before transformers, as Unsloth requires)
from unsloth import FastLanguageModel  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bigger_data import danlu_steps  # noqa: E402  (Danlu's own data functions; no Unsloth there)

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def train(args, steps: list[dict]) -> dict:
    import bitsandbytes as bnb
    model, _ = FastLanguageModel.from_pretrained(model_name=args.model, max_seq_length=args.mb * args.seq,
                                                 dtype=torch.bfloat16, load_in_4bit=True, local_files_only=True)
    model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS,
                                             bias="none", use_gradient_checkpointing="unsloth", random_state=0)
    model.train()
    opt = bnb.optim.PagedAdamW8bit([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    stamps, losses = [time.perf_counter()], []
    for st in steps:
        row = {k: torch.tensor([st[k]], device="cuda") for k in ("ids", "labels", "pos")}
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=row["ids"], labels=row["labels"], position_ids=row["pos"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(round(float(loss), 4))
        torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    span = stamps[-1] - stamps[args.warmup]
    tokens = sum(st["tokens"] for st in steps[args.warmup:])
    return dict(status="ok", tokens_per_s=round(tokens / span, 1), timed_tokens=tokens,
                step_s_mean=round(span / args.steps, 4), peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                warmup_s=round(stamps[args.warmup] - stamps[0], 1), losses=losses)


def main():
    ap = argparse.ArgumentParser()
    for name, kind in (("--model", str), ("--data", str), ("--out", str), ("--mb", int), ("--seq", int)):
        ap.add_argument(name, type=kind, required=True)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    rec = dict(stack="unsloth", tag="unsloth-packed", micro_batch=args.mb, seq=args.seq, gpus=1, data=args.data,
               warmup=args.warmup, steps=args.steps)
    try:
        steps = danlu_steps(args.model, args.data, args.mb, args.seq, args.warmup + args.steps)
        if len(steps) < args.warmup + args.steps:
            raise RuntimeError(f"only {len(steps)} packed steps in {args.data}")
        rec.update(train(args, steps))
    except torch.OutOfMemoryError as e:
        rec.update(status="OOM", error=str(e)[:300])
    except Exception as e:  # the row is reported as failed, with why; the benchmark goes on
        import traceback
        traceback.print_exc()
        rec.update(status="error", error=f"{type(e).__name__}: {str(e)[:400]}")
    with open(args.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print("RESULT " + json.dumps({k: v for k, v in rec.items() if k != "losses"}), flush=True)


if __name__ == "__main__":
    main()
