"""The peer stack of bench/loss_curve.py, run in its own process by it:

    python bench/loss_curve_baseline.py CFG.yaml OUT.json

transformers Trainer + PEFT LoRA + bitsandbytes nf4 (double quant) with prepare_model_for_kbit_training,
fed Danlu's own micro-batches (prepare_data / epoch_batches / collate from the same config) in
Danlu's order through a sequential sampler, with Danlu's learning-rate schedule. OUT gets the
per-step losses; loss_curve.py compares them with Danlu's (its docstring says what is held equal).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def planned_batches(cfg, tok, steps: int) -> tuple[list, dict]:
    """Danlu's own micro-batches for the first `steps` steps, in Danlu's order (world 1, GA 1)."""
    from core.engine.common import setup_dist
    from core.engine.methods import SFT
    from core.recipes.train import epoch_batches, prepare_data
    d = setup_dist()
    data = prepare_data(cfg, tok, d, SFT())
    train, info = data.train, data.info
    out, epoch = [], 0
    while len(out) < steps:
        out += epoch_batches(train, cfg.micro_batch_size, 1, 0, cfg.seed, epoch)
        epoch += 1
    out = out[:steps]
    if any(len(b) != cfg.micro_batch_size for b in out):
        raise ValueError("a planned batch is not full; the sequential sampler would regroup rows")
    return out, info


def baseline_model(cfg, source: str, cuda: bool):
    """The peer recipe: nf4 + double quant, prepare_model_for_kbit_training, LoRA as Danlu resolves it."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    qc = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                            bnb_4bit_compute_dtype=dtype) if cfg.quantization == "4bit" else None
    model = AutoModelForCausalLM.from_pretrained(source, quantization_config=qc, dtype=dtype,
                                                 device_map={"": 0 if cuda else "cpu"},
                                                 attn_implementation=cfg.attn_implementation, local_files_only=True)
    model.config.use_cache = False
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing,
                                            gradient_checkpointing_kwargs={"use_reentrant": False})
    targets = cfg.target_modules.strip()
    lcfg = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, bias="none",
                      task_type="CAUSAL_LM",
                      target_modules="all-linear" if targets == "all-linear" else [t.strip() for t in targets.split(",")])
    torch.manual_seed(cfg.seed)  # as Danlu: the LoRA weights start from the same random numbers
    return get_peft_model(model, lcfg), dtype


def baseline_worker(cfg_path: str, out_path: str) -> int:
    import torch
    from transformers import Trainer, TrainingArguments
    from core.config import load_config
    from core.models import resolve_model
    from core.engine.common import load_tokenizer
    from core.engine.sft_data import collate
    from core.recipes.train import lr_lambda

    cfg = load_config(cfg_path)
    cuda = torch.cuda.is_available()
    ref = resolve_model(cfg.base_model)
    tok = load_tokenizer(ref.source, cfg, ref.local)
    batches, info = planned_batches(cfg, tok, cfg.max_steps)
    rows = [seq for b in batches for seq in b]  # the sequential sampler regroups them into the same batches
    model, dtype = baseline_model(cfg, ref.source, cuda)
    print(f"[baseline] {len(batches)} batches of {cfg.micro_batch_size}; {info['train_sequences']} sequences; "
          f"compute {dtype}", flush=True)
    losses: list[float] = []

    class SameOrderTrainer(Trainer):
        def _get_train_sampler(self, *a, **k):
            return torch.utils.data.SequentialSampler(self.train_dataset)

        def create_scheduler(self, num_training_steps, optimizer=None):
            if self.lr_scheduler is None:  # Danlu's schedule (warm-up (s+1)/w, then cosine), not HF's
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer,
                                                                      lr_lambda(cfg, cfg.max_steps))
            return self.lr_scheduler

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            losses.append(float(loss))
            print(f"[baseline] step {len(losses)}/{cfg.max_steps} loss {losses[-1]:.4f}", flush=True)
            return loss

    def collator(seqs):
        b = collate(seqs, tok.pad_token_id, cfg.packing)
        b.pop("n_tokens"), b.pop("n_targets")
        return b

    optim = "paged_adamw_8bit" if cfg.optimizer == "paged_adamw_8bit" and cuda else \
        ("adamw_torch_fused" if cuda else "adamw_torch")
    ta = TrainingArguments(
        output_dir=str(Path(out_path).parent / "baseline-trainer"), per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=1, max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm, optim=optim,
        bf16=cuda and dtype == torch.bfloat16, use_cpu=not cuda, gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False}, logging_steps=1, save_strategy="no",
        eval_strategy="no", report_to="none", dataloader_num_workers=0, dataloader_drop_last=False,
        dataloader_pin_memory=cuda, remove_unused_columns=False, disable_tqdm=True, seed=cfg.seed)
    Trainer_ = SameOrderTrainer(model=model, args=ta, train_dataset=rows, data_collator=collator)
    Trainer_.train()
    Path(out_path).write_text(json.dumps(dict(losses={i + 1: v for i, v in enumerate(losses)},
                                              train_sequences=info["train_sequences"],
                                              train_tokens=info["train_tokens"], compute_dtype=str(dtype))))
    return 0


if __name__ == "__main__":
    sys.exit(baseline_worker(sys.argv[1], sys.argv[2]))
