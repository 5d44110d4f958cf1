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
