"""JSON files (an array of records, or an object holding them), read element by element.

An array is streamed: the text is read in chunks and each record decoded with raw_decode, so a
2 GB array needs no more memory than its largest record; each record gets the line it starts on.
An object is read whole (sniff caps its size) and its records found inside it.

A record of `cap` or more is refused by its line however the file holds it, as JSON Lines refuses such a line:
an element of an array, a record of an object keyed by id, or a file that is one record (a JSON Lines file of
one line is sniffed as JSON).
"""
from __future__ import annotations

import json

from core.data.readers import decode_stop, open_text, report_seen, make_decoder, plain_json_error
from core.messages import Msg, size_msg, sizes_over

CHUNK = 1 << 20

class _Text:
    """A growing window on a text stream, with an incremental line counter."""

    def __init__(self, f=None, text: str = "", utf8: bool = True):
        self.f, self.buf, self.eof = f, text, f is None
        self.utf8 = utf8  # sizes in UTF-8 bytes, as JSON Lines counts a line (a UTF-16 file's: characters)
        self.line_pos, self.line = 0, 1  # newlines counted up to line_pos

    def more(self, want: int = 0) -> bool:
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


def read_json(path, sn, col, st, cap, column_map=None):
    f = open_text(path, sn.encoding, newline="")
    try:
        yield from _json_stream(path, sn, _Text(f, utf8=sn.encoding.startswith("utf-8")), col, st, cap, column_map or {})
    except UnicodeDecodeError:
        decode_stop(col, st, path, sn)
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
        col.report("bad_json", Msg("read.bad_json", column=t.col_at(e.pos), error=plain_json_error(e.msg)),
                   Msg("read.json_object_bad.hint"), line=t.line_at(e.pos), value=t.buf[max(0, e.pos - 30):e.pos + 30])
        st.stopped = Msg("read.stopped_after_error")
        return
    seen_top = list(seen)
    seen.clear()
    if t.skip_ws(end) < len(t.buf):
        col.report("bad_json", Msg("read.after_object"), Msg("read.after_object.hint"), line=t.line_at(t.skip_ws(end)))
    from core.data.formats import FIELDS
    known = {n for names in FIELDS.values() for n in names} | set(column_map.values())
    lists = [k for k, v in top.items() if isinstance(v, list)]
    flat = not any(isinstance(v, (list, dict)) for v in top.values())
    if known & set(top) or not top or flat:  # a flat object is one record (a one-row JSONL with other names)
        st.rows += 1
        if _too_big(t, pos, end, col, st, cap):
            return
        had = bool(seen_top)
        if not report_seen(col, seen_top, 1, 1):
            st.flag = had
            yield t.line_at(pos), 1, top, None
    elif len(lists) == 1:
        # Re-walk the one list from where it starts, to give each record its line.
        start = _value_start(t, pos, lists[0], dec)
        seen_top.clear()
        yield from _array(t, start + 1, dec, seen, col, st, cap, top=False)
    elif all(isinstance(v, dict) for v in top.values()):
        yield from _keyed_records(t, pos, dec, seen, col, st, cap)
    else:
        col.report("unknown_format", Msg("read.no_record_list", keys=", ".join(map(str, list(top)[:8]))),
                   Msg("read.no_record_list.hint"), line=t.line_at(pos))


def _keyed_records(t: _Text, pos: int, dec, seen, col, st, cap):
    """{"id1": {...record...}, "id2": {...}}: each record decoded again from where it starts, as an array's
    are, so it has its line, is refused at `cap` or more and has its duplicate keys and NaN reported (read
    from the whole object, these records had no line and no cap, and a key twice kept its last value)."""
    pos = t.skip_ws(pos + 1)
    while t.buf[pos:pos + 1] == '"':
        _, pos = json.decoder.scanstring(t.buf, pos + 1)
        start = t.skip_ws(t.skip_ws(pos) + 1)  # past ':'
        seen.clear()
        obj, end = dec.raw_decode(t.buf, start)  # decoded whole once already: it decodes again
        pos = t.skip_ws(t.skip_ws(end) + 1)  # past ','
        st.rows += 1
        if _too_big(t, start, end, col, st, cap):
            continue
        line = t.line_at(start)
        if seen:
            if report_seen(col, seen, line, st.rows):
                continue
            st.flag = True
        yield line, st.rows, obj, None


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
                col.report("bad_json", Msg("read.after_array"), Msg("read.after_array.hint"), line=t.line_at(t.skip_ws(pos + 1)))
            return
        if not first:
            if c != ",":
                _array_stop(t, pos, col, st, Msg("read.comma_or_bracket") if c else Msg("read.ends_before_bracket"), cut=not c)
                return
            pos = t.skip_ws(pos + 1)
            if t.buf[pos:pos + 1] == "]":
                col.report("bad_json", Msg("read.trailing_comma"), Msg("read.trailing_comma.hint"), line=t.line_at(pos))
                continue
        first = False
        if not t.buf[pos:pos + 1]:
            _array_stop(t, pos, col, st, Msg("read.ends_before_bracket"), cut=True)
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
                _record_error(t, pos, e, col, st, cap)
                return
        st.rows += 1
        line = t.line_at(pos)
        if _too_big(t, pos, end, col, st, cap):  # decoded whole: the records after it are read
            seen.clear()
            pos = t.drop_before(end)
            continue
        if seen:
            if report_seen(col, seen, line, st.rows):
                pos = end
                continue
            st.flag = True
        yield line, st.rows, obj, None
        pos = t.drop_before(end)


def _too_big(t: _Text, pos: int, end: int, col, st, cap: int) -> bool:
    """The record t.buf[pos:end] is `cap` or more: reported on its line (JSON Lines refuses a line of `cap` bytes)."""
    size = end - pos
    if size * (4 if t.utf8 else 1) < cap:  # UTF-8 takes at most 4 bytes a character: surely under the cap
        return False
    if t.utf8:
        size = len(t.buf[pos:end].encode("utf-8", "surrogatepass"))
    if size < cap:
        return False
    col.report("line_too_long", Msg("read.record_is_mb", **sizes_over(size, cap)),
               Msg("read.line_mb.hint"), line=t.line_at(pos), record=st.rows)
    return True


def _record_error(t, pos, e, col, st, cap) -> None:
    """A record of an array that cannot be decoded: named by its line; reading stops there."""
    st.rows += 1
    line = t.line_at(pos)
    err_line = t.line_at(e.pos)
    error = plain_json_error(e.msg)
    bad = Msg("read.bad_json_line", line=err_line, column=t.col_at(e.pos), error=error) if err_line != line \
        else Msg("read.bad_json_at", column=t.col_at(e.pos), error=error)
    if len(t.buf) - pos >= cap:
        col.report("line_too_long", Msg("read.record_mb", limit=size_msg(cap)), Msg("read.record_mb.hint"),
                   line=line, record=st.rows)
    elif t.eof and e.pos >= len(t.buf.rstrip()) - 1:
        col.report("bad_json", Msg("read.ends_in_record"), Msg("read.incomplete.hint"), line=line, record=st.rows,
                   value=t.buf[pos:pos + 60])
    else:
        col.report("bad_json", bad, Msg("read.fix_record.hint"), line=line, record=st.rows,
                   value=t.buf[max(0, e.pos - 30):e.pos + 30])
    st.stopped = Msg("read.stopped_after_error")


def _array_stop(t, pos, col, st, message, cut=False):
    col.report("bad_json", message, Msg("read.incomplete.hint") if cut else Msg("read.fix_near.hint"), line=t.line_at(pos),
               value=t.buf[pos:pos + 40] or None)
    st.stopped = Msg("read.stopped_after_error")
