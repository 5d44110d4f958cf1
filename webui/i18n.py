"""The page's languages: one catalog file per language (webui/locales/<code>.yaml), keyed by code.

    L("train.start")          a translation marker for a label, help text, button or a one-line
                              Markdown: Gradio translates it in the page, so switching language
                              needs no server round trip. The page translates only the FIRST
                              marker of a string, so a string never holds two.
    tr("st.loss", lang)       the page's own words in one language: what handlers use to compose
                              messages ("loss 1.23 · about 20 s left"); the language switch re-renders them.
    tr("rv.matched", lang, m=3, n=12345)   ... filled, its numbers written as the language writes
                              them ("{n:,}": 12,345; 12 345 in Spanish). Never tr(...).format(...).
    number(12345, lang)       one count as "{n:,}" writes it in `lang`, for a line composed in code.
    duration(75, lang)        a duration in one language ("75 s", "75 秒").
    say(msg, lang)            what core said (a core.messages.Msg, or its dict from a JSON record) in
                              one language; a record of an older Danlu without codes shows its English.
    preset_text(name, key, english, lang)   a preset's text: presets carry their translations
                              (`translations:` in presets/*.yaml, checked by core.presets).
    said_in_all(render, lang) a line a handler writes (an action's message), in every language (a
                              Said); keep_said(fn, i) puts those words in a hidden box of the tab and
                              say_again(lang, box) is the language switch's answer for that line
                              (webui.app._wire_language): no line stays in the old language.

English is three sources, each the single one for its words: webui/locales/en.yaml (the page's own),
core/config.py (the settings' labels and help) and core/catalog_en.yaml (core's messages). Every other
language is one file holding all of them by the same keys. tests/webui/test_i18n.py fails when a
key or code lacks an entry in any language, or when a translation's {placeholders} differ.
"""
from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import gradio as gr

from core.catalog_en import EN, load_catalog
from core.config import FIELDS
from core.jobs import STATE_WORDS
from core.messages import PYTHON, Msg, Numbers, recorded, render

LANGUAGES = [("English", "en"), ("简体中文", "zh-CN"), ("日本語", "ja"), ("한국어", "ko"), ("Español", "es")]
CODES = [code for _, code in LANGUAGES]
# How a language of the page groups a number's thousands ("{n:,}" in a catalog). English, Chinese,
# Japanese and Korean write Python's 1,234 and 12,345: none of them uses the comma as a decimal mark.
# Spanish does in Spain and much of South America (3,5 kg), so "12,345" may read as twelve and a bit,
# and Mexico and Central America write the point: neither mark can group for every reader. RAE
# (Ortografía, 2010) and ISO 80000 group by a space and leave a 4-digit number whole: 1234, 12 345,
# 1 234 567. The space is U+00A0, the no-break space: a number never breaks across lines, and every font
# has it (Latin-1, HTML's &nbsp;); the narrow U+202F is nearer typesetting's thin space but missing from
# some fonts, where the page would show a box or another font's glyph. Only words shown on the page:
# boxes' values, YAML, the CLI and logs keep Python's numbers.
NUMBERS = {"es": Numbers("\u00a0", 5)}
# Decimals are written with a point in every language of the page, as its number boxes take them (a
# browser's number box reads no comma) and as RAE's Ortografía (2010) recommends for Spanish; in the
# languages whose readers often write a comma, a comma typed into a number box is taken as the point,
# with a note (webui.page_script, SET_LANGUAGE_JS).
DECIMAL_COMMA = ("es",)
LOCALES = Path(__file__).resolve().parent / "locales"


def _read(code: str) -> dict[str, str]:
    return load_catalog(LOCALES / f"{code}.yaml")


def _presets() -> dict[str, dict[str, str]]:
    """preset.<name>.<key> in every language: English from the preset file, the rest from its
    `translations:` (a language without one shows the English)."""
    from core.presets import TRANSLATED, all_presets
    out: dict[str, dict[str, str]] = {code: {} for code in CODES}
    for p in all_presets():
        for key in TRANSLATED[p.kind]:
            if not p.data.get(key):
                continue
            out["en"][f"preset.{p.name}.{key}"] = str(p.data[key])
            for code, texts in (p.data.get("translations") or {}).items():
                if code in out and (texts or {}).get(key):
                    out[code][f"preset.{p.name}.{key}"] = str(texts[key])
    return out


def _english_page() -> dict[str, str]:
    out = _read("en")
    for name, f in FIELDS.items():
        out[f"field.{name}"] = f.metadata["label"]
        out[f"help.{name}"] = f.metadata["help"]
    for state, word in STATE_WORDS.items():
        out[f"state.{state}"] = word
    return out


def _catalogs() -> dict[str, dict[str, str]]:
    presets = _presets()
    out = {"en": {**_english_page(), **presets["en"]}}
    for code in CODES[1:]:
        out[code] = {**_read(code), **presets[code]}
    return out


CATALOGS = _catalogs()
STRINGS = CATALOGS["en"]  # every key of the page, in English
I18N = gr.I18n(**{code: {k: CATALOGS[code].get(k, en) for k, en in STRINGS.items()} for code in CODES})


def lang_code(lang: str | None) -> str:
    """The catalog for what the page sends ("zh-CN", "ja", "es-ES" ...): English when unknown."""
    low = (lang or "en").lower()
    for code in CODES:
        if low == code.lower() or low.split("-")[0] == code.split("-")[0].lower():
            return code
    return "en"


def L(key: str):
    """A translation marker for `key`; an unknown key is a bug, caught when the UI is built."""
    if key not in STRINGS:
        raise KeyError(f"no UI text {key!r} in webui/locales/en.yaml")
    return I18N(key)


def numbers(lang: str | None) -> Numbers:
    """How `lang` writes numbers in words (NUMBERS): the formatter of tr() and say()."""
    return NUMBERS.get(lang_code(lang), PYTHON)


def tr(key: str, lang: str | None, /, **params) -> str:
    """The page's own words for `key` in one language (English where a language lacks it); filled with
    `params` when there are any, numbers as `lang` writes them (a parameter may be called `lang`)."""
    text = CATALOGS[lang_code(lang)].get(key) or STRINGS[key]
    return particles(numbers(lang).vformat(text, (), params), lang) if params else text


# A Korean particle after a filled-in word is written for both endings ("{label}은(는)"): '에폭 수은(는)'
# read as 수은, mercury (a walk in Korean). After a Hangul syllable the ending decides; after anything
# else (a number, a key, Latin letters) both forms stay.
_KO_PARTICLE = re.compile(r"([가-힣])(은\(는\)|이\(가\)|을\(를\)|과\(와\)|\(으\)로|\(이\)라)")


def _particle(m: re.Match) -> str:
    syllable, both = m.group(1), m.group(2)
    final = (ord(syllable) - 0xAC00) % 28  # 0: no final consonant; 8: ㄹ
    if both == "(으)로":
        return syllable + ("으로" if final not in (0, 8) else "로")
    if both == "(이)라":
        return syllable + ("이라" if final else "라")
    return syllable + (both[0] if final else both[2])


def particles(text: str, lang: str | None) -> str:
    return _KO_PARTICLE.sub(_particle, text) if lang_code(lang) == "ko" else text


def number(n, lang: str | None) -> str:
    """A count in `lang`, as "{n:,}" writes it in a catalog: 12,345 (12 345 in Spanish)."""
    return numbers(lang).format_field(n, ",")


def duration(seconds: float, lang: str | None) -> str:
    """A duration in `lang` ("75 s", "10 min", "3 h 2 min"), in the steps of core.progress.fmt_duration
    (the CLI's English)."""
    s = max(0, int(seconds))
    if s < 90:
        return tr("time.seconds", lang, n=s)
    if s < 5400:
        return tr("time.minutes", lang, n=s // 60)
    return tr("time.hours", lang, h=s // 3600, m=s % 3600 // 60)


def has(key: str) -> bool:
    return key in STRINGS


def words(lang: str | None):
    """The lookup core.messages.render uses for `lang`: its catalog, English (core's) for the rest."""
    code = lang_code(lang)
    return EN.get if code == "en" else CATALOGS[code].get


def say(m, lang: str | None) -> str:
    """What core said, in `lang`: a Msg, its dict from a JSON record, or plain English (a record of an
    older Danlu) shown as it is. None says nothing."""
    if m is None or m == "":
        return ""
    if isinstance(m, str):
        return m
    return particles(render(Msg.of(m), words(lang), numbers(lang)), lang)


def recorded_text(record: dict | None, key: str, lang: str | None) -> str:
    """A record's message under `key` ("message", "hint", "summary") in `lang` (core.messages.recorded)."""
    return say(recorded(record or {}, key), lang)


def error_text(e, lang: str | None) -> str:
    """A DanluError (or InputError) as one text in `lang`: what str(e) says in English."""
    return say(e.as_msg(), lang)


def preset_text(name: str, key: str, english: str, lang: str | None) -> str:
    """A preset's text in `lang` (its English when the preset has no translation for it)."""
    k = f"preset.{name}.{key}"
    return tr(k, lang) if k in STRINGS else english


class Said(str):
    """A line a handler composed, carrying its words in every page language (`texts`): a language
    switch shows it again in the new one (webui.app) instead of leaving the old words on the page."""
    texts: dict


def said_in_all(render, lang: str) -> Said:
    """render(code) -> the line in that language; the line in `lang`, with the others kept. `lang` is
    what the page's language input sent (a direct HTTP call may send none, or another code): lang_code."""
    texts = {code: render(code) for code in CODES}
    out = Said(texts[lang_code(lang)])
    out.texts = texts
    return out


def said_again(lang: str, kept: str):
    """The kept line (`Said.texts` as JSON, from a hidden box: anything may arrive) in `lang`; None
    when there is none."""
    try:
        texts = json.loads(kept or "{}")
    except (TypeError, ValueError, RecursionError):  # RecursionError: "[[[[..." nested past Python's limit
        return None
    text = texts.get(lang) if isinstance(texts, dict) else None
    return text if isinstance(text, str) else None


def keep_said(fn, index: int):
    """fn's outputs, then the words of its output `index` (a Said) in every language, as JSON for a
    hidden box: a language switch shows that line again in the new language (say_again). A line in one
    language only (a plain text) empties the box, so no older line comes back; no change (gr.skip())
    leaves it. fn answers one output, or several as a tuple or list; a generator function stays one.
    `.func` is fn, so webui.serving still finds the handler under this wrapper."""
    def with_box(out):
        out = list(out) if isinstance(out, (tuple, list)) else [out]
        line = out[index]
        texts = getattr(line, "texts", None)
        box = json.dumps(texts, ensure_ascii=False) if texts else "" if isinstance(line, str) else gr.skip()
        return (*out, box)

    if inspect.isgeneratorfunction(fn):  # a functools.partial of one too; Gradio streams only generators
        def run(*args):
            for out in fn(*args):
                yield with_box(out)
    else:
        def run(*args):
            return with_box(fn(*args))
    inner = fn
    while hasattr(inner, "func"):
        inner = inner.func
    run.func, run.__name__, run.__doc__ = fn, inner.__name__, inner.__doc__
    return run


def say_again(lang: str, kept: str):
    """The language switch's answer for a line kept by keep_said: it in `lang`, or no change."""
    text = said_again(lang, kept)
    return gr.skip() if text is None else text
