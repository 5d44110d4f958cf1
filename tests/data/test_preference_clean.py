"""Preference pairs beyond loading: cleaning (dedupe by prompt, drop identical pairs, swap one row,
the text operations and truncate-long on both answers), versions with undo, the side-by-side
preview with the trained answers marked, and the review desk's view and search."""

import pytest

from core.data import apply_op, check_dataset, import_file, insight, load_examples, run_ops, undo
from core.data.render import load_tokenizer, pair_segments
from core.errors import InputError
from core.workspace import Workspace
from tests.data.helpers import chat, read_jsonl, write_jsonl


def pair(q: str, good: str = "A kind, complete answer.", bad: str = "No.") -> dict:
    return {"prompt": q, "chosen": good, "rejected": bad}


SHAREGPT = {"conversations": [{"from": "human", "value": "Q?"}], "chosen": {"from": "gpt", "value": "Good."},
            "rejected": {"from": "gpt", "value": "Bad."}}


def test_dedupe_by_prompt_keeps_the_first_pair_of_each_prompt(tmp_path):
    rows = [pair("Q1"), pair("Q2"), pair(" q1 ", "Another good one."), pair("Q3"), pair("Q2", bad="Nope.")]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    res = run_ops(src, [("dedupe-prompt", {})], tmp_path / "o.jsonl")
    assert res[0]["summary"] == "removed 2 pairs whose prompt an earlier pair already has (of 5)"
    assert [r["prompt"] for r in read_jsonl(tmp_path / "o.jsonl")] == ["Q1", "Q2", "Q3"]


def test_drop_identical_pairs_makes_the_file_usable(tmp_path):
    rows = [pair(f"Q{i}") for i in range(12)] + [pair("Q same", "Same text.", " Same text. ")]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(InputError):
        load_examples(src)
    res = run_ops(src, [("drop-identical", {})], tmp_path / "o.jsonl")
    assert res[0]["removed"] == 1 and "removed 1 pair whose two answers are the same" in res[0]["summary"]
    assert len(load_examples(tmp_path / "o.jsonl").examples) == 12


@pytest.mark.parametrize("row", [pair("Q"), SHAREGPT,
                                 {"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "Good."}],
                                  "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "Bad."}]}])
def test_swap_exchanges_the_answers_of_one_row_in_its_own_spelling(tmp_path, row):
    src = write_jsonl(tmp_path / "d.jsonl", [pair("first"), row])
    res = run_ops(src, [("swap", {"row": "2"})], tmp_path / "o.jsonl")
    assert res[0]["summary"] == "row 2: chosen and rejected swapped"
    out = read_jsonl(tmp_path / "o.jsonl")
    assert out[0] == pair("first") and out[1]["chosen"] == row["rejected"] and out[1]["rejected"] == row["chosen"]
    ex = load_examples(tmp_path / "o.jsonl").examples[1]
    assert ex["chosen"][0]["content"] in ("Bad.", "No.") and ex["rejected"][0]["content"] in ("Good.", "A kind, complete answer.")


def test_pair_operations_refuse_other_formats_in_plain_words(tmp_path):
    src = write_jsonl(tmp_path / "d.jsonl", [chat()])
    with pytest.raises(InputError) as e:
        run_ops(src, [("dedupe-prompt", {})], tmp_path / "o.jsonl")
    assert "preference pairs only" in str(e.value) and "messages" in str(e.value)


def test_text_operations_reach_both_answers_and_the_prompt(tmp_path):
    rows = [SHAREGPT | {"chosen": {"from": "gpt", "value": "  Good.  "}}, pair("  Q  ", "Mail a@b.co", "  No.")]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    res = run_ops(src, [("trim", {}), ("replace", {"find": "a@b.co", "with": "[EMAIL]", "role": "assistant"})],
                  tmp_path / "o.jsonl")
    out = read_jsonl(tmp_path / "o.jsonl")
    assert res[0]["changed"] == 2 and out[0]["chosen"]["value"] == "Good."
    assert out[1] == pair("Q", "Mail [EMAIL]", "No.")


def test_versions_and_undo_work_on_pairs(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    rows = [pair(f"Q{i}") for i in range(12)] + [pair("Q3", "Other.")]
    ds = import_file(ws, write_jsonl(tmp_path / "d.jsonl", rows), "d.jsonl", origin="shell")["id"]
    assert check_dataset(ws, ds)["format"] == "preference"
    r = apply_op(ws, ds, "dedupe-prompt", origin="shell")
    assert r["changed"] and r["dataset"]["version"] == 1 and check_dataset(ws, ds)["rows"] == 12
    s = apply_op(ws, ds, "swap", origin="shell", row=1)
    assert s["changed"] and s["dataset"]["version"] == 2
    u = undo(ws, ds)
    assert u["summary"].startswith("undid: row 1") and check_dataset(ws, ds)["rows"] == 12


def test_truncate_long_shortens_each_answer_that_is_too_long(home, tmp_path):
    ws = Workspace.open(home)
    rows = [pair("Q", "good " * 80, "bad " * 5), pair("Q2", "fine", "bad " * 80), pair("Q3", "ok", "no")]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    res = run_ops(src, [("truncate-long", {"max_seq_length": "48"})], tmp_path / "o.jsonl", model="builtin:danlu-tiny", ws=ws)
    assert res[0]["changed"] == 2 and res[0]["removed"] == 0
    out = read_jsonl(tmp_path / "o.jsonl")
    assert out[0]["rejected"] == "bad " * 5 and len(out[0]["chosen"]) < len("good " * 80)
    assert out[1]["chosen"] == "fine" and len(out[1]["rejected"]) < len("bad " * 80)
    res = run_ops(tmp_path / "o.jsonl", [("filter-long", {"max_seq_length": "48"})], tmp_path / "o2.jsonl",
                  model="builtin:danlu-tiny", ws=ws)
    assert res[0]["removed"] == 0


def test_the_pair_preview_marks_both_answers_and_never_the_prompt(home):
    tok = load_tokenizer("builtin:danlu-tiny", Workspace.open(home))
    ex = {"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "What is tea?"}],
          "chosen": [{"role": "assistant", "content": "Leaves in hot water."}],
          "rejected": [{"role": "assistant", "content": "Dunno."}]}
    for t in (tok, None):
        view = pair_segments(t, ex)
        prompt = "".join(s["text"] for s in view["prompt"])
        assert "What is tea?" in prompt and "Be kind." in prompt and not any(s["trained"] for s in view["prompt"])
        for side, words in (("chosen", "Leaves in hot water."), ("rejected", "Dunno.")):
            trained = "".join(s["text"] for s in view[side] if s["trained"])
            assert words in trained and "tea" not in "".join(s["text"] for s in view[side])
        if t is not None:
            conv = ex["prompt"] + ex["chosen"]
            assert prompt + "".join(s["text"] for s in view["chosen"]) == tok.apply_chat_template(conv, tokenize=False)


def test_insight_measures_the_longer_side_and_previews_a_pair(tmp_path):
    rows = [pair(f"Q{i}", "short", "a much longer rejected answer " * 10) for i in range(12)]
    ins = insight(write_jsonl(tmp_path / "d.jsonl", rows), preview=2, max_seq_length=32)
    assert ins["format"] == "preference" and ins["over_max"] == 12
    pv = ins["preview"]
    assert pv["line"] == 3 and set(pv["pair"]) >= {"prompt", "chosen", "rejected"}
    assert "Q2" in "".join(s["text"] for s in pv["pair"]["prompt"])


def test_review_desk_shows_both_answers_and_search_covers_them(tmp_path):
    from core.data.conversation import conversation
    from core.data.review import search_lines
    rows = [pair(f"Q{i}") for i in range(5)] + [pair("Q9", "Warm tea helps.", "Cold coffee never hurts.")]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    assert search_lines(src, "coffee") == [6] and search_lines(src, '"warm tea"') == [6]
    view = conversation(SHAREGPT, "preference", {})
    assert [(t["role"], t["text"]) for t in view["turns"]] == [("user", "Q?")]
    assert [(a["label"], a["turns"][0]["text"], a["turns"][0]["path"]) for a in view["answers"]] == \
        [("chosen", "Good.", "chosen.value"), ("rejected", "Bad.", "rejected.value")]
    mapped = conversation({"q": "Q", "good": "G", "bad": "B"}, "preference", {"prompt": "q", "chosen": "good", "rejected": "bad"})
    assert mapped["turns"][0]["text"] == "Q" and [a["turns"][0]["text"] for a in mapped["answers"]] == ["G", "B"]
