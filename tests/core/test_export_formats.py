"""The export formats table: --format parsing, file names, and the estimates shown before an export."""
import json

import pytest
import yaml

from core.errors import InputError
from core.export_formats import estimates, gguf_file, ollama_target, parse_formats, scratch_bytes


def test_formats_parse_in_table_order_without_repeats_and_default_to_the_merged_folder():
    assert parse_formats(None) == parse_formats("") == ["safetensors"]
    assert parse_formats("ollama,Q8_0, q4_k_m,f16,lora,q8_0") == ["f16", "q8_0", "q4_k_m", "lora", "ollama"]
    assert parse_formats(["lora"]) == ["lora"]


def test_every_unknown_format_is_named_at_once():
    with pytest.raises(InputError) as e:
        parse_formats("q4_k_m,gguf,q9")
    assert [p.message for p in e.value.problems] == ["'gguf' is not an export format", "'q9' is not an export format"]
    assert "q4_k_m" in e.value.problems[0].hint


def test_ollama_brings_the_suggested_gguf_when_none_was_asked_for():
    assert parse_formats("ollama") == ["q4_k_m", "ollama"]
    assert ollama_target(parse_formats("q8_0,ollama")) == "q8_0"
    assert ollama_target(["f16", "q5_k_m", "q4_k_m"]) == "q4_k_m"


def test_gguf_file_names_follow_the_hub_convention():
    assert gguf_file("my-bot", "q4_k_m") == "my-bot-Q4_K_M.gguf"


def test_estimates_for_an_8b_model_order_the_types_by_size_and_count_the_scratch_space():
    params = 8.03e9
    rows = {r["format"]: r for r in estimates(["f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m"], params, gpu=True, cores=16)}
    sizes = [rows[f]["bytes"] for f in ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m")]
    assert sizes == sorted(sizes, reverse=True)
    assert 4.5e9 < rows["q4_k_m"]["bytes"] < 5.2e9 and rows["f16"]["bytes"] == pytest.approx(16.06e9, rel=0.01)
    assert rows["q4_k_m"]["seconds"] > rows["q8_0"]["seconds"] > 0  # K-quants search their scales: slower
    with_scratch = estimates(["q4_k_m"], params, gpu=True)
    assert [r["format"] for r in with_scratch] == ["q4_k_m", "(merge)"]
    # at the peak: merged bf16 + a full-precision GGUF to quantise from + the Q4_K_M itself
    assert scratch_bytes(["q4_k_m"], params) == pytest.approx(params * 2 + params * 2 + rows["q4_k_m"]["bytes"], rel=0.01)


def test_the_model_card_has_the_hub_header_and_the_runs_facts(tmp_path):
    from core.model_card import model_card
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(dict(base_model="Qwen/Qwen2.5-0.5B-Instruct", quantization="4bit",
                                                         lora_rank=16, learning_rate=2e-4, dataset="/x/pinned/ab.jsonl")))
    (run / "dataset.json").write_text(json.dumps(dict(source="/home/ann/shop-faq.csv", sha256="ab" * 32)))
    (run / "run_info.json").write_text(json.dumps(dict(rows=500, train_examples=450, val_examples=50)))
    (run / "result.json").write_text(json.dumps(dict(final_loss=0.8123, eval_loss=0.9456, steps=120)))
    formats = {"q4_k_m": dict(kind="gguf", status="passed", files=["bot-Q4_K_M.gguf"], summary="answered"),
               "lora": dict(kind="lora", status="passed", files=["lora/adapter_config.json"])}
    text = model_card(run, export_name="bot", base_model="Qwen/Qwen2.5-0.5B-Instruct", formats=formats,
                      files={"bot-Q4_K_M.gguf": {"size": 3 * 2**20}}, system_prompt="Be brief.")
    _, header, body = text.split("---\n", 2)
    meta = yaml.safe_load(header)
    assert meta["base_model"] == "Qwen/Qwen2.5-0.5B-Instruct" and meta["library_name"] == "transformers"
    assert {"gguf", "peft", "danlu"} <= set(meta["tags"])
    for fact in ("shop-faq.csv", "500 rows", "0.8123", "0.9456", "QLoRA", "lora_rank: 16", "Be brief.", "bot-Q4_K_M.gguf",
                 "3.0 MiB", "No evaluation was run", "Danlu 0."):
        assert fact in body, fact
    (run / "eval.json").write_text(json.dumps(dict(n_samples=50, eval_loss=0.9, base_eval_loss=2.1, metrics=dict(
        base=dict(rouge_l=0.1, bleu=0.05, exact_match=0.0), tuned=dict(rouge_l=0.6, bleu=0.4, exact_match=0.2)))))
    text = model_card(run, export_name="bot", base_model="b", formats=formats, files={})
    assert "| ROUGE-L | 0.1000 | 0.6000 |" in text and "50 held-out prompts" in text


def test_a_gguf_check_names_its_tensor_types_without_python_braces():
    """The Export tab showed "tensor types {'F32': 5, 'Q5_0': 13}" in every language (a browser walk)."""
    from core.engine.export_steps import _gguf_summary
    c = dict(status="passed", reply="The tin furnace", agreeing_tokens=9, compared_tokens=9, forced_agreeing_tokens=11,
             forced_tokens=16, tokens=[1], tensor_types={"F32": 5, "Q5_0": 13})
    text = str(_gguf_summary(c))
    assert "tensor types F32: 5, Q5_0: 13" in text and "{" not in text, text
