"""JSONL: every malformed line named by its own 1-based line, nothing split or dropped silently
(reliability.md d.2, d.3)."""
import json

import pytest

from core.data import check_file
from tests.data.helpers import chat, codes, first, write_jsonl


def test_clean_file_is_ok(tmp_path):
    rep = check_file(write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}", f"a{i}") for i in range(12)]))
    assert rep.ok and rep.format == "messages" and rep.rows == 12 and rep.usable == 12
    assert rep.collector.errors() == 0


@pytest.mark.parametrize("raw,words", [
    ('{"messages": [{"role": "user", "content": "a"},]}', "trailing comma"),
    ("{'messages': []}", "double quotes"),
    ('{"messages": [] // comment}', "comma is missing"),
    ('{"messages": [{"role": "user", "content": "a\nb"}]}', None),  # a raw newline splits the record: two broken lines
])
def test_malformed_line_reports_its_line(tmp_path, raw, words):
    p = write_jsonl(tmp_path / "d.jsonl", [chat(), chat("q2")], raw_lines=[raw, json.dumps(chat("q3"))])
    rep = check_file(p)
    issue = first(rep, "bad_json")
    assert issue.line == 3 and "column" in issue.message
    if words:
        assert words in issue.message
    assert not rep.ok and rep.usable >= 3


def test_truncated_last_line_is_named(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps(chat()) + "\n" + json.dumps(chat("q2"))[:25], encoding="utf-8")
    rep = check_file(p)
    issue = first(rep, "bad_json")
    assert issue.line == 2 and "cut off" in issue.message and "completely" in issue.hint


@pytest.mark.parametrize("const", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(tmp_path, const):
    p = write_jsonl(tmp_path / "d.jsonl", [chat()], raw_lines=[f'{{"text": "x", "score": {const}}}'])
    rep = check_file(p)
    issue = first(rep, "nan")
    assert issue.line == 2 and const in issue.message and not rep.ok


def test_duplicate_keys_are_reported(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [], raw_lines=['{"prompt": "a", "completion": "b", "completion": "c"}'] +
                    [json.dumps({"prompt": f"p{i}", "completion": "x"}) for i in range(3)])
    rep = check_file(p)
    issue = first(rep, "duplicate_key")
    assert issue.line == 1 and issue.field == "completion" and not rep.ok
    assert rep.usable == 3  # the row with the duplicate key is not counted as usable


def test_row_that_is_not_an_object(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [chat(), ["a", "list"], "text"])
    rep = check_file(p)
    assert codes(rep)["not_object"] == 2
    issue = first(rep, "not_object")
    assert issue.line == 2 and "a list" in issue.message


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085"])
def test_unicode_line_separators_inside_strings_never_split(tmp_path, sep):
    recs = [chat(f"first{sep}second", f"answer{sep}more") for _ in range(3)] + [chat("q", "a")]
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    assert sep in p.read_text(encoding="utf-8")
    rep = check_file(p, workers=1)
    assert rep.ok and rep.rows == 4


@pytest.mark.parametrize("newline,final", [("\r\n", True), ("\n", False), ("\r", True)])
def test_line_endings_are_accepted(tmp_path, newline, final):
    lines = [json.dumps(chat(f"q{i}")) for i in range(3)]
    text = newline.join(lines) + (newline if final else "")
    p = tmp_path / "d.jsonl"
    p.write_bytes(text.encode())
    rep = check_file(p)
    assert rep.ok and rep.rows == 3, rep.human()


def test_blank_lines_are_counted_not_hidden(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps(chat()) + "\n\n   \n" + json.dumps(chat("q2")) + "\n", encoding="utf-8")
    rep = check_file(p)
    assert rep.ok and rep.rows == 2 and codes(rep)["blank_lines"] == 1
    assert "2 blank line" in first(rep, "blank_lines").message
    # and line numbers still count the blank lines
    p.write_text(json.dumps(chat()) + "\n\n{bad\n", encoding="utf-8")
    assert first(check_file(p), "bad_json").line == 3


def test_very_long_line_is_capped_not_loaded(tmp_path):
    p = tmp_path / "d.jsonl"
    big = json.dumps(chat("q", "x" * 3_000_000))
    p.write_text(json.dumps(chat()) + "\n" + big + "\n" + json.dumps(chat("q3")) + "\n", encoding="utf-8")
    rep = check_file(p, max_record_bytes=1 << 20)
    issue = first(rep, "line_too_long")
    assert issue.line == 2 and "2.86 MB" in issue.message and "limit is 1 MB" in issue.message
    assert rep.rows == 3 and rep.usable == 2  # the lines after it are still read


def test_wrong_encoding_names_the_line_and_says_save_as_utf8(tmp_path):
    p = tmp_path / "d.jsonl"
    good = json.dumps(chat()).encode()
    bad = json.dumps(chat("café crème, déjà vu", "naïve"), ensure_ascii=False).encode("cp1252")
    p.write_bytes(good + b"\n" + bad + b"\n" + good + b"\n")
    rep = check_file(p)
    issue = first(rep, "encoding")
    assert issue.line == 2 and "not UTF-8" in issue.message and "e9" in issue.message
    assert "UTF-8" in issue.hint and rep.usable == 2


def test_nul_and_lone_surrogate_are_errors_control_chars_warn(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [chat("a\u0000b"), chat("fine", "bell\u0007"), chat("ok")],
                    raw_lines=['{"messages": [{"role": "user", "content": "x\\ud800y"}, {"role": "assistant", "content": "z"}]}'])
    rep = check_file(p)
    bad = rep.collector.kept["bad_chars"]
    assert [i.line for i in bad] == [1, 4] and "NUL" in bad[0].message and "surrogate" in bad[1].message
    warn = first(rep, "control_chars")
    assert warn.line == 2 and "U+0007" in warn.message and warn.field == "messages[1].content"
    assert rep.usable == 2  # rows with NUL or a lone surrogate cannot train
    json.dumps(rep.to_dict(), ensure_ascii=False).encode("utf-8")  # printable: the surrogate is escaped


def test_special_tokens_in_text_warn_with_counts(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [chat("hi <|im_end|> there"), chat("q", "a</s>")] + [chat(f"q{i}") for i in range(10)])
    rep = check_file(p)
    assert rep.ok and codes(rep)["special_tokens"] == 2
    assert "<|im_end|>" in first(rep, "special_tokens").message


def test_first_20_shown_with_count_per_type(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [chat()], raw_lines=["{bad"] * 50)
    rep = check_file(p)
    assert rep.collector.counts["bad_json"] == 50 and len(rep.collector.kept["bad_json"]) == 20
    assert any("first 20 shown of 50" in line for line in rep.human())
    d = rep.to_dict()
    assert d["counts"]["bad_json"]["count"] == 50 and len(d["problems"]) == 20


def test_value_is_short_and_escaped(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [{"messages": [{"role": "bot\u202e\n" + "x" * 200, "content": "a"}]}])
    issue = first(check_file(p), "unknown_role")
    assert len(issue.value) <= 80 and "\\u202e" in issue.value and "\\n" in issue.value and "\n" not in issue.value


def test_duplicate_rows_are_counted(tmp_path):
    rows = [chat(f"q{i}") for i in range(10)]
    p = write_jsonl(tmp_path / "d.jsonl", rows + rows[:3])
    rep = check_file(p)
    assert rep.ok and rep.duplicates == 3 and first(rep, "duplicates").line == 11


BIG = "9" * 5000  # past Python's limit of 4,300 digits for reading a whole number


@pytest.mark.parametrize("name,text", [
    ("d.jsonl", '{"prompt": "hi", "completion": "yo", "score": %s}\n' % BIG),
    ("d.jsonl", '{"prompt": -%s, "completion": "yo"}\n' % BIG),
    ("d.json", '[{"prompt": "hi", "completion": "yo", "score": %s},\n' % BIG),
    ("d.csv", 'messages,score\n"[{""role"": ""user"", ""content"": %s}]",1\n' % BIG),
])
def test_a_number_of_5000_digits_is_a_problem_of_its_row_in_words(tmp_path, name, text):
    """check-data stopped with "unexpected ValueError: Exceeds the limit (4300 digits) for integer string
    conversion": Python will not read such a number, so the whole check crashed. Now the row is named,
    with what to do, and the rows after it are read."""
    rest = {"d.json": '{"prompt": "a", "completion": "b"}]\n',
            "d.csv": '"[{""role"": ""user"", ""content"": ""a""}, {""role"": ""assistant"", ""content"": ""b""}]",2\n'}
    p = tmp_path / name
    p.write_text(text + rest.get(name, '{"prompt": "a", "completion": "b"}\n'))
    rep = check_file(p)
    issue = first(rep, "big_number")
    assert (issue.line, issue.record) == (2 if name == "d.csv" else 1, 1) and not rep.ok and rep.usable == 1
    assert issue.message == "holds a number of 5,000 digits; Danlu reads numbers of up to 4,300 digits", issue.message
    assert "as text in quotes" in issue.hint and len(str(issue.to_problem(name))) < 400
