"""bench/dpo_bench.py's CPU-runnable parts: arguments, the model view and pairs (every row exactly
--seq tokens for Danlu's encode_pair and for TRL's own tokenisation), the Danlu configs, the table,
and a tiny dry run of the whole harness with the demo model (no quantisation on a CPU)."""
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, load_script

sys.path.insert(0, str(REPO / "bench"))


@pytest.fixture(scope="module")
def db():
    return load_script("bench/dpo_bench.py")


def test_arguments(db):
    a = db.parse_args(["--model", "/m"])
    assert a.mbs == [1, 4] and a.seq == 2048 and a.stack_list == ["danlu", "trl", "danlu-lowest"] and a.quant == "4bit"
    assert db.parse_args(["--model", "/m", "--mb", "2", "--stacks", "trl"]).mbs == [2]
    with pytest.raises(SystemExit):
        db.parse_args(["--model", "/m", "--stacks", "unsloth"])


def test_rows_are_exactly_seq_tokens_for_danlu_and_trl(db, demo_model_dir, tmp_path):
    from transformers import AutoTokenizer
    from trl.data_utils import _tokenize  # what DPOTrainer._prepare_dataset calls
    info = db.make_view(demo_model_dir, tmp_path / "view")
    assert info["vocab"] == 512 and (tmp_path / "view" / "config.json").is_symlink()
    pairs = db.make_pairs(3, seq=40, prompt=9, vocab=info["vocab"])
    assert db.check_tokens(tmp_path / "view", pairs, 40, 9) == 80  # Danlu: 40 tokens a row, 9 of them prompt
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "view"), local_files_only=True)
    for ex in pairs:
        assert ex["chosen"] != ex["rejected"]
        prompt = _tokenize(tok, ex["prompt"], add_generation_prompt=True)["input_ids"]
        for side in ("chosen", "rejected"):
            full = _tokenize(tok, ex["prompt"] + ex[side])["input_ids"]
            assert len(prompt) == 9 and len(full) == 40 and full[:9] == prompt and full[-1] == tok.eos_token_id
    with pytest.raises(SystemExit):
        db.make_pairs(1, seq=10, prompt=9, vocab=100)


def test_danlu_configs_are_valid_train_configs(db, tmp_path):
    import yaml
    from core.config_io import load_config
    data = tmp_path / "pairs.jsonl"
    data.write_text("{}\n")
    args = db.parse_args(["--model", "/m", "--danlu-set", "compile=false"])
    for stack in ("danlu", "danlu-lowest"):
        cfg = db.danlu_config(args, tmp_path, data, 4, f"x-{stack}", stack)
        assert cfg["method"] == "dpo" and cfg["micro_batch_size"] == 4 and cfg["compile"] is False
        path = tmp_path / f"{stack}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        loaded = load_config(path, check_files=False)
        assert loaded.memory_plan == ("lowest" if stack == "danlu-lowest" else "auto")
        assert loaded.dataset_format == "preference" and loaded.pref_beta == 0.1


def test_table_compares_with_trl_at_the_same_micro_batch(db):
    rows = [dict(stack="danlu", micro_batch=1, pair_tokens=100, tokens_per_s=300.0, peak_gib=5.0, status="ok"),
            dict(stack="trl", micro_batch=1, pair_tokens=100, tokens_per_s=200.0, peak_gib=6.0, status="ok"),
            dict(stack="danlu", micro_batch=4, pair_tokens=100, status="timeout")]
    lines = db.table(rows).splitlines()
    assert "| danlu | 1 | 3.00 | 300.0 | 1.50x | 5.0 | ok |" in lines
    assert "| trl | 1 | 2.00 | 200.0 |  | 6.0 | ok |" in lines and lines[-1].endswith("| timeout |")


@pytest.mark.slow
def test_dry_run_on_cpu(tmp_path):
    """The harness end to end on the demo model. The Danlu stack needs the recipe's dpo method
    (core/engine/methods.py); without it only TRL's side runs."""
    stacks = "danlu,trl" if (REPO / "core" / "engine" / "methods.py").exists() else "trl"
    out = tmp_path / "dpo.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "dpo_bench.py"), "--model", "builtin:danlu-tiny",
                        "--seq", "32", "--prompt", "8", "--mb", "1", "--warmup", "1", "--steps", "1", "--quant", "none",
                        "--stacks", stacks, "--work", str(tmp_path / "work"), "--out", str(out)],
                       cwd=str(REPO), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [x["stack"] for x in res["rows"]] == stacks.split(",")
    for row in res["rows"]:
        assert row["status"] == "ok" and row["tokens_per_s"] > 0 and row["timed_tokens"] == 64  # 1 step x 1 pair x 2 x 32
    assert "| trl | 1 |" in r.stdout


def test_the_timed_span_uses_the_millisecond_clock_and_never_divides_by_zero(db, tmp_path):
    """CI once saw two demo-model steps inside one 10 ms tick of "time": the rate came from a zero span."""
    from core.rundir import RunDir, append_jsonl
    run = tmp_path / "run"
    run.mkdir()
    for step, wall in ((1, 100.000), (2, 100.004)):
        append_jsonl(RunDir(run).metrics, dict(step=step, loss=0.69, tokens=64, time=0.5, wall=wall))
    row = db.danlu_measure(run, 1, 2)
    assert row["status"] == "ok" and row["seconds"] == 0.004 and row["tokens_per_s"] == 16000.0
    same = tmp_path / "same"
    same.mkdir()
    for step in (1, 2):
        append_jsonl(RunDir(same).metrics, dict(step=step, loss=0.69, tokens=64, time=0.5, wall=100.0))
    row = db.danlu_measure(same, 1, 2)
    assert row["status"] == "error" and "tokens_per_s" not in row
