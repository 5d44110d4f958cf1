"""Cleaning operations: each result counted and said; nothing dropped silently (reliability.md E4, d.6)."""
import json

import pytest

from core.data import check_file, load_examples, run_ops
from core.errors import InputError
from tests.data.helpers import chat, read_jsonl, write_jsonl


def run(tmp_path, rows, ops, raw_lines=(), **kw):
    src = write_jsonl(tmp_path / "in.jsonl", rows, raw_lines)
    out = tmp_path / "out.jsonl"
    results = run_ops(src, ops, out, **kw)
    return results, out


def test_dedupe_exact_and_near(tmp_path):
    rows = [chat("What is tea?", "Leaves."), chat("What is tea?", "Leaves."), chat("what is TEA ?", "leaves"), chat("Other", "x")]
    res, out = run(tmp_path, rows, [("dedupe", {})])
    assert res[0]["summary"] == "removed 1 duplicate row (of 4)" and len(read_jsonl(out)) == 3
    res, out = run(tmp_path, rows, [("dedupe", {"near": "true"})])
    assert res[0]["summary"] == "removed 2 near-duplicate rows (of 4)" and len(read_jsonl(out)) == 2


def test_drop_empty_and_trim(tmp_path):
    rows = [chat("  padded  ", "\n answer \n"), chat("q", "   "), {"messages": [{"role": "user", "content": "q"}]}, chat("ok", "ok")]
    res, out = run(tmp_path, rows, [("drop-empty", {}), ("trim", {})])
    assert res[0]["summary"].startswith("dropped 1 row with missing or empty text")
    assert res[1]["summary"] == "trimmed spaces in 2 texts in 1 row (of 3)"
    assert read_jsonl(out)[0] == chat("padded", "answer")


def test_drop_invalid_counts_every_reason_including_unreadable_lines(tmp_path):
    rows = [chat(), chat("q", "   "), {"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}]
    res, out = run(tmp_path, rows, [("drop-invalid", {})], raw_lines=["{not json", '{"text": NaN}'])
    s = res[0]["summary"]
    assert s.startswith("dropped 4 rows with problems") and "2 unreadable" in s and "1 empty text" in s and "1 unknown role" in s
    assert s.endswith("(of 5)") and read_jsonl(out) == [chat()]


def test_unreadable_rows_refuse_other_ops(tmp_path):
    with pytest.raises(InputError, match="run drop-invalid first") as e:
        run(tmp_path, [chat()], [("trim", {})], raw_lines=["{bad"])
    assert "in.jsonl:2" in str(e.value)
    assert not (tmp_path / "out.jsonl").exists()


def test_merge_same_role_turns(tmp_path):
    rec = {"messages": [{"role": "user", "content": "Hi."}, {"role": "user", "content": "Are you there?"},
                        {"role": "assistant", "content": "Yes."}]}
    res, out = run(tmp_path, [rec, chat()], [("merge-turns", {})])
    assert res[0]["summary"] == "merged 1 same-role turn in 1 row (of 2)"
    assert read_jsonl(out)[0]["messages"][0]["content"] == "Hi.\n\nAre you there?"
    assert check_file(out).ok


def test_replace_literal_regex_and_role(tmp_path):
    rows = [chat("colour? (a.b)", "The colour is red. colour!")]
    res, out = run(tmp_path, rows, [("replace", {"find": "colour", "with": "color"})])
    assert res[0]["summary"] == "replaced 3 occurrences in 1 row (of 1)"
    res, out = run(tmp_path, rows, [("replace", {"find": "colour", "with": "color", "role": "assistant"})])
    assert read_jsonl(out)[0]["messages"][0]["content"] == "colour? (a.b)"
    res, out = run(tmp_path, rows, [("replace", {"find": "(a.b)", "with": r"\1"})])  # literal: no regex, no backrefs
    assert read_jsonl(out)[0]["messages"][0]["content"] == r"colour? \1"
    res, out = run(tmp_path, rows, [("replace", {"find": r"col(ou)r", "with": r"[\1]", "regex": "true"})])
    assert read_jsonl(out)[0]["messages"][1]["content"] == "The [ou] is red. [ou]!"


def test_edit_and_delete_rows(tmp_path):
    rows = [chat(f"q{i}") for i in range(4)]
    res, out = run(tmp_path, rows, [("edit", {"row": 2, "record": json.dumps(chat("fixed", "yes"))}), ("delete", {"rows": "4"})])
    assert [r["summary"] for r in res] == ["row 2 changed", "deleted 1 row"]
    assert [r["messages"][0]["content"] for r in read_jsonl(out)] == ["q0", "fixed", "q2"]
    with pytest.raises(InputError, match="not valid JSON"):
        run(tmp_path, rows, [("edit", {"row": 1, "record": "{oops"})])


@pytest.mark.parametrize("op", ["edit", "swap"])
def test_an_edit_or_swap_of_a_row_that_is_not_there_is_refused_and_writes_nothing(tmp_path, op):
    """`clean edit row=99999999999` said "row ... not found; nothing changed" as its summary, wrote the
    file unchanged and exited 0, as if it had worked (a swap too): it is refused, naming the row and
    how many rows there are."""
    if op == "edit":
        rows, params = [chat(f"q{i}") for i in range(3)], {"record": json.dumps(chat("fixed", "yes"))}
    else:
        rows, params = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(3)], {}
    for row in (4, 99999999999):
        with pytest.raises(InputError) as e:
            run(tmp_path, rows, [("trim", {}), (op, {"row": row, **params})])
        (problem,) = e.value.problems
        assert problem.where == f"{op} row" and f"row {row} not found (the file has 3 rows)" in problem.message
        assert problem.hint == "give a row number from 1 to 3" and not (tmp_path / "out.jsonl").exists()


def test_a_delete_naming_a_row_that_is_not_there_is_refused_and_writes_nothing(tmp_path):
    """`clean delete rows=3,99` on a 5-row file deleted row 3, said "1 row number(s) not found" as its
    summary and wrote the file: it is refused as an edit of such a row is, each missing row named."""
    rows = [chat(f"q{i}") for i in range(5)]
    with pytest.raises(InputError) as e:
        run(tmp_path, rows, [("delete", {"rows": "3, 99; 100"})])
    assert [(p.where, p.message, p.hint) for p in e.value.problems] == [
        ("delete rows", f"row {r} not found (the file has 5 rows); nothing changed", "give a row number from 1 to 5") for r in (99, 100)]
    assert not (tmp_path / "out.jsonl").exists()
    res, out = run(tmp_path, rows, [("delete", {"rows": "3,5"})])
    assert res[0]["summary"] == "deleted 2 rows" and [r["messages"][0]["content"] for r in read_jsonl(out)] == ["q0", "q1", "q3"]


def test_a_replacement_that_makes_a_row_too_long_is_refused_and_writes_nothing(tmp_path, monkeypatch):
    """An edit past the readers' 8 MiB is refused, but a replacement could grow a row past it (3 MB of
    "a" replaced by "aaa"): the version held a row every later read found unreadable. A redaction
    ("[NAME]" for each "Al") grows rows too."""
    from core.data import ops
    rows = [chat("short", "a b"), chat("q", "a" * 3_000_000)]
    with pytest.raises(InputError) as e:
        run(tmp_path, rows, [("replace", {"find": "a", "with": "aaa"})])
    (problem,) = e.value.problems
    assert problem.where == "replace (row 2)" and problem.message == "the record is 8.58 MB; the limit is 8 MB"
    assert "nothing was replaced" in problem.hint and not (tmp_path / "out.jsonl").exists()
    res, out = run(tmp_path, rows, [("replace", {"find": "a b", "with": "a bit longer"})])  # under the limit: done
    assert res[0]["changed"] == 1 and read_jsonl(out)[0]["messages"][1]["content"] == "a bit longer"
    out.unlink()
    monkeypatch.setattr(ops, "MAX_RECORD_BYTES", 200)
    rows = [chat("Al " * 10, "fine"), chat("Al " * 40, "fine")]
    with pytest.raises(InputError) as e:
        run(tmp_path, rows, [("redact", {"kinds": "", "names": "Al"})])
    assert [p.where for p in e.value.problems] == ["redact (row 2)"] and not (tmp_path / "out.jsonl").exists()


def test_an_edit_with_a_number_too_long_to_read_is_refused_in_words(tmp_path):
    """An edited row holding a number of 5,000 digits: Python will not read it (ValueError), so the edit
    must say so, never write the row with something else in the number's place."""
    rows = [chat(f"q{i}") for i in range(2)]
    edit = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "n": %s}' % ("9" * 5000)
    with pytest.raises(InputError) as e:
        run(tmp_path, rows, [("edit", {"row": 1, "record": edit})])
    (problem,) = e.value.problems
    assert problem.where == "edit record" and "holds a number of 5,000 digits" in problem.message and "quotes" in problem.hint


def test_split_matches_fraction_and_flags_leaks(tmp_path):
    rows = [chat(f"q{i}", f"a{i}") for i in range(50)] + [chat("q0", "a0")] * 5
    res, out = run(tmp_path, rows, [("split", {"val_fraction": "0.2", "seed": "1"})])
    val = tmp_path / "out.validation.jsonl"
    assert len(read_jsonl(out)) == 44 and len(read_jsonl(val)) == 11
    assert "into 44 for training and 11 for validation" in res[0]["summary"]
    got = {json.dumps(r, sort_keys=True) for r in read_jsonl(out) + read_jsonl(val)}
    assert got == {json.dumps(r, sort_keys=True) for r in rows}
    res, _ = run(tmp_path, rows, [("dedupe", {}), ("split", {"val_fraction": "0.2"})])
    assert "also appear in training" not in res[1]["summary"]


def test_filter_and_truncate_long_rows(home, tmp_path):
    from core.workspace import Workspace
    ws = Workspace.open(home)
    rows = [chat(f"q{i}", "short") for i in range(5)] + [chat("q", "word " * 400), chat("word " * 400, "a")]
    res, out = run(tmp_path, rows, [("filter-long", {"max_seq_length": "64"})], model="builtin:danlu-tiny", ws=ws)
    assert res[0]["summary"].startswith("dropped 2 rows longer than 64 tokens (of 7)") and len(read_jsonl(out)) == 5
    res, out = run(tmp_path, rows, [("truncate-long", {"max_seq_length": "64"})], model="builtin:danlu-tiny", ws=ws)
    assert "shortened the answer of 1 row" in res[0]["summary"] and "dropped 1 whose question alone is too long" in res[0]["summary"]
    kept = read_jsonl(out)
    assert len(kept) == 6 and kept[5]["messages"][1]["content"].startswith("word word")
    from core.data.render import load_tokenizer, render
    tok = load_tokenizer("builtin:danlu-tiny", ws)
    assert all(len(render(tok, ex).ids) <= 64 for ex in load_examples(out).examples)


def test_long_ops_need_a_model_and_bad_names_are_listed(tmp_path):
    with pytest.raises(InputError) as e:
        run(tmp_path, [chat()], [("filter-long", {}), ("polish", {}), ("split", {}), ("trim", {"x": 1})])
    text = str(e.value)
    assert "needs a model" in text and "polish" in text and "must be the last" in text and "trim x" in text


def test_csv_input_keeps_its_columns(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("Question,Answer\n what? , because \nwhat?,because\n")
    out = tmp_path / "out.jsonl"
    res = run_ops(src, [("trim", {}), ("dedupe", {})], out)
    assert [r["summary"] for r in res] == ["trimmed spaces in 2 texts in 1 row (of 2)", "removed 1 duplicate row (of 2)"]
    assert read_jsonl(out) == [{"Question": "what?", "Answer": "because"}]


HUGE = "9" * 5000  # past Python's 4,300 digits for reading text as a whole number


@pytest.mark.parametrize("op,params,said", [
    ("split", {"seed": HUGE}, "seed: 9999"),
    ("split", {"seed": "-" + HUGE}, "seed: -9999"),
    ("split", {"val_fraction": HUGE}, "val_fraction: 9999"),
    ("delete", {"rows": HUGE}, "rows: 9999"),
    ("edit", {"row": HUGE, "record": "{}"}, "row: 9999"),
    ("filter-long", {"max_seq_length": HUGE}, "max_seq_length: 9999"),
])
def test_a_parameter_of_5000_digits_is_out_of_its_bounds_quoted_short(tmp_path, op, params, said):
    """`clean ... split seed=999...` (5,000 digits) was "'999...' is not a whole number", the whole value
    echoed: it is a whole number, out of the parameter's bounds, and a message quotes it short."""
    with pytest.raises(InputError) as e:
        run(tmp_path, [chat()], [(op, params)])
    text = str(e.value)
    assert said in text and "(5,00" in text and "characters)" in text and len(text) < 400, text[:500]
    assert "not a whole number" not in text and "not a number" not in text
    assert ("too small" if "-" + HUGE in params.values() else "out of range") in text


@pytest.mark.parametrize("value,said", [("NaN", "contains NaN, which is not valid JSON"), ("Infinity", "contains Infinity"),
                                        ('"a", "n": "b"', 'the key "n" appears twice in one object')])
def test_an_edit_with_nan_or_a_key_twice_is_refused_in_words(tmp_path, value, said):
    """A row of the file with NaN, Infinity or a key twice is a problem of that row; an edited row with them was
    written into the new version (Python's json takes NaN and keeps the last of two keys)."""
    rows = [chat(f"q{i}") for i in range(2)]
    edit = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "n": %s}' % value
    with pytest.raises(InputError) as e:
        run(tmp_path, rows, [("edit", {"row": 1, "record": edit})])
    (problem,) = e.value.problems
    assert problem.where == "edit record" and said in problem.message and problem.hint, str(e.value)
