"""The Hyperparameters tab's Load config without a browser: what it says of a file it cannot use whole."""
import json

from core.messages import label
from core.presets import compose
from webui import fields
from webui.i18n import say, say_again, tr
from webui.tabs import hyperparams_tab as hp


def test_loading_a_broken_yaml_names_the_line(gui, uploads):
    bad = uploads / "bad.yaml"
    bad.write_text("lora_rank: 8\n  learning_rate: [\n")
    out = hp.load_settings(gui, str(bad), "en")
    assert "**bad.yaml:2**" in out[-1] and "YAML" in out[-1]
    assert str(uploads) not in out[-1], out[-1]  # the person's file name, not the server's folder of uploads
    typo = uploads / "typo.yaml"
    typo.write_text("lora_rnk: 8\n")
    assert "lora_rnk" in hp.load_settings(gui, str(typo), "en")[-1]


def test_a_misspelt_key_names_the_setting_it_meant(gui, uploads):
    """'lora_rnak: unknown setting; ignored' said nothing of lora_rank, whose value the file then lost
    (the CLI says "did you mean 'lora_rank'?")."""
    typo = uploads / "typo.yaml"
    typo.write_text("base_model: builtin:danlu-tiny\nlora_rnak: 8\nfoo_bar: 1\n")
    note = hp.load_settings(gui, str(typo), "zh-CN")[-1]
    assert "**lora_rnak**: 未知设置；已忽略 — 是不是想写 'lora_rank'？" in note, note
    assert "**foo_bar**: 未知设置；已忽略 — " in note  # nothing close: where to see every setting


def test_a_refused_save_says_so_under_its_button_in_every_language(gui):
    """Save config with a setting that cannot be used wrote no file and said nothing of it: the problems box
    above the buttons lists them all the time, and the last Load config's note stayed (a browser walk)."""
    values = dict(zip(fields.NAMES, fields.config_values(compose("demo"), fields.NAMES)), lora_rank=0)
    path, problems, note = hp.save_settings(gui, "zh-CN", *[values[n] for n in fields.NAMES])
    assert path is None and "LoRA" in problems
    assert note == "⚠ **未保存：请先改好上面列出的问题** (1)"
    kept = note.texts  # the page shows it again after a language switch
    assert say_again("en", json.dumps(kept, ensure_ascii=False)) == "⚠ **Not saved: fix the problems listed above first** (1)"


def test_a_setting_written_twice_says_which_line_to_delete_in_every_language(gui, uploads):
    """Load config refused a file with `lora_rank` on two lines naming the line, but with YAML's hint for a
    broken file ("check indentation..."): now the hint names the key and says to keep one line and delete
    the other, in the page's language (the CLI reads the file through the same core.config_io.read_yaml)."""
    twice = uploads / "twice.yaml"
    twice.write_text("lora_rank: 16\nseed: 1\nlora_rank: 8\n")
    said = {"en": 'keep one line per setting: leave the "lora_rank" line', "zh-CN": '每个设置只写一行：保留 "lora_rank"',
            "ja": '設定は 1 つにつき 1 行です。"lora_rank"', "ko": '설정 하나에 한 줄만 쓰세요. "lora_rank"',
            "es": 'deja una sola línea por ajuste: conserva la línea de "lora_rank"'}
    for lang, hint in said.items():
        note = hp.load_settings(gui, str(twice), lang)[-1]
        assert "**twice.yaml:3**" in note and hint in note and "`key: value`" not in note, note


def test_a_yaml_parsers_angle_brackets_are_shown_not_read_as_html(gui, uploads):
    """PyYAML's "expected <block end>, but found ':'" was taken for an HTML tag: the page cut the problem
    off at "(expected", with its fix (a browser walk in Japanese). `code` keeps its "<" as it is."""
    bad = uploads / "bad.yaml"
    bad.write_text("learning_rate: [not, a, number]\nepochs: -3\n: :\n")
    note = hp.load_settings(gui, str(bad), "ja")[-1]
    assert "<block" not in note and "&lt;block end>" in note, note
    assert hp.shown_as_text("a `<|im_end|>` b <c>") == "a `<|im_end|>` b &lt;c>"


def test_a_file_of_aliases_is_refused_in_words_not_walked_out(gui, uploads):
    """A stranger's Load config with `a1: &a1 [*a0]`, `a2: &a2 [*a1]`, ... 5,000 deep raised RecursionError
    (the handler crashed while quoting the value); a "billion laughs" file held the server's worker for good."""
    chain = uploads / "chain.yaml"
    chain.write_text("\n".join(["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 5000)])
                     + "\nprobe_prompts: *a4999\n")
    note = hp.load_settings(gui, str(chain), "es")[-1]
    assert "**chain.yaml**" in note and "sus alias (*nombre) equivalen a más de 100" in note, note


def test_a_whole_number_no_number_box_holds_is_said_not_sent(gui, uploads):
    """`max_seq_length: 99999999999999999999999` in a loaded file: the value went to its number box, Gradio
    could not send it ("Integer exceeds 64-bit range", HTTP 500) and the whole Load said nothing, its other
    problems too (the hostile walk's Load config route)."""
    import orjson
    huge = uploads / "huge.yaml"
    huge.write_text("max_seq_length: 99999999999999999999999\nseed: -9007199254740993\nlora_rank: 8\nzzz: 1\n")
    out = hp.load_settings(gui, str(huge), "es")
    assert "debe ser como mucho 1048576; ahora es 99999999999999999999999" in out[-1], out[-1]
    assert "debe ser al menos 0; ahora es -9007199254740993" in out[-1] and "**zzz**" in out[-1], out[-1]
    assert out[fields.NAMES.index("lora_rank")] == 8
    orjson.dumps([v for v in out[:-1] if not isinstance(v, dict)])  # what Gradio sends: every value fits


def test_a_refused_value_is_not_said_to_be_missing_from_the_file(gui, uploads):
    """learning_rate: '0,0002' in a loaded file was refused, then listed among the settings "the file does not
    name" (a walk in Korean); it is said to be back at its default because it could not be used."""
    f = uploads / "hostile.yaml"
    f.write_text("learning_rate: '0,0002'\nlora_rank: 8\n")
    current = fields.config_values({"learning_rate": 0.01, "num_epochs": 20}, fields.NAMES)
    said = str(hp.load_settings(gui, str(f), "ko", *current)[-1])
    lr, epochs = say(label("learning_rate"), "ko"), say(label("num_epochs"), "ko")
    assert tr("hp.load_refused", "ko", names=lr) in said
    [reset] = [line for line in said.splitlines() if line.startswith(tr("hp.load_reset", "ko", names="")[:12])]
    assert epochs in reset and lr not in reset
