"""Pure helpers of bench/loss_curve.py: the verdict and the real-text tokenizer/data builder.
(The script itself trains three stacks for minutes; it is run by hand, not here.)"""

import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def lc():
    return load_script("bench/loss_curve.py")


def curve(values):
    return {i + 1: v for i, v in enumerate(values)}


def test_identical_curves_match(lc):
    base = curve([5.0 - 0.1 * i for i in range(20)])
    c = lc.compare(base, dict(base), 20)
    assert c["verdict"] == "match" and c["mean_rel_diff"] == 0 and c["max_abs_diff"] == 0


def test_small_noise_matches_but_an_offset_or_late_drift_differs(lc):
    base = curve([4.0] * 20)
    noisy = curve([4.0 + (0.02 if i % 2 else -0.02) for i in range(20)])  # 0.5% noise
    assert lc.compare(base, noisy, 20)["verdict"] == "match"
    offset = curve([4.1] * 20)  # 2.5% everywhere
    assert lc.compare(base, offset, 20)["verdict"] == "DIFFER"
    drift = curve([4.0] * 10 + [4.0 * 1.03] * 10)  # mean 1.5% but the last 10 steps 3% apart
    c = lc.compare(base, drift, 20)
    assert c["mean_rel_diff"] < 0.02 and c["last_rel_diff"] > 0.02 and c["verdict"] == "DIFFER"


def test_missing_or_nan_steps_are_incomplete_not_a_match(lc):
    base = curve([4.0] * 20)
    assert lc.compare(base, curve([4.0] * 19), 20)["verdict"].startswith("DIFFER")
    assert lc.compare(base, {**base, 5: float("nan")}, 20)["verdict"].startswith("DIFFER")
    assert lc.compare({}, base, 20)["complete"] is False


def test_tokenizer_and_rows_are_deterministic_and_fit(lc):
    text = lc.corpus_text()
    assert text == lc.corpus_text() and len(text) > 100_000  # the real prose, in a fixed order
    sample = text[:60_000]
    a, b = lc.train_tokenizer(sample, 300), lc.train_tokenizer(sample, 300)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    rows, passes = lc.text_rows(a, sample, 128, 12)
    assert rows == lc.text_rows(b, sample, 128, 12)[0] and passes == 1 and len(rows) == 12
    lengths = [len(a(r)["input_ids"]) + 1 for r in rows]  # BOS + text + EOS, as Danlu renders a document
    assert all(110 <= n <= 128 for n in lengths), lengths
    assert a(rows[0])["input_ids"][0] == a.bos_token_id and max(max(a(r)["input_ids"]) for r in rows) < 300


def test_real_rows_follow_the_drawn_lengths_and_the_lowest_stack_sets_its_plan(lc):
    """--rows real: each row as long as its drawn length (a word short at most), never past --seq,
    so packing joins several; danlu-lowest differs from danlu by the memory plan only."""
    sample = lc.corpus_text()[:60_000]
    tok = lc.train_tokenizer(sample, 300)
    drawn = [40, 300, 16, 90, 128]
    rows, _ = lc.text_rows(tok, sample, 128, 5, drawn)
    got = [len(tok(r)["input_ids"]) + 1 for r in rows]
    assert all(min(d, 128) - 12 <= n <= min(d, 128) for n, d in zip(got, drawn)), (got, drawn)
    args = type("A", (), dict(steps=2, mb=1, seq=128, lr=1e-4))()
    inputs = dict(view="/m", dataset="/d.jsonl")
    plain, lowest = lc.train_config(args, inputs, "danlu"), lc.train_config(args, inputs, "danlu-lowest")
    assert lowest.pop("memory_plan") == "lowest" and "memory_plan" not in plain
    assert {k: v for k, v in lowest.items() if k != "run_name"} == {k: v for k, v in plain.items() if k != "run_name"}
