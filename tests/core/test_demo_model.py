import hashlib
from pathlib import Path

from core.demo_model import build


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_demo_model_is_deterministic_and_loads(tmp_path, demo_model_dir):
    other = build(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json", "generation_config.json"):
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


# ---- built once, atomically, and healed (issue 15) ---------------------------------------------------
import os
import shutil
import signal
import subprocess
import sys

import pytest

from core import demo_model
from core.errors import NotFound
from core.workspace import Workspace
from tests.conftest import ENV_DEFAULTS, REPO

TOKENIZER_ONLY = ("chat_template.jinja", "tokenizer.json", "tokenizer_config.json")


def left_by_the_old_race(ws: Workspace, demo_model_dir: Path) -> Path:
    """What a first `train --nproc 2` used to leave: tokenizer files alone under the final name, and a
    half-built `.partial` folder beside it."""
    target = ws.models / demo_model.DEMO_NAME
    target.mkdir(parents=True)
    for name in TOKENIZER_ONLY:
        shutil.copy(demo_model_dir / name, target / name)
    partial = ws.models / f".{demo_model.DEMO_NAME}.partial"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    return target


def kill_builder_before_it_finishes(ws: Workspace) -> subprocess.CompletedProcess:
    """Run the real builder and SIGKILL it after every file is written but before the stamp that
    marks the build complete (the worst moment: all files look present)."""
    code = ("import os, signal, core.demo_model as m\n"
            "m._write_stamp = lambda folder: os.kill(os.getpid(), signal.SIGKILL)\n"
            f"m.ensure_demo_model(m.Workspace.open({str(ws.root)!r}))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, **ENV_DEFAULTS),
                          capture_output=True, text=True, timeout=300)


def test_a_half_built_folder_is_never_trusted_and_is_rebuilt(tmp_path, demo_model_dir):
    ws = Workspace.open(tmp_path / "ws")
    target = left_by_the_old_race(ws, demo_model_dir)
    assert not demo_model.is_complete(target)
    with pytest.raises(NotFound, match="python -m core.demo_model"):
        demo_model.require("builtin:danlu-tiny", ws)  # a rank only loads: it says what is missing
    assert demo_model.ensure_demo_model(ws) == target
    assert demo_model.is_complete(target) and demo_model.require("builtin:danlu-tiny", ws) == target
    assert digest(target / "model.safetensors") == digest(demo_model_dir / "model.safetensors")
    assert sorted(p.name for p in ws.models.iterdir() if p.name.startswith(".") and p.is_dir()) == []


def test_an_edited_or_foreign_folder_is_replaced(tmp_path, demo_model_dir):
    ws = Workspace.open(tmp_path / "ws")
    target = ws.models / demo_model.DEMO_NAME
    shutil.copytree(demo_model_dir, target)
    assert demo_model.is_complete(target)
    with open(target / "model.safetensors", "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xff")
    assert not demo_model.is_complete(target)
    demo_model.ensure_demo_model(ws)
    assert digest(target / "model.safetensors") == digest(demo_model_dir / "model.safetensors")
    shutil.rmtree(target)
    target.mkdir()
    (target / "notes.txt").write_text("someone else's folder")
    demo_model.ensure_demo_model(ws)
    assert demo_model.is_complete(target) and not (target / "notes.txt").exists()


def test_a_builder_killed_half_way_leaves_nothing_in_the_way(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    r = kill_builder_before_it_finishes(ws)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    target = ws.models / demo_model.DEMO_NAME
    assert not target.exists() and (ws.models / f".{demo_model.DEMO_NAME}.partial" / "model.safetensors").exists()
    assert demo_model.ensure_demo_model(ws) == target and demo_model.is_complete(target)


def test_no_build_inside_a_running_process_group(tmp_path):
    """transformers writes weights on rank 0 only: a build inside torchrun left tokenizer files alone."""
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rdzv'}", rank=0, world_size=1)
    try:
        with pytest.raises(RuntimeError, match="before the ranks start"):
            build(tmp_path / "inside")
    finally:
        dist.destroy_process_group()
    assert not (tmp_path / "inside").exists()


def test_a_build_from_before_the_recommended_sampling_is_rebuilt(tmp_path, demo_model_dir):
    """Builds of version 1 wrote no temperature into generation_config.json, so the Chat tab and `chat` kept
    sampling at 0.7, where the demo model answers mostly garbled text: such a build is rebuilt, with the
    same weights (a run trained on it still fits)."""
    import json
    ws = Workspace.open(tmp_path / "ws")
    target = ws.models / demo_model.DEMO_NAME
    shutil.copytree(demo_model_dir, target)
    cfg = {k: v for k, v in json.loads((target / "generation_config.json").read_text()).items()
           if k not in demo_model.SAMPLING}
    (target / "generation_config.json").write_text(json.dumps(cfg))
    files = {f.name: digest(f) for f in sorted(target.iterdir()) if f.name != demo_model.STAMP}
    (target / demo_model.STAMP).write_text(json.dumps({"name": demo_model.DEMO_NAME, "files": files}))  # version 1's
    assert not demo_model.is_complete(target)
    demo_model.ensure_demo_model(ws)
    assert demo_model.is_complete(target)
    assert digest(target / "generation_config.json") == digest(demo_model_dir / "generation_config.json")
    assert digest(target / "model.safetensors") == digest(demo_model_dir / "model.safetensors")
