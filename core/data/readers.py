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
import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from core.data.issues import Collector, short
from core.data.sniff import Sniffed

MAX_RECORD_BYTES = 8 << 20
CHUNK = 1 << 20
SAVE_UTF8 = "open it in your editor or Excel and save it as UTF-8 (in Excel: \"CSV UTF-8\")"
JSON_CELL_COLUMNS = ("messages", "conversations")


@dataclass
class ReadStats:
    rows: int = 0                # records seen, readable or not
    blank: int = 0               # blank lines / empty spreadsheet rows skipped
    coerced: int = 0             # spreadsheet cells that were numbers or dates, read as text
    columns: list = field(default_factory=list)
    stopped: str = ""            # why reading stopped early (an error the reader cannot get past)
    lines: int = 0               # physical lines read (JSONL), for stitching parts of a file together
    flag: bool = False           # the record being yielded already has a reported problem (duplicate key)


class _NonFinite(float):
    """NaN/Infinity as parsed: recorded, then reported; JSON does not allow them."""


def make_decoder(seen: list) -> json.JSONDecoder:
    """A strict decoder: duplicate keys and NaN/Infinity are noted in `seen` (Python would keep the
    last duplicate silently, and accepts NaN by default)."""
    def pairs(p):
        d = dict(p)
        if len(d) != len(p):
            keys = [k for k, _ in p]
            seen.append(("duplicate_key", next(k for k in keys if keys.count(k) > 1)))
        return d

    def constant(name):
        seen.append(("nan", name))
        return _NonFinite("nan")
    return json.JSONDecoder(object_pairs_hook=pairs, parse_constant=constant)


_PLAIN = [("Expecting property name enclosed in double quotes", "a key is not in double quotes, or there is a trailing comma"),
          ("Expecting ',' delimiter", "a comma is missing, or a quote inside text is not written as \\\""),
          ("Expecting ':' delimiter", "a colon is missing after a key"),
          ("Expecting value", "a value is missing or not valid JSON (trailing comma, single quotes, a // comment or unquoted text?)"),
          ("Unterminated string", "a text value is never closed with a double quote"),
          ("Invalid control character", "a raw line break or tab inside text; write it as \\n or \\t"),
          ("Extra data", "more than one JSON value; put exactly one record per line"),
          ("Invalid \\escape", "an invalid backslash escape; write a backslash as \\\\"),
          ("Invalid \\uXXXX escape", "an invalid \\u escape")]


def plain_json_error(msg: str) -> str:
    for prefix, words in _PLAIN:
        if msg.startswith(prefix):
            return words
    return msg


def _json_issue(col: Collector, e: json.JSONDecodeError, text: str, line: int, record: int, last: bool) -> None:
    near = text[max(0, e.pos - 30):e.pos + 30]
    cut = last and (e.msg.startswith("Unterminated string") or e.pos >= len(text.rstrip()) - 1)
    if cut:
        col.report("bad_json", f"the record is cut off at column {e.colno}: the file ends in the middle of it",
                   "the file was not saved or uploaded completely; export it again (or remove this last line)",
                   line=line, record=record, value=near)
    else:
        col.report("bad_json", f"malformed JSON at column {e.colno}: {plain_json_error(e.msg)}",
                   "fix this line (every line must be one complete {...} object) or remove it",
                   line=line, record=record, value=near)


def _report_seen(col: Collector, seen: list, line, record) -> bool:
    """Report duplicate keys / NaN found while parsing; True when the record must not be used.
    Sets st.flag via the caller for records that are yielded with a problem."""
    bad = False
    for code, what in seen:
        if code == "nan":
            bad = True
            col.report("nan", f"contains {what}, which is not valid JSON", "write a number, or the value as text in quotes",
                       line=line, record=record, value=what)
        else:
            col.report("duplicate_key", f"the key \"{what}\" appears twice in one object; only one value can be kept",
                       "remove or rename one of them", field=what, line=line, record=record, value=what)
    seen.clear()
    return bad


def read_records(path: str | Path, sn: Sniffed, col: Collector, stats: ReadStats,
                 max_record_bytes: int = MAX_RECORD_BYTES, column_map: dict | None = None) -> Iterator[tuple]:
    path = Path(path)
    if sn.kind == "jsonl":
        if sn.encoding.startswith("utf-8") and not _cr_only(path):
            return _jsonl_bytes(path, sn, col, stats, max_record_bytes)
        return _jsonl_text(path, sn, col, stats, max_record_bytes)
    if sn.kind == "json":
        return _json(path, sn, col, stats, max_record_bytes, column_map)
    if sn.kind in ("csv", "tsv"):
        return _csv(path, sn, col, stats, max_record_bytes, column_map)
    if sn.kind == "parquet":
        return _parquet(path, col, stats)
    if sn.kind == "xlsx":
        return _xlsx(path, col, stats)
    raise ValueError(f"cannot read kind {sn.kind!r}")


def _cr_only(path: Path) -> bool:
    """Old Mac files end lines with a lone CR; those are read in text mode (universal newlines)."""
    with open(path, "rb") as f:
        head = f.read(65536)
    return b"\r" in head and b"\n" not in head


# --- JSONL ---------------------------------------------------------------------------------------
def _jsonl_bytes(path, sn, col, st, cap, start: int = 0, end: int | None = None, first_line: int = 1):
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
        while end is None or pos < end:
            line = readline(cap)
            if not line:
                break
            pos += len(line)
            n += 1
            if len(line) == cap and line[-1:] != b"\n":
                extra = _skip_rest(f)
                pos += extra
                st.rows += 1
                col.report("line_too_long", f"the line is {(len(line) + extra) / 2**20:.1f} MB; the limit is {cap / 2**20:.0f} MB",
                           "a record this long cannot be trained; split it into smaller examples or remove it",
                           line=n, record=st.rows)
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
            except (StopIteration, ValueError):
                seen.clear()
                try:
                    obj = loads(s)
                except json.JSONDecodeError as e:
                    seen.clear()
                    _json_issue(col, e, s, n, st.rows, last=line[-1:] != b"\n")
                    continue
            if seen:
                if _report_seen(col, seen, n, st.rows):
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


def _bytes_issue(col: Collector, data: bytes, e: UnicodeDecodeError, line: int, record: int, legacy: str) -> None:
    if col.counts.get("encoding", 0) >= col.keep:  # only counted from here: skip the guessing
        col.count("encoding")
        return
    column = len(data[:e.start].decode("utf-8", "replace")) + 1
    bad = data[e.start:e.start + 4]
    from core.data.sniff import guess_legacy
    seems = f"; the file seems to be {legacy or guess_legacy(data)}"
    col.report("encoding", f"is not UTF-8 text at column {column} (bytes {bad.hex(' ')}){seems}", SAVE_UTF8,
               line=line, record=record, value=data[max(0, e.start - 20):e.start + 20].decode("utf-8", "replace"))


def _open_text(path: Path, encoding: str, newline=None):
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


def _decode_stop(col: Collector, st: ReadStats, path: Path, sn: Sniffed) -> None:
    from core.data.sniff import guess_legacy
    line, column, bad = locate_decode_error(path, sn.encoding)
    legacy = sn.legacy or (guess_legacy(bad + _line_bytes(path, line)) if sn.encoding.startswith("utf-8") else "")
    seems = f"; the file seems to be {legacy}" if legacy else ""
    col.report("encoding", f"is not {sn.encoding.upper().replace('-SIG', '')} text at column {column} (bytes {bad.hex(' ')}){seems}",
               SAVE_UTF8, line=line)
    st.stopped = f"reading stopped at line {line}: the text encoding is wrong"


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
    with _open_text(path, sn.encoding) as f:
        while True:
            try:
                line = f.readline(cap)
            except UnicodeDecodeError:
                _decode_stop(col, st, path, sn)
                return
            if not line:
                return
            n += 1
            if len(line) == cap and not line.endswith("\n"):
                while (rest := f.readline(CHUNK)) and not rest.endswith("\n"):
                    pass
                st.rows += 1
                col.report("line_too_long", f"the line is longer than {cap / 2**20:.0f} MB", "split it or remove it", line=n, record=st.rows)
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
                if _report_seen(col, seen, n, st.rows):
                    continue
                st.flag = True
            yield n, st.rows, obj, None


# --- JSON (array, or an object holding records) ---------------------------------------------------
class _Text:
    """A growing window on a text stream, with an incremental line counter."""

    def __init__(self, f=None, text: str = ""):
        self.f, self.buf, self.eof = f, text, f is None
        self.line_pos, self.line = 0, 1  # newlines counted up to line_pos

    def more(self, want: int = CHUNK) -> bool:
        if self.eof:
            return False
        data = self.f.read(max(CHUNK, want))
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def skip_ws(self, pos: int) -> int:
        while True:
            n = len(self.buf)
            while pos < n and self.buf[pos] in " \t\r\n\ufeff":
                pos += 1
            if pos < n or not self.more():
                return pos

    def line_at(self, pos: int) -> int:
        if pos >= self.line_pos:
            self.line += self.buf.count("\n", self.line_pos, pos)
        else:
            self.line -= self.buf.count("\n", pos, self.line_pos)
        self.line_pos = pos
        return self.line

    def col_at(self, pos: int) -> int:
        return pos - self.buf.rfind("\n", 0, pos)

    def drop_before(self, pos: int) -> int:
        """Forget consumed text; returns the new position of `pos`."""
        if pos < CHUNK:
            return pos
        self.line_at(pos)
        self.buf = self.buf[pos:]
        self.line_pos = 0
        return 0


def _json(path, sn, col, st, cap, column_map=None):
    f = _open_text(path, sn.encoding, newline="")
    try:
        yield from _json_stream(path, sn, _Text(f), col, st, cap, column_map or {})
    except UnicodeDecodeError:
        _decode_stop(col, st, path, sn)
    finally:
        f.close()


def _json_stream(path, sn, t: _Text, col, st, cap, column_map: dict):
    seen: list = []
    dec = make_decoder(seen)
    pos = t.skip_ws(0)
    if t.buf[pos:pos + 1] == "[":
        yield from _array(t, pos + 1, dec, seen, col, st, cap, top=True)
        return
    # An object: read it whole (sniff capped the size), then find the records inside.
    while t.more():
        pass
    try:
        top, end = dec.raw_decode(t.buf, pos)
    except json.JSONDecodeError as e:
        seen.clear()
        col.report("bad_json", f"malformed JSON at column {t.col_at(e.pos)}: {plain_json_error(e.msg)}",
                   "fix the file; a JSON file must be one complete array [...] or object {...}",
                   line=t.line_at(e.pos), value=t.buf[max(0, e.pos - 30):e.pos + 30])
        st.stopped = "the rest of the file could not be read after this error"
        return
    seen_top = list(seen)
    seen.clear()
    if t.skip_ws(end) < len(t.buf):
        col.report("bad_json", "there is more data after the end of the JSON object", "a JSON file must hold one object or array; "
                   "for one record per line, save it as JSON Lines (.jsonl)", line=t.line_at(t.skip_ws(end)))
    from core.data.formats import FIELDS
    known = {n for names in FIELDS.values() for n in names} | set(column_map.values())
    lists = [k for k, v in top.items() if isinstance(v, list)]
    if known & set(top) or not top:
        st.rows += 1
        had = bool(seen_top)
        if not _report_seen(col, seen_top, 1, 1):
            st.flag = had
            yield t.line_at(pos), 1, top, None
    elif len(lists) == 1:
        # Re-walk the one list from where it starts, to give each record its line.
        start = _value_start(t, pos, lists[0], dec)
        seen_top.clear()
        yield from _array(t, start + 1, dec, seen, col, st, cap, top=False)
    elif all(isinstance(v, dict) for v in top.values()):
        for key in top:  # {"id1": {...record...}, "id2": {...}}
            st.rows += 1
            yield None, st.rows, top[key], None
    else:
        col.report("unknown_format", f"the JSON object has the keys {', '.join(map(str, list(top)[:8]))} but no list of records",
                   "put the records in a JSON array [...], or save one record per line as JSONL", line=t.line_at(pos))


def _value_start(t: _Text, pos: int, wanted: str, dec) -> int:
    """Offset of the value of key `wanted` in the top-level object starting at `pos`."""
    pos = t.skip_ws(pos + 1)
    while pos < len(t.buf):
        key, pos = json.decoder.scanstring(t.buf, pos + 1)
        pos = t.skip_ws(pos)
        pos = t.skip_ws(pos + 1)  # past ':'
        if key == wanted:
            return pos
        _, pos = dec.raw_decode(t.buf, pos)
        pos = t.skip_ws(t.skip_ws(pos) + 1)  # past ','
    raise ValueError(wanted)


def _array(t: _Text, pos: int, dec, seen, col, st, cap, top: bool):
    first = True
    while True:
        pos = t.skip_ws(pos)
        c = t.buf[pos:pos + 1]
        if c == "]":
            if top and t.skip_ws(pos + 1) < len(t.buf):
                col.report("bad_json", "there is more data after the closing ]", "a JSON file must hold one array",
                           line=t.line_at(t.skip_ws(pos + 1)))
            return
        if not first:
            if c != ",":
                _array_stop(t, pos, col, st, "expected a comma or ] between records" if c else "the file ends before the closing ]",
                            cut=not c)
                return
            pos = t.skip_ws(pos + 1)
            if t.buf[pos:pos + 1] == "]":
                col.report("bad_json", "a trailing comma before ]", "remove the comma after the last record",
                           line=t.line_at(pos))
                continue
        first = False
        if not t.buf[pos:pos + 1]:
            _array_stop(t, pos, col, st, "the file ends before the closing ]", cut=True)
            return
        while True:
            try:
                obj, end = dec.raw_decode(t.buf, pos)
                if end < len(t.buf) or t.eof or not t.more():
                    break
                seen.clear()  # decoded up to the buffer's end: decode again with more text
                continue
            except json.JSONDecodeError as e:
                if len(t.buf) - pos < cap and t.more(len(t.buf) - pos):
                    seen.clear()
                    continue
                seen.clear()
                st.rows += 1
                line = t.line_at(pos)
                err_line = t.line_at(e.pos)
                where = f" (line {err_line}, column {t.col_at(e.pos)})" if err_line != line else f" at column {t.col_at(e.pos)}"
                if len(t.buf) - pos >= cap:
                    col.report("line_too_long", f"a record is longer than {cap / 2**20:.0f} MB or never ends",
                               "split it, or check for a missing closing bracket", line=line, record=st.rows)
                elif t.eof and e.pos >= len(t.buf.rstrip()) - 1:
                    col.report("bad_json", "the file ends in the middle of this record",
                               "the file was not saved or uploaded completely; export it again", line=line, record=st.rows,
                               value=t.buf[pos:pos + 60])
                else:
                    col.report("bad_json", f"malformed JSON{where}: {plain_json_error(e.msg)}", "fix the record",
                               line=line, record=st.rows, value=t.buf[max(0, e.pos - 30):e.pos + 30])
                st.stopped = "the rest of the file could not be read after this error"
                return
        st.rows += 1
        line = t.line_at(pos)
        if seen:
            if _report_seen(col, seen, line, st.rows):
                pos = end
                continue
            st.flag = True
        yield line, st.rows, obj, None
        pos = t.drop_before(end)


def _array_stop(t, pos, col, st, message, cut=False):
    col.report("bad_json", message, "the file was not saved or uploaded completely; export it again" if cut
               else "fix the file near this line", line=t.line_at(pos), value=t.buf[pos:pos + 40] or None)
    st.stopped = "the rest of the file could not be read after this error"


# --- CSV / TSV ----------------------------------------------------------------------------------
def _csv(path, sn, col, st, cap, column_map):
    csv.field_size_limit(max(cap, 131072))
    f = _open_text(path, sn.encoding, newline="")
    try:
        yield from _csv_rows(f, sn, col, st, column_map)
    except UnicodeDecodeError:
        _decode_stop(col, st, path, sn)
    finally:
        f.close()


def _header(row: list[str], line: int, col: Collector, st: ReadStats) -> list[str | None]:
    names: list[str | None] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(row):
        name = raw.strip().lstrip("\ufeff")
        if name != raw:
            col.report("header_spaces", f"column {i + 1} is named {short(raw)} with spaces around it; it is read as {short(name)}",
                       "nothing to do, unless the spaces matter", line=line)
        if not name:
            col.report("ignored_columns", f"column {i + 1} has no name in the header; its values are not used",
                       "give the column a name in the first row", line=line)
            names.append(None)
            continue
        if name in seen:
            col.report("header", f"the column name {short(name)} appears twice (columns {seen[name] + 1} and {i + 1})",
                       "rename one of them so each column has its own name", line=line)
            names.append(None)
            continue
        seen[name] = i
        names.append(name)
    st.columns = [n for n in names if n]
    return names


def _csv_rows(f, sn, col, st, column_map):
    reader = csv.reader(f, delimiter=sn.delimiter)
    from core.data.formats import SYNONYMS
    cmap = column_map or {}
    # Cells of conversation columns hold JSON lists; no other cell is ever parsed (an answer may
    # itself be JSON text and must stay text).
    json_cols = {cmap.get(c, c) for c in JSON_CELL_COLUMNS} | {s for c in JSON_CELL_COLUMNS for s in SYNONYMS[c]}
    seen: list = []
    dec = make_decoder(seen)
    names = None
    prev = 0
    record = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            line = reader.line_num
            msg = str(e)
            if "field larger than field limit" in msg:
                col.report("line_too_long", "a cell is too long, or a quote (\") is never closed",
                           "check for a missing closing quote around this line", line=line)
            else:
                col.report("read_error", f"the CSV cannot be read here: {msg}", "check quotes and special characters on this line",
                           line=line)
            st.stopped = f"reading stopped at line {line}"
            return
        start, prev = prev + 1, reader.line_num
        if not row or not any(c.strip() for c in row):
            if names is not None:
                st.blank += 1
            continue
        if names is None:
            names = _header(row, start, col, st)
            continue
        record += 1
        st.rows += 1
        width = len(names)
        if len(row) != width:
            if len(row) > width and not any(c.strip() for c in row[width:]):
                row = row[:width]  # trailing empty cells (a spreadsheet's extra commas) hold nothing
            else:
                newline_inside = any("\n" in c for c in row)
                col.report("ragged", f"the record has {len(row)} fields, the header has {width}",
                           "check for a missing closing quote (\") in this record" if newline_inside or len(row) < width
                           else f"put quotes around cells that contain the delimiter {sn.delimiter!r}",
                           line=start, record=record, value=sn.delimiter.join(row))
                continue
        rec = {}
        bad = False
        for name, cell in zip(names, row):
            if name is None:
                continue
            if (name in json_cols or name.lower() in json_cols) and cell.lstrip().startswith("["):
                try:
                    cell = dec.decode(cell)
                except json.JSONDecodeError as e:
                    col.report("bad_json", f"the cell is not valid JSON: {plain_json_error(e.msg)}",
                               "write the turns as a JSON list, or use one row per question and answer",
                               field=name, line=start, record=record, value=cell)
                    bad = True
                seen.clear()
            rec[name] = cell
        if not bad:
            yield start, record, rec, None


# --- Parquet, XLSX --------------------------------------------------------------------------------
def _parquet(path, col, st):
    import pyarrow.parquet as pq
    try:
        pf = pq.ParquetFile(path)
        st.columns = list(pf.schema_arrow.names)
    except Exception as e:  # pyarrow raises several types for damaged files
        col.report("read_error", f"the file is not a valid Parquet file (footer unreadable: {str(e)[:120]})",
                   "export it again, or save the data as CSV UTF-8 or JSONL")
        st.stopped = "the file could not be read"
        return
    try:
        for batch in pf.iter_batches(batch_size=2048):
            for row in batch.to_pylist():
                st.rows += 1
                yield None, st.rows, row, None
    except Exception as e:
        col.report("read_error", f"the Parquet data is damaged after record {st.rows}: {str(e)[:120]}", "export it again",
                   record=st.rows + 1)
        st.stopped = "the rest of the file could not be read"


def _cell(v, st: ReadStats) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    st.coerced += 1
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def _xlsx(path, col, st):
    import openpyxl
    fh = open(path, "rb")  # a file object: openpyxl refuses paths whose extension is not .xlsx
    try:
        wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for damaged workbooks
        fh.close()
        col.report("read_error", f"the Excel workbook cannot be opened ({type(e).__name__})", "save it again from Excel, or as CSV UTF-8")
        st.stopped = "the file could not be read"
        return
    try:
        sheets = wb.worksheets
        if len(sheets) > 1:
            col.report("ignored_columns", f"only the first sheet ({sheets[0].title!r}) is read; {len(sheets) - 1} other sheet(s) are ignored",
                       "put all examples on the first sheet")
        names = None
        record = 0
        for r, values in enumerate(sheets[0].iter_rows(values_only=True), 1):
            cells = [_cell(v, st) for v in values]
            if not any(c.strip() for c in cells):
                if names is not None:
                    st.blank += 1
                continue
            if names is None:
                names = _header(cells, r, col, st)
                st.coerced = 0
                continue
            record += 1
            st.rows += 1
            stray = [i + 1 for i in range(len(names), len(cells)) if cells[i].strip()]
            if stray:
                col.report("ignored_columns", f"column(s) {', '.join(map(str, stray))} hold values but have no name in the "
                           "header row; those values are not used", "give the column a name in the first row",
                           line=r, record=record)
            yield r, record, {n: c for n, c in zip(names, cells + [""] * (len(names) - len(cells))) if n}, None
    finally:
        wb.close()
        fh.close()


NAN_RE = re.compile(r"(-?Infinity|NaN)")
