"""What the review desk knows about every row of one dataset version, built once, held in memory.

    idx = build_index("data.jsonl", fmt="auto", column_map=None)
    idx.n, idx.rows[i], idx.lines[i]        row i's record number (what edit/delete take) and first line
    idx.texts[i], idx.folded[i]             its text (every text value but roles), and case-folded
    idx.tokens[i], idx.lang[i], idx.dup[i]  estimated tokens, language code index, near-duplicate group (0: none)
    idx.problems[i]                         bitmask over idx.codes (problem codes as core/data/check.py names them)
    idx.record(i)                           the row as it is in the file (parsed on demand)

Filtering 100,000 rows must answer within 300 ms (bench/review_bench.py), so the per-row facts are
numpy arrays (a filter is a few vectorised comparisons) and the text is kept as plain strings
(a word search is one C-level `in` per row). Building reads the file once: seconds for 100,000 rows;
`cached_index` keeps the last few versions, keyed by content hash and format settings.
"""
from __future__ import annotations

import itertools
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data import regex_scan
from core.data.check import resolve_format
from core.data.formats import FORMAT_NAMES, Schema
from core.data.issues import Collector
from core.data.pii import string_slots
from core.data.readers import ReadStats, read_records
from core.data.sniff import sniff
from core.data.textfields import normalised

LANG_SAMPLE = 400   # characters of a row that decide its language
CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af]")
SCRIPTS = [("ja", re.compile(r"[\u3040-\u30ff]")), ("ko", re.compile(r"[\uac00-\ud7af]")), ("zh", re.compile(r"[\u4e00-\u9fff]")),
           ("ru", re.compile(r"[\u0400-\u04ff]")), ("ar", re.compile(r"[\u0600-\u06ff]")), ("el", re.compile(r"[\u0370-\u03ff]")),
           ("he", re.compile(r"[\u0590-\u05ff]")), ("th", re.compile(r"[\u0e00-\u0e7f]")), ("hi", re.compile(r"[\u0900-\u097f]"))]
# the commonest short words of each Latin-script language: a vote decides (a guess for a filter, not a verdict)
STOPWORDS = {
    "en": "the and of to is in that it you for was with are this have not be on what how",
    "de": "der die und das ist nicht ich sie es ein eine zu den mit auf für ist wie auch",
    "fr": "le la les et des est une un que pas pour dans vous je ce qui sur avec",
    "es": "el la los las y de que es en un una por para con no se lo como",
    "it": "il la di che è e un una per non sono con del della gli le come",
    "pt": "o a os as e de que é um uma não para com do da em como você",
    "nl": "de het een en van is dat niet ik je op te zijn met voor wat",
}
LANGS_OF_WORD: dict[str, tuple] = {}
for _lang, _words in STOPWORDS.items():
    for _w in _words.split():
        LANGS_OF_WORD[_w] = LANGS_OF_WORD.get(_w, ()) + (_lang,)
WORD = re.compile(r"[^\W\d_]+")
NON_LATIN = re.compile(r"[^\x00-\u024f\u2000-\u206f]")  # one test rules out the other scripts for most rows
LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
TURN_KEYS = ("role", "from")


@dataclass
class Index:
    path: str
    fmt: str | None
    column_map: dict
    rows: np.ndarray            # record numbers (1-based, unreadable rows counted: what edit/delete take)
    lines: np.ndarray           # first physical line of each record (-1 where the file has none: Parquet)
    raw: list                   # each record as compact JSON text
    texts: list                 # each record's text, turns joined by blank lines
    folded: list                # the same, case-folded (word search)
    tokens: np.ndarray          # estimated tokens (about 4 characters each, one per CJK character)
    lang: np.ndarray            # index into `langs`
    langs: list
    dup: np.ndarray             # near-duplicate group number, 0 when the row has no near duplicate
    problems: np.ndarray        # bitmask over `codes`
    codes: list
    total_rows: int             # records in the file, readable or not
    unreadable: int
    pos_of: dict = field(default_factory=dict)  # record number -> position
    hashes: list = field(default_factory=list)  # of each row's JSON text (exact duplicates)
    keys: list = field(default_factory=list)    # each row's near-duplicate key
    uid: int = 0                # unique per build: what caches of derived facts are keyed by

    @property
    def n(self) -> int:
        return len(self.raw)

    def record(self, i: int):
        return json.loads(self.raw[i])

    def position(self, row: int) -> int | None:
        return self.pos_of.get(int(row))


def guess_language(text: str) -> str:
    """A language code from the script, and for Latin script from common words; '' when unsure."""
    sample = text[:LANG_SAMPLE]
    for code, pattern in SCRIPTS if NON_LATIN.search(sample) else ():
        if pattern.search(sample):
            if code == "zh" and SCRIPTS[0][1].search(sample):
                return "ja"
            return code
    if not LETTER.search(sample):
        return ""
    words = WORD.findall(sample.lower())
    tally: dict[str, int] = {}
    for w in words:
        for lang in LANGS_OF_WORD.get(w, ()):
            tally[lang] = tally.get(lang, 0) + 1
    best, votes = "", 0
    for lang in STOPWORDS:  # ties go to the first listed
        if tally.get(lang, 0) > votes:
            best, votes = lang, tally[lang]
    return best if votes >= 2 or (votes == 1 and len(words) < 6) else "latin"


def estimate_tokens(text: str) -> int:
    """core.data.render.estimate_tokens, with the CJK count done by a regex (100x faster in Python)."""
    cjk = len(CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def row_text(value) -> str:
    """The text a reviewer searches: every text value of the record except role names."""
    if type(value) is str:
        return value
    return "\n\n".join(obj[key] for obj, key, _ in string_slots(value) if key not in TURN_KEYS)


def build_index(path: str | Path, fmt: str = "auto", column_map: dict | None = None) -> Index:
    path = Path(path)
    fmt_used, cmap = resolve_format(path, fmt, column_map)
    schema = Schema(fmt_used, cmap) if fmt_used in FORMAT_NAMES else None
    sn = sniff(path)
    col, st = Collector(keep=0), ReadStats()
    rows, lines, raw, texts, tokens, langs_of, probs, keys, hashes = [], [], [], [], [], [], [], [], []
    codes: dict[str, int] = {}
    seen: set = set()
    records = read_records(path, sn, col, st, column_map=cmap) if sn.kind else ()
    for line, rec_no, value, raw_line in records:
        text = row_text(value)
        j = raw_line.decode("utf-8").strip().lstrip("\ufeff") if raw_line is not None else \
            json.dumps(value, ensure_ascii=False, default=str)
        mask = 0
        found = _codes(schema, value)
        h = hash(j)
        hashes.append(h)
        if h in seen:
            found.append("duplicates")
        seen.add(h)
        for c in found:
            mask |= 1 << codes.setdefault(c, len(codes))
        rows.append(rec_no)
        lines.append(-1 if line is None else line)
        raw.append(j)
        texts.append(text)
        tokens.append(estimate_tokens(text))
        langs_of.append(guess_language(text))
        probs.append(mask)
        keys.append(normalised(value, fmt_used, cmap) if fmt_used in FORMAT_NAMES and type(value) is dict else
                    hash(text.casefold()))
    langs = sorted(set(langs_of))
    lang_no = {code: i for i, code in enumerate(langs)}
    unreadable = st.rows - len(rows)
    idx = Index(str(path), fmt_used, cmap, np.array(rows, dtype=np.int64), np.array(lines, dtype=np.int64), raw, texts,
                [t.casefold() for t in texts], np.array(tokens, dtype=np.int64),
                np.array([lang_no[c] for c in langs_of], dtype=np.int16), langs, _groups(keys),
                np.array(probs, dtype=np.int64), list(codes), st.rows, unreadable)
    idx.pos_of = {int(r): i for i, r in enumerate(idx.rows)}
    idx.hashes, idx.keys = hashes, keys
    idx.uid = next(_BUILDS)
    if idx.n >= WARM_ROWS:  # the first regular-expression search then answers as fast as the next
        regex_scan.joined(idx.folded, idx.uid)
    return idx


def with_row(idx: Index, i: int, value, path: str | Path) -> Index:
    """The index of the version an edit of row `i` made (same rows, one of them new): what
    build_index would give, in a fraction of its time (an edit of one row must not re-read 100,000)."""
    schema = Schema(idx.fmt, idx.column_map) if idx.fmt in FORMAT_NAMES else None
    j = json.dumps(value, ensure_ascii=False, default=str)   # as the edit operation writes it
    text = row_text(value)
    raw, texts, folded, hashes, keys = list(idx.raw), list(idx.texts), list(idx.folded), list(idx.hashes), list(idx.keys)
    raw[i], texts[i], folded[i], hashes[i] = j, text, text.casefold(), hash(j)
    keys[i] = normalised(value, idx.fmt, idx.column_map) if idx.fmt in FORMAT_NAMES and type(value) is dict else hash(text.casefold())
    codes = {c: b for b, c in enumerate(idx.codes)}
    problems = idx.problems.copy()
    mask = 0
    for c in _codes(schema, value):
        mask |= 1 << codes.setdefault(c, len(codes))
    problems[i] = mask
    dup_bit = 1 << codes.setdefault("duplicates", len(codes))
    seen: set = set()
    for k, h in enumerate(hashes):   # which rows repeat an earlier one may have changed with this row
        problems[k] = (problems[k] | dup_bit) if h in seen else (problems[k] & ~dup_bit)
        seen.add(h)
    lang = guess_language(text)
    langs = sorted(set(idx.langs) | {lang})
    remap = np.array([langs.index(c) for c in idx.langs], dtype=np.int16)
    lang_arr = remap[idx.lang] if len(idx.lang) else idx.lang.copy()
    lang_arr[i] = langs.index(lang)
    tokens = idx.tokens.copy()
    tokens[i] = estimate_tokens(text)
    out = Index(str(path), idx.fmt, idx.column_map, idx.rows, idx.lines, raw, texts, folded, tokens, lang_arr, langs,
                _groups(keys), problems, list(codes), idx.total_rows, idx.unreadable, idx.pos_of, hashes, keys)
    out.uid = next(_BUILDS)
    return out


def _codes(schema: Schema | None, value) -> list[str]:
    if type(value) is not dict:
        return ["not_object"]
    if schema is None:
        return ["unknown_format"]
    _, issues = schema.check(value, False)
    return list(dict.fromkeys(code for code, *_ in issues))


def _groups(keys: list) -> np.ndarray:
    """Group numbers (1, 2, ... in order of first appearance) for keys seen more than once; 0 otherwise."""
    count: dict = {}
    for k in keys:
        count[k] = count.get(k, 0) + 1
    number: dict = {}
    out = np.zeros(len(keys), dtype=np.int64)
    for i, k in enumerate(keys):
        if count[k] > 1:
            out[i] = number.setdefault(k, len(number) + 1)
    return out


_BUILDS = itertools.count(1)
WARM_ROWS = 20_000
_CACHE: OrderedDict = OrderedDict()
_LOCK = threading.Lock()
CACHE_SIZE = 3


def cached_index(path: str | Path, sha256: str, fmt: str = "auto", column_map: dict | None = None) -> Index:
    """build_index, kept for the last CACHE_SIZE (content, format settings): a version file never
    changes, so its content hash is the key."""
    key = (sha256, fmt, json.dumps(column_map or {}, sort_keys=True))
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    return remember(sha256, fmt, column_map, build_index(path, fmt, column_map))


def remember(sha256: str, fmt: str, column_map: dict | None, idx: Index) -> Index:
    """Keep `idx` as the index of the version with this content and format settings."""
    key = (sha256, fmt, json.dumps(column_map or {}, sort_keys=True))
    with _LOCK:
        _CACHE[key] = idx
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return idx
