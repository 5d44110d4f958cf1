"""CSV/TSV (record number + starting line, text kept verbatim) and JSON arrays/objects
(reliability.md d.3, d.4)."""
import json

import pytest

from core.data import check_file, load_examples
from tests.data.helpers import chat, codes, first


def csv_file(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8", newline="")
    return p


def test_quoted_newlines_give_record_and_starting_line(tmp_path):
    body = 'prompt,completion\n"line one\nline two",answer\n"q2","multi\nline\nanswer"\nq3,\n'
    rep = check_file(csv_file(tmp_path, body))
    issue = first(rep, "empty_text")
    assert (issue.record, issue.line, issue.field) == (3, 7, "completion")
    assert issue.human("d.csv").startswith("d.csv:7 (record 3) completion: is empty")


def test_ragged_rows_are_named(tmp_path):
    body = "prompt,completion\nq1,a1\nq2,a2,extra\nq3\nq4,a4,\n"
    rep = check_file(csv_file(tmp_path, body))
    ragged = rep.collector.kept["ragged"]
    assert [(i.record, i.line) for i in ragged] == [(2, 3), (3, 4)]
    assert "has 3 fields, the header has 2" in ragged[0].message
    assert rep.usable == 2  # a trailing empty cell (q4,a4,) is harmless


def test_unbalanced_quote(tmp_path):
    body = 'prompt,completion\nq1,a1\n"q2 never closed,a2\nq3,a3\n'
    rep = check_file(csv_file(tmp_path, body))
    issue = first(rep, "ragged")
    assert issue.line == 3 and "quote" in issue.hint


@pytest.mark.parametrize("literal", ["NA", "N/A", "None", "null", "NaN", "n/a", "007", "1e5", "TRUE", "-"])
def test_na_and_numeric_looking_text_survive_verbatim(tmp_path, literal):
    body = "prompt,completion\n" + "".join(f"q{i},{literal}\n" for i in range(10))
    loaded = load_examples(csv_file(tmp_path, body))
    assert [m["content"] for m in loaded.examples[0]["messages"]] == ["q0", literal]


def test_semicolon_and_tab_and_messages_column(tmp_path):
    rep = check_file(csv_file(tmp_path, "prompt;completion\n" + "".join(f"q{i};a, b {i}\n" for i in range(10))))
    assert rep.ok and rep.delimiter == ";" and rep.kind == "csv"
    rep = check_file(csv_file(tmp_path, "prompt\tcompletion\n" + "".join(f"q{i}\ta{i}\n" for i in range(10)), "d.tsv"))
    assert rep.ok and rep.kind == "tsv"
    cell = json.dumps(chat()["messages"]).replace('"', '""')
    rep = check_file(csv_file(tmp_path, "id,messages\n" + "".join(f'{i},"{cell}"\n' for i in range(10))))
    assert rep.ok and rep.format == "messages"


def test_header_problems(tmp_path):
    rep = check_file(csv_file(tmp_path, "prompt ,completion,completion,\n" + "q,a,b,c\n" * 10))
    assert first(rep, "header").message.startswith('the column name "completion" appears twice')
    assert codes(rep)["header_spaces"] == 1 and not rep.ok
    assert any("no name" in i.message for i in rep.collector.kept["ignored_columns"])


def test_question_answer_columns_are_mapped_and_said(tmp_path):
    p = csv_file(tmp_path, "Question,Answer,id\n" + "".join(f"q{i},a{i},{i}\n" for i in range(10)))
    rep = check_file(p)
    assert rep.ok and rep.format == "prompt_completion" and rep.column_map == {"prompt": "Question", "completion": "Answer"}
    assert "column 'Question' as prompt" in first(rep, "column_guess").message
    assert "'id'" in first(rep, "ignored_columns").message
    # an explicit mapping wins, and training uses the same mapping
    loaded = load_examples(p, "prompt_completion", {"prompt": "Answer", "completion": "Question"})
    assert loaded.examples[0]["messages"][0]["content"] == "a0"


def test_unknown_columns_explain_mapping(tmp_path):
    rep = check_file(csv_file(tmp_path, "foo,bar\n1,2\n"))
    issue = first(rep, "unknown_format")
    assert "'foo'" in issue.message and "column_map" in issue.hint and not rep.ok


def test_json_array_gives_each_record_its_line(tmp_path):
    recs = [chat(f"q{i}") for i in range(12)]
    recs[4]["messages"][1]["role"] = "robot"
    p = tmp_path / "d.json"
    p.write_text(json.dumps(recs, indent=2))
    rep = check_file(p)
    issue = first(rep, "unknown_role")
    text = p.read_text().splitlines()
    assert issue.record == 5 and text[issue.line - 1] == "  {"
    assert sum(1 for ln in text[:issue.line] if ln == "  {") == 5


def test_json_object_forms(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"version": 1, "data": [chat(f"q{i}") for i in range(12)]}, indent=1))
    rep = check_file(p)
    assert rep.ok and rep.rows == 12 and rep.problems() == []
    p.write_text(json.dumps({f"id{i}": {"prompt": f"p{i}", "completion": "c"} for i in range(12)}))
    assert check_file(p).rows == 12
    p.write_text(json.dumps(chat(), indent=2))
    assert check_file(p).rows == 1


def test_an_object_of_records_is_read_like_an_array_of_them(tmp_path):
    """{"id1": {...}, "id2": {...}}: its records were taken from the whole object, with no line, no
    per-record cap (a record of 8 MB or more was read here and refused in every other shape) and a key
    twice keeping its last value silently."""
    p = tmp_path / "d.json"
    recs = {f"id{i}": {"text": f"row {i}"} for i in range(12)}
    recs["id3"] = {"text": "x" * 10_000}
    p.write_text(json.dumps(recs, indent=1))
    rep = check_file(p, max_record_bytes=4096)
    text = p.read_text().splitlines()
    big = first(rep, "line_too_long")
    assert big.record == 4 and text[big.line - 1] == ' "id3": {' and "the limit is 4 KB" in big.message, rep.human()
    assert rep.rows == 12 and rep.usable == 11
    p.write_text('{"a": {"text": "one"},\n "b": {"text": "two", "text": "three"},\n "c": {"text": NaN}}')
    rep = check_file(p)
    assert (first(rep, "duplicate_key").line, first(rep, "duplicate_key").record) == (2, 2)
    assert (first(rep, "nan").line, first(rep, "nan").record) == (3, 3), rep.human()


@pytest.mark.parametrize("text,words,line", [
    ('[\n {"text": "a"},\n {"text": "b"},\n]\n', "trailing comma", 4),
    ('[\n {"text": "a"},\n {"text": "b"\n', "ends in the middle", 3),
    ('[\n {"text": "a"}\n {"text": "b"}\n]', "expected a comma", 3),
    ('[\n {"text": "a", "x": NaN}\n]', "NaN", 2),
])
def test_json_array_errors_name_the_line(tmp_path, text, words, line):
    p = tmp_path / "d.json"
    p.write_text(text)
    rep = check_file(p)
    issue = rep.problems()[0]
    assert words in issue.message and issue.line == line, rep.human()


def test_json_array_streams_across_chunks(tmp_path, monkeypatch):
    from core.data import read_json
    monkeypatch.setattr(read_json, "CHUNK", 64)  # force many refills, records straddling them
    recs = [chat(f"question {i} " * 5, "answer " * (i % 7 + 1)) for i in range(40)]
    recs[33]["messages"][1]["content"] = ""
    p = tmp_path / "d.json"
    text = json.dumps(recs, indent=1)
    text = text[:-2] + ',\n {"text": "a", "text": "b"}\n]'  # a duplicate key straddling refills: reported once
    p.write_text(text)
    rep = check_file(p)
    assert rep.rows == 41 and first(rep, "empty_text").record == 34
    assert codes(rep)["duplicate_key"] == 1 and first(rep, "duplicate_key").record == 41


def test_parquet_nested_messages_and_bad_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    rows = [chat(f"q{i}") for i in range(3000)]
    rows[2500]["messages"][1]["content"] = " "
    p = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), p, row_group_size=1000)
    rep = check_file(p)
    issue = first(rep, "empty_text")
    assert rep.rows == 3000 and issue.record == 2501 and issue.line is None  # counted across row groups
    assert issue.human("d.parquet").startswith("d.parquet record 2501 messages[1].content")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1" + b"\x00" * 100)
    rep = check_file(bad)
    assert not rep.ok and "not a valid Parquet file" in rep.problems()[0].message


def test_parquet_non_text_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import datetime
    import pyarrow.parquet as pq
    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"prompt": ["q"] * 10, "completion": [datetime.datetime(2024, 1, 1)] * 10}), p)
    issue = first(check_file(p), "wrong_type")
    assert issue.field == "completion" and "datetime" in issue.message


def test_xlsx_cells_read_as_text_with_a_count(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["prompt", "completion"])
    for i in range(10):
        ws.append([f"how many {i}?", i * 1.0])
    ws.append([None, None])
    wb.create_sheet("notes")
    p = tmp_path / "d.xlsx"
    wb.save(p)
    rep = check_file(p)
    assert rep.ok and rep.rows == 10
    assert "10 spreadsheet cell(s)" in first(rep, "coerced").message
    assert any("only the first sheet" in i.message for i in rep.collector.kept["ignored_columns"])
    assert load_examples(p).examples[3]["messages"][1]["content"] == "3"


def test_json_cells_only_in_conversation_columns(tmp_path):
    turns = json.dumps(chat()["messages"]).replace('"', '""')
    p = csv_file(tmp_path, "Conversation\n" + "".join(f'"{turns}"\n' for _ in range(10)))
    rep = check_file(p)
    assert rep.ok and rep.format == "messages" and rep.column_map == {"messages": "Conversation"}
    p = csv_file(tmp_path, "prompt,completion\n" + "".join('q,"[{""a"": 1}]"\n' for _ in range(10)))
    assert load_examples(p).examples[0]["messages"][1]["content"] == '[{"a": 1}]'


def test_u2028_in_csv_cells_does_not_split(tmp_path):
    p = csv_file(tmp_path, "prompt,completion\n" + "".join(f"q{i}\u2028more,a\u2029b\u0085c\n" for i in range(10)))
    rep = check_file(p)
    assert rep.ok and rep.rows == 10


@pytest.mark.parametrize("cell,code,words,usable", [
    ('[{""role"": ""user"", ""content"": ""q"", ""score"": NaN}, {""role"": ""assistant"", ""content"": ""a""}]',
     "nan", "contains NaN, which is not valid JSON", 1),
    ('[{""role"": ""user"", ""content"": ""q"", ""w"": -Infinity}, {""role"": ""assistant"", ""content"": ""a""}]',
     "nan", "contains -Infinity", 1),
    ('[{""role"": ""user"", ""role"": ""assistant"", ""content"": ""q""}, {""role"": ""assistant"", ""content"": ""a""}]',
     "duplicate_key", 'the key "role" appears twice', 1),
])
def test_nan_and_a_key_twice_in_a_conversation_cell_are_problems_of_the_row(tmp_path, cell, code, words, usable):
    """A JSONL row with NaN or a key twice is a problem of its row; the same in a CSV cell of a conversation
    column was read silently (Python's json takes NaN and keeps the last of two keys)."""
    p = tmp_path / "d.csv"
    good = '"[{""role"": ""user"", ""content"": ""b""}, {""role"": ""assistant"", ""content"": ""c""}]"'
    p.write_text(f'messages,n\n"{cell}",1\n{good},2\n')
    rep = check_file(p)
    issue = first(rep, code)
    assert (issue.line, issue.record) == (2, 1) and words in issue.message and not rep.ok, rep.human()
    assert rep.usable == usable, rep.human()


def test_nan_and_infinity_in_parquet_are_problems_of_their_row(tmp_path):
    """pandas writes a missing number as NaN: such a Parquet row was read silently, and cleaning wrote NaN
    into the new version (JSONL), which the check then refused. The row is a problem of its own now, named
    with its record and column, as NaN in a JSONL row is; a missing value (null) is no problem."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    n = 12
    score = [float("nan"), float("-inf")] + [1.0] * (n - 3) + [None]
    extra = [[{"w": 1.0}]] * 5 + [[{"w": float("inf")}]] + [[{"w": 2.0}]] * (n - 6)
    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"prompt": [f"q{i}" for i in range(n)], "completion": ["a"] * n, "score": score,
                             "extra": extra}), p)
    rep = check_file(p)
    found = sorted((i.record, i.field, i.message) for i in rep.problems() if i.code == "nan")
    assert found == [(1, "score", "contains NaN, which is not valid JSON"), (2, "score", "contains -Infinity, which is not valid JSON"),
                     (6, "extra", "contains Infinity, which is not valid JSON")], rep.human()
    assert rep.usable == n - 3 and not rep.ok and "fillna" in rep.problems()[0].hint
