"""core.data.regex_scan: Hyperscan as a prefilter must give exactly what Python's `re` gives."""
from __future__ import annotations

import random
import re

import numpy as np
import pytest

from core.data import regex_scan

WORDS = ["dose", "mg", "Straße", "страховка", "病人", "café", "ring", "sing", "x1c", "tab\there", "naïve", "ÉCOLE"]


def rows(n: int = 3000, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        parts = [rnd.choice(WORDS) for _ in range(rnd.randint(0, 12))]
        if i % 17 == 0:
            parts.append(f"{rnd.randint(1000, 9999)} {rnd.randint(1000, 9999)}")
        if i % 23 == 0:
            parts.append("line one\nline two")
        if i % 29 == 0:
            parts.append("sep\x1cfield")  # Python's \s matches \x1c, Hyperscan's may not: re confirms
        if i % 31 == 0:
            parts.append("١٢٣٤ ٥٦٧٨")  # Arabic-Indic digits are \d for Python
        out.append(" ".join(parts))
    return out


PATTERNS = [r"\d{4} \d{4}", r"[a-z]+ing\b", r"^line two$", r"\bsep\sfield", r"[^\x00-\x7f]{3}", r"(?i)straße",
            r"é\w+", r"\d+\s\d+", r"(dose|mg){2}", r"two$", r"(?<=one\n)line", r"(\w)\1", r"x1c\b",
            r"x{,3}1c", r"caf\u00e9", r"(?i)ÉCOLE", r"\d\s*\d"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_hyperscan_finds_exactly_what_re_finds(pattern):
    texts = rows()
    compiled = re.compile(pattern, re.MULTILINE)
    want = np.fromiter((compiled.search(t) is not None for t in texts), dtype=bool, count=len(texts))
    got = regex_scan.regex_rows(pattern, compiled, texts, ("test", pattern), quick_s=0)  # Hyperscan whenever it can
    if got is not None:
        assert (got == want).all(), np.flatnonzero(got != want)[:5]


def test_hyperscan_is_used_when_re_would_be_slow_and_not_when_it_is_quick():
    texts = rows()
    rare = re.compile(r"\d{4} \d{4}", re.MULTILINE)
    got = regex_scan.regex_rows(rare.pattern, rare, texts, "rare", quick_s=0)
    assert got is not None and got.sum() == sum(rare.search(t) is not None for t in texts) > 0
    # 3,000 short rows: re over all of them is projected well under the default 0.1 s
    assert regex_scan.regex_rows(rare.pattern, rare, texts, "rare") is None
    # far more matches than MAX_EVENTS: reporting them all would be slower than re
    many = re.compile(r"\w", re.MULTILINE)
    assert regex_scan.regex_rows(many.pattern, many, texts * 20, "many", quick_s=0) is None


def test_exact_and_prefilter_modes_are_both_exercised():
    import hyperscan
    flags = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP | hyperscan.HS_FLAG_MULTILINE
    assert regex_scan._compile(hyperscan, r"\d{4} \d{4}", flags)[1] is True
    assert regex_scan._compile(hyperscan, r"(\w)\1", flags)[1] is False  # a backreference: prefilter + re


def test_whole_text_anchors_and_unencodable_rows_fall_back_to_re():
    texts = rows(500)
    start = re.compile(r"\Adose \d", re.MULTILINE)
    assert regex_scan.regex_rows(start.pattern, start, texts, "anchor", quick_s=0) is None
    bad = texts[:-1] + ["lone \ud800 surrogate 1234 5678"]
    digits = re.compile(r"\d{4} \d{4}", re.MULTILINE)
    assert regex_scan.regex_rows(digits.pattern, digits, bad, "surrogate", quick_s=0) is None
