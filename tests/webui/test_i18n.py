"""Every UI string exists in English and 简体中文, and the page can translate every one of them."""
import re
from pathlib import Path

import pytest

from core.config import FIELDS
from core.jobs import STATES

WEBUI = Path(__file__).resolve().parents[2] / "webui"
KEY_USE = re.compile(r"""\b(?:L|tr)\(\s*["']([a-z_]+\.[A-Za-z0-9_.-]+)["']""")


def used_keys() -> set[str]:
    keys = set()
    for path in WEBUI.rglob("*.py"):
        keys |= set(KEY_USE.findall(path.read_text(encoding="utf-8")))
    return keys


def test_the_scan_finds_the_keys_the_tabs_use():
    keys = used_keys()
    assert {"train.start", "tab.templates", "ds.check", "hp.show_command"} <= keys


def test_every_key_used_in_webui_has_both_languages():
    """Keys ending in '.' are prefixes completed in code ("jobs." + column): some key must start with them."""
    from webui.i18n import STRINGS
    missing = sorted(k for k in used_keys() if k not in STRINGS and not (k.endswith(".") and any(
        s.startswith(k) for s in STRINGS)))
    assert not missing, f"UI text keys without a translation entry: {missing}"


def test_every_string_is_non_empty_in_both_languages():
    from webui.i18n import STRINGS
    empty = [k for k, (en, zh) in STRINGS.items() if not en.strip() or not zh.strip()]
    assert not empty


def test_chinese_is_really_chinese_for_sentences():
    """A copy of the English in the Chinese slot is a missing translation (short names like 'LoRA alpha' aside)."""
    from webui.i18n import STRINGS
    cjk = re.compile(r"[\u4e00-\u9fff]")
    untranslated = [k for k, (en, zh) in STRINGS.items() if len(en.split()) > 2 and not cjk.search(zh)]
    assert not untranslated, untranslated


@pytest.mark.parametrize("name", list(FIELDS))
def test_every_setting_has_a_chinese_label_and_help(name):
    from webui.i18n_fields import FIELD_ZH
    assert name in FIELD_ZH, f"add {name} to webui/i18n_fields.py"
    label, help_text = FIELD_ZH[name]
    assert label.strip() and help_text.strip()


def test_every_job_state_has_words_in_both_languages():
    from webui.i18n import STRINGS
    for state in STATES:
        en, zh = STRINGS[f"state.{state}"]
        assert en and zh and en != zh


def test_unknown_keys_fail_loudly():
    from webui.i18n import L
    with pytest.raises(KeyError):
        L("no.such.key")


def test_tr_picks_the_language():
    from webui.i18n import tr
    assert tr("train.start", "en") == "Start training"
    assert tr("train.start", "zh-CN") == "开始训练"


def test_no_component_text_holds_two_markers(services):
    """The page translates only the first marker of a string; a second would show as raw JSON."""
    from webui.app import build_ui
    demo = build_ui(services)
    bad = []
    for block in demo.blocks.values():
        for attr in ("label", "info", "placeholder", "value"):
            v = getattr(block, attr, None)
            if isinstance(v, str) and v.count("__i18n__") > 1:
                bad.append((type(block).__name__, getattr(block, "elem_id", None), attr))
    assert not bad, bad


# ---- core's own sentences (webui/i18n_core.py) ---------------------------------------------------
def _settings_problems():
    """Problems of the settings check for configs built to trip each of its rules."""
    from core.config import ConfigError, TrainConfig, from_dict, validate
    bad = TrainConfig(base_model="", dataset="", lora_rank=0, learning_rate=float("nan"), lora_alpha=9999,
                      target_modules="q proj!", probe_prompts=["?"] * 11 + [""], column_map={"question": "q"},
                      max_seq_length=10**9, chat_template="nonsense")
    problems = validate(bad)
    problems += validate(TrainConfig(base_model="m\x00", dataset="https://example.com/d.jsonl", target_modules=""))
    problems += validate(TrainConfig(base_model="m", dataset="/no/such/file.jsonl"))
    problems += validate(TrainConfig(base_model="m", dataset="/"))
    for data in ({"lora_rnak": 8, "lora_rank": "eight"}, {"zzz": 1, "load_in_4bit": "maybe", "num_epochs": "x"}):
        with pytest.raises(ConfigError) as e:
            from_dict(data)
        problems += e.value.problems
    return problems


def test_every_sentence_of_the_settings_check_has_a_chinese_pattern():
    from webui.i18n_core import knows
    problems = _settings_problems()
    assert len({p.where for p in problems}) >= 12, [p.where for p in problems]  # the configs really trip the rules
    unknown = [s for p in problems for s in (p.message, p.hint) if s and not knows(s)]
    assert not unknown, unknown


def test_settings_problems_and_memory_advice_read_in_chinese():
    from webui.tabs import hyperparams_tab as hp
    text = hp.problems_markdown(_settings_problems(), "zh-CN")
    assert "至少为 1，现在是 0" in text and "没有选择数据集" in text and "是不是想写 'lora_rank'" in text
    assert not re.search(r"must be|no dataset|did you mean|use all-linear\b(?!，)", text), text
    assert f"**{hp.tr('field.lora_rank', 'zh-CN')}**" in text  # the setting's own label, translated
    assert "must be at least 1" in hp.problems_markdown(_settings_problems(), "en")
    from webui.i18n_core import core_text
    assert core_text("Fits: about 0.8 GiB needed of 22.2 GiB free.", "zh-CN") == "放得下：大约需要 0.8 GiB，可用 22.2 GiB。"
    advice = core_text("Will probably NOT fit: about 30.0 GiB needed but only 8.0 GiB free. Try: lower the batch size per "
                       "device or the maximum length, or turn on gradient checkpointing; use 4bit quantization or a "
                       "smaller model.", "zh-CN")
    assert advice.startswith("很可能放不下") and "梯度检查点；使用 4bit 量化" in advice


def test_every_kind_of_dataset_problem_has_a_chinese_title():
    from core.data.issues import TITLES
    from webui.i18n_core import TITLES as ZH
    assert set(ZH) == set(TITLES)
    from webui.tabs.dataset_tab import counts_markdown
    report = {"counts": {"bad_json": {"count": 2, "title": "malformed JSON"},
                         "duplicates": {"count": 1, "title": "duplicate rows", "warning": True}}}
    assert "2 × JSON 格式错误" in counts_markdown(report, "zh-CN") and "2 × malformed JSON" in counts_markdown(report, "en")
    from webui.tabs.dataset_tab import problem_frame
    report = {"problems": [{"line": 7, "message": "malformed JSON at column 5", "hint": "fix this line", "code": "bad_json"}],
              "warnings": [{"line": 9, "message": "the same row appears earlier", "code": "duplicates"}]}
    zh = problem_frame(report, "zh-CN").iloc[:, 2].tolist()
    assert zh == ["JSON 格式错误：malformed JSON at column 5", "(提醒) 重复的行：the same row appears earlier"], zh
    assert problem_frame(report, "en").iloc[0, 2] == "malformed JSON at column 5"


def test_what_cleaning_did_reads_in_chinese(services, uploads):
    """Each of the Dataset tab's cleaning buttons and Undo, on a file that gives each something to do."""
    import json
    from webui.context import Gui
    from webui.tabs import dataset_tab as dt
    gui = Gui(services=services)
    row = lambda q, a: json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
    lines = [row("What burns?", "Coal."), row("What burns?", "Coal."), row("  Hot? ", "Yes."), row("", "Empty."),
             '{"messages": [{"role": "user", "content": "half', row("Long? " * 300, "Yes.")]
    src = uploads / "mixed.jsonl"
    src.write_text("\n".join(lines) + "\n")
    ds_id, _ = dt.import_upload(gui, str(src))
    said = [dt.clean_now(gui, op, ds_id, "builtin:danlu-tiny", 64, "auto", "zh-CN")
            for op in ("drop-invalid", "dedupe", "drop-empty", "trim", "merge-turns")]
    said += list(dt.clean(gui, "filter-long", ds_id, "builtin:danlu-tiny", 64, "auto", "zh-CN"))[1:]
    said.append(dt.undo(gui, ds_id, "zh-CN"))
    said.append(dt.clean_now(gui, "dedupe", ds_id, "builtin:danlu-tiny", 64, "auto", "zh-CN"))  # nothing left to do
    english = [s for s in said if re.search(r"[a-z]{4,}", re.sub(r"`[^`]*`|JSON|token|messages", "", s))]
    assert not english, said
    assert said[0] == "✓ 删除了 2 行有问题的行（1 无法读取的行；1 文本为空；共 6 行）" and said[-2].startswith("↶ 已撤销：删除了 1 行超过 64 个 token")
    assert said[-1].endswith("；没有变化，未生成新版本")


def test_every_failure_reason_core_writes_has_words_in_both_languages():
    from webui.i18n import STRINGS
    core = Path(__file__).resolve().parents[2] / "core"
    codes = set()
    for path in core.rglob("*.py"):
        codes |= set(re.findall(r"""reason\s*[=:]\s*["']([a-z_]+)["']""", path.read_text(encoding="utf-8")))
    assert {"cuda_oom", "disk_full", "crashed"} <= codes  # the scan finds them
    assert not sorted(c for c in codes if f"reason.{c}" not in STRINGS)


def test_every_fixed_fix_of_the_dataset_checker_has_chinese():
    """The fixes core.data writes as plain sentences (the problems table's last column) are all in the
    table of webui/i18n_core.py; sentences built from values are matched by patterns or stay English."""
    import ast
    from core.data.check import DUP_HINT
    from core.data.readers import SAVE_UTF8
    from webui.i18n_core import knows
    core = Path(__file__).resolve().parents[2] / "core" / "data"
    fixes = {DUP_HINT, SAVE_UTF8}
    for path in core.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                    "report", "Issue", "Problem") and len(node.args) >= 3:
                arg = node.args[2]
                for value in (arg.body, arg.orelse) if isinstance(arg, ast.IfExp) else (arg,):
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        fixes.add(value.value)
    assert len(fixes) > 40  # the scan finds them
    # the cleaning operations' own parameters, given on the command line only (python app.py clean)
    cli_only = {"e.g. rows=3,17", "fix it, or use regex=false", "give the model (--model, e.g. builtin:danlu-tiny)",
                "give the text to find, e.g. find=colour", "move split to the end", "use all, system, user or assistant"}
    assert not sorted(f for f in fixes - cli_only if not knows(f))


def test_the_problems_table_reads_in_chinese(services, uploads):
    from webui.context import Gui
    from webui.tabs import dataset_tab as dt
    demo = (Path(__file__).resolve().parents[2] / "presets/templates/data/demo.jsonl").read_text().splitlines()
    src = uploads / "broken.jsonl"
    src.write_text("\n".join(demo[:3] + ['{"messages": [{"role": "user", "content": "half'] + [demo[0]]) + "\n")
    ds_id, _ = dt.import_upload(Gui(services=services), str(src))
    table = dt.check(Gui(services=services), ds_id, "auto", "", "zh-CN")[1]
    assert table.iloc[0, 2].startswith("JSON 格式错误：") and table.iloc[0, 3].startswith("修改这一行")
    assert any(fix.startswith("删除重复行") for fix in table.iloc[:, 3]), table.values.tolist()
