"""The real training path on CPU: torchrun, gloo, bitsandbytes nf4, PEFT LoRA, the supervisor."""
import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_app

pytestmark = pytest.mark.slow


def job_of(home) -> dict:
    r = run_app("jobs", "list", "--json", home=home)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def test_demo_trains_with_two_processes_and_the_adapter_generates(home, tmp_path):
    # 6 of the preset's 20 epochs (42 steps a rank, with its evaluations at 20 and 40 and its save at 40):
    # the loss and the answers' likelihood already clear the margins below by far
    cfg = short_config(tmp_path, home, num_epochs=6)
    r = run_app("train", cfg, "--nproc", "2", home=home, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    job = job_of(home)
    assert job["state"] == "succeeded" and job["nproc"] == 2
    run = Path(job["run_dir"])
    losses = [m["loss"] for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in m]
    assert len(losses) >= 5
    assert losses[-1] <= 0.7 * losses[0], f"loss fell only from {losses[0]:.3f} to {losses[-1]:.3f}"
    info = json.loads((run / "run_info.json").read_text())
    assert info["world_size"] == 2
    assert sorted(p.parent.name for p in (run / "ranks").glob("*/attempt_0/*/stdout.log")) == ["0", "1"]
    # the adapter loads with PEFT on the base model and generates
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(run / "adapter")
    base = AutoModelForCausalLM.from_pretrained(home / "models" / "danlu-tiny")
    model = PeftModel.from_pretrained(base, run / "adapter")
    ids = tok.apply_chat_template([{"role": "user", "content": "What does the mint pill do?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    outs = [model.generate(**ids, max_new_tokens=12, do_sample=False)[0] for _ in range(2)]
    assert outs[0].equal(outs[1]) and len(outs[0]) > ids["input_ids"].shape[1]  # greedy: the same new tokens twice
    # what it learned, as a number with a margin (not the words a tiny model happens to write): a
    # training answer is at least twice as likely per token with the adapter as without it
    import torch
    row = json.loads((REPO / "presets/templates/data/demo.jsonl").read_text().splitlines()[0])
    full = tok.apply_chat_template(row["messages"], return_tensors="pt", return_dict=True)
    prompt = tok.apply_chat_template(row["messages"][:1], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    labels = full["input_ids"].clone()
    labels[:, :prompt["input_ids"].shape[1]] = -100
    with torch.no_grad():
        tuned = model(**full, labels=labels).loss
        with model.disable_adapter():
            untuned = model(**full, labels=labels).loss
    print(f"\n[answer nll] tuned {float(tuned):.3f}, without the adapter {float(untuned):.3f}")
    assert tuned < untuned - 0.69, (float(tuned), float(untuned))


def test_qlora_nf4_layers_train_on_cpu(home):
    import torch
    from bitsandbytes.nn import Linear4bit

    from core.config import TrainConfig
    from core.engine.common import Dist, load_base_model
    from core.recipes.train import add_lora
    d = Dist(0, 1, 0, torch.device("cpu"), None)
    cfg = TrainConfig(quantization="4bit", dataset="x")
    model = load_base_model(str(home / "models" / "danlu-tiny"), cfg, d, local=True)
    assert any(isinstance(m, Linear4bit) for m in model.modules())
    assert model.model.layers[0].self_attn.q_proj.weight.quant_type == "nf4"
    model = add_lora(model, cfg, d)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = torch.randint(5, 300, (4, 32))
    losses = []
    for _ in range(15):
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.9


def short_config(tmp_path, home, **edits) -> Path:
    cfg = tmp_path / "c.yaml"
    assert run_app("copy-preset", "demo", cfg, home=home).returncode == 0
    data = yaml.safe_load(cfg.read_text())
    data.update(edits)
    cfg.write_text(yaml.safe_dump(data))
    return cfg


def test_crash_in_one_rank_fails_the_job_and_names_the_rank(home, services, tmp_path):
    from core import launcher
    from core.config import load_config
    cfg = load_config(short_config(tmp_path, home, num_epochs=3, save_steps=0, eval_steps=0))
    job = launcher.submit_train(services.workspace, cfg, launcher.LaunchSpec(nproc=2, env={"DANLU_FAULT": "crash@3:1"}), origin="shell")
    job = launcher.wait(services.workspace, job.id, timeout=180)
    assert job.state == "FAILED"
    assert job.reason == "crashed"
    assert "Rank 1" in job.message
    err = json.loads((Path(job.run_dir) / "error.json").read_text())
    assert err["rank"] == 1
    assert "injected crash at step 3 on rank 1" in err["log_tail"]


def test_plain_lora_without_quantization(home, tmp_path):
    cfg = short_config(tmp_path, home, quantization="none", max_steps=4, eval_steps=0, save_steps=0, logging_steps=1)
    r = run_app("train", cfg, home=home, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "step 4/4" in r.stdout


def test_same_seed_same_run(home, tmp_path):
    """Two runs of one config give the same loss curve (the LoRA initialisation follows the seed)."""
    cfg = short_config(tmp_path, home, max_steps=3, eval_steps=0, save_steps=0, logging_steps=1, val_fraction=0)
    curves = []
    for _ in range(2):
        r = run_app("train", cfg, home=home, timeout=180)
        assert r.returncode == 0, r.stdout[-2000:]
        run = Path(job_of(home)["run_dir"])
        curves.append([m["loss"] for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in m])
    assert len(curves[0]) == 3 and curves[0] == curves[1]
