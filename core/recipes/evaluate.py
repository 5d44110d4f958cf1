"""Evaluate a trained run: validation loss and perplexity, then base and fine-tuned answers to the
held-out prompts, side by side, with ROUGE-L, BLEU and exact match.

    # 1 GPU (or CPU)
    torchrun --standalone --nproc-per-node 1 -m core.recipes.evaluate --trained-run RUN --eval-dir EVAL_DIR
    # N GPUs: the prompts are shared out between the processes
    torchrun --standalone --nproc-per-node N -m core.recipes.evaluate --trained-run RUN --eval-dir EVAL_DIR
    # plain python works too (one process)
    python -m core.recipes.evaluate --trained-run RUN --eval-dir EVAL_DIR [--max-samples 200] [--max-new-tokens 128]

`python app.py eval JOB_ID` (and the Evaluate tab) queue exactly this as an "eval" job.
RUN is a finished training run directory (config.yaml + adapter/). The held-out prompts are the
validation examples of that run: the same file, the same split function and the same seed as
training, so the model never trained on them. The base model is loaded as training loaded it
(4-bit on GPUs when the run used 4-bit) and the base answers come from the same weights with the
adapter switched off, so the comparison isolates what the fine-tuning changed.

Writes eval.json and eval.csv into RUN (and copies into EVAL_DIR), plus EVAL_DIR/result.json.
Answers are greedy (temperature 0), so the same run evaluates to the same table.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import shutil
import sys
import time
from pathlib import Path

import torch

from core import metrics
from core.config import load_config
from core.data import load_examples
from core.errors import InputError, Problem
from core.messages import Msg
from core.models import resolve_model
from core.engine.common import all_reduce_sum, barrier, load_base_model, log, write_json
from core.engine.inference import (apply_chat_template_choice, check_adapter_dir, generate_batch, prompt_ids,
                                    read_adapter_info)
from core.engine.recipe import run_recipe
from core.engine.sft_data import collate, encode_all, split, unpacked
from core.rundir import RunDir
from core.workspace import atomic_write_text

CSV_COLUMNS = ["prompt", "reference", "base", "tuned", "base_rouge_l", "tuned_rouge_l", "base_bleu", "tuned_bleu",
               "base_exact", "tuned_exact"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trained-run", required=True, help="the trained run directory (config.yaml + adapter/)")
    ap.add_argument("--eval-dir", required=True, help="this evaluation job's own folder")
    ap.add_argument("--max-samples", type=int, default=200, help="answer at most this many held-out prompts")
    ap.add_argument("--max-new-tokens", type=int, default=128, help="longest answer, in tokens")
    ap.add_argument("--batch-size", type=int, default=8, help="prompts answered at once per process")
    ap.add_argument("--dataset", help="evaluate on all examples of this file instead of the run's validation split")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.eval_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return run_recipe(lambda ctx: evaluate_run(Path(args.trained_run).resolve(), out, ctx.d, args), out)


def held_out(cfg, dataset: str | None) -> tuple[list[dict], str]:
    """(examples, where they come from). The validation split unless another file is given."""
    if dataset:
        return load_examples(dataset, "auto", cfg.column_map).examples, f"all of {Path(dataset).name}"
    if not Path(cfg.dataset).exists():
        raise InputError(problems=[Problem("dataset", Msg("eval.dataset_gone", path=cfg.dataset), Msg("eval.dataset_gone.hint"))],
                         title=Msg("eval.cannot_title"))
    loaded = load_examples(cfg.dataset, cfg.dataset_format, cfg.column_map)
    _, val = split(loaded.examples, cfg.val_fraction, cfg.seed)
    if not val:
        raise InputError(problems=[Problem("val_fraction", Msg("eval.no_validation"), Msg("eval.no_validation.hint"))],
                         title=Msg("eval.nothing_title"))
    return val, "the validation split"


def to_sample(example: dict) -> dict | None:
    """prompt (the conversation up to the last answer), reference (that answer); None for plain text."""
    msgs = example.get("messages")
    if not msgs:
        return None
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
    if not last:
        return None
    context = msgs[:last]
    shown = [m for m in context if m["role"] != "system"]
    if len(shown) == 1:
        prompt = shown[0]["content"]
    else:
        prompt = "\n".join(f"{m['role']}: {m['content']}" for m in shown)
    return dict(messages=context, prompt=prompt, reference=msgs[last]["content"])


@torch.no_grad()
def loss_on(model, seqs, d, pad_id, batch: int) -> float | None:
    """Mean loss per answer token over all processes' share of the validation sequences."""
    total = torch.zeros(2, dtype=torch.float64, device=d.device)
    mine = seqs[d.rank::d.world]
    for i in range(0, len(mine), batch):
        b = collate(mine[i:i + batch], pad_id, packed=False)
        n = b.pop("n_targets")
        b.pop("n_tokens")
        if n == 0:
            continue
        out = model(**{k: v.to(d.device) for k, v in b.items()}, num_items_in_batch=n)
        total += torch.tensor([float(out.loss) * n, n], dtype=torch.float64, device=d.device)
    all_reduce_sum(total, d)
    return float(total[0] / total[1]) if total[1] > 0 else None


def perplexity(loss: float | None) -> float | None:
    if loss is None:
        return None
    return math.exp(loss) if loss < 700 else None  # None, not inf: eval.json must stay strict JSON


def gather(items: list, d) -> list:
    if d.world == 1:
        return items
    parts = [None] * d.world
    torch.distributed.all_gather_object(parts, items)
    return [x for p in parts for x in p]


def answer_all(model, tok, samples: list[dict], cfg, d, args, progress) -> list[dict]:
    """Base and fine-tuned answers for this process's share of the samples."""
    mine = [(i, s) for i, s in enumerate(samples)][d.rank::d.world]
    max_prompt = max(16, cfg.max_seq_length)
    out = []
    for j in range(0, len(mine), args.batch_size):
        chunk = mine[j:j + args.batch_size]
        ids = [prompt_ids(tok, s["messages"], max_prompt_tokens=max_prompt) for _, s in chunk]
        tuned = generate_batch(model, tok, ids, args.max_new_tokens)
        with model.disable_adapter():
            base = generate_batch(model, tok, ids, args.max_new_tokens)
        for (i, s), b, t in zip(chunk, base, tuned):
            out.append(dict(index=i, base=b, tuned=t))
        progress(min(len(samples), (j + len(chunk)) * d.world))
    return out


def evaluate_run(run: Path, out: Path, d, args) -> int:
    t0 = time.time()
    if args.max_samples < 1 or args.max_new_tokens < 1 or args.batch_size < 1:
        raise InputError(problems=[Problem("--max-samples/--max-new-tokens/--batch-size", Msg("eval.at_least_one"))])
    trained, own = RunDir(run), RunDir(out)
    cfg_path = trained.config
    if not cfg_path.is_file():
        raise InputError(problems=[Problem("run", Msg("eval.no_config", path=str(run)), Msg("eval.no_config.hint"))])
    cfg = load_config(cfg_path, check_files=False)
    adapter = check_adapter_dir(trained.adapter)
    ainfo = read_adapter_info(adapter)
    state = dict(total=0)

    def progress(done: int, phase: str = "generating"):
        # the supervisor's stall watchdog reads `step`: it must move while answers are being written
        if d.main:
            write_json(own.progress, dict(phase=phase, step=done, total_steps=state["total"], time=time.time()),
                       durable=False)

    progress(0, "loading")
    ref = resolve_model(ainfo.get("base_model") or cfg.base_model, builtin="require")
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(adapter), trust_remote_code=cfg.trust_remote_code, local_files_only=True)
    apply_chat_template_choice(tok, "chatml" if cfg.chat_template == "chatml" else "auto")
    examples, source = held_out(cfg, args.dataset)
    samples = [s for s in map(to_sample, examples) if s is not None][:args.max_samples]
    state["total"] = len(samples)
    log(d, f"[danlu] evaluating {run.name}: {len(examples)} held-out examples ({source}), {len(samples)} prompts to answer")

    base = load_base_model(ref.source, cfg, d, ref.local)
    from peft import PeftModel
    model = PeftModel.from_pretrained(base, str(adapter), is_trainable=False)
    model.eval()

    enc, _ = encode_all(tok, examples, cfg.max_seq_length, cfg.train_on_inputs)
    seqs = unpacked(enc)
    progress(0, "loss")
    eval_loss = loss_on(model, seqs, d, tok.pad_token_id, args.batch_size)
    with model.disable_adapter():
        base_loss = loss_on(model, seqs, d, tok.pad_token_id, args.batch_size)
    log(d, f"[danlu] validation loss {eval_loss:.4f} (base model {base_loss:.4f})" if eval_loss is not None
        else "[danlu] no answer tokens to measure a loss on")

    answers = gather(answer_all(model, tok, samples, cfg, d, args, progress), d)
    barrier(d)
    if not d.main:
        return 0
    answers = sorted(answers, key=lambda a: a["index"])
    rows = [sample_row(samples[a["index"]], a["base"], a["tuned"]) for a in answers]
    refs = [r["reference"] for r in rows]
    report = dict(
        run_dir=str(run), adapter=str(adapter), base_model=ainfo.get("base_model") or cfg.base_model,
        source=source, held_out_examples=len(examples), n_samples=len(rows),
        eval_loss=eval_loss, perplexity=perplexity(eval_loss), base_eval_loss=base_loss,
        base_perplexity=perplexity(base_loss),
        metrics=dict(base=metrics.summarize([r["base"] for r in rows], refs),
                     tuned=metrics.summarize([r["tuned"] for r in rows], refs)),
        samples=rows,
        settings=dict(max_new_tokens=args.max_new_tokens, decoding="greedy", quantization=cfg.quantization,
                      processes=d.world, device=str(d.device)),
        notes=notes(examples, samples, args.max_samples),
        runtime_s=round(time.time() - t0, 1), time=time.time())
    write_outputs(report, run, out)
    write_json(own.result, dict(status="succeeded", run_dir=str(run), eval_json=str(trained.eval_json),
                                         eval_loss=eval_loss, perplexity=report["perplexity"],
                                         metrics=report["metrics"], runtime_s=report["runtime_s"]))
    progress(len(rows), "done")
    m = report["metrics"]
    log(d, f"[danlu] done: ROUGE-L base {fmt(m['base']['rouge_l'])} -> fine-tuned {fmt(m['tuned']['rouge_l'])}, "
           f"BLEU {fmt(m['base']['bleu'])} -> {fmt(m['tuned']['bleu'])}; table in {trained.eval_csv}")
    return 0


def notes(examples: list[dict], samples: list[dict], max_samples: int) -> list[str]:
    out = []
    n_text = sum(1 for e in examples if "messages" not in e)
    if n_text:
        out.append(f"{n_text} plain-text examples have no prompt/answer pair: they count in the loss only")
    if len(examples) - n_text > max_samples:
        out.append(f"only the first {max_samples} of {len(examples) - n_text} held-out prompts were answered")
    return out


def fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def sample_row(sample: dict, base: str, tuned: str) -> dict:
    ref = sample["reference"]
    b, t = metrics.score(base, ref), metrics.score(tuned, ref)
    return dict(prompt=sample["prompt"], reference=ref, base=base, tuned=tuned,
                base_rouge_l=b["rouge_l"], tuned_rouge_l=t["rouge_l"], base_bleu=b["bleu"], tuned_bleu=t["bleu"],
                base_exact=b["exact"], tuned_exact=t["exact"])


def csv_cell(v):
    """Spreadsheets run cells that start with = + - @ as formulas: a model's answer must stay text."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    if isinstance(v, float):
        return round(v, 6)
    return v


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([csv_cell(r[c]) for c in CSV_COLUMNS])
    return "\ufeff" + buf.getvalue()  # BOM: spreadsheet programs then read Chinese text correctly


def write_outputs(report: dict, run: Path, out: Path) -> None:
    """Into the trained run's directory (where the Evaluate tab looks), and a copy into the job's own."""
    trained, own = RunDir(run), RunDir(out)
    write_json(trained.eval_json, report)
    atomic_write_text(trained.eval_csv, to_csv(report["samples"]))
    shutil.copyfile(trained.eval_json, own.eval_json)
    shutil.copyfile(trained.eval_csv, own.eval_csv)


if __name__ == "__main__":
    sys.exit(main())
