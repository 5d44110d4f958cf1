"""What core says to a person: a code from the catalog and its parameters, never a bare sentence.

    m = Msg("config.min", label=label("lora_rank"), n=1, v=0)
    str(m)                   'LoRA rank must be at least 1, got 0'   (English: the CLI, logs, error files)
    m.to_dict()              {"code": "config.min", "params": {...}}  (what JSON records keep)
    Msg.from_dict(d)         the same message back from a record
    render(m, words)         the sentence in another language; `words(code)` looks a code up in
                             that language's catalog (webui/locales/<lang>.yaml), English fills gaps
    render(m, words, numbers)   ... with that language's grouping of thousands (a Numbers: "{n:,}"
                             is 12,345 in English, 12 345 on the Spanish page; webui/i18n.py)

English is core/catalog_en.yaml (the CLI's words); every other language is one catalog file of the
page, keyed by the same codes, with the same {placeholders}. A parameter may itself be a Msg (a
setting's label, a kind of value, a sentence inside a sentence): it is rendered in the same
language. Values that come from outside (file names, numbers, a library's error text) are plain
parameters. A text parameter is shown with its invisible characters escaped (a line break, a terminal's
escape sequence, a bidi override), and one longer than QUOTE_LIMIT as its head, "…" and its length
(`'[[[[…' (100,000 characters)`, the code any.clipped, worded in each language): a person's value
(a setting, a path, a cell of their data) is quoted short wherever a message quotes it. Parameters
that hold outside words long by nature (a library's error text, a log's tail, the allowed folders:
_WHOLE) are shown as they are. Two small additions to Python's format syntax:
    {n|row|rows}    the first form when the parameter n is 1, else the second (English and Spanish
                    need it; a language without plural forms writes the word once)
    {steps|; }      a list parameter, its items joined with what follows the bar (each language
                    writes its own separator: "; " in English, "；" in Chinese)

JSON records keep a message's English under its key ("message", "hint", "summary") and its code
beside it under the key + "_msg" (said(), recorded()).

Nothing parses sentences back: the page renders the codes core recorded. Pure Python.
"""
from __future__ import annotations

import importlib
import re
import string
from typing import Any, Callable

from core.catalog_en import EN

_FORMATTER = string.Formatter()
_PLURAL = re.compile(r"\{(\w+)\|([^|{}]*)\|([^|{}]*)\}")
_JOIN = re.compile(r"\{(\w+)\|([^|{}]*)\}")
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+")  # an integer part as Python's ',' spec writes it: 1,234,567


class Numbers(string.Formatter):
    """str.format with one language's way of grouping a number's thousands (the ',' spec, "{n:,}"):
    `sep` between groups of three digits, and no grouping at all in an integer part of fewer than
    `least` digits. Numbers() is Python's own (1,234; 12,345): English, the CLI, logs and JSON records.
    Decimal marks and every other spec stay Python's."""

    def __init__(self, sep: str = ",", least: int = 4):
        super().__init__()
        self.sep, self.least = sep, least

    def format_field(self, value, format_spec: str) -> str:
        text = super().format_field(value, format_spec)
        if "," not in format_spec or (self.sep, self.least) == (",", 4):
            return text
        return _GROUPED.sub(self._regroup, text, count=1)  # the integer part: a fraction has no ','

    def _regroup(self, m: re.Match) -> str:
        digits = m.group().replace(",", "")
        return digits if len(digits) < self.least else m.group().replace(",", self.sep)


PYTHON = Numbers()


_FIELD_LABELS: list[Callable[[str], str | None]] = []  # core/config.py registers its settings' labels


def register_field_labels(lookup: Callable[[str], str | None]) -> None:
    """core.config hands over its labels here (it imports this module, so this one cannot import it)."""
    _FIELD_LABELS[:] = [lookup]


def english(code: str) -> str | None:
    """The English template of a code; `field.<name>` is a setting's label (core/config.py)."""
    text = EN.get(code)
    if text is None and code.startswith("field."):
        if not _FIELD_LABELS:  # a process that has not imported core.config yet reads a record naming a setting
            importlib.import_module("core.config")  # registers its labels; by name, as config imports this module
        text = _FIELD_LABELS[0](code[len("field."):])
    return text


class Msg:
    """One sentence (or phrase) for a person: `code` in the catalog, `params` to fill it."""

    __slots__ = ("code", "params")

    def __init__(self, code: str, /, **params: Any):
        if english(code) is None:
            raise KeyError(f"no message {code!r} in core/catalog_en.yaml")
        self.code = code
        whole = _WHOLE | _WHOLE_IN.get(code, frozenset())
        self.params = {k: v if k in whole else _shown(v) for k, v in params.items()}

    def __str__(self) -> str:
        return render(self, EN.get)

    def __repr__(self) -> str:
        return f"Msg({self.code!r}, **{self.params!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Msg) and other.code == self.code and other.params == self.params

    def __hash__(self) -> int:
        return hash((self.code, str(self)))

    def to_dict(self) -> dict:
        return {"code": self.code, "params": {k: _to_json(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "Msg":
        """A message from a record; an unknown code (a record of a newer Danlu) keeps its words."""
        params = {k: _from_json(v) for k, v in (d.get("params") or {}).items()}
        try:
            return cls(d["code"], **params)
        except KeyError:
            return verbatim(d.get("text") or d.get("code", ""))

    @classmethod
    def of(cls, value) -> "Msg | None":
        """A Msg, a record's dict of one, or None: what readers of JSON records get back."""
        if value is None or isinstance(value, Msg):
            return value
        if isinstance(value, dict) and "code" in value:
            return cls.from_dict(value)
        raise TypeError(f"expected a Msg or its dict, got {type(value).__name__}")


# A value a person gave is quoted whole up to QUOTE_LIMIT characters: a hub model id (96 at most),
# a list of layers, a real path and a cell's short text fit, so the person sees exactly what they
# typed. A longer one (a pasted file, a probe's 100,000 "[") shows its first QUOTE_HEAD characters,
# enough to recognise it, and its length: the message stays a line or two in a terminal, a page's
# problem list and a job's record. Lengths count the characters as shown (a repr()'s quotes aside).
QUOTE_LIMIT = 200
QUOTE_HEAD = 100
# Parameters that hold words from outside, long by nature and not a value the person typed: a
# library's error text or traceback, Slurm's answer, a log's tail, sentences and lists Danlu makes
# (the allowed folders, the choices, the presets): shown as they are.
_WHOLE = frozenset({"error", "detail", "words", "tail", "message", "hint", "summary", "note", "problem",
                    "choices", "names", "formats", "kinds", "roots", "workspace", "settings", "runs", "exports"})
# Messages one of whose parameters is shown as it is whatever its name: outside words (verbatim), and
# the path of a file Danlu wrote that the person is told to open.
_WHOLE_IN = {"verbatim": frozenset({"text"}), "chat.see_log.hint": frozenset({"path"}),
             "chat.see_log_tail.hint": frozenset({"path"}), "chat.see.hint": frozenset({"path"}),
             "demo.see.hint": frozenset({"path"}), "db.damaged": frozenset({"path"})}
# Characters that break or reorder a message's line, recolour a terminal or hide what is there:
# controls (line breaks, ESC), line/paragraph separators, bidi marks and overrides, zero-width space,
# byte-order mark; lone surrogates cannot be printed as UTF-8 at all. Every one is not isprintable().
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")


def _escaped(text: str) -> str:
    """`text` with each invisible character written as Python writes it in a repr ("\\n", "\\x1b")."""
    return text if text.isprintable() else _INVISIBLE.sub(lambda m: repr(m.group())[1:-1], text)


def _shown(value):
    """A parameter as a message quotes it: text escaped and, past QUOTE_LIMIT, its head and length
    (a repr()'s quotes stay around the head); the items of a list likewise; anything else as it is."""
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value] if isinstance(value, list) else tuple(_shown(v) for v in value)
    if not isinstance(value, str):
        return value
    text = _escaped(value)
    q = text[0] if len(text) > 1 and text[0] in "'\"" and text[-1] == text[0] else ""
    inner = text[len(q):len(text) - len(q)]
    if len(inner) <= QUOTE_LIMIT:
        return text
    return Msg("any.clipped", head=q + inner[:QUOTE_HEAD] + "…" + q, n=len(inner))


def place(text: str) -> str:
    """A problem's place (a setting's key, `file:line field`) as it is shown: escaped and, past
    QUOTE_LIMIT, cut to its head and "…". A place is not worded, so it carries no length: the message
    beside it says what is wrong; an unknown key of 100,000 characters is recognised by its head."""
    if not isinstance(text, str):
        return text
    text = _escaped(text)
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_HEAD] + "…"


def label(name: str) -> Msg:
    """A setting's label (TrainConfig field `name`) inside a message, translated with it."""
    return Msg("field." + name)


SIZE_UNITS = ("size.kb", "size.mb", "size.gb", "size.tb")


def size_msg(n_bytes: float) -> Msg:
    """A number of bytes as every message says it: 300 bytes, 4 KB, 8.5 MB, 1.2 GB (units of 1024, three
    significant digits at most, no trailing zeros). One formatter for all of them: a cap of a few KB,
    said in MB as each message once did, read "0.0 MB"."""
    n = max(0, int(n_bytes))
    if n < 1024:
        return Msg("size.bytes", n=n)
    value = n / 1024
    for code in SIZE_UNITS:
        shown = _digits(value)
        if float(shown) < 1024 or code == SIZE_UNITS[-1]:
            return Msg(code, n=shown)
        value /= 1024


def sizes_over(n_bytes: float, cap: float) -> dict[str, Msg]:
    """The parameters `size` and `limit` of "the record is {size}; the limit is {limit}": in bytes when
    rounding would say one number twice ("the record is 8 MB; the limit is 8 MB")."""
    said, limit = size_msg(n_bytes), size_msg(cap)
    if str(said) == str(limit):
        said, limit = Msg("size.bytes", n=max(0, int(n_bytes))), Msg("size.bytes", n=max(0, int(cap)))
    return dict(size=said, limit=limit)


def _digits(value: float) -> str:
    """1.5, 8.04, 12.5, 200: three significant digits (all of a number of 100 or more), no trailing zeros."""
    text = f"{value:.{0 if value >= 100 else 1 if value >= 10 else 2}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def verbatim(text: str) -> Msg:
    """Words from outside the catalog, shown as they are in every language: a record written by an
    older Danlu, a library's own error text. Never for sentences Danlu writes itself (a test scans)."""
    return Msg("verbatim", text=str(text))


def _to_json(v):
    if isinstance(v, Msg):
        return v.to_dict()
    if isinstance(v, (list, tuple)):
        return [_to_json(x) for x in v]
    return v


def _from_json(v):
    if isinstance(v, dict) and "code" in v:
        return Msg.from_dict(v)
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v


def render(m: Msg, words: Callable[[str], str | None], numbers: Numbers = PYTHON) -> str:
    """`m` in the language `words` looks codes up in, its numbers' thousands grouped as `numbers`
    writes them; a code it lacks (or a broken translation) falls back to English, so a page never
    fails over a message."""
    for template in (words(m.code), english(m.code)):
        if template is None:
            continue
        try:
            return _fill(template, m.params, words, numbers)
        except (KeyError, IndexError, ValueError, TypeError):
            continue
    return m.code


def _fill(template: str, raw: dict, words, numbers: Numbers = PYTHON) -> str:
    params = {k: render(v, words, numbers) if isinstance(v, Msg) else v for k, v in raw.items()}

    def join(g):
        params[g[1]] = g[2].join(render(x, words, numbers) if isinstance(x, Msg) else str(x) for x in raw[g[1]])
        return "{" + g[1] + "}"
    template = _PLURAL.sub(lambda g: g[2] if raw[g[1]] == 1 else g[3], template)
    return numbers.vformat(_JOIN.sub(join, template), (), params)


def placeholders(template: str) -> set[str]:
    """The {names} a template uses (a translation must use the same ones)."""
    plain = _JOIN.sub(lambda g: "{" + g[1] + "}", _PLURAL.sub(lambda g: "{" + g[1] + "}", template))
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in _FORMATTER.parse(plain) if name}


def said(message: Msg, hint: Msg | None = None) -> dict:
    """What a JSON record keeps of a message and its fix: the English words ("message", "hint", for
    the CLI and people reading the file) and their codes ("message_msg", "hint_msg", for the page)."""
    return {**keep("message", message), **keep("hint", hint)}


def keep(key: str, m: Msg | None) -> dict:
    """{key: English, key + "_msg": code and params} for a JSON record ("" and None when m is None)."""
    if not (m is None or isinstance(m, Msg)):
        raise TypeError(f"{key} must be a Msg: every sentence Danlu writes has a code")
    return {key: str(m) if m is not None else "", key + "_msg": m.to_dict() if m is not None else None}


def keep_all(key: str, ms: list[Msg]) -> dict:
    """keep() for a list of messages (a report's notes): {key: [English], key + "_msg": [codes]}."""
    if not all(isinstance(m, Msg) for m in ms):
        raise TypeError(f"{key} must be Msgs: every sentence Danlu writes has a code")
    return {key: [str(m) for m in ms], key + "_msg": [m.to_dict() for m in ms]}


def recorded_all(record: dict, key: str) -> list[Msg]:
    """The messages a record keeps under `key` (keep_all): their codes when the record has them, else
    its English words as they are (a record from an older Danlu)."""
    coded = record.get(key + "_msg")
    if isinstance(coded, list) and coded:
        return [Msg.of(m) for m in coded]
    return [verbatim(text) for text in record.get(key) or [] if text]


def recorded(record: dict, key: str = "message") -> Msg | None:
    """The message a record keeps under `key`: its code when the record has one, else its English
    words as they are (a record from an older Danlu)."""
    coded = record.get(key + "_msg")
    if coded:
        return Msg.of(coded)
    text = record.get(key)
    return verbatim(text) if text else None
