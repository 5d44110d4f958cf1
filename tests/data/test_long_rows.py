"""Rows longer than the sniffer's window (long-context data): the file is read as what it is,
whatever the row length, line ending, BOM or encoding (issue 20: a .jsonl whose first row was
longer than 64 KB was taken for one JSON document, "1 row (text)" and "more data after the end")."""
import codecs
import json

import pytest

from core.data import check_file
from core.data.sniff import HEAD_BYTES, sniff
from tests.data.helpers import codes, first

LONG = HEAD_BYTES + 33_000   # ~98 KB: longer than the window the sniffer reads first


def texts(n: int = 3, chars: int = LONG) -> list[dict]:
    # distinct rows (no duplicate warnings); 中 makes some characters multi-byte
    return [{"text": (f"row {i} 中 " + "word " * (chars // 5))[:chars]} for i in range(n)]


def jsonl(rows, newline: str = "\n") -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + newline for r in rows)


def ok_rows(rep, n: int, kind: str = "jsonl"):
    assert rep.kind == kind, rep.human()
    assert rep.rows == n and rep.usable == n and rep.collector.errors() == 0, rep.human()


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_long_first_rows_are_json_lines(tmp_path, newline):
    p = tmp_path / "long.jsonl"
    p.write_bytes(jsonl(texts(), newline).encode())
    assert sniff(p).kind == "jsonl"
    rep = check_file(p)
    ok_rows(rep, 3)
    assert rep.format == "text"
    assert "bad_json" not in codes(rep)


@pytest.mark.parametrize("enc,bom", [("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE),
                                     ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-16-le", b"")])
def test_long_rows_with_bom_and_utf16(tmp_path, enc, bom):
    p = tmp_path / "long.jsonl"
    p.write_bytes(bom + jsonl(texts(), "\r\n").encode(enc))
    ok_rows(check_file(p), 3)


def test_leading_and_inner_blank_lines(tmp_path):
    rows = texts()
    p = tmp_path / "long.jsonl"
    p.write_text("\n  \n" + jsonl(rows[:1]) + "\n\n" + jsonl(rows[1:]) + "\n")
    rep = check_file(p)
    ok_rows(rep, 3)
    assert [ex["text"] for ex in check_file(p, collect=True).examples] == [r["text"] for r in rows]


def test_one_long_row_alone(tmp_path):
    p = tmp_path / "one.jsonl"
    p.write_text(jsonl(texts(1)) + "\n\n")
    rep = check_file(p)
    assert rep.rows == 1 and rep.usable == 1 and rep.collector.errors() == 0, rep.human()


def test_row_longer_than_any_window_is_named_and_the_rest_read(tmp_path, monkeypatch):
    """A first row longer than the sniffer's line cap and the reader's record cap: the rows after
    it are still read as JSON Lines, the long one is named by its line."""
    from core.data import sniff as S
    monkeypatch.setattr(S, "LINE_CAP", 4096)
    rows = texts(1, 20_000) + texts(4, 200)
    p = tmp_path / "huge.jsonl"
    p.write_text(jsonl(rows))
    assert sniff(p).kind == "jsonl"
    rep = check_file(p, max_record_bytes=8192)
    assert rep.kind == "jsonl" and rep.rows == 5 and rep.usable == 4
    assert first(rep, "line_too_long").line == 1


def test_broken_long_first_row_is_named_on_its_line(tmp_path):
    rows = texts(3)
    bad = json.dumps(rows[0])[:-2] + ',}'   # a trailing comma at the end of a 98 KB row
    p = tmp_path / "bad.jsonl"
    p.write_text(bad + "\n" + jsonl(rows[1:]))
    rep = check_file(p)
    assert rep.kind == "jsonl" and rep.usable == 2
    assert first(rep, "bad_json").line == 1


def test_line_separator_inside_a_long_row(tmp_path):
    rows = [{"text": r["text"][:LONG // 2] + "\u2028\u2029\x85" + r["text"][LONG // 2:]} for r in texts()]
    p = tmp_path / "sep.jsonl"
    p.write_text(jsonl(rows), encoding="utf-8")
    rep = check_file(p, collect=True)
    ok_rows(rep, 3)
    assert rep.examples[0]["text"] == rows[0]["text"]


def test_legacy_bytes_in_a_long_first_row_are_named(tmp_path):
    rows = texts()
    p = tmp_path / "latin.jsonl"
    p.write_bytes(json.dumps(rows[0])[:-2].encode() + "café\"}\n".encode("cp1252") + jsonl(rows[1:]).encode())
    rep = check_file(p)
    assert rep.kind == "jsonl" and rep.usable == 2
    assert first(rep, "encoding").line == 1


@pytest.mark.parametrize("indent", [None, 2])
def test_json_array_with_long_records(tmp_path, indent):
    rows = texts(4)
    p = tmp_path / "arr.json"
    p.write_text(json.dumps(rows, indent=indent))
    rep = check_file(p, collect=True)
    ok_rows(rep, 4, "json")
    assert [ex["text"] for ex in rep.examples] == [r["text"] for r in rows]


@pytest.mark.parametrize("indent", [None, 2])
def test_json_object_holding_long_records(tmp_path, indent):
    p = tmp_path / "obj.json"
    p.write_text(json.dumps({"data": texts(3)}, indent=indent))
    ok_rows(check_file(p), 3, "json")


def test_pretty_printed_single_object_is_json(tmp_path):
    p = tmp_path / "one.json"
    p.write_text(json.dumps(texts(1)[0], indent=2) + "\n")
    rep = check_file(p)
    assert rep.kind == "json" and rep.rows == 1 and rep.usable == 1


def test_two_pretty_printed_objects_are_still_one_bad_json_file(tmp_path):
    p = tmp_path / "two.json"
    p.write_text("".join(json.dumps(r, indent=2) + "\n" for r in texts(2, 100)))
    rep = check_file(p)
    assert rep.kind == "json" and "more data" in first(rep, "bad_json").message


@pytest.mark.parametrize("d", [",", "\t", ";"])
def test_csv_with_a_long_first_row(tmp_path, d):
    long_cell = "word, and; more\n" * (LONG // 16)   # commas, semicolons and line breaks inside one quoted cell
    p = tmp_path / "long.csv"
    p.write_text(f"prompt{d}completion\n" + f'"{long_cell}"{d}answer 0\n' + "".join(f"q{i}{d}answer {i}\n" for i in range(1, 4)))
    assert sniff(p).delimiter == d
    rep = check_file(p, collect=True)
    ok_rows(rep, 4, "tsv" if d == "\t" else "csv")
    assert rep.examples[0]["messages"][0]["content"].strip() == long_cell.strip()


def test_csv_with_a_header_longer_than_the_window(tmp_path):
    names = [f"column_{i:05d}" for i in range(HEAD_BYTES // 10)] + ["prompt", "completion"]
    p = tmp_path / "wide.csv"
    p.write_text(",".join(names) + "\n" + "".join(",".join(["x"] * (len(names) - 2) + [f"q{i}", f"a{i}"]) + "\n" for i in range(3)))
    rep = check_file(p, column_map={})
    assert rep.kind == "csv" and rep.rows == 3 and len(rep.columns) == len(names)


def test_one_long_row_with_other_column_names(tmp_path):
    """One flat record alone (a one-row JSONL) is a record whose columns are guessed, not a JSON
    object "with no list of records"."""
    p = tmp_path / "one.jsonl"
    p.write_text(json.dumps({"question": "What is tea?", "answer": "word " * (LONG // 5)}) + "\n")
    rep = check_file(p)
    assert rep.rows == 1 and rep.usable == 1 and rep.format == "prompt_completion", rep.human()


def test_a_record_over_the_cap_is_refused_however_many_lines_the_file_has(tmp_path):
    """Found by a probe: a JSON Lines file of ONE line is sniffed as one JSON document and read whole, so one
    50 MB record passed while the same record in a longer file hit the per-line cap. Now a record of the cap
    or more is refused on its line in every shape (counted in UTF-8 bytes, as a JSON Lines line is), and the
    records after it in an array are still read. The file's own size (a record just over the real cap) too."""
    from core.data.readers import MAX_RECORD_BYTES
    cap = 8192
    big = {"text": "中" * (cap // 3 + 10)}  # 2,740 characters, 8,220 bytes: over the cap in bytes only
    small = {"text": "a short row"}
    shapes = {"one.jsonl": jsonl([big]), "bare.jsonl": jsonl([big]).rstrip("\n"), "two.jsonl": jsonl([big, small]),
              "pretty.json": "\n" + json.dumps(big, indent=2, ensure_ascii=False),
              "array.json": "[\n" + json.dumps(small) + ",\n" + json.dumps(big, ensure_ascii=False) + ",\n" + json.dumps({"text": "another"}) + "]",
              "keyed.json": '{"a": ' + json.dumps(small) + ',\n "b": ' + json.dumps(big, ensure_ascii=False) + ',\n "c": {"text": "x"}}'}
    for name, text in shapes.items():
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        rep = check_file(p, max_record_bytes=cap)
        line = 3 if name == "array.json" else 2 if name in ("pretty.json", "keyed.json") else 1
        assert first(rep, "line_too_long").line == line and rep.usable == rep.rows - 1, (name, rep.human())
        assert "split it into smaller examples or remove it" in "\n".join(rep.human()), rep.human()
    p = tmp_path / "huge.jsonl"  # the real cap: a record just over it, alone on its line
    p.write_text(json.dumps({"text": "x" * MAX_RECORD_BYTES}) + "\n")
    rep = check_file(p)
    said = "\n".join(rep.human())
    assert "huge.jsonl:1: the record is 8,388,620 bytes; the limit is 8,388,608 bytes" in said and rep.usable == 0, said[:300]


def test_a_tiny_cap_is_said_in_kb_not_as_zero_mb(tmp_path):
    """A cap of a few KB (a setting, a test) was said "the line is 0.0 MB; the limit is 0 MB"."""
    rows = texts(2, 10_000)
    for name, data in {"d.jsonl": jsonl(rows).encode(), "d.json": json.dumps(rows).encode(),
                       "utf16.jsonl": jsonl(rows).encode("utf-16")}.items():
        p = tmp_path / name
        p.write_bytes(data)
        said = first(check_file(p, max_record_bytes=4096), "line_too_long").message
        assert "4 KB" in said and "MB" not in said, (name, said)
