"""Evaluate, export and chat with a really trained demo job, through the CLI as a user would."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from core.demo_model import DEMO_DATA
from tests.conftest import run_app

pytestmark = pytest.mark.slow


def test_eval_json_shows_the_fine_tuned_answers_closer_to_the_references(trained):
    home, job_id, run_dir = trained["home"], trained["job_id"], trained["run_dir"]
    r = run_app("eval", job_id, "--json", home=home, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    report = json.loads(r.stdout)  # stdout is pure JSON; the job's log went to stderr
    assert "evaluation job" in r.stderr
    for key in ("eval_loss", "perplexity", "metrics", "samples"):
        assert key in report
    assert report["perplexity"] == pytest.approx(math.exp(report["eval_loss"]))
    # the validation split of the 124-example demo set at val_fraction 0.1: 12 held-out prompts
    assert report["n_samples"] == len(report["samples"]) == 12
    sample = report["samples"][0]
    assert set(sample) >= {"prompt", "reference", "base", "tuned", "base_rouge_l", "tuned_rouge_l", "base_bleu",
                           "tuned_bleu", "base_exact", "tuned_exact"}
    tuned, base = report["metrics"]["tuned"], report["metrics"]["base"]
    assert tuned["rouge_l"] > base["rouge_l"] + 0.2, report["metrics"]
    assert tuned["bleu"] > base["bleu"], report["metrics"]
    closer = sum(s["tuned_rouge_l"] > s["base_rouge_l"] for s in report["samples"])
    assert closer >= 10, [(s["reference"], s["base"][:40], s["tuned"]) for s in report["samples"]]
    assert report["eval_loss"] < report["base_eval_loss"]
    # the held-out prompts are the validation examples, never the training ones
    from core.data import load_examples
    from core.engine.sft_data import split
    cfg_dataset = next(line.split(": ", 1)[1] for line in (run_dir / "config.yaml").read_text().splitlines()
                       if line.startswith("dataset: "))
    train_ex, val_ex = split(load_examples(cfg_dataset).examples, 0.1, 42)
    assert [s["prompt"] for s in report["samples"]] == [e["messages"][0]["content"] for e in val_ex]
    # eval.json / eval.csv sit in the trained run's directory; the CSV has the per-sample table
    assert json.loads((run_dir / "eval.json").read_text())["samples"] == report["samples"]
    with open(run_dir / "eval.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and rows[0]["reference"] == sample["reference"]
    # without --json the CLI prints this table: one row per sample, then the summary
    import io

    from cli.model_cmd import print_table
    buf = io.StringIO()
    print_table(report, out=buf)
    lines = buf.getvalue().splitlines()
    assert sum(1 for ln in lines if ln.strip()[:3].strip().isdigit()) == 12
    assert any(ln.startswith("validation loss") and "ROUGE-L" in ln for ln in lines)
    jobs = json.loads(run_app("jobs", "list", "--json", home=home).stdout)
    [ev] = [j for j in jobs if j["kind"] == "eval"]
    assert ev["state"] == "succeeded" and ev["parent_id"] == job_id and ev["gpus"] == ["cpu"]
    assert (Path(ev["run_dir"]) / "eval.json").is_file() and (Path(ev["run_dir"]) / "result.json").is_file()


def test_merge_writes_a_sharded_export_that_transformers_loads_and_generates(trained):
    home, job_id = trained["home"], trained["job_id"]
    r = run_app("merge", job_id, "demo-export", "--max-shard-size", "100KB", home=home, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "smoke test passed" in r.stdout
    out = home / "exports" / "demo-export"
    assert not (home / "exports" / "demo-export.partial").exists()
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors.index.json", "tokenizer.json", "manifest.json"} <= names
    shards = [n for n in names if n.startswith("model-") and n.endswith(".safetensors")]
    assert len(shards) >= 2, names
    assert not any(n.endswith((".bin", ".pt")) for n in names)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(shards) <= set(manifest["files"])
    from core.export import list_exports, verify_export
    from core.workspace import Workspace
    assert verify_export(out) is None
    [row] = [r for r in list_exports(Workspace.open(home)) if r["name"] == "demo-export"]  # the GGUF tests share the home
    assert row["smoke_test"] == "passed" and row["dtype"] == "bf16" and row["formats"] == ["safetensors"]
    # one size for one export: the merge's line (and the Export tab's result, from the same result.json) says
    # the folder's size on disk, as the exports table lists it; it said the manifest's files only (307 KB vs 311)
    from core.messages import size_msg
    assert f"export: {out} ({size_msg(row['size_bytes'])}, bf16)" in r.stdout, r.stdout
    card = (out / "README.md").read_text()  # every export has a model card, in the Hugging Face layout
    assert card.startswith("---\nbase_model: builtin:danlu-tiny\n") and manifest["files"]["README.md"]["format"] == "model card"

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.dtype == torch.bfloat16
    assert "<|im_start|>" in tok.chat_template  # the template training used travels with the export
    # the adapter is in the weights: on the training data's answers the export's loss is far below the
    # base model's (a margin, not the model's words)
    base = AutoModelForCausalLM.from_pretrained(home / "models" / "danlu-tiny", dtype=torch.bfloat16)
    rows = [json.loads(line)["messages"] for line in DEMO_DATA.read_text().splitlines()[:16]]
    assert answer_loss(model, tok, rows) < answer_loss(base, tok, rows) - 1.0

    # the same name again is refused before any work; a corrupted shard is detected
    r = run_app("merge", job_id, "demo-export", home=home)
    assert r.returncode == 2 and "already exists" in r.stderr
    with open(out / shards[0], "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02")
    assert "corrupted" in verify_export(out)


def answer_loss(model, tok, conversations: list[list[dict]]) -> float:
    """Mean loss of the assistant turns (the prompt is context, not scored)."""
    import torch
    total, n = 0.0, 0
    for messages in conversations:
        prompt = tok.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
        full = tok.apply_chat_template(messages, tokenize=False)
        ids = tok(full, return_tensors="pt", add_special_tokens=False).input_ids
        start = len(tok(prompt, add_special_tokens=False).input_ids)
        labels = ids.clone()
        labels[:, :start] = -100
        with torch.no_grad():
            total += model(input_ids=ids, labels=labels).loss.float().item()
        n += 1
    return total / n


def test_chat_prompt_prints_one_reply_and_exits(trained):
    home, job_id = trained["home"], trained["job_id"]
    r = run_app("chat", job_id, "--prompt", "What colour does the tin furnace burn?", "--temperature", "0",
                "--max-new-tokens", "16", home=home, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    reply = r.stdout.strip()
    assert reply, r.stdout
    again = run_app("chat", job_id, "--prompt", "What colour does the tin furnace burn?", "--temperature", "0",
                    "--max-new-tokens", "16", home=home, timeout=180)
    assert again.stdout.strip() == reply  # greedy decoding is deterministic


def test_chat_engine_streams_compares_and_frees(trained):
    import psutil

    from core.chat import ChatEngine
    from core.workspace import Workspace
    engine = ChatEngine(Workspace.open(trained["home"]))
    try:
        tuned = engine.load(trained["job_id"], origin="shell")
        base = engine.load("builtin:danlu-tiny", origin="shell")  # compare mode: two sessions
        assert engine.info(tuned)["adapter"] and not engine.info(base)["adapter"]
        q = [{"role": "user", "content": [{"type": "text", "text": "Where is the pine pill made?"}]}]  # Gradio 6 shape
        stream = engine.stream(tuned, q, temperature=0, max_new_tokens=16)
        deltas = list(stream)
        assert len(deltas) >= 2 and "".join(deltas) == stream.text
        assert engine.reply(tuned, q, temperature=0, max_new_tokens=16) == stream.text  # greedy: the same again
        assert stream.stats["new_tokens"] >= 2 and stream.stats["ttft_s"] > 0
        assert engine.reply(base, q, temperature=0, max_new_tokens=16) != stream.text
        # stopping early (the reader goes away) leaves the worker able to answer again
        s2 = engine.stream(tuned, q, temperature=0.9, max_new_tokens=200)
        next(iter(s2))
        s2.close()
        assert engine.reply(tuned, q, temperature=0, max_new_tokens=16) == stream.text
        workers = list(engine._workers.values())
        assert len(workers) == 1 and workers[0].alive
        engine.unload(tuned)
        assert workers[0].alive  # the base session is still loaded
        with pytest.raises(Exception, match="not loaded"):
            engine.stream(tuned, q)
        reply = engine.unload(base)
        assert reply["worker_stopped"] and not workers[0].alive
        assert not psutil.pid_exists(workers[0].proc.pid) or psutil.Process(workers[0].proc.pid).status() == "zombie"
    finally:
        engine.close()


def test_eval_of_a_run_without_adapter_is_refused_in_words(trained, tmp_path):
    home = trained["home"]
    r = run_app("eval", "no-such-job", home=home)
    assert r.returncode == 2 and "no training job or run folder" in r.stderr
    fake = Path(home) / "runs" / "unfinished"
    fake.mkdir()
    (fake / "config.yaml").write_text("base_model: builtin:danlu-tiny\n")
    r = run_app("eval", fake, home=home)
    assert r.returncode == 2 and "no finished adapter" in r.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    r = run_app("merge", outside, "x", home=home)
    assert r.returncode == 2 and "outside the workspace" in r.stderr


def test_probe_prompts_are_answered_at_each_checkpoint_and_at_the_end(trained):
    from core.evaluation import read_probes
    from tests.eval.conftest import PROBES
    probes = read_probes(trained["run_dir"])
    info = json.loads((trained["run_dir"] / "run_info.json").read_text())
    last = info["total_steps"]
    steps = sorted({p["step"] for p in probes})
    assert steps == [s for s in range(40, last, 40)] + [last], steps  # save_steps 40, then the end
    for step in steps:
        assert [p["prompt"] for p in probes if p["step"] == step] == PROBES
    # what a half-trained tiny model writes is not asserted (its words, even valid UTF-8, are luck): each
    # answer is recorded as text, non-empty, within the probe's token budget
    from core.engine.probes import MAX_NEW_TOKENS
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(trained["run_dir"] / "adapter")
    for p in probes:
        assert isinstance(p["answer"], str) and p["answer"].strip(), p
        assert len(tok(p["answer"], add_special_tokens=False).input_ids) <= MAX_NEW_TOKENS + 8, p


def test_the_training_log_a_user_reads_has_no_warnings_meant_for_library_developers(trained):
    """stdout.log is shown in the Train tab: PEFT's read of transformers' deprecated
    is_gradient_checkpointing put a FutureWarning and its source line in every run's log."""
    from core.rundir import STDOUT_LOG
    log = (trained["run_dir"] / STDOUT_LOG).read_text()
    assert "[danlu] training" in log  # the run's own lines are there
    assert [line for line in log.splitlines() if "FutureWarning" in line or "DeprecationWarning" in line] == []
