"""The page's languages are complete: every key of the page and every code of core's catalog has its
words in every language (webui/locales/<lang>.yaml), with the same {placeholders}; what core says
reaches the page as codes, rendered in the page's language."""
import re
import string
from pathlib import Path

import pytest

from core.catalog_en import EN
from core.config import FIELDS
from core.jobs import STATES
from core.messages import Msg, _fill, placeholders

WEBUI = Path(__file__).resolve().parents[2] / "webui"
KEY_USE = re.compile(r"""\b(?:L|tr)\(\s*["']([a-z_]+\.[A-Za-z0-9_.-]+)["']""")
OTHERS = ["zh-CN", "ja", "ko", "es"]  # every language of the page but English
CJK = {"zh-CN": re.compile(r"[\u4e00-\u9fff]"), "ja": re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]"),
       "ko": re.compile(r"[\uac00-\ud7af]")}


def used_keys() -> set[str]:
    keys = set()
    for path in WEBUI.rglob("*.py"):
        keys |= set(KEY_USE.findall(path.read_text(encoding="utf-8")))
    return keys


def catalogs():
    from webui.i18n import CATALOGS
    return CATALOGS


def test_the_page_offers_every_language():
    from webui.i18n import CODES
    assert CODES == ["en", *OTHERS]


def test_the_scan_finds_the_keys_the_tabs_use():
    keys = used_keys()
    assert {"train.start", "tab.templates", "ds.check", "hp.show_command"} <= keys


def test_every_key_used_in_webui_exists():
    """Keys ending in '.' are prefixes completed in code ("jobs." + column): some key must start with them."""
    from webui.i18n import STRINGS
    missing = sorted(k for k in used_keys() if k not in STRINGS and not (k.endswith(".") and any(
        s.startswith(k) for s in STRINGS)))
    assert not missing, f"UI text keys without an entry in webui/locales/en.yaml: {missing}"


def test_page_keys_and_core_codes_never_share_a_name():
    from webui.i18n import STRINGS
    assert not set(STRINGS) & set(EN)


@pytest.mark.parametrize("lang", OTHERS)
def test_every_language_has_every_key_and_every_code(lang):
    from webui.i18n import STRINGS
    have = catalogs()[lang]
    missing = [k for k in [*STRINGS, *EN] if not (isinstance(have.get(k), str) and have[k].strip())]
    assert not missing, f"{len(missing)} keys without words in {lang}: {missing[:20]}"
    stale = [k for k in have if k not in STRINGS and k not in EN]
    assert not stale, f"keys in webui/locales/{lang}.yaml that nothing uses: {stale}"


@pytest.mark.parametrize("lang", OTHERS)
def test_translations_keep_the_placeholders(lang):
    from webui.i18n import STRINGS
    english = {**STRINGS, **EN}
    have = catalogs()[lang]
    differ = [k for k, en in english.items() if placeholders(en) != placeholders(have.get(k, en))]
    assert not differ, [(k, english[k], have[k]) for k in differ[:10]]


def number_formats(template: str) -> dict[str, set[str]]:
    """Each placeholder's format specs ("," groups thousands, ".1%" a share); a plural's choice of words
    ({n|row|rows}) formats nothing and a join ({names|, }) has none."""
    plain = re.sub(r"\{(\w+)\|[^|{}]*\}", r"{\1}", re.sub(r"\{\w+\|[^|{}]*\|[^|{}]*\}", "", template))
    out: dict[str, set[str]] = {}
    for _, name, spec, _ in string.Formatter().parse(plain):
        if name:
            out.setdefault(name, set()).add(spec or "")
    return out


@pytest.mark.parametrize("lang", OTHERS)
def test_translations_format_numbers_as_the_english_does(lang):
    """Español wrote 1234 where the others write 1,234 ({n} for {n:,}) in 50 sentences."""
    from webui.i18n import STRINGS
    english = {**STRINGS, **EN}
    have = catalogs()[lang]
    differ = [k for k, en in english.items() if number_formats(en) != number_formats(have.get(k, en))]
    assert not differ, [(k, english[k], have[k]) for k in differ[:10]]


def test_numbers_on_the_spanish_page_group_by_a_space_and_the_others_by_a_comma():
    """{n:,} wrote 12,345 on the Spanish page, which a reader in Spain (3,5 kg) may take for twelve and a
    bit: Spanish groups by a no-break space and leaves a 4-digit number whole (RAE), the others keep 12,345;
    core's messages (say) and the page's own words (tr) alike."""
    from webui.i18n import number, say, tr
    m = Msg("clean.dedupe", n=12345, total=1234567)
    assert say(m, "es") == "se eliminaron 12\u00a0345 filas duplicadas (de 1\u00a0234\u00a0567)", say(m, "es")
    assert say(m, "en") == str(m) == "removed 12,345 duplicate rows (of 1,234,567)"
    assert say(Msg("clean.dedupe", n=1234, total=1234), "es") == "se eliminaron 1234 filas duplicadas (de 1234)"
    assert tr("rv.matched", "es", m=1234, n=12345) == "**1234** de 12\u00a0345 filas coinciden"
    assert tr("rv.matched", "en", m=1234, n=12345) == "**1,234** of 12,345 rows match"
    assert [number(n, "es-ES") for n in (999, 1234, 12345, 1234567)] == ["999", "1234", "12\u00a0345", "1\u00a0234\u00a0567"]
    for lang in ("en", "zh-CN", "ja", "ko"):
        assert number(1234567, lang) == "1,234,567" and "12,345" in say(m, lang), lang



def test_the_export_plan_counts_a_small_models_parameters_whole():
    """The demo model's plan read "0.000139 billion parameters"; a model under a billion is counted whole."""
    from webui.i18n import tr
    from webui.tabs.export_tab import params_text
    assert params_text(139_264, "en") == "139,264 parameters" and params_text(139_264, "es") == "139\u00a0264 parámetros"
    assert params_text(8_030_261_248, "en") == "8.03 billion parameters"
    assert params_text(None, "ja") == tr("ex.plan.unknown", "ja")

def test_the_page_fills_its_words_through_tr():
    """A handler writing tr(key, lang).format(...) or an f-string's {n:,} would group numbers in Python's
    way on every page: tr(key, lang, **params) and number(n, lang) write them in the page's language."""
    scan = re.compile(r"\btr\([^()]*\)\.format\(|\{[^{}]*:,[^{}]*\}")
    assert scan.search('tr("rv.saved", code).format(row=row)') and scan.search('f"{kind} ({n:,})"')
    found = [f"{path.name}:{i}" for path in WEBUI.rglob("*.py") if path.name != "i18n.py"  # it says how
             for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if scan.search(line)]
    assert not found, found


@pytest.mark.parametrize("lang", ["en", *OTHERS])
def test_the_pages_own_words_fill_with_str_format(lang):
    """The page fills its own words with str.format: core's {n|one|many} plurals and {list|sep} joins
    are for core's codes only, so a page key using one would raise in a handler (an Error toast)."""
    from webui.i18n import STRINGS
    have = catalogs()[lang]
    broken = []
    for key in STRINGS:
        text = have.get(key, "")
        try:
            text.format(**{name: 1 for name in placeholders(text)})
        except (KeyError, ValueError, IndexError) as e:
            broken.append((key, text, repr(e)))
    assert not broken, broken[:10]


def _sample_params(template: str) -> dict:
    """A value for each placeholder of an English template: numbers where it counts or formats them,
    lists where it joins them."""
    out = {}
    for _, name, spec, _ in string.Formatter().parse(re.sub(r"\{(\w+)\|[^{}]*\}", r"{\1}", template)):
        if name:
            out[name] = 2 if spec else "x"
    out.update({g: 2 for g in re.findall(r"\{(\w+)\|[^|{}]*\|[^|{}]*\}", template)})
    out.update({g: ["a", "b"] for g in re.findall(r"\{(\w+)\|[^|{}]*\}(?!\|)", template) if
                not re.search(r"\{" + g + r"\|[^|{}]*\|", template)})
    return out


@pytest.mark.parametrize("lang", OTHERS)
def test_every_core_message_renders_in_every_language(lang):
    """Each translation fills with the parameters its English takes (no broken braces or specs)."""
    have = catalogs()[lang]
    broken = []
    for code, en in EN.items():
        params = _sample_params(en)
        _fill(en, params, EN.get)  # the sample fits the English
        try:
            _fill(have[code], params, have.get)
        except (KeyError, IndexError, ValueError, TypeError) as e:
            broken.append((code, have[code], repr(e)))
    assert not broken, broken[:10]


@pytest.mark.parametrize("lang", OTHERS)
def test_other_languages_are_really_translated(lang):
    """A copy of the English is a missing translation (short technical names like 'LoRA alpha' aside)."""
    from webui.i18n import STRINGS
    english = {**STRINGS, **EN}
    have = catalogs()[lang]
    prose = [k for k, en in english.items() if len(re.sub(r"\{[^}]*\}", "", en).split()) > 2]
    if lang in CJK:
        same = [k for k in prose if not CJK[lang].search(have[k])]
    else:
        same = [k for k in prose if have[k] == english[k]]
    assert not same, [(k, have[k]) for k in same[:20]]


@pytest.mark.parametrize("lang", OTHERS)
def test_every_setting_and_job_state_has_words(lang):
    have = catalogs()[lang]
    for name in FIELDS:
        assert have[f"field.{name}"].strip() and have[f"help.{name}"].strip(), name
    for state in STATES:
        assert have[f"state.{state}"].strip() and have[f"state.{state}"] != catalogs()["en"][f"state.{state}"]


@pytest.mark.parametrize("lang", OTHERS)
def test_every_preset_text_is_translated(lang):
    """Presets carry their own translations (presets/*.yaml, `translations:`), one per page language."""
    from core.presets import TRANSLATED, all_presets
    missing = [(p.name, key) for p in all_presets() for key in TRANSLATED[p.kind]
               if p.data.get(key) and not ((p.data.get("translations") or {}).get(lang) or {}).get(key)]
    assert not missing, missing


def test_every_failure_reason_core_writes_has_words_in_every_language():
    core = Path(__file__).resolve().parents[2] / "core"
    codes = set()
    for path in core.rglob("*.py"):
        codes |= set(re.findall(r"""reason\s*[=:]\s*["']([a-z_]+)["']""", path.read_text(encoding="utf-8")))
    from core.failures import REASONS  # the table both a rank and the supervisor name failures from
    codes |= set(REASONS)
    assert {"cuda_oom", "disk_full", "crashed"} <= codes  # the scan finds them
    for lang in ["en", *OTHERS]:
        assert not sorted(c for c in codes if f"reason.{c}" not in catalogs()[lang]), lang


def test_unknown_keys_fail_loudly():
    from webui.i18n import L
    with pytest.raises(KeyError):
        L("no.such.key")


def test_tr_picks_the_language():
    from webui.i18n import lang_code, tr
    assert tr("train.start", "en") == "Start training"
    assert tr("train.start", "zh-CN") == "开始训练"
    assert lang_code("zh-cn") == "zh-CN" and lang_code("es-ES") == "es" and lang_code("fr") == "en"


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


# ---- what core says, on the page ---------------------------------------------------------------
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


def test_settings_problems_and_memory_advice_read_in_chinese():
    from webui.tabs import hyperparams_tab as hp
    from webui.i18n import say
    problems = _settings_problems()
    assert len({p.where for p in problems}) >= 12, [p.where for p in problems]  # the configs really trip the rules
    text = hp.problems_markdown(problems, "zh-CN")
    assert "至少为 1，现在是 0" in text and "没有选择数据集" in text and "是不是想写 'lora_rank'" in text
    assert "LoRA 秩必须是整数，现在是 'eight'" in text  # the kind of value too: it was English before
    assert not re.search(r"must be|no dataset|did you mean|use all-linear\b(?!，)|a whole number", text), text
    assert f"**{hp.tr('field.lora_rank', 'zh-CN')}**" in text  # the setting's own label, translated
    assert "must be at least 1" in hp.problems_markdown(problems, "en")
    from core.memory import Estimate, fit_advice
    assert say(fit_advice(Estimate(0.1, 0.1, 0.1, 0.1, 0.4), 22.2), "zh-CN") == "放得下：大约需要 0.8 GiB，可用 22.2 GiB。"
    advice = say(fit_advice(Estimate(10.0, 1.0, 15.0, 3.0, 1.0), 8.0), "zh-CN")
    assert advice.startswith("很可能放不下") and "梯度检查点；使用 4bit 量化" in advice


@pytest.mark.parametrize("lang", OTHERS)
def test_settings_problems_have_no_english_left(lang):
    """Every sentence of the settings check in each language: only tokens (setting keys, values) stay."""
    from webui.tabs import hyperparams_tab as hp
    text = hp.problems_markdown(_settings_problems(), lang)
    words = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"|\*\*[^*]*\*\*|https?://\S+|\S*[/_.:=]\S*|\b[A-Z][A-Za-z0-9-]+\b", " ", text)
    english = {"must", "chosen", "least", "most", "got", "setting", "layers", "mean", "file", "number", "whole"}
    assert not english & set(re.findall(r"[a-z]+", words)), text


def test_every_kind_of_dataset_problem_has_a_title_in_every_language():
    from core.data.issues import KINDS
    from webui.tabs.dataset_tab import counts_markdown, problem_frame
    for lang in OTHERS:
        assert all(catalogs()[lang][f"kind.{k}"] != EN[f"kind.{k}"] or k == "utf16" for k in KINDS), lang
    report = {"counts": {"bad_json": {"count": 2, "title": "malformed JSON"},
                         "duplicates": {"count": 1, "title": "duplicate rows", "warning": True}}}
    assert "2 × JSON 格式错误" in counts_markdown(report, "zh-CN") and "2 × malformed JSON" in counts_markdown(report, "en")
    msg, hint = Msg("read.bad_json", column=5, error=Msg("json.value")), Msg("read.bad_json.hint")
    report = {"problems": [{"line": 7, "message": str(msg), "message_msg": msg.to_dict(), "hint": str(hint),
                            "hint_msg": hint.to_dict(), "code": "bad_json"}],
              "warnings": [{"line": 9, "message": "the same row appears earlier", "code": "duplicates"}]}
    zh = problem_frame(report, "zh-CN")
    assert zh.iloc[0, 2].startswith("第 5 列的 JSON 格式错误：缺少值") and zh.iloc[0, 3].startswith("修改这一行")
    assert zh.iloc[1, 2] == "(提醒) the same row appears earlier"  # a report of an older Danlu: its English as it is
    assert problem_frame(report, "en").iloc[0, 2].startswith("malformed JSON at column 5: a value is missing")


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
    ds_id, _ = dt.import_upload(gui, str(src), "en")
    said = [dt.clean_now(gui, op, ds_id, "builtin:danlu-tiny", 64, "auto", "zh-CN")
            for op in ("drop-invalid", "dedupe", "drop-empty", "trim", "merge-turns")]
    said += list(dt.clean(gui, "filter-long", ds_id, "builtin:danlu-tiny", 64, "auto", "zh-CN"))[1:]
    said.append(dt.undo(gui, ds_id, "zh-CN"))
    said.append(dt.clean_now(gui, "dedupe", ds_id, "builtin:danlu-tiny", 64, "auto", "zh-CN"))  # nothing left to do
    english = [s for s in said if re.search(r"[a-z]{4,}", re.sub(r"`[^`]*`|JSON|token|messages", "", s))]
    assert not english, said
    assert said[0] == "✓ 删除了 2 行有问题的行（1 无法读取的行；1 文本为空；共 6 行）" and said[-2].startswith("↶ 已撤销：删除了 1 行超过 64 个 token")
    assert said[-1].endswith("；没有变化，未生成新版本")
    es = dt.clean_now(gui, "dedupe", ds_id, "builtin:danlu-tiny", 64, "auto", "es")
    assert es.startswith("se eliminaron 0 filas duplicadas") and es.endswith("no hay versión nueva"), es


def test_the_problems_table_reads_in_each_language(services, uploads):
    from webui.context import Gui
    from webui.tabs import dataset_tab as dt
    demo = (Path(__file__).resolve().parents[2] / "presets/templates/data/demo.jsonl").read_text().splitlines()
    src = uploads / "broken.jsonl"
    src.write_text("\n".join(demo[:3] + ['{"messages": [{"role": "user", "content": "half'] + [demo[0]]) + "\n")
    ds_id, _ = dt.import_upload(Gui(services=services), str(src), "en")
    table = dt.check(Gui(services=services), ds_id, "auto", "", "zh-CN")[1]
    assert table.iloc[0, 2] == "第 48 列的 JSON 格式错误：文本中有原始的换行或制表符；请写成 \\n 或 \\t" and table.iloc[0, 3].startswith("修改这一行")
    assert any(fix.startswith("删除重复行") for fix in table.iloc[:, 3]), table.values.tolist()
    for lang in ("ja", "ko"):
        cells = dt.check(Gui(services=services), ds_id, "auto", "", lang)[1].iloc[:, 2:].values.ravel()
        assert all(CJK[lang].search(c) for c in cells), cells


def test_durations_on_the_page_are_in_its_language():
    """'took 1 min', 'time left: about 14 s' and the export estimate's '< 1 s' kept English units on every page."""
    from webui.jobview import status_markdown
    from webui.tabs.export_tab import duration_text
    done = dict(state="succeeded", id="j", kind="train", result=dict(runtime_s=75))
    running = dict(state="running", id="j", kind="train", step=5, total_steps=10, eta_s=600)
    assert status_markdown(done, "en").endswith("took 75 s") and status_markdown(running, "en").endswith("about 10 min")
    assert status_markdown(done, "ja").endswith("所要時間 75 秒") and status_markdown(running, "ko").endswith("약 10분")
    assert status_markdown(dict(done, result=dict(runtime_s=3 * 3600 + 120)), "zh-CN").endswith("用时 3 小时 2 分钟")
    assert duration_text(0.2, "ja") == "1 秒未満" and duration_text(0.2, "en") == "< 1 s"
    assert duration_text(100, "es") == "1 min" and duration_text(100, "ko") == "1분"


@pytest.mark.parametrize("lang", OTHERS)
def test_a_models_licence_keeps_its_name_and_says_its_note_in_the_pages_language(services, lang):
    """'Gemma Terms of Use (gated on the hub)': the licence's name stays as it is, its note was English on
    every page (the Templates tab's model line)."""
    from webui.context import Gui
    from webui.tabs.templates_tab import describe_model
    from webui.i18n import tr
    gui = Gui(services=services)
    for model, name, note in [("gemma-2-2b-it", "Gemma Terms of Use", "gated on the hub"),
                              ("danlu-tiny", "Apache-2.0", "generated here"),
                              ("internlm2.5-7b-chat", "Apache-2.0", "on request"),
                              ("llama-3.1-8b-instruct", "Llama 3.1 Community License", "gated on the hub")]:
        line = describe_model(gui, model, lang).split(f"{tr('tpl.license', lang)}: ")[1].split(" · ")[0]
        assert line.startswith(name) and note not in line and len(line) > len(name) + 3, (model, line)
    assert describe_model(gui, "qwen2.5-7b-instruct", lang).split(f"{tr('tpl.license', lang)}: ")[1].startswith("Apache-2.0 · ")


def test_the_model_pickers_say_no_english_word_in_other_languages(services, monkeypatch):
    """The Templates tab's model picker sized the demo model 'tiny' and Chat's picker marked a merged model
    'export', in English on every page: the size is a number now (0.1M, 7B), the mark in the page's language."""
    from webui.context import Gui
    from webui.i18n import tr
    from webui.tabs import chat_tab, templates_tab
    sizes = [label.rsplit(" · ", 1)[1] for label, _ in templates_tab.model_choices()]
    assert all(re.fullmatch(r"\d+(\.\d+)?[MB]", s) for s in sizes) and "0.1M" in sizes, sizes
    monkeypatch.setattr(chat_tab, "list_exports", lambda ws: [{"name": "furnace-bot", "complete": True}])
    for lang in OTHERS:
        models, _ = chat_tab.refresh_choices(Gui(services=services), lang, None, None)
        assert models["choices"][0] == (f"furnace-bot · {tr('chat.export_mark', lang)}", "furnace-bot")
        assert tr("chat.export_mark", lang) != "export", lang


def test_the_spanish_page_writes_decimals_with_a_point_and_groups_thousands_by_a_space():
    """The Spanish page wrote 0,05 and 1,7 GiB in some help texts and 0.7, 0.9 and the loss (1.2345) in
    others, and 20.000 for twenty thousand beside 0.1: one view mixed both marks. The page writes a point
    (its number boxes take no comma; RAE's 2010 recommendation) and groups by a space (i18n.NUMBERS).
    A comma between digits stays only where the English has it too: a list (--gpus 0,1)."""
    from webui.i18n import CATALOGS
    mixed = [(key, m.group()) for key, text in CATALOGS["es"].items() for m in re.finditer(r"\d+(?:[,.]\d+)+", text)
             if ("," in m.group() or re.search(r"\.\d{3}(?!\d)", m.group()))
             and m.group() not in (CATALOGS["en"].get(key) or EN.get(key) or "")]
    assert mixed == []


def test_every_catalog_says_each_code_once():
    """A code written twice in one catalog file is read as its last writing: a change of words put above the
    old line was lost (fail.crashed.hint still said "press Retry" where a new run was meant, in all five)."""
    import yaml

    from core.catalog_en import CATALOG, LOADER
    from webui.i18n import LOCALES
    for path in [CATALOG, *sorted(LOCALES.glob("*.yaml"))]:
        keys = [k.value for k, _ in yaml.compose(path.read_text(encoding="utf-8"), Loader=LOADER).value]
        assert not {k for k in keys if keys.count(k) > 1}, path.name
