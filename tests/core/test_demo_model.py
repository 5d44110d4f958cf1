import hashlib
from pathlib import Path

from core.demo_model import build


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_demo_model_is_deterministic_and_loads(tmp_path, demo_model_dir):
    other = build(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json"):
        assert digest(other / name) == digest(demo_model_dir / name)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert model.config.hidden_size == 64 and len(tok) == model.config.vocab_size
    assert not list(demo_model_dir.glob("*.bin"))


def test_demo_tokenizer_is_a_sentencepiece_bpe_that_the_fast_tokenizer_repeats(tmp_path, demo_model_dir):
    """llama.cpp's converter reads tokenizer.model; transformers reads tokenizer.json: they must agree."""
    import json

    import sentencepiece as spm
    from transformers import AutoTokenizer

    from core.demo_model import _corpus
    assert digest(build(tmp_path / "again") / "tokenizer.model") == digest(demo_model_dir / "tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=str(demo_model_dir / "tokenizer.model"))
    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    texts = _corpus() + ["  two  spaces\nand a line", "你好，世界 🔥", "What colour does the tin furnace burn?"]
    assert all(tok(t, add_special_tokens=False)["input_ids"] == sp.encode(t) for t in texts)
    assert all(tok.decode(sp.encode(t)) == t for t in texts)  # byte fallback: nothing is lost
    cfg = json.loads((demo_model_dir / "tokenizer_config.json").read_text())
    assert cfg["add_bos_token"] is False and cfg["add_eos_token"] is False and cfg["add_prefix_space"] is False
    ids = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, return_dict=False)
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces[:2] == ["<|im_start|>", "user"] and "assistant" in pieces  # role names are whole pieces
