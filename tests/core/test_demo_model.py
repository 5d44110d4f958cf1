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
