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

Preference runs (method dpo/orpo, or a dataset of pairs): the held-out pairs are scored with the
starting weights (the base with the adapter off, or the run's start_adapter) and with the tuned
adapter; score = the answer's summed log-probability (mean per token for orpo, as it trains);
eval.json gains "preference": {base_accuracy, tuned_accuracy, base_margin, tuned_margin, pairs}
(accuracy: the share of pairs whose chosen answer scores higher; margin: the mean of score(chosen) -
score(rejected), in nats), the validation loss is measured on prompt + chosen answer, and the table
shows prompt, chosen, rejected and the tuned model's answer.

Writes eval.json and eval.csv into RUN (and copies into EVAL_DIR), plus EVAL_DIR/result.json.
Answers are greedy (temperature 0), so the same run evaluates to the same table.
"""
from __future__ import annotations

import argparse
import contextlib
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
from core.messages import Msg, keep_all
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
PAIR_CSV_COLUMNS = ["prompt", "chosen", "rejected", "tuned", "base_margin", "tuned_margin"]


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
    return run_recipe(lambda ctx: evaluate_run(Path(args.trained_run).resolve(), out, ctx.d, args), out, work="eval")


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
    return dict(messages=context, prompt=prompt_text(context), reference=msgs[last]["content"])


def prompt_text(context: list[dict]) -> str:
    """The conversation before the answer, as the table shows it (the system prompt left out)."""
    shown = [m for m in context if m["role"] != "system"]
    if len(shown) == 1:
        return shown[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in shown)


# ---- preference pairs ---------------------------------------------------------------------------
def is_pairs(examples: list[dict]) -> bool:
    """A preference dataset (core/data's normalised pairs: prompt, chosen, rejected message lists)."""
    return bool(examples) and all("chosen" in e and "rejected" in e for e in examples)


def as_sft(example: dict) -> dict:
    """A pair as the conversation prompt + chosen answer: what the validation loss is measured on."""
    return {"messages": example["prompt"] + example["chosen"]}


def to_pair_sample(example: dict) -> dict:
    def text(msgs):
        return "\n".join(m["content"] for m in msgs)
    return dict(messages=example["prompt"], prompt=prompt_text(example["prompt"]), reference=text(example["chosen"]),
                chosen=text(example["chosen"]), rejected=text(example["rejected"]))


def start_adapter_dir(cfg, run: Path) -> Path | None:
    """The adapter the run started from (config start_adapter: a run or adapter folder, or a job id,
    whose run folder sits beside this run's), or None when it started from the base model."""
    ref = (cfg.start_adapter or "").strip()
    if not ref:
        return None
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = run.parent / ref
    return check_adapter_dir(path if (path / "adapter_config.json").is_file() else RunDir(path).adapter)


@contextlib.contextmanager
def starting_weights(model, start: str | None):
    """The weights the run started from: the base (adapter off), or the start adapter loaded beside
    the trained one under the name `start`. Neither needs a second copy of the base model."""
    if start is None:
        with model.disable_adapter():
            yield
        return
    model.set_adapter(start)
    try:
        yield
    finally:
        model.set_adapter("default")


@torch.no_grad()
def pair_margins(model, pairs: list[tuple[int, object]], d, pad_id, batch: int, per_token: bool) -> dict[int, float]:
    """{example index: score(chosen) - score(rejected)} for this process's encoded pairs; the score is
    the answer's summed log-probability, or its mean per token (orpo trains on that)."""
    from core.engine.preference import collate_pairs, sequence_logps  # pair runs only
    out = {}
    for j in range(0, len(pairs), batch):
        chunk = pairs[j:j + batch]
        b = collate_pairs([p for _, p in chunk], pad_id)
        logp, n = sequence_logps(model, {k: v.to(d.device) for k, v in b.items()})
        score = logp.double() / n.double().clamp(min=1) if per_token else logp.double()
        k = len(chunk)
        out.update({i: float(m) for (i, _), m in zip(chunk, (score[:k] - score[k:]).tolist())})
    return out


def score_pairs(model, tok, examples: list[dict], cfg, d, batch: int, start: str | None) -> tuple[dict, dict]:
    """({index: base margin}, {index: tuned margin}) over every held-out pair, all processes together.
    A pair with no answer token left after truncation is left out (counted in the notes)."""
    from core.engine.preference import encode_pair  # pair runs only
    mine = [(i, encode_pair(tok, e, cfg.max_seq_length)) for i, e in list(enumerate(examples))[d.rank::d.world]]
    mine = [(i, p) for i, p in mine if p is not None]
    per_token = cfg.method == "orpo"
    tuned = pair_margins(model, mine, d, tok.pad_token_id, batch, per_token)
    with starting_weights(model, start):
        base = pair_margins(model, mine, d, tok.pad_token_id, batch, per_token)
    base, tuned = gather([base], d), gather([tuned], d)
    return {k: v for part in base for k, v in part.items()}, {k: v for part in tuned for k, v in part.items()}


def preference_summary(base: dict[int, float], tuned: dict[int, float], per_token: bool) -> dict:
    """eval.json's "preference" block (see the module docstring)."""
    b, t = [base[i] for i in sorted(tuned)], [tuned[i] for i in sorted(tuned)]

    def acc(xs):
        return sum(1 for x in xs if x > 0) / len(xs) if xs else None

    def mean(xs):
        return sum(xs) / len(xs) if xs else None
    return dict(base_accuracy=acc(b), tuned_accuracy=acc(t), base_margin=mean(b), tuned_margin=mean(t), pairs=len(t),
                score="mean log-probability per answer token" if per_token else "summed answer log-probability")


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


def answer_all(model, tok, samples: list[dict], cfg, d, args, progress, start: str | None = None,
               with_base: bool = True) -> list[dict]:
    """Base (the starting weights) and fine-tuned answers for this process's share of the samples."""
    mine = [(i, s) for i, s in enumerate(samples)][d.rank::d.world]
    max_prompt = max(16, cfg.max_seq_length)
    out = []
    for j in range(0, len(mine), args.batch_size):
        chunk = mine[j:j + args.batch_size]
        ids = [prompt_ids(tok, s["messages"], max_prompt_tokens=max_prompt) for _, s in chunk]
        tuned = generate_batch(model, tok, ids, args.max_new_tokens)
        base = [""] * len(ids)
        if with_base:  # a pair's table compares with the two reference answers instead
            with starting_weights(model, start):
                base = generate_batch(model, tok, ids, args.max_new_tokens)
        for (i, s), b, t in zip(chunk, base, tuned):
            out.append(dict(index=i, base=b, tuned=t))
        progress(min(len(samples), (j + len(chunk)) * d.world))
    return out


def trained_run(run: Path, args):
    """(config, adapter folder, start adapter folder or None, adapter info) of the run to evaluate, checked."""
    if args.max_samples < 1 or args.max_new_tokens < 1 or args.batch_size < 1:
        raise InputError(problems=[Problem("--max-samples/--max-new-tokens/--batch-size", Msg("eval.at_least_one"))])
    cfg_path = RunDir(run).config
    if not cfg_path.is_file():
        raise InputError(problems=[Problem("run", Msg("eval.no_config", path=str(run)), Msg("eval.no_config.hint"))])
    cfg = load_config(cfg_path, check_files=False)
    adapter = check_adapter_dir(RunDir(run).adapter)
    return cfg, adapter, start_adapter_dir(cfg, run), read_adapter_info(adapter)


def result_rows(samples: list, answers: list, margins, pairs: bool) -> list[dict]:
    """The side-by-side table in prompt order: base and tuned answers, or for pairs the tuned answer and its scores."""
    answers = sorted(answers, key=lambda a: a["index"])
    if pairs:
        return [pair_row(samples[a["index"]], a["tuned"], *(m.get(a["index"]) for m in margins)) for a in answers]
    return [sample_row(samples[a["index"]], a["base"], a["tuned"]) for a in answers]


def evaluate_run(run: Path, out: Path, d, args) -> int:
    t0 = time.time()
    own = RunDir(out)
    cfg, adapter, start_dir, ainfo = trained_run(run, args)
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
    pairs = is_pairs(examples)
    samples = [s for s in map(to_pair_sample if pairs else to_sample, examples) if s is not None][:args.max_samples]
    state["total"] = len(samples)
    log(d, f"[danlu] evaluating {run.name}: {len(examples)} held-out {'pairs' if pairs else 'examples'} ({source}), "
           f"{len(samples)} prompts to answer")

    model, start = load_model(ref, adapter, start_dir, cfg, d)

    progress(0, "loss")
    eval_loss, base_loss = losses(model, tok, [as_sft(e) for e in examples] if pairs else examples, cfg, d, args, start)
    preference = margins = None
    if pairs:
        progress(0, "scoring pairs")
        margins = score_pairs(model, tok, examples, cfg, d, args.batch_size, start)
        preference = preference_summary(*margins, per_token=cfg.method == "orpo")

    answers = gather(answer_all(model, tok, samples, cfg, d, args, progress, start, with_base=not pairs), d)
    barrier(d)
    if not d.main:
        return 0
    rows = result_rows(samples, answers, margins, pairs)
    refs = [r["reference"] for r in rows]
    report = dict(
        run_dir=str(run), adapter=str(adapter), base_model=ainfo.get("base_model") or cfg.base_model,
        start_adapter=str(start_dir) if start_dir else None,
        source=source, held_out_examples=len(examples), n_samples=len(rows),
        eval_loss=eval_loss, perplexity=perplexity(eval_loss), base_eval_loss=base_loss,
        base_perplexity=perplexity(base_loss),
        # pairs: no ROUGE/BLEU (the answer is judged by the pair scores, not by words shared with one side)
        metrics={} if pairs else dict(base=metrics.summarize([r["base"] for r in rows], refs),
                                      tuned=metrics.summarize([r["tuned"] for r in rows], refs)),
        samples=rows,
        settings=dict(max_new_tokens=args.max_new_tokens, decoding="greedy", quantization=cfg.quantization,
                      processes=d.world, device=str(d.device)),
        **keep_all("notes", notes(examples, samples, args.max_samples) + pair_notes(examples, preference)),
        runtime_s=round(time.time() - t0, 1), time=time.time(), **({"preference": preference} if pairs else {}))
    finish(report, run, out, d)
    progress(len(rows), "done")
    return 0


def load_model(ref, adapter: Path, start_dir: Path | None, cfg, d):
    """(the base model with the tuned adapter, the name of the start adapter loaded beside it or None)."""
    from peft import PeftModel
    model = PeftModel.from_pretrained(load_base_model(ref.source, cfg, d, ref.local), str(adapter), is_trainable=False)
    start = None
    if start_dir is not None:  # "base" means where the run started: that adapter, loaded beside the tuned one
        model.load_adapter(str(start_dir), adapter_name="start", is_trainable=False)
        start = "start"
    return model.eval(), start


def losses(model, tok, examples: list[dict], cfg, d, args, start: str | None) -> tuple[float | None, float | None]:
    """Validation loss with the tuned adapter and with the starting weights (logged)."""
    seqs = unpacked(encode_all(tok, examples, cfg.max_seq_length, cfg.train_on_inputs)[0])
    tuned = loss_on(model, seqs, d, tok.pad_token_id, args.batch_size)
    with starting_weights(model, start):
        base = loss_on(model, seqs, d, tok.pad_token_id, args.batch_size)
    log(d, f"[danlu] validation loss {tuned:.4f} (base model {base:.4f})" if tuned is not None
        else "[danlu] no answer tokens to measure a loss on")
    return tuned, base


def finish(report: dict, run: Path, out: Path, d) -> None:
    """eval.json / eval.csv / result.json, and the last log line."""
    trained, own = RunDir(run), RunDir(out)
    write_outputs(report, run, out)
    write_json(own.result, dict(status="succeeded", run_dir=str(run), eval_json=str(trained.eval_json),
                                eval_loss=report["eval_loss"], perplexity=report["perplexity"],
                                metrics=report["metrics"], preference=report.get("preference"),
                                runtime_s=report["runtime_s"]))
    m, p = report["metrics"], report.get("preference")
    if p is not None:
        log(d, f"[danlu] done: preference accuracy {fmt(p['base_accuracy'])} -> {fmt(p['tuned_accuracy'])}, "
               f"margin {fmt(p['base_margin'])} -> {fmt(p['tuned_margin'])} on {p['pairs']} pairs; "
               f"table in {trained.eval_csv}")
    else:
        log(d, f"[danlu] done: ROUGE-L base {fmt(m['base']['rouge_l'])} -> fine-tuned {fmt(m['tuned']['rouge_l'])}, "
               f"BLEU {fmt(m['base']['bleu'])} -> {fmt(m['tuned']['bleu'])}; table in {trained.eval_csv}")


def pair_notes(examples: list[dict], preference: dict | None) -> list[Msg]:
    if preference is None or preference["pairs"] == len(examples):
        return []
    return [Msg("eval.note.pairs_unscored", n=len(examples) - preference["pairs"])]


def notes(examples: list[dict], samples: list[dict], max_samples: int) -> list[Msg]:
    """What the results leave out, as codes: the report keeps them in English and as codes (keep_all), so
    the page says them in its language."""
    out = []
    n_text = sum(1 for e in examples if "messages" not in e and "chosen" not in e)  # a pair has a prompt
    if n_text:
        out.append(Msg("eval.note.text_only", n=n_text))
    if len(examples) - n_text > max_samples:
        out.append(Msg("eval.note.first_only", shown=max_samples, n=len(examples) - n_text))
    return out


def fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def sample_row(sample: dict, base: str, tuned: str) -> dict:
    ref = sample["reference"]
    b, t = metrics.score(base, ref), metrics.score(tuned, ref)
    return dict(prompt=sample["prompt"], reference=ref, base=base, tuned=tuned,
                base_rouge_l=b["rouge_l"], tuned_rouge_l=t["rouge_l"], base_bleu=b["bleu"], tuned_bleu=t["bleu"],
                base_exact=b["exact"], tuned_exact=t["exact"])


def pair_row(sample: dict, tuned: str, base_margin: float | None, tuned_margin: float | None) -> dict:
    return dict(prompt=sample["prompt"], chosen=sample["chosen"], rejected=sample["rejected"], reference=sample["reference"],
                tuned=tuned, base_margin=base_margin, tuned_margin=tuned_margin)


def csv_cell(v):
    """Spreadsheets run cells that start with = + - @ as formulas: a model's answer must stay text."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    if isinstance(v, float):
        return round(v, 6)
    return v


def to_csv(rows: list[dict], columns: list[str] = CSV_COLUMNS) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for r in rows:
        w.writerow([csv_cell(r[c]) for c in columns])
    return "\ufeff" + buf.getvalue()  # BOM: spreadsheet programs then read Chinese text correctly


def write_outputs(report: dict, run: Path, out: Path) -> None:
    """Into the trained run's directory (where the Evaluate tab looks), and a copy into the job's own."""
    trained, own = RunDir(run), RunDir(out)
    write_json(trained.eval_json, report)
    columns = PAIR_CSV_COLUMNS if "preference" in report else CSV_COLUMNS
    atomic_write_text(trained.eval_csv, to_csv(report["samples"], columns))
    shutil.copyfile(trained.eval_json, own.eval_json)
    shutil.copyfile(trained.eval_csv, own.eval_csv)


if __name__ == "__main__":
    sys.exit(main())
