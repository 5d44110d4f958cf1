"""Collect one GPU run's results into a table and bench/results/latest.json.

    python bench/collect.py --out-dir $OUT --json bench/results/latest.json

Reads $OUT/results.jsonl (the peer harness: baseline and Unsloth rows), $OUT/danlu.jsonl (Danlu's
recipe via bench/danlu_run.py) and $OUT/gpu.txt (nvidia-smi). Output schema:
    {card, model, seq, rows: [{stack, micro_batch, gpus, tokens_per_s, peak_gib, mfu, ratio_vs_baseline}]}
with stack one of baseline, unsloth, danlu. ratio_vs_baseline compares with the baseline at the same
micro-batch and GPU count from the same run; scaling rows also give scaling_efficiency against
Danlu's own 1-GPU figure at the same micro-batch.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def load_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def collect(out_dir: Path) -> dict:
    rows = []
    for r in load_jsonl(out_dir / "results.jsonl"):
        tag = r.get("tag", "")
        stack = {"baseline": "baseline", "unsloth": "unsloth"}.get(tag, f"harness:{tag}")
        if tag.startswith("baseline-ddp"):
            stack = "baseline"
        row = dict(stack=stack, micro_batch=r.get("bs"), gpus=r.get("world", 1), status=r.get("status"))
        if r.get("status") == "ok":
            row.update(tokens_per_s=r["tokens_per_s"], peak_gib=r["peak_alloc_gib"], mfu=r["mfu_6N"],
                       step_s_median=r.get("step_s_median"), losses=r.get("losses"))
        else:
            row["error"] = (r.get("error") or "")[:300]
        rows.append(row)
    for r in load_jsonl(out_dir / "danlu.jsonl"):
        # stack is always "danlu"; tag names the lane (danlu-ref1: the scaling lane, danlu-offload: a variant)
        row = dict(stack="danlu", tag=r.get("tag", "danlu"), micro_batch=r["micro_batch"],
                   gpus=r["gpus"], status=r.get("status"), settings=r.get("sets") or [])
        if r.get("status") == "ok":
            row.update(tokens_per_s=r["tokens_per_s"], peak_gib=r["peak_gib"], mfu=r["mfu"],
                       step_s_mean=r.get("step_s_mean"), speed_features=r.get("speed"), losses=r.get("losses"))
        else:
            row["error"] = (r.get("error") or "")[-600:]
        rows.append(row)
    base = {(r["micro_batch"], r["gpus"]): r["tokens_per_s"] for r in rows
            if r["stack"] == "baseline" and r.get("tokens_per_s")}
    # scaling is judged against the 1-GPU run of the same lane (same tag), measured alongside
    one_gpu = {(r.get("tag"), r["micro_batch"]): r["tokens_per_s"] for r in rows
               if r["stack"] == "danlu" and r["gpus"] == 1 and r.get("tokens_per_s")}
    for r in rows:
        b = base.get((r["micro_batch"], r["gpus"])) or base.get((r["micro_batch"], 1))
        r["ratio_vs_baseline"] = round(r["tokens_per_s"] / (b * (r["gpus"] if (r["micro_batch"], r["gpus"]) not in base else 1)), 3) \
            if b and r.get("tokens_per_s") else None
        ref = one_gpu.get((r.get("tag"), r["micro_batch"]))
        if r["stack"] == "danlu" and r["gpus"] > 1 and r.get("tokens_per_s") and ref:
            r["scaling_efficiency"] = round(r["tokens_per_s"] / (r["gpus"] * ref), 3)
    gpu = (out_dir / "gpu.txt").read_text().strip().splitlines() if (out_dir / "gpu.txt").exists() else []
    return dict(card=gpu[0] if gpu else "unknown", gpus_on_machine=len(gpu),
                model="random-init Llama-3.1-8B shape (8.03B params), QLoRA nf4 r16 all-linear", seq=2048, rows=rows)


def table(res: dict) -> str:
    lines = [f"card: {res['card']}  model: {res['model']}  seq {res['seq']}",
             f"{'stack':<22}{'mb':>4}{'gpus':>5}{'tokens/s':>11}{'peak GiB':>10}{'MFU':>7}{'vs base':>9}{'scaling':>9}"]
    for r in sorted(res["rows"], key=lambda r: (r["gpus"], r["micro_batch"] or 0, r["stack"], r.get("tag") or "")):
        name = r["stack"] if r.get("tag") in (None, r["stack"]) else f"{r['stack']}:{r['tag']}"
        if r.get("tokens_per_s"):
            lines.append(f"{name:<22}{r['micro_batch']:>4}{r['gpus']:>5}{r['tokens_per_s']:>11,.0f}{r['peak_gib']:>10.1f}"
                         f"{100 * r['mfu']:>6.1f}%{(r['ratio_vs_baseline'] or 0):>9.2f}{r.get('scaling_efficiency') or '':>9}")
        else:
            lines.append(f"{name:<22}{r['micro_batch'] or '':>4}{r['gpus']:>5}   {r.get('status')}: {str(r.get('error', ''))[-120:]}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    res = collect(Path(args.out_dir))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    print(table(res))


if __name__ == "__main__":
    main()
