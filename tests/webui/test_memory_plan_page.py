"""The Hyperparameters tab's memory estimate shows the memory plan the recipe will choose, and the
sharding over several GPUs, in words, in English and in every page language (issue 20; issue 16: codes)."""
import json
import shutil

import pytest

from core.memory import Shape
from core.memory_plan import choose_sharding, plan_memory
from webui.context import Gui
from core.messages import Msg
from webui.i18n import CATALOGS, say
from webui.tabs import hyperparams_tab as hp

H200 = [dict(index=0, name="NVIDIA H200", memory_total_mib=143771, memory_free_mib=142000)]
ARGS = ("llama-3.1-8b-instruct", "4bit", 2048, 4, 16, True, True, True)


class Page:
    """The page's context (its workspace) with the GPUs a test chooses."""

    def __init__(self, ws, gpus):
        self.ws, self._gpus = ws, gpus

    def gpus(self):
        return self._gpus


@pytest.fixture
def ws(services):
    return Gui(services=services, train_module="tests.webui.fake_recipe").ws


def test_auto_shows_the_plan_and_why(ws):
    out = hp.memory_fit(Page(ws, H200), "en", [0], *ARGS, "auto", "auto")
    assert out.startswith("✓") and "Memory plan: every layer keeps its activations" in out and "fastest" in out
    zh = hp.memory_fit(Page(ws, H200), "zh-CN", [0], *ARGS, "auto", "auto")
    assert "显存方案：每一层都保留激活" in zh and "Memory plan" not in zh


def test_lowest_and_a_small_card(ws):
    lowest = hp.memory_fit(Page(ws, H200), "en", [0], *ARGS, "lowest", "auto")
    assert "lowest memory, as set" in lowest and "computer's memory" in lowest
    small = [dict(index=0, name="RTX 4090", memory_total_mib=24564, memory_free_mib=23000)]
    mixed = hp.memory_fit(Page(ws, small), "en", [0], *ARGS, "auto", "auto")
    assert "layers keep their activations and the other" in mixed
    assert "显存方案：最后" in hp.memory_fit(Page(ws, small), "zh-CN", [0], *ARGS, "auto", "auto")


def test_a_model_too_big_for_one_gpu_is_shown_split(ws):
    folder = ws.models / "llama-70b-shape"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(dict(
        hidden_size=8192, num_hidden_layers=80, intermediate_size=28672, vocab_size=128256, num_attention_heads=64,
        num_key_value_heads=8)))
    gpus = [dict(index=i, name="A100 40GB", memory_total_mib=40960, memory_free_mib=40000) for i in range(2)]
    out = hp.memory_fit(Page(ws, gpus), "en", [0, 1], str(folder), "4bit", 2048, 1, 16, True, True, True, "auto", "auto")
    assert out.startswith("✓") and "split over 2 GPUs (FSDP)" in out
    one = hp.memory_fit(Page(ws, gpus), "en", [0], str(folder), "4bit", 2048, 1, 16, True, True, True, "auto", "auto")
    assert one.startswith("⚠") and "FSDP" not in one
    assert "模型拆分" in hp.memory_fit(Page(ws, gpus), "zh-CN", [0, 1], str(folder), "4bit", 2048, 1, 16, True, True,
                                      True, "auto", "auto")


def _codes(m: Msg) -> set[str]:
    return {m.code} | {c for v in m.params.values() if isinstance(v, Msg) for c in _codes(v)}


def test_every_plan_and_sharding_sentence_is_translated():
    shapes = [Shape(4096, 32, 14336, 128256, 32, 8), Shape(8192, 80, 28672, 128256, 64, 8)]
    said = set()
    for shape in shapes:
        for mode in ("auto", "lowest"):
            for flags in ((True, True), (True, False), (False, False)):
                for free in (6.0, 10.0, 13.0, 24.0, 80.0, 139.0):
                    said.add(plan_memory(shape, mode=mode, free_gib=free, gradient_checkpointing=flags[0],
                                         offload_activations=flags[1], micro_batch_size=4, seq=2048).why)
        for mode in ("auto", "fsdp"):
            for gpus in (1, 2, 4):
                for free in (16.0, 24.0, 40.0, 80.0):
                    for unit in ("GPU", "CPU process"):
                        said.add(choose_sharding(shape, mode=mode, gpus=gpus, free_gib=free, unit=unit,
                                                 micro_batch_size=1, seq=2048).why)
    said.discard("")
    assert len(said) > 10 and all(isinstance(m, Msg) for m in said)
    codes = set().union(*map(_codes, said))
    for lang, catalog in CATALOGS.items():
        if lang == "en":  # the page's own English words; core's English is core/catalog_en.yaml
            continue
        assert not codes - set(catalog), lang
        assert not [m for m in said if say(m, lang) == str(m)], lang


def test_long_rows_show_the_mlp_in_pieces_when_the_layers_are_compiled(ws):
    """The page says what the recipe will do (speed.will_compile): pieces for 16k-token rows on a
    GPU with compile on, none with compile off."""
    long_rows = list(ARGS)
    long_rows[2] = 16384
    on = hp.memory_fit(Page(ws, H200), "en", [0], *long_rows, "lowest", "auto", "sft", True)
    off = hp.memory_fit(Page(ws, H200), "en", [0], *long_rows, "lowest", "auto", "sft", False)
    assert "in 4 pieces" in on and "pieces" not in off
    assert "4 段" in hp.memory_fit(Page(ws, H200), "zh-CN", [0], *long_rows, "lowest", "auto", "sft", True)


@pytest.mark.parametrize("seq, mb", [(10**12, 4), (16384, -3), ("1e999", 4), (2048, "4; rm -rf /"), (None, 4)])
def test_no_estimate_for_a_length_or_batch_the_run_would_refuse(ws, seq, mb):
    """A Load config or a direct call can send any value; the estimate is not made of numbers the
    settings check refuses (it said 'Fits: about -6437300.8 GiB' and '244140625 pieces')."""
    args = list(ARGS)
    args[2], args[3] = seq, mb
    out = hp.memory_fit(Page(ws, H200), "en", [0], *args, "lowest", "auto", "sft", True)
    assert out.startswith("ℹ") and "GiB" not in out and "pieces" not in out


def test_a_checkpoint_saved_in_4bit_is_counted_as_4bit_whatever_the_setting(ws, tmp_path):
    """A pre-quantized folder loads as saved (core.engine.common.load_base_model): with Quantization
    'none' the estimate counted bf16 weights and said nothing; now it counts the saved 4-bit weights
    and says why, in the page's language; the run's log and the CLI get the same warning."""
    from core.risks import config_warnings
    from core.presets import compose
    from core.config import TrainConfig
    shape = dict(hidden_size=4096, num_hidden_layers=32, intermediate_size=14336, vocab_size=128256,
                 num_attention_heads=32, num_key_value_heads=8)
    plain, saved = ws.models / "llama-8b-bf16", ws.models / "llama-8b-bnb-4bit"
    for folder, extra in ((plain, {}), (saved, dict(quantization_config=dict(
            quant_method="bitsandbytes", load_in_4bit=True, bnb_4bit_quant_type="nf4")))):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(dict(shape, **extra)))
    args = (2048, 1, 16, True, True, True, "lowest", "auto")

    def weights(text):
        return float(text.split("weights ")[1].split(" ")[0])
    as_none = hp.memory_fit(Page(ws, H200), "en", [0], str(saved), "none", *args)
    as_4bit = hp.memory_fit(Page(ws, H200), "en", [0], str(saved), "4bit", *args)
    bf16 = hp.memory_fit(Page(ws, H200), "en", [0], str(plain), "none", *args)
    assert "is saved already quantized (4bit)" in as_none and "(none) does not apply" in as_none
    assert "saved already quantized" not in as_4bit + bf16
    assert weights(as_none) == weights(as_4bit) < weights(bf16) / 2
    assert "量化后保存" in hp.memory_fit(Page(ws, H200), "zh-CN", [0], str(saved), "none", *args)
    outside = tmp_path / "outside-4bit"  # the same folder outside the allowed ones: refused, not read
    shutil.copytree(saved, outside)
    refused = hp.memory_fit(Page(ws, H200), "en", [0], str(outside), "none", *args)
    assert "outside the workspace" in refused and "quantized" not in refused
    cfg = TrainConfig(**dict(compose("demo"), base_model=str(saved), quantization="8bit"))
    assert [w.code for w in config_warnings(cfg)] == ["config.saved_quantization"]
    assert "(4bit)" in str(config_warnings(cfg)[0]) and "(8bit)" in str(config_warnings(cfg)[0])
    assert config_warnings(TrainConfig(**dict(compose("demo"), base_model=str(saved), quantization="4bit"))) == []


def test_rows_longer_than_the_models_context_window_are_warned_about(ws):
    """Maximum length past the model's context window (its preset's context_window, or a local
    folder's config.json) is allowed (a window can be extended on purpose) but said: in the page's
    estimate in its language, and by config_warnings (the CLI and the run's log). The length's own
    bound was 131,072, which refused models built for longer rows; it is 1,048,576 now."""
    from core.config import TrainConfig, validate
    from core.presets import compose
    from core.risks import config_warnings
    args = lambda seq: ("meta-llama/Llama-3.1-8B-Instruct", "4bit", seq, 1, 16, True, True, True, "lowest", "auto")
    over = hp.memory_fit(Page(ws, H200), "en", [0], *args(262144))
    assert "longer than the context window of meta-llama/Llama-3.1-8B-Instruct (131072 tokens)" in over
    assert "context window" not in hp.memory_fit(Page(ws, H200), "en", [0], *args(131072))
    assert "コンテキストウィンドウ（131072 トークン）" in hp.memory_fit(Page(ws, H200), "ja", [0], *args(262144))
    folder = ws.models / "short-window"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(dict(
        hidden_size=64, num_hidden_layers=2, intermediate_size=128, vocab_size=512, num_attention_heads=4,
        n_positions=1024)))  # GPT-2's name for it
    page = hp.memory_fit(Page(ws, H200), "es", [0], str(folder), "4bit", 2048, 1, 16, True, True, True, "lowest", "auto")
    assert "ventana de contexto" in page and "(1024 tokens)" in page
    demo = dict(compose("demo"))
    assert config_warnings(TrainConfig(**demo)) == []
    codes = [w.code for w in config_warnings(TrainConfig(**dict(demo, max_seq_length=8192)))]
    assert codes == ["config.beyond_context"]  # the demo model's window is 4096
    assert validate(TrainConfig(**dict(demo, max_seq_length=262144)), check_files=False) == []
    assert "at most 1048576" in " ".join(map(str, (p.msg for p in validate(TrainConfig(**dict(demo, max_seq_length=2_000_000)), check_files=False))))
