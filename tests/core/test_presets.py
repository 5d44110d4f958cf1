import json

import pytest

from core import presets
from core.config import load_config
from core.memory import Shape, estimate
from core.workspace import PRESETS_DIR


@pytest.mark.parametrize("path,kind", [(p, k) for k, sub in presets.KINDS.items()
                                       for p in sorted((PRESETS_DIR / sub).glob("*.yaml"))],
                         ids=lambda v: getattr(v, "name", v))
def test_every_preset_file_is_valid(path, kind):
    assert presets.validate_preset_file(path, kind) == []


def test_catalogue_sizes():
    models = presets.list_presets("model")
    families = {presets.get(m["name"]).data["family"] for m in models if m["name"] != "danlu-tiny"}
    assert len(families) >= 8, families
    assert {"quick", "balanced", "thorough"} <= {r["name"] for r in presets.list_presets("recipe")}
    templates = {t["name"] for t in presets.list_presets("template")}
    assert "demo" in templates and len(templates - {"demo"}) >= 4


def test_names_are_unique_across_kinds():
    names = [p.name for p in presets.all_presets()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", [p.name for p in presets.all_presets()])
def test_copy_preset_writes_a_valid_complete_config(name, tmp_path):
    out = presets.copy_preset(name, tmp_path / "c.yaml")
    cfg = load_config(out)
    assert cfg.dataset and cfg.base_model


def test_model_vram_matches_the_estimator():
    for m in presets.all_presets():
        if m.kind != "model" or m.name == "danlu-tiny":
            continue
        est = estimate(Shape.from_dict(m.data["shape"]), micro_batch_size=4, max_seq_length=1024, lora_rank=16)
        assert abs(est.total_gib - m.data["vram_qlora_gib"]) < 0.15, m.name
        assert "estimated" in m.data["vram_basis"] or "measured" in m.data["vram_basis"]


def test_presets_json_shape(home):
    from tests.conftest import run_app
    r = run_app("presets", "--json", home=home)
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)
    assert all(set(i) == {"name", "kind", "description"} for i in items)
    assert {i["kind"] for i in items} == {"model", "recipe", "template"}


def test_the_estimate_tracks_the_measured_8b_peaks_with_and_without_offload():
    """Measured on an H100/H200 (docs/performance.md), Llama-3.1-8B shape, seq 2048, Danlu defaults:
    mb 4 peak 10.8 GiB without activation offload, 9.1 with it; the estimate (without the CUDA
    context, which max_memory_allocated does not see) must follow within 1.5 GiB and drop by the
    ~1.9 GiB of layer inputs that offload moves to host memory."""
    llama8b = Shape(hidden=4096, layers=32, intermediate=14336, vocab=128256, heads=32, kv_heads=8)
    kept = estimate(llama8b, micro_batch_size=4, max_seq_length=2048)
    moved = estimate(llama8b, micro_batch_size=4, max_seq_length=2048, offload_activations=True)
    without_context = lambda e: e.total_gib - e.context_gib  # noqa: E731
    assert abs(without_context(kept) - 10.8) < 1.5 and abs(without_context(moved) - 9.1) < 1.5
    assert 1.7 < kept.total_gib - moved.total_gib < 2.0


def test_parsed_presets_are_reused_until_the_file_changes(tmp_path):
    """Presets are parsed once (the GUI reads them on every click), yet an edited file is read again and
    a caller changing what it got does not change what the next caller gets."""
    for sub in presets.KINDS.values():
        (tmp_path / sub).mkdir()
    path = tmp_path / "recipes" / "mine.yaml"
    path.write_text("name: mine\ndescription: first\nsettings: {learning_rate: 0.001}\n")
    first = presets.get("mine", root=tmp_path)
    first.data["settings"]["learning_rate"] = 5
    assert presets.get("mine", root=tmp_path).data["settings"]["learning_rate"] == 0.001
    path.write_text("name: mine\ndescription: second, longer\nsettings: {learning_rate: 0.002}\n")
    again = presets.get("mine", root=tmp_path)
    assert again.description == "second, longer" and again.data["settings"]["learning_rate"] == 0.002


def test_every_preset_carries_the_same_languages_with_every_text():
    """Presets carry their own translations: each translated text of each preset in every language any
    preset has (tests/webui/test_i18n.py checks those are the page's languages)."""
    langs = {lang for p in presets.all_presets() for lang in (p.data.get("translations") or {})}
    assert {"zh-CN", "ja", "ko", "es"} <= langs
    missing = [(p.name, lang, key) for p in presets.all_presets() for lang in langs for key in presets.TRANSLATED[p.kind]
               if p.data.get(key) and not ((p.data.get("translations") or {}).get(lang) or {}).get(key)]
    assert not missing, missing


def test_a_broken_translation_is_named(tmp_path):
    path = PRESETS_DIR / "recipes" / "quick.yaml"
    bad = tmp_path / "quick.yaml"
    bad.write_text(path.read_text().split("\ntranslations:")[0] + "\ntranslations:\n  ja:\n    use_case: x\n    description: ''\n")
    found = [str(p) for p in presets.validate_preset_file(bad, "recipe")]
    assert any("use_case in ja is not a text this preset has" in f for f in found), found
    assert any("description in ja is empty" in f for f in found), found


@pytest.mark.parametrize("value", ["'32k'", "0", "true", "-5"])
def test_a_model_preset_without_a_usable_context_window_is_named(tmp_path, value):
    """Each model preset says its context window (the settings check warns past it, core.risks)."""
    path = PRESETS_DIR / "models" / "qwen2.5-0.5b-instruct.yaml"
    bad = tmp_path / path.name
    bad.write_text(path.read_text().replace("context_window: 32768", f"context_window: {value}"))
    found = [str(p) for p in presets.validate_preset_file(bad, "model")]
    assert any("context_window must be a whole number" in f for f in found), found
    missing = tmp_path / "missing" / path.name
    missing.parent.mkdir()
    missing.write_text("\n".join(ln for ln in path.read_text().splitlines() if not ln.startswith("context_window")))
    assert any("missing key 'context_window'" in str(p) for p in presets.validate_preset_file(missing, "model"))


def test_a_key_written_twice_in_a_preset_is_named_with_its_file_and_line(tmp_path):
    """yaml.safe_load kept the last of two `lora_rank:` lines in a preset silently (a config file, read
    through core.yaml_text, already named the key and its line)."""
    from core.errors import InputError
    for sub in presets.KINDS.values():
        (tmp_path / sub).mkdir()
    path = tmp_path / "recipes" / "mine.yaml"
    path.write_text("name: mine\ndescription: mine\nsettings:\n  lora_rank: 8\n  lora_rank: 64\n")
    with pytest.raises(InputError) as e:
        presets.get("mine", root=tmp_path)
    (problem,) = e.value.problems
    assert problem.where == f"{path}:5" and problem.msg.code == "config.key_twice", str(e.value)
    assert problem.msg.params == {"key": "lora_rank", "first": 4} and "lora_rank" in problem.hint
    found = presets.validate_preset_file(path, "recipe", root=tmp_path)
    assert [(p.where, p.msg.code) for p in found] == [("recipes/mine.yaml:5", "config.key_twice")]
    path.write_text("name: mine\ndescription: mine\nsettings: {lora_rank: 8, lora_rank: 64}\n")
    assert [(p.where, p.msg.code) for p in presets.validate_preset_file(path, "recipe", root=tmp_path)] == \
           [("recipes/mine.yaml:3", "config.key_twice_line")]


def test_the_demo_names_its_question_in_english_in_every_language():
    """The Japanese card said the trained demo answers 「銅の炉にはどんな火を使う？」; typed into Chat so, the
    tiny model (trained on English rows only) answered bytes of nonsense (a walk in Japanese). Every language
    quotes the question as it must be typed, in English, as the sample data has it."""
    demo = presets.get("demo")
    question = "What fire does the copper furnace use?"
    rows = (presets.PRESETS_DIR / "templates" / demo.data["dataset"]).read_text(encoding="utf-8")
    assert f'"content": "{question}"' in rows
    for lang, texts in demo.data["translations"].items():
        assert question in texts["description"], lang
