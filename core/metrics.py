"""Text-overlap scores for the Evaluate tab: ROUGE-L, BLEU-4 and exact match. Pure Python.

    tokens("The cat, 猫!")               -> ["the", "cat", ",", "猫", "!"]
    rouge_l(candidate, reference)        -> F1 of the longest common subsequence of tokens, 0..1
    sentence_bleu(candidate, reference)  -> BLEU-4 of one answer, smoothed so a short answer
                                            without a 4-gram match is not simply 0, 0..1
    corpus_bleu(candidates, references)  -> BLEU-4 over all answers (n-gram counts summed first)
    exact_match(candidate, reference)    -> True when equal after collapsing whitespace

Why these definitions (so the numbers can be checked by hand):
- Tokens are lower-cased words, single punctuation marks, and single CJK characters (Chinese has
  no spaces, so each character counts as a word, as LlamaFactory's jieba-less fallback does).
- ROUGE-L: P = LCS / len(candidate), R = LCS / len(reference), F1 = 2PR / (P + R) (Lin 2004, beta 1).
- Sentence BLEU: clipped n-gram precisions p1..p4, geometric mean, brevity penalty
  exp(1 - r/c) when the candidate is shorter. Smoothing "add one" (Lin & Och 2004): for n >= 2,
  p_n = (matches + 1) / (total + 1); p1 is not smoothed, so an answer sharing no word scores 0.
- Corpus BLEU is Papineni's: matches and totals summed over all pairs, no smoothing.
"""
from __future__ import annotations

import math
import re
from collections import Counter

_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W_]+|[^\w\s]|_",
                    re.UNICODE)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall((text or "").lower())


def normalize_ws(text: str) -> str:
    return " ".join((text or "").split())


def exact_match(candidate: str, reference: str) -> bool:
    return normalize_ws(candidate) == normalize_ws(reference)


def lcs_length(a: list, b: list) -> int:
    """Longest common subsequence, O(len(a) * len(b)) time, O(len(b)) memory."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, reference: str) -> float:
    c, r = tokens(candidate), tokens(reference)
    lcs = lcs_length(c, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)


def ngrams(toks: list[str], n: int) -> Counter:
    return Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))


def _matches(c: list[str], r: list[str], max_n: int) -> tuple[list[int], list[int]]:
    """Clipped n-gram matches and candidate n-gram totals for n = 1..max_n."""
    matches, totals = [], []
    for n in range(1, max_n + 1):
        cn, rn = ngrams(c, n), ngrams(r, n)
        matches.append(sum(min(k, rn[g]) for g, k in cn.items()))
        totals.append(max(0, len(c) - n + 1))
    return matches, totals


def _brevity(c_len: int, r_len: int) -> float:
    if c_len == 0:
        return 0.0
    return 1.0 if c_len > r_len else math.exp(1 - r_len / c_len)


def sentence_bleu(candidate: str, reference: str, max_n: int = 4) -> float:
    c, r = tokens(candidate), tokens(reference)
    if not c or not r:
        return 0.0
    matches, totals = _matches(c, r, max_n)
    if matches[0] == 0:
        return 0.0
    logs = [math.log(matches[0] / totals[0])]
    logs += [math.log((m + 1) / (t + 1)) for m, t in zip(matches[1:], totals[1:])]
    return _brevity(len(c), len(r)) * math.exp(sum(logs) / max_n)


def corpus_bleu(candidates: list[str], references: list[str], max_n: int = 4) -> float:
    if len(candidates) != len(references):
        raise ValueError("candidates and references differ in length")
    m_sum, t_sum = [0] * max_n, [0] * max_n
    c_len = r_len = 0
    for cand, ref in zip(candidates, references):
        c, r = tokens(cand), tokens(ref)
        m, t = _matches(c, r, max_n)
        m_sum = [a + b for a, b in zip(m_sum, m)]
        t_sum = [a + b for a, b in zip(t_sum, t)]
        c_len, r_len = c_len + len(c), r_len + len(r)
    if min(m_sum) == 0 or min(t_sum) == 0:
        return 0.0
    return _brevity(c_len, r_len) * math.exp(sum(math.log(m / t) for m, t in zip(m_sum, t_sum)) / max_n)


def score(candidate: str, reference: str) -> dict:
    return dict(rouge_l=rouge_l(candidate, reference), bleu=sentence_bleu(candidate, reference),
                exact=exact_match(candidate, reference))


def summarize(candidates: list[str], references: list[str]) -> dict:
    """Corpus-level numbers for one model's answers: means of the per-sample scores plus corpus BLEU."""
    n = len(candidates)
    if n == 0:
        return dict(n=0, rouge_l=None, bleu=None, corpus_bleu=None, exact_match=None)
    per = [score(c, r) for c, r in zip(candidates, references)]
    return dict(n=n, rouge_l=sum(p["rouge_l"] for p in per) / n, bleu=sum(p["bleu"] for p in per) / n,
                corpus_bleu=corpus_bleu(candidates, references), exact_match=sum(p["exact"] for p in per) / n)
