"""The model card (README.md) of an export, in the Hugging Face layout: a YAML header (base_model,
library_name, tags, ...) and then plain sections, so the folder can be uploaded to a hub as it is.
Pure Python (no torch); reads only the training run's own files.

    text = model_card(run_dir, export_name="my-bot", base_model="Qwen/Qwen2.5-0.5B-Instruct",
                      formats={"q4_k_m": {...check...}}, files={"my-bot-Q4_K_M.gguf": ...}, system_prompt="")
"""
from __future__ import annotations

import time
from pathlib import Path

import yaml

from core.rundir import RunDir, read_json, read_jsonl
from core.version import describe

SETTINGS = ("quantization", "lora_rank", "lora_alpha", "lora_dropout", "target_modules", "learning_rate", "lr_scheduler",
            "warmup_ratio", "num_epochs", "max_steps", "micro_batch_size", "gradient_accumulation_steps",
            "max_seq_length", "packing", "val_fraction", "train_on_inputs", "optimizer", "weight_decay", "seed",
            "chat_template")
USAGE = {
    "safetensors": "transformers: `AutoModelForCausalLM.from_pretrained(\"{dir}\")`",
    "gguf": "llama.cpp: `llama-cli -m {dir}/{file} -cnv`; LM Studio: `lms import {dir}/{file}`",
    "ollama": "Ollama: `ollama create {name} -f {dir}/Modelfile && ollama run {name}`",
    "lora": "PEFT: `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), \"{dir}/lora\")`; "
            "vLLM: `vllm serve BASE --enable-lora --lora-modules {name}={dir}/lora`",
}


def _config(run: RunDir) -> dict:
    try:
        return yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _last_losses(run: RunDir) -> tuple[float | None, float | None]:
    train = val = None
    for rec in read_jsonl(run.metrics):
        if rec.get("loss") is not None:
            train = rec["loss"]
        if rec.get("eval_loss") is not None:
            val = rec["eval_loss"]
    return train, val


def card_facts(run_dir: Path) -> dict:
    """What the card says about training: method, dataset, settings, losses, evaluation."""
    run = RunDir(run_dir)
    cfg, info, result = _config(run), read_json(run.run_info), read_json(run.result)
    dataset = read_json(run.dataset_info)
    train_loss, val_loss = _last_losses(run)
    quant = cfg.get("quantization", "")
    return dict(
        method=("QLoRA (4-bit base)" if quant == "4bit" else "QLoRA (8-bit base)" if quant == "8bit" else "LoRA"),
        dataset=Path(dataset.get("source") or cfg.get("dataset") or "?").name,
        dataset_sha256=dataset.get("sha256") or info.get("dataset_sha256"),
        rows=info.get("rows"), train_examples=info.get("train_examples"), val_examples=info.get("val_examples"),
        settings={k: cfg[k] for k in SETTINGS if k in cfg},
        train_loss=result.get("final_loss", train_loss), val_loss=result.get("eval_loss", val_loss),
        steps=result.get("steps"), evaluation=read_json(run.eval_json) or None,
    )


def _fmt(x, digits=4) -> str:
    return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def model_card(run_dir: Path, *, export_name: str, base_model: str, formats: dict, files: dict,
               system_prompt: str = "", created: float | None = None) -> str:
    facts = card_facts(run_dir)
    ggufs = [f for f, c in formats.items() if c.get("kind") == "gguf"]
    header = dict(base_model=base_model, library_name="peft" if set(formats) == {"lora"} else "transformers",
                  pipeline_tag="text-generation",
                  tags=["danlu", "lora", "fine-tuned"] + (["gguf"] if ggufs else [])
                  + (["ollama"] if "ollama" in formats else []) + (["peft"] if "lora" in formats else []))
    lines = ["---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).strip(), "---", "",
             f"# {export_name}", "",
             f"A fine-tuned version of `{base_model}`, trained with Danlu {describe()} by {facts['method']}.", ""]
    lines += ["## Training", "", "| | |", "| --- | --- |",
              f"| base model | `{base_model}` |", f"| method | {facts['method']} |",
              f"| dataset | {facts['dataset']} ({_fmt(facts['rows'])} rows: {_fmt(facts['train_examples'])} for training, "
              f"{_fmt(facts['val_examples'])} held out) |",
              f"| final training loss | {_fmt(facts['train_loss'])} |", f"| final validation loss | {_fmt(facts['val_loss'])} |",
              f"| steps | {_fmt(facts['steps'])} |", ""]
    if facts["dataset_sha256"]:
        lines[-1:-1] = [f"| dataset sha256 | `{facts['dataset_sha256']}` |"]
    lines += ["### Settings", "", "```yaml", yaml.safe_dump(facts["settings"], sort_keys=False).strip(), "```", ""]
    lines += _evaluation(facts["evaluation"])
    if system_prompt:
        lines += ["## System prompt", "", "```", system_prompt, "```", ""]
    lines += _files_section(export_name, formats, files)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(created or time.time()))
    lines += ["## Provenance", "", f"Exported {when} with Danlu {describe()}. `manifest.json` lists every file's "
              "size and sha256 and the result of each format's check.", ""]
    return "\n".join(lines)


def _evaluation(report: dict | None) -> list[str]:
    if not report:
        return ["## Evaluation", "", "No evaluation was run before this export (`python app.py eval JOB` runs one).", ""]
    m = report.get("metrics", {})
    b, t = m.get("base", {}), m.get("tuned", {})
    rows = [("validation loss", report.get("base_eval_loss"), report.get("eval_loss")),
            ("ROUGE-L", b.get("rouge_l"), t.get("rouge_l")), ("BLEU-4", b.get("bleu"), t.get("bleu")),
            ("exact match", b.get("exact_match"), t.get("exact_match"))]
    out = ["## Evaluation", "", f"On {report.get('n_samples', '?')} held-out prompts, greedy answers:", "",
           "| metric | base model | fine-tuned |", "| --- | --- | --- |"]
    out += [f"| {name} | {_fmt(base)} | {_fmt(tuned)} |" for name, base, tuned in rows]
    return out + [""]


def _files_section(name: str, formats: dict, files: dict) -> list[str]:
    out = ["## Files and how to run them", "", "| format | files | size | check |", "| --- | --- | --- | --- |"]
    for fmt, check in formats.items():
        rels = check.get("files", [])
        size = sum(files.get(rel, {}).get("size", 0) for rel in rels)
        shown = ", ".join(f"`{r}`" for r in rels[:4]) + (f" and {len(rels) - 4} more" if len(rels) > 4 else "")
        note = check.get("summary") or check.get("error") or ""
        out.append(f"| {fmt} | {shown} | {size / 2**20:.1f} MiB | {check.get('status', '-')}{': ' + note if note else ''} |")
    out.append("")
    kinds = {c.get("kind") for c in formats.values()}
    for kind in ("safetensors", "gguf", "ollama", "lora"):
        if kind in kinds:
            gguf = next((r for c in formats.values() if c.get("kind") == "gguf" for r in c.get("files", [])), "MODEL.gguf")
            out.append("- " + USAGE[kind].format(dir=f"./{name}", file=gguf, name=name))
    return out + [""]
