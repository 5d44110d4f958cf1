"""Probe prompts: fixed questions the model answers at every checkpoint and at the end of training,
so a person can watch the answers change step by step (XTuner's EvaluateChatHook, but kept in a
file the GUI shows per step instead of only in the log).

    answer_probes(model, tok, cfg, d, step, run_dir, autocast)   # rank 0 appends to RUN/probes.jsonl

probes.jsonl: one line per prompt per step: {"step", "prompt", "answer", "time"}. Greedy answers,
at most MAX_NEW_TOKENS tokens, so two runs with the same seed show the same answers.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import torch

from core.engine.common import append_jsonl
from core.rundir import RunDir
from core.engine.inference import generate_batch, prompt_ids

MAX_NEW_TOKENS = 64


def answer_probes(model, tok, cfg, d, step: int, run_dir: Path, autocast=None) -> list[dict]:
    """Answer cfg.probe_prompts with the model as it is now (rank 0 only; no collectives here).
    A failure here is reported and skipped: probes must never cost a training run."""
    prompts = [p for p in (cfg.probe_prompts or []) if p.strip()]
    if not prompts or not d.main:
        return []
    try:
        return _answer(model, tok, cfg, step, run_dir, autocast, prompts)
    except Exception as e:
        print(f"[danlu] warning: the probe prompts could not be answered at step {step} ({type(e).__name__}: {e}); "
              "training goes on", flush=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return []


def _answer(model, tok, cfg, step, run_dir, autocast, prompts) -> list[dict]:
    was_training = model.training
    use_cache = model.config.use_cache
    model.eval()
    model.config.use_cache = True  # training turns the cache off; generation is much faster with it
    try:
        ids = [prompt_ids(tok, [{"role": "user", "content": p}], max_prompt_tokens=cfg.max_seq_length) for p in prompts]
        # compiled training layers would recompile for every new generation length: run them eagerly here
        eager = torch.compiler.set_stance("force_eager") if hasattr(torch.compiler, "set_stance") else nullcontext()
        with torch.no_grad(), eager, (autocast or nullcontext()):
            answers = generate_batch(model, tok, ids, MAX_NEW_TOKENS)
    finally:
        model.config.use_cache = use_cache
        if was_training:
            model.train()
    now = time.time()
    records = [dict(step=step, prompt=p, answer=a, time=now) for p, a in zip(prompts, answers)]
    for rec in records:
        append_jsonl(RunDir(run_dir).probes, rec)
    print(f"[danlu] probe answers at step {step}: " + " | ".join(repr(a[:60]) for a in answers), flush=True)
    return records
