"""What a file really is, from its first bytes: never from the extension alone.

    s = sniff(path)   # Sniffed(kind="jsonl"|"json"|"csv"|"tsv"|"parquet"|"xlsx"|None, encoding, delimiter, refusal, notes)

Refused outright, each with a message for people: empty files, archives and compressed files
(no decompression, so no decompression bombs), old Excel .xls, PDF, HTML pages (a failed
download saved as .json), XML and other binary files. Text must be UTF-8 (with or without BOM)
or UTF-16 with a BOM (accepted with a note); other encodings are named with "save as UTF-8".

The first 64 KB decide the encoding and whether the file is binary, markup, JSON or a table. JSON
versus JSON Lines, and lone-CR line ends, are decided from whole lines read on from there: a first
row may be longer than any window (long-context data holds 100 KB documents per row).
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from core.data.issues import Issue
from core.messages import Msg, size_msg, sizes_over

HEAD_BYTES = 65536
LINE_CAP = 8 << 20                 # characters of a first line read to tell JSON from JSON Lines
MAX_WHOLE_JSON_BYTES = 200 << 20   # a JSON object (not array, not JSONL) is parsed in one piece: memory
XLSX_MAX_RATIO = 200               # uncompressed/compressed for one workbook part: more is a zip bomb
XLSX_MAX_UNCOMPRESSED = 2 << 30

ARCHIVES = [(b"\x1f\x8b", "gzip (.gz)"), (b"BZh", "bzip2 (.bz2)"), (b"\xfd7zXZ\x00", "xz (.xz)"),
            (b"\x28\xb5\x2f\xfd", "zstd (.zst)"), (b"7z\xbc\xaf\x27\x1c", "7-Zip (.7z)"), (b"Rar!\x1a\x07", "RAR (.rar)"),
            (b"\x04\x22\x4d\x18", "lz4 (.lz4)")]
UNPACK_HINT = Msg("sniff.unpack.hint")


@dataclass
class Sniffed:
    kind: str | None               # jsonl json csv tsv parquet xlsx; None when refused
    encoding: str = ""             # utf-8 | utf-8-sig | utf-16-le | utf-16-be ("" for binary kinds)
    delimiter: str = ","
    refusal: Issue | None = None   # why the file cannot be read at all
    notes: list[Issue] = field(default_factory=list)  # warnings about the file as a whole
    size: int = 0
    legacy: Msg | None = None      # the encoding the bytes probably are in, when not UTF-8
    cr_only: bool = False          # lines end with a lone CR (old Mac files): read in text mode


def _refuse(message: Msg, hint: Msg | None = None, size: int = 0, code: str = "refused") -> Sniffed:
    """A refusal: `message`, and the fix `hint` (default: the message's code + ".hint")."""
    return Sniffed(kind=None, refusal=Issue(code, message, hint or Msg(message.code + ".hint")), size=size)


def sniff(path: str | Path) -> Sniffed:
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    whole = len(head) == size
    if not head.strip(b" \t\r\n\x00") or head in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if b"\x00" in head:  # zeros where the data was: what a crash or a full disk leaves of a file being saved
            return _refuse(Msg("sniff.zeros", size=size), size=size)
        return _refuse(Msg("sniff.empty"), size=size, code="empty")
    binary = _binary_kind(path, head, size)
    if binary is not None:
        return binary
    encoding, notes = _encoding(head)
    if encoding is None:
        return _refuse(Msg("sniff.binary"), size=size)
    text, legacy = _decode_head(head, encoding, whole)
    s = text.lstrip("\ufeff \t\r\n")
    low = s[:200].lower()
    if low.startswith(("<!doctype html", "<html", "<head", "<body")) or (low.startswith("<") and "<html" in low):
        return _refuse(Msg("sniff.html"), size=size)
    if low.startswith("<?xml") or low.startswith("<"):
        return _refuse(Msg("sniff.xml"), Msg("sniff.export_data.hint"), size)
    if low.startswith("%pdf"):
        return _refuse(Msg("sniff.pdf"), Msg("sniff.export_data.hint"), size)
    if s.startswith("["):
        kind = "json"
    elif s.startswith("{"):
        kind = json_or_jsonl(path, encoding)
    else:
        kind = "csv"
    if kind == "json" and s.startswith("{") and size > MAX_WHOLE_JSON_BYTES:
        return _refuse(Msg("sniff.json_too_big", **sizes_over(size, MAX_WHOLE_JSON_BYTES)), size=size,
                       code="too_big")
    out = Sniffed(kind=kind, encoding=encoding, notes=notes, size=size, legacy=legacy,
                  cr_only=not encoding.startswith("utf-16") and lone_cr(path))
    if kind == "csv":
        out.delimiter = sniff_delimiter(s)
        out.kind = "tsv" if out.delimiter == "\t" else "csv"
    return out


def _binary_kind(path: Path, head: bytes, size: int) -> Sniffed | None:
    """Parquet and XLSX by their magic bytes; every archive and office format refused by name."""
    if head.startswith(b"PAR1"):
        return Sniffed(kind="parquet", size=size)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip_kind(path, size)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _refuse(Msg("sniff.old_office"), size=size)
    for magic, name in ARCHIVES:
        if head.startswith(magic):
            return _refuse(Msg("sniff.compressed", name=name), UNPACK_HINT, size)
    if len(head) > 262 and head[257:262] == b"ustar":
        return _refuse(Msg("sniff.tar"), UNPACK_HINT, size)
    return None


def _zip_kind(path: Path, size: int) -> Sniffed:
    """An .xlsx is a zip; any other zip is an archive. Only the directory is read, nothing unpacked."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return _refuse(Msg("sniff.bad_zip"), size=size)
    names = {i.filename for i in infos}
    if "xl/workbook.xml" in names:
        total = sum(i.file_size for i in infos)
        worst = max((i.file_size / max(1, i.compress_size) for i in infos), default=0)
        if total > XLSX_MAX_UNCOMPRESSED or (worst > XLSX_MAX_RATIO and total > (64 << 20)):
            return _refuse(Msg("sniff.zip_bomb", size=size_msg(total), ratio=f"{worst:.0f}"), size=size)
        return Sniffed(kind="xlsx", size=size)
    if "word/document.xml" in names:
        return _refuse(Msg("sniff.word"), size=size)
    if "content.xml" in names and "mimetype" in names:
        return _refuse(Msg("sniff.opendocument"), size=size)
    return _refuse(Msg("sniff.zip", n=len(infos)), UNPACK_HINT, size)


def _encoding(head: bytes) -> tuple[str | None, list[Issue]]:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", []
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return None, []
    note = Issue("utf16", Msg("sniff.utf16"), Msg("sniff.utf16.hint"))
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", [note]
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", [note]
    sample = head[:4096]
    if b"\x00" in sample:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if odd > len(sample) / 4 and even < len(sample) / 50:
            return "utf-16-le", [note]
        if even > len(sample) / 4 and odd < len(sample) / 50:
            return "utf-16-be", [note]
        return None, []
    return "utf-8", []


def _decode_head(head: bytes, encoding: str, whole: bool) -> tuple[str, Msg | None]:
    """The head as text, and the name of the legacy encoding it is probably in (when not UTF-8)."""
    codec = "utf-16" if encoding.startswith("utf-16") else encoding
    if codec == "utf-16":
        return head.decode(encoding, errors="replace"), None
    dec = codecs.getincrementaldecoder(codec)("strict")
    try:
        return dec.decode(head, final=whole), None
    except UnicodeDecodeError:
        return head.decode("latin-1"), guess_legacy(head)


def guess_legacy(data: bytes) -> Msg:
    """A best guess at the encoding of text that is not UTF-8, to name it to the user."""
    for codec, test in (("shift_jis", lambda t: sum("\u3040" <= c <= "\u30ff" for c in t) > 2),
                        ("gb18030", lambda t: sum("\u4e00" <= c <= "\u9fff" for c in t) > 2),
                        ("big5", lambda t: sum("\u4e00" <= c <= "\u9fff" for c in t) > 2),
                        ("cp1251", lambda t: sum("\u0410" <= c <= "\u044f" for c in t) > 10
                         and sum(c in "\u00e0\u00e9\u00e8" for c in data.decode("cp1252", "replace")) < 3)):
        try:
            if test(data[:8192].decode(codec, errors="strict")):
                return Msg("enc." + codec)
        except UnicodeDecodeError:
            continue
    return Msg("enc.cp1252")


def json_or_jsonl(path: Path, encoding: str) -> str:
    """JSON Lines when the first line is a complete object and more lines follow, or when a broken
    first line ends with } and the next line starts another {; else one JSON document.

    Whole lines are read, not a window of the head: a window cuts a long first row (a 100 KB
    document for long-context training), and the file was taken for one JSON object. Lines longer
    than LINE_CAP are skipped in chunks, so memory stays bounded whatever the row length."""
    with open_lines(path, encoding) as f:
        first = ""
        while not first.strip(" \t\r\n\ufeff"):
            first = f.readline(LINE_CAP)
            if not first:
                return "json"
        cut = len(first) == LINE_CAP and not first.endswith("\n")
        while cut and (rest := f.readline(1 << 20)) and not rest.endswith("\n"):
            pass  # the rest of a first line longer than LINE_CAP (the reader names it too long)
        after = _next_char(f)
    first = first.strip(" \t\r\n\ufeff")
    if not cut:
        try:
            if isinstance(json.loads(first), dict):
                # one object alone is read as JSON, so {"id1": {...}, "id2": {...}} finds its records
                return "jsonl" if after else "json"
        except (ValueError, RecursionError):  # RecursionError: nested too deep to be one object
            pass
    return "jsonl" if (cut or first.endswith("}")) and after == "{" else "json"


def open_lines(path: Path, encoding: str):
    """The file as text with universal newlines (LF, CRLF or a lone CR end a line; U+2028 inside
    a string does not), undecodable bytes replaced: the readers report them with their line."""
    return io.TextIOWrapper(open(path, "rb"), encoding=encoding or "utf-8", errors="replace", newline=None)


def _next_char(f) -> str:
    """The next character that is not white space ("" at the end of the file)."""
    while chunk := f.read(8192):
        chunk = chunk.lstrip(" \t\r\n\ufeff")
        if chunk:
            return chunk[0]
    return ""


def lone_cr(path: Path, limit: int = 64 << 20) -> bool:
    """Lines end with a lone CR (old Mac files). Looks for the first line break wherever it is,
    not only in the head: a first row may be longer than any window."""
    with open(path, "rb") as f:
        seen = 0
        while seen < limit and (chunk := f.read(1 << 20)):
            seen += len(chunk)
            cr, lf = chunk.find(b"\r"), chunk.find(b"\n")
            if lf >= 0 and (cr < 0 or lf < cr):
                return False
            if cr >= 0:
                nxt = chunk[cr + 1:cr + 2] or f.read(1)
                return nxt != b"\n"
    return False


def sniff_delimiter(text: str) -> str:
    """The delimiter that gives the most rows with the header's column count (2 or more)."""
    sample = text[:HEAD_BYTES]
    if "\n" in sample and len(sample) == HEAD_BYTES:
        sample = sample[:sample.rfind("\n")]
    best, best_score = ",", -1
    for d in (",", "\t", ";", "|"):
        try:
            rows = [r for r, _ in zip(csv.reader(io.StringIO(sample), delimiter=d), range(50)) if r]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = sum(len(r) == width for r in rows) * 1000 + width
        if score > best_score:
            best, best_score = d, score
    return best
