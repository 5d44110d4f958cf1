"""ROUGE-L, BLEU and exact match against values worked out by hand (the arithmetic is in each test)."""
import math

import pytest

from core import metrics as M

CAT = "the cat sat on the mat"
REF = "the cat is on the mat"


def test_tokens_split_words_punctuation_and_cjk_characters():
    assert M.tokens("The cat, sat!") == ["the", "cat", ",", "sat", "!"]
    assert M.tokens("猫坐在垫子上。") == ["猫", "坐", "在", "垫", "子", "上", "。"]
    assert M.tokens("") == []


def test_rouge_l_is_lcs_f1():
    # LCS(the cat sat on the mat, the cat is on the mat) = the cat on the mat = 5; P = R = 5/6
    assert M.rouge_l(CAT, REF) == pytest.approx(5 / 6)
    # LCS(a b c d, a c) = 2; P = 2/4, R = 2/2, F1 = 2 * .5 * 1 / 1.5
    assert M.rouge_l("a b c d", "a c") == pytest.approx(2 / 3)
    assert M.rouge_l("x y", "a b") == 0.0
    assert M.rouge_l("", "a b") == 0.0
    assert M.rouge_l(CAT, CAT) == pytest.approx(1.0)


def test_sentence_bleu_with_add_one_smoothing():
    # p1 = 5/6 (the x2, cat, on, mat); p2 = 3/5 -> (3+1)/(5+1); p3 = 1/4 -> 2/5; p4 = 0/3 -> 1/4; BP = 1
    expected = ((5 / 6) * (4 / 6) * (2 / 5) * (1 / 4)) ** 0.25
    assert M.sentence_bleu(CAT, REF) == pytest.approx(expected)
    assert M.sentence_bleu(CAT, REF) == pytest.approx(0.48549, abs=1e-5)
    assert M.sentence_bleu(CAT, CAT) == pytest.approx(1.0)


def test_sentence_bleu_brevity_penalty_and_no_overlap():
    # c = 2, r = 6: every (smoothed) precision is 1, BP = exp(1 - 6/2)
    assert M.sentence_bleu("the cat", CAT) == pytest.approx(math.exp(-2))
    assert M.sentence_bleu("dog bird", CAT) == 0.0
    assert M.sentence_bleu("", CAT) == 0.0


def test_corpus_bleu_sums_counts_before_dividing():
    # matches/totals summed over both pairs: 9/10, 6/8, 3/6, 1/4; lengths 10 vs 10 -> BP 1
    expected = (0.9 * 0.75 * 0.5 * 0.25) ** 0.25
    assert M.corpus_bleu([CAT, "a b c d"], [REF, "a b c d"]) == pytest.approx(expected)
    assert M.corpus_bleu([CAT], [REF]) == 0.0  # no 4-gram match anywhere and no smoothing
    with pytest.raises(ValueError):
        M.corpus_bleu([CAT], [])


def test_exact_match_ignores_whitespace_only():
    assert M.exact_match("  The cat\n sat ", "The cat sat")
    assert not M.exact_match("the cat sat", "The cat sat")
    assert not M.exact_match("The cat sat.", "The cat sat")


def test_summarize_means_and_corpus_bleu():
    s = M.summarize([CAT, "x"], [REF, "x"])
    assert s["n"] == 2
    assert s["rouge_l"] == pytest.approx((5 / 6 + 1.0) / 2)
    assert s["exact_match"] == pytest.approx(0.5)
    # "x" has one unigram and no bigram: its sentence BLEU is 1 (smoothed higher orders are 1/1)
    assert s["bleu"] == pytest.approx((M.sentence_bleu(CAT, REF) + 1.0) / 2)
    assert M.summarize([], [])["rouge_l"] is None
