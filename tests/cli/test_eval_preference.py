"""`python app.py eval RUN --json` on a preference run prints the "preference" block (issue 18's pinned
names) scored on the run's held-out pairs (the training split, same seed), and the table shows the
prompt, both reference answers and the tuned model's answer.

The run is made here (config.yaml with method dpo, a random LoRA adapter beside the tiny demo model),
not trained: training is pref-train's test; this one checks what evaluation makes of such a run."""
from __future__ import annotations

import io
import json

import pytest

from tests.conftest import run_app

PAIRS = [("What colour does the {} furnace burn?", "It burns {}.", "No idea, sorry."),
         ("Which pill is made in the {} hall?", "The {} pill.", "Many pills, hard to say.")]
WORDS = ["tin", "copper", "iron", "jade", "pine", "silver"]


@pytest.fixture
def pref_run(home, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.config import TrainConfig, save_config
    from core.rundir import RunDir, adapter_info_path
    data = tmp_path / "pairs.jsonl"
    rows = [dict(prompt=q.format(w), chosen=c.format(w), rejected=r) for w in WORDS for q, c, r in PAIRS]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    run = RunDir(home / "runs" / "j-pref-made-here")
    run.path.mkdir(parents=True)
    cfg = TrainConfig(base_model="builtin:danlu-tiny", dataset=str(data), method="dpo", quantization="none",
                      val_fraction=0.25, max_seq_length=128)
    save_config(cfg, run.config)
    model_dir = home / "models" / "danlu-tiny"
    torch.manual_seed(0)
    net = get_peft_model(AutoModelForCausalLM.from_pretrained(str(model_dir)),
                         LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    net.save_pretrained(str(run.adapter))
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(run.adapter))
    adapter_info_path(run.adapter).write_text(json.dumps(dict(base_model="builtin:danlu-tiny", quantization="none")))
    return run, data


def test_eval_of_a_preference_run_prints_the_preference_block_and_the_pair_table(home, pref_run):
    run, data = pref_run
    r = run_app("eval", run.path, "--json", "--max-new-tokens", "6", home=home, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    report = json.loads(r.stdout)
    p = report["preference"]
    assert set(p) >= {"base_accuracy", "tuned_accuracy", "base_margin", "tuned_margin", "pairs"}
    # the held-out pairs are the training split's validation share (same function, same seed)
    from core.data import load_examples
    from core.engine.sft_data import split
    loaded = load_examples(str(data), "auto", {})
    assert loaded.format == "preference"
    _, val = split(loaded.examples, 0.25, 42)
    assert p["pairs"] == len(val) == 3 == report["n_samples"]
    assert [s["prompt"] for s in report["samples"]] == [e["prompt"][-1]["content"] for e in val]
    assert [s["chosen"] for s in report["samples"]] == [e["chosen"][0]["content"] for e in val]
    assert [s["rejected"] for s in report["samples"]] == [e["rejected"][0]["content"] for e in val]
    for key in ("base", "tuned"):
        margins = [s[f"{key}_margin"] for s in report["samples"]]
        assert p[f"{key}_margin"] == pytest.approx(sum(margins) / 3)
        assert p[f"{key}_accuracy"] == pytest.approx(sum(m > 0 for m in margins) / 3)
    assert p["base_margin"] != pytest.approx(p["tuned_margin"])  # the random adapter moved the scores
    assert all(isinstance(s["tuned"], str) for s in report["samples"])
    assert report["eval_loss"] is not None and report["metrics"] == {}
    assert not any("plain-text" in n for n in report["notes"])  # pairs have prompts
    assert "preference accuracy" in r.stderr  # the job's last log line says the outcome
    # the CLI's own table (without --json) and the page's rows: prompt, chosen, rejected, tuned answer
    from cli.model_cmd import print_table
    from core import evaluation
    from webui.tabs.evaluate_tab import PAIR_TABLE_KEYS
    buf = io.StringIO()
    print_table(report, out=buf)
    text = buf.getvalue()
    assert "chosen" in text.splitlines()[1] and "rejected" in text.splitlines()[1]
    assert "preference accuracy" in text and "mean margin" in text
    rows = evaluation.table_rows(report)
    assert len(rows[0]) == len(PAIR_TABLE_KEYS)
    assert rows[0][:3] == [report["samples"][0][k] for k in ("prompt", "chosen", "rejected")]
    assert (run.path / "eval.csv").read_text(encoding="utf-8-sig").startswith("prompt,chosen,rejected,tuned")
