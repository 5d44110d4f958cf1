"""DPO training speed and memory: Danlu's recipe (method dpo) against TRL's DPOTrainer with PEFT
QLoRA, on the same card, the same weights and the same pairs, at each micro-batch size.

    # CPU machine, once: .site (bitsandbytes, peft, liger) and .site_trl (trl, datasets) for the device
    bash bench/prepare.sh
    # one H200, one call (device tool: carry [".site", ".site_trl", ".bench-baseline"]):
    export PYTHONPATH=$PWD/.site ...; python3 .bench-baseline/make_model.py 8b /tmp/llama-8b
    python3 bench/dpo_bench.py --model /tmp/llama-8b --mb 1,4 --out $OUT/dpo-8b-h200.json
    # CPU dry run of the whole harness with the demo model (no quantisation on a CPU)
    python bench/dpo_bench.py --model builtin:danlu-tiny --seq 64 --prompt 16 --mb 1 --warmup 1 --steps 2 \\
        --quant none --out /tmp/dpo-dry.json

Data: pairs of random words over a word-level tokenizer written into a "model view" folder (the
model's config and weights as symlinks, that tokenizer, and a minimal chat template: each message's
words, an assistant turn closed by </s>). Every row the model sees, prompt + chosen and prompt +
rejected, is exactly --seq tokens (--prompt of them the prompt), so there is no padding and both
stacks tokenise identically (checked before the runs with Danlu's encode_pair and after TRL's own
tokenisation). Chosen and rejected answers are different words of the same length.

What is counted: tokens/s = real tokens of the rows each step trains on, prompt + chosen plus
prompt + rejected (the prompt is processed twice, once per row) = 2 x seq per pair, over the timed
steps (the --warmup steps, which include torch.compile and the first allocations, are excluded),
and pairs/s. Peak memory: torch.cuda.max_memory_allocated over the whole process, weights and the
reference pass included (Danlu: the recipe's gpu_mem_gib; TRL: read in its worker after train()).

Held equal: 4-bit nf4 with double quantisation and bf16 compute, LoRA r 16 / alpha 32 / dropout 0 on
all linear layers, beta 0.1, sigmoid loss, AdamW, constant learning rate, gradient accumulation 1,
gradient checkpointing on, and the reference: both compute the starting weights' log-probs once
before training (Danlu always does; TRL with precompute_ref_log_probs=True; --trl-ref live makes
TRL compute them at every step instead, its default). Each stack otherwise runs with its own
defaults: Danlu as the GUI launches it (compile, chunked answer log-probs, memory plan), TRL 1.16 as
its documentation sets up QLoRA (a quantised model + peft_config; TRL's own fused log-prob head).

Stacks, in this order at each micro-batch: danlu (TrainConfig's defaults: the memory plan "auto"
keeps as many layers' activations as the card's free memory holds, so it may use more than TRL),
trl, and danlu-lowest (memory_plan "lowest": the least GPU memory; the row to read against TRL's
memory). --danlu-set KEY=VALUE changes a setting of both Danlu stacks.

Output: a table (stdout) and a JSON (--out; also copied to $OUT when that is set) with one row per
stack and micro-batch. A stack that fails or times out gets its status and the end of its log.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (str(REPO), str(REPO / "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)

from loss_curve import child_env, cuda_available, find_run, resolve_builtin, run_logged, tail  # noqa: E402

STACKS = ("danlu", "trl", "danlu-lowest")  # danlu-lowest: memory_plan "lowest", the least GPU memory
DANLU_VARIANTS = {"danlu": {}, "danlu-lowest": {"memory_plan": "lowest"}}
N_WORDS = 1000  # word-level vocabulary: <pad> <s> </s> <unk> w4 .. w999 (fewer when the model's is smaller)
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['content'] }}{% if m['role'] == 'assistant' %} </s>{% endif %} "
                 "{% endfor %}")
LORA = dict(r=16, alpha=32, dropout=0.0)


# --- the model view and the pairs ---------------------------------------------------------------

def make_view(model_dir: Path, view: Path) -> dict:
    """Config and weights of `model_dir` (symlinks) + a word-level tokenizer with the chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    cfg = json.loads((model_dir / "config.json").read_text())
    n = min(N_WORDS, int(cfg["vocab_size"]))
    shutil.rmtree(view, ignore_errors=True)
    view.mkdir(parents=True)
    for p in sorted(model_dir.iterdir()):
        if p.name == "config.json" or p.name.endswith(".safetensors") or p.name.endswith(".safetensors.index.json"):
            (view / p.name).symlink_to(p.resolve())
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3} | {f"w{i}": i for i in range(4, n)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", model_max_length=1 << 20)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(view)
    return dict(vocab=n, hidden_size=cfg.get("hidden_size"), layers=cfg.get("num_hidden_layers"))


def make_pairs(n: int, seq: int, prompt: int, vocab: int, seed: int = 0) -> list[dict]:
    """n pairs whose rows (prompt + answer + </s>) are each exactly `seq` tokens."""
    answer = seq - prompt - 1
    if prompt < 1 or answer < 2:
        raise SystemExit(f"--prompt {prompt} leaves {answer} answer tokens in --seq {seq}: need at least 2")
    rng = random.Random(seed)

    def words(k: int) -> str:
        return " ".join(f"w{rng.randrange(4, vocab)}" for _ in range(k))
    out = []
    for _ in range(n):
        chosen, rejected = words(answer), words(answer)
        out.append({"prompt": [{"role": "user", "content": words(prompt)}],
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}]})
    return out


def write_pairs(pairs: list[dict], path: Path) -> Path:
    with open(path, "w") as f:
        for p in pairs:
            f.write(json.dumps(p) + "\n")
    return path


def check_tokens(view: Path, pairs: list[dict], seq: int, prompt: int) -> int:
    """Danlu's own encoding of the pairs: every row `seq` tokens, `prompt` of them unlabelled."""
    from transformers import AutoTokenizer
    from core.engine.preference import IGNORE, encode_pair
    tok = AutoTokenizer.from_pretrained(str(view), local_files_only=True)
    for ex in pairs:
        pair = encode_pair(tok, ex, seq)
        for ids, labels in ((pair.chosen_ids, pair.chosen_labels), (pair.rejected_ids, pair.rejected_labels)):
            if len(ids) != seq or labels.count(IGNORE) != prompt:
                raise SystemExit(f"data check: a row has {len(ids)} tokens ({labels.count(IGNORE)} prompt), "
                                 f"expected {seq} ({prompt})")
    return 2 * seq


# --- Danlu ---------------------------------------------------------------------------------------

def danlu_config(args, view: Path, data: Path, mb: int, name: str, stack: str = "danlu") -> dict:
    cfg = {"base_model": str(view), "dataset": str(data), "dataset_format": "preference", "method": "dpo",
            "pref_beta": args.beta, "quantization": args.quant, "lora_rank": LORA["r"], "lora_alpha": LORA["alpha"],
            "lora_dropout": LORA["dropout"], "target_modules": "all-linear", "learning_rate": 2e-4,
            "lr_scheduler": "constant", "warmup_ratio": 0.0, "max_steps": args.warmup + args.steps,
            "micro_batch_size": mb, "gradient_accumulation_steps": 1, "max_seq_length": args.seq,
            "val_fraction": 0.0, "eval_steps": 0, "save_steps": 0, "logging_steps": 1, "seed": 0,
            "gradient_checkpointing": True, "run_name": name}
    cfg.update(DANLU_VARIANTS[stack])
    for kv in args.danlu_set:  # e.g. compile=false
        key, _, value = kv.partition("=")
        cfg[key.strip()] = yaml_value(value)
    return cfg


def yaml_value(text: str):
    import yaml
    return yaml.safe_load(text)


def run_danlu(args, view: Path, data: Path, mb: int, work: Path, timeout: float, stack: str = "danlu") -> dict:
    import yaml
    name = f"dpo-bench-{stack}-mb{mb}-{os.getpid()}"
    cfg_path = work / f"{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(danlu_config(args, view, data, mb, name, stack), sort_keys=False))
    env = child_env(work, args.gpu)
    argv = [sys.executable, str(REPO / "app.py"), "train", str(cfg_path), "--nproc", "1"]
    if cuda_available():
        argv += ["--gpus", str(args.gpu)]
    rc = run_logged(f"{stack} mb{mb}", argv, work / f"{name}.log", env, timeout)
    run = find_run(name, env)
    out = dict(rc=rc, run_dir=str(run) if run else None)
    if run is not None:
        out.update(danlu_measure(run, args.warmup, args.warmup + args.steps))
    if rc != 0 or "tokens_per_s" not in out:
        out.update(status="timeout" if rc == "timeout" else "error", error=tail(work / f"{name}.log"))
    return out


def danlu_measure(run: Path, warmup: int, total: int) -> dict:
    """From the run's metrics.jsonl: the timed steps' real tokens over their seconds, and the peak."""
    from core.progress import seconds_between
    from core.rundir import RunDir, read_json, read_jsonl
    steps = {m["step"]: m for m in read_jsonl(RunDir(run).metrics) if "loss" in m}
    info = read_json(RunDir(run).run_info) or {}
    out = dict(peak_gib=max((m["gpu_mem_gib"] for m in steps.values() if "gpu_mem_gib" in m), default=None),
               speed=info.get("speed"), losses=[round(steps[s]["loss"], 4) for s in sorted(steps)])
    if warmup in steps and total in steps:
        span = seconds_between(steps[warmup], steps[total])  # a demo-model step on a quick CPU can be under 10 ms
        tokens = sum(steps[s].get("tokens", 0) for s in range(warmup + 1, total + 1))
        if span > 0:
            out.update(seconds=round(span, 3), timed_tokens=tokens, tokens_per_s=round(tokens / span, 1), status="ok")
        else:  # below the clock's resolution: say so rather than divide by zero or invent a rate
            out.update(seconds=0.0, timed_tokens=tokens, status="error", error="timed span below 1 ms")
    return out


# --- TRL (its own process: a fresh CUDA context and peak, and the packages of .site_trl) ----------

def run_trl(args, view: Path, data: Path, mb: int, work: Path, timeout: float, stack: str = "trl") -> dict:
    spec = dict(view=str(view), data=str(data), mb=mb, seq=args.seq, warmup=args.warmup, steps=args.steps,
                beta=args.beta, quant=args.quant, ref=args.trl_ref, out=str(work / f"trl-mb{mb}.json"),
                output_dir=str(work / f"trl-mb{mb}"))
    spec_path = work / f"trl-mb{mb}-spec.json"
    spec_path.write_text(json.dumps(spec))
    Path(spec["out"]).unlink(missing_ok=True)
    env = child_env(work, args.gpu)
    site = REPO / ".site_trl"
    if site.is_dir():  # the device has no trl or datasets: bench/prepare.sh carries them
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(site)]))
    argv = [sys.executable, str(Path(__file__).resolve()), "--trl-worker", str(spec_path)]
    rc = run_logged(f"trl mb{mb}", argv, work / f"trl-mb{mb}.log", env, timeout)
    out = json.loads(Path(spec["out"]).read_text()) if Path(spec["out"]).exists() else {}
    out["rc"] = rc
    if out.get("row_tokens") not in (None, [args.seq]):  # TRL tokenised the pairs differently: not comparable
        out.update(status="error", error=f"TRL's rows have {out['row_tokens']} tokens, Danlu's {args.seq}")
    elif rc != 0 or "tokens_per_s" not in out:
        out.update(status="timeout" if rc == "timeout" else "error", error=tail(work / f"trl-mb{mb}.log"))
    return out


def trl_model(spec: dict, cuda: bool):
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    dtype = torch.bfloat16 if cuda else torch.float32
    qc = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                            bnb_4bit_compute_dtype=dtype) if spec["quant"] == "4bit" else None
    model = AutoModelForCausalLM.from_pretrained(spec["view"], quantization_config=qc, dtype=dtype,
                                                 device_map={"": 0 if cuda else "cpu"}, local_files_only=True)
    model.config.use_cache = False
    return model, dtype


def trl_worker(spec_path: str) -> int:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer
    spec = json.loads(Path(spec_path).read_text())
    cuda = torch.cuda.is_available()
    total = spec["warmup"] + spec["steps"]
    tok = AutoTokenizer.from_pretrained(spec["view"], local_files_only=True)
    pairs = [json.loads(line) for line in Path(spec["data"]).read_text().splitlines()][: total * spec["mb"]]
    t0 = time.time()
    model, dtype = trl_model(spec, cuda)
    load_s = time.time() - t0
    times: list[float] = []
    batch_tokens: list[int] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter())
    args = DPOConfig(output_dir=spec["output_dir"], per_device_train_batch_size=spec["mb"], gradient_accumulation_steps=1,
                     max_steps=total, learning_rate=2e-4, lr_scheduler_type="constant", warmup_steps=0, beta=spec["beta"],
                     loss_type=["sigmoid"], max_length=None, precompute_ref_log_probs=spec["ref"] == "precompute",
                     precompute_ref_batch_size=spec["mb"], gradient_checkpointing=True, bf16=cuda, use_cpu=not cuda,
                     optim="adamw_torch_fused" if cuda else "adamw_torch", logging_steps=1, save_strategy="no",
                     report_to="none", disable_tqdm=True, dataloader_num_workers=0, seed=0)
    lora = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"], target_modules="all-linear",
                      task_type="CAUSAL_LM")
    t1 = time.time()
    trainer = DPOTrainer(model=model, args=args, processing_class=tok, train_dataset=Dataset.from_list(pairs),
                         peft_config=lora, callbacks=[Clock()])
    setup_s = time.time() - t1  # tokenising, and with precompute the reference pass
    rows = [len(r["prompt_ids"]) + len(r[s]) for r in trainer.train_dataset for s in ("chosen_ids", "rejected_ids")]
    collate = trainer.data_collator

    def counting(examples):
        b = collate(examples)
        batch_tokens.append(int(b["attention_mask"].sum()))
        return b
    trainer.data_collator = counting
    trainer.train()
    w = spec["warmup"]
    span = times[total - 1] - times[w - 1] if w >= 1 else times[total - 1] - t1
    timed_tokens = sum(batch_tokens[w:total])
    out = dict(status="ok", tokens_per_s=round(timed_tokens / span, 1), seconds=round(span, 3), timed_tokens=timed_tokens,
               peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
               load_s=round(load_s, 1), setup_s=round(setup_s, 1), compute_dtype=str(dtype),
               row_tokens=sorted(set(rows)), losses=[round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h])
    Path(spec["out"]).write_text(json.dumps(out))
    print(f"[trl] {out['tokens_per_s']} tokens/s, peak {out['peak_gib']} GiB", flush=True)
    return 0


# --- report --------------------------------------------------------------------------------------

def device_name() -> str:
    try:
        import torch
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:
        return "unknown"


def versions() -> dict:
    """The packages' versions; TRL's and datasets' from .site_trl, which only the TRL worker imports."""
    from importlib.metadata import PackageNotFoundError, distributions, version
    extra = {d.metadata["Name"].lower(): d.version for d in distributions(path=[str(REPO / ".site_trl")])}
    out = {}
    for name in ("torch", "transformers", "peft", "bitsandbytes", "trl", "datasets", "liger-kernel"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = extra.get(name)
    return out


def table(rows: list[dict]) -> str:
    lines = ["| stack | micro-batch | pairs/s | tokens/s | vs TRL | peak GiB | status |", "|---|---|---|---|---|---|---|"]
    trl = {r["micro_batch"]: r for r in rows if r["stack"] == "trl" and r.get("tokens_per_s")}
    for r in rows:
        tps = r.get("tokens_per_s")
        ref = trl.get(r["micro_batch"], {}).get("tokens_per_s")
        ratio = f"{tps / ref:.2f}x" if tps and ref and r["stack"] != "trl" else ""
        pairs = f"{tps / r['pair_tokens']:.2f}" if tps else ""
        lines.append(f"| {r['stack']} | {r['micro_batch']} | {pairs} | {tps or ''} | {ratio} | "
                     f"{r.get('peak_gib') if r.get('peak_gib') is not None else ''} | {r.get('status')} |")
    return "\n".join(lines)


def write(args, res: dict) -> None:
    text = json.dumps(res, indent=2, default=str)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    if os.environ.get("OUT") and Path(os.environ["OUT"]).is_dir():  # the device tool returns only $OUT
        (Path(os.environ["OUT"]) / Path(args.out).name).write_text(text)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a Llama-shaped model folder, or builtin:danlu-tiny")
    ap.add_argument("--mb", default="1,4", help="micro-batch sizes (pairs per step), comma-separated")
    ap.add_argument("--seq", type=int, default=2048, help="tokens per row: prompt + one answer")
    ap.add_argument("--prompt", type=int, default=512, help="prompt tokens in each row")
    ap.add_argument("--warmup", type=int, default=2, help="untimed first steps (compile, allocations)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--quant", default="4bit", choices=("4bit", "none"), help="none: for a CPU dry run")
    ap.add_argument("--trl-ref", default="precompute", choices=("precompute", "live"),
                    help="TRL's reference log-probs: once before training (as Danlu) or at every step (TRL's default)")
    ap.add_argument("--stacks", default=",".join(STACKS), help="run in this order at each micro-batch")
    ap.add_argument("--danlu-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a TrainConfig setting for the Danlu runs (repeatable), e.g. compile=false")
    ap.add_argument("--gpu", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=240, help="seconds per run at most")
    ap.add_argument("--deadline", type=float, default=480, help="start no run after this many seconds")
    ap.add_argument("--work", default="/tmp/danlu-dpo-bench")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "dpo-bench.json"))
    args = ap.parse_args(argv)
    args.mbs = [int(x) for x in args.mb.split(",") if x.strip()]
    args.stack_list = [s.strip() for s in args.stacks.split(",") if s.strip()]
    bad = [s for s in args.stack_list if s not in STACKS]
    if bad or not args.mbs or args.warmup < 1 or args.steps < 1:
        ap.error(f"stacks from {STACKS} (got {bad}), at least one micro-batch, --warmup and --steps >= 1")
    return args


def main(argv=None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--trl-worker":
        return trl_worker(sys.argv[2])
    args = parse_args(argv)
    t_start = time.time()
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    model_dir = resolve_builtin(args.model, work)
    view_info = make_view(model_dir, work / "view")
    res = dict(model=args.model, device=device_name(), versions=versions(), seq=args.seq, prompt=args.prompt,
               warmup=args.warmup, steps=args.steps, beta=args.beta, quant=args.quant, trl_ref=args.trl_ref,
               lora=LORA, view=view_info, tokens_counted="real tokens of prompt+chosen and prompt+rejected rows "
               "(prompt twice): 2 x seq per pair", rows=[])
    for mb in args.mbs:
        pairs = make_pairs((args.warmup + args.steps) * mb, args.seq, args.prompt, view_info["vocab"], seed=mb)
        pair_tokens = check_tokens(work / "view", pairs, args.seq, args.prompt)
        data = write_pairs(pairs, work / f"pairs-mb{mb}.jsonl")
        for stack in args.stack_list:
            left = args.deadline - (time.time() - t_start)
            row = dict(stack=stack, micro_batch=mb, seq=args.seq, pair_tokens=pair_tokens)
            if left < 30:
                row.update(status="skipped", error=f"{left:.0f} s left before the deadline")
            else:
                runner = run_trl if stack == "trl" else run_danlu
                t0 = time.time()
                print(f"[dpo_bench] {stack} mb {mb} ...", flush=True)
                row.update(runner(args, work / "view", data, mb, work, min(args.timeout, left), stack))
                row["wall_s"] = round(time.time() - t0, 1)
            res["rows"].append(row)
            write(args, res)  # after every run: a call cut short keeps what it measured
    print(table(res["rows"]), flush=True)
    print(f"[dpo_bench] wrote {args.out}", flush=True)
    return 0 if all(r.get("status") == "ok" for r in res["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
