"""File level: detection by content, refusals with a clear message, encodings (reliability.md d.1, d.2, d.5)."""
import bz2
import codecs
import gzip
import io
import json
import lzma
import tarfile
import zipfile

import pytest

from core.data import check_file
from core.data.sniff import sniff
from tests.data.helpers import chat, codes, first

CSV = "instruction,input,output\n" + "".join(f"Summarise {i},text {i},short {i}\n" for i in range(12))


def refusal(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    rep = check_file(p)
    assert not rep.ok and rep.kind is None
    return rep.problems()[0]


@pytest.mark.parametrize("data", [b"", b"   \n\n  \t", codecs.BOM_UTF8])
def test_empty_file(tmp_path, data):
    issue = refusal(tmp_path, "e.jsonl", data)
    assert issue.code == "empty" and "empty" in issue.message


@pytest.mark.parametrize("data", [bytes(1000), bytes(200_000) + b'{"text": "the end survived"}\n'])
def test_a_file_of_zero_bytes_is_said_to_be_damaged_not_empty(tmp_path, data):
    """A file a crash or a full disk zeroed while it was saved was called "empty" (found by the CLI probe)."""
    issue = refusal(tmp_path, "z.jsonl", data)
    assert issue.message == (f"the file holds no text: its {len(data):,} bytes begin with zero bytes only, as a crash "
                             "or a full disk can leave a file that was being saved")


def test_header_only_csv_has_no_data_rows(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("prompt,completion\n")
    rep = check_file(p)
    assert not rep.ok and first(rep, "empty").message == "the file has no data rows (only a header)"


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("d.jsonl")
        data = json.dumps(chat()).encode()
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("name,make,words", [
    ("d.jsonl.gz", lambda: gzip.compress(b'{"text": "x"}\n'), "gzip"),
    ("d.csv", lambda: gzip.compress(CSV.encode()), "gzip"),  # compressed but named .csv: content decides
    ("d.bz2", lambda: bz2.compress(b"x" * 100), "bzip2"),
    ("d.xz", lambda: lzma.compress(b"x" * 100), "xz"),
    ("d.zip", lambda: _zip({"d.jsonl": b'{"text": "x"}\n'}), "zip archive"),
    ("../evil.zip", lambda: _zip({"../../etc/x": b"x" * 10_000_000}), "zip archive"),  # zip slip + bomb: never opened
    ("d.tar", _tar, "tar archive"),
])
def test_archives_are_refused_without_unpacking(tmp_path, name, make, words):
    issue = refusal(tmp_path, name.replace("../", ""), make())
    assert words in issue.message and "does not unpack" in issue.hint


@pytest.mark.parametrize("name,data,words", [
    ("page.json", b"<!DOCTYPE html><html><body>Sign in</body></html>", "web page (HTML)"),
    ("page.jsonl", b"\n  <html lang='en'><head></head></html>", "web page (HTML)"),
    ("old.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old-style Office"),
    ("doc.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
    ("blob.jsonl", bytes(range(256)) * 4, "binary"),
    ("x.xml", b'<?xml version="1.0"?><rows/>', "XML"),
])
def test_files_that_are_not_data_are_named(tmp_path, name, data, words):
    issue = refusal(tmp_path, name, data)
    assert words in issue.message


def test_xlsx_renamed_csv_is_read_as_excel(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["prompt", "completion"])
    for i in range(12):
        ws.append([f"q{i}", f"a{i}"])
    p = tmp_path / "data.csv"
    wb.save(p)
    rep = check_file(p)
    assert rep.kind == "xlsx" and rep.ok and rep.rows == 12 and rep.format == "prompt_completion"


def test_parquet_renamed_jsonl_and_json_named_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    p = tmp_path / "data.jsonl"
    pq.write_table(pa.table({"text": [f"doc {i}" for i in range(12)]}), p)
    rep = check_file(p)
    assert rep.kind == "parquet" and rep.ok and rep.rows == 12
    q = tmp_path / "data.csv"
    q.write_text(json.dumps([chat(f"q{i}") for i in range(12)], indent=2))
    rep = check_file(q)
    assert rep.kind == "json" and rep.ok and rep.rows == 12


def test_utf8_bom_header_resolves(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes(codecs.BOM_UTF8 + CSV.encode())
    rep = check_file(p)
    assert rep.ok and rep.format == "alpaca" and rep.columns[0] == "instruction"


@pytest.mark.parametrize("enc,bom", [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-16-le", b"")])
def test_utf16_is_detected_read_and_noted(tmp_path, enc, bom):
    p = tmp_path / "u16.csv"
    p.write_bytes(bom + CSV.replace(",", "\t").encode(enc))
    rep = check_file(p)
    assert rep.ok and rep.rows == 12 and rep.kind == "tsv" and rep.encoding == enc
    assert codes(rep).get("utf16") == 1


def test_utf16_jsonl(tmp_path):
    p = tmp_path / "u16.jsonl"
    p.write_bytes(codecs.BOM_UTF16_LE + "".join(json.dumps(chat(f"问题{i}"), ensure_ascii=False) + "\n"
                                                 for i in range(12)).encode("utf-16-le"))
    rep = check_file(p)
    assert rep.ok and rep.rows == 12


@pytest.mark.parametrize("enc,name", [("cp1252", "Windows-1252"), ("gbk", "GBK"), ("shift_jis", "Shift-JIS")])
def test_legacy_encoding_is_named_with_its_line(tmp_path, enc, name):
    text = {"cp1252": "prompt,completion\nWhat is a café?,A place for coffee — café crème.\n",
            "gbk": "prompt,completion\n什么是茶？,茶是一种饮料，用茶叶泡制而成。\n",
            "shift_jis": "prompt,completion\nお茶とは何ですか？,お茶は茶葉から作られる飲み物です。\n"}[enc]
    p = tmp_path / "legacy.csv"
    p.write_bytes(text.encode(enc))
    rep = check_file(p)
    issue = first(rep, "encoding")
    assert not rep.ok and issue.line == 2 and name in issue.message and "UTF-8" in issue.hint


def test_sniff_delimiters(tmp_path):
    for d in (";", "\t", "|", ","):
        p = tmp_path / "x.txt"
        p.write_text(f"prompt{d}completion\n" + "".join(f"q{i}{d}a, b{i}\n" if d != "," else f'q{i},"a, b{i}"\n' for i in range(5)))
        assert sniff(p).delimiter == d, d


def test_xlsx_zip_bomb_is_refused_before_reading(tmp_path, monkeypatch):
    from core.data import sniff as S
    monkeypatch.setattr(S, "XLSX_MAX_UNCOMPRESSED", 100_000)
    p = tmp_path / "bomb.xlsx"
    p.write_bytes(_zip({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>", "xl/worksheets/sheet1.xml": b"0" * 200_000}))
    issue = refusal(tmp_path, "bomb.xlsx", p.read_bytes())
    assert "unsafe" in issue.message and "CSV" in issue.hint


def test_too_few_rows_is_a_warning(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(chat(f"q{i}")) + "\n" for i in range(3)))
    rep = check_file(p)
    assert rep.ok and "only 3 usable row(s)" in first(rep, "few_rows").message


def test_wrong_encoding_after_a_clean_start_is_still_named(tmp_path):
    p = tmp_path / "late.csv"
    head = "prompt,completion\n" + "".join(f"question {i},answer {i}\n" for i in range(4000))  # > 64 KB of clean text
    p.write_bytes(head.encode() + "Où est le café?,À côté.\n".encode("cp1252"))
    issue = first(check_file(p), "encoding")
    assert issue.line == 4002 and "Windows-1252" in issue.message


def test_json_nested_past_pythons_limit_is_malformed_not_a_crash(tmp_path):
    """An upload with "[[[[..." 100,000 deep (found by a probe: the check stopped with "unexpected
    RecursionError"): in a .jsonl the row is named malformed and the others are read; a .json, an
    edit and a spreadsheet cell say the same."""
    rows = [json.dumps(chat()), "[" * 100_000, json.dumps(dict(chat(), deep="[" * 10) | {"x": [[[1]]]}),
            '{"messages": ' + "[" * 5000 + "]" * 5000 + "}"]
    p = tmp_path / "deep.jsonl"
    p.write_text("\n".join(rows) + "\n")
    rep = check_file(p)
    bad = [i for i in rep.problems() if i.code == "bad_json"]
    assert [i.line for i in bad] == [2, 4] and all("nested too deeply" in i.message for i in bad), rep.problems()
    assert rep.usable == 2
    whole = tmp_path / "deep.json"
    whole.write_text("[" * 100_000)
    assert "nested too deeply" in first(check_file(whole), "bad_json").message
    from core.data.row_ops import Edit
    from core.errors import InputError
    with pytest.raises(InputError) as e:
        Edit(None, row=1, record="[" * 100_000)
    assert "Nested too deeply" in str(e.value.problems[0].message)
    cell = tmp_path / "deep.csv"
    cell.write_text('messages\n"' + "[" * 100_000 + '"\n')
    assert "nested too deeply" in first(check_file(cell), "bad_json").message
