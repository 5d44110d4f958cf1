"""Stream the records of a file, with our own line counter, reporting what cannot be read.

    for line, record_no, value, raw in read_records(path, sniffed, collector, stats):
        ...

`line` is the 1-based physical line where the record starts (None for Parquet), `record_no` the
1-based record number, `raw` the record's source text when the format has it (JSONL) else None.
Unreadable records (malformed JSON, wrong encoding, ragged CSV rows) are reported to the
collector and counted in `stats.rows`, but not yielded.

Why our own parsing: pyarrow's "row N" counts from the start of a batch, not the file, and
`str.splitlines()` splits on U+2028/U+2029/U+0085, which may sit inside JSON strings. JSONL is
read line by line in binary (`readline` with a size cap, so a 2 GB line cannot exhaust memory),
JSON arrays element by element, CSV with the csv module (every cell stays text: "NA" stays "NA"),
Parquet by row group and XLSX with openpyxl in read-only mode. Memory stays bounded.
"""
from __future__ import annotations

import codecs
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from core.data.issues import Collector
from core.data.sniff import Sniffed
from core.messages import Msg, size_msg, sizes_over, verbatim

MAX_RECORD_BYTES = 8 << 20
CHUNK = 1 << 20
SAVE_UTF8 = "read.save_utf8"
JSON_CELL_COLUMNS = ("messages", "conversations")


@dataclass
class ReadStats:
    rows: int = 0                # records seen, readable or not
    blank: int = 0               # blank lines / empty spreadsheet rows skipped
    coerced: int = 0             # spreadsheet cells that were numbers or dates, read as text
    columns: list = field(default_factory=list)
    stopped: Msg | str = ""      # why reading stopped early (an error the reader cannot get past)
    lines: int = 0               # physical lines read (JSONL), for stitching parts of a file together
    flag: bool = False           # the record being yielded already has a reported problem (duplicate key)


class _NonFinite(float):
    """NaN/Infinity as parsed: recorded, then reported; JSON does not allow them."""


TOO_DEEP = "Nested too deeply"


class _Decoder(json.JSONDecoder):
    """Nesting past Python's recursion limit ("[[[[..." 100,000 deep in an upload) is malformed JSON
    like any other, said as such: not a RecursionError that stops the whole check."""
    def raw_decode(self, s, idx=0):
        try:
            return super().raw_decode(s, idx)
        except RecursionError:
            raise json.JSONDecodeError(TOO_DEEP, s, idx) from None


def make_decoder(seen: list) -> json.JSONDecoder:
    """A strict decoder: duplicate keys, NaN/Infinity and whole numbers too long for Python to read are
    noted in `seen` (Python would keep the last duplicate silently, accepts NaN by default, and stops
    the whole read with ValueError at a number of more than 4,300 digits)."""
    def pairs(p, dict=dict, len=len):  # called for every object of every row: locals are faster
        d = dict(p)
        if len(d) != len(p):
            keys = [k for k, _ in p]
            seen.append(("duplicate_key", next(k for k in keys if keys.count(k) > 1)))
        return d

    def constant(name):
        seen.append(("nan", name))
        return _NonFinite("nan")

    def integer(digits):
        try:
            return int(digits)
        except ValueError:  # more digits than Python reads (4,300): a problem of this row, not a stop of the check
            seen.append(("big_number", digits))
            return _NonFinite("nan")
    return _Decoder(object_pairs_hook=pairs, parse_constant=constant, parse_int=integer)


_PLAIN = [("Expecting property name enclosed in double quotes", "json.key_quotes"), ("Expecting ',' delimiter", "json.comma"),
          ("Expecting ':' delimiter", "json.colon"), ("Expecting value", "json.value"),
          ("Unterminated string", "json.unterminated"), ("Invalid control character", "json.control"),
          ("Extra data", "json.extra"), ("Invalid \\escape", "json.escape"), ("Invalid \\uXXXX escape", "json.u_escape"),
          (TOO_DEEP, "json.too_deep")]


def plain_json_error(msg: str) -> Msg:
    """Python's JSON error in plain words (its own words when it says something else)."""
    for prefix, code in _PLAIN:
        if msg.startswith(prefix):
            return Msg(code)
    return verbatim(msg)


def _json_issue(col: Collector, e: json.JSONDecodeError, text: str, line: int, record: int, last: bool) -> None:
    near = text[max(0, e.pos - 30):e.pos + 30]
    cut = last and (e.msg.startswith("Unterminated string") or e.pos >= len(text.rstrip()) - 1)
    if cut:
        col.report("bad_json", Msg("read.cut_off", column=e.colno), Msg("read.cut_off.hint"),
                   line=line, record=record, value=near)
    else:
        col.report("bad_json", Msg("read.bad_json", column=e.colno, error=plain_json_error(e.msg)),
                   Msg("read.bad_json.hint"), line=line, record=record, value=near)


def big_number(digits: str) -> Msg:
    """What is wrong with a whole number Python will not read (sys.get_int_max_str_digits: its guard
    against conversions slow enough to stall a server): its length and the limit."""
    return Msg("read.big_number", n=len(digits.lstrip("+-")), limit=sys.get_int_max_str_digits())


def report_seen(col: Collector, seen: list, line, record) -> bool:
    """Report duplicate keys / NaN found while parsing; True when the record must not be used.
    Sets st.flag via the caller for records that are yielded with a problem."""
    bad = False
    for code, what in seen:
        if code == "nan":
            bad = True
            col.report("nan", Msg("read.nan", what=what), Msg("read.nan.hint"), line=line, record=record, value=what)
        elif code == "big_number":
            bad = True
            col.report("big_number", big_number(what), Msg("read.big_number.hint"), line=line, record=record, value=what)
        else:
            col.report("duplicate_key", Msg("read.duplicate_key", key=what), Msg("read.duplicate_key.hint"), field=what,
                       line=line, record=record, value=what)
    seen.clear()
    return bad


def read_records(path: str | Path, sn: Sniffed, col: Collector, stats: ReadStats,
                 max_record_bytes: int = MAX_RECORD_BYTES, column_map: dict | None = None) -> Iterator[tuple]:
    path = Path(path)
    if sn.kind == "jsonl":
        if sn.encoding.startswith("utf-8") and not sn.cr_only:
            return jsonl_bytes(path, sn, col, stats, max_record_bytes)
        return _jsonl_text(path, sn, col, stats, max_record_bytes)
    from core.data import read_json, read_tables  # they use the helpers above
    if sn.kind == "json":
        return read_json.read_json(path, sn, col, stats, max_record_bytes, column_map)
    if sn.kind in ("csv", "tsv"):
        return read_tables.read_csv(path, sn, col, stats, max_record_bytes, column_map)
    if sn.kind == "parquet":
        return read_tables.read_parquet(path, col, stats)
    if sn.kind == "xlsx":
        return read_tables.read_xlsx(path, col, stats)
    raise ValueError(f"cannot read kind {sn.kind!r}")


# --- JSONL ---------------------------------------------------------------------------------------
def jsonl_bytes(path, sn, col, st, cap, start: int = 0, end: int | None = None, first_line: int = 1):
    """The fast path: binary lines, strict UTF-8 decoding per line. `start`/`end` (byte offsets at
    line starts) let several processes check parts of one file."""
    seen: list = []
    dec = make_decoder(seen)
    loads, scan = dec.decode, dec.scan_once
    n = first_line - 1
    with open(path, "rb") as f:
        f.seek(start)
        readline = f.readline
        pos = start
        stop_at = end if end is not None else float("inf")
        while pos < stop_at:
            line = readline(cap)
            size = len(line)
            if not size:
                break
            pos += size
            n += 1
            if size == cap and line[-1:] != b"\n":
                extra = _skip_rest(f)
                pos += extra
                st.rows += 1
                col.report("line_too_long", Msg("read.line_mb", **sizes_over(len(line) + extra, cap)),
                           Msg("read.line_mb.hint"), line=n, record=st.rows)
                continue
            if line.isspace():
                st.blank += 1
                continue
            st.rows += 1
            try:
                s = line.decode("utf-8")
            except UnicodeDecodeError as e:
                _bytes_issue(col, line, e, n, st.rows, sn.legacy)
                continue
            if n == 1 and s.startswith("\ufeff"):
                s = s[1:]
            try:
                # scan_once is what decode() calls after two regex whitespace skips; a line is
                # "{...}\n", so call it directly and fall back to decode() for exact errors.
                obj, stop = scan(s, 0)
                if stop != len(s) and not s[stop:].isspace():
                    raise ValueError
            except (StopIteration, ValueError, RecursionError):  # decode() says why (readers._Decoder)
                seen.clear()
                try:
                    obj = loads(s)
                except json.JSONDecodeError as e:
                    seen.clear()
                    _json_issue(col, e, s, n, st.rows, last=line[-1:] != b"\n")
                    continue
            if seen:
                if report_seen(col, seen, n, st.rows):
                    continue
                st.flag = True
            yield n, st.rows, obj, line
    st.lines = n - first_line + 1


def _skip_rest(f) -> int:
    """Read past the rest of an over-long line in chunks; return how many bytes were skipped."""
    skipped = 0
    while True:
        chunk = f.readline(CHUNK)
        skipped += len(chunk)
        if not chunk or chunk[-1:] == b"\n":
            return skipped


def _bytes_issue(col: Collector, data: bytes, e: UnicodeDecodeError, line: int, record: int, legacy: Msg | None) -> None:
    if col.counts.get("encoding", 0) >= col.keep:  # only counted from here: skip the guessing
        col.count("encoding")
        return
    column = len(data[:e.start].decode("utf-8", "replace")) + 1
    bad = data[e.start:e.start + 4]
    from core.data.sniff import guess_legacy
    col.report("encoding", Msg("read.not_utf8", column=column, bytes=bad.hex(" "), legacy=legacy or guess_legacy(data)),
               Msg(SAVE_UTF8), line=line, record=record, value=data[max(0, e.start - 20):e.start + 20].decode("utf-8", "replace"))


def open_text(path: Path, encoding: str, newline=None):
    enc = encoding or "utf-8"
    return io.TextIOWrapper(open(path, "rb"), encoding=enc, errors="strict", newline=newline)


def locate_decode_error(path: Path, encoding: str) -> tuple[int, int, bytes]:
    """(line, byte column, bad bytes) of the first byte sequence that does not decode."""
    dec = codecs.getincrementaldecoder(encoding or "utf-8")("strict")
    line, since_nl = 1, 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            pending = dec.getstate()[0]   # an incomplete character carried from the last chunk
            data = pending + chunk
            try:
                dec.decode(chunk)
            except UnicodeDecodeError as e:
                before = data[:e.start]
                nl = before.rfind(b"\n")
                column = e.start - nl if nl >= 0 else since_nl - len(pending) + e.start + 1
                return line + before.count(b"\n"), column, data[e.start:e.start + 4]
            line += chunk.count(b"\n")
            nl = chunk.rfind(b"\n")
            since_nl = len(chunk) - nl - 1 if nl >= 0 else since_nl + len(chunk)
        try:
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            return line, since_nl, dec.getstate()[0][:4]
    return line, 1, b""


def decode_stop(col: Collector, st: ReadStats, path: Path, sn: Sniffed) -> None:
    from core.data.sniff import guess_legacy
    line, column, bad = locate_decode_error(path, sn.encoding)
    legacy = sn.legacy or (guess_legacy(bad + _line_bytes(path, line)) if sn.encoding.startswith("utf-8") else None)
    params = dict(encoding=sn.encoding.upper().replace("-SIG", ""), column=column, bytes=bad.hex(" "))
    col.report("encoding", Msg("read.not_encoding_seems", legacy=legacy, **params) if legacy else Msg("read.not_encoding", **params),
               Msg(SAVE_UTF8), line=line)
    st.stopped = Msg("read.stopped_encoding", line=line)


def _line_bytes(path: Path, line: int, limit: int = 8192) -> bytes:
    """The bytes of one physical line (cut at `limit`), to guess the encoding it is written in."""
    with open(path, "rb") as f:
        for n, data in enumerate(iter(lambda: f.readline(limit), b""), 1):
            if n == line:
                return data
    return b""


def _jsonl_text(path, sn, col, st, cap):
    """UTF-16 and lone-CR files: decoded as a text stream (universal newlines)."""
    seen: list = []
    loads = make_decoder(seen).decode
    n = 0
    with open_text(path, sn.encoding) as f:
        while True:
            try:
                line = f.readline(cap)
            except UnicodeDecodeError:
                decode_stop(col, st, path, sn)
                return
            if not line:
                return
            n += 1
            if len(line) == cap and not line.endswith("\n"):
                while (rest := f.readline(CHUNK)) and not rest.endswith("\n"):
                    pass
                st.rows += 1
                col.report("line_too_long", Msg("read.line_longer", limit=size_msg(cap)), Msg("read.split_or_remove.hint"),
                           line=n, record=st.rows)
                continue
            if line.isspace():
                st.blank += 1
                continue
            st.rows += 1
            s = line.lstrip("\ufeff") if n == 1 else line
            try:
                obj = loads(s)
            except json.JSONDecodeError as e:
                seen.clear()
                _json_issue(col, e, s, n, st.rows, last=not line.endswith("\n"))
                continue
            if seen:
                if report_seen(col, seen, n, st.rows):
                    continue
                st.flag = True
            yield n, st.rows, obj, None
