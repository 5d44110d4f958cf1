"""Does Danlu's fast training path learn the same as the standard peer stack? Per-step loss curves
on real text, three stacks, identical data in identical order.

    # CPU, built-in demo model (a couple of minutes on 2 cores)
    python bench/loss_curve.py --model builtin:danlu-tiny --steps 20 --mb 2 --seq 256 --out /tmp/loss-cpu.json
    # one CUDA GPU, a Llama-shaped folder (e.g. /tmp/llama-8b from ../shared/bench-baseline/make_model.py)
    python bench/loss_curve.py --model /tmp/llama-8b --steps 50 --mb 2 --seq 1024 --out $OUT/loss-8b.json

Stacks (each its own subprocess, with a timeout; one failing does not stop the others):
    baseline     transformers Trainer + PEFT LoRA + bitsandbytes nf4 (double quant), with
                 prepare_model_for_kbit_training (the fp32 upcast peers do) and gradient
                 checkpointing; bf16 autocast on CUDA, fp32 on CPU (as Danlu on CPU).
    danlu-plain  `python app.py train CFG --nproc 1` with every speed feature off
                 (fused_loss, compile, offload_activations = false).
    danlu        the same with TrainConfig's defaults for speed (what the GUI launches; the memory
                 plan "auto": on a large GPU every layer keeps its activations).
    danlu-lowest the defaults with memory_plan=lowest (every layer recomputed, inputs offloaded).

What is held equal: the base weights and tokenizer, the batches (the baseline builds them with
Danlu's own prepare_data / epoch_batches / collate from the same config and feeds them to Trainer
in that order with a sequential sampler), label masking and loss normalisation (sum over target
tokens / their count: Trainer's num_items_in_batch equals Danlu's n_targets), the LoRA config and
its initialisation (torch.manual_seed(seed) right before get_peft_model), AdamW (lr, betas, eps,
weight decay), gradient clipping and Danlu's learning-rate schedule (its lr_lambda, warm-up
included, as the Trainer's scheduler). What differs is only how each stack computes: fp32 upcast
vs bf16 norms/embeddings, fused loss, compiled layers, checkpoint placement.

Data: CPython's own Language Reference prose (pydoc_data.topics, in sorted key order; no network),
a byte-level BPE tokenizer trained on it deterministically (vocab min(16000, the model's
vocab_size)) in a "model view" folder (symlinks to the model's config and weights + that
tokenizer), and a `text`-format JSONL whose rows are each just under --seq tokens (cut at word
boundaries), so every packed sequence is one row of real text and every step trains on --mb of
them. When the text runs out it is used again from the start (the JSON says how many passes).
--rows real: row lengths drawn as bench/bigger_data.py draws them (log-normal, median 300 tokens,
clipped to --seq), so each packed sequence holds several documents, each attending only to itself
(position ids); the baseline gets the same packed batches, position ids included.

Verdict, per Danlu stack against the baseline: "match" when the mean |loss - baseline| over all
steps is <= 2% of the mean baseline loss AND the means of the last 10 steps differ by <= 2%;
otherwise "DIFFER". The table, summary and verdict are printed; --out gets the JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

STACKS = ("baseline", "danlu-plain", "danlu", "danlu-lowest")
SPEED_OFF = {"fused_loss": False, "compile": False, "offload_activations": False}
TOLERANCE = 0.02
LAST_N = 10
SPECIALS = ["<|pad|>", "<|bos|>", "<|eos|>"]


# --- real text, tokenizer, model view, dataset ---------------------------------------------

def corpus_text() -> str:
    """The Python Language Reference prose shipped with CPython, in a fixed order."""
    from pydoc_data.topics import topics
    return "\n\n".join(topics[k].strip() for k in sorted(topics))


def train_tokenizer(text: str, vocab_size: int):
    """Byte-level BPE trained on `text`; the same text and size give the same tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text.split("\n\n"), trainer=trainer)
    # a BOS in front of every document, as Llama's tokenizer does (render() appends the EOS)
    tok.post_processor = processors.TemplateProcessing(single="<|bos|> $A", pair="<|bos|> $A <|bos|> $B",
                                                      special_tokens=[("<|bos|>", tok.token_to_id("<|bos|>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>", pad_token="<|pad|>")


def make_view(model_dir: Path, view: Path, tok) -> Path:
    """A model folder = the model's config and weights (symlinks) + our tokenizer. No chat
    template: the `text` format does not use one (Danlu falls back to ChatML for its checks)."""
    import shutil
    shutil.rmtree(view, ignore_errors=True)
    view.mkdir(parents=True)
    for p in sorted(model_dir.iterdir()):
        if p.name == "config.json" or p.name.endswith(".safetensors") or p.name.endswith(".safetensors.index.json"):
            (view / p.name).symlink_to(p.resolve())
    tok.save_pretrained(view)
    return view


def text_rows(tok, text: str, seq: int, n_rows: int, lengths=None) -> tuple[list[str], int]:
    """`n_rows` consecutive pieces of `text`, each cut at word boundaries so that BOS + its
    tokens + EOS is at most `seq` tokens (or lengths[i], when given) and only a word short of it.
    Returns (rows, passes)."""
    enc = tok.backend_tokenizer.encode(text, add_special_tokens=False)
    words, offsets = enc.word_ids, enc.offsets
    starts = [i for i in range(len(words)) if i == 0 or words[i] != words[i - 1]]  # token index of each word
    rows, passes, w = [], 1, 0
    while len(rows) < n_rows:
        budget = max(16, min(seq, lengths[len(rows)] if lengths else seq)) - 2
        if w >= len(starts) - 1:
            w, passes = 0, passes + 1
        first = starts[w]
        end_w = w
        while end_w + 1 < len(starts) and starts[end_w + 1] - first <= budget:
            end_w += 1
        if end_w == w:
            raise ValueError(f"--seq {seq} is shorter than one word of the text")
        row = text[offsets[first][0]:offsets[starts[end_w]][0]]
        while len(tok(row)["input_ids"]) + 1 > budget + 2:  # render() adds BOS and EOS; re-tokenising may merge differently
            cut = row.rstrip().rfind(" ")
            if cut <= 0:
                raise ValueError(f"could not cut a row of at most {seq} tokens at a space")
            row = row[:cut]
        rows.append(row)
        w = end_w
    return rows, passes


def write_jsonl(rows: list[str], path: Path) -> Path:
    path.write_text("".join(json.dumps({"text": r}, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def build_inputs(model_dir: Path, work: Path, seq: int, n_rows: int, real: bool = False) -> dict:
    """Tokenizer, model view and dataset in `work`; returns their description."""
    cfg = json.loads((model_dir / "config.json").read_text())
    vocab = min(16000, int(cfg["vocab_size"]))
    text = corpus_text()
    tok = train_tokenizer(text, vocab)
    view = make_view(model_dir, work / "model-view", tok)
    lengths = None
    if real:  # short rows with a long tail: several per packed sequence
        from bigger_data import lengths as draw
        n_rows = n_rows * seq // 100  # enough that the first epoch holds every step (its last batch may be short)
        lengths = draw(n_rows)
    rows, passes = text_rows(tok, text, seq, n_rows, lengths)
    data = write_jsonl(rows, work / f"text-{seq}-{n_rows}{'-real' if real else ''}.jsonl")
    top = max(max(tok(r)["input_ids"]) for r in rows)
    if len(tok) > cfg["vocab_size"] or top >= cfg["vocab_size"]:
        raise ValueError(f"token id {top} does not fit the model's vocabulary of {cfg['vocab_size']}")
    return dict(view=str(view), dataset=str(data), rows=len(rows), corpus_chars=len(text), corpus_passes=passes,
                tokenizer_vocab=len(tok), model_vocab=cfg["vocab_size"])


def resolve_builtin(model: str, work: Path) -> Path:
    """builtin:danlu-tiny -> the demo model, built into the benchmark's own workspace."""
    from core.demo_model import ensure_demo_model, is_builtin
    from core.workspace import Workspace
    if not is_builtin(model):
        return Path(model).expanduser().resolve()
    return ensure_demo_model(Workspace.open(work / "home"), model)


# --- configs and the Danlu runs ---------------------------------------------------------------

def train_config(args, inputs: dict, stack: str) -> dict:
    """TrainConfig defaults plus the benchmark's settings; danlu-plain switches speed off."""
    cfg = {"base_model": inputs["view"], "dataset": inputs["dataset"], "dataset_format": "text",
           "max_steps": args.steps, "micro_batch_size": args.mb, "gradient_accumulation_steps": 1,
           "max_seq_length": args.seq, "packing": True, "val_fraction": 0.0, "eval_steps": 0,
           "save_steps": 0, "logging_steps": 1, "seed": 0, "learning_rate": args.lr,
           "run_name": f"loss-{stack}-{os.getpid()}"}
    if stack == "danlu-plain":
        cfg.update(SPEED_OFF)
    if stack == "danlu-lowest":
        cfg["memory_plan"] = "lowest"
    return cfg


def write_config(cfg: dict, path: Path) -> Path:
    import yaml
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def child_env(work: Path, gpu: int = 0) -> dict:
    env = dict(os.environ, DANLU_HOME=str(work / "home"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False")
    if cuda_available():
        # one GPU, by its physical index: Trainer would otherwise wrap the model in DataParallel; Danlu's
        # launcher sets the same variable from its own --gpus lease
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


def cuda_available() -> bool:
    import shutil
    return shutil.which("nvidia-smi") is not None


def run_logged(tag: str, argv: list[str], log: Path, env: dict, timeout: float) -> str | int:
    """Run a child with its output in `log`, echoing new lines (prefixed) while it runs.
    On timeout it gets SIGINT first (a Danlu `train` then cancels its job), then SIGKILL."""
    t_end = time.time() + timeout
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, cwd=str(REPO), env=env, stdout=f, stderr=subprocess.STDOUT)
    pos = 0
    while True:
        rc = proc.poll()
        pos = echo_new(tag, log, pos)
        if rc is not None:
            return rc
        if time.time() > t_end:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            echo_new(tag, log, pos)
            return "timeout"
        time.sleep(2)


def echo_new(tag: str, log: Path, pos: int) -> int:
    with open(log, "rb") as f:
        f.seek(pos)
        chunk = f.read()
    keep = chunk[:chunk.rfind(b"\n") + 1]  # whole lines only
    for line in keep.decode("utf-8", "replace").splitlines():
        print(f"  [{tag}] {line}", flush=True)
    return pos + len(keep)


def run_danlu(args, inputs: dict, stack: str, work: Path) -> dict:
    cfg = train_config(args, inputs, stack)
    cfg_path = write_config(cfg, work / f"{stack}.yaml")
    env = child_env(work, args.gpu)
    argv = [sys.executable, str(REPO / "app.py"), "train", str(cfg_path), "--nproc", "1"]
    if cuda_available():
        argv += ["--gpus", str(args.gpu)]
    rc = run_logged(stack, argv, work / f"{stack}.log", env, args.timeout)
    run = find_run(cfg["run_name"], env)
    from core.rundir import RunDir, read_json
    losses = read_metrics(RunDir(run).metrics) if run else {}
    info = read_json(RunDir(run).run_info) if run else {}
    out = dict(rc=rc, losses=losses, run_dir=str(run) if run else None, speed=info.get("speed"),
               train_sequences=info.get("train_sequences"), train_tokens=info.get("train_tokens"))
    if rc != 0:
        out["error"] = tail(work / f"{stack}.log")
    return out


def find_run(run_name: str, env: dict) -> Path | None:
    r = subprocess.run([sys.executable, str(REPO / "app.py"), "jobs", "list", "--json"], cwd=str(REPO), env=env,
                       capture_output=True, text=True, timeout=120)
    jobs = json.loads(r.stdout or "[]")
    job = next((j for j in jobs if j.get("name") == run_name), None)
    return Path(job["run_dir"]) if job else None


def read_metrics(path: Path) -> dict[int, float]:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("loss") is not None:
                out[int(rec["step"])] = float(rec["loss"])
    return out


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


# --- the baseline (its own process: bench/loss_curve_baseline.py CFG OUT) ------------------------

def run_baseline(args, inputs: dict, work: Path) -> dict:
    cfg_path = write_config(train_config(args, inputs, "baseline"), work / "baseline.yaml")
    out = work / "baseline-result.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve().parent / "loss_curve_baseline.py"), str(cfg_path), str(out)]
    rc = run_logged("baseline", argv, work / "baseline.log", child_env(work, args.gpu), args.timeout)
    res = json.loads(out.read_text()) if out.exists() else {}
    res = dict(res, rc=rc, losses={int(k): v for k, v in res.get("losses", {}).items()})
    if rc != 0 or not out.exists():
        res["error"] = tail(work / "baseline.log")
    return res


# --- comparison ---------------------------------------------------------------------------------

def compare(base: dict[int, float], other: dict[int, float], steps: int) -> dict:
    """Mean and max |other - baseline| over all steps, relative to the mean baseline loss, and
    the last-10-step means. Missing or non-finite steps make the comparison incomplete."""
    common = [s for s in range(1, steps + 1) if s in base and s in other
              and math.isfinite(base[s]) and math.isfinite(other[s])]
    if len(common) < steps:
        return dict(complete=False, steps_compared=len(common), verdict="DIFFER (incomplete)")
    diffs = [abs(other[s] - base[s]) for s in common]
    mean_base = sum(base[s] for s in common) / len(common)
    last = common[-LAST_N:]
    last_b, last_o = (sum(d[s] for s in last) / len(last) for d in (base, other))
    out = dict(complete=True, steps_compared=len(common), mean_abs_diff=sum(diffs) / len(diffs), max_abs_diff=max(diffs),
               mean_rel_diff=sum(diffs) / len(diffs) / mean_base, max_rel_diff=max(diffs) / mean_base,
               last_mean_baseline=last_b, last_mean=last_o, last_rel_diff=abs(last_o - last_b) / last_b)
    out["verdict"] = verdict(out)
    return out


def verdict(c: dict, tol: float = TOLERANCE) -> str:
    if not c.get("complete"):
        return "DIFFER (incomplete)"
    return "match" if c["mean_rel_diff"] <= tol and c["last_rel_diff"] <= tol else "DIFFER"


def curve_stats(losses: dict[int, float]) -> dict:
    if not losses:
        return {}
    steps = sorted(losses)
    last = steps[-LAST_N:]
    return dict(first=losses[steps[0]], last=losses[steps[-1]], last10_mean=sum(losses[s] for s in last) / len(last))


def fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "-"


def print_report(res: dict, steps: int) -> None:
    stacks = [s for s in STACKS if s in res["runs"]]
    runs = res["runs"]
    print("\nstep | " + " | ".join(f"{s:>11}" for s in stacks) + " | danlu-baseline")
    for i in range(1, steps + 1):
        vals = [runs[s]["losses"].get(i) for s in stacks]
        b, f = runs.get("baseline", {}).get("losses", {}).get(i), runs.get("danlu", {}).get("losses", {}).get(i)
        diff = f"{f - b:+.4f}" if b is not None and f is not None else "-"
        print(f"{i:4d} | " + " | ".join(f"{fmt(v):>11}" for v in vals) + f" | {diff:>14}")
    print()
    for s in stacks:
        st = res["curves"].get(s, {})
        err = f"  ERROR (rc {runs[s].get('rc')}): {runs[s]['error'][-600:]}" if runs[s].get("error") else ""
        print(f"{s:>11}: first {fmt(st.get('first'))}  last {fmt(st.get('last'))}  "
              f"mean of last {LAST_N} {fmt(st.get('last10_mean'))}{err}")
    print(f"\ncriterion: 'match' when mean |loss - baseline| <= {TOLERANCE:.0%} of the mean baseline loss "
          f"and the last-{LAST_N}-step means differ by <= {TOLERANCE:.0%}")
    for name, c in res["comparisons"].items():
        if c.get("complete"):
            print(f"{name} vs baseline: mean |diff| {c['mean_abs_diff']:.3g} ({c['mean_rel_diff']:.2%}), "
                  f"max {c['max_abs_diff']:.3g} ({c['max_rel_diff']:.2%}), last-{LAST_N} means "
                  f"{c['last_mean']:.4f} vs {c['last_mean_baseline']:.4f} ({c['last_rel_diff']:.2%}) -> {c['verdict']}")
        else:
            print(f"{name} vs baseline: {c['verdict']} ({c['steps_compared']} of {steps} steps comparable)")
    print(flush=True)


# --- main ---------------------------------------------------------------------------------------

def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for m in ("torch", "transformers", "peft", "bitsandbytes", "tokenizers", "liger-kernel"):
        try:
            out[m] = version(m)
        except PackageNotFoundError:
            out[m] = None
    return out


def device_name() -> str:
    if cuda_available():
        r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
                           capture_output=True, text=True, timeout=60)
        return r.stdout.strip() or "cuda"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin:danlu-tiny", help="a model folder, or builtin:danlu-tiny")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--mb", type=int, default=2, help="micro-batch size (gradient accumulation is 1)")
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--out", required=True, help="JSON result file")
    ap.add_argument("--work", default="/tmp/danlu-loss-curve", help="work folder (workspace, data, logs)")
    ap.add_argument("--stacks", default=",".join(STACKS))
    ap.add_argument("--gpu", type=int, default=0, help="physical GPU index that every stack runs on")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per stack")
    ap.add_argument("--rows", choices=("full", "real"), default="full",
                    help="full: every row just under --seq tokens; real: log-normal lengths, packed")
    return ap.parse_args(argv)


def report(args, model_dir, inputs: dict, runs: dict, final: bool) -> None:
    base = runs.get("baseline", {}).get("losses", {})
    res = dict(model=args.model, model_dir=str(model_dir), steps=args.steps, mb=args.mb, seq=args.seq, lr=args.lr, rows=args.rows,
               device=device_name(), versions=versions(), inputs=inputs, runs=runs,
               curves={s: curve_stats(r["losses"]) for s, r in runs.items()},
               comparisons={s: compare(base, runs[s]["losses"], args.steps) for s in runs if s != "baseline"},
               criterion=f"match: mean |diff| <= {TOLERANCE:.0%} of mean baseline loss and last-{LAST_N} means within {TOLERANCE:.0%}",
               complete=final)
    if final or len(runs) > 1:
        print_report(res, args.steps)
    Path(args.out).write_text(json.dumps(res, indent=2, default=str))
    print(f"[loss_curve] wrote {args.out}", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
    unknown = [s for s in stacks if s not in STACKS]
    if unknown:
        sys.exit(f"unknown stack(s) {unknown}; choose from {', '.join(STACKS)}")
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_dir = resolve_builtin(args.model, work)
    print(f"[loss_curve] model {model_dir}; building tokenizer and data in {work}", flush=True)
    inputs = build_inputs(model_dir, work, args.seq, args.steps * args.mb + 2 * args.mb, real=args.rows == "real")
    print(f"[loss_curve] {inputs['rows']} rows of <= {args.seq} tokens; BPE vocab {inputs['tokenizer_vocab']}; "
          f"text used {inputs['corpus_passes']}x", flush=True)
    runs = {}
    for s in stacks:
        t0 = time.time()
        print(f"[loss_curve] running {s} ...", flush=True)
        try:
            runs[s] = run_baseline(args, inputs, work) if s == "baseline" else run_danlu(args, inputs, s, work)
        except Exception as e:  # one broken stack must not hide the others
            runs[s] = dict(rc="exception", losses={}, error=f"{type(e).__name__}: {e}")
        runs[s]["wall_s"] = round(time.time() - t0, 1)
        print(f"[loss_curve] {s}: rc {runs[s]['rc']}, {len(runs[s]['losses'])} steps, {runs[s]['wall_s']} s", flush=True)
        # written after every stack: a run cut short by an outer time limit keeps what it measured
        report(args, model_dir, inputs, runs, final=s == stacks[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
