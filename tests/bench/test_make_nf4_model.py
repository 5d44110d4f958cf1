"""bench/make_nf4_model.py (issue 20's 70B checkpoint, written layer by layer in the saved 4-bit
format) checked on CPU with the tiny shape: the files are what transformers itself saves for the same
weights loaded in 4-bit (bit for bit), transformers and Danlu's loader load them as saved, and Danlu
trains on them through the CLI as the bench runs it."""
import json
import os
import sys
import warnings

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import make_nf4_model as M  # noqa: E402

SEED = 3


def read_all(folder) -> dict:
    from safetensors.torch import load_file
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def bf16_weights(kw) -> dict:
    return {n: t for it in M.file_order(kw) for n, t in M.bf16_tensors(kw, it, SEED)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny shape in three shards (embed_tokens / the layers / lm_head), as the 70B's ~4 GB ones."""
    path = tmp_path_factory.mktemp("nf4") / "tiny-nf4"
    info = M.write_checkpoint("tiny", path, seed=SEED, device="cpu", limit=100_000)
    assert info["shards"] == 3
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """transformers' own way: the same bf16 weights saved, loaded with BitsAndBytesConfig, saved again."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig
    root = tmp_path_factory.mktemp("nf4-ref")
    kw = M.config_kwargs("tiny")
    model = AutoModelForCausalLM.from_config(LlamaConfig(**kw), dtype=torch.bfloat16)
    model.load_state_dict(bf16_weights(kw), strict=True)
    model.save_pretrained(root / "bf16")
    q = AutoModelForCausalLM.from_pretrained(root / "bf16", quantization_config=M.bnb_config(), dtype=torch.bfloat16,
                                             device_map={"": "cpu"})
    q.save_pretrained(root / "nf4")
    return root / "nf4"


def test_the_files_are_what_transformers_saves_for_the_same_weights(built, reference):
    ours, theirs = read_all(built), read_all(reference)
    assert set(ours) == set(theirs)
    assert "model.layers.2.mlp.down_proj.weight.quant_state.bitsandbytes__nf4" in ours
    for k, t in theirs.items():
        assert (ours[k].dtype, ours[k].shape) == (t.dtype, t.shape), k
        assert ours[k].equal(t), k  # quantized by the same call: bit for bit
    conf = json.loads((built / "config.json").read_text())
    assert conf["quantization_config"] == json.loads((reference / "config.json").read_text())["quantization_config"]
    index = json.loads((built / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(ours) and len(set(index["weight_map"].values())) == 3


def test_transformers_loads_it_and_each_layer_dequantizes_to_the_drawn_weights(built):
    import torch
    from bitsandbytes.functional import dequantize_4bit
    from bitsandbytes.nn import Linear4bit
    from transformers import AutoModelForCausalLM
    model, info = AutoModelForCausalLM.from_pretrained(built, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    drawn = bf16_weights(M.config_kwargs("tiny"))
    linears = {n: m for n, m in model.named_modules() if isinstance(m, Linear4bit)}
    assert len(linears) == 3 * 7
    for name, m in linears.items():
        w = drawn[name + ".weight"].float()
        err = (dequantize_4bit(m.weight.data, m.weight.quant_state).float() - w).abs()
        # nf4's widest step is 0.30 of a block's largest magnitude: no value is off by more than half
        # of it (plus the 8-bit error of the double-quantized scale)
        block_max = w.reshape(-1, M.BLOCKSIZE).abs().amax(1, keepdim=True)
        assert (err.reshape(-1, M.BLOCKSIZE) <= 0.16 * block_max).all(), name
        assert err.pow(2).mean().sqrt() < 0.15 * w.pow(2).mean().sqrt(), name
    assert model.model.embed_tokens.weight.equal(drawn["model.embed_tokens.weight"])
    assert model.lm_head.weight.equal(drawn["lm_head.weight"])
    assert model.model.norm.weight.equal(torch.ones_like(model.model.norm.weight))


def _danlu_load(path, **kw):
    from core.engine.common import Dist, load_base_model
    from tests.jobs.util import demo_config
    import torch
    d = Dist(0, 1, 0, torch.device("cpu"), None)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        model = load_base_model(str(path), demo_config(base_model=str(path)), d, True, **kw)
    return model, [str(w.message) for w in seen]


def test_danlus_loader_loads_it_as_saved_with_its_own_compute_dtype(built):
    import torch
    from bitsandbytes.nn import Linear4bit
    model, said = _danlu_load(built)
    # transformers would ignore Danlu's BitsAndBytesConfig beside the saved one, with a warning
    assert not [s for s in said if "quantization_config" in s], said
    saved = read_all(built)
    linears = {n: m for n, m in model.named_modules() if isinstance(m, Linear4bit)}
    assert len(linears) == 21
    for name, m in linears.items():
        assert m.weight.data.equal(saved[name + ".weight"]), name  # not quantized again
        assert m.compute_dtype == torch.float32  # Danlu's precision on CPU (auto: fp32), not the file's bf16


def test_fsdp_needs_the_packed_bytes_stored_as_the_compute_dtype(built, tmp_path):
    import torch
    from core.errors import DanluError
    with pytest.raises(DanluError) as e:
        _danlu_load(built, sharded=True, dtype=torch.bfloat16)
    assert e.value.msg.code == "fail.saved_4bit_storage" and e.value.msg.params["storage"] == "uint8"
    path = tmp_path / "tiny-nf4-bf16"
    M.write_checkpoint("tiny", path, seed=SEED, device="cpu", storage="bfloat16")
    assert json.loads((path / "config.json").read_text())["quantization_config"]["bnb_4bit_quant_storage"] == "bfloat16"
    ours, plain = read_all(path), read_all(built)
    w = "model.layers.0.mlp.up_proj.weight"
    assert ours[w].dtype == torch.bfloat16 and ours[w].view(torch.uint8).flatten().equal(plain[w].flatten())
    model, _ = _danlu_load(path, sharded=True, dtype=torch.bfloat16)
    assert {p.dtype for p in model.model.layers[0].parameters()} == {torch.bfloat16}  # one dtype per FSDP unit


@pytest.mark.slow
def test_danlu_trains_on_it_through_the_cli(built, tmp_path):
    import math
    import subprocess
    out = tmp_path / "runs.jsonl"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "danlu_run.py"), "--model", str(built), "--mb", "1",
                        "--seq", "32", "--warmup", "1", "--steps", "1", "--home", str(tmp_path / "home"),
                        "--out", str(out), "--timeout", "240"], cwd=str(REPO), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rec = json.loads(out.read_text().splitlines()[-1])
    assert rec["status"] == "ok", rec.get("error")
    assert len(rec["losses"]) == 2 and all(math.isfinite(x) for x in rec["losses"]), rec["losses"]
    logs = [p.read_text() for p in (tmp_path / "home").rglob("stdout.log")]
    assert any("is already quantized (bitsandbytes 4-bit nf4)" in log for log in logs)
    _export_computes_what_the_trained_model_computed(built, tmp_path / "home")


def _export_computes_what_the_trained_model_computed(built, home):
    """Export on a base saved in 4-bit: the base is dequantized, then the adapter folded in (it failed
    with transformers' NotImplementedError while writing a model still in 4-bit). The exported bf16
    model's logits are the trained model's (4-bit base + adapter), not the base's."""
    import subprocess

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from safetensors.torch import load_file, save_file
    run = next((home / "runs").glob("*/adapter")).parent
    weights = run / "adapter" / "adapter_model.safetensors"  # two steps move it little: made to matter
    save_file({k: v * 64 if "lora_B" in k else v for k, v in load_file(str(weights)).items()}, str(weights))
    r = subprocess.run([sys.executable, str(REPO / "app.py"), "merge", str(run), "nf4-export", "--format", "safetensors"],
                       cwd=str(REPO), env=dict(os.environ, DANLU_HOME=str(home)), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = home / "exports" / "nf4-export"
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    ids = torch.tensor([[5, 17, 42, 99, 7, 64, 3, 12]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(str(built), dtype=torch.float32, device_map={"": "cpu"})
        plain = base(ids).logits
        trained = PeftModel.from_pretrained(base, str(run / "adapter"))(ids).logits
        exported = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)(ids).logits
    effect, error = (trained - plain).abs().max().item(), (exported - trained).abs().max().item()
    assert error < effect / 20, (error, effect)  # bf16 rounding of the folded weights, nothing more
    # Chat (CPU) loads it as saved, 4-bit, with the adapter beside it: it merged the adapter into the
    # 4-bit weights, rounding it, and said 'merged into the full-precision weights'
    from core.engine.inference import load_for_chat
    model, _tok, info = load_for_chat(str(built), str(run / "adapter"), device="cpu")
    assert info.quantization == "4bit" and any("saved quantized" in n for n in info.notes), info
    assert not any("merged" in n for n in info.notes), info.notes
    with torch.no_grad():
        chatted = model(ids).logits.float()
    assert (chatted - trained).abs().max().item() < effect / 20
