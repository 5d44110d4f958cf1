"""Measure the rates behind the Export tab's time estimates (core.export_formats.RATES) on this CPU:
conversion (llama.cpp's convert_hf_to_gguf.py), quantisation (llama_model_quantize, per core) and a
GGUF check, on a randomly initialised Llama of about 100M parameters with every row 256-wide or more
(so the K-quants are real, unlike on the 64-wide demo model).

    python bench/export_rates_cpu.py [--hidden 768 --layers 12] [--out bench/results/export-rates-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--out", default="bench/results/export-rates-cpu.json")
    args = ap.parse_args()
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from core.demo_model import build
    from core.engine import gguf as G
    tmp = Path(tempfile.mkdtemp(prefix="danlu-rates-"))
    try:
        demo = build(tmp / "demo")
        tok = AutoTokenizer.from_pretrained(demo)
        cfg = LlamaConfig(hidden_size=args.hidden, intermediate_size=int(args.hidden * 8 / 3) // 256 * 256,
                          num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64,
                          num_key_value_heads=args.hidden // 64 // 4, vocab_size=len(tok), tie_word_embeddings=False)
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
        params = sum(p.numel() for p in model.parameters())
        src = tmp / "model"
        t = time.time()
        model.save_pretrained(src, safe_serialization=True)
        save_s = time.time() - t
        tok.save_pretrained(src)
        for f in ("tokenizer.model", "tokenizer_config.json"):
            shutil.copy2(demo / f, src / f)
        # the merge step's own work on a CPU: load bf16, add a rank-16 LoRA on every linear, fold it, save
        from peft import LoraConfig, get_peft_model
        t = time.time()
        base = LlamaForCausalLM.from_pretrained(src, dtype=torch.bfloat16)
        merged = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")).merge_and_unload()
        merged.save_pretrained(tmp / "merged", safe_serialization=True)
        merge_s = time.time() - t
        cores = os.cpu_count() or 2
        res = dict(params=params, cores=cores, hidden=args.hidden, layers=args.layers, save_bf16_s=round(save_s, 2),
                   merge_cpu_s=round(merge_s, 2), merge_params_per_s_cpu=round(params / merge_s))
        res["convert_s"] = G.convert(src, tmp / "m-BF16.gguf", "bf16")
        for t_ in ("q8_0", "q4_k_m"):
            res[f"quantize_{t_}_s"] = G.quantize(tmp / "m-BF16.gguf", tmp / f"m-{t_}.gguf", t_, cores)
            res[f"size_{t_}_bytes"] = (tmp / f"m-{t_}.gguf").stat().st_size
            res[f"bits_per_weight_{t_}"] = round(res[f"size_{t_}_bytes"] * 8 / params, 3)
        ids = tok("The copper furnace", add_special_tokens=False)["input_ids"]
        t = time.time()
        check = G.verify(tmp / "m-q4_k_m.gguf", "q4_k_m", ids, "The copper furnace", [], [], tmp, cores)
        res["verify_q4_k_m_s"] = round(time.time() - t, 2)
        res["q4_k_m_tensor_types"] = check.get("tensor_types")
        res["convert_params_per_s"] = round(params / res["convert_s"])
        res["quantize_q4_k_m_params_per_s_per_core"] = round(params / res["quantize_q4_k_m_s"] / cores)
        print(json.dumps(res, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
