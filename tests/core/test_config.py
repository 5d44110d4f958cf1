import pytest
import yaml

from core.config import (FIELDS, TrainConfig, from_dict, load_config, parse_override, read_yaml, save_config, to_dict, to_yaml,
                         validate)
from core.errors import ConfigError

REQUIRED_FIELDS = ["base_model", "dataset", "dataset_format", "quantization", "lora_rank", "lora_alpha", "lora_dropout",
                   "target_modules", "learning_rate", "lr_scheduler", "warmup_ratio", "num_epochs", "max_steps",
                   "micro_batch_size", "gradient_accumulation_steps", "max_seq_length", "packing", "val_fraction",
                   "eval_steps", "save_steps", "logging_steps", "seed", "gradient_checkpointing"]


def test_required_fields_exist_with_metadata():
    for name in REQUIRED_FIELDS:
        assert name in FIELDS, name
    for name, f in FIELDS.items():
        meta = f.metadata
        assert meta["label"] and len(meta["help"]) > 20, f"{name} needs a label and real help text"
        assert meta["group"] in ("model", "data", "lora", "training", "logging", "speed")
        assert isinstance(meta["advanced"], bool)
    assert FIELDS["quantization"].metadata["choices"] == ("4bit", "8bit", "none")


def test_yaml_round_trip(tmp_path):
    data_file = tmp_path / "d.jsonl"
    data_file.write_text('{"text": "hi"}\n')
    cfg = TrainConfig(dataset=str(data_file), lora_rank=32, learning_rate=3e-5, column_map={"prompt": "q"},
                      target_modules="q_proj,v_proj", packing=False)
    path = save_config(cfg, tmp_path / "c.yaml", header="a header")
    again = load_config(path)
    assert again == cfg
    assert to_dict(again) == to_dict(cfg)
    assert yaml.safe_load(to_yaml(cfg))["lora_rank"] == 32


def test_every_problem_at_once_named_by_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("lora_rankk: 8\nlearning_rate: fast\nlora_rank: 0\ndataset: /nope/missing.jsonl\nquantization: 3bit\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "lora_rankk" in msg and "did you mean 'lora_rank'" in msg
    assert "learning_rate" in msg
    # unknown key and wrong type are reported together before values are checked
    assert len(e.value.problems) == 2
    p.write_text("lora_rank: 0\ndataset: /nope/missing.jsonl\nquantization: 3bit\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    fields = {pr.where for pr in e.value.problems}
    assert fields == {"lora_rank", "dataset", "quantization"}


def test_yaml_syntax_error_names_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("lora_rank: 8\nlearning_rate: [0.1\nseed: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"{p}:" in str(e.value)


def test_yaml_nested_past_pythons_limit_is_a_broken_file_in_words(tmp_path):
    """A config nesting "[[[[..." past Python's limit (the CLI and Load config read it): it stopped with
    "unexpected RecursionError"; now it is a file that is not valid YAML, said why."""
    for text in ("lora_rank: " + "[" * 100_000, "lora_rank: " + "[" * 5000 + "]" * 5000):
        p = tmp_path / "deep.yaml"
        p.write_text(text + "\n")
        with pytest.raises(ConfigError) as e:
            load_config(p)
        assert "not valid YAML (nested too deeply" in str(e.value)
    # a --set value is YAML too: kept as the text it is (the settings check then names it)
    assert parse_override("lora_rank=" + "[" * 100_000) == ("lora_rank", "[" * 100_000)


def test_coercion_and_overrides():
    assert parse_override("lora_rank=32") == ("lora_rank", 32)
    # YAML 1.1 reads 2e-4 as text; the field's type turns it into a number
    assert from_dict(dict([parse_override("learning_rate=2e-4")])).learning_rate == 2e-4
    assert parse_override("run_name=2024") == ("run_name", "2024")
    cfg = from_dict({"packing": "yes", "num_epochs": 2, "target_modules": ["q_proj", "v_proj"]})
    assert cfg.packing is True and cfg.num_epochs == 2.0 and cfg.target_modules == "q_proj,v_proj"
    with pytest.raises(ConfigError):
        from_dict({"packing": "maybe"})
    with pytest.raises(ConfigError):
        from_dict(["not", "a", "mapping"])


def test_validate_bounds_and_cross_field(tmp_path):
    cfg = TrainConfig(dataset="", lora_rank=4, lora_alpha=1000, val_fraction=0.9, learning_rate=float("nan"))
    where = {p.where for p in validate(cfg)}
    assert {"dataset", "lora_alpha", "val_fraction", "learning_rate"} <= where


def test_a_long_dataset_address_is_quoted_as_its_head_and_its_length():
    """It was cut at 80 characters with no mark: the person read a shorter address than theirs."""
    (problem,) = [p for p in validate(TrainConfig(dataset="https://" + "d" * 3000)) if p.where == "dataset"]
    assert problem.message.startswith("'https://ddd") and "…' (3,008 characters) is a web address" in problem.message


def test_relative_dataset_path_counts_from_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "sub" / "c.yaml").write_text("dataset: d.jsonl\n")
    assert load_config(tmp_path / "sub" / "c.yaml").dataset == str((tmp_path / "sub" / "d.jsonl").resolve())


HUGE = "1" + "0" * 5000  # past Python's limit of 4,300 digits for reading text as a whole number


@pytest.mark.parametrize("item,said", [
    ("lora_rank=" + HUGE, "lora_rank: LoRA rank must be at most 1024, got 1000000"),
    ("lora_rank=-" + HUGE, "lora_rank: LoRA rank must be at least 1, got -1000000"),
    ("learning_rate=" + "9" * 500, "learning_rate: Learning rate must be at most 1, got 9999999"),
    ("learning_rate=" + HUGE, "learning_rate: Learning rate must be at most 1, got 1000000"),
    ("learning_rate=-1e999", "learning_rate: Learning rate must be at least 1e-08, got -1e999"),
])
def test_a_number_too_large_to_hold_is_outside_the_settings_bounds(tmp_path, item, said):
    """`--set lora_rank=1000...` (5,000 zeros) stopped with "unexpected ValueError: Exceeds the limit (4300
    digits)" (YAML reads it as a whole number, Python refuses), `--set learning_rate=999...` (500 nines) with
    "unexpected OverflowError" (no float holds it): such a number is out of the setting's bounds, said so."""
    p = tmp_path / "c.yaml"
    p.write_text("lora_rank: 8\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, [item], check_files=False)
    assert said in str(e.value) and len(str(e.value)) < 400, str(e.value)[:600]


def test_a_config_file_with_a_huge_number_is_read_and_its_setting_named(tmp_path):
    """The same numbers in a config file (the CLI and the page's Load config read it): a text setting keeps
    the digits as its text; a number setting is out of its bounds."""
    p = tmp_path / "c.yaml"
    p.write_text(f"run_name: {HUGE}\nseed: {HUGE}\nnum_epochs: -{'9' * 500}\n")
    assert read_yaml(p)["run_name"] == HUGE
    with pytest.raises(ConfigError) as e:
        load_config(p, check_files=False)
    assert [pr.where for pr in e.value.problems] == ["seed", "num_epochs"]
    assert "Random seed must be at most 2147483647, got 1000" in str(e.value)
    assert "Epochs must be at least 0.01, got -999" in str(e.value) and len(str(e.value)) < 600


def test_text_settings_have_bounds_and_layer_names_look_like_layer_names():
    """A 100,000-character run name or list of layers passed the settings check: the job started, its name
    cut to 200 characters in the job table without a word, and PEFT looked for a layer of that name."""
    def said(**values):
        return {p.where: p.message for p in validate(TrainConfig(dataset="", **values)) if p.where != "dataset"}
    assert said(run_name="r" * 100, target_modules="q_proj, v_proj,model.layers.0.mlp.down_proj") == {}
    assert said(run_name="r" * 101) == {"run_name": "Run name is 101 characters long; it may have at most 100"}
    assert said(target_modules="a" * 100_000) == \
        {"target_modules": "Layers to adapt is 100,000 characters long; it may have at most 1,000"}
    for odd in ("q_proj,.v_proj", "q_proj..k", "q_proj;v_proj", "层"):
        assert said(target_modules=odd)["target_modules"].endswith("is not a comma-separated list of layer names"), odd


def test_a_config_that_is_not_utf8_names_the_line_and_column(tmp_path):
    """It said "byte 0" for the first byte, an offset no editor shows (found in a browser walk)."""
    p = tmp_path / "latin1.yaml"
    p.write_bytes("lora_rank: 8\nrun_name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as e:
        read_yaml(p)
    assert str(e.value.problems[0]) == f"{p}: is not UTF-8 text (line 2, column 14) — save it as UTF-8"


def test_a_value_over_its_bound_says_what_to_use_as_one_under_it_does(tmp_path):
    """"must be at least" came with "use N or more"; "must be at most" had no fix (found in a browser walk)."""
    p = tmp_path / "c.yaml"
    p.write_text("lora_rank: 2000\nlearning_rate: 5\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, check_files=False)
    said = {q.where: str(q) for q in e.value.problems}
    assert said["lora_rank"].endswith("LoRA rank must be at most 1024, got 2000 — use 1024 or less")
    assert said["learning_rate"].endswith("Learning rate must be at most 1, got 5 — use 1 or less")


def test_full_width_numbers_an_input_method_types_are_read():
    """A Korean Load config took lora_rank: "１２３" and refused lora_dropout: "０．１" ("write it like 0.0");
    the page's boxes sent to the HTTP API refused both (a walk in Korean). Full-width forms read as ASCII."""
    from core.config_io import as_number, coerce
    assert coerce("lora_dropout", "０．１") == (0.1, None)
    assert coerce("learning_rate", "２ｅ－４") == (2e-4, None)
    assert coerce("lora_rank", "１２３") == (123, None)
    assert as_number("１２３", int) == 123 and as_number("－０．５", float) == -0.5
    assert as_number("１２３４５６７８９０１２３４５６７８９０", int) == 12345678901234567890
    assert as_number("ａｂｃ", float) is None and coerce("lora_dropout", "ａｂｃ")[1] is not None
